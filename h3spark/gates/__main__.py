"""``python -m h3spark.gates SETTINGS.json``: one gate or sentinel in a process of its own."""

import sys

from h3spark.gates._launch import main

sys.exit(main(sys.argv[1:]))
