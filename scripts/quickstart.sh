#!/usr/bin/env bash
# Set up the environment and run the quickstart on embedded defaults (local Spark on 2 cores,
# the local file system, the in-process bus; no server to start): preprocessing with expectations,
# a parallel search, distributed MXNet training of the best trial, evaluation, an actor demo and a
# batch prediction (conf/quickstart.yaml). It ends with where everything went and what to run next.
# Extra arguments go to 'h3spark run', e.g. --workdir /tmp/qs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/h3spark run conf/quickstart.yaml "$@"
