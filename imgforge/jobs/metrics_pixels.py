"""The pixel-space and generator-space parts of the ``metrics`` job: Parzen-window likelihood, paired PSNR / SSIM /
LPIPS, and perceptual path length (the feature-space scores and the inputs live in :mod:`imgforge.jobs.metrics`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import InputError, UsageError, WeightsError
from ..metrics import scores
from ..progress import ProgressEvent, ProgressFn, emit, note
from ..runtime import Runtime
from .metrics import MetricsConfig, _base, generate_uint8, list_images, read_uint8


# ---- pixel-space metrics ------------------------------------------------------------------------------------------


def _pixels(arrays: List[np.ndarray], crop: Optional[int], grey: bool) -> np.ndarray:
    x = np.stack(arrays).astype(np.float64) / 255.0  # (N, H, W, 3)
    if crop:
        h, w = x.shape[1:3]
        if crop > min(h, w):
            raise UsageError(f"--crop {crop} is larger than the images ({h}x{w})")
        t, l = (h - crop) // 2, (w - crop) // 2
        x = x[:, t:t + crop, l:l + crop]
    if grey:
        x = x.mean(axis=3)
    return x.reshape(len(x), -1)


def _read_all(paths: Sequence[str], progress: Optional[ProgressFn], label: str) -> Tuple[List[np.ndarray], List[str]]:
    arrays, bad = [], []
    for p in paths:
        try:
            arrays.append(read_uint8(p))
        except InputError as exc:
            bad.append(p)
            note(progress, label, f"skipped {exc}")
    return arrays, bad


def parzen_job(cfg: MetricsConfig, runtime: Runtime, progress: Optional[ProgressFn]) -> Dict[str, Any]:
    """``parzen HELD_OUT [FAKE]``: the held-out images are split alternately (even positions in sorted order:
    sigma selection; odd: test), the model is FAKE (images) or the generator."""
    if not cfg.inputs:
        raise UsageError("parzen needs the held-out images: imgforge metrics parzen HELD_OUT [FAKE]")
    held, bad_h = _read_all(list_images(cfg.inputs[0]), progress, "parzen")
    if len(held) < 2:
        raise InputError(f"{cfg.inputs[0]}: Parzen needs at least 2 held-out images (one for sigma, one to test)")
    if len({a.shape for a in held}) > 1:
        raise InputError(f"{cfg.inputs[0]}: the held-out images differ in size")
    if len(cfg.inputs) > 1:
        model_arr, bad_m = _read_all(list_images(cfg.inputs[1]), progress, "parzen")
    else:
        model_arr = [a for b in generate_uint8(cfg.generator, cfg.n, cfg.first_seed, cfg.trunc, runtime,
                                               cfg.batch_size, progress) for a in b]
        bad_m = []
    if not model_arr:
        raise InputError("Parzen: no model samples could be read")
    if {a.shape for a in model_arr} != {held[0].shape}:
        raise InputError(f"Parzen: model samples {sorted({a.shape for a in model_arr})} and held-out images "
                         f"{held[0].shape} differ in size")
    h = _pixels(held, cfg.crop, cfg.grey)
    s = _pixels(model_arr, cfg.crop, cfg.grey)
    r = scores.parzen(s, h[0::2], h[1::2], progress=progress)
    d = _base("parzen", None, {"held_out": len(held), "held_out_skipped": len(bad_h), "valid": r["n_valid"],
                               "test": r["n_test"], "model": len(model_arr), "model_skipped": len(bad_m)},
              cfg.first_seed if len(cfg.inputs) < 2 else None)
    d.update(value=r["value"], std=r["std"], std_kind="standard error over test points", sigma=r["sigma"],
             sigma_grid=r["grid"], valid_ll=r["valid_ll"], extractor="pixels",
             pixels=f"{'grey' if cfg.grey else 'rgb'} in [0, 1]" + (f", centre crop {cfg.crop}" if cfg.crop else ""),
             dim=int(h.shape[1]), model=cfg.inputs[1] if len(cfg.inputs) > 1 else (cfg.generator or "default generator"))
    return d


def _pair_paths(a: str, b: str) -> List[Tuple[str, str]]:
    pa, pb = list_images(a), list_images(b)
    if len(pa) == 1 and len(pb) == 1:
        return [(pa[0], pb[0])]
    mb = {Path(p).stem: p for p in pb}
    pairs = [(p, mb[Path(p).stem]) for p in pa if Path(p).stem in mb]
    if len(pairs) != len(pa) or len(pairs) != len(pb):
        raise InputError(f"{a} ({len(pa)} images) and {b} ({len(pb)} images) do not pair up by file name "
                         f"({len(pairs)} common names); paired metrics need the same names in both")
    return pairs


def perceptual_distance(cfg: MetricsConfig, runtime: Runtime, progress: Optional[ProgressFn]
                        ):  # type: ignore[no-untyped-def]
    """``(distance(x01, y01) -> (B,), description, is_lpips)``: LPIPS when ``cfg.lpips_weights`` is given (with the
    published VGG-16 found locally, or ``cfg.weights``), else the labelled VGG perceptual distance."""
    from ..hub.store import resolve

    if cfg.lpips_weights:
        from ..hub.encoders import load_style_encoder
        from ..metrics.lpips import LPIPS, read_lpips_linear

        try:
            vgg_path = resolve(cfg.weights or "vgg16", offline=True)
        except WeightsError:
            raise WeightsError("LPIPS needs the ImageNet VGG-16: run `imgforge weights fetch vgg16` or pass "
                               "--weights FILE") from None
        vgg, _ = load_style_encoder(vgg_path, device=runtime.device)
        model = LPIPS(vgg, read_lpips_linear(resolve(cfg.lpips_weights))).to(runtime.device).eval()
        return model, f"LPIPS v0.1 VGG-16 (linear layers {Path(cfg.lpips_weights).name}, VGG {Path(vgg_path).name})", True
    from ..losses.perceptual import PerceptualDistance
    from ..hub.encoders import resolve_perceptual_encoder

    enc, desc = resolve_perceptual_encoder(cfg.weights, device=runtime.device, progress=progress)
    dist = PerceptualDistance(enc, normalize="none", min_size=64)

    def fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return dist(x, dist.target(y))

    return fn, f"VGG perceptual distance, not LPIPS (no --lpips-weights): {desc}", False


def paired_job(cfg: MetricsConfig, runtime: Runtime, progress: Optional[ProgressFn]) -> Dict[str, Any]:
    from ..metrics import psnr, ssim

    if len(cfg.inputs) != 2:
        raise UsageError(f"{cfg.metric} compares two images or folders: imgforge metrics {cfg.metric} A B")
    pairs = _pair_paths(*cfg.inputs)
    dist, desc, is_lpips = perceptual_distance(cfg, runtime, progress) if cfg.metric == "lpips" else (None, None, False)
    vals, bad = [], 0
    for i, (pa, pb) in enumerate(pairs):
        try:
            xa, xb = read_uint8(pa), read_uint8(pb)
        except InputError as exc:
            bad += 1
            note(progress, cfg.metric, f"skipped pair: {exc}")
            continue
        if xa.shape != xb.shape:
            raise InputError(f"{pa} is {xa.shape[1]}x{xa.shape[0]} but {pb} is {xb.shape[1]}x{xb.shape[0]}; "
                             f"{cfg.metric} needs images of the same size")
        ta = torch.from_numpy(xa).permute(2, 0, 1)[None].double() / 255
        tb = torch.from_numpy(xb).permute(2, 0, 1)[None].double() / 255
        if cfg.metric == "psnr":
            vals.append(float(psnr(ta, tb)[0]))
        elif cfg.metric == "ssim":
            vals.append(float(ssim(ta, tb)[0]))
        else:
            with torch.no_grad():
                y = runtime.to_input(tb.float())
                vals.append(float(dist(runtime.to_input(ta.float()), y)[0]))  # type: ignore[misc]
        emit(progress, ProgressEvent(task=cfg.metric, step=i + 1, total=len(pairs), unit="pair"))
    if not vals:
        raise InputError(f"{cfg.metric}: no readable image pair")
    v = np.array(vals)
    finite = v[np.isfinite(v)]
    d = _base(cfg.metric if cfg.metric != "lpips" or is_lpips else "perceptual_distance", None,
              {"pairs": len(vals), "pairs_skipped": bad}, None)
    d.update(value=float(finite.mean()) if len(finite) else float("inf"),
             std=float(finite.std()) if len(finite) else None, extractor=None)
    if cfg.metric == "psnr":
        d.update(unit="dB", identical_pairs=int((~np.isfinite(v)).sum()),
                 note="mean over pairs with finite PSNR (identical pairs are counted in identical_pairs)")
    if cfg.metric == "lpips":
        d.update(distance=desc)
        if not is_lpips:
            d.update(note="without --lpips-weights this is the VGG perceptual distance (sum of per-layer mean "
                     "squared feature differences), NOT comparable with LPIPS")
    return d


def ppl_job(cfg: MetricsConfig, runtime: Runtime, progress: Optional[ProgressFn]) -> Dict[str, Any]:
    from ..generator_api import load_generator_for
    from ..metrics.ppl import PPL_EPS, perceptual_path_length

    G, name = load_generator_for(cfg.generator, runtime.device, progress)
    distance, desc, is_lpips = perceptual_distance(cfg, runtime, progress)
    r = perceptual_path_length(G, distance, cfg.n, space=cfg.space, sampling=cfg.sampling, eps=PPL_EPS,
                               seed=cfg.first_seed, batch_size=min(cfg.batch_size, 32), progress=progress)
    d = _base(f"ppl_{cfg.space}", None, {"samples": cfg.n}, cfg.first_seed)
    d.update(value=r["value"], std=r["std"], space=cfg.space, sampling=cfg.sampling, eps=PPL_EPS,
             generator=name, extractor="lpips" if is_lpips else "perceptual", distance=desc)
    if not is_lpips:
        d.update(note="distance is not LPIPS (no --lpips-weights): not comparable with published PPL")
    return d


