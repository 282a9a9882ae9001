#!/usr/bin/env bash
# Download, here, the wheels that the GPU machine lacks, into .whl/ (ignored by git; a device
# call carries it). That machine has Python 3.12 with torch, numpy 2, pyarrow, pandas, PyYAML and
# pytest, but no network, and none of these: pydantic (h3spark's configs) and tensorboardX; safetensors
# (the model file of every checkpoint) comes too, as its presence there was never checked.
# Then, on the device: bash scripts/gpu_check.sh (it installs what is in .whl/ first).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON_VERSION=${PYTHON_VERSION:-3.12}
WHEELS=(pydantic==2.14.3 pydantic_core==2.50.4 annotated-types==0.8.0 typing-inspection==0.4.5 tensorboardX==2.6.5
        safetensors==0.8.0)
PLATFORMS=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
  PLATFORMS+=(--platform "$tag")
done
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PYTHON_VERSION" --implementation cp \
  "${PLATFORMS[@]}" -d .whl "${WHEELS[@]}"
ls -la .whl
