#!/bin/sh
# test_zsl_runs.sh: the ZSL options of docs/ZSL_VARIANTS.md in the training programs, on real birds
# with tiny networks (tests/configs/tiny_*.yml): a pretraining with ZSL.WORD_LEVEL, ZSL.ADV_LOSS
# wgan_gp, ZSL.CRITIC_STEPS 2 and ZSL.PIVOT_LAMBDA 1, and a GAN run with ZSL.GAN_PHASE on its
# encoders, each 4 steps straight and 2 + --resume + 2: bit-identical weights and optimizer states,
# the options recorded in config.json and kept by the resume; then export and generate from the
# GAN run, which read its own text encoder (its ZSL G learned in the GAN phase).
# Skips without ../shared/data.
BIN=${ATTNGAN:-build/release/attngan}
DATA=${ATTNGAN_DATA:-../shared/data}/birds
pass=0; fail=0; skip=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1"; fail=$((fail + 1)); }
if [ ! -f "$DATA/train/filenames.pickle" ]; then
    echo "SKIP test_zsl_runs: no $DATA (set ATTNGAN_DATA)"
    echo "RESULT test_zsl_runs passed=0 failed=0 skipped=1"
    exit 0
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
P="--cfg tests/configs/tiny_damsm.yml --data $DATA --set TRAIN.BATCH_SIZE=2 --threads 2 --quiet --set ZSL.WORD_LEVEL=True \
   --set ZSL.ADV_LOSS=wgan_gp --set ZSL.CRITIC_STEPS=2 --set ZSL.PIVOT_LAMBDA=1"
"$BIN" pretrain $P --out "$T/pa" --max-steps 4 >"$T/pa.log" 2>&1 || { ko "pretrain with the ZSL options, 4 steps"; cat "$T/pa.log"; }
"$BIN" pretrain $P --out "$T/pb" --max-steps 2 >"$T/pb.log" 2>&1 || ko "pretrain with the ZSL options, 2 steps"
"$BIN" pretrain --resume "$T/pb" --data "$DATA" --threads 2 --max-steps 4 --quiet >>"$T/pb.log" 2>&1 || ko "pretrain resume"
for f in text_encoder image_encoder zsl_d zsl_dw; do
    if cmp -s "$T/pa/$f.safetensors" "$T/pb/$f.safetensors"; then ok "pretrain (word-level, wgan_gp, 2 critic steps, pivot) resume: $f bit-identical"
    else ko "pretrain resume: $f differs"; fi
done
for f in opt_zsl_d.adam opt_zsl_dw.adam opt_text_encoder.adam; do
    cmp -s "$T/pa/checkpoints/step_4/$f.safetensors" "$T/pb/checkpoints/step_4/$f.safetensors" && ok "pretrain resume: $f bit-identical" ||
        ko "pretrain resume: $f differs or is missing"
done
grep -q '"ADV_LOSS":[[:space:]]*"wgan_gp"' "$T/pb/config.json" && grep -q '"WORD_LEVEL":[[:space:]]*true' "$T/pb/config.json" &&
    grep -q '"CRITIC_STEPS":[[:space:]]*2' "$T/pb/config.json" && ok "config.json records the ZSL options after the resume" ||
    ko "config.json: $(grep -E 'ADV_LOSS|WORD_LEVEL|CRITIC' "$T/pb/config.json")"
G="--cfg tests/configs/tiny_gan.yml --data $DATA --set TRAIN.NET_E=$T/pa/text_encoder.safetensors --threads 2 --quiet --set ZSL.GAN_PHASE=True \
   --set ZSL.WORD_LEVEL=True --set ZSL.ADV_LOSS=wgan_gp"
"$BIN" train $G --out "$T/ga" --max-steps 4 >"$T/ga.log" 2>&1 || { ko "train with ZSL.GAN_PHASE, 4 steps"; cat "$T/ga.log"; }
"$BIN" train $G --out "$T/gb" --max-steps 2 >"$T/gb.log" 2>&1 || ko "train with ZSL.GAN_PHASE, 2 steps"
"$BIN" train --resume "$T/gb" --data "$DATA" --threads 2 --max-steps 4 --quiet >>"$T/gb.log" 2>&1 || ko "train resume"
for f in netG netD0 text_encoder zsl_d opt_zsl_g.adam opt_zsl_d.adam; do
    if cmp -s "$T/ga/checkpoints/step_4/$f.safetensors" "$T/gb/checkpoints/step_4/$f.safetensors"; then ok "train (ZSL.GAN_PHASE) resume: $f bit-identical"
    else ko "train (ZSL.GAN_PHASE) resume: $f differs or is missing"; fi
done
head -1 "$T/ga/losses.csv" | grep -q "zsl_d_loss,zsl_g_loss" && ok "losses.csv: the GAN phase's ZSL losses" || ko "losses.csv header: $(head -1 "$T/ga/losses.csv")"
if cmp -s "$T/ga/checkpoints/step_4/text_encoder.safetensors" "$T/ga/encoders/text_encoder.safetensors"; then ko "ZSL G did not learn in the GAN phase"
else ok "ZSL G learned in the GAN phase (the run's text encoder differs from its pretrained copy)"; fi
# export takes the checkpoint's text encoder (stored as f16/int8: compared through the model it loads)
"$BIN" export --run "$T/ga" --out "$T/m" --data "$DATA" --bn-batches 2 --quiet >"$T/ex.log" 2>&1 && [ -s "$T/m/model.json" ] &&
    grep -q "text_encoder (its ZSL G trained in the GAN phase" "$T/ga/text_encoder.safetensors" && ok "export of a ZSL.GAN_PHASE run; the run wrote its own text encoder" ||
    ko "export: $(cat "$T/ex.log")"
"$BIN" generate "this bird is red" --model "$T/m" --seed 4 -o "$T/m.png" --threads 2 >"$T/genm.log" 2>&1 && [ -s "$T/m.png" ] &&
    ok "generate from the exported model" || ko "generate from the export: $(cat "$T/genm.log")"
"$BIN" generate "this bird is red" --model "$T/ga" -o "$T/r.png" --threads 2 >"$T/gen.log" 2>&1 && [ -s "$T/r.png" ] &&
    ok "generate from the ZSL.GAN_PHASE run directory" || ko "generate: $(cat "$T/gen.log")"
echo "test_zsl_runs: $pass passed, $fail failed, $skip skipped"
echo "RESULT test_zsl_runs passed=$pass failed=$fail skipped=$skip"
[ $fail -eq 0 ]
