#!/usr/bin/env python3
"""Recipe of ``weights/imgforge-vgg19-embedded.safetensors``: a random-feature VGG-19 (up to relu5_1).

ImageNet VGG weights cannot be shipped or fetched offline, so imgforge ships an encoder whose filters are *not
trained*. Random convolutional features are known to work for texture synthesis and style transfer (Ustyuzhaninov
et al., "What does it take to generate natural textures?", ICLR 2017; He, Wang & Hopcroft, "A powerful generative
model using random weights for the deep image representation", NeurIPS 2016). Which kind of random encoder works
best was measured with ``benchmarks/encoder_choice.py`` (see weights/README.md); this recipe builds the winner:

1. Filters, conv by conv (t = 0-based conv number): uniform random filters from the splitmix64 finaliser of
   ``(seed << 40) | (t << 32) | j`` (as the compat fixtures' "FXH16" recipe: k in [-1024, 1023],
   ``w = k / 1024 * sqrt(6 / fan_in)``). Then the first ``data_mix`` (default half) of the output channels are
   replaced by random combinations of the layer's centred input patches, sampled at splitmix positions of the
   ``--data`` images: ``w_c = sum_i g_ci x_i``. Such a filter is distributed as N(0, S) with S the patch covariance,
   so it responds to image structure more than to pixel noise; the random half keeps the high frequencies visible.
2. Standardisation, layer by layer on the same images: each channel's pre-activation gets mean 0 and std 1
   (weights / std, bias = -mean / std), then each channel is scaled so that its mean post-ReLU activation is 1
   (Gatys et al.'s normalisation of VGG-19; a ReLU is positively homogeneous, so this folds into the weights).
   The plain Gatys normalisation of purely random filters (no standardisation) leaves a few channels that fire
   rarely with huge scales; the optimisation then stalls (measured).
3. Data: every image in the ``--data`` folders (sorted by name), RGB, ``--long-side`` px on the long side (PIL
   bicubic), in [0, 1]; the model applies the ImageNet mean/std normalisation itself. All arithmetic is float64;
   per-channel scales are rounded to 8 significant bits; the file is float16 safetensors with metadata, its header
   rewritten in a fixed key order (safetensors itself orders it differently in every process).

Deterministic: the same data, seed and options give the same file bit for bit (checked by building twice).

Usage (from the repository root)::

    python weights/recipes/make_embedded_encoder.py --data ../shared/data/photos ../shared/data/paintings \
        ../shared/data/faces --out weights/imgforge-vgg19-embedded.safetensors
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from imgforge.models.vgg import TorchvisionVGG  # noqa: E402

RECIPE_NAME = "make_embedded_encoder.py v1"
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def splitmix_u64(seed: int, t: int, n: int) -> np.ndarray:
    """splitmix64's finaliser of ``(seed << 40) | (t << 32) | j`` for j = 0 .. n-1 (uint64)."""
    j = np.arange(n, dtype=np.uint64)
    x = (np.uint64(seed) << np.uint64(40)) | (np.uint64(t) << np.uint64(32)) | j
    with np.errstate(over="ignore"):
        z = x + _GAMMA
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    return z


def splitmix_ints(seed: int, t: int, n: int) -> np.ndarray:
    """Integers in [-1024, 1023]: the top 11 bits of :func:`splitmix_u64` (the compat fixtures' FXH16 recipe)."""
    return (splitmix_u64(seed, t, n) >> np.uint64(53)).astype(np.int64) - 1024


def sample_patches(a: torch.Tensor, positions: np.ndarray) -> torch.Tensor:
    """3x3 zero-padded patches of ``a: (1, C, H, W)`` at flat ``positions`` -> (C*9, K), laid out as conv weights."""
    _, c, h, w = a.shape
    pos = torch.from_numpy(positions.astype(np.int64))
    y, x = pos // w, pos % w
    ap = torch.nn.functional.pad(a[0], (1, 1, 1, 1))
    taps = [ap[:, y + dy, x + dx] for dy in range(3) for dx in range(3)]  # 9 x (C, K)
    return torch.stack(taps, 1).reshape(c * 9, -1)


def random_filters(seed: int, t: int, shape: Tuple[int, ...], init: str, centre: bool) -> np.ndarray:
    """Float64 filters of ``shape`` (C_out, C_in, kh, kw) for conv number ``t``."""
    n = int(np.prod(shape))
    fan_in = int(np.prod(shape[1:]))
    w = splitmix_ints(seed, t, n).astype(np.float64) / 1024.0 * math.sqrt(6.0 / fan_in)
    w = w.reshape(shape[0], fan_in)
    if init == "orthogonal":
        rows, cols = w.shape
        q, r = np.linalg.qr(w.T if rows <= cols else w)
        q = q * np.sign(np.diag(r))[None, :]
        w = (q.T if rows <= cols else q) * math.sqrt(2.0)
    elif init != "uniform":
        raise ValueError(f"unknown init {init!r}")
    if centre:
        w = w - w.mean(axis=1, keepdims=True)
    return w.reshape(shape)


def load_images(folders: Sequence[Path], long_side: int) -> Tuple[List[torch.Tensor], List[str]]:
    """All images in ``folders`` (sorted by name) as (1, 3, H, W) float64 in [0, 1], long side ``long_side``."""
    from PIL import Image

    imgs: List[torch.Tensor] = []
    names: List[str] = []
    for folder in folders:
        files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTS)
        if not files:
            raise SystemExit(f"no images in {folder}")
        for p in files:
            with Image.open(p) as im:
                im = im.convert("RGB")
                s = long_side / max(im.size)
                im = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.BICUBIC)
                a = np.asarray(im, dtype=np.uint8)
            imgs.append(torch.from_numpy(a.astype(np.float64) / 255.0).permute(2, 0, 1).unsqueeze(0).contiguous())
            names.append(f"{Path(folder).name}/{p.name}")
    return imgs, names


def round_sig(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Round positive float64 values to ``bits`` significant bits."""
    m, e = torch.frexp(x)
    return torch.ldexp(torch.round(m * 2.0**bits) / 2.0**bits, e)


def build_encoder(
    images: Sequence[torch.Tensor],
    *,
    seed: int = 2024,
    init: str = "uniform",
    centre: bool = False,
    normalise: str = "standardise",
    widths: Optional[Sequence[int]] = None,
    last_layer: str = "relu5_1",
    data_mix: float = 0.5,
    patch_samples: int = 16384,
) -> TorchvisionVGG:
    """Build the encoder in float64 (see the module docstring); the defaults are those of the shipped file.

    ``data_mix``: fraction of each conv's output channels made of data-shaped filters (0 = all random).
    ``normalise``: ``gatys`` (mean post-ReLU activation 1 per channel), ``standardise`` (zero-mean unit-std
    pre-activation, then the same scaling), ``none`` (the raw random filters).
    """
    model = TorchvisionVGG("vgg19", last_layer=last_layer, widths=widths).double().eval()
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        for t, conv in enumerate(convs):
            w = random_filters(seed, t, tuple(conv.weight.shape), init, centre)
            conv.weight.copy_(torch.from_numpy(w))
            conv.bias.zero_()
        if normalise == "none":
            return model
        if normalise not in ("gatys", "standardise"):
            raise ValueError(f"unknown normalise {normalise!r}")
        acts = [model.normalize(x) for x in images]
        for layer in model.features:
            if isinstance(layer, nn.Conv2d) and data_mix > 0:
                # replace the first data_mix of the channels by random combinations of centred input patches:
                # w_c = sum_i g_ci x_i, distributed as N(0, S) with S the patch covariance (filters shaped like
                # the data: strong responses to image structure, weak to pixel noise)
                t = convs.index(layer)
                n_data = int(round(data_mix * layer.weight.shape[0]))
                per_img = -(-patch_samples // len(acts))
                cols = []
                for i, a in enumerate(acts):
                    n_pos = a.shape[2] * a.shape[3]
                    pick = splitmix_u64(seed + 1, t * 64 + i, per_img) % np.uint64(n_pos)
                    cols.append(sample_patches(a, pick))
                x = torch.cat(cols, 1)
                x = x - x.mean(1, keepdim=True)
                g = torch.from_numpy(splitmix_ints(seed + 2, t, n_data * x.shape[1]).astype(np.float64) / 1024.0)
                w = g.reshape(n_data, x.shape[1]) @ x.T
                rand_norm = layer.weight[:n_data].reshape(n_data, -1).norm(dim=1, keepdim=True)
                w = w / w.norm(dim=1, keepdim=True).clamp_min(1e-12) * rand_norm  # (the scale is normalised later)
                layer.weight[:n_data] = w.reshape(layer.weight[:n_data].shape)
            acts = [layer(a) for a in acts]
            if isinstance(layer, nn.Conv2d) and normalise == "standardise":
                # zero-mean, unit-std pre-activation per channel (then the Gatys scaling below)
                flat = torch.cat([o.transpose(0, 1).reshape(o.shape[1], -1) for o in acts], 1)
                mu, sd = flat.mean(1), flat.std(1).clamp_min(1e-12)
                layer.weight.div_(sd.reshape(-1, 1, 1, 1))
                layer.bias.copy_(-mu / sd)
                acts = [(o - mu.reshape(1, -1, 1, 1)) / sd.reshape(1, -1, 1, 1) for o in acts]
            if isinstance(layer, nn.Conv2d):
                # relu(scale * conv(x)) = scale * relu(conv(x)) for scale > 0: scale the conv output in place.
                total = sum(torch.relu(o).sum(dim=(0, 2, 3)) for o in acts)
                count = sum(o.shape[0] * o.shape[2] * o.shape[3] for o in acts)
                mean = total / count
                scale = torch.where(mean > 1e-12, round_sig(1.0 / mean.clamp_min(1e-300)), torch.ones_like(mean))
                layer.weight.mul_(scale.reshape(-1, 1, 1, 1))
                layer.bias.mul_(scale)
                acts = [o * scale.reshape(1, -1, 1, 1) for o in acts]
    return model


def canonicalise_header(path: Path) -> None:
    """Rewrite a safetensors header in a fixed order (metadata keys sorted, then tensors by offset).

    safetensors writes its header from hash maps, so the key order (and thus the file's bytes) changes from one
    process to the next; the content, and so the header's length, does not. Tensor bytes are left untouched.
    """
    from imgforge.fsutil import atomic_write_bytes

    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    ordered: Dict[str, object] = {}
    meta = header.pop("__metadata__", None)
    if meta is not None:
        ordered["__metadata__"] = dict(sorted(meta.items()))
    for k in sorted(header, key=lambda k: (header[k]["data_offsets"][0], k)):
        ordered[k] = header[k]
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if len(text) > n:
        raise RuntimeError(f"{path}: canonical header is longer than the original ({len(text)} > {n})")
    atomic_write_bytes(path, raw[:8] + text + b" " * (n - len(text)) + raw[8 + n :])


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", nargs="+", required=True, type=Path, help="folders of public-domain images")
    ap.add_argument("--out", type=Path, required=True, help="output .safetensors")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--init", choices=("uniform", "orthogonal"), default="uniform")
    ap.add_argument("--centre", action="store_true", help="subtract each random filter's mean")
    ap.add_argument("--normalise", choices=("standardise", "gatys", "none"), default="standardise")
    ap.add_argument("--data-mix", type=float, default=0.5, help="fraction of data-shaped filters per layer")
    ap.add_argument("--widths", type=int, nargs=5, default=None, help="block widths (default 64 128 256 512 512)")
    ap.add_argument("--last-layer", default="relu5_1")
    ap.add_argument("--long-side", type=int, default=256)
    a = ap.parse_args(argv)

    from imgforge.hub.modelfile import save_model_file

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    images, names = load_images(a.data, a.long_side)
    model = build_encoder(
        images,
        seed=a.seed,
        init=a.init,
        centre=a.centre,
        normalise=a.normalise,
        data_mix=a.data_mix,
        widths=a.widths,
        last_layer=a.last_layer,
    )
    kwargs: Dict[str, object] = {"last_layer": a.last_layer}
    if a.widths is not None:
        kwargs["widths"] = list(a.widths)
    args = (
        f"seed={a.seed} init={a.init} centre={a.centre} normalise={a.normalise} data_mix={a.data_mix} "
        f"widths={a.widths} last_layer={a.last_layer} long_side={a.long_side}"
    )
    save_model_file(
        a.out,
        model.state_dict(),
        arch="vgg19",
        arch_kwargs=kwargs,
        dtype=torch.float16,
        extra={
            "name": a.out.stem,
            "description": "random-feature VGG-19 up to relu5_1 (half data-shaped filters), standardised per channel",
            "recipe": RECIPE_NAME,
            "recipe_args": args,
            "data": ", ".join(names),
            "licence": "MIT (weights generated by imgforge's recipe; statistics from public-domain images)",
            "input": "RGB in [0,1]; the ImageNet mean/std normalisation is applied inside the model",
        },
    )
    canonicalise_header(a.out)
    print(f"wrote {a.out} ({a.out.stat().st_size:,} bytes) from {len(names)} images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
