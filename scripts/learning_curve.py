#!/usr/bin/env python3
"""learning_curve.py OUT.png REF_LABEL=REPORT POINT...: a GAN run's learning curve from `attngan eval`
reports (docs/QUALITY.md): R-precision (with its 95% interval) and FID of the clean row (noise
k = 0, the model's sentence selection) against the CPU-hours the run had trained for when it was
exported, with a reference model's values as dashed lines and the real photos' R-precision as a
dotted line.

  POINT: HOURS=REPORT  (REPORT an `attngan eval` report.json; HOURS one-thread CPU-hours)

Needs Pillow only (Debian's python3-pil), so it runs wherever the tests run.
"""
import json
import sys

from PIL import Image, ImageDraw, ImageFont


def clean_row(path):
    j = json.load(open(path))
    real, model = None, None
    for r in j["rows"]:
        if r.get("images", "").startswith("real photos (the other half") and r.get("r_precision"):
            real = r
        elif r.get("noise_k") == 0 and r.get("long_text") == "select" and not r.get("images", "").startswith(("real", "baseline")):
            model = model or r
    if model is None:
        sys.exit(f"{path}: no clean row of a model")
    return model, real


def font(size):
    try:
        return ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default()


def panel(d, box, title, pts, ref, real, key, ylab):
    x0, y0, x1, y1 = box
    f, fs = font(15), font(12)
    d.text((x0, y0 - 24), title, fill="black", font=f)
    xs = [p[0] for p in pts]
    ys = [p[1][key] for p in pts] + [ref[key]] + ([real] if real is not None else [])
    lo_err = [p[1][key] - p[1].get(key + "_ci", 0) for p in pts]
    hi_err = [p[1][key] + p[1].get(key + "_ci", 0) for p in pts]
    ymin, ymax = min(ys + lo_err), max(ys + hi_err)
    pad = (ymax - ymin) * 0.15 or 0.1
    ymin, ymax = max(0.0, ymin - pad), ymax + pad
    xmax = max(xs) * 1.5  # room for the last point's label
    X = lambda v: x0 + (x1 - x0) * v / xmax
    Y = lambda v: y1 - (y1 - y0) * (v - ymin) / (ymax - ymin)
    d.rectangle(box, outline="black")
    for i in range(5):
        v = ymin + (ymax - ymin) * i / 4
        d.line((x0 - 4, Y(v), x0, Y(v)), fill="black")
        d.text((x0 - 48, Y(v) - 7), f"{v:.3f}", fill="black", font=fs)
    step = 1 if xmax <= 6 else 2
    h = 0
    while h <= xmax:
        d.line((X(h), y1, X(h), y1 + 4), fill="black")
        d.text((X(h) - 4, y1 + 6), f"{h:g}", fill="black", font=fs)
        h += step
    d.text(((x0 + x1) / 2 - 70, y1 + 24), "one-thread CPU-hours of the GAN", fill="black", font=fs)
    d.text((x0 - 48, y0 - 6), ylab, fill="black", font=fs)

    def dashed(yv, colour, label, dash):
        x = x0
        while x < x1:
            d.line((x, Y(yv), min(x + dash, x1), Y(yv)), fill=colour, width=2)
            x += 2 * dash
        d.text((x1 - 190, Y(yv) - 16), label, fill=colour, font=fs)

    dashed(ref[key], (200, 80, 0), f"{ref['label']}: {ref[key]:.3f}", 8)
    if real is not None:
        dashed(real, (0, 130, 0), f"real photos: {real:.3f}", 3)
    prev = None
    for i, (hx, v) in enumerate(pts):
        px, py = X(hx), Y(v[key])
        if key + "_ci" in v:
            d.line((px, Y(v[key] - v[key + "_ci"]), px, Y(v[key] + v[key + "_ci"])), fill=(0, 60, 200), width=2)
        if prev:
            d.line((prev[0], prev[1], px, py), fill=(0, 60, 200), width=2)
        d.ellipse((px - 4, py - 4, px + 4, py + 4), fill=(0, 60, 200))
        # labels alternate above and below their points, so that close points stay readable
        d.text((px + 6, py - 18 if i % 2 == 0 else py + 6), f"{v[key]:.3f} ({v['steps']} steps)", fill=(0, 60, 200), font=fs)
        prev = (px, py)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    out, ref_arg, pts_arg = sys.argv[1], sys.argv[2], sys.argv[3:]
    label, path = ref_arg.split("=", 1)
    m, real = clean_row(path)
    ref = {"label": label, "r": m["r_precision"]["mean"], "fid": m["fid"]["mean"]}
    real_r = real["r_precision"]["mean"] if real else None
    pts = []
    for a in pts_arg:
        hours, path = a.split("=", 1)
        m, _ = clean_row(path)
        steps = json.load(open(path))["settings"].get("model_steps", 0)
        pts.append((float(hours), {"r": m["r_precision"]["mean"], "r_ci": m["r_precision"]["ci95"] or 0.0,
                                   "fid": m["fid"]["mean"], "steps": int(steps)}))
    pts.sort()
    img = Image.new("RGB", (1100, 470), "white")
    d = ImageDraw.Draw(img)
    panel(d, (80, 60, 520, 400), "R-precision (higher is better; bars: 95% CI)", pts, ref, real_r, "r", "")
    panel(d, (620, 60, 1060, 400), "FID (lower is better)", pts, ref, None, "fid", "")
    img.save(out)
    print(f"wrote {out}: {len(pts)} points")


if __name__ == "__main__":
    main()
