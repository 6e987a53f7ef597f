"""GAN inversion (projection) of images into a StyleGAN2 generator's Z, W or W+ space, optionally with noise maps.

The optimisation follows the reference projectors (NVIDIA stylegan2-ada-pytorch ``projector.py``, rosinality
``projector.py``; defaults in ``InvertConfig``):

* Adam (betas 0.9 / 0.999), learning rate ``lr * ramp(t)`` with ``t = step / steps``: linear ramp-up over the first
  ``lr_rampup`` of the run, cosine ramp-down over the last ``lr_rampdown``;
* the latent starts at ``w_avg`` (W, W+; the truncation centre stored with the generator, else the mean of
  ``mapping(z)`` over ``w_avg_samples`` z drawn from ``np.random.RandomState(123)``) or, in Z, at the sampled z
  whose w is nearest to ``w_avg``;
* decaying latent noise: ``N(0, 1) * std * latent_noise * max(0, 1 - t / noise_ramp)^2`` is added to the latent at
  each step, ``std = sqrt(E||w - w_avg||^2)`` over the same samples (``sqrt(E||z - mean z||^2)`` in Z);
* with ``optimize_noise``: per-image noise maps start as N(0, 1), are optimised too, are renormalised to zero mean
  and unit second moment after every step, and are regularised by ``noise_regularize * sum over maps and 2x2
  average-pooled pyramid levels (down to 8x8) of mean(n * roll_x(n))^2 + mean(n * roll_y(n))^2``. Without it the
  generator's stored (const) noise maps are used.

Loss per image: ``mse_weight * MSE(x, y)`` (pixels in [0, 1]) ``+ perceptual_weight * PerceptualDistance(x, y)``
(VGG features at the Image2StyleGAN layers, see :mod:`imgforge.losses.perceptual`). Several images are optimised
together as one batch: each has its own latent, noise maps and random stream (seeded per image), the loss is the
sum of the per-image losses and Adam works per element, so an image's result does not depend on its batch mates.

Masks (inpainting) restrict both loss terms to the known pixels; ``degrade`` (super-resolution) maps the generated
image to the target's domain (e.g. an antialiased downscale) before the loss.

Input preparation (:func:`prepare_target`): an optional alignment hook first (:func:`register_aligner`; e.g. an
FFHQ-style landmark alignment for faces, which imgforge does not ship), then ``fit="crop"`` (default) takes the
largest centred square and resizes it to the generator resolution with Pillow's antialiased bicubic kernel;
``"pad"`` pads the short side symmetrically with the border colour instead, ``"stretch"`` resizes without keeping
the aspect ratio. Alpha is dropped.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError, UsageError
from ..latents import SPACES, LatentRecord
from ..losses.perceptual import IMAGE2STYLEGAN_LAYERS, PerceptualDistance
from ..models.protocols import LatentGenerator
from ..ops.resize import resize
from ..progress import ProgressEvent, ProgressFn, emit
from ..runtime import Runtime

LOSSES = ("mse", "perceptual", "mse+perceptual")
FITS = ("crop", "pad", "stretch")


@dataclass(frozen=True)
class InvertConfig:
    """Settings of one inversion (defaults = the reference projectors', FACTS.md section 4, unless noted).

    Attributes:
        space: ``"z"``, ``"w"`` (one w broadcast to every layer) or ``"w+"`` (one w per layer).
        steps: optimisation steps (reference 1000).
        lr: peak Adam learning rate (0.1). betas: Adam betas (0.9, 0.999).
        lr_rampup, lr_rampdown: fractions of the run for the linear ramp-up (0.05) / cosine ramp-down (0.25).
        latent_noise: initial latent-noise factor (0.05); noise_ramp: fraction of the run over which it decays to 0
            quadratically (0.75).
        optimize_noise: optimise per-image noise maps too (reference: yes; here off by default so that the latent
            alone carries the image, which keeps it editable; ``--noise`` turns it on).
        noise_regularize: weight of the noise-map regulariser (1e5).
        loss: ``"mse"``, ``"perceptual"`` or ``"mse+perceptual"``.
        mse_weight, perceptual_weight: weights of the two loss terms (MSE of [0, 1] pixels; relative VGG distance).
        perceptual_layers: encoder layers (Image2StyleGAN's conv1_1, conv1_2, conv3_2, conv4_2).
        perceptual_min_size: small images are upsampled to this short side before the encoder (None: never).
        w_avg_samples: z samples for w_avg / std (10000, ``np.random.RandomState(123)`` as NVIDIA's projector).
        seed: seed of the latent noise and noise-map initialisation; image ``i`` of a run uses ``seed + i``.
        snapshot_every: keep a reconstruction every this many steps (for a GIF); 0 = none.
        progress_every: emit a progress event every this many steps (each costs one device sync).
    """

    space: str = "w+"
    steps: int = 1000
    lr: float = 0.1
    betas: Tuple[float, float] = (0.9, 0.999)
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    latent_noise: float = 0.05
    noise_ramp: float = 0.75
    optimize_noise: bool = False
    noise_regularize: float = 1e5
    loss: str = "mse+perceptual"
    mse_weight: float = 1.0
    perceptual_weight: float = 0.1
    perceptual_layers: Tuple[str, ...] = IMAGE2STYLEGAN_LAYERS
    perceptual_min_size: Optional[int] = None
    w_avg_samples: int = 10000
    seed: int = 303
    snapshot_every: int = 0
    progress_every: int = 10

    def validate(self) -> None:
        """Raise :class:`UsageError` for settings out of range."""
        if self.space not in SPACES:
            raise UsageError(f"--space {self.space!r}: expected one of {', '.join(SPACES)}")
        if self.loss not in LOSSES:
            raise UsageError(f"--loss {self.loss!r}: expected one of {', '.join(LOSSES)}")
        if self.steps < 0:
            raise UsageError(f"--steps must be >= 0, got {self.steps}")
        if self.lr <= 0:
            raise UsageError(f"--lr must be > 0, got {self.lr}")
        if not (0 < self.lr_rampup <= 1 and 0 < self.lr_rampdown <= 1 and 0 < self.noise_ramp <= 1):
            raise UsageError("lr_rampup, lr_rampdown and noise_ramp must be fractions in (0, 1]")
        if min(self.mse_weight, self.perceptual_weight, self.noise_regularize, self.latent_noise) < 0:
            raise UsageError("loss weights and the latent noise must be >= 0")
        if self.w_avg_samples < 1:
            raise UsageError("w_avg_samples must be >= 1")

    @property
    def uses_perceptual(self) -> bool:
        return "perceptual" in self.loss and self.perceptual_weight > 0

    @property
    def uses_mse(self) -> bool:
        return "mse" in self.loss and self.mse_weight > 0


def lr_schedule(t: float, rampup: float = 0.05, rampdown: float = 0.25) -> float:
    """The reference learning-rate factor at progress ``t`` in [0, 1): ramp-up then cosine ramp-down."""
    r = min(1.0, (1.0 - t) / rampdown)
    r = 0.5 - 0.5 * math.cos(r * math.pi)
    return r * min(1.0, t / rampup)


def latent_noise_scale(t: float, std: float, factor: float = 0.05, ramp: float = 0.75) -> float:
    """Std of the noise added to the latent at progress ``t``: ``std * factor * max(0, 1 - t / ramp)^2``."""
    return std * factor * max(0.0, 1.0 - t / ramp) ** 2


# ------------------------------------------------------------------------------------------------ input preparation
Aligner = Callable[[Tensor], Tensor]
_ALIGNERS: Dict[str, Aligner] = {}


def register_aligner(name: str) -> Callable[[Aligner], Aligner]:
    """Register an alignment hook usable as ``prepare_target(..., aligner=name)`` / ``imgforge invert --align NAME``.

    An aligner takes RGB ``(3, H, W)`` in [0, 1] and returns the aligned RGB image (any size; it is then fitted to
    the generator resolution). Face generators (FFHQ) expect the FFHQ alignment: detect eye and mouth landmarks,
    rotate/scale so that they land where the training crops have them, crop a square around them. imgforge ships no
    landmark detector; register one from your own code, e.g.::

        from imgforge.methods.invert import register_aligner

        @register_aligner("ffhq")
        def ffhq_align(rgb):
            landmarks = my_detector(rgb)            # (68, 2) dlib-style points
            return ffhq_crop(rgb, landmarks)        # the recipe of FFHQ's align_images.py
    """

    def deco(fn: Aligner) -> Aligner:
        _ALIGNERS[name] = fn
        return fn

    return deco


def aligner_names() -> List[str]:
    return sorted(_ALIGNERS)


def get_aligner(name: Optional[str]) -> Optional[Aligner]:
    if name is None or name == "none":
        return None
    if name not in _ALIGNERS:
        raise UsageError(f"--align {name!r}: unknown aligner; registered: {', '.join(aligner_names()) or 'none'}")
    return _ALIGNERS[name]


def prepare_target(rgb: Tensor, resolution: int, fit: str = "crop",
                   aligner: Optional[Union[str, Aligner]] = None) -> Tensor:
    """Fit an image to the generator: ``(3, H, W)`` or ``(1, 3, H, W)`` in [0, 1] -> ``(1, 3, R, R)`` in [0, 1].

    Rule: the aligner (if any) first; then ``crop`` = largest centred square, ``pad`` = pad the short side
    symmetrically by replicating the border, ``stretch`` = no aspect handling; finally an antialiased bicubic resize
    (Pillow's kernel) to ``R x R`` and a clamp to [0, 1].
    """
    if fit not in FITS:
        raise UsageError(f"--fit {fit!r}: expected one of {', '.join(FITS)}")
    x = rgb[0] if rgb.dim() == 4 else rgb
    if x.dim() != 3 or x.shape[0] != 3:
        raise InputError(f"expected an RGB image (3, H, W), got {tuple(rgb.shape)}")
    fn = get_aligner(aligner) if isinstance(aligner, str) or aligner is None else aligner
    if fn is not None:
        x = fn(x)
    x = x.float()
    _, h, w = x.shape
    if fit == "crop" and h != w:
        s = min(h, w)
        top, left = (h - s) // 2, (w - s) // 2
        x = x[:, top:top + s, left:left + s]
    elif fit == "pad" and h != w:
        s = max(h, w)
        ph, pw = s - h, s - w
        x = F.pad(x[None], (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2), mode="replicate")[0]
    if x.shape[1:] != (resolution, resolution):
        x = resize(x, (resolution, resolution), "bicubic")
    return x.clamp(0, 1)[None]


# ------------------------------------------------------------------------------------------------- latent statistics
@dataclass(frozen=True)
class LatentStats:
    """Initialisation statistics: ``w_avg (w_dim,)``, ``w_std`` (scalar), ``z_init (z_dim,)``, ``z_std``."""

    w_avg: Tensor
    w_std: float
    z_init: Tensor
    z_std: float


@torch.no_grad()
def latent_stats(G: LatentGenerator, samples: int = 10000, seed: int = 123, chunk: int = 2048) -> LatentStats:
    """w_avg / std statistics of ``G`` from ``samples`` z of ``np.random.RandomState(seed)`` (NVIDIA's projector).

    ``w_avg`` is the generator's stored truncation centre when it is set (non-zero), else the sample mean.
    """
    dev = G.w_avg.device
    z = torch.from_numpy(np.random.RandomState(seed).randn(samples, G.z_dim).astype(np.float32))
    ws = torch.cat([G.get_latent(z[i:i + chunk].to(dev)).float().cpu() for i in range(0, samples, chunk)])
    stored = G.w_avg.detach().float().cpu()
    w_avg = stored if bool(stored.abs().sum() > 0) else ws.mean(0)
    w_std = float(((ws - w_avg).square().sum() / samples).sqrt())
    z_std = float(((z - z.mean(0)).square().sum() / samples).sqrt())
    z_init = z[int((ws - w_avg).square().sum(1).argmin())]
    return LatentStats(w_avg=w_avg, w_std=w_std, z_init=z_init, z_std=z_std)


# ------------------------------------------------------------------------------------------------ noise maps
def noise_regularization(noises: Sequence[Tensor]) -> Tensor:
    """Per-image noise regulariser ``(B,)`` of maps ``[(B, 1, r, r)]`` (see the module docstring)."""
    total: Optional[Tensor] = None
    for n in noises:
        while True:
            v = (n * torch.roll(n, shifts=1, dims=3)).mean(dim=(1, 2, 3)).square()
            v = v + (n * torch.roll(n, shifts=1, dims=2)).mean(dim=(1, 2, 3)).square()
            total = v if total is None else total + v
            if n.shape[2] <= 8:
                break
            n = F.avg_pool2d(n, kernel_size=2)
    assert total is not None
    return total


@torch.no_grad()
def normalize_noise_(noises: Sequence[Tensor]) -> None:
    """In place: each ``(B, 1, r, r)`` map to zero mean and unit second moment per image."""
    for n in noises:
        n.sub_(n.mean(dim=(1, 2, 3), keepdim=True))
        n.mul_(n.square().mean(dim=(1, 2, 3), keepdim=True).rsqrt())


# ------------------------------------------------------------------------------------------------ results
@dataclass
class InversionResult:
    """What an inversion produced for a batch of ``B`` images (all on the CPU, float32).

    Attributes:
        space: the latent space optimised.
        latent: ``(B, z_dim)`` (z), ``(B, w_dim)`` (w) or ``(B, num_ws, w_dim)`` (w+).
        ws: ``(B, num_ws, w_dim)``: what the synthesis network was given.
        noise: per-layer maps ``[(B, 1, r, r)]`` when optimised, else None (the generator's const maps).
        images: reconstructions ``(B, 3, R, R)`` in [0, 1] (clamped), at the generator resolution.
        loss: final per-image loss ``(B,)``.
        snapshots: reconstructions every ``snapshot_every`` steps, each ``(B, 3, R, R)`` in [0, 1].
        steps, seconds: work done and wall time of the optimisation loop (the whole batch).
    """

    space: str
    latent: Tensor
    ws: Tensor
    noise: Optional[List[Tensor]]
    images: Tensor
    loss: Tensor
    snapshots: List[Tensor] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0

    def item(self, i: int) -> "LatentRecord":
        """Image ``i``'s latent as a :class:`LatentRecord` (batch dimension kept, size 1)."""
        lat = self.latent[i:i + 1]
        noise = None if self.noise is None else [n[i:i + 1] for n in self.noise]
        return LatentRecord(space=self.space, latent=lat, ws=self.ws[i:i + 1], noise=noise)


# ------------------------------------------------------------------------------------------------ the optimiser
class Inverter:
    """Inverts batches of images into one generator; loads/computes everything shared once.

    Args:
        G: a generator of the protocol (:mod:`imgforge.models.protocols`; frozen, eval mode). Plain z-space
            generators (``num_ws == 1``, no noise maps) invert in every space; z and w coincide for them.
        cfg: the settings.
        perceptual: the perceptual distance (needed when ``cfg.loss`` includes it).
        runtime: precision and layout, decided by :class:`~imgforge.runtime.Runtime` (default: float32,
            channels_last): its autocast wraps the synthesis and encoder passes (losses, latents and Adam stay
            float32); with ``channels_last`` the synthesis and encoder convolutions run in that layout (CPU/CUDA).
        fused_modconv: modulated-conv path during optimisation (None: shared-weight convolution, usually faster
            for backward passes on batches).
    """

    def __init__(self, G: LatentGenerator, cfg: InvertConfig, *, perceptual: Optional[PerceptualDistance] = None,
                 runtime: Optional[Runtime] = None, fused_modconv: Optional[bool] = None) -> None:
        cfg.validate()
        if cfg.uses_perceptual and perceptual is None:
            raise UsageError(f"loss {cfg.loss!r} needs a perceptual encoder")
        self.G = G
        self.cfg = cfg
        self.perceptual = perceptual if cfg.uses_perceptual else None
        self.device = G.w_avg.device
        self.runtime = runtime if runtime is not None else Runtime(self.device, None, True)
        self.channels_last = self.runtime.channels_last and self.device.type in ("cpu", "cuda")
        self.fused_modconv = fused_modconv
        self._stats: Optional[LatentStats] = None

    @property
    def stats(self) -> LatentStats:
        if self._stats is None:
            self._stats = latent_stats(self.G, self.cfg.w_avg_samples)
        return self._stats

    # ---- helpers
    def _amp(self) -> contextlib.AbstractContextManager:
        return self.runtime.autocast()

    def _ws(self, lat: Tensor) -> Tensor:
        G = self.G
        if self.cfg.space == "z":
            return G.mapping(lat)
        if self.cfg.space == "w":
            return lat.unsqueeze(1).expand(-1, G.num_ws, -1)
        return lat

    def _synth(self, ws: Tensor, noise: Optional[List[Tensor]]) -> Tensor:
        return self.G.synthesis(ws, noise=noise, noise_mode="const")

    def _loss(self, x01: Tensor, target: Tensor, feats: Optional[Dict[str, Tensor]], mask: Optional[Tensor]
              ) -> Tensor:
        cfg = self.cfg
        total = x01.new_zeros(x01.shape[0], dtype=torch.float32)
        if cfg.uses_mse:
            d = (x01.float() - target).square()
            if mask is None:
                e = d.mean(dim=(1, 2, 3))
            else:
                e = (d * mask).sum(dim=(1, 2, 3)) / (mask.sum(dim=(1, 2, 3)) * d.shape[1]).clamp_min(1.0)
            total = total + cfg.mse_weight * e
        if self.perceptual is not None:
            assert feats is not None
            total = total + cfg.perceptual_weight * self.perceptual(x01, feats, mask)
        return total

    def init_latent(self, batch: int) -> Tensor:
        """The starting latent of a batch: w_avg (W, W+) or the z nearest to it (Z), float32 on the device."""
        st = self.stats
        if self.cfg.space == "z":
            base = st.z_init.view(1, -1)
        elif self.cfg.space == "w":
            base = st.w_avg.view(1, -1)
        else:
            base = st.w_avg.view(1, 1, -1).expand(1, self.G.num_ws, -1)
        return base.expand(batch, *base.shape[1:]).clone().to(self.device)

    # ---- main entry
    def run(self, target: Tensor, *, mask: Optional[Tensor] = None,
            degrade: Optional[Callable[[Tensor], Tensor]] = None, seeds: Optional[Sequence[int]] = None,
            init: Optional[Tensor] = None, progress: Optional[ProgressFn] = None, task: str = "invert"
            ) -> InversionResult:
        """Invert a batch.

        Args:
            target: ``(B, 3, h, w)`` in [0, 1]: the generator resolution, or what ``degrade`` produces from it.
            mask: ``(B or 1, 1, h, w)`` in [0, 1], 1 where a pixel counts in the loss (None: all).
            degrade: maps generated images ``(B, 3, R, R)`` in [0, 1] to the target's domain, differentiably.
            seeds: one seed per image (default ``cfg.seed + i``) for the latent noise and the noise maps.
            init: starting latent in the space's shape (default :meth:`init_latent`).
            progress: receives ``ProgressEvent(task, step, steps, metrics={"loss": mean loss})`` every
                ``cfg.progress_every`` steps.
        Returns:
            :class:`InversionResult`.
        """
        cfg, G = self.cfg, self.G
        dev = self.device
        B = int(target.shape[0])
        target = target.to(dev, torch.float32)
        if mask is not None:
            mask = mask.to(dev, torch.float32)
            if mask.shape[0] not in (1, B) or mask.shape[1] != 1 or mask.shape[-2:] != target.shape[-2:]:
                raise InputError(f"mask must be (B or 1, 1, {target.shape[-2]}, {target.shape[-1]}), "
                                 f"got {tuple(mask.shape)}")
        seeds = [cfg.seed + i for i in range(B)] if seeds is None else [int(s) for s in seeds]
        if len(seeds) != B:
            raise UsageError(f"{len(seeds)} seeds for {B} images")
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        st = self.stats
        std = st.z_std if cfg.space == "z" else st.w_std

        latent = (self.init_latent(B) if init is None else init.to(dev, torch.float32).clone()).requires_grad_(True)
        params: List[Tensor] = [latent]
        noise: Optional[List[Tensor]] = None
        if cfg.optimize_noise and G.noise_buffers():
            shapes = [tuple(n.shape[-2:]) for n in G.noise_buffers()]
            noise = [torch.cat([torch.randn(1, 1, *s, generator=g) for g in gens]).to(dev).requires_grad_(True)
                     for s in shapes]
            params += noise

        old_mf, old_fused = G.memory_format, _fused_state(G)
        G.memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        G.set_fused_modconv(bool(self.fused_modconv))
        feats = None
        if self.perceptual is not None:
            with self._amp():
                feats = self.perceptual.target(target, mask)
        opt = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas)
        snapshots: List[Tensor] = []
        loss_b = torch.zeros(B)
        t0 = time.perf_counter()
        try:
            for step in range(cfg.steps):
                t = step / cfg.steps
                for grp in opt.param_groups:
                    grp["lr"] = cfg.lr * lr_schedule(t, cfg.lr_rampup, cfg.lr_rampdown)
                scale = latent_noise_scale(t, std, cfg.latent_noise, cfg.noise_ramp)
                lat = latent
                if scale > 0:
                    eps = torch.cat([torch.randn(1, *latent.shape[1:], generator=g) for g in gens]).to(dev)
                    lat = latent + eps * scale
                with self._amp():
                    img = self._synth(self._ws(lat), noise)
                    x01 = (img.float() + 1.0) * 0.5
                    if degrade is not None:
                        x01 = degrade(x01)
                    loss_b = self._loss(x01, target, feats, mask)
                if noise is not None and cfg.noise_regularize > 0:
                    loss_b = loss_b + cfg.noise_regularize * noise_regularization(noise)
                opt.zero_grad(set_to_none=True)
                loss_b.sum().backward()
                opt.step()
                if noise is not None:
                    normalize_noise_(noise)
                if cfg.snapshot_every and (step + 1) % cfg.snapshot_every == 0:
                    snapshots.append(self._render(latent, noise))
                if progress is not None and ((step + 1) % cfg.progress_every == 0 or step + 1 == cfg.steps):
                    emit(progress, ProgressEvent(task, step + 1, cfg.steps,
                                                 metrics={"loss": float(loss_b.detach().mean())}))
            seconds = time.perf_counter() - t0
            final = self._render(latent, noise)
            with torch.no_grad():
                ws = self._ws(latent.detach()).float().cpu().contiguous()
        finally:
            G.memory_format = old_mf
            _restore_fused(G, old_fused)
        return InversionResult(space=cfg.space, latent=latent.detach().float().cpu(), ws=ws,
                               noise=None if noise is None else [n.detach().float().cpu() for n in noise],
                               images=final, loss=loss_b.detach().float().cpu(), snapshots=snapshots,
                               steps=cfg.steps, seconds=seconds)

    @torch.no_grad()
    def _render(self, latent: Tensor, noise: Optional[List[Tensor]]) -> Tensor:
        """Full-precision reconstruction of the current latent (no latent noise): ``(B, 3, R, R)`` in [0, 1], CPU."""
        img = self._synth(self._ws(latent.detach()), None if noise is None else [n.detach() for n in noise])
        return ((img.float() + 1.0) * 0.5).clamp(0, 1).cpu()


def _fused_state(G: LatentGenerator) -> List[bool]:
    from ..models.stylegan2_layers import ModulatedConv2d

    return [m.fused for m in G.modules() if isinstance(m, ModulatedConv2d)]  # type: ignore[attr-defined]


def _restore_fused(G: LatentGenerator, state: List[bool]) -> None:
    from ..models.stylegan2_layers import ModulatedConv2d

    for m, f in zip([m for m in G.modules() if isinstance(m, ModulatedConv2d)], state):  # type: ignore[attr-defined]
        m.fused = f


def synthesize(G: LatentGenerator, rec: LatentRecord, device: Optional[torch.device] = None) -> Tensor:
    """Render a latent record: ``(B, 3, R, R)`` in [0, 1] (its optimised noise maps if any, else const noise)."""
    dev = device or G.w_avg.device
    noise = None if rec.noise is None else [n.to(dev) for n in rec.noise]
    with torch.no_grad():
        img = G.synthesis(rec.ws.to(dev, torch.float32), noise=noise, noise_mode="const")
    return ((img.float() + 1) * 0.5).clamp(0, 1).cpu()
