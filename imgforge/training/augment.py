"""Differentiable ADA-style augmentation (Karras et al. 2020, "Training GANs with limited data"), simplified.

Every image the discriminator sees (real and generated, in every pass) goes through :func:`augment` with the same
probability ``p``; each operation is applied to each image independently with probability ``p``. All operations
are differentiable with respect to the image, so the generator is trained through them.

Operations (names for ``ops``):

* geometric, composed into one affine warp per image and applied with ``grid_sample`` (bilinear, reflection
  padding): ``xflip`` (mirror), ``rotate90`` (k * 90 degrees), ``translate`` (uniform, up to ``0.125`` of the
  image size on each axis), ``scale`` (isotropic, ``2 ** N(0, 0.2)``), ``rotate`` (uniform angle, up to
  ``rotate_max * 180`` degrees), ``aniso`` (``2 ** N(0, 0.2)`` along x and its inverse along y);
* colour: ``brightness`` (``+ N(0, 0.2)``), ``contrast`` (``* 2 ** N(0, 0.5)`` about the image mean),
  ``saturation`` (chroma ``* 2 ** N(0, 1)`` about the per-pixel grey value);
* ``cutout``: one square of half the image side set to 0 at a uniform centre.

:data:`DEFAULT_OPS` is NVIDIA's "bgc" pipeline without the flips (which would make mirrored / rotated digits and
faces look natural to the discriminator when ``p`` grows large).

:class:`AdaptiveAugment` tunes ``p`` from the overfitting heuristic ``r_t = E[sign(D(real))]``: every ``interval``
steps, ``p += sign(r_t - target) * (batch * interval) / (speed_kimg * 1000)``, clamped to [0, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

AUG_OPS = ("xflip", "rotate90", "translate", "scale", "rotate", "aniso", "brightness", "contrast", "saturation",
           "cutout")
DEFAULT_OPS = ("translate", "scale", "rotate", "aniso", "brightness", "contrast", "saturation")
GEOMETRIC = ("xflip", "rotate90", "translate", "scale", "rotate", "aniso")


def check_ops(ops: Sequence[str]) -> tuple:
    """Validate operation names; returns them as a tuple."""
    bad = [o for o in ops if o not in AUG_OPS]
    if bad:
        raise ValueError(f"unknown augmentation(s) {bad}; choose from {', '.join(AUG_OPS)}")
    return tuple(ops)


def _mat(b: int, dev: torch.device) -> Tensor:
    return torch.eye(3, device=dev).repeat(b, 1, 1)


def _gate(b: int, p: float, dev: torch.device, gen: Optional[torch.Generator]) -> Tensor:
    """(B,) float mask: 1 with probability p."""
    return (torch.rand(b, generator=gen, device=dev) < p).float()


def augment(x: Tensor, p: float, ops: Sequence[str] = DEFAULT_OPS, *, rotate_max: float = 1.0,
            generator: Optional[torch.Generator] = None) -> Tensor:
    """Augment a batch ``x: (B, C, H, W)`` float (any range, [-1, 1] for GAN images); returns the same shape.

    Each operation in ``ops`` hits each image with probability ``p`` (``p <= 0`` returns ``x`` unchanged). The
    random draws come from ``generator`` (or the global RNG; it must live on ``x``'s device).
    """
    if p <= 0 or not ops:
        return x
    b, c, h, w = x.shape
    dev = x.device
    g = generator
    geo = [o for o in ops if o in GEOMETRIC]
    if geo:
        m = _mat(b, dev)
        for op in geo:
            on = _gate(b, p, dev, g)
            t = _mat(b, dev)
            if op == "xflip":
                t[:, 0, 0] = 1 - 2 * on * (torch.rand(b, generator=g, device=dev) < 0.5).float()
            elif op == "rotate90":
                k = torch.randint(0, 4, (b,), generator=g, device=dev).float() * on
                ang = k * (math.pi / 2)
                t[:, 0, 0], t[:, 0, 1], t[:, 1, 0], t[:, 1, 1] = ang.cos(), -ang.sin(), ang.sin(), ang.cos()
            elif op == "translate":  # normalised coordinates span 2 units per image side
                d = (torch.rand(b, 2, generator=g, device=dev) * 2 - 1) * 0.125 * 2 * on[:, None]
                t[:, 0, 2], t[:, 1, 2] = d[:, 0], d[:, 1]
            elif op == "scale":
                s = torch.exp2(torch.randn(b, generator=g, device=dev) * 0.2 * on)
                t[:, 0, 0], t[:, 1, 1] = s, s
            elif op == "rotate":
                ang = (torch.rand(b, generator=g, device=dev) * 2 - 1) * math.pi * rotate_max * on
                t[:, 0, 0], t[:, 0, 1], t[:, 1, 0], t[:, 1, 1] = ang.cos(), -ang.sin(), ang.sin(), ang.cos()
            elif op == "aniso":
                s = torch.exp2(torch.randn(b, generator=g, device=dev) * 0.2 * on)
                t[:, 0, 0], t[:, 1, 1] = s, 1 / s
            m = m @ t
        if bool((m - torch.eye(3, device=dev)).abs().amax() > 0):
            # The matrix maps output coordinates to input coordinates (what affine_grid expects).
            grid = F.affine_grid(m[:, :2].to(x.dtype), [b, c, h, w], align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    for op in ops:
        if op in GEOMETRIC:
            continue
        on = _gate(b, p, dev, g).view(b, 1, 1, 1).to(x.dtype)
        if op == "brightness":
            x = x + torch.randn(b, 1, 1, 1, generator=g, device=dev).to(x.dtype) * 0.2 * on
        elif op == "contrast":
            f = torch.exp2(torch.randn(b, 1, 1, 1, generator=g, device=dev).to(x.dtype) * 0.5 * on)
            mu = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mu) * f + mu
        elif op == "saturation":
            f = torch.exp2(torch.randn(b, 1, 1, 1, generator=g, device=dev).to(x.dtype) * 1.0 * on)
            grey = x.mean(dim=1, keepdim=True)
            x = (x - grey) * f + grey
        elif op == "cutout":
            cy, cx = torch.rand(2, b, 1, 1, generator=g, device=dev)
            yy = (torch.arange(h, device=dev).view(1, h, 1) + 0.5) / h
            xx = (torch.arange(w, device=dev).view(1, 1, w) + 0.5) / w
            hole = ((yy - cy).abs() < 0.25) & ((xx - cx).abs() < 0.25)
            keep = 1 - hole.unsqueeze(1).to(x.dtype) * on
            x = x * keep
    return x


@dataclass
class AdaptiveAugment:
    """The augmentation probability ``p`` and its adaptive controller.

    Attributes:
        p: current probability. target: wanted ``E[sign(D(real))]`` (0.6 in the paper).
        interval: steps between updates. speed_kimg: thousands of images for p to move by 1 (NVIDIA: 500).
        adaptive: False keeps ``p`` fixed.
        ops: operations (see :data:`AUG_OPS`). rotate_max: rotation range as a fraction of 180 degrees.
    """

    p: float = 0.0
    target: float = 0.6
    interval: int = 4
    speed_kimg: float = 100.0
    adaptive: bool = True
    ops: tuple = DEFAULT_OPS
    rotate_max: float = 1.0
    _sign_sum: float = 0.0
    _count: float = 0.0
    last_rt: float = 0.0

    def __post_init__(self) -> None:
        self.ops = check_ops(self.ops)

    @property
    def enabled(self) -> bool:
        return self.adaptive or self.p > 0

    def __call__(self, x: Tensor, generator: Optional[torch.Generator] = None) -> Tensor:
        return augment(x, self.p, self.ops, rotate_max=self.rotate_max, generator=generator)

    def accumulate(self, real_logits: Tensor) -> None:
        """Record ``sign(D(real))`` of one batch (logits of any shape)."""
        if self.adaptive:
            self._sign_sum += float(real_logits.detach().sign().sum())
            self._count += float(real_logits.numel())

    def stats(self) -> Tensor:
        """``[sign sum, count]`` (to all-reduce across processes before :meth:`update`)."""
        return torch.tensor([self._sign_sum, self._count], dtype=torch.float64)

    def update(self, step: int, batch_size: int, stats: Optional[Tensor] = None) -> None:
        """After step ``step`` (1-based): every ``interval`` steps move ``p`` towards the target."""
        if not self.adaptive or step % self.interval:
            return
        s, n = (stats if stats is not None else self.stats()).tolist()
        self._sign_sum = self._count = 0.0
        if n <= 0:
            return
        self.last_rt = s / n
        adjust = math.copysign(1.0, self.last_rt - self.target) * batch_size * self.interval / (self.speed_kimg * 1000)
        self.p = float(min(max(self.p + adjust, 0.0), 1.0))

    def step_done(self, step: int, batch_size: int, dist: Any = None, device: Optional[torch.device] = None) -> None:
        """After training step ``step`` (1-based) of ``batch_size`` real images: every ``interval`` steps,
        :meth:`update` from the counters summed over the processes of ``dist`` (a
        :class:`~imgforge.training.loop.DistInfo`; the sum runs on ``device``, where the process group's tensors
        live)."""
        if not self.adaptive or step % self.interval:
            return
        stats = self.stats()
        if dist is not None and dist.active:
            stats = stats.to(device)
            torch.distributed.all_reduce(stats)
        self.update(step, batch_size, stats.cpu())

    def state_dict(self) -> Dict[str, Any]:
        return {"p": self.p, "sign_sum": self._sign_sum, "count": self._count, "last_rt": self.last_rt}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """A resumed adaptive run goes on from the checkpoint's ``p`` and counters; a fixed ``p`` is a setting, so a
        run resumed with another ``--augment-p`` uses that one."""
        if not self.adaptive:
            return
        self.p = float(state["p"])
        self._sign_sum = float(state["sign_sum"])
        self._count = float(state["count"])
        self.last_rt = float(state.get("last_rt", 0.0))
