"""StyleGAN2 training on an image folder (library side of ``imgforge stylegan train``).

What one step does (NVIDIA stylegan2-ada-pytorch's phases, in this order):

1. **D main**: fakes from fresh z (no gradient into G), then ``loss(D(aug(real)), real) + loss(D(aug(fake)), fake)``.
   The running truncation centre ``G.latent_avg`` (NVIDIA ``w_avg``) follows the batch mean of w with decay 0.995.
2. **D reg** (every ``r1_every`` steps, *lazy* R1): ``r1_gamma / 2 * E ||grad_x D(aug(x))||^2`` on reals, times
   ``r1_every``. With ``loss="wgan-gp"`` the gradient penalty (lambda ``gp_lambda``, on real/fake mixtures) is added
   to every D main step instead, and R1 is off.
3. **G main**: fakes from fresh z with **style mixing** (probability ``mixing_prob``: the ws from a second z take over
   at a random layer), loss on ``D(aug(fake))``.
4. **G reg** (every ``pl_every`` steps, optional **path-length** regularisation, ``pl_weight > 0``).
5. **EMA** generator: ``G_ema = lerp(G, G_ema, 0.5 ** (batch / ema_nimg))`` with
   ``ema_nimg = min(ema_kimg * 1000, images_seen * ema_rampup)``; buffers (w_avg, noise maps) are copied.
6. **ADA** (``augment="ada"``): the probability ``p`` of :mod:`imgforge.training.augment` follows the
   overfitting heuristic; ``augment="fixed"`` keeps ``augment_p``; ``"none"`` (default) shows D the plain images.

Losses (``loss``): ``logistic`` (default: the non-saturating logistic loss, softplus form), ``lsgan``, ``wgan-gp``
and ``hinge``, all from :class:`imgforge.losses.gan.GANLoss`. Lazy regularisation rescales Adam's lr and betas by
``every / (every + 1)``, as in the paper.

Determinism: the randomness of step ``k`` on rank ``r`` comes from seeds derived from ``(seed, k, r)`` and the data
order from :class:`~imgforge.training.loop.DeterministicBatches`, and the checkpoint holds the networks, both
optimisers, the EMA copy, the augmentation state and the path-length mean; so a run resumed from a checkpoint (after
Ctrl-C, SIGTERM or SIGKILL) reproduces the losses of an uninterrupted run exactly (same machine, threads, device).

Under ``torchrun`` each process takes ``batch_size / world_size`` images of every global batch and gradients are
averaged across processes (gloo on CPU, nccl on CUDA); only rank 0 writes files.

Outputs in ``run_dir``: ``checkpoint.pt`` (exact resume), ``losses.jsonl``, ``config.json``, ``samples/step_*.png``
(sample grids of the EMA generator on fixed seeds) and ``generator.safetensors`` (the EMA generator as an imgforge
model file: ``imgforge generate --weights run_dir/generator.safetensors``).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.stylegan_images import ImageFolderDataset
from ..errors import TrainingError, UsageError
from ..losses.gan import GANLoss, gradient_penalty
from ..models.stylegan2 import Discriminator, Generator
from ..progress import ProgressFn, note
from .augment import DEFAULT_OPS, AdaptiveAugment, check_ops
from .loop import (  # noqa: F401  (step_seed: re-exported)
    DistInfo, LoopConfig, ema_update, distributed_device, load_states, shutdown_distributed, step_seed, steps_done,
    train_loop,
)

LOSSES = ("logistic", "lsgan", "wgan-gp", "hinge")
AUGMENT_MODES = ("none", "ada", "fixed")
_GAN_MODE = {"logistic": "vanilla", "lsgan": "lsgan", "wgan-gp": "wgangp", "hinge": "hinge"}
GENERATOR_NAME = "generator.safetensors"


def channel_table(resolution: int, channel_base: int, channel_max: int) -> Dict[int, int]:
    """NVIDIA's widths: ``C[r] = min(channel_base // r, channel_max)`` for r = 4 ... resolution."""
    out = {}
    r = 4
    while r <= resolution:
        out[r] = max(1, min(channel_base // r, channel_max))
        r *= 2
    return out


@dataclass(frozen=True)
class StyleGAN2TrainConfig:
    """Network and optimisation settings of a StyleGAN2 run (the loop settings are a :class:`LoopConfig`).

    Attributes:
        resolution: image side (power of two >= 8). z_dim, w_dim: latent sizes. map_layers: mapping MLP depth.
        channel_base, channel_max: widths ``min(channel_base // r, channel_max)`` of G and D at resolution r.
        batch_size: global batch (split across torchrun processes).
        lr, betas: Adam settings of G and D (before the lazy-regularisation rescaling); d_lr: D's own rate (None:
            ``lr``). lr_mlp: mapping lr factor.
        loss: one of :data:`LOSSES`. r1_gamma / r1_every: lazy R1 weight and interval (gamma 0 = off).
        gp_lambda: WGAN-GP weight (``loss="wgan-gp"`` only). mixing_prob: style-mixing probability.
        pl_weight / pl_every / pl_batch_shrink / pl_decay: path-length regularisation (weight 0 = off).
        ms_weight: mode-seeking regularisation of G (Mao et al., CVPR 2019, "Mode Seeking GANs"): adds
            ``ms_weight / (mean|P(G(z1)) - P(G(z2))| / mean|z1 - z2| + 1e-5)`` over pairs of the batch's halves,
            which penalises a generator whose images stop depending on z (mode collapse). P average-pools the
            images to 8x8, so that the differences must be in the layout, not in pixel noise. 0 = off.
        ema_kimg / ema_rampup: EMA half-life in thousands of images (None: ``batch_size * 10 / 32``) and ramp-up.
        augment: ``none`` | ``ada`` | ``fixed``; augment_p: initial / fixed probability; ada_target, ada_interval,
            ada_kimg: ADA controller; augment_ops: operations (see :mod:`imgforge.training.augment`).
        mbstd_group: minibatch-stddev group of D (larger groups fight mode collapse; NVIDIA's CIFAR config: 32).
        mirror: also train on x-flipped images. fused_modconv: grouped-conv modulated convolutions (else
            shared-weight convolutions; usually faster for training on CPU). sample_grid: images in sample grids.
    """

    resolution: int = 32
    z_dim: int = 64
    w_dim: int = 64
    map_layers: int = 2
    channel_base: int = 1024
    channel_max: int = 128
    batch_size: int = 32
    lr: float = 0.002
    d_lr: Optional[float] = None
    betas: tuple = (0.0, 0.99)
    lr_mlp: float = 0.01
    loss: str = "logistic"
    r1_gamma: float = 0.05
    r1_every: int = 16
    gp_lambda: float = 10.0
    mixing_prob: float = 0.9
    pl_weight: float = 0.0
    pl_every: int = 4
    pl_batch_shrink: int = 2
    pl_decay: float = 0.01
    ms_weight: float = 0.0
    ema_kimg: Optional[float] = None
    ema_rampup: Optional[float] = 0.05
    augment: str = "none"
    augment_p: float = 0.0
    ada_target: float = 0.6
    ada_interval: int = 4
    ada_kimg: float = 100.0
    augment_ops: tuple = DEFAULT_OPS
    mbstd_group: int = 4
    mirror: bool = False
    fused_modconv: bool = False
    sample_grid: int = 64

    def validate(self) -> "StyleGAN2TrainConfig":
        r = self.resolution
        if r < 8 or r & (r - 1):
            raise UsageError(f"--resolution {r}: must be a power of two >= 8 (32, 64, 128, ...)")
        if self.loss not in LOSSES:
            raise UsageError(f"--loss {self.loss!r}: choose one of {', '.join(LOSSES)}")
        if self.augment not in AUGMENT_MODES:
            raise UsageError(f"--augment {self.augment!r}: choose one of {', '.join(AUGMENT_MODES)}")
        if self.batch_size < 1 or self.mbstd_group < 1 or self.r1_every < 1 or self.pl_every < 1 or self.ada_interval < 1:
            raise TrainingError("batch size and regularisation intervals must be >= 1")
        if not 0.0 <= self.mixing_prob <= 1.0 or not 0.0 <= self.augment_p <= 1.0:
            raise TrainingError("--mixing-prob and --augment-p must be in [0, 1]")
        try:
            check_ops(self.augment_ops)
        except ValueError as exc:
            raise TrainingError(str(exc)) from None
        return self

    @property
    def channels(self) -> Dict[int, int]:
        return channel_table(self.resolution, self.channel_base, self.channel_max)

    def build_generator(self) -> Generator:
        return Generator(self.resolution, style_dim=self.w_dim, n_mlp=self.map_layers, z_dim=self.z_dim,
                         channels=self.channels, lr_mlp=self.lr_mlp)

    def build_discriminator(self) -> Discriminator:
        return Discriminator(self.resolution, channels=self.channels, stddev_group=self.mbstd_group)


def _set_requires_grad(m: nn.Module, flag: bool) -> None:
    for p in m.parameters():
        p.requires_grad_(flag)


class StyleGAN2Method:
    """The networks, optimisers and one training step (a :class:`~imgforge.training.loop.TrainMethod`).

    Args:
        cfg: the run's settings. dataset: images (``batch(indices, device) -> (B, 3, R, R)`` in [-1, 1]).
        device: where to train. dist: process rank / count. seed: base of the per-step seeds.
    """

    def __init__(self, cfg: StyleGAN2TrainConfig, dataset: Any, device: Union[str, torch.device] = "cpu",
                 dist: DistInfo = DistInfo(), seed: int = 0) -> None:
        self.cfg = cfg.validate()
        self.dataset = dataset
        self.device = torch.device(device)
        self.dist = dist
        self.seed = int(seed)
        self.G = cfg.build_generator().to(self.device).train()
        self.D = cfg.build_discriminator().to(self.device).train()
        self.G.set_fused_modconv(cfg.fused_modconv)
        if dist.world_size > 1:  # identical start on every rank
            for t in list(self.G.state_dict().values()) + list(self.D.state_dict().values()):
                torch.distributed.broadcast(t, src=0)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.g_opt = self._adam(self.G, cfg.lr, cfg.pl_every if cfg.pl_weight > 0 else None)
        self.d_opt = self._adam(self.D, cfg.lr if cfg.d_lr is None else cfg.d_lr, cfg.r1_every if self._use_r1 else None)
        self.gan = GANLoss(_GAN_MODE[cfg.loss]).to(self.device)
        p0 = cfg.augment_p if cfg.augment != "none" else 0.0
        self.aug = AdaptiveAugment(p=p0, target=cfg.ada_target, interval=cfg.ada_interval, speed_kimg=cfg.ada_kimg,
                                   adaptive=cfg.augment == "ada", ops=tuple(cfg.augment_ops))
        self.pl_mean = torch.zeros((), device=self.device)
        self.train_seconds = 0.0
        self.images_seen = 0
        self._fixed_z: Optional[torch.Tensor] = None

    @property
    def _use_r1(self) -> bool:
        return self.cfg.loss != "wgan-gp" and self.cfg.r1_gamma > 0

    def _adam(self, module: nn.Module, lr: float, reg_every: Optional[int]) -> torch.optim.Adam:
        ratio = reg_every / (reg_every + 1) if reg_every else 1.0
        b1, b2 = self.cfg.betas
        return torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=(b1**ratio, b2**ratio), eps=1e-8)

    # ---- state ---------------------------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        return {
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "g_opt": self.g_opt.state_dict(), "d_opt": self.d_opt.state_dict(), "aug": self.aug.state_dict(),
            "pl_mean": self.pl_mean.detach().cpu(), "train_seconds": self.train_seconds,
            "images_seen": self.images_seen,
        }

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        load_states(state, {"G": self.G, "D": self.D, "G_ema": self.G_ema, "g_opt": self.g_opt, "d_opt": self.d_opt})
        self.aug.load_state_dict(state["aug"])
        self.pl_mean = state["pl_mean"].to(self.device)
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.images_seen = int(state.get("images_seen", 0))

    # ---- pieces ----------------------------------------------------------------------------------------------------
    def _z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.G.z_dim, device=self.device)

    def _ws(self, z: torch.Tensor, *, update_w_avg: bool = False) -> torch.Tensor:
        """Mapping with style mixing: ``(N, num_ws, w_dim)``."""
        G = self.G
        w = G.get_latent(z)
        if update_w_avg:
            with torch.no_grad():
                mean = self.dist.mean(w.detach().mean(0))
                G.latent_avg.copy_(mean.lerp(G.latent_avg, 0.995))
        ws = w.unsqueeze(1).repeat(1, G.num_ws, 1)
        if self.cfg.mixing_prob > 0:
            cutoff = int(torch.randint(1, G.num_ws, ()))
            if float(torch.rand(())) < self.cfg.mixing_prob:
                w2 = G.get_latent(self._z(z.shape[0]))
                ws = torch.cat([ws[:, :cutoff], w2.unsqueeze(1).repeat(1, G.num_ws - cutoff, 1)], dim=1)
        return ws

    def _d(self, img: torch.Tensor) -> torch.Tensor:
        return self.D(self.aug(img) if self.aug.p > 0 else img)

    # ---- one step --------------------------------------------------------------------------------------------------
    def step(self, batch: Sequence[int], step: int) -> Dict[str, float]:
        """One optimisation step on the images ``batch`` (this process's indices); returns the losses."""
        t0 = time.perf_counter()
        cfg = self.cfg
        torch.manual_seed(step_seed(self.seed, step, self.dist.rank))
        real = self.dataset.batch(batch, self.device)
        n = real.shape[0]
        out: Dict[str, float] = {}

        # D main (+ WGAN-GP)
        _set_requires_grad(self.G, False)
        _set_requires_grad(self.D, True)
        with torch.no_grad():
            fake = self.G.synthesis(self._ws(self._z(n), update_w_avg=True), noise_mode="random")
        real_aug = self.aug(real) if self.aug.p > 0 else real
        fake_aug = self.aug(fake) if self.aug.p > 0 else fake
        d_real, d_fake = self.D(real_aug), self.D(fake_aug)
        loss_d = self.gan(d_real, True) + self.gan(d_fake, False)
        if cfg.loss == "wgan-gp":
            gp, _ = gradient_penalty(self.D, real_aug.detach(), fake_aug.detach(), lambda_gp=cfg.gp_lambda)
            loss_d = loss_d + gp + 0.001 * d_real.square().mean()
            out["gp"] = float(gp.detach())
        self.D.zero_grad(set_to_none=True)
        loss_d.backward()
        self.dist.average_grads(self.D.parameters())
        self.d_opt.step()
        self.aug.accumulate(d_real)
        out.update(loss_D=float(loss_d.detach()), D_real=float(d_real.detach().mean()),
                   D_fake=float(d_fake.detach().mean()))

        # D reg: lazy R1
        if self._use_r1 and step % cfg.r1_every == 0:
            x = real.detach().requires_grad_(True)
            logits = self._d(x)
            (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
            r1 = grad.square().sum(dim=(1, 2, 3)).mean()
            self.D.zero_grad(set_to_none=True)
            (r1 * (cfg.r1_gamma / 2) * cfg.r1_every + 0 * logits.mean()).backward()
            self.dist.average_grads(self.D.parameters())
            self.d_opt.step()
            out["r1"] = float(r1.detach())

        # G main
        _set_requires_grad(self.G, True)
        _set_requires_grad(self.D, False)
        z = self._z(n)
        fake = self.G.synthesis(self._ws(z), noise_mode="random")
        loss_g = self.gan(self._d(fake), True, for_discriminator=False)
        if cfg.ms_weight > 0 and n >= 2:
            h = n // 2
            coarse = F.avg_pool2d(fake, fake.shape[-1] // 8) if fake.shape[-1] > 8 else fake
            ratio = (coarse[:h] - coarse[h:2 * h]).abs().mean(dim=(1, 2, 3)) / (z[:h] - z[h:2 * h]).abs().mean(dim=1)
            loss_ms = (1.0 / (ratio + 1e-5)).mean()
            loss_g = loss_g + cfg.ms_weight * loss_ms
            out["ms"] = float(loss_ms.detach())
        self.G.zero_grad(set_to_none=True)
        loss_g.backward()
        self.dist.average_grads(self.G.parameters())
        self.g_opt.step()
        out["loss_G"] = float(loss_g.detach())

        # G reg: path length
        if cfg.pl_weight > 0 and step % cfg.pl_every == 0:
            m = max(1, n // cfg.pl_batch_shrink)
            ws = self._ws(self._z(m))
            img = self.G.synthesis(ws, noise_mode="random")
            noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
            (grad,) = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
            lengths = grad.square().sum(2).mean(1).sqrt()
            self.pl_mean = self.pl_mean.lerp(self.dist.mean(lengths.mean()), cfg.pl_decay).detach()
            pl = (lengths - self.pl_mean).square().mean()
            self.G.zero_grad(set_to_none=True)
            (pl * cfg.pl_weight * cfg.pl_every + 0 * img[:, 0, 0, 0].sum()).backward()
            self.dist.average_grads(self.G.parameters())
            self.g_opt.step()
            out["pl"] = float(pl.detach())
        _set_requires_grad(self.D, True)

        # EMA
        self.images_seen += cfg.batch_size
        ema_update(self.G_ema, self.G, cfg.batch_size, self.images_seen,
                   cfg.ema_kimg if cfg.ema_kimg is not None else cfg.batch_size * 10 / 32, cfg.ema_rampup)

        # ADA
        self.aug.step_done(step + 1, cfg.batch_size, self.dist, self.device)
        if self.aug.enabled:
            out["p_aug"] = self.aug.p
        self.train_seconds += time.perf_counter() - t0
        return out

    # ---- outputs ---------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample_grid(self, step: int, run_dir: Path) -> Path:
        """Write ``run_dir/samples/step_XXXXXX.png``: the EMA generator on seeds 0 ... sample_grid-1
        (z as in ``imgforge generate``), constant noise, no truncation."""
        from ..models.protocols import z_from_seeds
        from ..reports import make_grid
        from ..io import save_image

        if self._fixed_z is None:
            self._fixed_z = z_from_seeds(range(self.cfg.sample_grid), self.G.z_dim).to(self.device)
        imgs = torch.cat([self.G_ema(self._fixed_z[i:i + 64], noise_mode="const")
                          for i in range(0, len(self._fixed_z), 64)])
        path = Path(run_dir) / "samples" / f"step_{step:06d}.png"
        save_image(make_grid((imgs.float().cpu().clamp(-1, 1) + 1) / 2, pad=0, pad_value=0.0, border=False), path)
        return path

    def export(self, path: Union[str, Path], extra: Optional[Dict[str, str]] = None) -> Path:
        """Write the EMA generator as an imgforge model file (arch ``stylegan2_generator``)."""
        from ..hub.modelfile import save_model_file

        meta = {"trained_with": "imgforge stylegan train", "train_kimg": f"{self.images_seen / 1000:.3f}",
                "train_seconds": f"{self.train_seconds:.1f}", "train_config": _json(asdict(self.cfg))}
        meta.update(extra or {})
        return save_model_file(path, self.G_ema.state_dict(), arch="stylegan2_generator",
                               arch_kwargs=self.G_ema.arch_kwargs(), extra=meta)


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj, sort_keys=True, default=list)


@dataclass
class TrainResult:
    """What :func:`train_stylegan2` returns: the loss history, the exported generator, the time spent training
    (all sessions of the run, seconds) and the images seen."""

    history: List[Dict[str, float]]
    generator: Optional[Path]
    train_seconds: float
    images_seen: int
    method: StyleGAN2Method = field(repr=False)


def train_stylegan2(
    data: Union[str, Path, Any],
    cfg: StyleGAN2TrainConfig,
    loop: LoopConfig,
    *,
    device: Union[str, torch.device] = "cpu",
    export_to: Optional[Union[str, Path]] = None,
    export_meta: Optional[Dict[str, str]] = None,
    progress: Optional[ProgressFn] = None,
) -> TrainResult:
    """Train (or continue training) a StyleGAN2 on an image folder.

    Args:
        data: a folder of images (see :class:`~imgforge.data.stylegan_images.ImageFolderDataset`) or any object
            with ``__len__`` and ``batch(indices, device) -> (B, 3, R, R)`` in [-1, 1].
        cfg: networks and optimisation. loop: run folder, steps, seed, checkpoint/sample/log intervals, resume.
        device: training device (under torchrun with CUDA: ``cuda:LOCAL_RANK``).
        export_to: also write the EMA generator here (besides ``run_dir/generator.safetensors``).
        export_meta: extra metadata for the exported file(s) (``licence``, ``notes``, ...).
        progress: receives the losses every ``loop.log_every`` steps and notes.
    Returns:
        :class:`TrainResult`.
    Raises:
        TrainingError: bad settings, no images, or a checkpoint that does not fit.
        Interrupted: Ctrl-C / SIGTERM (a checkpoint and the generator were written first).
    """
    from ..runtime import seed_everything

    cfg = cfg.validate()
    dist, device = distributed_device(device)
    run_dir = Path(loop.run_dir)
    if isinstance(data, (str, Path)):
        dataset: Any = ImageFolderDataset(data, cfg.resolution, mirror=cfg.mirror,
                                          cache=run_dir / f"dataset_{cfg.resolution}.pt" if dist.is_main else None)
        source = str(data)
        for msg in dataset.skipped:
            note(progress, "train", f"skipped {msg}")
        if dataset.skipped:
            note(progress, "train", f"{len(dataset.skipped)} unreadable or oversized images skipped, "
                                    f"{dataset.images.shape[0]} used")
    else:
        dataset, source = data, type(data).__name__
    if cfg.batch_size % dist.world_size:
        raise TrainingError(f"batch size {cfg.batch_size} is not divisible by {dist.world_size} processes")
    from .loop import DeterministicBatches

    order = DeterministicBatches(len(dataset), cfg.batch_size, seed=loop.seed, rank=dist.rank,
                                 world_size=dist.world_size)
    seed_everything(loop.seed)  # identical initial weights for a given seed (and on every rank)
    method = StyleGAN2Method(cfg, dataset, device, dist, seed=loop.seed)
    record = {"method": "stylegan2", "data": source, "images": len(dataset), "stylegan2": asdict(cfg),
              "loop": asdict(loop), "world_size": dist.world_size}
    note(progress, "train", f"StyleGAN2 {cfg.resolution}x{cfg.resolution} on {len(dataset)} images: G "
         f"{sum(p.numel() for p in method.G.parameters()):,} / D {sum(p.numel() for p in method.D.parameters()):,} "
         f"parameters, batch {cfg.batch_size}, loss {cfg.loss}, {dist.world_size} process(es) on {device}")
    sample = method.sample_grid if loop.sample_every else None
    meta = dict(export_meta or {})
    out_path = run_dir / GENERATOR_NAME

    def finish(history: List[Dict[str, float]], interrupted: bool) -> None:
        last = steps_done(history)
        if not interrupted and loop.sample_every and (not history or last % loop.sample_every):
            method.sample_grid(last, run_dir)
        method.export(out_path, meta)
        if not interrupted and export_to is not None:
            method.export(export_to, meta)
            note(progress, "train", f"wrote {export_to}")

    try:
        history = train_loop(method, order.local_batch, loop, config_record=record, sample=sample, progress=progress,
                             is_main=dist.is_main, task="train", finish=finish)
    finally:
        if dist.world_size > 1:
            shutdown_distributed()
    if dist.is_main:
        note(progress, "train", f"wrote {out_path} (trained {method.images_seen / 1000:.1f}k images in "
             f"{method.train_seconds / 60:.1f} min)")
    return TrainResult(history, out_path if dist.is_main else None, method.train_seconds, method.images_seen, method)
