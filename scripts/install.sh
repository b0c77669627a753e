#!/bin/sh
# install.sh BIN PREFIX: what `make install PREFIX=...` does (also run by tests/test_install.sh).
#   PREFIX/bin/attngan                            the program
#   PREFIX/share/attngan/models/bird64            the bundled model (generate, examples, sample, serve)
#   PREFIX/share/attngan/models/eval              the fixed evaluator of attngan eval
#   PREFIX/share/attngan/models/<trunk>           the evaluator's Inception trunk (EXTRA.INCEPTION_WEIGHTS
#                                                 of models/eval/config.json: ../shared/models/inception_v3_nsfwjs)
#   PREFIX/share/attngan/examples/captions.txt    the captions of attngan examples
#   PREFIX/share/attngan/cfg/                     the configurations (attngan pretrain / train defaults)
# The program finds them from PREFIX/bin through ../share/attngan (src/io/locate.h).
set -e
BIN=$1
PREFIX=$2
[ -n "$BIN" ] && [ -n "$PREFIX" ] || { echo "usage: scripts/install.sh BIN PREFIX" >&2; exit 2; }
[ -x "$BIN" ] || { echo "install: no program $BIN (run make first)" >&2; exit 1; }
cd "$(dirname "$0")/.."
SHARE=$PREFIX/share/attngan
mkdir -p "$PREFIX/bin" "$SHARE/models" "$SHARE/examples"
cp "$BIN" "$PREFIX/bin/attngan.tmp" && mv -f "$PREFIX/bin/attngan.tmp" "$PREFIX/bin/attngan"
chmod 755 "$PREFIX/bin/attngan"
for m in bird64 eval; do
    rm -rf "$SHARE/models/$m"
    cp -R "models/$m" "$SHARE/models/$m"
done
cp examples/captions.txt "$SHARE/examples/captions.txt"
rm -rf "$SHARE/cfg"
cp -R cfg "$SHARE/cfg"
# the trunk the evaluator names (a path relative to the repository)
TRUNK=$(sed -n 's/.*"INCEPTION_WEIGHTS"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' models/eval/config.json | head -1)
if [ -n "$TRUNK" ] && [ -e "$TRUNK" ]; then
    NAME=$(basename "$TRUNK")
    rm -rf "$SHARE/models/$NAME"
    cp -R "$TRUNK" "$SHARE/models/$NAME"
    echo "installed $PREFIX/bin/attngan and $SHARE (models/bird64, models/eval, models/$NAME, examples, cfg)"
else
    echo "installed $PREFIX/bin/attngan and $SHARE (models/bird64, models/eval, examples, cfg)"
    echo "warning: the evaluator's Inception trunk ${TRUNK:-(unnamed)} is missing here: attngan eval will need --inception PATH" \
         "or ATTNGAN_INCEPTION (tools/get_inception.sh DIR fetches it)" >&2
fi
