"""MRF colours (issue 16, experimental ``--method mrf``): does starting from a colour-matched content image help?

Variants, same settings (embedded encoder, L-BFGS ``--iters`` evaluations, ``--size`` px):

- ``content``: the method as shipped (start from the content image, content loss against it);
- ``coral``: the content image first given the style's colour mean and covariance (:func:`imgforge.ops.stats.coral`,
  the histogram-matching step of Gatys et al. 2017 run in the other direction), then the same optimisation from it.

Reported per pair: Gram style distance, content distance (against the original photo) and the RGB colour distance to
the style image (||mean diff|| + ||cov diff||_F of the pixels). Writes JSON + md.

    python benchmarks/mrf_colour.py --size 128 --iters 40 --out benchmarks/results/mrf_colour
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("IMGFORGE_DATA_DIR", REPO.parent / "shared" / "data"))


def colour_distance(img, ref) -> float:  # type: ignore[no-untyped-def]
    a, b = img[0].reshape(3, -1).double(), ref[0].reshape(3, -1).double()
    ma, mb = a.mean(1, keepdim=True), b.mean(1, keepdim=True)
    ca, cb = (a - ma) @ (a - ma).T / a.shape[1], (b - mb) @ (b - mb).T / b.shape[1]
    return float((ma - mb).norm() + (ca - cb).norm())


def main() -> None:
    import torch

    from imgforge.hub.encoders import embedded_encoder_path
    from imgforge.hub.loader import load
    from imgforge.io import load_rgb
    from imgforge.methods.gatys import GatysConfig, content_distance, resize_long_side, style_distance
    from imgforge.methods.gatys_ext import stylize_gatys_ext
    from imgforge.ops.stats import coral

    p = argparse.ArgumentParser()
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--iters", type=int, default=40)
    p.add_argument("--pairs", nargs="+", default=["chelsea.png:starry_night.jpg", "coffee.png:the_scream.jpg"])
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "mrf_colour"))
    a = p.parse_args()
    enc = load(str(embedded_encoder_path()))[0].eval()
    cfg = GatysConfig(size=a.size, iterations=a.iters, style_layers=("relu3_1", "relu4_1"))
    rows = []
    for pair in a.pairs:
        ph, pa = pair.split(":")
        c = resize_long_side(load_rgb(str(DATA / "photos" / ph)), a.size)
        s = resize_long_side(load_rgb(str(DATA / "paintings" / pa)), a.size)
        row = {"photo": ph, "painting": pa, "photo_colour_distance": colour_distance(c, s)}
        for name, start in (("content", c), ("coral", coral(c[0], s[0]).clamp(0, 1)[None])):
            t0 = time.perf_counter()
            out = stylize_gatys_ext(start, [s], enc, cfg, style_loss="mrf").float()[:, :, :c.shape[2], :c.shape[3]]
            row[name] = {"style": style_distance(out, [s], enc), "content": content_distance(out, c, enc),
                         "colour": colour_distance(out, s), "seconds": time.perf_counter() - t0}
        rows.append(row)
        print(json.dumps(row), flush=True)
    res = {"size": a.size, "iterations": a.iters, "loadavg": os.getloadavg(), "rows": rows}
    out = Path(a.out)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    lines = [f"# MRF colours: content start vs CORAL colour-matched start ({a.size} px, L-BFGS {a.iters} evaluations, "
             f"embedded encoder; load average {res['loadavg'][0]:.1f})", "",
             "| photo | painting | photo colour dist | start | style (Gram) | content | colour dist to style |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        for name in ("content", "coral"):
            v = r[name]
            lines.append(f"| {r['photo']} | {r['painting']} | {r['photo_colour_distance']:.3f} | {name} | "
                         f"{v['style']:.3f} | {v['content']:.3f} | {v['colour']:.3f} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
