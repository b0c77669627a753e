#!/bin/bash
# device_check_cuda.sh: the one device check of the CUDA backend (docs/CUDA.md), in two halves.
#
#   scripts/device_check_cuda.sh prepare   # here, with ../shared: fills .devcheck/ (git-ignored)
#   scripts/device_check_cuda.sh [run]     # on the GPU machine, in one call of at most 9 minutes
#
# prepare packs what the GPU machine lacks and cannot fetch (it reaches nothing outside), small
# enough to travel with the checkout (64 MiB in all), into .devcheck/:
#   sysroot.tar.xz    the Debian packages of the build (OpenBLAS, oneDNN, cJSON, libmicrohttpd,
#                     libjpeg-turbo, libpng, libyaml, FreeType): headers and shared libraries only
#   birds.tar.xz      `attngan data pack`: the metadata, splits and captions of ../shared/data/birds
#                     and PHOTOS photos per split framed as the loader frames them, 76 px, JPEG; and
#                     ../shared/data/wikipedia (export's relevance centroids)
#   inception.tar.xz  the pretrained Inception-v3 (../shared/models/inception_v3_nsfwjs)
#   reference/        the PyTorch reference (../shared/reference: dumps and GPU timings)
# and prints the device call to make: run, with `carry: [".devcheck"]` and timeout_s 600.
#
# run, on the GPU machine (each phase under its own time limit; the log goes to $OUT/check.log):
#   1. unpacks the sysroot when the system lacks the build's headers, finds cuDNN (CUDA_HOME, or
#      the nvidia-cudnn wheel of python3), starts the reference dumps in the background;
#   2. make CUDA=1: the whole program, its unit tests and every kernel test;
#   3. make test-cuda: every CUDA kernel against its CPU twin;
#   4. test_steps with ATTNGAN_TEST_DEVICE=cuda: both training steps on the GPU against the
#      PyTorch dumps and against the CPU, with the CPU's bounds; `attngan parity --device cuda`
#      on every dump when parity runs on a device;
#   5. data-parallel on the GPU where mpirun exists (dist_check: 2 ranks against EXTRA.GRAD_ACCUM 2;
#      NCCL with 2 ranks when there are 2 GPUs);
#   6. scripts/bench_cuda.sh (make bench-cuda): attngan bench --device cuda and the PyTorch
#      reference on the same GPU in the same call, rows BENCH_ROWS (default sample B1, gan_step
#      branch 3 B4 and B20, damsm_step B48), one table with the speed-ups ($OUT/bench.md);
#   7. trains a 64 px model for TRAIN_MINUTES (default 3.5) in all: DAMSM pretraining on cached
#      trunk features, then the GAN on its encoders, both with --device cuda; exports it and
#      returns model.json, netG, text_encoder, image_encoder and vocab.txt (at most 8 files of
#      16 MiB come back), which `attngan generate --model DIR` draws with here.
# Without a GPU (here) every GPU phase says so and the script ends with "no GPU: ..." and exit 0
# after the build and the CPU-side checks: the rehearsal.
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
DC=$ROOT/.devcheck
PHOTOS=${PHOTOS:-600}

prepare() {
    set -e
    local data=${ATTNGAN_DATA:-../shared/data} shared=../shared
    mkdir -p "$DC"
    grep -qx '/.devcheck/' .git/info/exclude 2>/dev/null || echo '/.devcheck/' >>.git/info/exclude
    echo "== the build's Debian packages, headers and shared libraries"
    local st=$DC/sysroot debs=$DC/debs
    rm -rf "$st" "$debs"
    mkdir -p "$st" "$debs"
    (cd "$debs" && apt-get download -q libopenblas0-openmp libopenblas-openmp-dev libdnnl2 libdnnl-dev libcjson1 libcjson-dev \
        libmicrohttpd12 libmicrohttpd-dev libzip4 libzip-dev libyaml-0-2 libyaml-dev libpng16-16 libpng-dev libjpeg62-turbo libjpeg62-turbo-dev \
        libfreetype6 libfreetype-dev libgfortran5 libbrotli1 2>&1 | grep -v "^W: " || true)
    for f in "$debs"/*.deb; do dpkg-deb -x "$f" "$st"; done
    rm -rf "$st/usr/share" "$debs"
    find "$st" -name '*.a' -delete
    tar -C "$DC" -cJf "$DC/sysroot.tar.xz" sysroot
    rm -rf "$st"
    echo "== the packed photos"
    [ -x build/release/attngan ] || make -j"$(nproc)" >/dev/null
    rm -rf "$DC/birds"
    build/release/attngan data pack --data "$data/birds" --out "$DC/birds" --max "$PHOTOS" --size 76
    rm -rf "$DC/wikipedia"
    cp -r "$data/wikipedia" "$DC/wikipedia" # export's relevance centroids read DATA/../wikipedia
    tar -C "$DC" -cJf "$DC/birds.tar.xz" birds wikipedia
    rm -rf "$DC/birds" "$DC/wikipedia"
    echo "== the pretrained Inception-v3 and the PyTorch reference"
    tar -C "$shared/models" -cJf "$DC/inception.tar.xz" inception_v3_nsfwjs
    rm -rf "$DC/reference"
    mkdir -p "$DC/reference"
    cp "$shared"/reference/*.py "$shared"/reference/run_gpu.sh "$shared"/reference/*.md "$DC/reference/"
    local tree carry
    tree=$(git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
    carry=$(du -sb "$DC" | cut -f1)
    echo "== .devcheck: $((carry / 1048576)) MiB; the checkout's tracked files: $((tree / 1048576)) MiB (64 MiB travel at most)"
    ls -la "$DC"
    [ $((tree + carry)) -lt $((64 * 1048576)) ] || { echo "too large to travel: lower PHOTOS"; exit 1; }
    echo "next: device run, command 'bash scripts/device_check_cuda.sh run', carry [\".devcheck\"], timeout_s 600"
}

# ---------------------------------------------------------------- run
OUTD=${OUT:-$ROOT/build/devcheck}   # what comes back: at most 8 files
LOG=$OUTD/check.log
LD=/tmp/devcheck_logs                # the rest of the logs (their tails go into check.log)
T0=$(date +%s)
say() { echo "== [$(( $(date +%s) - T0 )) s] $*"; }
# phase NAME SECONDS LOG CMD...: one phase under a time limit, its output into LOG ("-": this log)
phase() {
    local name=$1 limit=$2 out=$3
    shift 3
    say "$name (limit ${limit} s)"
    if [ "$out" = - ]; then timeout "$limit" "$@"; else timeout "$limit" "$@" >"$out" 2>&1; fi
    local rc=$?
    if [ $rc -eq 0 ]; then say "$name: ok"; else say "$name: FAILED (exit $rc$([ $rc = 124 ] && echo ': the time limit'))"; fi
    return $rc
}

setup_deps() {
    export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
    if ! echo '#include <dnnl.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>' | cc -E -x c - >/dev/null 2>&1; then
        [ -f "$DC/sysroot.tar.xz" ] || { echo "no build headers here and no $DC/sysroot.tar.xz (run prepare here first)"; return 1; }
        tar -C /tmp -xJf "$DC/sysroot.tar.xz"
        SYSROOT=/tmp/sysroot
    elif [ "${DEVCHECK_SYSROOT:-0}" = 1 ] && [ -f "$DC/sysroot.tar.xz" ]; then
        tar -C /tmp -xJf "$DC/sysroot.tar.xz" # the rehearsal: build against the packed libraries too
        SYSROOT=/tmp/sysroot
    fi
    MAKEVARS=()
    if [ -n "${SYSROOT:-}" ]; then
        local inc=$SYSROOT/usr/include lib=$SYSROOT/usr/lib/x86_64-linux-gnu
        MAKEVARS+=("EXTRA_CFLAGS=-I$inc -I$inc/x86_64-linux-gnu -I$inc/x86_64-linux-gnu/openblas-openmp -I$inc/freetype2 -I$inc/libpng16"
                   "EXTRA_LDFLAGS=-L$lib -Wl,-rpath,$lib" "OPENBLAS_DIR=$lib/openblas-openmp")
        echo "build dependencies: the packed Debian libraries in $SYSROOT"
    fi
    if [ ! -f "$CUDA_HOME/include/cudnn.h" ]; then # cuDNN from python3's nvidia-cudnn wheel
        local wheel
        wheel=$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null) || wheel=
        if [ -n "$wheel" ] && [ -f "$wheel/include/cudnn.h" ]; then
            mkdir -p /tmp/cudnn/lib
            ln -sfn "$wheel/include" /tmp/cudnn/include
            for f in "$wheel"/lib/libcudnn*.so.*; do ln -sf "$f" /tmp/cudnn/lib/; b=$(basename "$f"); ln -sf "$f" "/tmp/cudnn/lib/${b%%.so.*}.so"; done
            MAKEVARS+=("CUDNN_HOME=/tmp/cudnn")
            echo "cuDNN: python3's wheel in $wheel"
        else
            echo "cuDNN: not in $CUDA_HOME and no nvidia-cudnn wheel"
        fi
    fi
}

# train_model DEV: a 64 px model in TRAIN_MINUTES on DEV: the encoders on cached trunk features,
# then the GAN; exported into $OUTD
train_model() {
    local dev=$1
    local minutes=${TRAIN_MINUTES:-3.5} data=/tmp/devbirds
    mkdir -p $data /tmp/devmodels
    tar -C $data -xJf "$DC/birds.tar.xz"
    tar -C /tmp/devmodels -xJf "$DC/inception.tar.xz"
    local pm gm
    pm=$(python3 -c "print(max(1, round($minutes * 0.35, 1)))")
    gm=$(python3 -c "print(max(1, round($minutes * 0.65, 1)))")
    local runs=/tmp/devruns
    rm -rf $runs
    phase "pretrain ${pm} min on $dev" "${PRETRAIN_LIMIT:-200}" "$LD/pretrain.log" $B/attngan pretrain --cfg cfg/DAMSM/bird_cpu.yml --device "$dev" --data $data/birds --out $runs/damsm \
        --set EXTRA.INCEPTION_WEIGHTS=/tmp/devmodels/inception_v3_nsfwjs --set EXTRA.CACHE_IMAGE_SIZE=64 --set ZSL.LAMBDA=0.1 \
        --set TRAIN.MAX_EPOCH=1000 --set TRAIN.SNAPSHOT_INTERVAL=25 --max-minutes "$pm" --quiet
    tail -4 "$LD/pretrain.log"
    phase "train ${gm} min on $dev" "${TRAIN_LIMIT:-300}" "$LD/train.log" $B/attngan train --cfg cfg/bird_attn1_cpu.yml --device "$dev" --data $data/birds --out $runs/gan \
        --set TRAIN.NET_E=$runs/damsm/text_encoder.safetensors --set EXTRA.INCEPTION_WEIGHTS=/tmp/devmodels/inception_v3_nsfwjs \
        --set ZSL.LAMBDA=0.1 --set EXTRA.DIFFAUGMENT=color,translation,cutout --max-minutes "$gm" --quiet
    tail -4 "$LD/train.log"
    cp $runs/gan/losses.csv "$OUTD/losses.csv" 2>/dev/null
    phase "export" 120 "$LD/export.log" $B/attngan export --run $runs/gan --out $runs/model --data $data/birds --bn-batches 20 \
        --note "GPU device check: ${minutes} min on packed photos"
    tail -3 "$LD/export.log"
    for f in model.json netG.safetensors text_encoder.safetensors image_encoder.safetensors vocab.txt; do
        cp "$runs/model/$f" "$OUTD/$f" 2>/dev/null || echo "no $f"
    done
}

# data-parallel on the GPU (docs/DISTRIBUTED.md), where the machine has mpirun and the build MPI:
# 2 ranks on one GPU through host memory (ATTNGAN_DIST_BACKEND=mpi: NCCL refuses two ranks on one
# GPU) against one process accumulating the same 2 micro-batches, both --device cuda, with the
# ranks' weights compared after every step; NCCL itself with 2 ranks when there are 2 GPUs
dist_check() {
    local B=build/release-cuda
    if ! command -v mpirun >/dev/null 2>&1 || ! $B/attngan version | grep -q "MPI built in"; then
        say "data-parallel: skipped (no mpirun here, or a build without MPI)"
        return 0
    fi
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
    local data=/tmp/devbirds d=/tmp/devdist P
    mkdir -p $data && [ -d $data/birds ] || tar -C $data -xJf "$DC/birds.tar.xz"
    rm -rf $d
    P="--cfg tests/configs/tiny_damsm.yml --data $data/birds --set TRAIN.BATCH_SIZE=2 --threads 2 --quiet --device cuda --max-steps 3"
    phase "data-parallel: 2 ranks on one GPU (MPI through the host)" 120 "$LD/dist.log" env ATTNGAN_DIST_BACKEND=mpi ATTNGAN_DIST_CHECK=1 \
        mpirun -np 2 $B/attngan pretrain $P --out $d/r2
    phase "data-parallel: one process, EXTRA.GRAD_ACCUM 2" 120 "$LD/dist_acc.log" $B/attngan pretrain $P --set EXTRA.GRAD_ACCUM=2 --out $d/a2
    for f in text_encoder image_encoder zsl_d; do
        cmp -s $d/r2/$f.safetensors $d/a2/$f.safetensors && echo "  $f: 2 ranks = 2 micro-batches, bit for bit" ||
            echo "  $f: 2 ranks and 2 micro-batches differ (the GPU's kernels may not be deterministic)"
    done
    if [ "$(nvidia-smi -L | wc -l)" -ge 2 ]; then
        phase "data-parallel: 2 ranks on 2 GPUs with NCCL" 120 "$LD/dist_nccl.log" env ATTNGAN_DIST_CHECK=1 mpirun -np 2 $B/attngan pretrain $P --out $d/n2
        grep -h "allreduces" "$LD/dist_nccl.log"
    else
        say "data-parallel: NCCL needs two GPUs for two ranks (one here): not exercised"
    fi
}

run() {
    mkdir -p "$OUTD" "$LD"
    local gpu=0 why="no nvidia-smi"
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then gpu=1; fi
    [ $gpu = 1 ] || why="no GPU here (nvidia-smi finds none)"
    say "device check: $(uname -m), $(nproc) cores, $(date -u +%FT%TZ)"
    [ $gpu = 1 ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" --version | tail -1
    setup_deps || { say "no build dependencies"; return 1; }
    local J
    J=$(nproc)
    # the reference dumps (PyTorch on the CPU, in the background while the build runs)
    local dumps=$ROOT/build/dumps
    if [ -d "$DC/reference" ]; then
        (ATTNGAN_REFERENCE=$DC/reference PYTHON=python3 timeout 300 sh tests/parity/make_dumps.sh "$dumps" >"$LD/dumps.log" 2>&1; echo "dumps exit $?" >>"$LD/dumps.log") &
    fi
    local dumps_pid=$!
    phase "build: make CUDA=1" "${BUILD_LIMIT:-300}" "$LD/build.log" make -j"$J" CUDA=1 "${MAKEVARS[@]}" all tests ||
        { grep -E "error|Error" "$LD/build.log" | head -20; tail -5 "$LD/build.log"; return 1; }
    local B=build/release-cuda
    echo "attngan: $($B/attngan version)"
    ldd $B/attngan | grep -E "dnnl|openblas|cudnn|cublas" | sed 's/^/  /'
    phase "kernel tests: make test-cuda" 120 "$LD/test_cuda.log" make CUDA=1 "${MAKEVARS[@]}" test-cuda
    grep -E "rel err|FAIL|SKIP|RESULT|passed" "$LD/test_cuda.log" | tail -150
    if [ $gpu = 0 ]; then # the rehearsal: the host device runs the same device path
        phase "steps on the host device against the CPU" "${STEPS_LIMIT:-900}" "$LD/steps.log" env ATTNGAN_TEST_DEVICE=hostdev $B/tests/test_steps
        grep -E "FAIL|RESULT" "$LD/steps.log" | tail -20
        if [ "${REHEARSE_TRAIN:-0}" = 1 ]; then # the training phase's commands (configs, packed photos, export) on the CPU
            TRAIN_MINUTES=${TRAIN_MINUTES:-2} train_model cpu
        fi
        say "no GPU: $why; the GPU phases (step parity on cuda, bench, training) were skipped after the build and the kernel tests"
        return 0
    fi
    wait $dumps_pid 2>/dev/null
    tail -2 "$LD/dumps.log"
    phase "training steps on the GPU vs PyTorch and the CPU" 150 "$LD/steps.log" env ATTNGAN_TEST_DEVICE=cuda $B/tests/test_steps
    grep -E "FAIL|RESULT|distance|norm-relative" "$LD/steps.log" | tail -40
    if $B/attngan parity --help 2>&1 | grep -q -- "--device"; then
        for d in "$dumps"/*.safetensors; do
            case $d in *trunk*) continue ;; esac
            timeout 60 $B/attngan parity --device cuda "$d" 2>&1 | tail -2
        done
    fi
    dist_check
    # speed: ours and PyTorch's on the same GPU, in this call (make bench-cuda's script)
    phase "bench: attngan and PyTorch on the GPU" 330 - env ATTNGAN=$B/attngan REF="$DC/reference" OUT="$LD/bench" REF_TIMEOUT=40 \
        ROWS="${BENCH_ROWS:-a1 b2 c2 g20}" bash scripts/bench_cuda.sh
    cp "$LD/bench/bench_cuda.md" "$OUTD/bench.md" 2>/dev/null
    train_model cuda
    say "done: model files, check.log, bench.md and losses.csv in $OUTD (draw here: attngan generate --model DIR)"
}

case ${1:-run} in
prepare) prepare ;;
run) run 2>&1 | tee "$LOG" ;;
*) echo "usage: scripts/device_check_cuda.sh [prepare|run]"; exit 2 ;;
esac
