#!/bin/sh
# test_cli.sh: the command line as a newcomer meets it (issue 20): flags rejected as the server
# rejects them (--seed -1, --threads 0, invalid UTF-8), letters outside ASCII reported, generate
# --lines numbering by line with line numbers in errors, `data bogus`, the same exit status for a
# missing model in generate and serve with every path tried named, one data-directory rule for
# data info, sample, pretrain, train and eval (ATTNGAN_DATA honoured, --data suggested), AttnGAN's
# TRAIN.FLAG / B_NET_D refused, an --out that holds a run refused without --resume or --force,
# `attngan import` (arguments, a .pth refused, the tiny official-style checkpoints), and the
# wait policy on a busy machine.
BIN=${ATTNGAN:-build/release/attngan}
DATA=${ATTNGAN_DATA:-../shared/data}/birds
pass=0; fail=0; skip=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1"; fail=$((fail + 1)); }
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
# expect NAME STATUS PATTERN CMD...: CMD exits STATUS and its output matches PATTERN (grep -E)
expect() {
    name=$1; want=$2; pat=$3; shift 3
    "$@" >"$T/out" 2>&1; rc=$?
    if [ "$rc" -eq "$want" ] && grep -Eq -- "$pat" "$T/out"; then ok "$name"
    else ko "$name (exit $rc, want $want; /$pat/): $(head -c 600 "$T/out")"; fi
}
G="$BIN generate -o $T/b.png --threads 1"
expect "generate --seed -1 refused" 2 "seed.*0\.\.9007199254740991" $G "a red bird" --seed -1
expect "generate --threads 0 refused" 2 "threads.*1\.\.1024" $BIN generate "a red bird" --threads 0
expect "examples --seed -1 refused" 2 "seed" $BIN examples --seed -1
expect "train --threads 0 refused" 2 "threads.*1\.\.1024" $BIN train --threads 0
printf 'a red bird\377 with wings\n' >"$T/bad.txt"
expect "invalid UTF-8 refused" 2 "not valid UTF-8 \(byte 11\)" $G --file "$T/bad.txt"
expect "letters outside ASCII reported" 0 "weißen -> weien" $G "a small bird with weißen wings and a red beak"
printf 'a red bird with black wings\n\n  \nzzqx qqzx\na yellow bird\n' >"$T/lines.txt"
expect "generate --lines: errors name the line" 1 "line 4: none of the words" $G --file "$T/lines.txt" --lines -o "$T/l.png"
[ -f "$T/l_001.png" ] && [ -f "$T/l_005.png" ] && [ ! -f "$T/l_002.png" ] && [ ! -f "$T/l_004.png" ] &&
    ok "generate --lines: files numbered by line, blank lines counted" || ko "generate --lines numbering: $(ls "$T")"
expect "data bogus: unknown subcommand" 2 "unknown subcommand 'bogus'.*info and pack" $BIN data bogus

# attngan import: its arguments, a .pth named, and the whole path on the tiny official-style
# checkpoints of tests/parity/make_checkpoints.sh (their values: tests/test_checkpoints)
expect "import --help" 0 "import --netG bird_AttnGAN2.pth --text-encoder text_encoder200.pth" $BIN import --help
expect "import without --captions/--vocab" 2 "one of --captions / --vocab" $BIN import --netG a --text-encoder b --out "$T/m"
printf 'PK\003\004' >"$T/netG.pth"
expect "import of a damaged .pth" 2 "--netG: $T/netG.pth: not a readable zip archive" \
    $BIN import --netG "$T/netG.pth" --text-encoder "$T/netG.pth" --vocab "$T/netG.pth" --out "$T/m"
CK=${ATTNGAN_CHECKPOINTS:-build/checkpoints}
if [ -f "$CK/attngan_netG.safetensors" ]; then
    expect "import AttnGAN's pair" 0 "AttnGAN \(CA_NET \+ noise\): 3 stages.*CONDITION_DIM 6, Z_DIM 5" $BIN import \
        --netG "$CK/attngan_netG.safetensors" --text-encoder "$CK/attngan_text_encoder.safetensors" \
        --captions "$CK/captions.pickle" --cfg "$CK/attngan_tiny.yml" --out "$T/m"
    expect "import into a model without --force" 2 "already holds a model.*--force" $BIN import \
        --netG "$CK/attngan_netG.safetensors" --text-encoder "$CK/attngan_text_encoder.safetensors" \
        --captions "$CK/captions.pickle" --out "$T/m"
    expect "generate with the imported model" 0 "3 stages \(256 px\).*imported from PyTorch" \
        $BIN generate --model "$T/m" "this bird is red with white wings" -o "$T/imp.png" --threads 1
    [ -s "$T/imp.png" ] && ok "the imported model's PNG" || ko "no PNG from the imported model"
else
    echo "SKIP import of checkpoints: no $CK/attngan_netG.safetensors (tests/parity/make_checkpoints.sh writes it)"; skip=$((skip + 1))
fi

# threads on a busy machine (src/core/threads.h): serve waits passively (it starts itself again
# with OMP_WAIT_POLICY=passive: libgomp then prints its environment twice), a user's policy is
# kept, and a command started with every core busy restarts passively too
begins() { grep -c "OPENMP DISPLAY ENVIRONMENT BEGIN" "$1"; }
OMP_DISPLAY_ENV=true "$BIN" serve --port 70000 >"$T/omp.log" 2>&1
[ "$(begins "$T/omp.log")" -eq 2 ] && grep -q "OMP_WAIT_POLICY = 'PASSIVE'" "$T/omp.log" && ok "serve restarts with the passive wait policy" ||
    ko "serve's wait policy: $(grep -E 'BEGIN|WAIT' "$T/omp.log" | head -4)"
OMP_WAIT_POLICY=active OMP_DISPLAY_ENV=true "$BIN" serve --port 70000 >"$T/omp.log" 2>&1
[ "$(begins "$T/omp.log")" -eq 1 ] && ok "a user's OMP_WAIT_POLICY is kept (no restart)" || ko "OMP_WAIT_POLICY=active not kept"
busy=""
for i in $(seq 1 $((2 * $(nproc)))); do sh -c 'while :; do :; done' & busy="$busy $!"; done
sleep 0.5
OMP_DISPLAY_ENV=true "$BIN" data bogus >"$T/omp.log" 2>&1
kill $busy 2>/dev/null; wait $busy 2>/dev/null
[ "$(begins "$T/omp.log")" -eq 2 ] && ok "a command started with every core busy restarts with the passive policy" ||
    ko "no restart on a busy machine: $(grep -c BEGIN "$T/omp.log") environments printed"

# a missing model: the copy of the program in an empty tree finds none
mkdir -p "$T/bin" "$T/empty"
cp "$BIN" "$T/bin/attngan"
( cd "$T/empty" && env -u ATTNGAN_MODEL "$T/bin/attngan" generate "a red bird" -o b.png ) >"$T/g.log" 2>&1; grc=$?
( cd "$T/empty" && env -u ATTNGAN_MODEL "$T/bin/attngan" serve --port 0 ) >"$T/s.log" 2>&1; src=$?
[ $grc -eq 2 ] && [ $src -eq 2 ] && ok "missing model: generate and serve exit 2" || ko "missing model exit statuses: generate $grc, serve $src"
grep -q "no model found; tried \$ATTNGAN_MODEL (unset), $T/bin/models/bird64, $T/bin/../share/attngan/models/bird64" "$T/g.log" &&
    grep -q -- "--model DIR" "$T/g.log" && grep -q -- "--model DIR" "$T/s.log" &&
    ok "missing model: the paths tried and --model named" || ko "missing model message: $(cat "$T/g.log" "$T/s.log")"

# one data rule: ATTNGAN_DATA is honoured by every command, and a missing directory names --data
INC=${ATTNGAN_MODELS:-${ATTNGAN_DATA:-../shared/data}/../models}/inception_v3_nsfwjs
E=""; [ -f "$INC/model.json" ] && E="eval --train-classifier --inception $INC"
[ -n "$E" ] || { echo "SKIP eval's data rule: no $INC"; skip=$((skip + 1)); }
for c in "data info" "sample --limit 1 --out $T/o1" "train --out $T/o2" "pretrain --out $T/o3" ${E:+"$E"}; do
    expect "${c%% --*}: ATTNGAN_DATA honoured, --data suggested" 2 'nonexistent_data/birds \(\$ATTNGAN_DATA/birds\).*--data DIR' \
        env ATTNGAN_DATA="$T/nonexistent_data" $BIN $c
done
expect "data info: --data first" 2 "^attngan data info: --data $T/none: no such directory" env ATTNGAN_DATA="$T" $BIN data info --data "$T/none"

# AttnGAN's keys honoured or refused
expect "TRAIN.FLAG False refused" 2 "TRAIN.FLAG is False.*attngan sample" $BIN train --cfg tests/configs/tiny_gan.yml --set TRAIN.FLAG=False --out "$T/f"
expect "TRAIN.NET_G with B_NET_D refused" 2 "B_NET_D is True.*--resume" \
    $BIN train --cfg tests/configs/tiny_gan.yml --set TRAIN.NET_G=g.safetensors --set TRAIN.B_NET_D=True --out "$T/f"

# an --out that holds a run
if [ -d "$DATA" ]; then
    mkdir -p "$T/run/checkpoints/step_4" "$T/run/cache" && echo x >"$T/run/losses.csv" && echo x >"$T/run/cache/keep"
    expect "--out with a run refused" 2 "already holds a run.*--resume $T/run.*--force" \
        $BIN pretrain --cfg tests/configs/tiny_damsm.yml --data "$DATA" --out "$T/run" --max-steps 1 --quiet
    [ -d "$T/run/checkpoints/step_4" ] && ok "refused: the run is untouched" || ko "refused run was changed"
    # a run without a checkpoint (a pretraining killed while it computed its feature cache): --force, not --resume
    mkdir -p "$T/run0/cache" && echo x >"$T/run0/losses.csv"
    expect "--out with a run but no checkpoint: --force named" 2 "no checkpoint yet: start it again with --force" \
        $BIN pretrain --cfg tests/configs/tiny_damsm.yml --data "$DATA" --out "$T/run0" --max-steps 1 --quiet
    $BIN train --cfg tests/configs/tiny_gan.yml --data "$DATA" --out "$T/run" --force --max-steps 1 --quiet >"$T/force.log" 2>&1
    grep -q "removed the run in $T/run" "$T/force.log" && [ ! -d "$T/run/checkpoints/step_4" ] && [ -f "$T/run/cache/keep" ] &&
        ok "--force wipes the run, keeps cache/" || ko "--force: $(cat "$T/force.log"; ls -R "$T/run")"
    expect "--force with --resume refused" 2 "give one of them" $BIN train --resume "$T/run" --force
else echo "SKIP --out checks: no $DATA"; skip=$((skip + 1)); fi
echo "test_cli: $pass passed, $fail failed, $skip skipped"
echo "RESULT test_cli passed=$pass failed=$fail skipped=$skip"
[ $fail -eq 0 ]
