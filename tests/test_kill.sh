#!/bin/sh
# test_kill.sh: training survives SIGKILL at any moment (issue 21). `attngan train` (the tiny GAN,
# a checkpoint after every step) and `attngan pretrain` (on a packed copy of 24 photos per split, a
# checkpoint every epoch of 12 steps) are each killed with SIGKILL 20 times: at random moments, and
# every fourth time just as a checkpoint's temporary directory appears (in the middle of writing
# it). After each kill the run is started again: --resume when it has a checkpoint, else afresh
# with --force. It must then finish, and end with networks and optimizer states bit-identical to a
# run that was never killed. The random delays come from a fixed seed (KILL_SEED, default 1), so a
# failure can be replayed. Skips visibly without ../shared/data.
BIN=${ATTNGAN:-build/release/attngan}
DATA=${ATTNGAN_DATA:-../shared/data}/birds
SCALE=1
case "$BIN" in */san/*) KILLS=${KILLS:-8}; SCALE=6 ;; esac # the ASan build (5 to 10 times slower): fewer kills, later
KILLS=${KILLS:-20}
pass=0; fail=0; skip=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1"; fail=$((fail + 1)); }
done_() { echo "test_kill: $pass passed, $fail failed, $skip skipped"; echo "RESULT test_kill passed=$pass failed=$fail skipped=$skip"; [ $fail -eq 0 ]; exit $?; }
if [ ! -f "$DATA/train/filenames.pickle" ]; then echo "SKIP test_kill: no $DATA (set ATTNGAN_DATA)"; skip=1; done_; fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# delay K: the K-th random delay in seconds (0.05 .. 1.5, times SCALE), from KILL_SEED
delay() { awk -v s="${KILL_SEED:-1}" -v k="$1" -v f="$SCALE" 'BEGIN { srand(s * 1000 + k); printf "%.2f", (0.05 + rand() * 1.45) * f }'; }
# start COMMAND ARGS...: becomes attngan (exec: call it in a subshell, whose pid is then attngan's),
# with --resume once the run has a checkpoint, else afresh
start() {
    if [ -f "$out/checkpoints/latest" ]; then
        exec "$BIN" "$1" --resume "$out" --data "$DATA" --threads 1 --quiet --max-steps "$steps" >>"$out.log" 2>&1
    else
        exec "$BIN" "$@" --out "$out" --force --max-steps "$steps" >>"$out.log" 2>&1
    fi
}
# chaos NAME OUT STEPS COMMAND ARGS...: runs attngan COMMAND ARGS --out OUT --max-steps STEPS, killing
# it KILLS times, then to the end
chaos() {
    name=$1; out=$2; steps=$3; shift 3
    mid=0; k=1
    while [ $k -le $KILLS ]; do
        (start "$@") &
        pid=$!
        if [ $((k % 4)) -eq 0 ]; then # wait for a checkpoint being written, then kill
            i=0
            while [ $i -lt 6000 ] && kill -0 $pid 2>/dev/null && ! ls -a "$out/checkpoints" 2>/dev/null | grep -q '^\.tmp_step_'; do
                sleep 0.01; i=$((i + 1))
            done
            ls -a "$out/checkpoints" 2>/dev/null | grep -q '^\.tmp_step_' && mid=$((mid + 1))
        else
            sleep "$(delay $k)"
        fi
        kill -KILL $pid 2>/dev/null
        wait $pid 2>/dev/null
        [ "$(cat "$out/checkpoints/latest" 2>/dev/null)" = "step_$steps" ] && break # it ended first
        k=$((k + 1))
    done
    (start "$@") || { ko "$name: the last start"; tail -5 "$out.log"; }
    echo "$name: $((k - 1)) kills before the end, $mid of them while a checkpoint was being written"
    [ $((k - 1)) -ge $KILLS ] && [ $mid -ge 1 ] && ok "$name: killed $KILLS times ($mid while writing a checkpoint) and resumed to the end" ||
        ko "$name: only $((k - 1)) kills landed before the run ended ($mid mid-checkpoint): lengthen the run"
}
same() { # same WHAT A B FILE...
    what=$1; a=$2; b=$3; shift 3; bad=""
    for f in "$@"; do cmp -s "$a/$f" "$b/$f" || bad="$bad $f"; done
    [ -z "$bad" ] && ok "$what" || ko "$what: differ:$bad"
}
P="--cfg tests/configs/tiny_damsm.yml --data $DATA --set TRAIN.BATCH_SIZE=2 --threads 1 --quiet"
"$BIN" pretrain $P --out "$T/enc" --max-steps 2 >"$T/enc.log" 2>&1 || { ko "tiny pretraining"; cat "$T/enc.log"; done_; }
# ---- train: 30 steps, a checkpoint (and samples) after every step
G="--cfg tests/configs/tiny_gan.yml --data $DATA --set TRAIN.NET_E=$T/enc/text_encoder.safetensors --threads 1 --quiet --set TRAIN.SNAPSHOT_INTERVAL=1"
"$BIN" train $G --out "$T/gref" --max-steps 30 >"$T/gref.log" 2>&1 || { ko "the uninterrupted train run"; cat "$T/gref.log"; }
chaos "train" "$T/gk" 30 train $G
CK="netG.safetensors netG_ema.safetensors netD0.safetensors netD1.safetensors optG.adam.safetensors optD0.adam.safetensors optD1.adam.safetensors"
ck() { for f in $CK; do printf 'checkpoints/step_%s/%s ' "$1" "$f"; done; }
same "train killed $KILLS times ends bit-identical to an uninterrupted run" "$T/gref" "$T/gk" netG.safetensors $(ck 30)
# ---- pretrain: 3 epochs of 12 steps on 24 packed photos, a checkpoint after each
if "$BIN" data pack --data "$DATA" --out "$T/pk" --max 24 --size 76 >"$T/pk.log" 2>&1; then
    DATA0=$DATA
    DATA=$T/pk
    Q="--cfg tests/configs/tiny_damsm.yml --data $DATA --set TRAIN.BATCH_SIZE=2 --threads 1 --quiet --set TRAIN.MAX_EPOCH=3"
    "$BIN" pretrain $Q --out "$T/pref" --max-steps 36 >"$T/pref.log" 2>&1 || { ko "the uninterrupted pretraining"; cat "$T/pref.log"; }
    chaos "pretrain" "$T/pkill" 36 pretrain $Q
    same "pretrain killed $KILLS times ends bit-identical to an uninterrupted run" "$T/pref" "$T/pkill" text_encoder.safetensors \
        image_encoder.safetensors zsl_d.safetensors checkpoints/step_36/opt_text_encoder.adam.safetensors checkpoints/step_36/opt_zsl_d.adam.safetensors
    DATA=$DATA0
else ko "data pack: $(cat "$T/pk.log")"; fi
done_
