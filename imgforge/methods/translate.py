"""Image-to-image translation inference (pix2pix / CycleGAN generators) at full resolution.

Two entry points:

- :func:`translate`: ``images (B, C, H, W) float in [0, 1]`` -> ``(B, C_out, H, W) float in [0, 1]``; the project's
  data path (io gives [0, 1] tensors). It maps to the network range with :func:`to_model_range` and back with
  :func:`from_model_range`.
- :func:`run_generator`: the same in the network's own range, ``[-1, 1]`` in and out (the reference normalises
  images with mean 0.5 / std 0.5 and its generators end in Tanh). Use it to feed tensors that are already
  normalised (the compatibility fixtures are).

Size handling: inputs of any size are padded (reflection, split evenly between the two sides) to a multiple of the
generator's ``pad_multiple`` (4 for the ResNet generators, ``2**num_downs`` for U-Nets: 256 for unet_256) and to at
least its ``min_input_size`` (8 for ResNets), run, and cropped back, so the output has the input's size. The reference instead resizes to 256x256 at test time;
padding keeps the full resolution and aspect ratio.

Modes (the reference's ``test.py`` leaves the networks in train mode unless ``--eval`` is given):

- ``eval_mode=True`` (default): BatchNorm uses its running statistics, dropout is off. Deterministic. This is
  ``test.py --eval``.
- ``eval_mode=False``: like ``test.py`` without ``--eval``: BatchNorm normalises each image with its own statistics
  (images are run one at a time, as ``test.py`` uses batch size 1) and dropout is active, i.e. random (pix2pix's
  noise). Pass ``generator`` to make it reproducible; ``dropout=False`` gives the fixtures' ``train_bn_no_dropout``.
  The model's running statistics are NOT updated and every module's mode is restored afterwards.

For CycleGAN generators (InstanceNorm, no dropout) both modes give the same output.

Tiling (eval mode only): with ``tile=T`` (or automatically when ``max_pixels`` is given and ``H*W`` exceeds it) the
padded image is processed in overlapping T x T tiles (T rounded up to ``pad_multiple``), and overlapping outputs are
cross-faded with linear ramps over each overlap. It bounds memory for large images; it is an approximation: the
generators' receptive fields are large, and InstanceNorm normalises per tile, so tiled output differs from the
full-image output (least for BatchNorm generators in eval mode, whose layers are then fixed affine maps).
"""

from __future__ import annotations

import contextlib
import copy
from typing import Iterator, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import InputError, UsageError
from ..ops.inference_layers import rewrite_for_cpu_inference
from ..ops.tiling import tiled_apply
from ..progress import ProgressEvent, ProgressFn, emit

DEFAULT_TILE = 512


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` images -> the network's ``[-1, 1]`` (the reference's ``Normalize(0.5, 0.5)``: ``(x - 0.5) / 0.5``)."""
    return (images - 0.5) / 0.5


def from_model_range(x: torch.Tensor) -> torch.Tensor:
    """Network output in ``[-1, 1]`` -> ``[0, 1]`` (``(x + 1) / 2``, clamped)."""
    return ((x + 1.0) / 2.0).clamp(0.0, 1.0)


def generator_pad_multiple(G: nn.Module) -> int:
    """The size multiple ``G`` needs (its ``pad_multiple`` attribute; 1 when it has none)."""
    return int(getattr(G, "pad_multiple", 1))


def _reflect_pad(x: torch.Tensor, pads: Tuple[int, int, int, int]) -> torch.Tensor:
    """Reflection padding of any amount: repeated reflections when the pad exceeds the size - 1 (then replicate
    for 1-pixel images)."""
    left, right, top, bottom = pads
    while left or right or top or bottom:
        h, w = x.shape[-2:]
        l, r = min(left, w - 1), min(right, w - 1)
        t, b = min(top, h - 1), min(bottom, h - 1)
        if (l, r, t, b) == (0, 0, 0, 0):  # a 1-pixel dimension cannot be reflected
            return F.pad(x, (left, right, top, bottom), mode="replicate")
        x = F.pad(x, (l, r, t, b), mode="reflect")
        left, right, top, bottom = left - l, right - r, top - t, bottom - b
    return x


def pad_to_multiple(
    x: torch.Tensor, multiple: int, min_size: int = 1
) -> Tuple[torch.Tensor, Tuple[int, int, int, int]]:
    """Reflect-pad ``x: (B, C, H, W)`` so that H and W are multiples of ``multiple`` and at least ``min_size``, the
    padding split evenly (the extra pixel at the bottom/right). Returns ``(padded, (left, right, top, bottom))``."""
    h, w = x.shape[-2:]
    th = max(-(-h // multiple) * multiple, -(-min_size // multiple) * multiple)
    tw = max(-(-w // multiple) * multiple, -(-min_size // multiple) * multiple)
    ph, pw = th - h, tw - w
    pads = (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2)
    if ph == 0 and pw == 0:
        return x, pads
    return _reflect_pad(x, pads), pads


def _crop(y: torch.Tensor, pads: Tuple[int, int, int, int]) -> torch.Tensor:
    left, right, top, bottom = pads
    h, w = y.shape[-2:]
    return y[..., top : h - bottom, left : w - right]


@contextlib.contextmanager
def inference_state(G: nn.Module, *, eval_mode: bool, dropout: Optional[bool] = None) -> Iterator[bool]:
    """Put ``G`` in the requested mode for a forward pass and restore every module's state afterwards.

    ``eval_mode=True``: everything in eval mode. ``eval_mode=False``: train mode with BatchNorm on batch statistics
    WITHOUT updating the running statistics (``track_running_stats`` is switched off for the duration).
    ``dropout``: ``None`` = off in eval mode, on in train mode; ``True`` / ``False`` force dropout layers on / off.
    Yields whether any dropout layer is active (the output is then random).
    """
    saved = [(m, m.training) for m in G.modules()]
    saved_bn: List[Tuple[nn.modules.batchnorm._BatchNorm, bool]] = []
    use_dropout = (not eval_mode) if dropout is None else bool(dropout)
    try:
        G.train(not eval_mode)
        if not eval_mode:
            for m in G.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    saved_bn.append((m, m.track_running_stats))
                    m.track_running_stats = False
        stochastic = False
        for m in G.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd):
                m.train(use_dropout)
                stochastic = stochastic or (use_dropout and m.p > 0)
        yield stochastic
    finally:
        for m, flag in saved:
            m.training = flag
        for bn, flag in saved_bn:
            bn.track_running_stats = flag


def _forward(G: nn.Module, x: torch.Tensor, seed: Optional[int]) -> torch.Tensor:
    """``G(x)``; with ``seed``, inside a forked RNG seeded with it (dropout draws from the global RNG)."""
    if seed is None:
        return G(x)
    dev = x.device
    devices = [dev.index if dev.index is not None else 0] if dev.type not in ("cpu", "meta") else []
    kwargs = {"device_type": dev.type} if devices else {}
    with torch.random.fork_rng(devices=devices, **kwargs):
        torch.manual_seed(seed)
        return G(x)


def inference_copy(G: nn.Module, dtype: Optional[torch.dtype] = None, *, rewrite: bool = True) -> nn.Module:
    """A copy of generator ``G`` prepared for CPU inference; ``G`` itself is left untouched.

    - ``dtype`` (e.g. bf16): the convolutions hold ``dtype`` weights, norms keep float32 parameters.
      :func:`run_generator` feeds such a model ``dtype`` input (the dtype of its first convolution), so it runs
      natively without autocast: weights are cast once instead of at every call, activations stay bf16 between layers,
      and batch/instance norms run as mixed-type kernels (bf16 data, float32 statistics). On a CPU with fast bf16
      this was measured about 15-20 % faster than bf16 autocast for the U-Net (benchmarks/translation_speed.py).
    - ``rewrite``: layers that oneDNN runs slowly are computed in equivalent faster forms
      (:func:`imgforge.ops.inference_layers.rewrite_for_cpu_inference`): convolutions on tiny feature maps (the deep
      U-Net levels) as matrix products with a weight matrix made once, single-image instance norms as batch norms
      (no NCHW round trips for channels_last data), the ResNet's last 7x7 64 -> 3 conv as two convolutions. Measured
      at 512 x 512, one thread, bf16 channels_last: pix2pix ``unet_256`` 324 -> 294 ms, CycleGAN ``resnet_9blocks``
      2.93 -> 2.16 s (the instance-norm rewrite alone). The copy's state-dict keys differ from ``G``'s: use it for
      inference only.
    """
    out = copy.deepcopy(G)
    if dtype is not None:
        for m in out.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                m.to(dtype)
    if rewrite:
        rewrite_for_cpu_inference(out)
    return out


def _model_device(G: nn.Module, default_device: torch.device) -> torch.device:
    """Device of ``G`` (of its first parameter), ``default_device`` for a model without parameters."""
    p = next(iter(G.parameters()), None)
    return default_device if p is None else p.device


def run_generator(
    x: torch.Tensor,
    G: nn.Module,
    *,
    eval_mode: bool = True,
    dropout: Optional[bool] = None,
    generator: Optional[torch.Generator] = None,
    pad_multiple: Optional[int] = None,
    tile: Optional[int] = None,
    tile_overlap: int = 32,
    max_pixels: Optional[int] = None,
    progress: Optional[ProgressFn] = None,
    dtype: Optional[torch.dtype] = None,
) -> torch.Tensor:
    """Run generator ``G`` on ``x: (B, C_in, H, W) float in [-1, 1]`` -> ``(B, C_out, H, W) float in [-1, 1]``.

    Args:
        eval_mode: True = running BatchNorm stats, dropout off (``test.py --eval``); False = the reference's default
            ``test.py``: per-image batch statistics and dropout on (see the module docstring).
        dropout: force dropout on/off regardless of the mode (``None`` = the mode's default).
        generator: seeds the dropout masks (one seed drawn per forward pass) without touching the global RNG;
            ``None`` = the global RNG, as the reference.
        pad_multiple: size multiple to pad to; default ``G.pad_multiple`` (4 ResNet, 2**num_downs U-Net).
        tile, tile_overlap: tiled inference with T x T tiles overlapping by ``tile_overlap`` pixels (eval mode, no
            dropout). ``max_pixels``: tile with ``tile`` (default 512) only when ``H * W > max_pixels``.
        progress: receives one event per tile when tiling.

        dtype: the dtype of a native low-precision copy of ``G`` (:func:`inference_copy` with the Runtime's
            ``native_dtype``): the input is cast to it; None = float32.

    The computation runs on the model's device; the result comes back on ``x``'s device as float32.
    ``G``'s modes and BatchNorm statistics are left as they were.
    """
    if x.dim() != 4:
        raise InputError(f"expected images of shape (B, C, H, W), got {tuple(x.shape)}")
    in_nc = getattr(G, "input_nc", None)
    if in_nc is not None and x.shape[1] != in_nc:
        raise InputError(f"the generator takes {in_nc}-channel images, got {x.shape[1]} channels")
    if x.shape[0] == 0 or x.shape[-1] == 0 or x.shape[-2] == 0:
        raise InputError(f"empty image batch of shape {tuple(x.shape)}")
    multiple = int(pad_multiple) if pad_multiple is not None else generator_pad_multiple(G)
    if multiple < 1:
        raise UsageError(f"pad_multiple must be >= 1, got {multiple}")
    h, w = x.shape[-2:]
    if tile is None and max_pixels is not None and h * w > max_pixels:
        tile = DEFAULT_TILE
    if tile is not None:
        if not eval_mode or dropout:
            raise UsageError("tiled translation needs eval mode without dropout (batch statistics would differ per tile)")
        if tile < 1 or tile_overlap < 0:
            raise UsageError(f"tile must be >= 1 and tile_overlap >= 0, got {tile} and {tile_overlap}")
        tile = -(-tile // multiple) * multiple
        if tile_overlap >= tile:
            raise UsageError(f"tile_overlap ({tile_overlap}) must be smaller than the tile ({tile})")
    device = _model_device(G, x.device)
    dtype = dtype or torch.float32
    min_size = int(getattr(G, "min_input_size", 1))
    xin, pads = pad_to_multiple(x.to(device=device, dtype=dtype), multiple, min_size)
    with torch.no_grad(), inference_state(G, eval_mode=eval_mode, dropout=dropout) as stochastic:
        if tile is not None and (xin.shape[-2] > tile or xin.shape[-1] > tile):
            y = tiled_apply(G, xin, tile=tile, overlap=tile_overlap,
                            progress=lambda d, n: emit(progress, ProgressEvent(task="translate", step=d, total=n,
                                                                               unit="tile")))
        elif eval_mode and not stochastic:
            y = G(xin).float()
        else:
            outs = []
            for i in range(xin.shape[0]):
                seed = None
                if stochastic and generator is not None:
                    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
                outs.append(_forward(G, xin[i : i + 1], seed).float())
            y = torch.cat(outs, 0)
    return _crop(y, pads).to(x.device)


def translate(
    images: torch.Tensor,
    G: nn.Module,
    *,
    eval_mode: bool = True,
    dropout: Optional[bool] = None,
    generator: Optional[torch.Generator] = None,
    pad_multiple: Optional[int] = None,
    tile: Optional[int] = None,
    tile_overlap: int = 32,
    max_pixels: Optional[int] = None,
    progress: Optional[ProgressFn] = None,
) -> torch.Tensor:
    """Translate ``images: (B, C_in, H, W) float in [0, 1]`` with generator ``G`` -> ``(B, C_out, H, W)`` in [0, 1].

    Same options as :func:`run_generator` (which this wraps with :func:`to_model_range` / :func:`from_model_range`).
    Raises :class:`InputError` for values clearly outside [0, 1] (e.g. an already normalised [-1, 1] tensor).
    """
    if images.dim() == 4 and images.numel() and (images.min() < -1e-3 or images.max() > 1 + 1e-3):
        raise InputError(
            f"translate expects images in [0, 1], got values in [{images.min().item():.3g}, {images.max().item():.3g}]; "
            "use run_generator for [-1, 1] tensors"
        )
    y = run_generator(
        to_model_range(images.float()),
        G,
        eval_mode=eval_mode,
        dropout=dropout,
        generator=generator,
        pad_multiple=pad_multiple,
        tile=tile,
        tile_overlap=tile_overlap,
        max_pixels=max_pixels,
        progress=progress,
    )
    return from_model_range(y)
