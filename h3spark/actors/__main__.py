"""``python -m h3spark.actors SETTINGS.json``: run one actor of a network (the network starts these)."""

import sys

from h3spark.actors._child import main

sys.exit(main(sys.argv[1:]))
