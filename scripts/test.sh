#!/usr/bin/env bash
# Set up the environment, start the real services the integration tests need
# (Kafka, HDFS, Spark standalone on 127.0.0.1), run every test, and stop the services
# again, also when tests fail or the run is interrupted. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

services_started=0
stop_services() {
  if [ "$services_started" = 1 ]; then
    .venv/bin/h3spark services down || echo "test: 'h3spark services down' failed; check 'h3spark services status'" >&2
  fi
}
trap stop_services EXIT
trap 'exit 130' INT TERM

services_started=1
.venv/bin/h3spark services up kafka hdfs spark

status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" = 5 ]; then
  echo "test: pytest collected no tests; that is a failure here." >&2
  status=1
fi
exit "$status"
