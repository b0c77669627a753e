#!/bin/sh
# test_resume.sh: the training programs on real birds with tiny networks: N steps straight and
# N/2 + --resume + N/2 must give bit-identical weights (pretrain and train), a bad config key is a
# clear error, and the run writes its logs, samples and checkpoints. Skips without ../shared/data.
BIN=${ATTNGAN:-build/release/attngan}
DATA=${ATTNGAN_DATA:-../shared/data}/birds
pass=0; fail=0; skip=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1"; fail=$((fail + 1)); }
if [ ! -f "$DATA/train/filenames.pickle" ]; then
    echo "SKIP test_resume: no $DATA (set ATTNGAN_DATA)"
    echo "RESULT test_resume passed=0 failed=0 skipped=1"
    exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
P="--cfg tests/configs/tiny_damsm.yml --data $DATA --set TRAIN.BATCH_SIZE=2 --threads 2 --quiet"
"$BIN" pretrain $P --out "$T/pa" --max-steps 4 >"$T/pa.log" 2>&1 || { ko "pretrain 4 steps"; cat "$T/pa.log"; }
"$BIN" pretrain $P --out "$T/pb" --max-steps 2 >"$T/pb.log" 2>&1 || ko "pretrain 2 steps"
"$BIN" pretrain --resume "$T/pb" --data "$DATA" --threads 2 --max-steps 4 --quiet >>"$T/pb.log" 2>&1 || ko "pretrain resume"
for f in text_encoder image_encoder zsl_d; do
    if cmp -s "$T/pa/$f.safetensors" "$T/pb/$f.safetensors"; then ok "pretrain resume: $f bit-identical"; else ko "pretrain resume: $f differs"; fi
done
G="--cfg tests/configs/tiny_gan.yml --data $DATA --set TRAIN.NET_E=$T/pa/text_encoder.safetensors --threads 2 --quiet"
"$BIN" train $G --out "$T/ga" --max-steps 4 >"$T/ga.log" 2>&1 || { ko "train 4 steps"; cat "$T/ga.log"; }
"$BIN" train $G --out "$T/gb" --max-steps 2 >"$T/gb.log" 2>&1 || ko "train 2 steps"
"$BIN" train --resume "$T/gb" --data "$DATA" --threads 2 --max-steps 4 --quiet >>"$T/gb.log" 2>&1 || ko "train resume"
for f in netG netG_ema netD0 netD1 optG.adam; do
    if cmp -s "$T/ga/checkpoints/step_4/$f.safetensors" "$T/gb/checkpoints/step_4/$f.safetensors"; then ok "train resume: $f bit-identical"
    else ko "train resume: $f differs"; fi
done
[ -s "$T/ga/samples/step_4.png" ] && [ -s "$T/ga/samples/step_4_att.png" ] && [ -s "$T/ga/losses.csv" ] && ok "samples and logs written" || ko "samples/logs missing"
ls "$T/ga/tensorboard/"events.out.tfevents.* >/dev/null 2>&1 && ok "tensorboard file" || ko "no tensorboard file"
if "$BIN" train $G --out "$T/gc" --set TRAIN.BATCH_SZE=3 >"$T/gc.log" 2>&1; then ko "unknown key accepted"
elif grep -q "TRAIN.BATCH_SZE" "$T/gc.log"; then ok "unknown key named"; else ko "unknown key message: $(cat "$T/gc.log")"; fi
echo "test_resume: $pass passed, $fail failed, $skip skipped"
echo "RESULT test_resume passed=$pass failed=$fail skipped=$skip"
[ $fail -eq 0 ]
