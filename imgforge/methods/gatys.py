"""Gatys et al. neural style transfer and texture synthesis by direct image optimisation.

The image is optimised so that its encoder features match the content image at the content layers and its Gram
matrices match the (weighted blend of the) style images' Gram matrices at the style layers, with a total-variation
smoothness term. ``content=None`` gives texture synthesis (style terms only, from noise, at any output size).

Loss (``loss_normalization="relative"``, the default)::

    content = content_weight * sum_l mean((F_l(x) - F_l(c))^2) / mean(F_l(c)^2)
    style   = style_weight   * sum_l w_l * mean((G_l(x) - G*_l)^2) / mean(G*_l^2),   G*_l = sum_i a_i G_l(s_i)
    tv      = tv_weight      * (mean|x[..., 1:, :] - x[..., :-1, :]| + mean|x[..., :, 1:] - x[..., :, :-1]|)

with Gram matrices normalised by C*H*W (neural-style-pt, fast-neural-style). Dividing each term by its target's
energy makes the weights independent of the encoder's activation scale, so the same defaults work for the embedded
random-feature encoder and for ImageNet VGG-19. ``loss_normalization="none"`` drops the divisions and uses
neural-style-pt's sums (``tv = tv_weight * (sum|dx| + sum|dy|)``); its weights then depend on the encoder.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError, UsageError
from ..ops.stats import gram
from ..progress import ProgressEvent, ProgressFn, emit
from ..runtime import Runtime

DEFAULT_STYLE_LAYERS: Tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
DEFAULT_CONTENT_LAYERS: Tuple[str, ...] = ("relu4_2",)


@dataclass(frozen=True)
class GatysConfig:
    """Settings of :func:`stylize_gatys` (defaults after neural-style-pt, tuned for the relative losses).

    Attributes:
        content_layers: encoder layers of the content loss (neural-style-pt: relu4_2).
        style_layers: encoder layers of the style loss (neural-style-pt: relu1_1 ... relu5_1).
        style_layer_weights: one weight per style layer (default: 1 each).
        content_weight: weight of the content term.
        style_weight: weight of the style term.
        tv_weight: weight of the total-variation term (0 disables it).
        loss_normalization: ``"relative"`` (each term divided by its target's energy) or ``"none"``.
        optimizer: ``"lbfgs"`` (one L-BFGS run of ``iterations`` evaluations, history 100, no line search, as
            neural-style-pt) or ``"adam"``.
        lr: step size; ``None`` = 1.0 for L-BFGS, 0.02 for Adam (pixel units of the [0, 1] image).
        line_search: L-BFGS with a strong-Wolfe line search (more robust, several evaluations per step).
        iterations: loss evaluations (L-BFGS) or steps (Adam).
        init: ``"content"`` (start from the content image) or ``"noise"`` (0.5 + 0.1 * N(0, 1), seeded).
        size: long side of the working (and output) image in pixels; ``None`` keeps the content size.
        output_size: (H, W) of the output for texture synthesis (``content=None``); ignored otherwise.
        style_scale: style images are resized so that their long side is ``style_scale`` x the output's long side.
        style_weights: blend weights of several styles (normalised to sum 1; default equal).
        seed: seed of the noise initialisation (used when no generator is passed).
        progress_every: emit a progress event every this many iterations.
    """

    content_layers: Tuple[str, ...] = DEFAULT_CONTENT_LAYERS
    style_layers: Tuple[str, ...] = DEFAULT_STYLE_LAYERS
    style_layer_weights: Optional[Tuple[float, ...]] = None
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 5.0
    loss_normalization: str = "relative"
    optimizer: str = "lbfgs"
    lr: Optional[float] = None
    line_search: bool = False
    iterations: int = 300
    init: str = "content"
    size: Optional[int] = 512
    output_size: Optional[Tuple[int, int]] = None
    style_scale: float = 1.0
    style_weights: Optional[Tuple[float, ...]] = None
    seed: int = 0
    progress_every: int = 10

    def validate(self) -> None:
        """Raise :class:`UsageError` for out-of-range or contradictory settings."""
        if self.optimizer not in ("lbfgs", "adam"):
            raise UsageError(f"optimizer must be 'lbfgs' or 'adam', got {self.optimizer!r}")
        if self.init not in ("content", "noise"):
            raise UsageError(f"init must be 'content' or 'noise', got {self.init!r}")
        if self.loss_normalization not in ("relative", "none"):
            raise UsageError(f"loss_normalization must be 'relative' or 'none', got {self.loss_normalization!r}")
        if self.iterations < 0:
            raise UsageError(f"iterations must be >= 0, got {self.iterations}")
        if self.size is not None and self.size < 16:
            raise UsageError(f"size must be at least 16 pixels, got {self.size}")
        if self.style_scale <= 0:
            raise UsageError(f"style_scale must be > 0, got {self.style_scale}")
        if min(self.content_weight, self.style_weight, self.tv_weight) < 0:
            raise UsageError("content_weight, style_weight and tv_weight must be >= 0")
        if not self.style_layers:
            raise UsageError("style_layers must name at least one layer")
        if self.style_layer_weights is not None and len(self.style_layer_weights) != len(self.style_layers):
            raise UsageError(
                f"style_layer_weights has {len(self.style_layer_weights)} values for {len(self.style_layers)} style layers"
            )
        if self.output_size is not None and (len(self.output_size) != 2 or min(self.output_size) < 16):
            raise UsageError(f"output_size must be (H, W) with both at least 16, got {self.output_size}")


def _check_image(t: Tensor, what: str) -> None:
    if not isinstance(t, Tensor) or t.dim() != 4 or t.shape[0] != 1 or t.shape[1] != 3:
        shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
        raise InputError(f"{what} must be a (1, 3, H, W) tensor in [0, 1], got {shape}")
    if not t.is_floating_point():
        raise InputError(f"{what} must be a float tensor in [0, 1], got {t.dtype}")
    if t.shape[2] < 16 or t.shape[3] < 16:
        raise InputError(f"{what} is too small ({t.shape[3]}x{t.shape[2]} px); at least 16x16 is needed")


def resize_long_side(img: Tensor, long_side: int) -> Tensor:
    """Resize ``img: (B, C, H, W)`` so that max(H, W) == ``long_side`` (bilinear, antialiased when shrinking)."""
    h, w = img.shape[-2:]
    if max(h, w) == long_side:
        return img
    s = long_side / max(h, w)
    size = (max(1, round(h * s)), max(1, round(w * s)))
    return F.interpolate(img, size=size, mode="bilinear", align_corners=False, antialias=s < 1).clamp(0, 1)


def _features(encoder: nn.Module, x: Tensor, layers: Sequence[str], dtype: Optional[torch.dtype],
              channels_last: bool = False) -> Dict[str, Tensor]:
    """Encoder features of ``x``; with ``dtype`` (the Runtime's autocast dtype) the forward runs under autocast and
    the features come back in float32 (Gram matrices and losses are accumulated in float32). ``channels_last``: the
    encoder runs on a channels_last copy of ``x`` (a 3-channel image: a small copy; the optimised tensor itself stays
    NCHW, as L-BFGS flattens its gradient)."""
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    if dtype is None:
        return dict(encoder(x, layers))
    with torch.autocast(device_type=x.device.type, dtype=dtype):
        feats = encoder(x, layers)
    return {k: _acc(v) for k, v in feats.items()}


def _acc(t: Tensor) -> Tensor:
    """``t`` in the accumulation dtype of the losses: float32 for bf16/fp16 features (float64 stays float64)."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()


def _tv(x: Tensor, relative: bool) -> Tensor:
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs()
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs()
    return dy.mean() + dx.mean() if relative else dy.sum() + dx.sum()


def _blend_weights(n: int, weights: Optional[Sequence[float]]) -> List[float]:
    if weights is None:
        return [1.0 / n] * n
    if len(weights) != n:
        raise UsageError(f"{len(weights)} style weights given for {n} style images")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise UsageError(f"style weights must be >= 0 with a positive sum, got {list(weights)}")
    total = float(sum(weights))
    return [float(w) / total for w in weights]


class _Objective:
    """Holds the targets and evaluates the three loss terms for an image ``x: (1, 3, H, W)``."""

    def __init__(
        self,
        encoder: nn.Module,
        cfg: GatysConfig,
        content: Optional[Tensor],
        styles: Sequence[Tensor],
        blend: Sequence[float],
        dtype: Optional[torch.dtype] = None,
        channels_last: bool = False,
    ) -> None:
        self.encoder = encoder
        self.cfg = cfg
        self.dtype = dtype
        self.channels_last = channels_last
        self.relative = cfg.loss_normalization == "relative"
        self.content_layers: Tuple[str, ...] = cfg.content_layers if content is not None else ()
        self.layers = tuple(dict.fromkeys(self.content_layers + cfg.style_layers))
        lw = cfg.style_layer_weights or (1.0,) * len(cfg.style_layers)
        self.style_layer_weights = dict(zip(cfg.style_layers, lw))
        with torch.no_grad():
            self.content_targets: Dict[str, Tensor] = {}
            if content is not None and self.content_layers:
                feats = _features(encoder, content, self.content_layers, dtype, channels_last)
                self.content_targets = {k: v.detach() for k, v in feats.items()}
            self.gram_targets: Dict[str, Tensor] = {}
            for a, s in zip(blend, styles):
                feats = _features(encoder, s, cfg.style_layers, dtype, channels_last)
                for k in cfg.style_layers:
                    g = gram(_acc(feats[k])) * a
                    self.gram_targets[k] = self.gram_targets[k] + g if k in self.gram_targets else g
        self.content_norm = {k: v.pow(2).mean().clamp_min(1e-12) for k, v in self.content_targets.items()}
        self.gram_norm = {k: v.pow(2).mean().clamp_min(1e-12) for k, v in self.gram_targets.items()}

    def __call__(self, x: Tensor) -> Dict[str, Tensor]:
        cfg = self.cfg
        feats = _features(self.encoder, x, self.layers, self.dtype, self.channels_last)
        zero = x.new_zeros(())
        c_loss = zero
        if cfg.content_weight > 0:
            for k, t in self.content_targets.items():
                term = F.mse_loss(_acc(feats[k]), t)
                c_loss = c_loss + (term / self.content_norm[k] if self.relative else term)
        s_loss = self._style(feats, zero)
        tv = _tv(x, self.relative) if cfg.tv_weight > 0 else zero
        c_loss = cfg.content_weight * c_loss
        s_loss = cfg.style_weight * s_loss
        tv = cfg.tv_weight * tv
        return {"content": c_loss, "style": s_loss, "tv": tv, "total": c_loss + s_loss + tv}

    def _style(self, feats: Dict[str, Tensor], zero: Tensor) -> Tensor:
        """The (unweighted) style term: Gram-matrix distances per layer (subclasses measure style otherwise)."""
        s_loss = zero
        for k, t in self.gram_targets.items():
            term = F.mse_loss(gram(_acc(feats[k])), t)
            s_loss = s_loss + self.style_layer_weights[k] * (term / self.gram_norm[k] if self.relative else term)
        return s_loss


def stylize_gatys(
    content: Optional[Tensor],
    styles: Sequence[Tensor],
    encoder: nn.Module,
    cfg: GatysConfig = GatysConfig(),
    *,
    progress: Optional[ProgressFn] = None,
    generator: Optional[torch.Generator] = None,
    runtime: Optional[Runtime] = None,
) -> Tensor:
    """Optimise an image to have the content of ``content`` and the style of ``styles`` (Gatys et al. 2016).

    Args:
        content: (1, 3, H, W) float in [0, 1], or ``None`` for texture synthesis (then ``cfg.output_size`` gives the
            output size, and the image starts from noise).
        styles: one or more (1, 3, h, w) float in [0, 1] (any sizes); blended by ``cfg.style_weights``.
        encoder: a named-layer encoder (:class:`imgforge.models.vgg.VGGEncoder`) taking RGB in [0, 1]; it is run in
            eval mode, its parameters are not changed. Inputs are moved to the encoder's device.
        cfg: :class:`GatysConfig`.
        progress: receives a :class:`ProgressEvent` every ``cfg.progress_every`` iterations, with metrics
            ``content``, ``style``, ``tv``, ``total`` (weighted losses) and ``sec_per_it``.
        generator: random source of the noise initialisation (default: ``torch.Generator`` seeded with ``cfg.seed``).
        runtime: precision policy (:class:`~imgforge.runtime.Runtime`): its autocast dtype, if any, is used for the
            encoder forward (Gram matrices and losses stay float32), and with its ``channels_last`` on CUDA the
            encoder's weights and activations use that layout during the run (the weights are put back after);
            None = float32, NCHW.
    Returns:
        (1, 3, H', W') float in [0, 1]: the content image's size scaled so that the long side is ``cfg.size`` (or
        the content size when ``cfg.size`` is None), or ``cfg.output_size`` in texture mode. Deterministic for a
        given seed, encoder, device and thread count.
    """
    cfg.validate()
    if not styles:
        raise UsageError("at least one style image is needed")
    blend = _blend_weights(len(styles), cfg.style_weights)
    try:
        param = next(encoder.parameters())
        device = param.device
    except StopIteration:
        device = torch.device("cpu")
    if content is not None:
        _check_image(content, "content image")
        content = content.detach().to(device=device, dtype=torch.float32).clamp(0, 1)
        if cfg.size is not None:
            content = resize_long_side(content, cfg.size)
        out_h, out_w = content.shape[-2:]
    else:
        if cfg.output_size is None:
            raise UsageError("texture synthesis (no content image) needs cfg.output_size=(H, W)")
        out_h, out_w = int(cfg.output_size[0]), int(cfg.output_size[1])
    style_long = max(16, round(max(out_h, out_w) * cfg.style_scale))
    if min(out_h, out_w) < 16:
        raise InputError(f"the output would be {out_w}x{out_h} px; at least 16 px on each side is needed (raise size)")
    style_imgs = []
    for i, s in enumerate(styles):
        _check_image(s, f"style image {i + 1}")
        s = resize_long_side(s.detach().to(device=device, dtype=torch.float32).clamp(0, 1), style_long)
        if min(s.shape[-2:]) < 16:
            raise InputError(
                f"style image {i + 1} becomes {s.shape[-1]}x{s.shape[-2]} px at style_scale {cfg.style_scale}; "
                "at least 16 px on each side is needed (raise style_scale or size)"
            )
        style_imgs.append(s)

    was_training = encoder.training
    grad_flags = [p.requires_grad for p in encoder.parameters()]
    encoder.eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    # channels_last where it pays: cuDNN (tensor cores); on CPUs oneDNN's fp32 VGG convolutions measured the same in
    # both layouts, and any change of summation order sends L-BFGS elsewhere (see runtime.POLICY's notes), so the CPU
    # keeps NCHW, the plain loop's arithmetic (the same rule as losses/perceptual.py's encoder layout)
    cl = bool(runtime is not None and runtime.channels_last and device.type == "cuda")
    restore_nchw = cl and _nchw_weights(encoder)
    try:
        if cl:
            encoder.to(memory_format=torch.channels_last)
        objective = _Objective(encoder, cfg, content, style_imgs, blend, runtime.dtype if runtime else None, cl)
        if cfg.init == "content" and content is not None:
            x0 = content.clone()
        else:
            gen = generator if generator is not None else torch.Generator(device="cpu").manual_seed(cfg.seed)
            noise = torch.randn((1, 3, out_h, out_w), generator=gen, dtype=torch.float32, device=gen.device)
            x0 = (0.5 + 0.1 * noise).to(device)
        x = x0.requires_grad_(True)
        _optimise(x, objective, cfg, progress)
    finally:
        for p, flag in zip(encoder.parameters(), grad_flags):
            p.requires_grad_(flag)
        encoder.train(was_training)
        if restore_nchw:
            encoder.to(memory_format=torch.contiguous_format)
    return x.detach().clamp(0, 1)


def _nchw_weights(encoder: nn.Module) -> bool:
    """Whether the encoder's 4-d weights are in the default (NCHW-contiguous) layout."""
    return all(p.is_contiguous() for p in encoder.parameters() if p.dim() == 4)


def texture_synthesis(
    styles: Sequence[Tensor],
    encoder: nn.Module,
    cfg: GatysConfig,
    *,
    progress: Optional[ProgressFn] = None,
    generator: Optional[torch.Generator] = None,
) -> Tensor:
    """Synthesise a texture of size ``cfg.output_size`` from ``styles`` (:func:`stylize_gatys` with no content)."""
    return stylize_gatys(None, styles, encoder, cfg, progress=progress, generator=generator)


def _optimise(x: Tensor, objective: _Objective, cfg: GatysConfig, progress: Optional[ProgressFn]) -> None:
    task = "gatys" if objective.content_layers else "texture"
    total = cfg.iterations
    if total == 0:
        return
    every = max(1, cfg.progress_every)
    state: Dict[str, float] = {"it": 0, "t0": time.perf_counter(), "best": math.inf}
    best = x.detach().clone()

    class _Diverged(Exception):
        pass

    def report(losses: Mapping[str, Tensor]) -> None:
        nonlocal best
        state["it"] += 1
        it = int(state["it"])
        value = float(losses["total"].detach())
        if not math.isfinite(value):
            state["diverged"] = 1.0
            raise _Diverged()
        if value < state["best"]:  # the image this loss belongs to (x before the optimiser's update)
            state["best"] = value
            best = x.detach().clone()
        if it % every == 0 or it == total:
            metrics = {k: float(v.detach()) for k, v in losses.items()}
            metrics["sec_per_it"] = (time.perf_counter() - state["t0"]) / it
            emit(progress, ProgressEvent(task=task, step=it, total=total, metrics=metrics))

    if cfg.optimizer == "lbfgs":
        lr = 1.0 if cfg.lr is None else cfg.lr
        opt = torch.optim.LBFGS(
            [x],
            lr=lr,
            max_iter=total,
            max_eval=total,
            tolerance_grad=-1,
            tolerance_change=-1,
            history_size=100,
            line_search_fn="strong_wolfe" if cfg.line_search else None,
        )

        def closure() -> Tensor:
            opt.zero_grad(set_to_none=True)
            losses = objective(x)
            report(losses)
            losses["total"].backward()
            return losses["total"]

        try:
            opt.step(closure)
        except _Diverged:
            pass
    else:
        lr = 0.02 if cfg.lr is None else cfg.lr
        opt = torch.optim.Adam([x], lr=lr)
        try:
            for _ in range(total):
                opt.zero_grad(set_to_none=True)
                losses = objective(x)
                report(losses)
                losses["total"].backward()
                opt.step()
        except _Diverged:
            pass
    # keep the evaluated image with the lowest loss (L-BFGS without line search can overshoot at the end, and a
    # diverging run stops early with its best image instead of NaN)
    if int(state["it"]) > 0 and state["best"] < math.inf:
        with torch.no_grad():
            x.copy_(best)
    if state.get("diverged"):
        emit(progress, ProgressEvent(task=task, step=int(state["it"]), total=total,
                                     message="the loss became NaN or infinite; stopped early with the best image so far"))


@torch.no_grad()
def style_distance(
    image: Tensor,
    styles: Sequence[Tensor],
    encoder: nn.Module,
    layers: Sequence[str] = DEFAULT_STYLE_LAYERS,
    weights: Optional[Sequence[float]] = None,
) -> float:
    """Relative Gram distance, averaged over ``layers``: mean_l ||G_l(image) - G*_l||^2 / ||G*_l||^2.

    ``image`` and ``styles``: (1, 3, H, W) in [0, 1], used at their given sizes; ``G*`` is the weighted blend of the
    styles' Gram matrices (C*H*W-normalised). 0 = identical statistics; 1 = as far as an all-zero Gram matrix.
    """
    blend = _blend_weights(len(styles), weights)
    fi = encoder(image, layers)
    targets: Dict[str, Tensor] = {}
    for a, s in zip(blend, styles):
        fs = encoder(s, layers)
        for k in layers:
            g = gram(fs[k].float()) * a
            targets[k] = targets[k] + g if k in targets else g
    vals = [float((gram(fi[k].float()) - targets[k]).pow(2).sum() / targets[k].pow(2).sum().clamp_min(1e-12)) for k in layers]
    return sum(vals) / len(vals)


@torch.no_grad()
def content_distance(
    image: Tensor, content: Tensor, encoder: nn.Module, layers: Sequence[str] = DEFAULT_CONTENT_LAYERS
) -> float:
    """Relative feature distance, averaged over ``layers``: mean_l ||F_l(image) - F_l(content)||^2 / ||F_l(content)||^2.

    Both images (1, 3, H, W) in [0, 1] of the same size.
    """
    fi = encoder(image, layers)
    fc = encoder(content, layers)
    vals = [float((fi[k].float() - fc[k].float()).pow(2).sum() / fc[k].float().pow(2).sum().clamp_min(1e-12)) for k in layers]
    return sum(vals) / len(vals)
