"""Pieces shared by the pix2pix and CycleGAN trainers: options, network construction, the learning-rate schedule,
per-step seeding, DDP gradient synchronisation, batch assembly and model export.

DDP (``torchrun``): every rank builds the same networks from the same seed, takes its slice of each global batch
(:class:`~imgforge.training.loop.DeterministicBatches`), and the gradients are averaged with one flat all-reduce per
optimiser before the step. Because every loss is a mean over the batch and the per-sample data depends only on
``(seed, step, position in the global batch)``, N processes compute the same update as one process on the combined
batch, up to float summation order, with two documented exceptions: BatchNorm in train mode normalises with each
rank's own batch statistics (use ``--norm instance`` for exact equivalence; running statistics are averaged across
ranks after every step), and dropout masks are drawn per rank.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..errors import TrainingError, UsageError
from ..models.registry import build
from ..models.translation import discriminator_spec, init_weights

LR_POLICIES = ("linear", "step", "cosine", "constant")
GAN_MODE_ALIASES = {"vanilla": "vanilla", "lsgan": "lsgan", "wgangp": "wgangp", "wgan-gp": "wgangp", "hinge": "hinge"}


@dataclass(frozen=True)
class TranslationTrainConfig:
    """Options shared by pix2pix and CycleGAN training; defaults are the reference's option defaults.

    Attributes:
        netG: ``resnet_9blocks`` / ``resnet_6blocks`` / ``resnet_<n>blocks``, ``unet_256`` / ``unet_128`` /
            ``unet_<2**k>`` (k >= 5; ``unet_32`` for tiny tests).
        netD: ``basic`` (70x70 PatchGAN), ``n_layers`` (with ``n_layers_D``) or ``pixel``.
        ngf / ndf: widths of the first generator / discriminator layer.
        norm: ``batch``, ``instance`` or ``none``.
        dropout: Dropout(0.5) in the generator.
        init_type / init_gain: weight init (``normal``, 0.02).
        gan_mode: ``vanilla`` (BCE), ``lsgan`` (MSE), ``wgangp`` (with a gradient penalty of weight ``lambda_gp``)
            or ``hinge``.
        lr / beta1: Adam learning rate and beta1 (beta2 = 0.999).
        lr_policy: ``linear`` (constant for ``n_epochs``, then linear decay over ``n_epochs_decay``), ``step``
            (x0.1 every ``lr_decay_iters`` epochs), ``cosine`` (T_max = ``n_epochs``) or ``constant``.
        n_epochs / n_epochs_decay: epochs at the initial rate / of decay (epoch = one pass over the dataset).
        steps: stop after this many optimisation steps (default: the whole schedule,
            ``ceil((n_epochs + n_epochs_decay) * len(dataset) / batch_size)``).
        batch_size: the GLOBAL batch (split across DDP ranks).
        preprocess / load_size / crop_size / flip: see :class:`imgforge.data.transforms.Preprocess`.
        input_nc / output_nc: image channels (1 = grey).
        seed: seeds the weights, the data order, the augmentation and the dropout masks.
        checkpoint_every / sample_every / log_every: in steps (sample_every 0: no sample grids).
        n_samples: images in each sample grid.
    """

    netG: str = "resnet_9blocks"
    netD: str = "basic"
    n_layers_D: int = 3
    ngf: int = 64
    ndf: int = 64
    norm: str = "instance"
    dropout: bool = False
    init_type: str = "normal"
    init_gain: float = 0.02
    gan_mode: str = "lsgan"
    lambda_gp: float = 10.0
    lr: float = 2e-4
    beta1: float = 0.5
    lr_policy: str = "linear"
    n_epochs: int = 100
    n_epochs_decay: int = 100
    lr_decay_iters: int = 50
    steps: Optional[int] = None
    batch_size: int = 1
    preprocess: str = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    input_nc: int = 3
    output_nc: int = 3
    seed: int = 0
    checkpoint_every: int = 500
    sample_every: int = 200
    log_every: int = 10
    n_samples: int = 4

    def validate(self) -> None:
        if GAN_MODE_ALIASES.get(self.gan_mode) is None:
            raise UsageError(f"--gan-mode {self.gan_mode!r}: expected vanilla, lsgan, wgan-gp or hinge")
        if self.lr_policy not in LR_POLICIES:
            raise UsageError(f"--lr-policy {self.lr_policy!r}: expected one of {', '.join(LR_POLICIES)}")
        if self.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.steps is not None and self.steps < 0:
            raise UsageError(f"--steps must be >= 0, got {self.steps}")
        if self.n_epochs < 0 or self.n_epochs_decay < 0 or self.n_epochs + self.n_epochs_decay == 0:
            raise UsageError("--epochs and --epochs-decay must be >= 0 and not both 0")
        if self.input_nc not in (1, 3) or self.output_nc not in (1, 3):
            raise UsageError("input_nc and output_nc must be 1 or 3")
        if self.checkpoint_every < 1 or self.log_every < 1 or self.sample_every < 0:
            raise UsageError("checkpoint/log intervals must be >= 1 and the sample interval >= 0")
        from ..data.transforms import PREPROCESS_MODES

        if self.preprocess not in PREPROCESS_MODES:
            raise UsageError(f"--preprocess {self.preprocess!r}: expected one of {', '.join(PREPROCESS_MODES)}")
        if "crop" in self.preprocess and self.preprocess != "crop" and self.crop_size > self.load_size:
            raise UsageError(f"--crop-size {self.crop_size} is larger than --load-size {self.load_size}; "
                             "give a --load-size at least as large")
        arch, kw = generator_arch(self.netG, self.input_nc, self.output_nc, self.ngf, self.norm, self.dropout)
        multiple = 2 ** kw["num_downs"] if arch == "unet_generator" else 4
        if "crop" in self.preprocess and self.crop_size % multiple:
            hint = f"; use unet_{self.crop_size}" if arch == "unet_generator" and self.crop_size in (32, 64, 128, 256, 512) else ""
            raise UsageError(f"--netG {self.netG} needs --crop-size a multiple of {multiple}, got {self.crop_size}{hint}")
        discriminator_arch(self, self.input_nc)

    @property
    def gan(self) -> str:
        return GAN_MODE_ALIASES[self.gan_mode]

    def total_steps(self, n_data: int) -> int:
        if self.steps is not None:
            return int(self.steps)
        return int(math.ceil((self.n_epochs + self.n_epochs_decay) * n_data / self.batch_size))

    def to_record(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


# ---- networks ---------------------------------------------------------------------------------------------------


def generator_arch(netG: str, input_nc: int, output_nc: int, ngf: int, norm: str, dropout: bool) -> Tuple[str, Dict[str, Any]]:
    """``(arch, kwargs)`` for a ``--netG`` name (``resnet_<n>blocks``, ``unet_<2**k>``)."""
    if norm not in ("batch", "instance", "none"):
        raise UsageError(f"--norm {norm!r}: expected batch, instance or none")
    kw: Dict[str, Any] = {"input_nc": input_nc, "output_nc": output_nc, "ngf": ngf, "norm": norm, "use_dropout": dropout}
    m = re.fullmatch(r"resnet_(\d+)blocks", netG)
    if m:
        return "resnet_generator", {**kw, "n_blocks": int(m.group(1))}
    m = re.fullmatch(r"unet_(\d+)", netG)
    if m:
        size = int(m.group(1))
        k = size.bit_length() - 1
        if size < 32 or (1 << k) != size:
            raise UsageError(f"--netG {netG}: the U-Net size must be a power of two >= 32 (unet_256, unet_128, ...)")
        return "unet_generator", {**kw, "num_downs": k}
    raise UsageError(f"--netG {netG!r}: expected resnet_9blocks, resnet_6blocks, unet_256, unet_128 (or resnet_<n>blocks, unet_<2^k>)")


def discriminator_arch(cfg: TranslationTrainConfig, input_nc: int) -> Tuple[str, Dict[str, Any]]:
    try:
        return discriminator_spec(cfg.netD, input_nc=input_nc, ndf=cfg.ndf, n_layers_D=cfg.n_layers_D, norm=cfg.norm)
    except ValueError as exc:
        raise UsageError(f"--netD: {exc}") from None


def _contiguous(grad: torch.Tensor) -> torch.Tensor:
    return grad.contiguous()


def _hook_output(module: nn.Module, args: Any, output: torch.Tensor) -> None:
    if output.requires_grad:
        output.register_hook(_contiguous)


def guard_instance_norm_grads(net: nn.Module) -> nn.Module:
    """Work around a PyTorch CPU bug (seen in 2.13): ``InstanceNorm2d`` backward with batch size 1 and a
    channels_last ``grad_output`` returns a wrong input gradient (errors of order 1), which is what a channels_last
    network feeds it. A forward hook puts a tensor hook on every InstanceNorm output that makes the incoming
    gradient contiguous (one copy per layer and step)."""
    for m in net.modules():
        if isinstance(m, nn.modules.instancenorm._InstanceNorm):
            m.register_forward_hook(_hook_output)
    return net


def make_net(arch: str, kwargs: Mapping[str, Any], cfg: TranslationTrainConfig, device: torch.device,
             channels_last: bool) -> nn.Module:
    """Build and initialise (reference ``init_weights``, global RNG) a network on ``device``; with
    ``channels_last`` the InstanceNorm gradients are guarded (:func:`guard_instance_norm_grads`)."""
    net = init_weights(build(arch, **dict(kwargs)), cfg.init_type, cfg.init_gain).to(device)
    if channels_last:
        net = guard_instance_norm_grads(net.to(memory_format=torch.channels_last))
    return net


def make_adam(params: Iterable[nn.Parameter], cfg: TranslationTrainConfig, device: torch.device) -> torch.optim.Adam:
    """The reference's optimiser, ``Adam(lr, betas=(beta1, 0.999))``, as torch's fused implementation on CPU and CUDA.

    Same update rule; the fused kernel does each parameter's step in one pass instead of a dozen elementwise ops, which
    matters here: the unet_256 generator has 54 M parameters, and the default Adam spent ~0.25 s of a ~1.1 s bf16
    training step on them on a 2-core CPU (fused: ~0.04 s). Results equal the default implementation up to float
    rounding (tests/unit/test_translation_train.py).
    """
    fused = device.type in ("cpu", "cuda")
    return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, 0.999), fused=fused or None)


def set_requires_grad(nets: Iterable[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


# ---- schedule and seeding -----------------------------------------------------------------------------------------


def lr_multiplier(cfg: TranslationTrainConfig, epoch: int) -> float:
    """The reference's schedulers as a function of the 0-based epoch (``epoch_count = 1``)."""
    if cfg.lr_policy == "linear":
        return 1.0 - max(0, epoch + 1 - cfg.n_epochs) / float(cfg.n_epochs_decay + 1)
    if cfg.lr_policy == "step":
        return 0.1 ** (epoch // max(cfg.lr_decay_iters, 1))
    if cfg.lr_policy == "cosine":
        return (1 + math.cos(math.pi * epoch / max(cfg.n_epochs, 1))) / 2
    return 1.0


def set_lr(optimizers: Sequence[torch.optim.Optimizer], lr: float) -> None:
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = lr


#: ``step_seed`` stream of the translation runs (see :func:`imgforge.training.loop.step_seed`).
SEED_STREAM = 7


# ---- misc ---------------------------------------------------------------------------------------------------------


def check_resume_compatible(run_dir: Path, record: Mapping[str, Any], keys: Sequence[str]) -> None:
    """Refuse to resume a run whose saved configuration differs in ``keys`` (network shapes, method)."""
    import json

    cfg_path = run_dir / "config.json"
    if not (run_dir / "checkpoint.pt").exists() or not cfg_path.exists():
        return
    try:
        old = json.loads(cfg_path.read_text())
    except (OSError, ValueError):
        return
    diffs = [f"{k}: {old.get(k)!r} -> {record.get(k)!r}" for k in keys if k in old and old.get(k) != record.get(k)]
    if diffs:
        raise TrainingError(
            f"{run_dir} holds a checkpoint of a different configuration ({'; '.join(diffs)}); use another "
            "--run-dir, or --no-resume to start that run over"
        )
