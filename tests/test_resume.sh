#!/bin/sh
# test_resume.sh: the training programs on real birds with tiny networks: N steps straight and
# N/2 + --resume + N/2 must give bit-identical weights (pretrain and train), a bad config key is a
# clear error, and the run writes its logs, samples and checkpoints. Then the run's way to users:
# attngan export, and generate / examples / sample on the exported model (two stages, so with
# attention figures) and on the run's directory. Then the evaluator: a tiny DAMSM on the pretrained
# Keras Inception as `attngan eval --evaluator`, export --damsm, eval --train-classifier and
# attngan eval on the exported model (skipped without ../shared/models/inception_v3_nsfwjs).
# Across devices (src/core/device.h): runs resumed between the CPU and the host device end with the
# bits of CPU-only runs, and generate, examples, sample, serve and eval on the host device give the
# CPU's images and report. Then attngan data pack and a pretraining on its output, and on its cached
# trunk features with 3 views of each photo (EXTRA.CACHE_VIEWS).
# Skips without ../shared/data.
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
# checkpoints cross devices: pretraining on the host device (src/core/device.h: the device path
# with the CPU kernels, host code kept off device memory) resumed on the CPU, and a GAN run resumed
# from the CPU onto the host device, end bit-identical to runs on the CPU alone. The convolutions
# run im2col on both sides (oneDNN's nChw16c trunk is the CPU's only).
I="env ATTNGAN_CONV=im2col"
$I "$BIN" pretrain $P --out "$T/qa" --max-steps 4 >"$T/qa.log" 2>&1 || ko "pretrain 4 steps (im2col)"
$I "$BIN" pretrain $P --out "$T/qb" --max-steps 2 --device hostdev >"$T/qb.log" 2>&1 || { ko "pretrain --device hostdev"; cat "$T/qb.log"; }
grep -q "training on the device hostdev" "$T/qb.log" && ok "pretrain --device hostdev runs there" || ko "pretrain: no device line"
$I "$BIN" pretrain --resume "$T/qb" --data "$DATA" --threads 2 --max-steps 4 --quiet >>"$T/qb.log" 2>&1 || ko "pretrain resume on the CPU"
for f in text_encoder image_encoder zsl_d; do
    if cmp -s "$T/qa/$f.safetensors" "$T/qb/$f.safetensors"; then ok "pretrain hostdev -> cpu: $f bit-identical"; else ko "pretrain hostdev -> cpu: $f differs"; fi
done
$I "$BIN" train $G --out "$T/ha" --max-steps 4 >"$T/ha.log" 2>&1 || ko "train 4 steps (im2col)"
$I "$BIN" train $G --out "$T/hb" --max-steps 2 >"$T/hb.log" 2>&1 || ko "train 2 steps (im2col)"
$I "$BIN" train --resume "$T/hb" --data "$DATA" --threads 2 --max-steps 4 --quiet --device hostdev >>"$T/hb.log" 2>&1 || { ko "train resume --device hostdev"; cat "$T/hb.log"; }
for f in netG netG_ema netD0 netD1 optG.adam; do
    if cmp -s "$T/ha/checkpoints/step_4/$f.safetensors" "$T/hb/checkpoints/step_4/$f.safetensors"; then ok "train cpu -> hostdev: $f bit-identical"
    else ko "train cpu -> hostdev: $f differs"; fi
done
[ -s "$T/hb/samples/step_4.png" ] && [ -s "$T/hb/samples/step_4_att.png" ] && ok "train on the host device: samples written" || ko "train on the host device: no samples"
if "$BIN" data info --device cuda >"$T/dv.log" 2>&1; then ko "data --device cuda accepted"
elif grep -q "runs on the CPU only" "$T/dv.log"; then ok "a CPU-only command refuses --device"; else ko "data --device message: $(cat "$T/dv.log")"; fi
# attngan data pack: a small copy the loaders read as they read the original (the GPU check's data)
if "$BIN" data pack --data "$DATA" --out "$T/pk" --max 24 --size 76 >"$T/pk.log" 2>&1 &&
   "$BIN" data info --data "$T/pk" >"$T/pki.log" 2>&1 && grep -q "photos present    24" "$T/pki.log"; then ok "data pack: 24 photos per split, read back"
else ko "data pack: $(cat "$T/pk.log" "$T/pki.log")"; fi
"$BIN" pretrain --cfg tests/configs/tiny_damsm.yml --data "$T/pk" --set TRAIN.BATCH_SIZE=2 --threads 2 --quiet --out "$T/pkr" --max-steps 2 \
    >"$T/pkr.log" 2>&1 && [ -s "$T/pkr/text_encoder.safetensors" ] && ok "pretrain on packed photos" || ko "pretrain on packed photos: $(tail -3 "$T/pkr.log")"
# EXTRA.CACHE_VIEWS: cached pretraining with 3 views of each training photo (the centre crop and
# 2 random crops) resumes bit for bit, reads its views back, and trains otherwise than 1 view (on
# the Keras trunk: an untrained trunk's features are all 0, whatever the crop)
INCV=${ATTNGAN_MODELS:-${ATTNGAN_DATA:-../shared/data}/../models}/inception_v3_nsfwjs
if [ ! -f "$INCV/model.json" ]; then echo "SKIP EXTRA.CACHE_VIEWS: no $INCV (the Keras Inception trunk)"; skip=$((skip + 1))
else
CV="--cfg tests/configs/tiny_damsm.yml --data $T/pk --set TRAIN.BATCH_SIZE=2 --threads 2 --quiet --set EXTRA.CACHE_TRUNK_FEATURES=True --set EXTRA.CACHE_IMAGE_SIZE=64"
CV="$CV --set EXTRA.INCEPTION=keras_nsfwjs --set EXTRA.INCEPTION_WEIGHTS=$INCV"
"$BIN" pretrain $CV --set EXTRA.CACHE_VIEWS=3 --out "$T/cva" --max-steps 4 >"$T/cva.log" 2>&1 || { ko "pretrain with 3 cached views"; cat "$T/cva.log"; }
[ -s "$T/cva/cache/train_v1_trunk.safetensors" ] && [ -s "$T/cva/cache/train_v2_trunk.safetensors" ] && [ ! -e "$T/cva/cache/train_v3_trunk.safetensors" ] &&
    [ ! -e "$T/cva/cache/test_v1_trunk.safetensors" ] && ok "3 views: train_v1 and train_v2 cached beside train (the test split: its centre crops)" ||
    ko "3 views: cache holds $(ls "$T/cva/cache" | tr '\n' ' ')"
mkdir -p "$T/cvb" && ln -s "$T/cva/cache" "$T/cvb/cache"
"$BIN" pretrain $CV --set EXTRA.CACHE_VIEWS=3 --out "$T/cvb" --max-steps 2 >"$T/cvb.log" 2>&1 || { ko "pretrain with 3 views, 2 steps"; cat "$T/cvb.log"; }
"$BIN" pretrain --resume "$T/cvb" --data "$T/pk" --threads 2 --max-steps 4 --quiet >>"$T/cvb.log" 2>&1 || { ko "its resume"; cat "$T/cvb.log"; }
grep -q "train_v2 photos read from" "$T/cvb.log" && ! grep -q "computing the trunk features" "$T/cvb.log" && ok "3 views: read back, not computed again" ||
    ko "3 views not read back: $(cat "$T/cvb.log")"
cmp -s "$T/cva/text_encoder.safetensors" "$T/cvb/text_encoder.safetensors" && cmp -s "$T/cva/image_encoder.safetensors" "$T/cvb/image_encoder.safetensors" &&
    ok "3 views: 2 steps + resume + 2 = 4 straight, bit for bit" || ko "3 views: resume differs"
mkdir -p "$T/cv1" && ln -s "$T/cva/cache" "$T/cv1/cache"
"$BIN" pretrain $CV --out "$T/cv1" --max-steps 4 >"$T/cv1.log" 2>&1 || { ko "cached pretrain, 1 view"; cat "$T/cv1.log"; }
[ -s "$T/cv1/image_encoder.safetensors" ] && ! cmp -s "$T/cva/image_encoder.safetensors" "$T/cv1/image_encoder.safetensors" &&
    ok "3 views train otherwise than the centre crop alone" || ko "3 views: the same encoders as 1 view"
fi
# the run keeps its own copy of the encoders and names it in TRAIN.NET_E
if [ -s "$T/ga/encoders/text_encoder.safetensors" ] && cmp -s "$T/ga/encoders/text_encoder.safetensors" "$T/pa/text_encoder.safetensors" &&
   [ -s "$T/ga/encoders/image_encoder.safetensors" ] && [ -s "$T/ga/encoders/zsl_d.safetensors" ] &&
   grep -q "$T/ga/encoders/text_encoder.safetensors" "$T/ga/config.json"; then ok "train: encoders copied into the run and named in TRAIN.NET_E"
else ko "train: no encoder copy in $T/ga/encoders or config.json does not name it"; fi
# a configuration that disagrees with the pretraining's on the encoders is an error naming the key
if "$BIN" train $G --out "$T/gd" --set ZSL.RESIDUAL=True --max-steps 1 >"$T/gd.log" 2>&1; then ko "encoder mismatch accepted"
elif grep -q "ZSL.RESIDUAL False" "$T/gd.log"; then ok "encoder mismatch named"; else ko "encoder mismatch message: $(cat "$T/gd.log")"; fi
[ -s "$T/ga/samples/step_4.png" ] && [ -s "$T/ga/samples/step_4_att.png" ] && [ -s "$T/ga/losses.csv" ] && ok "samples and logs written" || ko "samples/logs missing"
ls "$T/ga/tensorboard/"events.out.tfevents.* >/dev/null 2>&1 && ok "tensorboard file" || ko "no tensorboard file"
# the last step is logged whatever LOG_INTERVAL; eval.csv is the pretraining's, created by its first row
"$BIN" train $G --out "$T/gl" --max-steps 3 --set EXTRA.LOG_INTERVAL=2 >"$T/gl.log" 2>&1 || ko "train with LOG_INTERVAL 2"
[ "$(cut -d, -f1 "$T/gl/losses.csv" | tr '\n' ' ')" = "step 1 2 3 " ] && ok "losses.csv: steps 1, 2 and the last one, 3 (LOG_INTERVAL 2)" ||
    ko "losses.csv steps: $(cut -d, -f1 "$T/gl/losses.csv" | tr '\n' ' ')"
[ ! -e "$T/ga/eval.csv" ] && [ ! -e "$T/gl/eval.csv" ] && [ ! -e "$T/pa/eval.csv" ] && ok "no empty eval.csv (GAN runs; a pretraining before its first epoch's end)" ||
    ko "an eval.csv without rows: $(ls "$T/ga" "$T/pa")"
if "$BIN" train $G --out "$T/gc" --set TRAIN.BATCH_SZE=3 >"$T/gc.log" 2>&1; then ko "unknown key accepted"
elif grep -q "TRAIN.BATCH_SZE" "$T/gc.log"; then ok "unknown key named"; else ko "unknown key message: $(cat "$T/gc.log")"; fi
# export and generation
png() { [ -s "$1" ] && [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }
if "$BIN" export --run "$T/ga" --out "$T/m" --data "$DATA" --bn-batches 4 --note "tiny test" >"$T/ex.log" 2>&1; then
    ok "export"
    for f in model.json netG.safetensors text_encoder.safetensors image_encoder.safetensors vocab.txt; do
        [ -s "$T/m/$f" ] || ko "export: no $f"
    done
    grep -q '"relevance"' "$T/m/model.json" && grep -q '"trained_on":.*"tiny test"' "$T/m/model.json" && ok "model.json: relevance, trained_on" || ko "model.json content"
else ko "export: $(cat "$T/ex.log")"; fi
"$BIN" generate "this bird is red with white wings, a black crown and a zorblax beak" --model "$T/m" --n 2 --seed 3 \
    -o "$T/b.png" --attention "$T/a.png" --threads 2 >"$T/gen.log" 2>&1 && png "$T/b.png" && png "$T/a.png" && ok "generate: birds and attention figure" || ko "generate: $(cat "$T/gen.log")"
grep -q "unknown words (dropped): zorblax" "$T/gen.log" && ok "generate: unknown word reported" || ko "generate: unknown word not reported"
"$BIN" generate "this bird is red" --model "$T/ga" -o "$T/r.png" --threads 2 >"$T/genr.log" 2>&1 && png "$T/r.png" && ok "generate from a run directory" || ko "generate from a run: $(cat "$T/genr.log")"
if "$BIN" generate "   " --model "$T/m" -o "$T/e.png" >"$T/gene.log" 2>&1; then ko "an empty caption was accepted"
elif grep -q "empty" "$T/gene.log"; then ok "empty caption: clear error"; else ko "empty caption message: $(cat "$T/gene.log")"; fi
if "$BIN" generate "this bird" --model "$T/nonexistent" -o "$T/e.png" >"$T/genm.log" 2>&1; then ko "a missing model was accepted"
elif grep -q "no such directory\|not a model directory" "$T/genm.log"; then ok "missing model: clear error"; else ko "missing model message: $(cat "$T/genm.log")"; fi
"$BIN" examples --model "$T/m" --captions examples/captions.txt --out "$T/exs" --n 2 --threads 2 >"$T/exs.log" 2>&1 &&
    png "$T/exs/examples.png" && png "$T/exs/001_att.png" && png "$T/exs/011_stages.png" && ok "examples: grid, attention and stages" || ko "examples: $(cat "$T/exs.log")"
"$BIN" sample --model "$T/m" --data "$DATA" --limit 12 --out "$T/smp" --threads 2 >"$T/smp.log" 2>&1 &&
    [ "$(find "$T/smp/test/single" -name '*_s*.png' | wc -l)" -eq 12 ] && ok "sample: 12 images in AttnGAN's folders" || ko "sample: $(cat "$T/smp.log")"
# generate, examples, sample and serve on the host device (src/core/device.h: the device path with
# the CPU kernels, host code kept off device memory) draw the CPU's PNGs byte for byte (G has no
# nChw16c path: no ATTNGAN_CONV needed)
"$BIN" generate "this bird is red with white wings, a black crown and a zorblax beak" --model "$T/m" --n 2 --seed 3 \
    -o "$T/bd.png" --attention "$T/ad.png" --threads 2 --device hostdev >"$T/gend.log" 2>&1 || ko "generate --device hostdev: $(cat "$T/gend.log")"
grep -q "runs on the device hostdev" "$T/gend.log" && cmp -s "$T/b.png" "$T/bd.png" && cmp -s "$T/a.png" "$T/ad.png" &&
    ok "generate --device hostdev: the CPU's birds and attention figure, byte for byte" || ko "generate --device hostdev: the PNGs differ from the CPU's"
L="this small bird is red with white wings and a short black beak. the species was described in 1758 and lives in the forests of the north; it has a yellow belly and a blue crown"
for d in cpu hostdev; do
    "$BIN" generate "$L" --model "$T/m" --n 3 --seed 5 -o "$T/l_$d.png" --threads 2 --device $d >"$T/genl_$d.log" 2>&1 || ko "generate a long text --device $d: $(cat "$T/genl_$d.log")"
    grep -E '^  [* ] ' "$T/genl_$d.log" >"$T/segs_$d.txt"
done
[ "$(wc -l <"$T/segs_cpu.txt")" -ge 2 ] && cmp -s "$T/segs_cpu.txt" "$T/segs_hostdev.txt" && cmp -s "$T/l_cpu.png" "$T/l_hostdev.png" &&
    ok "generate a long text --device hostdev: the CPU's segments, scores and birds" || ko "generate a long text: the host device differs: $(cat "$T/segs_hostdev.txt")"
"$BIN" examples --model "$T/m" --captions examples/captions.txt --out "$T/exsd" --n 2 --threads 2 --device hostdev >"$T/exsd.log" 2>&1 ||
    ko "examples --device hostdev: $(cat "$T/exsd.log")"
n=0; bad=0
for f in "$T/exs/"*.png; do n=$((n + 1)); cmp -s "$f" "$T/exsd/$(basename "$f")" || bad=$((bad + 1)); done
[ $n -ge 3 ] && [ $bad -eq 0 ] && ok "examples --device hostdev: $n PNGs byte-identical to the CPU's" || ko "examples --device hostdev: $bad of $n PNGs differ"
"$BIN" sample --model "$T/m" --data "$DATA" --limit 12 --out "$T/smpd" --threads 2 --device hostdev >"$T/smpd.log" 2>&1 &&
    [ "$(find "$T/smpd/test/single" -name '*_s*.png' | wc -l)" -eq 12 ] && diff -r "$T/smp" "$T/smpd" >/dev/null &&
    ok "sample --device hostdev: the CPU's 12 images byte for byte" || ko "sample --device hostdev: $(cat "$T/smpd.log")"
if command -v curl >/dev/null 2>&1; then
    "$BIN" generate "a red bird with white wings" --model "$T/m" --seed 4 -o "$T/s1.png" --threads 2 >"$T/s1.log" 2>&1 || ko "generate one bird"
    "$BIN" serve --model "$T/m" --host 127.0.0.1 --port 0 --threads 2 --quiet --device hostdev >"$T/srv.out" 2>"$T/srv.log" &
    SPID=$!
    SPORT=""; i=0
    while [ $i -lt 300 ] && [ -z "$SPORT" ] && kill -0 $SPID 2>/dev/null; do
        SPORT=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$T/srv.log" | head -1); sleep 0.1; i=$((i + 1))
    done
    if [ -n "$SPORT" ] && curl -sf -o "$T/s2.png" -H 'Content-Type: application/json' -d '{"caption": "a red bird with white wings", "seed": 4}' \
            "http://127.0.0.1:$SPORT/api/v1.0/bird" && curl -sf "http://127.0.0.1:$SPORT/healthz" | grep -q '"device":"hostdev"' && cmp -s "$T/s1.png" "$T/s2.png"; then
        ok "serve --device hostdev: the CPU's bird byte for byte, /healthz names the device"
    else ko "serve --device hostdev: $(cat "$T/srv.log")"; fi
    kill $SPID 2>/dev/null; wait $SPID 2>/dev/null
else echo "SKIP serve --device hostdev: no curl"; skip=$((skip + 1)); fi
# the evaluator and attngan eval
INC=${ATTNGAN_MODELS:-${ATTNGAN_DATA:-../shared/data}/../models}/inception_v3_nsfwjs
if [ ! -f "$INC/model.json" ]; then
    echo "SKIP eval: no $INC (the evaluator's Inception trunk)"; skip=$((skip + 1))
else
    # a copy of the program away from the repository finds no evaluator (src/io/locate.h)
    mkdir -p "$T/bin" && cp "$BIN" "$T/bin/attngan"
    if (cd "$T" && env -u ATTNGAN_EVALUATOR "$T/bin/attngan" eval --model "$T/m" --threads 2 --quiet) >"$T/evn.log" 2>&1; then ko "eval without models/eval accepted"
    elif grep -q "no evaluator found; tried .*models/eval: give --evaluator DIR" "$T/evn.log"; then ok "eval: a missing default evaluator is named"
    else ko "eval: missing evaluator message: $(cat "$T/evn.log")"; fi
    "$BIN" pretrain $P --out "$T/ev" --max-steps 2 --set EXTRA.INCEPTION=keras_nsfwjs --set "EXTRA.INCEPTION_WEIGHTS=$INC" >"$T/ev.log" 2>&1 ||
        { ko "pretrain an evaluator"; cat "$T/ev.log"; }
    "$BIN" export --damsm "$T/ev" --out "$T/evx" >"$T/evx.log" 2>&1 && [ -s "$T/evx/text_encoder.safetensors" ] &&
        [ -s "$T/evx/image_encoder.safetensors" ] && [ -s "$T/evx/config.json" ] && [ -s "$T/evx/vocab.txt" ] &&
        ok "export --damsm: an evaluator directory" || ko "export --damsm: $(cat "$T/evx.log")"
    # the tiny GAN draws 128 px: a classifier at 128 px for the exported evaluator, one at 64 px for the run
    "$BIN" eval --train-classifier --evaluator "$T/evx" --data "$DATA" --photos 60 --size 128 --threads 2 --quiet --cache "$T/ecache" >"$T/clf.log" 2>&1 &&
        [ -s "$T/evx/classifier.safetensors" ] && grep -q "17 classes" "$T/clf.log" && ok "eval --train-classifier --size 128 --photos 60" ||
        ko "eval --train-classifier: $(cat "$T/clf.log")"
    "$BIN" eval --train-classifier --evaluator "$T/ev" --data "$DATA" --photos 40 --threads 2 --quiet --cache "$T/ecache" >"$T/clf64.log" 2>&1 ||
        ko "eval --train-classifier (64 px): $(cat "$T/clf64.log")"
    E="--model $T/m --data $DATA --photos 60 --candidates 5 --folds 5 --threads 2 --quiet --cache $T/ecache"
    if "$BIN" eval $E --evaluator "$T/evx" --n 1000 --noise-k 0,1 --gen-seeds 2 --baseline "$T/m" --out "$T/rep" >"$T/rep.log" 2>&1; then
        J="$T/rep/report.json"
        [ "$(grep -c '"images":' "$J")" -eq 7 ] && ok "eval: 7 rows (real, held-out, k 0, k 1 select and subset, baseline k 0 and 1)" ||
            ko "eval rows: $(grep '"images":' "$J")"
        grep -q "using 30" "$T/rep.log" && grep -q '"captions":[[:space:]]*30' "$J" && grep -q '"reference_photos":[[:space:]]*30' "$J" &&
            grep -q '"real_photos":[[:space:]]*60' "$J" && ok "eval --photos 60: halves of 30, --n clamped to the other half" ||
            ko "eval counts: $(cat "$T/rep.log")"
        [ "$(grep -c '"seeds":[[:space:]]*2' "$J")" -eq 5 ] && ok "eval --gen-seeds 2: every generated row" || ko "eval seeds"
        grep -q '"weights_hash":' "$J" && grep -q "\"dir\":[[:space:]]*\"$T/evx\"" "$J" && [ "$(grep -c '"class_accuracy":[[:space:]]*{' "$J")" -eq 6 ] &&
            [ "$(grep -c '"kid":[[:space:]]*{' "$J")" -eq 6 ] && grep -q "KID" "$T/rep/report.md" &&
            ok "eval: evaluator named and hashed, class accuracy and KID" || ko "eval report: $(head -c 3000 "$J")"
    else ko "eval: $(cat "$T/rep.log")"; fi
    if "$BIN" eval $E --evaluator "$T/ev" --noise-k 0 --gen-seeds 1 --out "$T/rep64" >"$T/rep64.log" 2>&1; then
        grep -q "trained on 64 px photos; the model draws 128 px" "$T/rep64.log" && [ "$(grep -c '"class_accuracy":[[:space:]]*null' "$T/rep64/report.json")" -eq 2 ] &&
            ok "eval: a classifier of another size is not used, and said so" || ko "eval classifier size: $(cat "$T/rep64.log")"
    else ko "eval on the run's DAMSM: $(cat "$T/rep64.log")"; fi
    # each model's own zero-shot codes: a GAN on the evaluator's own DAMSM (its text encoder is frozen
    # in the GAN) gets the evaluator's table, row for row; a model on another trunk is skipped, said why
    if "$BIN" train --cfg tests/configs/tiny_gan.yml --data "$DATA" --set "TRAIN.NET_E=$T/ev/text_encoder.safetensors" \
            --set EXTRA.INCEPTION=keras_nsfwjs --set "EXTRA.INCEPTION_WEIGHTS=$INC" --out "$T/gk" --max-steps 1 --threads 2 --quiet >"$T/gk.log" 2>&1 &&
        "$BIN" export --run "$T/gk" --out "$T/mk" --data "$DATA" --bn-batches 1 --quiet >>"$T/gk.log" 2>&1 &&
        "$BIN" eval --model "$T/mk" --baseline "$T/m" --evaluator "$T/evx" --data "$DATA" --photos 60 --candidates 5 --folds 5 --threads 2 \
            --quiet --cache "$T/ecache" --noise-k 0 --gen-seeds 1 --out "$T/repk" >>"$T/gk.log" 2>&1; then
        MDK="$T/repk/report.md"
        ZE=$(sed -n '/^## Zero-shot/,$p' "$MDK" | grep -E '^\| (Wikipedia article|the class.s test captions) \|')
        ZM=$(grep -E '^\| model \| (Wikipedia article|the class.s test captions) \|' "$MDK" | sed 's/^| model //')
        [ "$(echo "$ZE" | wc -l)" -eq 2 ] && [ "$ZE" = "$ZM" ] && grep -q '"zero_shot_own"' "$T/repk/report.json" &&
            grep -q "| baseline | skipped: the model's DAMSM was trained on the trunk EXTRA.INCEPTION ''" "$MDK" &&
            ok "eval: each model's own zero-shot codes (the evaluator's table for a GAN on its DAMSM; another trunk skipped)" ||
            ko "eval zero-shot, own codes: $(printf '%s\n--\n%s\n' "$ZE" "$ZM"; grep -A8 'own codes' "$MDK")"
    else ko "eval zero-shot, own codes: $(tail -5 "$T/gk.log")"; fi
    # --train-photos: the training photos' rows (FID and KID only), one per framing; the tight crops
    # padded otherwise move them, the photos with their own background are drawn without tight crops
    if "$BIN" eval $E --evaluator "$T/ev" --noise-k 0 --gen-seeds 1 --train-photos 24 --train-framing edge,none,original \
            --out "$T/rept" >"$T/rept.log" 2>&1; then
        J="$T/rept/report.json"
        TF=$(grep -A8 '"images":[[:space:]]*"training photos' "$J")
        [ "$(grep -c '"images":[[:space:]]*"training photos' "$J")" -eq 3 ] && grep -q '"train_photos":[[:space:]]*24' "$J" &&
            [ "$(echo "$TF" | grep -c '"r_precision":[[:space:]]*null')" -eq 3 ] && [ "$(echo "$TF" | grep -c '"fid":[[:space:]]*{')" -eq 3 ] &&
            grep -q 'framed: edge' "$J" && grep -q 'framed: none' "$J" && grep -q 'own background (no tight crops)' "$J" &&
            ok "eval --train-photos 24 --train-framing edge,none,original: three rows with FID and KID, no R-precision" ||
            ko "eval --train-photos: $(cat "$T/rept.log"; grep '"images":' "$J")"
        F1=$(grep -A12 'framed: edge' "$J" | grep -A1 '"fid"' | sed -n 's/.*"mean":[[:space:]]*\([0-9.e+-]*\).*/\1/p')
        F2=$(grep -A12 'framed: none' "$J" | grep -A1 '"fid"' | sed -n 's/.*"mean":[[:space:]]*\([0-9.e+-]*\).*/\1/p')
        NT=$(sed -n 's/.*training photos (\([0-9]*\) of them tight crops, framed: edge.*/\1/p' "$J" | head -1)
        if [ -n "$NT" ] && [ "$NT" -gt 0 ]; then
            [ -n "$F1" ] && [ -n "$F2" ] && [ "$F1" != "$F2" ] && ok "eval --train-framing: edge and none differ ($F1, $F2; $NT tight crops)" ||
                ko "eval --train-framing: edge $F1, none $F2"
        else echo "SKIP eval --train-framing edge against none: no tight crop among the 24 photos"; skip=$((skip + 1)); fi
    else ko "eval --train-photos: $(cat "$T/rept.log")"; fi
    "$BIN" eval $E --evaluator "$T/ev" --train-photos 4 --train-framing edge,wide --out "$T/reptx" >"$T/reptx.log" 2>&1
    [ $? -eq 2 ] && grep -q "train-framing 'edge,wide'" "$T/reptx.log" && ok "eval --train-framing: an unknown framing is named" ||
        ko "eval --train-framing wide: $(cat "$T/reptx.log")"
    # the real photos' features come from the cache the second time: the same report, every number;
    # report.partial.md (the rows as they end) is gone once report.md is written
    if "$BIN" eval $E --evaluator "$T/ev" --noise-k 0 --gen-seeds 1 --out "$T/rep64b" --threads 2 >"$T/rep64b.log" 2>&1; then
        grep -Ev '"(seconds|read|encoded)":' "$T/rep64/report.json" >"$T/rep64.json"; grep -Ev '"(seconds|read|encoded)":' "$T/rep64b/report.json" >"$T/rep64b.json"
        grep -q '"read":[[:space:]]*[1-9]' "$T/rep64b/report.json" && grep -q '"encoded":[[:space:]]*0' "$T/rep64b/report.json" &&
            grep -q "\"cache\":[[:space:]]*\"$T/ecache/photos-" "$T/rep64b/report.json" && cmp -s "$T/rep64.json" "$T/rep64b.json" &&
            [ ! -e "$T/rep64b/report.partial.md" ] && ok "eval: the real photos' features from the cache, the same report" ||
            ko "eval with the photo cache: $(grep -A3 'real_photo_features' "$T/rep64b/report.json"; diff "$T/rep64.json" "$T/rep64b.json" | head -10)"
    else ko "eval, second run: $(cat "$T/rep64b.log")"; fi
    # attngan eval on the host device: the networks there, every number of the report the CPU's. The
    # device runs the trunk NCHW; the CPU's default nChw16c trunk runs other 1x1 convolution kernels
    # (its features differ in the last bits, FID in the 7th digit): the CPU side runs it NCHW too.
    N="env ATTNGAN_TRUNK_LAYOUT=nchw"
    for d in cpu hostdev; do
        X=""; [ $d = cpu ] && X=$N
        $X "$BIN" eval $E --evaluator "$T/evx" --noise-k 0,1 --gen-seeds 1 --out "$T/repd_$d" --device $d >"$T/repd_$d.log" 2>&1 ||
            ko "eval --device $d: $(cat "$T/repd_$d.log")"
        grep -Ev '"(seconds|cache)":' "$T/repd_$d/report.json" >"$T/repd_$d.json" 2>/dev/null  # the photo cache is per device
    done
    [ "$(grep -c '"images":' "$T/repd_cpu.json")" -eq 5 ] && [ "$(grep -c '"mean":' "$T/repd_cpu.json")" -ge 15 ] &&
        cmp -s "$T/repd_cpu.json" "$T/repd_hostdev.json" && ok "eval --device hostdev: the CPU's report (5 rows), every number" ||
        ko "eval --device hostdev: the report differs: $(diff "$T/repd_cpu.json" "$T/repd_hostdev.json" | head -20)"
    mkdir -p "$T/evc" "$T/evd"
    for d in cpu hostdev; do
        D="$T/evc"; X=$N; [ $d = hostdev ] && D="$T/evd" && X=""
        for f in config.json vocab.txt text_encoder.safetensors image_encoder.safetensors; do cp "$T/evx/$f" "$D/"; done
        $X "$BIN" eval --train-classifier --evaluator "$D" --data "$DATA" --photos 40 --threads 2 --quiet --device $d >"$T/clfd_$d.log" 2>&1 ||
            ko "eval --train-classifier --device $d: $(cat "$T/clfd_$d.log")"
    done
    [ -s "$T/evc/classifier.safetensors" ] && cmp -s "$T/evc/classifier.safetensors" "$T/evd/classifier.safetensors" &&
        ok "eval --train-classifier --device hostdev: the CPU's classifier byte for byte" || ko "eval --train-classifier --device hostdev: the classifiers differ"
fi
echo "test_resume: $pass passed, $fail failed, $skip skipped"
echo "RESULT test_resume passed=$pass failed=$fail skipped=$skip"
[ $fail -eq 0 ]
