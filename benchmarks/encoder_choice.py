#!/usr/bin/env python3
"""Choose the embedded style encoder by measurement.

Each candidate encoder (built by ``weights/recipes/make_embedded_encoder.py``'s ``build_encoder``) drives Gatys
stylisation of 2 photos x 2 paintings at 256 px with a fixed L-BFGS budget, and texture synthesis of the 2
paintings at 128 px. The results are judged by *other* fixed encoders than the one optimised:

- ``gabor``: a hand-made multi-scale filter bank (oriented even/odd Gabor filters on luminance, centre-surround
  colour-opponent filters, 4 octaves), rectified; style = relative Gram distance per octave, content = relative
  distance of the octave 1-2 responses. It shares nothing with any VGG candidate.
- ``rvgg``: a VGG-19 with Gaussian (torch seed 12345) weights, standardised per channel on the same data; a
  different random draw and normalisation from every candidate.

Lower is better for both distances; the style distance is reported relative to the content image's own distance to
the style (1.0 = no stylisation), the content distance is absolute (0 = the content image).

Usage: ``python benchmarks/encoder_choice.py --data ../shared/data --out /tmp/encbench [--iters 100]``
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imgforge.methods.gatys import GatysConfig, content_distance, resize_long_side, stylize_gatys, style_distance  # noqa: E402
from imgforge.models.vgg import TorchvisionVGG  # noqa: E402

_spec = importlib.util.spec_from_file_location("make_embedded_encoder", REPO / "weights/recipes/make_embedded_encoder.py")
recipe = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(recipe)  # type: ignore[union-attr]


class GaborBank(nn.Module):
    """Fixed multi-scale oriented filter bank with rectified outputs; layers ``oct0`` .. ``oct3``."""

    def __init__(self, octaves: int = 4) -> None:
        super().__init__()
        k = 7
        ys, xs = torch.meshgrid(torch.arange(k) - k // 2, torch.arange(k) - k // 2, indexing="ij")
        xs, ys = xs.double(), ys.double()
        filters = []
        sigma, freq = 1.6, 0.25
        for o in range(4):
            th = math.pi * o / 4
            u = xs * math.cos(th) + ys * math.sin(th)
            env = torch.exp(-(xs**2 + ys**2) / (2 * sigma**2))
            for phase in (0.0, math.pi / 2):
                g = env * torch.cos(2 * math.pi * freq * u + phase)
                g = g - g.mean()
                filters.append(g / g.abs().sum())
        lum = torch.zeros(8, 3, k, k, dtype=torch.float64)
        for i, f in enumerate(filters):
            lum[i] = f.unsqueeze(0) / 3.0
        # centre-surround and flat colour-opponent filters on R-G and B-Y
        env_c = torch.exp(-(xs**2 + ys**2) / (2 * 1.0**2))
        env_s = torch.exp(-(xs**2 + ys**2) / (2 * 2.5**2))
        dog = env_c / env_c.sum() - env_s / env_s.sum()
        flat = env_s / env_s.sum()
        col = torch.zeros(6, 3, k, k, dtype=torch.float64)
        rg = torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64)
        by = torch.tensor([-0.5, -0.5, 1.0], dtype=torch.float64)
        ll = torch.tensor([1 / 3, 1 / 3, 1 / 3], dtype=torch.float64)
        for i, (c, sp) in enumerate([(rg, flat), (by, flat), (ll, dog), (rg, dog), (by, dog), (ll, flat)]):
            col[i] = c.reshape(3, 1, 1) * sp.unsqueeze(0)
        self.register_buffer("w", torch.cat([lum, col]).float())
        self.octaves = octaves

    def forward(self, x: Tensor, layers: Optional[Sequence[str]] = None) -> Dict[str, Tensor]:
        out = {}
        h = x - 0.5
        for o in range(self.octaves):
            r = F.conv2d(F.pad(h, (3, 3, 3, 3), mode="reflect"), self.w)
            out[f"oct{o}"] = torch.cat([F.relu(r), F.relu(-r)], 1) * 10.0
            h = F.avg_pool2d(h, 2)
        return {k: out[k] for k in (layers or out)} if layers else out


def reference_vgg(images: Sequence[Tensor]) -> TorchvisionVGG:
    """Gaussian VGG-19 (torch seed 12345), each conv standardised (zero-mean unit-std pre-activation) on ``images``."""
    gen = torch.Generator().manual_seed(12345)
    model = TorchvisionVGG("vgg19", last_layer="relu5_1").double().eval()
    with torch.no_grad():
        acts = [model.normalize(x) for x in images]
        for layer in model.features:
            if isinstance(layer, nn.Conv2d):
                fan_in = layer.weight[0].numel()
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen, dtype=torch.float64) * math.sqrt(2 / fan_in))
                layer.bias.zero_()
                outs = [layer(a) for a in acts]
                flat = torch.cat([o.transpose(0, 1).reshape(o.shape[1], -1) for o in outs], 1)
                mu, sd = flat.mean(1), flat.std(1).clamp_min(1e-12)
                layer.weight.div_(sd.reshape(-1, 1, 1, 1))
                layer.bias.copy_(-mu / sd)
                acts = [(o - mu.reshape(1, -1, 1, 1)) / sd.reshape(1, -1, 1, 1) for o in outs]
            else:
                acts = [layer(a) for a in acts]
    return model.float()


def load(path: Path, long_side: int) -> Tensor:
    from PIL import Image

    with Image.open(path) as im:
        a = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return resize_long_side(torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous(), long_side)


def save(t: Tensor, path: Path) -> None:
    from PIL import Image

    a = (t[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(a).save(path)


CANDIDATES: Dict[str, Dict[str, object]] = {
    # (a) random filters, Gatys et al.'s normalisation (mean post-ReLU activation 1 per channel)
    "uniform_gatys": dict(init="uniform", normalise="gatys", data_mix=0.0),
    # (b) random filters, pre-activations standardised per channel (then the same scaling)
    "uniform_std": dict(init="uniform", normalise="standardise", data_mix=0.0),
    # (b') half of each layer's filters are random combinations of its input patches (data-shaped)
    "mix_std": dict(init="uniform", normalise="standardise", data_mix=0.5),
    # the same at half width (4x fewer FLOPs and parameters)
    "mix_std_half": dict(init="uniform", normalise="standardise", data_mix=0.5, widths=(32, 64, 128, 256, 256)),
}

STYLE_G = ("oct0", "oct1", "oct2", "oct3")
CONTENT_G = ("oct1", "oct2")
STYLE_R = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


def evaluate(out: Tensor, content: Optional[Tensor], style: Tensor, base_s: Dict[str, float], judges) -> Dict[str, float]:
    res = {}
    for jn, (enc, sl, cl) in judges.items():
        res[f"style_{jn}"] = style_distance(out, [style], enc, sl) / base_s[jn]
        if content is not None:
            res[f"content_{jn}"] = content_distance(out, content, enc, cl)
    return res


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--iters", type=int, default=100)
    ap.add_argument("--tex-iters", type=int, default=100)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--candidates", nargs="*", default=list(CANDIDATES))
    ap.add_argument("--photos", nargs="*", default=["astronaut.png", "chelsea.png"])
    ap.add_argument("--paintings", nargs="*", default=["starry_night.jpg", "the_scream.jpg"])
    ap.add_argument("--style-weight", type=float, default=None)
    ap.add_argument("--tv-weight", type=float, default=None)
    ap.add_argument("--all-pairs", action="store_true", help="every photo x every painting (default: zip them)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    a.out.mkdir(parents=True, exist_ok=True)
    norm_imgs, _ = recipe.load_images([a.data / "photos", a.data / "paintings", a.data / "faces"], 256)
    judges = {
        "gabor": (GaborBank(), STYLE_G, CONTENT_G),
        "rvgg": (reference_vgg(norm_imgs), STYLE_R, ("relu4_2",)),
    }
    photos = {p: load(a.data / "photos" / p, a.size) for p in a.photos}
    paints = {p: load(a.data / "paintings" / p, a.size) for p in a.paintings}
    pairs = [(p, q) for p in photos for q in paints] if a.all_pairs else list(zip(photos, paints))
    base = {(p, q): {jn: style_distance(photos[p], [paints[q]], j[0], j[1]) for jn, j in judges.items()} for p, q in pairs}
    cfg_kw: Dict[str, float] = {}
    if a.style_weight is not None:
        cfg_kw["style_weight"] = a.style_weight
    if a.tv_weight is not None:
        cfg_kw["tv_weight"] = a.tv_weight
    results: Dict[str, Dict[str, float]] = {}
    for name in a.candidates:
        spec = dict(CANDIDATES[name])
        enc = recipe.build_encoder(norm_imgs, **spec).float()  # type: ignore[arg-type]
        rows: List[Dict[str, float]] = []
        t0 = time.perf_counter()
        for p, q in pairs:
            c, s = photos[p], paints[q]
            cfg = GatysConfig(size=None, iterations=a.iters, **cfg_kw)  # type: ignore[arg-type]
            out = stylize_gatys(c, [s], enc, cfg)
            save(out, a.out / f"{name}__{Path(p).stem}__{Path(q).stem}.png")
            rows.append(evaluate(out, c, s, base[(p, q)], judges))
        t_sty = (time.perf_counter() - t0) / len(rows)
        tex_rows = []
        for q, s in paints.items():
            cfg = GatysConfig(size=None, iterations=a.tex_iters, init="noise", output_size=(128, 128), **cfg_kw)  # type: ignore[arg-type]
            s128 = resize_long_side(s, 128)
            out = stylize_gatys(None, [s128], enc, cfg)
            save(out, a.out / f"{name}__texture__{Path(q).stem}.png")
            tb = {jn: style_distance(torch.full_like(out, 0.5), [s128], j[0], j[1]) for jn, j in judges.items()}
            tex_rows.append({f"tex_{k}": v for k, v in evaluate(out, None, s128, tb, judges).items()})
        summary = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
        summary.update({k: float(np.mean([r[k] for r in tex_rows])) for k in tex_rows[0]})
        summary["sec_per_pair"] = t_sty
        results[name] = summary
        print(name, json.dumps({k: round(v, 4) for k, v in summary.items()}), flush=True)
    (a.out / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
