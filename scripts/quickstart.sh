#!/usr/bin/env bash
# Set up the environment and run the quickstart on embedded defaults
# (local Spark, the local file system, no external server).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/h3spark run conf/quickstart.yaml "$@"
