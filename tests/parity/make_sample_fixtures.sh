#!/bin/sh
# make_sample_fixtures.sh: rewrites the committed parity fixtures tests/fixtures/parity/*.safetensors,
# the sample-mode dumps (text encoder + G, no Inception trunk) that `make test` replays even in a
# fresh clone without ../shared. Needs Debian's python3-torch and the reference in
# ../shared/reference (or $ATTNGAN_REFERENCE). Seed 1234, the tiny sizes of make_dumps.sh:
#   sample_b1_fixture  1 stage,  batch 4 (0.6 MB)
#   sample_b2_fixture  2 stages, batch 2: the seed's attention mask across the batch (1.2 MB)
#   sample_b3_fixture  3 stages, batch 1 (2.1 MB)
set -e
OUT=$(dirname "$0")/../fixtures/parity
REF=${ATTNGAN_REFERENCE:-$(dirname "$0")/../../../shared/reference}
PY=${PYTHON:-/usr/bin/python3}
[ -f "$REF/ref_attngan.py" ] || { echo "make_sample_fixtures: no ref_attngan.py in $REF (set ATTNGAN_REFERENCE)"; exit 1; }
TINY="--n-words 60 --words-num 12 --zsl-h 64 --zsl-rdc 32 --num-classes 10 --emb-dim 16 --word-dim 16 --gf-dim 4 --df-dim 4 --zsl-z 8 --r-num 1"
mkdir -p "$OUT"
for spec in "sample_b1_fixture:--branch 1 --batch 4" "sample_b2_fixture:--branch 2 --batch 2" "sample_b3_fixture:--branch 3 --batch 1"; do
    name=${spec%%:*}
    # shellcheck disable=SC2086
    "$PY" "$REF/ref_attngan.py" --seed 1234 --threads 1 --mode sample ${spec#*:} $TINY --dump-safetensors "$OUT/$name.safetensors" >/dev/null
    echo "wrote $OUT/$name.safetensors ($(wc -c <"$OUT/$name.safetensors") bytes)"
done
