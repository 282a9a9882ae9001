#!/usr/bin/env bash
# Set up the environment, start the real services the integration tests need
# (Kafka, HDFS, Spark standalone, PostgreSQL, Spark Connect on 127.0.0.1), run every test, and stop the services this
# script started, also when tests fail or the run is interrupted. Services that were
# already running are left running. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_torch.sh   # .venv-torch (numpy 2, no MXNet) for tests/integration/torch

started=()
stop_services() {
  if [ "${#started[@]}" -gt 0 ]; then
    .venv/bin/h3spark services down "${started[@]}" \
      || echo "test: 'h3spark services down ${started[*]}' failed; check 'h3spark services status'" >&2
  fi
}
trap stop_services EXIT
trap 'exit 130' INT TERM

running=$(.venv/bin/h3spark services status | cut -d" " -f1 || true)
for service in kafka hdfs spark postgres connect; do
  if ! grep -qx "$service" <<<"$running"; then
    started+=("$service")
  fi
done
if [ "${#started[@]}" -gt 0 ]; then
  .venv/bin/h3spark services up "${started[@]}"
fi

status=0
.venv/bin/python -m pytest "$@" || status=$?
if [ "$status" = 5 ]; then
  echo "test: pytest collected no tests; that is a failure here." >&2
  status=1
fi
exit "$status"
