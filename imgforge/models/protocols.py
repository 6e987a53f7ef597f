"""The generator protocol: what ``generate``, ``invert``, ``morph``, ``edit``, ``style-mix``, ``inpaint`` and
``superres`` need from a generator, so that they talk to this protocol rather than to one class.

A :class:`LatentGenerator` has

* ``z_dim`` (latent size), ``w_dim`` (size of one per-layer latent) and ``num_ws`` (number of per-layer latents:
  1 for a plain z-space generator, ``num_ws`` for StyleGAN);
* ``mapping(z, truncation_psi=1.0, truncation_cutoff=None) -> ws (N, num_ws, w_dim)`` (the identity for a plain
  generator: ``ws = z[:, None]``), ``get_latent(z) -> w (N, w_dim)`` (one w, untruncated) and ``w_avg (w_dim,)``
  (the truncation centre; zeros when the generator has none);
* ``synthesis(ws, noise_mode="const", noise=None) -> img (N, 3, R, R)``, unclamped, nominally in **[-1, 1]**
  (the protocol's output range; adapters rescale other ranges);
* ``noise_buffers() -> [Tensor]`` (per-layer noise maps; an empty list when the generator has none) and
  ``img_resolution`` (R);
* ``memory_format`` (layout of the synthesis input) and ``set_fused_modconv(bool)`` (a no-op for generators
  without modulated convolutions) -- performance knobs the inverter sets and restores.

The StyleGAN2 :class:`~imgforge.models.stylegan2.Generator` satisfies the protocol as it is and keeps every space
(z, w, w+) and the per-layer edits (style mixing, SeFa). Any other network that takes ``z (N, z_dim)`` and returns
an image -- a DCGAN, a VAE decoder -- works through :func:`as_generator`, which wraps it in
:class:`ZSpaceGenerator` when it declares ``z_dim`` and ``img_resolution`` (and, optionally, ``output_range``:
``(-1, 1)`` by default or ``(0, 1)``).
"""

from __future__ import annotations

import re

from typing import Iterable, List, Optional, Protocol, Sequence, Tuple, runtime_checkable

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from ..errors import UsageError, WeightsError

#: Largest seed (numpy's RandomState range).
MAX_SEED = 2**32 - 1
#: Most seeds one spec may name (a typo like 0-999999999 is refused rather than run for days).
MAX_SEEDS = 100_000

#: Members every generator of the protocol has (checked by :func:`is_generator`).
PROTOCOL_MEMBERS = ("z_dim", "w_dim", "num_ws", "img_resolution", "w_avg", "mapping", "get_latent", "synthesis",
                    "noise_buffers")


@runtime_checkable
class LatentGenerator(Protocol):
    """A generator as the sampling / inversion / editing commands see it (see the module docstring)."""

    z_dim: int
    w_dim: int
    num_ws: int
    img_resolution: int
    memory_format: torch.memory_format

    @property
    def w_avg(self) -> Tensor: ...

    def mapping(self, z: Tensor, truncation_psi: float = 1.0, truncation_cutoff: Optional[int] = None) -> Tensor: ...

    def get_latent(self, z: Tensor) -> Tensor: ...

    def synthesis(self, ws: Tensor, noise_mode: str = "const",
                  noise: Optional[Sequence[Optional[Tensor]]] = None) -> Tensor: ...

    def noise_buffers(self) -> List[Tensor]: ...

    def set_fused_modconv(self, fused: bool) -> "LatentGenerator": ...


def is_generator(model: object) -> bool:
    """True when ``model`` has every member of the protocol (StyleGAN2, or an adapter)."""
    return all(hasattr(model, m) for m in PROTOCOL_MEMBERS)


def _z_network(model: object) -> object:
    """The ``z -> image`` part of ``model``: its ``decoder_generator`` module (a VAE's decoder) when it has one."""
    part = getattr(model, "decoder_generator", None)
    return part if isinstance(part, nn.Module) else model


def is_plain_z_generator(model: object) -> bool:
    """True for a plain ``z -> image`` network that :func:`as_generator` can adapt (declares ``z_dim`` and
    ``img_resolution``, is an ``nn.Module``), or a model whose ``decoder_generator`` is one (a VAE)."""
    net = _z_network(model)
    return isinstance(net, nn.Module) and hasattr(net, "z_dim") and hasattr(net, "img_resolution")


def has_layer_styles(G: LatentGenerator) -> bool:
    """True when ``G`` has per-layer latents (style mixing, per-layer edits make sense)."""
    return int(G.num_ws) > 1


def require_layer_styles(G: LatentGenerator, what: str) -> None:
    """Raise :class:`UsageError` when ``what`` needs per-layer latents that ``G`` does not have."""
    if not has_layer_styles(G):
        raise UsageError(f"{what} needs a generator with per-layer latents (StyleGAN2); this one has a single "
                         f"z of {G.z_dim} dimensions")


class ZSpaceGenerator(nn.Module):
    """Adapter: a plain z-space generator ``net(z (N, z_dim)) -> (N, C, R, R)`` as a :class:`LatentGenerator`.

    ``num_ws = 1`` and ``w = z`` (the mapping is the identity; truncation pulls z towards ``w_avg = 0``); no noise
    maps; ``synthesis`` maps the network's ``output_range`` onto [-1, 1] and grey images to 3 channels.

    Class-conditional networks (``net.n_classes > 0``, called ``net(z, labels)``): every image is of the class set
    with :meth:`set_class` (``imgforge generate|morph|edit --class K``); synthesis without one is a :class:`UsageError`.
    """

    def __init__(self, net: nn.Module, z_dim: int, img_resolution: int,
                 output_range: Tuple[float, float] = (-1.0, 1.0)) -> None:
        super().__init__()
        lo, hi = (float(v) for v in output_range)
        if not hi > lo:
            raise WeightsError(f"output_range {output_range!r}: the high end must be above the low end")
        self.net = net
        self.z_dim = self.w_dim = int(z_dim)
        self.num_ws = 1
        self.img_resolution = int(img_resolution)
        self.output_range = (lo, hi)
        self.memory_format = torch.contiguous_format
        self.register_buffer("w_avg", torch.zeros(self.z_dim), persistent=False)
        self.n_classes = int(getattr(net, "n_classes", 0) or 0)
        self.class_label: Optional[int] = None

    def set_class(self, label: Optional[int]) -> "ZSpaceGenerator":
        """Condition every image on class ``label`` (``0 <= label < n_classes``; None: unset)."""
        if label is not None and not 0 <= int(label) < self.n_classes:
            raise UsageError(f"--class {label}: this generator has classes 0-{self.n_classes - 1}" if self.n_classes
                             else f"--class {label}: this generator is not class-conditional")
        self.class_label = None if label is None else int(label)
        return self

    def set_fused_modconv(self, fused: bool) -> "ZSpaceGenerator":
        return self

    def noise_buffers(self) -> List[Tensor]:
        return []

    def get_latent(self, z: Tensor) -> Tensor:
        return z

    def mapping(self, z: Tensor, truncation_psi: float = 1.0, truncation_cutoff: Optional[int] = None) -> Tensor:
        ws = z.unsqueeze(1).clone()  # never an alias of z (callers edit ws in place, save both)
        if truncation_psi != 1 and (truncation_cutoff is None or int(truncation_cutoff) > 0):
            ws = self.w_avg.to(ws.dtype).lerp(ws, truncation_psi)
        return ws

    def synthesis(self, ws: Tensor, noise_mode: str = "const",
                  noise: Optional[Sequence[Optional[Tensor]]] = None) -> Tensor:
        z = ws[:, 0] if ws.ndim == 3 else ws
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"ws must be (N, 1, {self.z_dim}) or (N, {self.z_dim}), got {tuple(ws.shape)}")
        if self.n_classes:
            if self.class_label is None:
                raise UsageError(f"this generator is class-conditional ({self.n_classes} classes): pass --class K "
                                 f"(0-{self.n_classes - 1}) to generate, morph or edit")
            img = self.net(z, torch.full((z.shape[0],), self.class_label, dtype=torch.long, device=z.device))
        else:
            img = self.net(z)
        if img.shape[1] == 1:
            img = img.expand(-1, 3, -1, -1)
        lo, hi = self.output_range
        if (lo, hi) != (-1.0, 1.0):
            img = (img - lo) * (2.0 / (hi - lo)) - 1.0
        return img

    def forward(self, z: Tensor, truncation_psi: float = 1.0, noise_mode: str = "const") -> Tensor:
        return self.synthesis(self.mapping(z, truncation_psi), noise_mode=noise_mode)


def set_class(G: LatentGenerator, label: Optional[int]) -> LatentGenerator:
    """Condition ``G`` on class ``label`` (see :meth:`ZSpaceGenerator.set_class`); None leaves G as it is, a label
    for a generator without classes is a :class:`UsageError`."""
    if label is None:
        return G
    if not isinstance(G, ZSpaceGenerator):
        raise UsageError(f"--class {label}: this generator is not class-conditional")
    return G.set_class(label)


def as_generator(model: nn.Module, what: str = "model") -> LatentGenerator:
    """``model`` as a :class:`LatentGenerator`: itself when it has the protocol, a :class:`ZSpaceGenerator` around
    it when it is a plain z-space network; :class:`WeightsError` otherwise."""
    if is_generator(model):
        return model  # type: ignore[return-value]
    if is_plain_z_generator(model):
        net = _z_network(model)
        G = ZSpaceGenerator(net, int(getattr(net, "z_dim")), int(getattr(net, "img_resolution")),  # type: ignore[arg-type]
                            tuple(getattr(net, "output_range", (-1.0, 1.0))))  # type: ignore[arg-type]
        return G.train(model.training)  # type: ignore[return-value]
    raise WeightsError(f"{what}: a {type(model).__name__} is not a generator (it needs z_dim and img_resolution, "
                       "or StyleGAN2's mapping/synthesis)")


# ---- seeds -> z (NVIDIA's convention, so a seed means the same image as with stylegan2-ada-pytorch) ----


def z_from_seed(seed: int, z_dim: int) -> torch.Tensor:
    """``(z_dim,)`` float32: ``np.random.RandomState(seed).randn(1, z_dim)[0]`` (NVIDIA's seed -> z mapping)."""
    if not 0 <= int(seed) <= MAX_SEED:
        raise UsageError(f"seed {seed}: must be between 0 and {MAX_SEED}")
    return torch.from_numpy(np.random.RandomState(int(seed)).randn(1, int(z_dim))[0]).float()


def z_from_seeds(seeds: Iterable[int], z_dim: int) -> torch.Tensor:
    """``(N, z_dim)`` float32, row ``i`` = :func:`z_from_seed` of the ``i``-th seed."""
    rows = [z_from_seed(s, z_dim) for s in seeds]
    return torch.stack(rows) if rows else torch.zeros(0, int(z_dim))


def parse_seeds(spec: str, *, unique: bool = True, option: str = "--seeds") -> List[int]:
    """Parse ``"0-15"``, ``"1,5,9"``, ``"0-3,10,20-22"`` into a list of seeds, in order; duplicates are dropped
    unless ``unique=False`` (e.g. the rows of a style-mix grid may repeat a seed). ``option`` names the option in
    error messages.

    Raises:
        UsageError: malformed items, descending ranges, seeds outside [0, 2**32 - 1], more than 100,000 seeds.
    """
    seeds: List[int] = []
    seen = set()
    text = (spec or "").strip()
    if not text:
        raise UsageError(f"{option} is empty; give e.g. 0-15 or 1,5,9")
    for part in text.split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)\s*(?:-\s*(\d+))?", part)
        if not m:
            raise UsageError(f"{option} {spec!r}: bad item {part!r}; use ranges and lists like 0-15 or 1,5,9")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise UsageError(f"{option} {spec!r}: range {part!r} goes down; write it as {hi}-{lo}")
        if hi > MAX_SEED:
            raise UsageError(f"{option} {spec!r}: seeds must be between 0 and {MAX_SEED}")
        if len(seeds) + (hi - lo + 1) > MAX_SEEDS:
            raise UsageError(f"{option} {spec!r}: more than {MAX_SEEDS:,} seeds")
        for s in range(lo, hi + 1):
            if not unique or s not in seen:
                seen.add(s)
                seeds.append(s)
    return seeds
