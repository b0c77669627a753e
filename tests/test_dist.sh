#!/bin/sh
# test_dist.sh: gradient accumulation (EXTRA.GRAD_ACCUM) and data-parallel training over MPI
# (docs/DISTRIBUTED.md), on real birds with tiny networks (tests/configs/tiny_*.yml):
#   - one process accumulating 2 micro-batches: 2 steps + --resume + 2 = 4 straight, bit for bit
#     (pretrain and train), and its checkpoint keeps both lanes' random streams;
# then with 2 ranks on this machine (mpirun --oversubscribe):
#   - `mpirun -np 2` (batch B each) ends with the same bits as one process accumulating the same
#     two micro-batches of B in the same order (EXTRA.GRAD_ACCUM 2): pretrain (the seed's ZSL and
#     GAZSL's: word level, WGAN-GP, 2 critic steps, the pivot), pretrain on cached trunk features
#     (a packed copy of the data), and train (ZSL.GAN_PHASE, DiffAugment); every weight, Adam
#     state, batch norm statistic and count;
#   - `mpirun -np 1` trains exactly as a plain process; 2 ranks on the host-memory device (the GPU
#     path's exchange through host memory) end as 2 ranks on the CPU;
#   - with ATTNGAN_DIST_CHECK=1 the ranks compare a hash of every network's weights after every
#     step, and the run fails if any rank differs: 2 ranks of pretrain and of train pass it;
#   - a 2-rank run stopped and resumed with 2 ranks ends bit-identical to a straight one, and so
#     does one whose whole job (mpirun and both ranks) was killed with SIGKILL;
#   - rank 0 alone writes (one TensorBoard event file, one row per step in losses.csv);
#   - a checkpoint of 2 ranks is refused by a plain process, naming the number of ranks;
#   - EXTRA.SYNC_BN: batch norm on 2 ranks of 2 rows = on the whole batch (test_syncbn under
#     mpirun), and a GAN run with it keeps the ranks' weights identical.
# Skips visibly without ../shared/data; the MPI part skips visibly without mpirun or with a binary
# built without MPI. The ASan build (build/san) runs a lighter set and says what it leaves out.
BIN=${ATTNGAN:-build/release/attngan}
DATA=${ATTNGAN_DATA:-../shared/data}/birds
pass=0; fail=0; skip=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1"; fail=$((fail + 1)); }
done_() { echo "test_dist: $pass passed, $fail failed, $skip skipped"; echo "RESULT test_dist passed=$pass failed=$fail skipped=$skip"; [ $fail -eq 0 ]; exit $?; }
if [ ! -f "$DATA/train/filenames.pickle" ]; then echo "SKIP test_dist: no $DATA (set ATTNGAN_DATA)"; skip=1; done_; fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# the sanitizer build (build/san: 5 to 10 times slower) runs a lighter set; the release build all
FULL=1
case "$BIN" in */san/*) FULL=0 ;; esac
full() { [ "$FULL" = 1 ]; }
lite() { echo "SKIP $1 (the ASan build's lighter set; the release build runs it)"; skip=$((skip + 1)); }
same() { # same WHAT DIR_A DIR_B FILE...: every FILE bit-identical
    what=$1; a=$2; b=$3; shift 3; bad=""
    for f in "$@"; do cmp -s "$a/$f" "$b/$f" || bad="$bad $f"; done
    if [ -z "$bad" ]; then ok "$what"; else ko "$what: differ:$bad"; fi
}
ENC="text_encoder.safetensors image_encoder.safetensors zsl_d.safetensors"
P="--cfg tests/configs/tiny_damsm.yml --data $DATA --set TRAIN.BATCH_SIZE=2 --threads 1 --quiet"
CK="netG.safetensors netD0.safetensors netD1.safetensors netG_ema.safetensors optG.adam.safetensors optD1.adam.safetensors"
ck() { for f in $CK; do printf 'checkpoints/step_%s/%s ' "$1" "$f"; done; }
# ---- one process, 2 micro-batches per step
"$BIN" pretrain $P --out "$T/p1" --max-steps 3 >"$T/p1.log" 2>&1 || { ko "plain pretrain"; cat "$T/p1.log"; }
"$BIN" pretrain $P --set EXTRA.GRAD_ACCUM=2 --out "$T/pa" --max-steps 4 >"$T/pa.log" 2>&1 &&
    grep -q "gradient accumulation: 2 micro-batches of 2" "$T/pa.log" || { ko "pretrain with EXTRA.GRAD_ACCUM 2"; cat "$T/pa.log"; }
"$BIN" pretrain $P --set EXTRA.GRAD_ACCUM=2 --out "$T/pb" --max-steps 2 >"$T/pb.log" 2>&1 || ko "pretrain with EXTRA.GRAD_ACCUM 2, 2 steps"
"$BIN" pretrain --resume "$T/pb" --data "$DATA" --threads 1 --quiet --max-steps 4 >>"$T/pb.log" 2>&1 || { ko "its resume"; cat "$T/pb.log"; }
same "pretrain, 2 micro-batches per step: 2 steps + resume + 2 = 4 straight, bit for bit" "$T/pa" "$T/pb" $ENC \
    checkpoints/step_4/opt_text_encoder.adam.safetensors checkpoints/step_4/opt_zsl_d.adam.safetensors
grep -q '"rng_streams"' "$T/pa/checkpoints/step_4/state.json" && grep -q '"GRAD_ACCUM":[[:space:]]*2' "$T/pa/config.json" &&
    ok "the checkpoint keeps both lanes' random streams; config.json records GRAD_ACCUM" || ko "state.json/config.json of GRAD_ACCUM 2"
cmp -s "$T/pa/text_encoder.safetensors" "$T/p1/text_encoder.safetensors" && ko "GRAD_ACCUM 2 trained as one micro-batch" ||
    ok "GRAD_ACCUM 2 learns from twice the data: its encoders differ from one micro-batch's"
G="--cfg tests/configs/tiny_gan.yml --data $DATA --set TRAIN.NET_E=$T/p1/text_encoder.safetensors --threads 1 --quiet"
GZ="$G --set ZSL.GAN_PHASE=True --set EXTRA.DIFFAUGMENT=color,translation,cutout"
"$BIN" train $GZ --set EXTRA.GRAD_ACCUM=2 --out "$T/ga" --max-steps 4 >"$T/ga.log" 2>&1 || { ko "train with EXTRA.GRAD_ACCUM 2"; cat "$T/ga.log"; }
"$BIN" train $GZ --set EXTRA.GRAD_ACCUM=2 --out "$T/gb" --max-steps 2 >"$T/gb.log" 2>&1 || ko "train with EXTRA.GRAD_ACCUM 2, 2 steps"
"$BIN" train --resume "$T/gb" --data "$DATA" --threads 1 --quiet --max-steps 4 >>"$T/gb.log" 2>&1 || { ko "its resume"; cat "$T/gb.log"; }
same "train (ZSL.GAN_PHASE, DiffAugment), 2 micro-batches per step: 2 steps + resume + 2 = 4 straight, bit for bit" "$T/ga" "$T/gb" \
    $(ck 4) checkpoints/step_4/text_encoder.safetensors checkpoints/step_4/opt_zsl_d.adam.safetensors

# ---- 2 ranks
if ! command -v mpirun >/dev/null 2>&1; then echo "SKIP test_dist (MPI part): no mpirun (apt-get install openmpi-bin libopenmpi-dev)"; skip=1; done_; fi
if ! "$BIN" version | grep -q "MPI built in"; then echo "SKIP test_dist (MPI part): $BIN was built without MPI (make MPI=1 with libopenmpi-dev)"; skip=1; done_; fi
# Open MPI refuses root unless told; its own allocations are not ours to check for leaks
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
MPI="mpirun -np"
if full; then
$MPI 1 "$BIN" pretrain $P --out "$T/pm1" --max-steps 3 >"$T/pm1.log" 2>&1 || { ko "mpirun -np 1 pretrain"; cat "$T/pm1.log"; }
same "pretrain: mpirun -np 1 is a plain process, bit for bit" "$T/p1" "$T/pm1" $ENC
else lite "mpirun -np 1 pretrain"; fi
ATTNGAN_DIST_CHECK=1 $MPI 2 "$BIN" pretrain $P --out "$T/p2" --max-steps 4 >"$T/p2.log" 2>&1 &&
    grep -q "data-parallel: 2 ranks" "$T/p2.log" && ok "pretrain on 2 ranks: the same weights on both after every step (ATTNGAN_DIST_CHECK)" ||
    { ko "pretrain on 2 ranks"; cat "$T/p2.log"; }
same "pretrain: 2 ranks of batch 2 = one process accumulating the same 2 micro-batches, bit for bit" "$T/p2" "$T/pa" $ENC \
    checkpoints/step_4/opt_text_encoder.adam.safetensors checkpoints/step_4/opt_image_encoder.adam.safetensors checkpoints/step_4/opt_zsl_d.adam.safetensors
if full; then
# the device path (host-memory device: gradients downloaded, reduced, uploaded)
$MPI 2 "$BIN" pretrain $P --device hostdev --out "$T/p2h" --max-steps 4 >"$T/p2h.log" 2>&1 || { ko "pretrain on 2 ranks, --device hostdev"; cat "$T/p2h.log"; }
same "pretrain on 2 ranks with --device hostdev (the device path's exchange) = on the CPU, bit for bit" "$T/p2" "$T/p2h" $ENC
else lite "2 ranks on the host-memory device"; fi
n=$(ls "$T/p2/tensorboard" | wc -l); rows=$(($(wc -l < "$T/p2/losses.csv") - 1))
[ "$n" -eq 1 ] && [ "$rows" -eq 4 ] && ok "pretrain on 2 ranks: rank 0 alone logs (1 event file, 4 rows)" || ko "pretrain logs: $n event files, $rows rows"
grep -q '"world_size":[[:space:]]*2' "$T/p2/checkpoints/step_4/state.json" && grep -q '"rng_streams"' "$T/p2/checkpoints/step_4/state.json" &&
    ok "the checkpoint records 2 ranks and both random streams" || ko "state.json: no world_size 2 / rng_streams"
if full; then
Z="--set ZSL.WORD_LEVEL=True --set ZSL.ADV_LOSS=wgan_gp --set ZSL.CRITIC_STEPS=2 --set ZSL.PIVOT_LAMBDA=1"
$MPI 2 "$BIN" pretrain $P $Z --out "$T/pz2" --max-steps 3 >"$T/pz2.log" 2>&1 || { ko "pretrain with GAZSL's options on 2 ranks"; cat "$T/pz2.log"; }
"$BIN" pretrain $P $Z --set EXTRA.GRAD_ACCUM=2 --out "$T/pza" --max-steps 3 >"$T/pza.log" 2>&1 || { ko "the same accumulated"; cat "$T/pza.log"; }
same "pretrain with word-level ZSL, WGAN-GP, 2 critic steps and the pivot: 2 ranks = 2 micro-batches, bit for bit" "$T/pz2" "$T/pza" \
    $ENC zsl_dw.safetensors checkpoints/step_3/opt_zsl_d.adam.safetensors checkpoints/step_3/opt_zsl_dw.adam.safetensors
# cached trunk features, on a packed copy of 24 photos per split
if "$BIN" data pack --data "$DATA" --out "$T/pk" --max 24 --size 76 >"$T/pk.log" 2>&1; then
    C="--cfg tests/configs/tiny_damsm.yml --data $T/pk --set TRAIN.BATCH_SIZE=2 --threads 1 --quiet --set EXTRA.CACHE_TRUNK_FEATURES=True --set EXTRA.CACHE_IMAGE_SIZE=64"
    $MPI 2 "$BIN" pretrain $C --out "$T/pc2" --max-steps 3 >"$T/pc2.log" 2>&1 || { ko "cached pretrain on 2 ranks"; cat "$T/pc2.log"; }
    "$BIN" pretrain $C --set EXTRA.GRAD_ACCUM=2 --out "$T/pca" --max-steps 3 >"$T/pca.log" 2>&1 || { ko "the same accumulated"; cat "$T/pca.log"; }
    same "pretrain on cached trunk features: 2 ranks = 2 micro-batches, bit for bit" "$T/pc2" "$T/pca" $ENC checkpoints/step_3/opt_text_encoder.adam.safetensors
    [ -d "$T/pc2/cache" ] && [ "$(ls "$T/pc2/cache" | wc -l)" -ge 2 ] && ok "rank 0 computed the cache, the other read it" || ko "cache: $(ls "$T/pc2/cache")"
else ko "data pack: $(cat "$T/pk.log")"; fi
else lite "GAZSL options and cached features on 2 ranks"; fi
"$BIN" pretrain --resume "$T/p2" --data "$DATA" --threads 1 --quiet --max-steps 6 >"$T/p2c.log" 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "written by a run of 2 ranks, this one has 1" "$T/p2c.log" && ok "a plain process refuses a 2-rank checkpoint, naming the ranks" ||
    ko "resume with another world size: rc $rc: $(cat "$T/p2c.log")"
# ---- train (GAN), on the plain pretraining's encoders
if full; then
"$BIN" train $G --out "$T/g1" --max-steps 2 >"$T/g1.log" 2>&1 || { ko "plain train"; cat "$T/g1.log"; }
$MPI 1 "$BIN" train $G --out "$T/gm1" --max-steps 2 >"$T/gm1.log" 2>&1 || { ko "mpirun -np 1 train"; cat "$T/gm1.log"; }
same "train: mpirun -np 1 is a plain process, bit for bit" "$T/g1" "$T/gm1" netG.safetensors $(ck 2)
else lite "mpirun -np 1 train"; fi
ATTNGAN_DIST_CHECK=1 $MPI 2 "$BIN" train $GZ --out "$T/g2z" --max-steps 4 >"$T/g2z.log" 2>&1 &&
    ok "train (ZSL.GAN_PHASE, DiffAugment) on 2 ranks: the same weights on both after every step" || { ko "train on 2 ranks"; cat "$T/g2z.log"; }
same "train (ZSL.GAN_PHASE, DiffAugment): 2 ranks = one process accumulating the same 2 micro-batches, bit for bit" "$T/g2z" "$T/ga" \
    netG.safetensors $(ck 4) checkpoints/step_4/text_encoder.safetensors checkpoints/step_4/zsl_d.safetensors checkpoints/step_4/opt_zsl_g.adam.safetensors
$MPI 2 "$BIN" train $G --out "$T/g2" --max-steps 6 >"$T/g2.log" 2>&1 || { ko "train on 2 ranks, 6 steps"; cat "$T/g2.log"; }
# synchronised batch norm: the op on 2 ranks against the whole batch, then a GAN run
SB=$(dirname "$BIN")/tests/test_syncbn
if [ -x "$SB" ]; then
    $MPI 2 "$SB" >"$T/sb.log" 2>&1 && grep -q "RESULT test_syncbn passed=7 failed=0" "$T/sb.log" &&
        ok "SyncBatchNorm on 2 ranks = batch norm of the whole batch (test_syncbn: output, input gradient, running statistics, gamma/beta)" ||
        { ko "test_syncbn on 2 ranks"; cat "$T/sb.log"; }
else echo "SKIP test_syncbn on 2 ranks: no $SB"; skip=$((skip + 1)); fi
if full; then
ATTNGAN_DIST_CHECK=1 $MPI 2 "$BIN" train $G --set EXTRA.SYNC_BN=True --out "$T/gs" --max-steps 6 >"$T/gs.log" 2>&1 &&
    grep -q "EXTRA.SYNC_BN: batch norm with the statistics of all 2" "$T/gs.log" &&
    ok "train with EXTRA.SYNC_BN on 2 ranks: the same weights on both after every step" || { ko "train with SYNC_BN"; cat "$T/gs.log"; }
cmp -s "$T/gs/netG.safetensors" "$T/g2/netG.safetensors" && ko "SYNC_BN changed nothing" || ok "... and its G differs from per-rank statistics"
else lite "a GAN run with SYNC_BN"; fi
if full; then
$MPI 2 "$BIN" train $G --out "$T/g2b" --max-steps 2 >"$T/g2b.log" 2>&1 || ko "train on 2 ranks, 2 steps"
$MPI 2 "$BIN" train --resume "$T/g2b" --data "$DATA" --threads 1 --quiet --max-steps 6 >>"$T/g2b.log" 2>&1 || { ko "train resume on 2 ranks"; cat "$T/g2b.log"; }
same "train on 2 ranks: 2 steps + resume + 4 = 6 straight, bit for bit" "$T/g2" "$T/g2b" netG.safetensors $(ck 6)
else lite "2-rank train resume"; fi
# SIGKILL the whole job (mpirun and both ranks) once the step-2 checkpoint exists, then resume
# (pkill's pattern names this test's own temporary directory: nothing else matches it)
setsid $MPI 2 "$BIN" train $G --out "$T/gk" --max-steps 6 >"$T/gk.log" 2>&1 &
job=$!
i=0
while [ ! -e "$T/gk/checkpoints/step_2/state.json" ] && [ $i -lt 600 ] && kill -0 $job 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill -KILL -$job 2>/dev/null
pkill -KILL -f -- "--out $T/gk" 2>/dev/null # the ranks (Open MPI gives them their own process groups)
wait $job 2>/dev/null
sleep 0.5
pgrep -f -- "--out $T/gk" >/dev/null && ko "ranks of the killed job survive: $(pgrep -af -- "--out $T/gk")"
last=$(cat "$T/gk/checkpoints/latest" 2>/dev/null)
case "$last" in step_2|step_4) ok "the job was killed mid-run (its latest checkpoint: $last)";; *) ko "the kill came too late: latest is '$last'";; esac
$MPI 2 "$BIN" train --resume "$T/gk" --data "$DATA" --threads 1 --quiet --max-steps 6 >>"$T/gk.log" 2>&1 || { ko "resume after SIGKILL"; tail -5 "$T/gk.log"; }
same "train on 2 ranks killed (SIGKILL, latest: $last) and resumed ends bit-identical to a straight run" "$T/g2" "$T/gk" netG.safetensors $(ck 6)
done_
