"""Where and how models run: device selection, precision policy, channels_last, seeding and tiled inference.

- Device ``auto`` picks cuda > mps > cpu.
- Precision ``auto`` picks bf16 autocast on CPUs with fast bf16 (:func:`cpu_fast_bf16`: Intel AMX-BF16 tiles, or
  AVX512-BF16 on AMD) and on GPUs that support it, fp16 on older CUDA GPUs and on MPS, fp32 otherwise; ``fp32``
  forces full precision. Intel CPUs with AVX512-BF16 but no AMX stay in fp32: measured on such a Xeon
  (benchmarks/results/style_speed.md, 2026-11), bf16 autocast made convolutions slower (oneDNN bf16 85 vs fp32 159
  GFLOPS). On an AMD EPYC with AVX512-BF16 (2026-12, one thread) it made them faster: fast style 1.5-1.7x the fused
  fp32 path, translation apply 1.9-2.2x and StyleGAN2 1.5-1.7x the fp32 baseline, at 45-65 dB PSNR.
  ``IMGFORGE_CPU_BF16=1|0`` overrides the CPU rule. Optimisation tasks (Gatys style transfer, GAN inversion:
  ``task="optimisation"``) stay fp32 under ``auto`` on the CPU: bf16 autocast sends the optimiser elsewhere (28 dB
  PSNR from the fp32 result after 10-20 steps, against >= 50 dB for the one-pass methods).
- :func:`tiled_apply` runs an image function over overlapping tiles blended with linear ramps, so that memory is
  bounded by the tile size.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
from dataclasses import dataclass
from typing import Callable, Iterator, Optional

import numpy as np
import torch
import torch.nn as nn

from .errors import ImgforgeError, UsageError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
TASKS = ("inference", "optimisation")


def select_device(spec: str = "auto") -> torch.device:
    """Resolve ``auto|cpu|cuda|cuda:N|mps`` to an available :class:`torch.device`.

    Raises:
        ImgforgeError: the device was asked for but is not available (with what is available).
    """
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise UsageError(f"--device {spec!r}: expected auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ImgforgeError(f"--device {spec}: CUDA is not available in this PyTorch build/machine; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ImgforgeError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ImgforgeError(f"--device {spec}: MPS is not available on this machine; use --device cpu")
    elif dev.type != "cpu":
        raise UsageError(f"--device {spec!r}: expected auto, cpu, cuda, cuda:N or mps")
    return dev


@functools.lru_cache(maxsize=1)
def _cpuinfo() -> tuple[str, frozenset]:
    """(vendor_id, feature flags) of the first CPU in /proc/cpuinfo; ("", empty) where it is not available."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return "", frozenset()
    vendor, flags = "", frozenset()
    for line in text.splitlines():
        if line.startswith("vendor_id") and not vendor:
            vendor = line.split(":", 1)[1].strip()
        elif line.startswith("flags"):
            flags = frozenset(line.split(":", 1)[1].split())
            break
    return vendor, flags


def cpu_flags() -> frozenset:
    """The CPU feature flags of /proc/cpuinfo (empty where it is not available)."""
    return _cpuinfo()[1]


def cpu_vendor() -> str:
    """The CPU vendor of /proc/cpuinfo (``GenuineIntel``, ``AuthenticAMD``; empty where it is not available)."""
    return _cpuinfo()[0]


def cpu_has_amx_bf16() -> bool:
    """True when the CPU has AMX-BF16 tiles: bf16 convolutions and matmuls are then several times faster than fp32.

    (Where /proc/cpuinfo is absent, e.g. macOS, this is False and ``auto`` stays fp32 on the CPU.)
    """
    return "amx_bf16" in cpu_flags()


def cpu_fast_bf16() -> bool:
    """Whether bf16 autocast is expected to be faster than fp32 on this CPU (the CPU rule of precision ``auto``).

    True with AMX-BF16 tiles (Intel Sapphire Rapids and later), and with AVX512-BF16 on AMD (Zen 4 and later), where
    it was measured faster; False otherwise (Intel AVX512-BF16 without AMX was measured slower). The environment
    variable ``IMGFORGE_CPU_BF16`` (``1``/``0``) overrides the rule.
    """
    env = os.environ.get("IMGFORGE_CPU_BF16", "").strip().lower()
    if env in ("1", "true", "yes", "on"):
        return True
    if env in ("0", "false", "no", "off"):
        return False
    return cpu_has_amx_bf16() or (cpu_vendor() == "AuthenticAMD" and "avx512_bf16" in cpu_flags())


def resolve_precision(precision: str, device: torch.device, task: str = "inference") -> Optional[torch.dtype]:
    """Map a precision name to the autocast dtype for ``device``; None means plain fp32.

    ``auto``: bf16 on CPUs with fast bf16 (:func:`cpu_fast_bf16`) and on bf16-capable GPUs, fp16 on older GPUs/MPS,
    else fp32; but fp32 on the CPU for ``task="optimisation"`` (see the module docstring).
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    precision = (precision or "auto").lower()
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "mps":
        return torch.float16
    return torch.bfloat16 if cpu_fast_bf16() and task == "inference" else None


@dataclass(frozen=True)
class Runtime:
    """How to run inference: a device, an optional autocast dtype, and whether to use channels_last.

    Build one with :meth:`create`; ``rt.autocast()`` is a context manager for the forward pass.
    """

    device: torch.device
    dtype: Optional[torch.dtype] = None
    channels_last: bool = True

    @classmethod
    def create(cls, device: str = "auto", precision: str = "auto", channels_last: Optional[bool] = None,
               task: str = "inference") -> "Runtime":
        dev = select_device(device)
        dtype = resolve_precision(precision, dev, task)
        if channels_last is None:
            channels_last = dev.type in ("cpu", "cuda")
        return cls(device=dev, dtype=dtype, channels_last=channels_last)

    @property
    def precision_name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast to ``dtype`` on ``device`` (a no-op context for fp32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def prepare(self, model: nn.Module) -> nn.Module:
        """Move a model to the device (channels_last when enabled), eval mode, no grad on parameters."""
        model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        """Move an image batch (B, C, H, W) to the device, channels_last when enabled, float32."""
        x = x.to(self.device, dtype=torch.float32)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


def seed_everything(seed: Optional[int]) -> None:
    """Seed python, numpy and torch (all devices). ``None`` leaves them as they are."""
    if seed is None:
        return
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def make_generator(seed: Optional[int], device: torch.device | str = "cpu") -> torch.Generator:
    """A torch.Generator on ``device`` seeded with ``seed`` (random seed when None)."""
    g = torch.Generator(device=device)
    if seed is None:
        g.seed()
    else:
        g.manual_seed(int(seed))
    return g


def set_threads_from_env() -> None:
    """Honour ``IMGFORGE_THREADS`` (intra-op threads) when set."""
    n = os.environ.get("IMGFORGE_THREADS")
    if n:
        torch.set_num_threads(max(1, int(n)))


# --------------------------------------------------------------------------------------------------------------------
# Tiling


def _ramp(n: int, overlap: int, at_start: bool, at_end: bool) -> torch.Tensor:
    """1-D blending weights of length n: linear ramps of ``overlap`` pixels on inner edges, 1 elsewhere."""
    w = torch.ones(n)
    if overlap > 0:
        r = (torch.arange(overlap, dtype=torch.float32) + 0.5) / overlap
        if not at_start:
            w[:overlap] = r
        if not at_end:
            w[-overlap:] = torch.minimum(w[-overlap:], r.flip(0))
    return w


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` covering ``size`` with at least ``overlap`` shared pixels."""
    if size <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, size - tile, step))
    starts.append(size - tile)
    return starts


def tiled_apply(
    fn: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    *,
    tile: int = 512,
    overlap: int = 64,
    scale: int = 1,
    out_channels: Optional[int] = None,
    progress: Optional[Callable[[int, int], None]] = None,
) -> torch.Tensor:
    """Apply ``fn`` to overlapping tiles of ``image`` and blend the results with linear ramps.

    Args:
        fn: maps a tile (1, C, h, w) to (1, C', h*scale, w*scale); it is called under the caller's context
            (inference mode, autocast). Tiles are at most ``tile`` pixels on each side.
        image: (1, C, H, W), on any device; the output is assembled on the CPU in float32 unless the image is on
            a GPU, so memory stays bounded by the tile size plus the output.
        tile, overlap: tile side and overlap in input pixels (overlap < tile).
        scale: output/input size ratio of ``fn``.
        progress: called as ``progress(done, total)`` after each tile.
    Returns:
        (1, C', H*scale, W*scale) float32.
    """
    if overlap >= tile:
        raise UsageError(f"tile overlap {overlap} must be smaller than the tile size {tile}")
    _, c, h, w = image.shape
    if h <= tile and w <= tile:
        out = fn(image).float()
        if progress:
            progress(1, 1)
        return out
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    out: Optional[torch.Tensor] = None
    weight: Optional[torch.Tensor] = None
    total, done = len(ys) * len(xs), 0
    for yi, y in enumerate(ys):
        for xi, x in enumerate(xs):
            th, tw = min(tile, h - y), min(tile, w - x)
            res = fn(image[:, :, y:y + th, x:x + tw]).float()
            if out is None:
                co = out_channels or res.shape[1]
                out = torch.zeros(1, co, h * scale, w * scale, device=res.device)
                weight = torch.zeros(1, 1, h * scale, w * scale, device=res.device)
            wy = _ramp(th * scale, overlap * scale, yi == 0, yi == len(ys) - 1).to(res.device)
            wx = _ramp(tw * scale, overlap * scale, xi == 0, xi == len(xs) - 1).to(res.device)
            wgt = (wy[:, None] * wx[None, :])[None, None]
            ys_, xs_ = y * scale, x * scale
            out[:, :, ys_:ys_ + th * scale, xs_:xs_ + tw * scale] += res * wgt
            weight[:, :, ys_:ys_ + th * scale, xs_:xs_ + tw * scale] += wgt  # type: ignore[index]
            done += 1
            if progress:
                progress(done, total)
    assert out is not None and weight is not None
    return out / weight.clamp_min(1e-8)


@contextlib.contextmanager
def inference(rt: Runtime) -> Iterator[None]:
    """``torch.inference_mode()`` plus the runtime's autocast."""
    with torch.inference_mode(), rt.autocast():
        yield
