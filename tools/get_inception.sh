#!/bin/sh
# get_inception.sh: fetches the pretrained Keras InceptionV3 that nsfwjs@4.4.0 (MIT) ships and
# writes it as a plain TensorFlow.js layers model, model.json + weights.bin (+ LICENSE), into a
# directory: the layout src/nn/keras_inception.c and ../shared/reference/keras_inception.py read.
#
# Usage: tools/get_inception.sh [TARGET_DIR]     (default: ../shared/models/inception_v3_nsfwjs)
#
# The npm package stores the model as base64 JavaScript (UMD) modules under
# dist/models/inception_v3/: model.min.js exports the model.json object, whose single manifest
# group names six shards group1-shard<k>of6, each group1-shard<k>of6.min.js exporting a base64
# string. This script (npm pack, tar, node) decodes the shards in manifest order into one
# weights.bin, points the manifest at it (paths = ["weights.bin"]) and writes model.json the way
# Python's json.dumps does (", " and ": " separators, Python float repr, ASCII escapes), so that
# both files are byte-identical to ../shared/models/inception_v3_nsfwjs; their SHA-256 are
# checked below. Needs npm (and its node), tar, and a network path to the npm registry.
set -eu

VERSION=4.4.0
MODEL_JSON_SHA256=40dbd6eaecadf66cd18d1b3760a2ee7a31fb3692b6b5e112dc625b9f478c5a1a
WEIGHTS_SHA256=8a457f3fdec7db18b16e44323454db0eaeb8f314eda0046b2e293e58a5bfabf4

die() { echo "get_inception.sh: $*" >&2; exit 1; }

target=${1:-../shared/models/inception_v3_nsfwjs}
command -v npm >/dev/null 2>&1 || die "npm not found. Install Node.js and npm (Debian: apt-get install npm), or \
copy model.json and weights.bin from an existing inception_v3_nsfwjs directory."
command -v node >/dev/null 2>&1 || die "node not found (npm is installed, but node is not on PATH)"
command -v tar >/dev/null 2>&1 || die "tar not found"

work=$(mktemp -d "${TMPDIR:-/tmp}/get_inception.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

echo "get_inception.sh: npm pack nsfwjs@$VERSION"
(cd "$work" && npm pack "nsfwjs@$VERSION" --silent >pack.log 2>&1) ||
    die "npm pack nsfwjs@$VERSION failed: $(tail -n 5 "$work/pack.log")"
tgz="$work/nsfwjs-$VERSION.tgz"
[ -f "$tgz" ] || die "npm pack wrote no $tgz"
tar -xzf "$tgz" -C "$work" package/LICENSE package/dist/models/inception_v3 ||
    die "$tgz lacks package/dist/models/inception_v3"

cat >"$work/unpack.js" <<'EOF'
// unpack.js SRC_DIR OUT_DIR: model.min.js + shard modules -> model.json + weights.bin
'use strict';
const fs = require('fs');
const path = require('path');
const [src, out] = process.argv.slice(2);
const model = require(path.resolve(src, 'model.min.js'));
if (!model || !Array.isArray(model.weightsManifest) || model.weightsManifest.length !== 1)
  throw new Error('model.min.js: expected a layers model with one weightsManifest group');
const group = model.weightsManifest[0];
const shards = group.paths.map((p) => {
  const b64 = require(path.resolve(src, p + '.min.js'));
  if (typeof b64 !== 'string') throw new Error(p + '.min.js does not export a base64 string');
  return Buffer.from(b64, 'base64');
});
const weights = Buffer.concat(shards);
const itemSize = (w) => ({uint8: 1, uint16: 2}[(w.quantization || {}).dtype] || 4);
const need = group.weights.reduce((s, w) => s + w.shape.reduce((a, b) => a * b, 1) * itemSize(w), 0);
if (need !== weights.length)
  throw new Error(`shards hold ${weights.length} bytes, the manifest describes ${need}`);
group.paths = ['weights.bin'];

// Python's repr of a float: shortest round-trip digits, exponent form below 1e-4 or from 1e16.
function pyFloat(v) {
  if (!Number.isFinite(v)) return Number.isNaN(v) ? 'NaN' : (v > 0 ? 'Infinity' : '-Infinity');
  if (Number.isInteger(v) && Math.abs(v) < 1e21) return String(v);   // JSON integer digits: a Python int
  const [mant, ex] = Math.abs(v).toExponential().split('e');
  const digits = mant.replace('.', ''), e = Number(ex), sign = v < 0 ? '-' : '';
  if (e < -4 || e >= 16) {
    const m = digits.length > 1 ? digits[0] + '.' + digits.slice(1) : digits;
    return sign + m + 'e' + (e < 0 ? '-' : '+') + String(Math.abs(e)).padStart(2, '0');
  }
  if (e < 0) return sign + '0.' + '0'.repeat(-e - 1) + digits;
  const int = digits.slice(0, e + 1).padEnd(e + 1, '0'), frac = digits.slice(e + 1);
  return sign + int + '.' + (frac || '0');
}
// json.dumps(ensure_ascii=True): non-ASCII and DEL as \uXXXX
const pyStr = (s) => JSON.stringify(s).replace(/[\u007f-\uffff]/g,
  (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
function pyJson(v) {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return pyFloat(v);
  if (typeof v === 'string') return pyStr(v);
  if (Array.isArray(v)) return '[' + v.map(pyJson).join(', ') + ']';
  return '{' + Object.keys(v).map((k) => pyStr(k) + ': ' + pyJson(v[k])).join(', ') + '}';
}
fs.writeFileSync(path.join(out, 'weights.bin.tmp'), weights);
fs.writeFileSync(path.join(out, 'model.json.tmp'), pyJson(model));
console.log(`get_inception.sh: ${group.weights.length} tensors, ${weights.length} bytes from ${shards.length} shards`);
EOF

mkdir -p "$target" || die "cannot create $target"
node "$work/unpack.js" "$work/package/dist/models/inception_v3" "$target" || die "decoding the model failed"
mv -f "$target/weights.bin.tmp" "$target/weights.bin"
mv -f "$target/model.json.tmp" "$target/model.json"
cp "$work/package/LICENSE" "$target/LICENSE"

if command -v sha256sum >/dev/null 2>&1; then
    ok=1
    echo "$MODEL_JSON_SHA256  $target/model.json" | sha256sum -c --quiet - >/dev/null 2>&1 || ok=0
    echo "$WEIGHTS_SHA256  $target/weights.bin" | sha256sum -c --quiet - >/dev/null 2>&1 || ok=0
    [ $ok = 1 ] || die "$target/model.json or weights.bin differs from the known re-packaging (SHA-256 mismatch)"
    echo "get_inception.sh: wrote $target/{model.json,weights.bin,LICENSE} (SHA-256 verified)"
else
    echo "get_inception.sh: wrote $target/{model.json,weights.bin,LICENSE} (sha256sum absent: not verified)"
fi
