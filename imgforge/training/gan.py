"""Training of the pre-StyleGAN GAN family (library side of ``imgforge gan train``).

Architectures (``arch``): ``mlp`` (Goodfellow et al.'s fully connected G and D, dropout in D) and ``dcgan``
(Radford et al.), from :mod:`imgforge.models.gan_nets`; ``loss="began"`` replaces D by BEGAN's autoencoder
(``began_d``). Losses: the eight of :mod:`imgforge.losses.gan_family`, each with its paper's optimiser, learning
rates, betas, critic steps, weight clipping and penalty weight (:data:`~imgforge.losses.gan_family.LOSS_DEFAULTS`)
unless a field of :class:`GANTrainConfig` overrides it. With WGAN-GP and DRAGAN the DCGAN critic has no batch norm
(the penalty is per sample), as both papers recommend.

One step (Goodfellow et al.'s Algorithm 1): ``d_steps`` discriminator updates, each on its own real batch and fresh
z, then one generator update on fresh z. ``steps`` counts generator steps; a step therefore reads ``d_steps`` real
batches. Conditional runs (``cond``, Mirza & Osindero's concatenation: G gets a label embedding next to z, D one-hot
label planes next to the image) draw the fake labels uniformly.

Determinism and DDP: z, the fake labels and the penalty's random points of step ``k`` come from seeds of
``(seed, k)`` drawn for the **global** batch, and each process takes its slice of them, as of the real images
(:class:`~imgforge.training.loop.DeterministicBatches`); gradients are averaged across processes. So a resumed run
repeats the losses of an uninterrupted one exactly, and two processes compute what one process computes with the
same global batch, up to float summation order -- except where a layer sees the whole local batch: DCGAN's batch
norm uses per-process statistics, and MLP dropout masks and ``--augment``'s transforms are drawn per process.

Outputs in ``run_dir``: ``checkpoint.pt``, ``losses.jsonl`` (``loss_D``, ``loss_G``, ``D_real``, ``D_fake``,
``G_grad`` (the L2 norm of the generator's gradient), ``gp``, BEGAN's ``M_global`` and ``k``, ``p_aug`` with
``--augment``), ``config.json``, ``samples/step_*.png`` (the generator on fixed z: seeds 0 ... as in ``imgforge
generate``; conditional runs: rows = classes, columns = seeds), ``index.html`` (loss curves and the sample grids) and
``G.safetensors`` (the generator with ``arch`` + ``arch_kwargs`` metadata).
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from ..errors import TrainingError, UsageError
from ..losses.gan_family import (LOSSES, RELATIVISTIC, BeganState, clip_weights, d_loss, dragan_penalty, g_loss,
                                 loss_defaults, wgan_gp_penalty)
from ..models.multiscale_gan import LAPGAN_COARSE, lap_sizes
from ..models.registry import build
from ..progress import ProgressFn, note
from .augment import AdaptiveAugment, check_ops
from .loop import (
    DeterministicBatches, DistInfo, LoopConfig, ema_update, distributed_device, load_states, resumes,
    shutdown_distributed, step_seed, steps_done, train_loop,
)

ARCHS = ("mlp", "dcgan", "lapgan", "progan", "msggan")
#: The multi-scale architectures (:mod:`imgforge.training.multiscale_gan`).
MULTISCALE = ("lapgan", "progan", "msggan")
GENERATOR_NAME = "G.safetensors"
_G_ARCH = {a: f"{a}_g" for a in MULTISCALE} | {"mlp": "mlp_gan_g", "dcgan": "dcgan_g"}
_D_ARCH = {a: f"{a}_d" for a in MULTISCALE} | {"mlp": "mlp_gan_d", "dcgan": "dcgan_d"}
#: The loss of each architecture when ``--loss`` is not given (ProGAN: WGAN-GP with the drift term; MSG-GAN:
#: relativistic hinge, as BMSG-GAN; LAPGAN: the original GAN objective, non-saturating).
ARCH_DEFAULT_LOSS = {"mlp": "ns", "dcgan": "ns", "lapgan": "ns", "progan": "wgan-gp", "msggan": "rahinge"}
#: Optimiser settings of the papers that replace the loss's (ProGAN: Adam 1e-3, betas (0, 0.99), one critic step per
#: generator step; MSG-GAN (BMSG-GAN's code): Adam 3e-3, betas (0, 0.99), one critic step). Explicit options win.
ARCH_OPTIMISER: Dict[str, Dict[str, Any]] = {
    "progan": dict(optimizer="adam", lr_g=1e-3, lr_d=1e-3, betas=(0.0, 0.99), d_steps=1),
    "msggan": dict(optimizer="adam", lr_g=3e-3, lr_d=3e-3, betas=(0.0, 0.99), d_steps=1),
}
#: Default (and smallest) start resolution: ProGAN and MSG-GAN start at 4x4, LAPGAN's coarsest level is 8x8.
START_RESOLUTION = {"lapgan": 8, "progan": 4, "msggan": 4}
#: Default half-life (thousands of images) of the generator's moving average: ProGAN and BMSG-GAN sample from one
#: (decay 0.999 per step at ProGAN's minibatch 16 is a half-life of ~11k images); the other archs have none by default.
EMA_KIMG = {"progan": 10.0, "msggan": 10.0}
#: ProGAN's drift term ``ε E[D(x)²]`` on the critic (with wgan / wgan-gp).
PROGAN_DRIFT = 0.001
#: The losses with the critic terms of the base step: all but BEGAN, whose autoencoder D has its own objective.
_NOT_BEGAN = tuple(n for n in LOSSES if n != "began")
#: Settings only some architectures or losses use: config field -> (its option, those archs, those losses; None:
#: every one). Setting one for another arch or loss is a usage error (it would be silently ignored). Fields without
#: a command-line option are named as fields. Established from the code that reads each field:
#: ``coarse``: ``g_spec``/``d_spec`` (lapgan only); ``combine``: ``d_spec`` (msggan only); ``phase_images``,
#: ``fade_images``: ``ProGANMethod.stage``; ``mbstd_group``: ``d_spec`` (progan_d / msggan_d); ``d_dropout``:
#: ``d_spec`` (the MLP discriminator, LAPGAN's coarsest with ``coarse="mlp"``; BEGAN's autoencoder has none);
#: ``gp_lambda``: ``_penalty``, called for wgan-gp / dragan only; ``gamma``, ``lambda_k``: :class:`BeganState`,
#: ``began_h``: ``began_d``, both with ``--loss began`` only; ``drift``: ``GANMethod._d_objective`` (LAPGAN's own
#: objective and BEGAN's step have no drift term). ``clip`` is not here: every loss's step clips when it is set.
ONLY_FOR: Dict[str, Tuple[str, Optional[Tuple[str, ...]], Optional[Tuple[str, ...]]]] = {
    "coarse": ("--coarse", ("lapgan",), None),
    "train_levels": ("--train-levels", ("lapgan",), None),
    "coarse_width": ("--coarse-width", ("lapgan",), None),
    "combine": ("--combine", ("msggan",), None),
    "phase_images": ("--phase-images", ("progan",), None),
    "fade_images": ("--fade-images", ("progan",), None),
    "mbstd_group": ("mbstd_group", ("progan", "msggan"), None),
    "d_dropout": ("d_dropout", ("mlp", "lapgan"), _NOT_BEGAN),
    "gp_lambda": ("--gp-lambda", None, ("wgan-gp", "dragan")),
    "gamma": ("--gamma", None, ("began",)),
    "lambda_k": ("lambda_k", None, ("began",)),
    "began_h": ("began_h", None, ("began",)),
    "drift": ("--drift", ("mlp", "dcgan", "progan", "msggan"), _NOT_BEGAN),
    "augment": ("--augment", None, _NOT_BEGAN),
}
#: ``--augment`` modes: ``ada`` (adaptive probability), ``fixed`` (``--augment-p`` throughout), ``none``.
AUGMENT_MODES = ("none", "ada", "fixed")
#: The settings of the augmentation controller, each only with ``--augment ada`` (ada_*) or ada|fixed.
_AUG_SETTINGS = {"augment_p": ("--augment-p", ("ada", "fixed")), "augment_ops": ("--augment-ops", ("ada", "fixed")),
                 "ada_target": ("--ada-target", ("ada",)), "ada_kimg": ("--ada-kimg", ("ada",))}


def check_options(arch: str, loss: str, given: Iterable[str]) -> None:
    """:class:`UsageError` for the first of ``given`` (config field names the user set) that ``arch`` or ``loss``
    does not use (see :data:`ONLY_FOR`)."""
    for name in given:
        flag, archs, losses = ONLY_FOR.get(name, ("", None, None))
        if archs is not None and arch not in archs:
            raise UsageError(f"{flag} is for --arch {'|'.join(archs)}, not {arch}; drop it")
        if losses is not None and loss not in losses:
            raise UsageError(f"{flag} is for --loss {'|'.join(losses)}, not {loss}; drop it")


def check_power_of_two(resolution: int) -> int:
    """``resolution`` when it is a power of two >= 8, else :class:`UsageError` naming ``--resolution``."""
    r = int(resolution)
    if r < 8 or r & (r - 1):
        raise UsageError(f"--resolution {r}: must be a power of two >= 8 (8, 16, 32, 64, ...)")
    return r


@dataclass(frozen=True)
class GANTrainConfig:
    """Network and optimisation settings of a GAN run (the loop settings are a :class:`LoopConfig`).

    Attributes:
        arch: ``mlp`` | ``dcgan``. loss: one of :data:`LOSSES`. resolution: image side (power of two >= 8).
        z_dim: z size. batch_size: global batch (split across torchrun processes). cond: class-conditional.
        width: DCGAN ``ngf``/``ndf`` (BEGAN: the autoencoder's ``ndf``); MLP: 64 gives the paper's hidden
            widths (G 1200, D 240), other values scale them.
        d_dropout: dropout of the MLP discriminator (mlp; lapgan's coarsest with ``coarse="mlp"``).
            began_h: BEGAN's bottleneck size.
        optimizer, lr_g, lr_d, betas, d_steps, clip, gp_lambda, gamma, lambda_k: None = the loss's paper default.
            ``betas``: Adam's only (refused when the optimiser is rmsprop). Fields another arch or loss uses
            (:data:`ONLY_FOR`) are refused when set away from their default.
        sample_grid: images in the sample grids (conditional: seeds per class row).
        ema_kimg: half-life, in thousands of images, of a moving average of G's weights (Karras et al.; ramp-up
            0.05 as StyleGAN2). None: 10 for progan and msggan (both papers sample from an average), else off;
            0: off. When on, the sample grids and ``G.safetensors`` are the average.
        start_resolution: ProGAN's first resolution / LAPGAN's coarsest level (None: 4 / 8; MSG-GAN: 4).
        phase_images, fade_images: ProGAN's schedule, in real images shown to D: each resolution is trained
            ``phase_images`` at full strength, and each new one faded in over ``fade_images`` (paper: 800k each).
        combine: MSG-GAN's combine function (``simple`` | ``lin_cat`` | ``cat_lin``).
        coarse: LAPGAN's coarsest GAN: ``dcgan`` (a DCGAN pair at that side) or ``mlp`` (the paper's fully connected
            pair; collapsed to 2-3 digits on MNIST-5k in 3,200 steps, hence not the default).
        coarse_width: LAPGAN with ``coarse="dcgan"``: that pair's ngf/ndf (None: ``width``).
        init: a generator (name or file) of the same architecture whose layers start G where all their tensors match
            by name and shape (e.g. a LAPGAN's trained levels under a new coarsest GAN); read by a fresh run only.
        train_levels: LAPGAN: the pyramid sides this run trains (None: every level). The levels are independent, so
            one can be trained further alone; the others keep their weights, moving average and optimiser state.
        drift: ProGAN's drift weight ``ε E[D(x)²]`` (None: 0.001 for progan with wgan/wgan-gp, else 0; any arch
            but lapgan, any loss but began).
        mbstd_group: ProGAN / MSG-GAN minibatch-stddev group size.
        augment: ``none`` (None) | ``ada`` | ``fixed``: every image D sees (real and generated, also in G's step)
            goes through :func:`~imgforge.training.augment.augment` with probability ``p`` (Karras et al. 2020,
            against a discriminator that memorises a small training set); ``ada`` moves ``p`` towards
            ``E[sign(D(real))] = ada_target`` (a speed of ``ada_kimg`` thousand images per unit of p), ``fixed``
            keeps ``augment_p``. Any loss but began; the images D scores together get the same transform (LAPGAN:
            each level's image and its low-pass; MSG-GAN: every scale). augment_p: the start (ada) or fixed
            probability (None: 0). ada_target, ada_kimg, augment_ops: None = the defaults of
            :class:`~imgforge.training.augment.AdaptiveAugment` (0.6, 100, its ``DEFAULT_OPS``).
    """

    arch: str = "dcgan"
    loss: str = "ns"
    resolution: int = 32
    z_dim: int = 100
    batch_size: int = 64
    cond: bool = False
    width: int = 64
    d_dropout: float = 0.5
    began_h: int = 64
    optimizer: Optional[str] = None
    lr_g: Optional[float] = None
    lr_d: Optional[float] = None
    betas: Optional[Tuple[float, float]] = None
    d_steps: Optional[int] = None
    clip: Optional[float] = None
    gp_lambda: Optional[float] = None
    gamma: Optional[float] = None
    lambda_k: Optional[float] = None
    sample_grid: int = 64
    ema_kimg: Optional[float] = None
    start_resolution: Optional[int] = None
    phase_images: int = 800_000
    fade_images: int = 800_000
    combine: str = "simple"
    coarse: str = "dcgan"
    train_levels: Optional[Tuple[int, ...]] = None
    coarse_width: Optional[int] = None
    init: Optional[str] = None
    drift: Optional[float] = None
    mbstd_group: int = 4
    augment: Optional[str] = None
    augment_p: Optional[float] = None
    ada_target: Optional[float] = None
    ada_kimg: Optional[float] = None
    augment_ops: Optional[Tuple[str, ...]] = None

    @property
    def start(self) -> int:
        """The effective start resolution of a multi-scale arch."""
        return int(self.start_resolution or START_RESOLUTION.get(self.arch, 4))

    def validate(self) -> "GANTrainConfig":
        if self.arch not in ARCHS:
            raise UsageError(f"--arch {self.arch!r} is not one of {', '.join(ARCHS)}")
        loss_defaults(self.loss)  # UsageError for an unknown loss
        check_power_of_two(self.resolution)
        if self.optimizer not in (None, "adam", "rmsprop"):
            raise UsageError(f"--optimizer {self.optimizer!r}: adam or rmsprop")
        if self.ema_kimg is not None and not self.ema_kimg >= 0:
            raise UsageError(f"--ema-kimg {self.ema_kimg}: must be >= 0 (0: no moving average)")
        if self.batch_size < 1 or self.z_dim < 1 or self.width < 1 or (self.d_steps is not None and self.d_steps < 1):
            raise UsageError("--batch-size, --z-dim, --width and --d-steps must be >= 1")
        check_options(self.arch, self.loss, [f.name for f in fields(self)
                                             if f.name in ONLY_FOR and getattr(self, f.name) != f.default])
        if self.betas is not None and self.resolved()["optimizer"] == "rmsprop":
            why = "--optimizer rmsprop" if self.optimizer else f"rmsprop, --loss {self.loss}'s optimiser"
            raise UsageError(f"--beta1/--beta2 are for --optimizer adam, not {why}; drop them")
        self._validate_augment()
        if self.arch in MULTISCALE:
            self._validate_multiscale()
        elif self.start_resolution is not None:
            raise UsageError(f"--start-resolution is for --arch lapgan|progan, not {self.arch}")
        return self

    def _validate_augment(self) -> None:
        mode = self.augment or "none"
        if mode not in AUGMENT_MODES:
            raise UsageError(f"--augment {mode!r}: choose one of {', '.join(AUGMENT_MODES)}")
        for name, (flag, modes) in _AUG_SETTINGS.items():
            if getattr(self, name) is not None and mode not in modes:
                raise UsageError(f"{flag} is for --augment {'|'.join(modes)}, not {mode}; drop it")
        if self.augment_p is not None and not 0.0 <= self.augment_p <= 1.0:
            raise UsageError(f"--augment-p {self.augment_p}: must be in [0, 1]")
        if self.ada_kimg is not None and not self.ada_kimg > 0:
            raise UsageError(f"--ada-kimg {self.ada_kimg}: must be > 0")
        if self.ada_target is not None and not -1.0 < self.ada_target < 1.0:
            raise UsageError(f"--ada-target {self.ada_target}: E[sign(D(real))] lies in (-1, 1)")
        if self.augment_ops is not None:
            try:
                if not check_ops(self.augment_ops):
                    raise ValueError("give at least one")
            except ValueError as e:
                raise UsageError(f"--augment-ops {','.join(self.augment_ops)}: {e}") from None

    def augmenter(self) -> AdaptiveAugment:
        """The augmentation state of a run of these settings (``p`` 0 and never moving with ``augment`` none); a
        setting left at None takes :class:`~imgforge.training.augment.AdaptiveAugment`'s default."""
        mode = self.augment or "none"
        given = dict(target=self.ada_target, speed_kimg=self.ada_kimg, ops=self.augment_ops)
        return AdaptiveAugment(p=float(self.augment_p or 0.0) if mode != "none" else 0.0, adaptive=mode == "ada",
                               **{k: v for k, v in given.items() if v is not None})

    def _validate_multiscale(self) -> None:
        if self.cond:
            raise UsageError(f"--cond works with --arch mlp|dcgan; --arch {self.arch} is unconditional here")
        if self.loss == "began":
            raise UsageError(f"--loss began needs its autoencoder discriminator: use --arch mlp|dcgan, not {self.arch}")
        s = self.start
        smallest = START_RESOLUTION[self.arch]
        if s < smallest or s & (s - 1):
            raise UsageError(f"--start-resolution {s}: must be a power of two >= {smallest} for --arch {self.arch}")
        if self.arch == "msggan" and s != 4:
            raise UsageError("--start-resolution: MSG-GAN always trains every scale from 4x4; drop the option")
        if self.resolution < s:
            raise UsageError(f"--resolution {self.resolution} is smaller than the start resolution {s} "
                             f"(--start-resolution, --arch {self.arch})")
        if self.combine not in ("simple", "lin_cat", "cat_lin"):
            raise UsageError(f"--combine {self.combine!r}: simple, lin_cat or cat_lin")
        if self.coarse not in LAPGAN_COARSE:
            raise UsageError(f"--coarse {self.coarse!r}: dcgan or mlp")
        if self.coarse_width is not None and (self.coarse != "dcgan" or self.coarse_width < 1):
            raise UsageError(f"--coarse-width {self.coarse_width}: the width (>= 1) of --coarse dcgan's pair")
        if self.train_levels is not None:
            sides = lap_sizes(self.resolution, s)
            bad = [v for v in self.train_levels if v not in sides]
            if not self.train_levels or bad or len(set(self.train_levels)) != len(self.train_levels):
                raise UsageError(f"--train-levels {','.join(map(str, self.train_levels))}: give distinct pyramid "
                                 f"sides of this run ({','.join(map(str, sides))})")
        if self.phase_images < 0 or self.fade_images < 0 or self.mbstd_group < 1:
            raise UsageError("--phase-images and --fade-images must be >= 0, the minibatch-stddev group >= 1")

    def resolved(self) -> Dict[str, Any]:
        """The effective hyper-parameters: each None field replaced by the loss's paper default."""
        d = loss_defaults(self.loss)
        a = ARCH_OPTIMISER.get(self.arch, {})
        pick = lambda mine, default: default if mine is None else mine  # noqa: E731
        out = dict(optimizer=pick(self.optimizer, a.get("optimizer", d.optimizer)),
                   lr_g=pick(self.lr_g, a.get("lr_g", d.lr_g)), lr_d=pick(self.lr_d, a.get("lr_d", d.lr_d)),
                   betas=tuple(pick(self.betas, a.get("betas", d.betas))),
                   d_steps=int(pick(self.d_steps, a.get("d_steps", d.d_steps))), clip=pick(self.clip, d.clip),
                   gp_lambda=float(pick(self.gp_lambda, d.gp_lambda)), gamma=float(pick(self.gamma, d.gamma)),
                   lambda_k=float(pick(self.lambda_k, d.lambda_k)))
        out["ema_kimg"] = float(pick(self.ema_kimg, EMA_KIMG.get(self.arch, 0.0)))
        drift = PROGAN_DRIFT if self.arch == "progan" and self.loss in ("wgan", "wgan-gp") else 0.0
        out["drift"] = float(pick(self.drift, drift))
        return out

    def g_spec(self, channels: int, n_classes: int) -> Tuple[str, Dict[str, Any]]:
        kw: Dict[str, Any] = dict(z_dim=self.z_dim, img_resolution=self.resolution, channels=channels,
                                  n_classes=n_classes)
        if self.arch == "mlp":
            kw["hidden"] = self.width * 1200 // 64
        elif self.arch in MULTISCALE:
            del kw["n_classes"]
            kw["width"] = self.width
            if self.arch == "lapgan":
                kw["start_resolution"] = self.start
                if self.coarse != "mlp":  # files written before the option load with the model's default, mlp
                    kw["coarse"] = self.coarse
                if self.coarse_width is not None:
                    kw["coarse_width"] = self.coarse_width
        else:
            kw["ngf"] = self.width
        return _G_ARCH[self.arch], kw

    def d_spec(self, channels: int, n_classes: int) -> Tuple[str, Dict[str, Any]]:
        if self.loss == "began":
            if n_classes:
                raise UsageError("--loss began has no conditional discriminator; drop --cond")
            return "began_d", dict(img_resolution=self.resolution, channels=channels, ndf=self.width, h=self.began_h)
        if self.arch in MULTISCALE:
            ms: Dict[str, Any] = dict(img_resolution=self.resolution, channels=channels, width=self.width)
            if self.arch == "lapgan":
                ms.update(start_resolution=self.start, dropout=self.d_dropout)
                if self.coarse != "mlp":
                    ms.update(coarse=self.coarse, batch_norm=self.loss not in ("wgan-gp", "dragan"))
                if self.coarse_width is not None:
                    ms["coarse_width"] = self.coarse_width
            else:
                ms["mbstd_group"] = self.mbstd_group
            if self.arch == "msggan":
                ms["combine"] = self.combine
            return _D_ARCH[self.arch], ms
        kw: Dict[str, Any] = dict(img_resolution=self.resolution, channels=channels, n_classes=n_classes)
        if self.arch == "mlp":
            kw.update(hidden=self.width * 240 // 64, dropout=self.d_dropout)
        else:
            kw.update(ndf=self.width, batch_norm=self.loss not in ("wgan-gp", "dragan"))
        return _D_ARCH[self.arch], kw


def _grad_norm(module: nn.Module) -> float:
    sq = [p.grad.detach().float().square().sum() for p in module.parameters() if p.grad is not None]
    return float(torch.stack(sq).sum().sqrt()) if sq else 0.0


class GANMethod:
    """Networks, optimisers and one training step (a :class:`~imgforge.training.loop.TrainMethod`).

    Args:
        cfg: the run's settings. data: ``batch(indices, device) -> (images (B, C, R, R) in [-1, 1], labels or
            None)`` with ``channels`` and ``n_classes``. device, dist, seed: where, which process, base seed.
    """

    def __init__(self, cfg: GANTrainConfig, data: Any, device: Union[str, torch.device] = "cpu",
                 dist: DistInfo = DistInfo(), seed: int = 0) -> None:
        self.cfg = cfg.validate()
        self.hp = cfg.resolved()
        self.data = data
        self.device = torch.device(device)
        self.dist = dist
        self.seed = int(seed)
        self.n_classes = int(data.n_classes) if cfg.cond else 0
        if cfg.cond and self.n_classes < 2:
            raise UsageError("--cond needs labelled data (class sub-folders, or the MNIST-5k file)")
        self.g_arch, self.g_kwargs = cfg.g_spec(int(data.channels), self.n_classes)
        self.d_arch, self.d_kwargs = cfg.d_spec(int(data.channels), self.n_classes)
        self.G = build(self.g_arch, **self.g_kwargs).to(self.device).train()
        self.D = build(self.d_arch, **self.d_kwargs).to(self.device).train()
        if dist.world_size > 1:  # identical start on every rank
            for t in list(self.G.state_dict().values()) + list(self.D.state_dict().values()):
                torch.distributed.broadcast(t, src=0)
        self.G_ema: Optional[nn.Module] = None
        if self.hp["ema_kimg"] > 0:
            self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.g_opt = self._opt(self.G, self.hp["lr_g"])
        self.d_opt = self._opt(self.D, self.hp["lr_d"])
        self.began = BeganState(gamma=self.hp["gamma"], lambda_k=self.hp["lambda_k"]) if cfg.loss == "began" else None
        #: what D sees goes through this (p stays 0 without --augment)
        self.aug = cfg.augmenter()
        self.train_seconds = 0.0
        self.images_seen = 0
        self.title = f"{cfg.arch.upper()} GAN"

    def init_from(self, source: str) -> str:
        """Copy into G (and its moving average) every layer of the generator ``source`` (a name or file of the
        same architecture) whose tensors all match by name and shape; the rest keep their fresh initialisation.
        Returns a line saying what was copied. For a fresh run only (a resumed run keeps its checkpoint's weights)."""
        from ..hub.loader import load

        other, info = load(source)
        if info.arch != self.g_arch:
            raise UsageError(f"--init {source}: holds a {info.arch or 'non-imgforge'} network, not {self.g_arch}")
        theirs = other.state_dict()
        mine = self.G.state_dict()
        fits = {k: k in theirs and tuple(theirs[k].shape) == tuple(v.shape) for k, v in mine.items()}
        owner = lambda k: k.rsplit(".", 1)[0]  # noqa: E731  (a layer's tensors go together, or not at all)
        bad = {owner(k) for k, ok in fits.items() if not ok}
        same = [k for k, ok in fits.items() if ok and owner(k) not in bad]
        if not same:
            raise UsageError(f"--init {source}: no tensor of it has the name and shape of this run's G")
        with torch.no_grad():
            for k in same:
                mine[k].copy_(theirs[k].to(mine[k].dtype))
            if self.G_ema is not None:
                self.G_ema.load_state_dict(self.G.state_dict())
        left = sorted({k.rsplit(".", 2)[0] for k in mine if k not in same})
        return (f"G started from {info.path.name}: {len(same)} of {len(mine)} tensors"
                + (f" (fresh: {', '.join(left)})" if left else ""))

    def _opt(self, module: nn.Module, lr: float) -> torch.optim.Optimizer:
        if self.hp["optimizer"] == "rmsprop":
            return torch.optim.RMSprop(module.parameters(), lr=lr)
        return torch.optim.Adam(module.parameters(), lr=lr, betas=self.hp["betas"])

    def _trainable(self, module: nn.Module, flag: bool) -> None:
        """Switch ``module``'s gradients on (``flag``) or off; an arch that trains part of a network keeps the rest
        off (parameters without gradients are left alone by the optimiser and the DDP all-reduce)."""
        module.requires_grad_(flag)

    def _ema_only(self) -> Optional[Callable[[str], bool]]:
        """Which of G's parameters the moving average follows (by name; None: all)."""
        return None

    # ---- state ---------------------------------------------------------------------------------------------------
    def state_dict(self) -> Dict[str, Any]:
        state = {"arch": self.cfg.arch, "G": self.G.state_dict(), "D": self.D.state_dict(),
                 "g_opt": self.g_opt.state_dict(), "d_opt": self.d_opt.state_dict(),
                 "began_k": self.began.k if self.began else 0.0, "train_seconds": self.train_seconds,
                 "images_seen": self.images_seen}
        if self.G_ema is not None:
            state["G_ema"] = self.G_ema.state_dict()
        if self.aug.enabled:
            state["aug"] = self.aug.state_dict()
        return state

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        was = state.get("arch", "mlp|dcgan")  # checkpoints of part 1 have no "arch"
        if was != self.cfg.arch and not (was == "mlp|dcgan" and self.cfg.arch in ("mlp", "dcgan")):
            raise TrainingError(f"the checkpoint in this run folder was written by --arch {was}, not --arch "
                                f"{self.cfg.arch}: resume with --arch {was}, or use a new --run-dir")
        objects = {"G": self.G, "D": self.D, "g_opt": self.g_opt, "d_opt": self.d_opt}
        if self.G_ema is not None:
            if "G_ema" not in state:
                raise TrainingError("this checkpoint has no moving average of G: resume without --ema-kimg, "
                                    "or --restart")
            objects["G_ema"] = self.G_ema
        load_states(state, objects)
        if self.began is not None:
            self.began.k = float(state.get("began_k", 0.0))
        if self.aug.enabled and "aug" in state:  # a run that starts augmenting on resume starts from augment_p
            self.aug.load_state_dict(state["aug"])
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.images_seen = int(state.get("images_seen", 0))

    # ---- randomness of the global batch ----------------------------------------------------------------------------
    def _global_gen(self, step: int, phase: int) -> torch.Generator:
        return torch.Generator().manual_seed(step_seed(self.seed, step, 10_000 + phase))

    def _slice(self, t: torch.Tensor) -> torch.Tensor:
        per = t.shape[0] // self.dist.world_size
        return t[self.dist.rank * per:(self.dist.rank + 1) * per].to(self.device)

    def _noise(self, step: int, phase: int) -> Tuple[torch.Tensor, Optional[torch.Tensor], torch.Generator]:
        """This process's z and fake labels of ``phase`` of ``step``, and a generator for the phase's penalty."""
        g = self._global_gen(step, phase)
        z = torch.randn(self.cfg.batch_size, self.cfg.z_dim, generator=g)
        y = torch.randint(0, self.n_classes, (self.cfg.batch_size,), generator=g) if self.n_classes else None
        pen = torch.Generator().manual_seed(step_seed(self.seed, step, 20_000 + phase * 1000 + self.dist.rank))
        return self._slice(z), (self._slice(y) if y is not None else None), pen

    # ---- one step: the hooks the multi-scale methods override ------------------------------------------------------
    def _begin_step(self, step: int) -> None:
        """Set what depends on the step before it runs (ProGAN's stage)."""

    def _real(self, idx: Sequence[int]) -> Tuple[Any, Optional[torch.Tensor]]:
        """This process's real batch ``idx`` as the discriminator sees it, and its labels."""
        return self.data.batch(idx, self.device)

    def _fake(self, z: torch.Tensor, y: Optional[torch.Tensor], real: Any) -> Any:
        """Generated images for ``z`` (``real``: the real batch of the same step, for conditioning on it)."""
        return self.G(z, y) if self.n_classes else self.G(z)

    def _d_scores(self, x: Any, y: Optional[torch.Tensor]) -> torch.Tensor:
        x, = self._augment(x)
        return self.D(x, y) if self.n_classes else self.D(x)

    def _augment(self, *xs: Optional[torch.Tensor]) -> Tuple[Optional[torch.Tensor], ...]:
        """``xs`` as D is to see them: with augmentation on, each image of the batch gets one random transform,
        the same in every tensor of ``xs`` (an image and its conditioning, or one image at several scales; None
        passes through); the draws come from the step's seeded global RNG, so a resumed run repeats them."""
        if self.aug.p <= 0:
            return xs
        seed = int(torch.randint(0, 2**62, (1,)))
        return tuple(None if x is None else self.aug(x, torch.Generator(device=x.device).manual_seed(seed))
                     for x in xs)

    def _pack(self, x: Any) -> torch.Tensor:
        """Images as one ``(B, ...)`` tensor for the penalties (multi-scale lists are flattened)."""
        return x

    def _unpack(self, x: torch.Tensor) -> Any:
        return x

    def _penalty(self, real: Any, fake: Any, labels: Optional[torch.Tensor], pen: torch.Generator,
                 scores: Callable[[Any], torch.Tensor]) -> torch.Tensor:
        crit = lambda v: scores(self._unpack(v))  # noqa: E731
        lam = self.hp["gp_lambda"]
        if self.cfg.loss == "wgan-gp":
            return wgan_gp_penalty(crit, self._pack(real), self._pack(fake), lam, generator=pen)
        return dragan_penalty(crit, self._pack(real), lam, generator=pen)

    def _d_objective(self, real: Any, labels: Optional[torch.Tensor], fake: Any, y_fake: Optional[torch.Tensor],
                     pen: torch.Generator) -> Tuple[torch.Tensor, Dict[str, float]]:
        """The discriminator's loss (with penalty and drift) and what to log."""
        name = self.cfg.loss
        s_real, s_fake = self._d_scores(real, labels), self._d_scores(fake, y_fake)
        self.aug.accumulate(s_real)
        loss_d = d_loss(name, s_real, s_fake)
        out: Dict[str, float] = {}
        if name in ("wgan-gp", "dragan"):
            gp = self._penalty(real, fake, labels, pen, lambda v: self._d_scores(v, labels))
            loss_d = loss_d + gp
            out["gp"] = float(gp.detach())
        if self.hp.get("drift"):
            loss_d = loss_d + self.hp["drift"] * s_real.square().mean()
        out.update(D_real=float(self.dist.mean(s_real.detach().mean())),
                   D_fake=float(self.dist.mean(s_fake.detach().mean())))
        return loss_d, out

    def _g_objective(self, fake: Any, y_fake: Optional[torch.Tensor], real: Any,
                     labels: Optional[torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, float]]:
        """The generator's loss (the relativistic losses also score ``real``, the step's last real batch)."""
        s_real = None
        if self.cfg.loss in RELATIVISTIC:
            with torch.no_grad():
                s_real = self._d_scores(real, labels)
        return g_loss(self.cfg.loss, self._d_scores(fake, y_fake), s_real), {}

    def step(self, batch: Sequence[Sequence[int]], step: int) -> Dict[str, float]:
        """One generator step after ``len(batch)`` discriminator steps (``batch``: this process's index lists)."""
        t0 = time.perf_counter()
        hp = self.hp
        torch.manual_seed(step_seed(self.seed, step, self.dist.rank))  # dropout masks
        self._begin_step(step)
        out: Dict[str, float] = {}
        self.G.requires_grad_(False)
        self._trainable(self.D, True)
        real: Any = None
        labels: Optional[torch.Tensor] = None
        for j, idx in enumerate(batch):
            real, labels = self._real(idx)
            z, y_fake, pen = self._noise(step, j)
            with torch.no_grad():
                fake = self._fake(z, y_fake, real)
            if self.began is not None:
                l_real = BeganState.recon(self.D(real), real)
                l_fake = BeganState.recon(self.D(fake), fake)
                loss_d = self.began.d_loss(l_real, l_fake)
                out.update(D_real=float(self.dist.mean(l_real.detach())),
                           D_fake=float(self.dist.mean(l_fake.detach())))
            else:
                loss_d, logged = self._d_objective(real, labels, fake, y_fake, pen)
                out.update(logged)
            self.D.zero_grad(set_to_none=True)
            loss_d.backward()
            self.dist.average_grads(self.D.parameters())
            self.d_opt.step()
            if hp["clip"] is not None:
                clip_weights(self.D, hp["clip"])
            out["loss_D"] = float(self.dist.mean(loss_d.detach()))

        self._trainable(self.G, True)
        self.D.requires_grad_(False)
        z, y_fake, _ = self._noise(step, len(batch))
        fake = self._fake(z, y_fake, real)
        if self.began is not None:
            loss_g = BeganState.recon(self.D(fake), fake)
        else:
            loss_g, logged = self._g_objective(fake, y_fake, real, labels)
            out.update(logged)
        self.G.zero_grad(set_to_none=True)
        loss_g.backward()
        self.dist.average_grads(self.G.parameters())
        out["G_grad"] = _grad_norm(self.G)
        self.g_opt.step()
        self._trainable(self.D, True)
        out["loss_G"] = float(self.dist.mean(loss_g.detach()))
        if self.began is not None:
            out["M_global"] = self.began.update(out["D_real"], out["loss_G"])
            out["k"] = self.began.k
        self.images_seen += self.cfg.batch_size * len(batch)
        self.aug.step_done(step + 1, self.cfg.batch_size * len(batch), self.dist, self.device)
        if self.aug.enabled:
            out["p_aug"] = self.aug.p
        if self.G_ema is not None:
            ema_update(self.G_ema, self.G, self.cfg.batch_size, self.images_seen, self.hp["ema_kimg"],
                       only=self._ema_only())
        self.train_seconds += time.perf_counter() - t0
        return out

    @property
    def G_sample(self) -> nn.Module:
        """The generator the samples and the export use: the moving average when there is one."""
        return self.G_ema if self.G_ema is not None else self.G

    # ---- outputs ---------------------------------------------------------------------------------------------------
    def fixed_inputs(self) -> Tuple[torch.Tensor, Optional[torch.Tensor], int]:
        """``(z, labels, columns)`` of the sample grids: seeds 0 ... (as ``imgforge generate``); conditional: one
        row per class, the same seeds in every row."""
        from ..models.protocols import z_from_seeds

        n = self.cfg.sample_grid
        if not self.n_classes:
            return z_from_seeds(range(n), self.cfg.z_dim), None, 0
        cols = max(1, min(n, 10))
        z = z_from_seeds(range(cols), self.cfg.z_dim).repeat(self.n_classes, 1)
        return z, torch.arange(self.n_classes).repeat_interleave(cols), cols

    @torch.no_grad()
    def sample_grid(self, step: int, run_dir: Path) -> Path:
        """Write ``run_dir/samples/step_XXXXXX.png`` (generator in eval mode) and refresh the run page."""
        from ..io import save_image
        from ..reports import make_grid

        z, y, cols = self.fixed_inputs()
        self.G.eval()
        try:
            imgs = torch.cat([self._sample_images(z[i:i + 100].to(self.device),
                                                  y[i:i + 100].to(self.device) if y is not None else None, step)
                              for i in range(0, len(z), 100)])
            scales = self._sample_scales(z[:min(len(z), 10)].to(self.device), step)
        finally:
            self.G.train()
        to01 = lambda t: ((t.float().cpu().clamp(-1, 1) + 1) / 2).expand(-1, 3, -1, -1)  # noqa: E731
        path = Path(run_dir) / "samples" / f"step_{step:06d}.png"
        save_image(make_grid(to01(imgs), cols or None, pad=1, pad_value=0.0, border=False), path)
        if scales is not None:  # (N, S, C, R, R): one row per scale (coarse to fine), one column per z
            save_image(make_grid(to01(scales.transpose(0, 1).flatten(0, 1)), scales.shape[0], pad=1, pad_value=0.0,
                                 border=False), Path(run_dir) / "samples" / f"scales_{step:06d}.png")
        return path

    def _sample_images(self, z: torch.Tensor, y: Optional[torch.Tensor], step: int) -> torch.Tensor:
        """The generator's images for the sample grid after ``step`` steps."""
        return self.G_sample(z, y) if y is not None else self.G_sample(z)

    def _sample_scales(self, z: torch.Tensor, step: int) -> Optional[torch.Tensor]:
        """Per-scale images ``(N, S, C, R, R)`` for the run page (None: a single-scale generator)."""
        return None

    def export(self, path: Union[str, Path], extra: Optional[Dict[str, str]] = None) -> Path:
        """Write the generator as an imgforge model file (``arch`` + ``arch_kwargs`` + training metadata)."""
        from ..hub.modelfile import save_model_file

        meta = {"trained_with": "imgforge gan train", "loss": self.cfg.loss, "output_range": "-1,1",
                "images_seen": str(self.images_seen), "train_seconds": f"{self.train_seconds:.1f}",
                "train_config": json.dumps({**asdict(self.cfg), "resolved": self.hp}, sort_keys=True, default=list)}
        if self.n_classes:
            meta["class_names"] = json.dumps(list(self.data.class_names))
        meta.update(extra or {})
        if self.G_ema is not None:
            meta["ema_kimg"] = str(self.hp["ema_kimg"])
        return save_model_file(path, self.G_sample.state_dict(), arch=self.g_arch, arch_kwargs=self.g_kwargs,
                               extra=meta)


def method_class(arch: str) -> type:
    """The training method of ``arch``: :class:`GANMethod`, or a multi-scale one."""
    if arch in MULTISCALE:
        from .multiscale_gan import MULTISCALE_METHODS

        return MULTISCALE_METHODS[arch]
    return GANMethod


@dataclass
class GANTrainResult:
    """What :func:`train_gan` returns."""

    history: List[Dict[str, float]]
    generator: Optional[Path]
    train_seconds: float
    skipped: List[str]
    method: GANMethod = field(repr=False)


def write_page(method: Any, run_dir: Path, title: str, record: Dict[str, Any], history: Sequence[Dict[str, float]],
               notes: Sequence[str] = ()) -> Path:
    """``run_dir/index.html``: loss curves and every ``samples/step_*.png``."""
    from ..reports import write_run_page

    def listed(pattern: str) -> List[Tuple[int, str]]:
        return [(int(p.stem.split("_")[-1]), f"samples/{p.name}") for p in sorted((run_dir / "samples").glob(pattern))]

    samples, scales = listed("step_*.png"), listed("scales_*.png")
    columns = ["fixed z"] + (["then every scale of the first z (rows: coarse to fine)"] if scales else [])
    return write_run_page(run_dir, title, record, history, samples + scales, columns, notes)


def _history(run_dir: Path) -> List[Dict[str, float]]:
    p = run_dir / "losses.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.is_file() else []


def train_gan(
    data: Union[str, Path, Any],
    cfg: GANTrainConfig,
    loop: LoopConfig,
    *,
    channels: int = 0,
    device: Union[str, torch.device] = "cpu",
    progress: Optional[ProgressFn] = None,
) -> GANTrainResult:
    """Train (or continue training) a GAN of the family.

    Args:
        data: an image folder or MNIST-5k file (:func:`~imgforge.data.gan_images.load_training_images`), or an
            object like :class:`~imgforge.data.gan_images.TrainingImages`.
        cfg: networks and optimisation. loop: run folder, generator steps, seed, intervals, resume.
        channels: 1 or 3 to force the image channels of a folder (0: grey when every image is grey).
        device: training device. progress: losses every ``loop.log_every`` steps and notes.
    Raises:
        UsageError: bad settings. TrainingError: no images, or a checkpoint that does not fit.
        Interrupted: Ctrl-C / SIGTERM (a checkpoint, the generator and the run page were written first).
    """
    from ..data.gan_images import load_training_images
    from ..runtime import seed_everything

    cfg = cfg.validate()
    dist, device = distributed_device(device)
    run_dir = Path(loop.run_dir)
    try:
        if isinstance(data, (str, Path)):
            dataset: Any = load_training_images(data, cfg.resolution, channels=channels, labels=cfg.cond)
            source = str(data)
        else:
            dataset, source = data, type(data).__name__
        skipped = list(getattr(dataset, "skipped", []))
        if skipped:
            note(progress, "train", f"skipped {len(skipped)} unreadable file(s), e.g. {skipped[0]}")
        if cfg.batch_size % dist.world_size:
            raise UsageError(f"--batch-size {cfg.batch_size} is not divisible by {dist.world_size} processes")
        hp = cfg.resolved()
        order = DeterministicBatches(len(dataset), cfg.batch_size, seed=loop.seed, rank=dist.rank,
                                     world_size=dist.world_size)
        k = hp["d_steps"]
        seed_everything(loop.seed)  # identical initial weights for a given seed (and on every rank)
        method = method_class(cfg.arch)(cfg, dataset, device, dist, seed=loop.seed)
        init_line = method.init_from(cfg.init) if cfg.init and not resumes(loop) else ""
        record = {"method": "gan", "data": source, "images": len(dataset), "skipped": len(skipped),
                  "channels": int(dataset.channels), "classes": list(getattr(dataset, "class_names", ()))
                  if method.n_classes else [], "gan": asdict(cfg), "resolved": hp, "loop": asdict(loop),
                  "world_size": dist.world_size}
        title = f"{method.title}, loss {cfg.loss}{' (conditional)' if method.n_classes else ''}"
        note(progress, "train", f"{title}, {cfg.resolution}x{cfg.resolution}x{dataset.channels} on {len(dataset)} "
             f"images: G {sum(p.numel() for p in method.G.parameters()):,} / D "
             f"{sum(p.numel() for p in method.D.parameters()):,} parameters, batch {cfg.batch_size}, "
             f"{hp['optimizer']} lr G {hp['lr_g']:g} / D {hp['lr_d']:g}, {k} D step(s) per G step, "
             f"{dist.world_size} process(es) on {device}")
        if init_line:
            note(progress, "train", init_line)

        def sample(step: int, rd: Path) -> None:
            method.sample_grid(step, rd)
            write_page(method, rd, title, record, _history(rd))

        out_path = run_dir / GENERATOR_NAME

        def finish(history: List[Dict[str, float]], interrupted: bool) -> None:
            last = steps_done(history)
            if loop.sample_every == 0 or last % loop.sample_every:
                method.sample_grid(last, run_dir)
            method.export(out_path)
            write_page(method, run_dir, title, record, history)

        history = train_loop(method, lambda s: [order.local_batch(s * k + j) for j in range(k)], loop,
                             config_record=record, sample=sample if loop.sample_every else None,
                             progress=progress, is_main=dist.is_main, task="train", finish=finish)
        if dist.is_main:
            note(progress, "train", f"wrote {out_path} and {run_dir / 'index.html'} (trained "
                 f"{method.train_seconds / 60:.1f} min)")
    finally:
        if dist.world_size > 1:
            shutdown_distributed()
    return GANTrainResult(history, out_path if dist.is_main else None, method.train_seconds, skipped, method)


__all__ = ["ARCHS", "AUGMENT_MODES", "ONLY_FOR", "LOSSES", "GENERATOR_NAME", "GANTrainConfig", "GANMethod",
           "GANTrainResult", "train_gan", "check_options", "check_power_of_two", "write_page"]
