#!/usr/bin/env bash
# Set up (or refresh) the pinned environment in .venv. Idempotent: a second run with an
# unchanged requirements.lock and pyproject.toml installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "setup: h3spark's pinned environment needs Python 3.11 (MXNet 1.9.1 has no wheels for newer); found $("$PYTHON" --version 2>&1). Set PYTHON=/path/to/python3.11." >&2
  exit 2
fi
if ! command -v java >/dev/null 2>&1; then
  echo "setup: Java 17 is needed for Spark, Kafka and HDFS. Install it: apt-get install -y openjdk-17-jdk-headless" >&2
  exit 2
fi

# The browser tests (tests/integration/web) drive Debian's chromium with its chromedriver; nothing downloads a browser.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing chromium and chromium-driver with apt-get (for tests/integration/web)" >&2
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver; } >/dev/null \
      || echo "setup: apt-get could not install chromium and chromium-driver; the browser tests will not run until they are installed." >&2
  else
    echo "setup: chromium and chromium-driver are missing, so the browser tests (tests/integration/web) cannot run. Install them: sudo apt-get install chromium chromium-driver (or run this script as root)." >&2
  fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=.venv/.h3spark-installed
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements.lock
  .venv/bin/python -m pip install --quiet --no-deps -e .
  echo "$want" > "$stamp"
fi
.venv/bin/python -c 'import h3spark, pyspark, mxnet, torch, pyarrow, sklearn, safetensors, bokeh, nbclient, ipykernel' \
  || { echo "setup: the environment in .venv does not import; remove .venv and run again." >&2; exit 1; }
# The Spark driver JVM's class-data archive (once per environment, 20-50 s): every later session
# starts about 4 s sooner (h3spark/spark/_jvm_archive.py). Without it Spark only starts slower.
.venv/bin/python -c 'from h3spark.spark import build_jvm_archive; build_jvm_archive()' \
  || echo "setup: building the driver JVM's class-data archive failed (above); Spark sessions start without it, about 4 s slower." >&2
