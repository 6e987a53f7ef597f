"""Regenerate the style-transfer pictures of the README into ``examples/figures/`` (small captioned strips).

- ``style_methods.png``: content | style | gatys | fast | adain (the same photo by the three methods);
- ``style_alpha.png``: AdaIN with alpha 0, 0.25, 0.5, 0.75, 1;
- ``style_blend.png``: AdaIN blend of two styles, weights 1:0, 0.7:0.3, 0.3:0.7, 0:1;
- ``style_colour.png``: AdaIN and fast, without and with ``--preserve-color``.

Everything runs offline with the weights shipped in ``weights/`` (embedded encoder, its AdaIN decoder, the
starry-night fast-style network), or with ``--encoder/--decoder/--model``. Inputs are public-domain images passed by
argument (defaults: the shared data folder). Outputs are derived pictures of ``--tile`` px per panel, stored as
palette PNGs to keep them small. ``--only methods,colour`` writes only those figures (e.g. the ones that show the
fast network, after retraining it; ``alpha`` and ``blend`` are AdaIN only, and only ``methods`` runs Gatys).

    OMP_NUM_THREADS=1 python examples/make_style_figures.py --content ../shared/data/photos/chelsea.png \\
        --style ../shared/data/paintings/starry_night.jpg --style2 ../shared/data/paintings/the_scream.jpg
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import List, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("IMGFORGE_DATA_DIR", REPO.parent / "shared" / "data"))
OUT = REPO / "examples" / "figures"
FIGURES = ("methods", "alpha", "blend", "colour")


def _square(img, side: int):  # type: ignore[no-untyped-def]
    """Centre-crop to a square and resize to ``side`` (a (1, 3, H, W) tensor in [0, 1])."""
    import torch.nn.functional as F

    h, w = img.shape[-2:]
    s = min(h, w)
    img = img[:, :, (h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]
    return F.interpolate(img, size=(side, side), mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def strip(panels: Sequence[Tuple[str, object]], path: Path, side: int) -> Path:
    """Save captioned panels side by side as a palette PNG."""
    import numpy as np
    from PIL import Image, ImageDraw

    cap = 16
    im = Image.new("RGB", (side * len(panels), side + cap), (255, 255, 255))
    draw = ImageDraw.Draw(im)
    for i, (label, t) in enumerate(panels):
        arr = (t[0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)  # type: ignore[index]
        im.paste(Image.fromarray(arr).resize((side, side)), (i * side, cap))
        draw.text((i * side + 4, 2), label, fill=(0, 0, 0))
    im.quantize(colors=192, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(path, optimize=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--content", type=Path, default=DATA / "photos" / "chelsea.png")
    ap.add_argument("--style", type=Path, default=DATA / "paintings" / "starry_night.jpg")
    ap.add_argument("--style2", type=Path, default=DATA / "paintings" / "the_scream.jpg")
    ap.add_argument("--model"), ap.add_argument("--encoder"), ap.add_argument("--decoder")
    ap.add_argument("--gatys-encoder", help="loss network for gatys (default: as imgforge stylize)")
    ap.add_argument("--tile", type=int, default=160, help="panel side in pixels")
    ap.add_argument("--work", type=int, default=256, help="working resolution of the stylisation")
    ap.add_argument("--iterations", type=int, default=150, help="gatys L-BFGS evaluations")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--only", default=",".join(FIGURES), help=f"comma list of figures to write ({', '.join(FIGURES)})")
    a = ap.parse_args()
    todo = {x.strip() for x in a.only.split(",") if x.strip()}
    if not todo <= set(FIGURES):
        ap.error(f"--only: unknown figure(s) {', '.join(sorted(todo - set(FIGURES)))}")

    import dataclasses

    import torch

    from imgforge.io import load_rgb
    from imgforge.methods.gatys import GatysConfig
    from imgforge.jobs.stylize import StylizeJob, make_runner
    from imgforge.runtime import Runtime

    torch.manual_seed(0)
    rt = Runtime.create("cpu", "fp32")
    a.out.mkdir(parents=True, exist_ok=True)
    content = _square(load_rgb(a.content), a.work)
    style = _square(load_rgb(a.style), a.work)
    style2 = _square(load_rgb(a.style2), a.work)
    t0 = time.time()

    def run(job: StylizeJob):  # type: ignore[no-untyped-def]
        return make_runner(job, rt)(content, "figure")

    adain = StylizeJob(styles=(str(a.style),), method="adain", encoder=a.encoder, decoder=a.decoder, style_size=512)
    fast = StylizeJob(method="fast", model=a.model)
    gatys = StylizeJob(styles=(str(a.style),), method="gatys", encoder=a.gatys_encoder, seed=0,
                       gatys=GatysConfig(size=a.work, iterations=a.iterations))
    out_fast, out_adain = run(fast), run(adain)
    written: List[Path] = []
    side = a.tile
    if "methods" in todo:
        out_gatys = run(gatys)
        print(f"gatys done ({time.time() - t0:.0f} s)", flush=True)
        written.append(strip([("content", content), ("style", style), ("gatys", out_gatys), ("fast", out_fast),
                              ("adain", out_adain)], a.out / "style_methods.png", side))
    if "alpha" in todo:
        alphas = [0.0, 0.25, 0.5, 0.75, 1.0]
        written.append(strip([(f"alpha {al:g}", run(dataclasses.replace(adain, alpha=al))) for al in alphas],
                             a.out / "style_alpha.png", side))
    if "blend" in todo:
        two = dataclasses.replace(adain, styles=(str(a.style), str(a.style2)))
        blend = [("style 1", style)]
        for w in ((1.0, 0.0), (0.7, 0.3), (0.3, 0.7), (0.0, 1.0)):
            job = dataclasses.replace(two, gatys=dataclasses.replace(two.gatys, style_weights=w))
            blend.append((f"{w[0]:g} : {w[1]:g}", run(job)))
        blend.append(("style 2", style2))
        written.append(strip(blend, a.out / "style_blend.png", side))
    if "colour" in todo:
        written.append(strip([("content", content), ("adain", out_adain),
                              ("adain + colour", run(dataclasses.replace(adain, preserve_color=True))),
                              ("fast", out_fast),
                              ("fast + colour", run(dataclasses.replace(fast, preserve_color=True)))],
                             a.out / "style_colour.png", side))
    for p in written:
        print(f"wrote {p} ({p.stat().st_size // 1024} KB)")
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
