#!/usr/bin/env python3
"""quality_grid.py: the side-by-side grid of docs/QUALITY.md: 32 captions of the test classes that
have photos (unseen in training), each drawn by two or more models with the same seed.

usage: scripts/quality_grid.py OUT.png MODEL_DIR [MODEL_DIR...] [--data DIR] [--attngan BIN]
The captions are the first caption of every 30th test photo present (in AttnGAN's test order),
written to OUT.txt; each model draws them with `attngan examples --n 1 --seed 1`, and the grids
are put side by side (Pillow)."""
import argparse
import os
import pickle
import subprocess
import sys
import tempfile

from PIL import Image, ImageDraw

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("models", nargs="+")
ap.add_argument("--data", default=os.path.join(os.environ.get("ATTNGAN_DATA", "../shared/data"), "birds"))
ap.add_argument("--attngan", default="build/release/attngan")
ap.add_argument("--threads", default="2")
a = ap.parse_args()

with open(os.path.join(a.data, "test", "filenames.pickle"), "rb") as f:
    keys = pickle.load(f, encoding="latin1")
present = [k for k in keys if os.path.exists(os.path.join(a.data, "CUB_200_2011", "images", k + ".jpg"))]
if len(present) < 32 * 30 - 29:
    sys.exit(f"quality_grid: only {len(present)} test photos present under {a.data}")
caps = []
for k in present[::30][:32]:
    with open(os.path.join(a.data, "text", k + ".txt"), encoding="utf-8", errors="replace") as f:
        caps.append(f.readline().strip())
txt = os.path.splitext(a.out)[0] + ".txt"
with open(txt, "w") as f:
    f.write("\n".join(caps) + "\n")
grids = []
with tempfile.TemporaryDirectory() as tmp:
    for i, m in enumerate(a.models):
        d = os.path.join(tmp, str(i))
        subprocess.run([a.attngan, "examples", "--model", m, "--captions", txt, "--out", d, "--n", "1", "--seed", "1",
                        "--threads", a.threads], check=True, stdout=subprocess.DEVNULL)
        grids.append((m, Image.open(os.path.join(d, "examples.png")).convert("RGB")))
W = sum(g.width for _, g in grids) + 16 * (len(grids) - 1)
H = max(g.height for _, g in grids) + 20
out = Image.new("RGB", (W, H), "white")
x = 0
draw = ImageDraw.Draw(out)
for m, g in grids:
    draw.text((x + 4, 4), os.path.basename(os.path.normpath(m)), fill="black")
    out.paste(g, (x, 20))
    x += g.width + 16
out.save(a.out)
print(f"wrote {a.out} ({W}x{H}) and {txt}")
