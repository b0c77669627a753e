#!/bin/sh
# test_ckpt.sh: checkpoints that survive damage (issue 21), on real birds with the tiny GAN
# (tests/configs/tiny_gan.yml, a checkpoint every 2 steps):
#   - every checkpoint has a manifest (each file's size and CRC-32C);
#   - a flipped byte in the latest checkpoint, or a truncated file, is found, and --resume of the
#     run falls back to the newest whole checkpoint, saying so, and ends bit-identical to a run
#     that was never damaged; --resume of the damaged step directory itself is refused, naming the
#     file;
#   - EXTRA.KEEP_CHECKPOINTS keeps the newest K (0: all);
#   - a pretraining whose file-size limit (ulimit -f) is too small for its next checkpoint stops
#     with an error naming the file, leaves no partial checkpoint, and its last one stays whole and
#     resumes to the bits of a run never stopped.
# Skips visibly without ../shared/data.
BIN=${ATTNGAN:-build/release/attngan}
DATA=${ATTNGAN_DATA:-../shared/data}/birds
pass=0; fail=0; skip=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1"; fail=$((fail + 1)); }
done_() { echo "test_ckpt: $pass passed, $fail failed, $skip skipped"; echo "RESULT test_ckpt passed=$pass failed=$fail skipped=$skip"; [ $fail -eq 0 ]; exit $?; }
if [ ! -f "$DATA/train/filenames.pickle" ]; then echo "SKIP test_ckpt: no $DATA (set ATTNGAN_DATA)"; skip=1; done_; fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
P="--cfg tests/configs/tiny_damsm.yml --data $DATA --set TRAIN.BATCH_SIZE=2 --threads 1 --quiet"
"$BIN" pretrain $P --out "$T/p" --max-steps 2 >"$T/p.log" 2>&1 || { ko "tiny pretraining"; cat "$T/p.log"; done_; }
G="--cfg tests/configs/tiny_gan.yml --data $DATA --set TRAIN.NET_E=$T/p/text_encoder.safetensors --threads 1 --quiet"
CK="netG.safetensors netD0.safetensors netD1.safetensors optG.adam.safetensors optD0.adam.safetensors"
same() { # same WHAT A B STEP: the checkpoint's networks and optimizers bit-identical
    bad=""
    for f in $CK; do cmp -s "$2/checkpoints/step_$4/$f" "$3/checkpoints/step_$4/$f" || bad="$bad $f"; done
    [ -z "$bad" ] && ok "$1" || ko "$1: differ:$bad"
}
"$BIN" train $G --out "$T/ref" --max-steps 6 >"$T/ref.log" 2>&1 || { ko "the reference run"; cat "$T/ref.log"; }
grep -q '"crc32c"' "$T/ref/checkpoints/step_6/manifest.json" && grep -q '"netG.safetensors"' "$T/ref/checkpoints/step_6/manifest.json" &&
    grep -q '"state.json"' "$T/ref/checkpoints/step_6/manifest.json" && ok "a checkpoint's manifest lists its files with their CRC-32C" ||
    ko "manifest: $(cat "$T/ref/checkpoints/step_6/manifest.json" 2>&1 | head -5)"
# a flipped byte in the latest checkpoint
"$BIN" train $G --out "$T/a" --max-steps 4 >"$T/a.log" 2>&1 || ko "4 steps"
f="$T/a/checkpoints/step_4/netG.safetensors"
size=$(wc -c < "$f")
printf '\377' | dd of="$f" bs=1 seek=$((size - 7)) conv=notrunc 2>/dev/null
"$BIN" train --resume "$T/a" --data "$DATA" --threads 1 --quiet --max-steps 6 >"$T/a2.log" 2>&1 &&
    grep -q "netG.safetensors: CRC-32C" "$T/a2.log" && grep -q "resuming from the newest whole checkpoint, .*step_2" "$T/a2.log" &&
    ok "a flipped byte in the latest checkpoint is found; the resume falls back to step_2, saying so" ||
    ko "resume past a damaged checkpoint: $(cat "$T/a2.log")"
same "... and ends bit-identical to a run never damaged" "$T/ref" "$T/a" 6
# a truncated file
"$BIN" train $G --out "$T/b" --max-steps 4 >"$T/b.log" 2>&1 || ko "4 steps"
f="$T/b/checkpoints/step_4/optG.adam.safetensors"
head -c 1000 "$f" >"$f.cut" && mv "$f.cut" "$f"
"$BIN" train --resume "$T/b/checkpoints/step_4" --data "$DATA" --threads 1 --quiet --max-steps 6 >"$T/b1.log" 2>&1
rc=$?
[ $rc -ne 0 ] && grep -q "optG.adam.safetensors has 1000 bytes" "$T/b1.log" && ok "--resume of the damaged step directory itself is refused, naming the file" ||
    ko "resume of a truncated step: rc $rc: $(cat "$T/b1.log")"
"$BIN" train --resume "$T/b" --data "$DATA" --threads 1 --quiet --max-steps 6 >"$T/b2.log" 2>&1 &&
    grep -q "truncated" "$T/b2.log" && ok "a truncated file: the run's resume falls back to step_2" || ko "truncated: $(cat "$T/b2.log")"
same "... and ends bit-identical to a run never damaged" "$T/ref" "$T/b" 6
# EXTRA.KEEP_CHECKPOINTS
"$BIN" train $G --set EXTRA.KEEP_CHECKPOINTS=2 --out "$T/k2" --max-steps 8 >"$T/k2.log" 2>&1 || ko "KEEP_CHECKPOINTS 2"
"$BIN" train $G --set EXTRA.KEEP_CHECKPOINTS=0 --out "$T/k0" --max-steps 8 >"$T/k0.log" 2>&1 || ko "KEEP_CHECKPOINTS 0"
k2=$(ls "$T/k2/checkpoints" | grep -c '^step_'); k0=$(ls "$T/k0/checkpoints" | grep -c '^step_')
[ "$k2" -eq 2 ] && [ -d "$T/k2/checkpoints/step_8" ] && [ -d "$T/k2/checkpoints/step_6" ] && [ "$k0" -eq 4 ] &&
    ok "EXTRA.KEEP_CHECKPOINTS 2 keeps step_6 and step_8; 0 keeps all 4" || ko "kept: $(ls "$T/k2/checkpoints") / $(ls "$T/k0/checkpoints")"
# a file-size limit too small for the next checkpoint (the pretraining: it writes no sample images)
"$BIN" pretrain $P --out "$T/f" --max-steps 2 >"$T/f.log" 2>&1 || ko "pretrain 2 steps"
big=$(wc -c < "$T/f/checkpoints/step_2/opt_text_encoder.adam.safetensors")
lim=$(( (big / 2) / 1024 ))
(ulimit -f $lim 2>/dev/null || exit 3; "$BIN" pretrain --resume "$T/f" --data "$DATA" --threads 1 --quiet --max-steps 4 >"$T/f2.log" 2>&1)
rc=$?
if [ $rc -eq 3 ]; then echo "SKIP the file-size limit: ulimit -f is not available"; skip=$((skip + 1))
else
    [ $rc -ne 0 ] && grep -q "File too large" "$T/f2.log" && grep -q "checkpoint .*step_4" "$T/f2.log" &&
        ok "a file-size limit of $lim KiB: the run stops with an error naming the checkpoint and the file" || ko "size limit: rc $rc: $(tail -3 "$T/f2.log")"
    [ "$(cat "$T/f/checkpoints/latest")" = step_2 ] && [ ! -d "$T/f/checkpoints/step_4" ] && ! ls -a "$T/f/checkpoints" | grep -q tmp &&
        ok "... its last checkpoint stays the latest, no partial one left" || ko "after the size limit: $(ls -a "$T/f/checkpoints")"
    "$BIN" pretrain --resume "$T/f" --data "$DATA" --threads 1 --quiet --max-steps 4 >"$T/f3.log" 2>&1 && ! grep -q "newest whole" "$T/f3.log" &&
        ok "... and resumes from it, whole" || ko "resume after the size limit: $(cat "$T/f3.log")"
    "$BIN" pretrain $P --out "$T/fref" --max-steps 4 >"$T/fref.log" 2>&1
    bad=""
    for f in text_encoder.safetensors zsl_d.safetensors checkpoints/step_4/opt_text_encoder.adam.safetensors; do
        cmp -s "$T/f/$f" "$T/fref/$f" || bad="$bad $f"
    done
    [ -z "$bad" ] && ok "... to the same bits as a run never stopped" || ko "after the size limit: differ:$bad"
fi
done_
