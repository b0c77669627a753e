#!/bin/sh
# make_dumps.sh [OUTDIR]: writes the small PyTorch reference dumps that `make test` replays with
# `attngan parity` (default OUTDIR build/dumps). Needs Debian's python3-torch and the reference
# in ../shared/reference (or $ATTNGAN_REFERENCE). The fixed dumps use SEED (default 1234); two
# more use fresh seeds on every run (below).
set -e
OUT=${1:-build/dumps}
REF=${ATTNGAN_REFERENCE:-$(dirname "$0")/../../../shared/reference}
PY=${PYTHON:-/usr/bin/python3}
SEED=${SEED:-1234}
[ -f "$REF/ref_attngan.py" ] || { echo "SKIP make_dumps: no ref_attngan.py in $REF (set ATTNGAN_REFERENCE); the parity tests will skip"; exit 0; }
"$PY" -c "import torch" 2>/dev/null || { echo "SKIP make_dumps: $PY has no torch (Debian python3-torch); the parity tests will skip"; exit 0; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SMALL="--n-words 60 --words-num 12 --zsl-h 64 --zsl-rdc 32 --num-classes 10"
TINY="$SMALL --emb-dim 16 --word-dim 16 --gf-dim 4 --df-dim 4 --zsl-z 8 --r-num 1"
run() { # name, args...
    name=$1; shift
    if [ -f "$OUT/$name.safetensors" ] && [ -z "$FORCE" ]; then echo "have $OUT/$name.safetensors"; return; fi
    echo "dump $name: $*"
    "$PY" "$REF/ref_attngan.py" --seed "$SEED" --threads 2 "$@" --dump-safetensors "$OUT/$name.safetensors" >"$OUT/$name.log" 2>&1 \
        || { cat "$OUT/$name.log"; exit 1; }
}
# gan_step first: it writes the calibrated trunk file the others load
run gan_b3_small   --mode gan_step --branch 3 --batch 4 $TINY --no-dropout --trunk-file "$OUT/trunk.safetensors"
run gan_b1_small   --mode gan_step --branch 1 --batch 4 $TINY --no-dropout --trunk-file "$OUT/trunk.safetensors"
run gan_b2_small_cm --mode gan_step --branch 2 --batch 4 $TINY --no-dropout --correct-mask --trunk-file "$OUT/trunk.safetensors"
run damsm_small    --mode damsm_step --batch 4 $TINY --no-dropout --damsm-size 64 --trunk-file "$OUT/trunk.safetensors"
run damsm_small_drop --mode damsm_step --batch 4 $TINY --damsm-size 64 --trunk-file "$OUT/trunk.safetensors"
run sample_b1_small --mode sample --branch 1 --batch 4 $TINY
run sample_b2_small --mode sample --branch 2 --batch 4 $TINY
run sample_b3_small --mode sample --branch 3 --batch 4 $TINY
run sample_b3_small_cm --mode sample --branch 3 --batch 4 $TINY --correct-mask
# Fresh seeds on every run (issue 21): passing must not depend on the fixed seed above. Two seeds
# from /dev/urandom (printed; FRESH_SEEDS="a b" repeats a run, FRESH_SEEDS=none skips): a gan_step
# at 3 stages and a damsm_step, written as fresh_*_s<seed>.safetensors and replayed by
# run_parity.sh with the rest.
rm -f "$OUT"/fresh_*.safetensors "$OUT"/fresh_*.log
if [ "${FRESH_SEEDS:-}" != none ]; then
    set -- ${FRESH_SEEDS:-$(( $(od -An -N4 -tu4 /dev/urandom) % 1000000 )) $(( $(od -An -N4 -tu4 /dev/urandom) % 1000000 ))}
    echo "make_dumps: fresh seeds $1 $2 (FRESH_SEEDS=\"$1 $2\" repeats them)"
    fixed=$SEED
    SEED=$1; run "fresh_gan_b3_s$1" --mode gan_step --branch 3 --batch 4 $TINY --no-dropout --trunk-file "$OUT/trunk.safetensors"
    SEED=$2; run "fresh_damsm_s$2" --mode damsm_step --batch 4 $TINY --no-dropout --damsm-size 64 --trunk-file "$OUT/trunk.safetensors"
    SEED=$fixed
fi
ls -la "$OUT"
