#!/usr/bin/env bash
# The GPU checks of the torch engine (issue 7), on a machine with torch and CUDA but no Java,
# Spark or MXNet (the device machine): the NCCL tests, then the GPU figures of benchmarks/train.py.
#   here:        bash scripts/gpu_wheels.sh          (the wheels that machine lacks, into .whl/)
#   the device:  bash scripts/gpu_check.sh           (carry .whl; logs go to $OUT or /tmp/h3spark-gpu)
# Without CUDA it still runs: the NCCL tests skip and the benchmark measures on CPU.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
LOGS=${OUT:-/tmp/h3spark-gpu}
mkdir -p "$LOGS"
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/h3spark-site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/h3spark-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 H3SPARK_TORCH_PYTHON=$PYTHON
nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
"$PYTHON" -c 'import torch, h3spark.train.engines.torch as e; print("torch", torch.__version__, "gpus", torch.cuda.device_count())' \
  || { echo "gpu_check: h3spark's torch engine does not import here; run scripts/gpu_wheels.sh and carry .whl" >&2; exit 1; }
status=0
"$PYTHON" -m pytest -q -p no:cacheprovider tests/integration/gpu 2>&1 | tee "$LOGS/gpu-tests.log" || status=1
"$PYTHON" benchmarks/train.py --torch-only ${QUICK:+--quick} 2>&1 | tee "$LOGS/train-torch.log" || status=1
exit $status
