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
- Tiling lives in :mod:`imgforge.ops.tiling` (the one tiler).
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np
import torch
import torch.nn as nn

from .errors import ImgforgeError, UsageError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")

#: The one map between precision names, torch's dtype names (as saved in training configs) and autocast dtypes
#: (None = plain fp32).
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_TORCH_NAMES = {torch.bfloat16: "bfloat16", torch.float16: "float16"}


def precision_name(dtype: Optional[torch.dtype]) -> str:
    """``None`` -> ``"fp32"``, ``torch.bfloat16`` -> ``"bf16"``, ``torch.float16`` -> ``"fp16"``."""
    return {v: k for k, v in _DTYPES.items()}[dtype]


def autocast_name(dtype: Optional[torch.dtype]) -> Optional[str]:
    """torch's name of an autocast dtype (``"bfloat16"`` / ``"float16"``; None for fp32), the form configs save."""
    return _TORCH_NAMES.get(dtype)  # type: ignore[arg-type]


def autocast_dtype(name: Optional[str]) -> Optional[torch.dtype]:
    """Inverse of :func:`autocast_name` (also accepts the precision names ``bf16`` / ``fp16`` / ``fp32``)."""
    if name is None:
        return None
    for dt, n in _TORCH_NAMES.items():
        if name == n:
            return dt
    if name in _DTYPES:
        return _DTYPES[name]
    raise UsageError(f"autocast must be None, 'bfloat16' or 'float16', got {name!r}")


#: Task kinds of the precision policy.
TASKS = ("inference", "optimisation", "training", "sampling", "fp32-training")

#: The precision policy: what ``--precision auto`` means for each task kind on each device kind ("hardware": the
#: hardware rule of :func:`resolve_precision`; "fp32": full precision; "fp32-plain": full precision without
#: channels_last), which explicit precisions a task takes, and whether it uses channels_last (CPU and CUDA only).
#: ``sampling`` (``imgforge generate``) stays fp32 on CPUs so that seeds give the same pixels on every machine (bf16
#: would be 1.5-1.7x faster on CPUs with fast bf16: benchmarks/results/stylegan2_forward.md; ask for
#: ``--precision bf16``). ``fp32-training`` (StyleGAN2 training) runs in fp32 only. ``training`` uses channels_last on
#: GPUs only: on the CPUs measured (benchmarks/translation_speed.py) it changed a pix2pix step by -50 % to +5 %
#: depending on size and load, and channels_last InstanceNorm backward needs a guard there. ``optimisation`` (Gatys,
#: inversion) stays fp32 on CPUs: bf16 sends the optimiser elsewhere (28 dB from the fp32 result).
#: Re-measured for issue 18 on a 2-core AMD EPYC with AVX512-BF16 and no AMX (bf16 conv peak ~2x fp32:
#: benchmarks/run_all.py, benchmarks/results/summary.md): Gatys 256^2, 100 L-BFGS evaluations, embedded encoder, bf16
#: autocast with float32 Grams/losses: final loss +1.6 %, style distance +0.3 %, content distance +0.2 % of the fp32
#: run's (inside the issue's 2 %) and ~1.5x faster per evaluation, but the image is 22.6 dB from the fp32 one (the
#: L-BFGS trajectory drifts), below the 40 dB rule for default-precision outputs: ``auto`` stays fp32 on CPUs, bf16 is
#: ``--precision bf16``. But the same run in fp32 with channels_last instead of NCHW (only the summation order
#: changes) ended 24.2 dB from the NCHW result with the final loss +3.7 %: for L-BFGS without line search no change of
#: arithmetic stays within 40 dB, and 2 % of the loss is within run-to-run spread at 100 evaluations; PSNR is not a
#: usable criterion for the optimisation tasks (the loss and the style/content distances at equal evaluations are).
#: Until the rule says so, Gatys on CPUs runs the plain loop's arithmetic (fp32, NCHW: oneDNN's fp32 VGG convolutions
#: measured the same in both layouts, VGG fwd+bwd at 256^2 1.14 s NCHW vs 1.11 s channels_last, bf16 0.69 / 0.64 s);
#: channels_last is used on CUDA (methods/gatys.py). The 4x of the issue is an AMX figure; here only bf16 (~1.5-1.8x)
#: could buy speed.
POLICY = {
    "inference": {"auto": {"cpu": "hardware", "cuda": "hardware", "mps": "hardware"}, "allowed": PRECISIONS,
                  "channels_last": True},
    "optimisation": {"auto": {"cpu": "fp32", "cuda": "hardware", "mps": "hardware"}, "allowed": PRECISIONS,
                     "channels_last": True},
    "training": {"auto": {"cpu": "hardware", "cuda": "hardware", "mps": "hardware"}, "allowed": PRECISIONS,
                 "channels_last": {"cpu": False, "cuda": True}},
    "sampling": {"auto": {"cpu": "fp32-plain", "cuda": "hardware", "mps": "hardware"}, "allowed": PRECISIONS,
                 "channels_last": True},
    "fp32-training": {"auto": {"cpu": "fp32", "cuda": "fp32", "mps": "fp32"}, "allowed": ("auto", "fp32"),
                      "channels_last": True, "what": "StyleGAN2 training"},
}


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


def resolve_precision(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """Map a precision name to the autocast dtype for ``device``; None means plain fp32.

    ``auto``: bf16 on CPUs with fast bf16 (:func:`cpu_fast_bf16`) and on bf16-capable GPUs, fp16 on older GPUs/MPS,
    else fp32.
    """
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
    return torch.bfloat16 if cpu_fast_bf16() else None


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
        """The runtime for ``task`` (a kind of :data:`POLICY`) on ``device`` at ``precision``.

        Raises:
            UsageError: a precision the task does not take (e.g. bf16 for StyleGAN2 training).
        """
        policy = POLICY[task]
        name = (precision or "auto").lower()
        if name in PRECISIONS and name not in policy["allowed"]:
            raise UsageError(f"--precision {precision}: {policy.get('what', 'this command')} runs in "
                             f"{' or '.join(p for p in policy['allowed'] if p != 'auto')}; drop --precision")
        dev = select_device(device)
        rule = policy["auto"].get(dev.type, "hardware") if name == "auto" else "explicit"
        dtype = None if rule in ("fp32", "fp32-plain") else resolve_precision(name, dev)
        if channels_last is None:
            cl = policy["channels_last"]
            cl = cl.get(dev.type, False) if isinstance(cl, dict) else cl
            channels_last = bool(cl) and rule != "fp32-plain" and dev.type in ("cpu", "cuda")
        return cls(device=dev, dtype=dtype, channels_last=channels_last)

    @property
    def precision_name(self) -> str:
        return precision_name(self.dtype)

    @property
    def native_dtype(self) -> Optional[torch.dtype]:
        """The dtype of a native low-precision model copy to run instead of autocast, or None (autocast / fp32).

        bf16 on the CPU: a copy whose convolutions hold bf16 weights runs without autocast (weights cast once,
        activations stay bf16 between layers); measured about 15-20 % faster than bf16 autocast for the pix2pix
        U-Net (benchmarks/translation_speed.py). Elsewhere autocast is used.
        """
        return torch.bfloat16 if self.device.type == "cpu" and self.dtype == torch.bfloat16 else None

    @property
    def autocast_name(self) -> Optional[str]:
        """torch's name of the autocast dtype (``"bfloat16"`` / ``"float16"``; None for fp32)."""
        return autocast_name(self.dtype)

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


def env_int(name: str, *, minimum: int = 1) -> Optional[int]:
    """An integer from environment variable ``name`` (None when unset or empty); :class:`UsageError` otherwise."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise UsageError(f"{name}={raw!r}: expected a whole number >= {minimum}") from None
    if value < minimum:
        raise UsageError(f"{name}={raw!r}: expected a whole number >= {minimum}")
    return value


def set_threads_from_env() -> None:
    """Honour ``IMGFORGE_THREADS`` (intra-op threads) when set; a value that is not a whole number >= 1 is a
    usage error."""
    n = env_int("IMGFORGE_THREADS")
    if n is not None:
        torch.set_num_threads(n)


@contextlib.contextmanager
def inference(rt: Runtime) -> Iterator[None]:
    """``torch.inference_mode()`` plus the runtime's autocast."""
    with torch.inference_mode(), rt.autocast():
        yield
