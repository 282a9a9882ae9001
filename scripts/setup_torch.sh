#!/usr/bin/env bash
# Create (or refresh) .venv-torch: torch with its CUDA libraries from PyPI, numpy 2, and h3spark
# (editable, no deps), beside the pinned .venv, whose numpy 1.23 (MXNet) torch does not share.
# The torch integration tests (tests/integration/torch) run their workers under it through
# H3SPARK_WORKER_PYTHON; no GPU is needed (gloo on CPU). Idempotent, like scripts/setup.sh.
# Measured on the 2-core machine: about 3 GB downloaded, 5.7 GB on disk, about 4 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
# The tested set (torch 2.15.0's wheel brings nvidia-* CUDA 13 libraries; they load without a GPU).
# pyspark (pure Python + jars, same version as .venv) lets Spark's Python workers run here:
# an experiment whose trials train torch sets spark.pyspark.python to .venv-torch/bin/python.
PACKAGES=(torch==2.15.0 numpy==2.4.6 pyarrow==26.0.1 pandas==3.1.1 pydantic==2.14.3 pyyaml==6.0.3
          tensorboardX==2.6.5 hdfs==2.7.3 safetensors==0.8.0 pyspark==4.3.0)

[ -x .venv-torch/bin/python ] || "$PYTHON" -m venv .venv-torch
stamp=.venv-torch/.h3spark-installed
want=$(printf '%s\n' "${PACKAGES[@]}" | cat - pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv-torch/bin/python -m pip install --quiet --upgrade pip
  .venv-torch/bin/python -m pip install --quiet "${PACKAGES[@]}"
  .venv-torch/bin/python -m pip install --quiet --no-deps -e .
  echo "$want" > "$stamp"
fi
.venv-torch/bin/python -c 'import torch, pyspark, h3spark.train.engines.torch' \
  || { echo "setup_torch: the environment in .venv-torch does not import; remove .venv-torch and run again." >&2; exit 1; }
