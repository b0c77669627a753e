#!/bin/sh
# scripts/bench.sh: `attngan bench` against the PyTorch reference (../shared/reference/ref_attngan.py)
# on the rows of ../shared/reference/RESULTS-cpu.md, in the same run, with a markdown table:
# row, ours ms, reference ms, speed ratio (reference / ours), our GFLOP/s, % of the SGEMM ceiling
# (../shared/reference/gemm_peak.c built against our OpenBLAS, measured here) and of the FMA ceiling
# (tools/fma_peak.c: the widest FMA units, all threads busy; OpenBLAS may not use them), peak RSS of both and
# the memory ratio. The table goes to stdout and to $BENCH_OUT/results.md, each run's full output to
# $BENCH_OUT/<row>.ours.txt / <row>.ref.txt. docs/PERFORMANCE.md explains the numbers.
#
# Environment (all optional):
#   BENCH_QUICK=1        rows a1 b1 c1, ours 2 warm-up + 2 timed, reference 1 + 1 (a minute or two)
#   BENCH_ROWS="..."     rows to run, space-separated, each ID:MODE:BRANCH:BATCH[:W:K[:RW:RK]] (W/K: our
#                        warm-up and timed iterations, RW/RK the reference's), or IDs of the default rows
#                        (a1 a2 b1 b2 c1 c2), e.g. BENCH_ROWS="a1 b1" or BENCH_ROWS="x:gan_step:2:4:1:3"
#   BENCH_WARMUP, BENCH_ITERS          override our warm-up / timed iterations on every row
#   BENCH_REF_WARMUP, BENCH_REF_ITERS  the same for the reference
#   BENCH_THREADS=2      threads of both (the reference: --threads)
#   BENCH_REF=auto|0|1   run the reference: when /usr/bin/python3 imports torch (auto), never, always
#   BENCH_PROFILE=1      add --profile to our runs (tables in the .ours.txt logs)
#   BENCH_BF16=1         also run ours with --bf16 (bf16 convolutions) on each row: three more columns
#   BENCH_PEAK_GFLOPS=N  skip the SGEMM measurement and use N
#   FMA_PEAK=build/release/tools/fma_peak  the FMA ceiling's program (`make bench` builds it; none: "-")
#   BENCH_OUT=build/bench, ATTNGAN=build/release/attngan, REF_DIR=../shared/reference,
#   PYTHON=/usr/bin/python3, OPENBLAS_DIR, CC
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
ATTNGAN=${ATTNGAN:-build/release/attngan}
REF_DIR=${REF_DIR:-../shared/reference}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=${BENCH_OUT:-build/bench}
THREADS=${BENCH_THREADS:-2}
CC=${CC:-gcc}
OPENBLAS_DIR=${OPENBLAS_DIR:-/usr/lib/$($CC -print-multiarch)/openblas-openmp}
QUICK=${BENCH_QUICK:-0}
BF16=${BENCH_BF16:-0}
mkdir -p "$OUT" || exit 1

# id:mode:branch:batch:our warm-up:our iters:ref warm-up:ref iters. Ours: 2 warm-up iterations (the
# first grows the step arenas, the second first-touches the folded block), then a median of 5; the
# reference's counts are those of RESULTS-cpu.md.
DEFAULT_ROWS="a1:sample:3:1:2:10:2:10 a2:sample:3:8:2:5:1:5 b1:gan_step:1:8:2:5:1:3 b2:gan_step:3:4:2:5:1:3 c1:damsm_step:3:8:2:5:1:3 c2:damsm_step:3:48:2:5:1:2"
if [ "$QUICK" = 1 ]; then
    ROWS=${BENCH_ROWS:-"a1 b1 c1"}
    : "${BENCH_WARMUP:=2}" "${BENCH_ITERS:=2}" "${BENCH_REF_WARMUP:=1}" "${BENCH_REF_ITERS:=1}"
else
    ROWS=${BENCH_ROWS:-"a1 a2 b1 b2 c1 c2"}
fi

[ -x "$ATTNGAN" ] || { echo "bench.sh: $ATTNGAN not built (run make)" >&2; exit 1; }
run_ref=0
case ${BENCH_REF:-auto} in
    0) ;;
    1) run_ref=1 ;;
    *) if [ -f "$REF_DIR/ref_attngan.py" ] && "$PYTHON" -c 'import torch' >/dev/null 2>&1; then run_ref=1; fi ;;
esac
[ $run_ref = 1 ] || echo "bench.sh: reference not run (BENCH_REF=${BENCH_REF:-auto}; needs $PYTHON with torch and $REF_DIR)" >&2

# key=value from a RESULT line
val() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
# awk arithmetic, "-" when an operand is missing or zero
ratio() { awk -v a="$1" -v b="$2" -v f="$3" 'BEGIN { if (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) print "-"; else printf f, a / b }'; }

# ---- the SGEMM ceiling with our OpenBLAS
PEAK=${BENCH_PEAK_GFLOPS:-}
if [ -z "$PEAK" ] && [ -f "$REF_DIR/gemm_peak.c" ]; then
    inc=/usr/include/$($CC -print-multiarch)/openblas-openmp
    if $CC -O2 -I"$inc" -o "$OUT/gemm_peak" "$REF_DIR/gemm_peak.c" -L"$OPENBLAS_DIR" -Wl,-rpath,"$OPENBLAS_DIR" -lopenblas -fopenmp \
        2>"$OUT/gemm_peak.build.txt"; then
        OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS "$OUT/gemm_peak" "$THREADS" >"$OUT/gemm_peak.txt" 2>&1
        PEAK=$(sed -n 's/^sgemm  4096 .*best *[0-9.]* ms *\([0-9.]*\) GFLOP\/s.*/\1/p' "$OUT/gemm_peak.txt")
    else
        echo "bench.sh: could not build gemm_peak against $OPENBLAS_DIR (see $OUT/gemm_peak.build.txt)" >&2
    fi
fi
PEAK=${PEAK:--}
# ---- the FMA ceiling (tools/fma_peak.c)
FMA_PEAK=${FMA_PEAK:-build/release/tools/fma_peak}
FMA=-
if [ -x "$FMA_PEAK" ]; then
    OMP_NUM_THREADS=$THREADS "$FMA_PEAK" "$THREADS" >"$OUT/fma_peak.txt" 2>&1
    FMA=$(sed -n 's/^fma_peak: .*: \([0-9.]*\) GFLOP\/s.*/\1/p' "$OUT/fma_peak.txt")
    FMA=${FMA:--}
fi
FMA_BITS=$(sed -n 's/^fma_peak: [0-9]* threads, \([0-9]*\)-bit.*/\1/p' "$OUT/fma_peak.txt" 2>/dev/null)
CORE=$(sed -n 's/^core: //p' "$OUT/gemm_peak.txt" 2>/dev/null | head -1)
CPU=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo 2>/dev/null | head -1)

load=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
{
    echo "# attngan bench: ours vs the PyTorch reference"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), ${CPU:-unknown CPU}, $(nproc) CPUs, threads $THREADS, load average before the run: $load."
    echo "SGEMM ceiling (gemm_peak.c with our OpenBLAS, $THREADS threads, 4096^3 best): $PEAK GFLOP/s (OpenBLAS core: ${CORE:-?}${OPENBLAS_CORETYPE:+, OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE})."
    echo "FMA ceiling (tools/fma_peak.c, $THREADS threads, ${FMA_BITS:-?}-bit FMAs): $FMA GFLOP/s."
    [ "$QUICK" = 1 ] && echo "BENCH_QUICK: few iterations, indicative only."
    echo
    if [ "$BF16" = 1 ]; then
        echo "| row | args | ours ms (median) | reference ms (median) | speed ratio (ref/ours) | ours GFLOP/iter | ref GFLOP/iter | ours GFLOP/s | % of SGEMM ceiling | % of FMA ceiling | ours peak RSS MiB | ref peak RSS MiB | memory ratio (ours/ref) | iters ours / ref | ours bf16 ms | bf16 speed ratio | bf16 memory ratio |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    else
        echo "| row | args | ours ms (median) | reference ms (median) | speed ratio (ref/ours) | ours GFLOP/iter | ref GFLOP/iter | ours GFLOP/s | % of SGEMM ceiling | % of FMA ceiling | ours peak RSS MiB | ref peak RSS MiB | memory ratio (ours/ref) | iters ours / ref |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    fi
} >"$OUT/results.md.tmp"

for spec in $ROWS; do
    case $spec in
        *:*) row=$spec ;;
        *) row=$(printf '%s\n' $DEFAULT_ROWS | grep "^$spec:" | head -1)
           [ -n "$row" ] || { echo "bench.sh: unknown row '$spec' (default rows: a1 a2 b1 b2 c1 c2)" >&2; exit 2; } ;;
    esac
    IFS=: read -r id mode branch batch w k rw rk <<EOF
$row
EOF
    w=${BENCH_WARMUP:-${w:-2}}; k=${BENCH_ITERS:-${k:-5}}
    rw=${BENCH_REF_WARMUP:-${rw:-1}}; rk=${BENCH_REF_ITERS:-${rk:-3}}
    args="--mode $mode --batch $batch --branch $branch"
    echo "== $id: $args" >&2

    ref_line="" lens=""
    if [ $run_ref = 1 ]; then
        (cd "$REF_DIR" && "$PYTHON" ref_attngan.py $args --warmup "$rw" --iters "$rk" --threads "$THREADS") >"$OUT/$id.ref.txt" 2>&1
        ref_line=$(grep '^RESULT ' "$OUT/$id.ref.txt" | tail -1)
        [ -n "$ref_line" ] || echo "bench.sh: $id: the reference gave no RESULT line (see $OUT/$id.ref.txt)" >&2
        # the reference's caption lengths, so both runs see the same shapes
        lens=$(sed -n 's/^# cap_lens \[\([0-9, ]*\)\].*/\1/p' "$OUT/$id.ref.txt" | tr -d ' ')
        echo "   reference: $ref_line" >&2
    fi
    prof=""
    [ "${BENCH_PROFILE:-0}" = 1 ] && prof=--profile
    "$ATTNGAN" bench $args --warmup "$w" --iters "$k" --threads "$THREADS" ${lens:+--cap-lens "$lens"} $prof >"$OUT/$id.ours.txt" 2>&1
    ours_line=$(grep '^RESULT ' "$OUT/$id.ours.txt" | tail -1)
    [ -n "$ours_line" ] || echo "bench.sh: $id: attngan bench gave no RESULT line (see $OUT/$id.ours.txt)" >&2
    echo "   ours:      $ours_line" >&2

    o_ms=$(val "$ours_line" median_ms); r_ms=$(val "$ref_line" median_ms)
    o_gf=$(val "$ours_line" gflops); o_fl=$(val "$ours_line" gflop_iter); r_fl=$(val "$ref_line" gflop_iter)
    o_rss=$(val "$ours_line" rss_mb); r_rss=$(val "$ref_line" rss_mb)
    speed=$(ratio "$r_ms" "$o_ms" '%.2f')
    pct=$(ratio "$o_gf" "$PEAK" '%.3f' | awk '{ if ($1 == "-") print "-"; else printf "%.0f%%", $1 * 100 }')
    fpct=$(ratio "$o_gf" "$FMA" '%.3f' | awk '{ if ($1 == "-") print "-"; else printf "%.0f%%", $1 * 100 }')
    mem=$(ratio "$o_rss" "$r_rss" '%.2f')
    rcol="$rw+$rk"
    [ $run_ref = 1 ] || rcol="-"
    extra=""
    if [ "$BF16" = 1 ]; then
        "$ATTNGAN" bench $args --bf16 --warmup "$w" --iters "$k" --threads "$THREADS" ${lens:+--cap-lens "$lens"} $prof >"$OUT/$id.bf16.txt" 2>&1
        bf_line=$(grep '^RESULT ' "$OUT/$id.bf16.txt" | tail -1)
        [ -n "$bf_line" ] || echo "bench.sh: $id: attngan bench --bf16 gave no RESULT line (see $OUT/$id.bf16.txt)" >&2
        echo "   ours bf16: $bf_line" >&2
        b_ms=$(val "$bf_line" median_ms); b_rss=$(val "$bf_line" rss_mb)
        extra=" ${b_ms:--} | $(ratio "$r_ms" "$b_ms" '%.2f') | $(ratio "$b_rss" "$r_rss" '%.2f') |"
    fi
    echo "| $id | \`$args\` | ${o_ms:--} | ${r_ms:--} | $speed | ${o_fl:--} | ${r_fl:--} | ${o_gf:--} | $pct | $fpct | ${o_rss:--} | ${r_rss:--} | $mem | $w+$k / $rcol |$extra" >>"$OUT/results.md.tmp"
done
{
    echo
    echo "Speed ratio > 1: ours is faster. Memory ratio > 1: ours uses more. Iterations: warm-up + timed."
    [ "$BF16" = 1 ] && echo "bf16 columns: ours with --bf16 (bf16 convolution operands, fp32 accumulation), against the same fp32 reference run."
    echo "Full outputs: $OUT/<row>.ours.txt and <row>.ref.txt."
} >>"$OUT/results.md.tmp"
mv "$OUT/results.md.tmp" "$OUT/results.md"
cat "$OUT/results.md"
