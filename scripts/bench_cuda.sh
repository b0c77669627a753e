#!/bin/bash
# bench_cuda.sh: `make bench-cuda`: attngan bench --device cuda on the rows of `make bench` (a1 a2
# b1 b2 c1 c2, scripts/bench.sh) plus gan_step branch 3 batch 20 and damsm_step batch 48, and the
# PyTorch reference (ref_attngan.py --device cuda) on the same rows, on the same GPU, in the same
# call: one markdown table with the speed-ups and the peak device memory of each.
#   ATTNGAN   the CUDA build's binary (default build/release-cuda/attngan)
#   REF       the reference's directory (default ../shared/reference, or .devcheck/reference)
#   OUT       where the table (bench_cuda.md) and the logs go (default build/bench-cuda)
#   ROWS      a subset of the row names below; REF_TIMEOUT seconds per reference run (default 70)
# Without a GPU it says so and exits 0.
set -u
cd "$(dirname "$0")/.." || exit 1
BIN=${ATTNGAN:-build/release-cuda/attngan}
REF=${REF:-../shared/reference}
[ -f "$REF/ref_attngan.py" ] || REF=.devcheck/reference
OUTD=${OUT:-build/bench-cuda}
mkdir -p "$OUTD/logs"
# name:mode:branch:batch:warmup:iters
ALL="a1:sample:3:1:3:20 a2:sample:3:8:3:10 b1:gan_step:1:8:2:5 b2:gan_step:3:4:2:5 c1:damsm_step:3:8:2:5 c2:damsm_step:3:48:2:5 g20:gan_step:3:20:2:5"
ROWS=${ROWS:-"a1 a2 b1 b2 c1 c2 g20"}
if ! { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }; then
    echo "SKIP bench-cuda: no GPU here (nvidia-smi finds none)"
    exit 0
fi
[ -x "$BIN" ] || { echo "bench-cuda: no $BIN (make CUDA=1)"; exit 1; }
gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)
{
    echo "# attngan vs PyTorch on $gpu ($(date -u +%FT%TZ))"
    echo
    echo "fp32 (no TF32) on both sides; median of the timed iterations; each attngan iteration ends with the device synchronised."
    echo
    echo "| row | mode | branch | batch | attngan ms | PyTorch ms | speed-up | attngan peak MiB | PyTorch peak MiB |"
    echo "|---|---|---|---|---|---|---|---|---|"
} >"$OUTD/bench_cuda.md"
field() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" "$1" 2>/dev/null | head -1; }
for r in $ROWS; do
    spec=$(printf '%s\n' $ALL | grep "^$r:" | head -1)
    [ -n "$spec" ] || { echo "bench-cuda: unknown row $r"; continue; }
    IFS=: read -r name mode branch batch w k <<<"$spec"
    args="--mode $mode --branch $branch --batch $batch --warmup $w --iters $k"
    timeout 120 "$BIN" bench --device cuda $args >"$OUTD/logs/$name.attngan.log" 2>&1
    (cd "$REF" && timeout "${REF_TIMEOUT:-70}" python3 ref_attngan.py $args --device cuda) >"$OUTD/logs/$name.torch.log" 2>&1
    a=$(grep '^RESULT' "$OUTD/logs/$name.attngan.log" | sed 's/^RESULT//'); p=$(grep '^RESULT' "$OUTD/logs/$name.torch.log" | sed 's/^RESULT//')
    am=$(echo " $a" | sed -n 's/.* median_ms=\([^ ]*\).*/\1/p'); pm=$(echo " $p" | sed -n 's/.* median_ms=\([^ ]*\).*/\1/p')
    ac=$(echo " $a" | sed -n 's/.* cuda_peak_mb=\([^ ]*\).*/\1/p'); pc=$(echo " $p" | sed -n 's/.* cuda_peak_mb=\([^ ]*\).*/\1/p')
    ratio=$( [ -n "$am" ] && [ -n "$pm" ] && awk "BEGIN {printf \"%.2fx\", $pm / $am}" || echo "-")
    echo "| $name | $mode | $branch | $batch | ${am:-failed} | ${pm:-failed} | $ratio | ${ac:--} | ${pc:--} |" >>"$OUTD/bench_cuda.md"
    echo "$name: attngan ${am:-failed} ms, PyTorch ${pm:-failed} ms ($ratio)"
done
cat "$OUTD/bench_cuda.md"
