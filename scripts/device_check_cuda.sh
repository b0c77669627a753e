#!/bin/sh
# The one device check for the CUDA backend (issue 9): build with CUDA=1, run every CUDA kernel
# against its CPU twin, and save the log. Meant for the GPU machine (the `device` tool runs it in
# a copy of the checkout; ../shared does not travel, and this needs none of it):
#   sh scripts/device_check_cuda.sh            # logs to $OUT/cuda_check.log when OUT is set
# It installs nothing beyond what scripts/deps.sh installs; the machine needs nvcc, cuBLAS and cuDNN
# under /usr/local/cuda (CUDA_HOME).
set -u
cd "$(dirname "$0")/.." || exit 1
LOG=${OUT:-build}/cuda_check.log
mkdir -p "$(dirname "$LOG")"
{
    echo "== $(date -u) $(uname -m) $(nproc) cores"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" --version | tail -1
    scripts/deps.sh >/dev/null 2>&1 || echo "deps.sh failed (continuing with what is installed)"
    make -j"$(nproc)" CUDA=1 all && make CUDA=1 test-cuda
    echo "== exit $?"
} 2>&1 | tee "$LOG"
