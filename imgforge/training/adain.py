"""Training an AdaIN decoder (Huang & Belongie 2017; naoto0804/pytorch-AdaIN ``train.py``).

Defaults are the reference's (see :class:`AdaINTrainConfig`): frozen encoder up to relu4_1; Adam over the decoder
only, lr 1e-4 with inverse decay ``lr / (1 + 5e-5 * i)`` set before every step; batch 8; 160000 iterations;
training images ``Resize((512, 512))`` then a random 256 crop, content and style drawn independently; content loss
``MSE(enc(g), t)`` at relu4_1 with ``t = AdaIN(enc(c), enc(s))``; style loss at relu1_1, relu2_1, relu3_1, relu4_1:
``MSE(mean) + MSE(std)`` (unbiased variance + 1e-5); total ``1 * content + 10 * style``; a decoder file every 10000
iterations.

The encoder is the published ``vgg_normalised.pth`` (``adain-vgg-normalised``) when present locally, else the
embedded random-feature VGG-19; ``vgg`` takes any VGG-16/19 or vgg_normalised name or file. The decoder is written
as an imgforge model file ``decoder.safetensors`` whose metadata names its encoder (``encoder``), so that
``imgforge stylize --method adain --decoder RUN/decoder.safetensors`` finds the matching encoder.

Data order: content and style image indices come from two :class:`~imgforge.training.loop.DeterministicBatches`
(shuffled with different seeds, standing in for the reference's infinite random-permutation samplers); the random
crops are a pure function of the step, so a resumed run is identical to an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..data.style_images import StyleImageFolder
from ..errors import TrainingError, UsageError
from ..validate import make_dir
from ..ops.stats import adain, calc_mean_std
from ..progress import ProgressFn, note
from ..runtime import Runtime, precision_name, seed_everything
from .fast_style import load_loss_network
from .loop import DeterministicBatches, LoopConfig, load_states, steps_done, train_loop

__all__ = ["AdaINTrainConfig", "AdaINMethod", "train_adain", "STYLE_LAYERS"]

STYLE_LAYERS: Tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")


@dataclass(frozen=True)
class AdaINTrainConfig:
    """Settings of :func:`train_adain` (defaults: the reference's).

    Attributes:
        content_dirs, style_dirs: folders of content and style training images.
        run_dir: output folder (resumed when it holds a checkpoint).
        vgg: encoder name or file (None: published vgg_normalised if present locally, else the embedded encoder).
        image_size: random crop side (reference 256); resize: images are first resized to ``resize x resize``
            (reference 512; None = 2 * image_size).
        batch_size, lr, lr_decay, steps: reference 8, 1e-4, 5e-5, 160000.
        content_weight, style_weight: reference 1, 10.
        seed, checkpoint_every (reference save_model_interval 10000), log_every.
        sample_content, sample_style: images for the sample at each checkpoint (default: the first of each folder).
        init_decoder: start from this decoder (a weights name or file, e.g. a published ``decoder.pth`` to
            fine-tune, or a least-squares initialisation as in ``weights/recipes/train_adain_decoder.py``) instead of
            PyTorch's default initialisation.
        identity_weight: not in the reference: weight of an identity (reconstruction) loss
            ``MSE(decoder(enc(c)), c)`` on the content batch, as SANet's first identity loss (Park & Lee 2019); it
            gives the decoder direct pixel gradients, which short training budgets need. 0 = the reference.
        warm_output: not in the reference: start the decoder's last convolution at a useful output range (bias =
            the images' mean colour, weights scaled to an initial output std of 0.15) instead of near 0 (black);
            helps short training budgets.
        warmup_steps: not in the reference: the learning rate rises linearly over this many first steps (times
            ``(i + 1) / warmup_steps``). Adam's first updates are about ``lr`` in every weight whatever the gradient's
            size; starting from a fitted decoder (weights ~1e-2) at lr 1e-4 that blows the loss up 600x at step 2
            (measured on the least-squares decoder). 0 = the reference.
        device: where to train.
    """

    content_dirs: Tuple[str, ...]
    style_dirs: Tuple[str, ...]
    run_dir: str
    vgg: Optional[str] = None
    image_size: int = 256
    resize: Optional[int] = 512
    batch_size: int = 8
    lr: float = 1e-4
    lr_decay: float = 5e-5
    steps: int = 160000
    content_weight: float = 1.0
    style_weight: float = 10.0
    seed: int = 0
    checkpoint_every: int = 10000
    log_every: int = 100
    sample_content: Optional[str] = None
    sample_style: Optional[str] = None
    init_decoder: Optional[str] = None
    identity_weight: float = 0.0
    warm_output: bool = False
    warmup_steps: int = 0
    device: str = "cpu"

    def validate(self) -> None:
        if self.image_size < 32:
            raise UsageError(f"--image-size must be at least 32, got {self.image_size}")
        if self.resize is not None and self.resize < self.image_size:
            raise UsageError(f"--resize ({self.resize}) must be at least --image-size ({self.image_size})")
        if self.batch_size < 1 or self.lr <= 0 or self.lr_decay < 0 or self.steps < 1 or self.warmup_steps < 0:
            raise UsageError("--batch-size and --steps must be >= 1, --lr > 0, --lr-decay and --warmup-steps >= 0")
        if not self.content_dirs or not self.style_dirs:
            raise UsageError("give --content-dir and --style-dir (folders of training images)")


class AdaINMethod:
    """The TrainMethod: a decoder + Adam with the reference's inverse learning-rate decay; frozen encoder."""

    def __init__(self, cfg: AdaINTrainConfig, encoder: nn.Module, dtype: Optional[torch.dtype] = None) -> None:
        from ..models.adain import AdaINDecoder

        self.cfg = cfg
        self.device = torch.device(cfg.device)
        self.dtype = dtype  #: autocast dtype of the forward passes (the Runtime's), None = float32
        self.encoder = encoder.to(self.device).eval()
        for p in self.encoder.parameters():
            p.requires_grad_(False)
        missing = [l for l in STYLE_LAYERS if l not in self.encoder.layer_names]
        if missing:
            raise UsageError(f"the encoder has no layer(s) {', '.join(missing)}")
        self.decoder = AdaINDecoder()
        if cfg.init_decoder is not None:
            from ..hub.loader import load

            init, info = load(cfg.init_decoder)
            if not isinstance(init, AdaINDecoder):
                raise UsageError(f"--init-decoder {cfg.init_decoder}: holds a {info.arch}, not an AdaIN decoder")
            self.decoder.load_state_dict(init.state_dict())
        self.decoder = self.decoder.to(self.device).train()
        self.opt = torch.optim.Adam(self.decoder.parameters(), lr=cfg.lr)

    @torch.no_grad()
    def warm_output(self, content: Tensor, style: Tensor) -> None:
        """See :attr:`AdaINTrainConfig.warm_output`."""
        last = self.decoder[28]
        last.bias.zero_()
        t = adain(self._enc(content.to(self.device))["relu4_1"], self._enc(style.to(self.device))["relu4_1"])
        y = self.decoder(t)
        last.weight.mul_(0.15 / float(y.std().clamp_min(1e-6)))
        last.bias.copy_(content.mean(dim=(0, 2, 3)).to(self.device))

    def _ctx(self):  # type: ignore[no-untyped-def]
        import contextlib

        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.dtype)

    def _enc(self, x: Tensor) -> Dict[str, Tensor]:
        with self._ctx():
            return {k: v.float() for k, v in self.encoder(x, STYLE_LAYERS).items()}

    def state_dict(self) -> Dict[str, Any]:
        return {"decoder": self.decoder.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.decoder.load_state_dict(state["decoder"])
        load_states(state, {"opt": self.opt})

    def losses(self, content: Tensor, style: Tensor) -> Dict[str, Tensor]:
        """Reference ``Net.forward`` with alpha 1: content and style losses (weighted) and their sum."""
        cfg = self.cfg
        with torch.no_grad():
            sf = self._enc(style.to(self.device))
            cf = self._enc(content.to(self.device))["relu4_1"]
            t = adain(cf, sf["relu4_1"])
        with self._ctx():
            g = self.decoder(t)
        gf = self._enc(g.float())
        loss_c = F.mse_loss(gf["relu4_1"], t)
        loss_s = g.new_zeros((), dtype=torch.float32)
        for k in STYLE_LAYERS:
            gm, gs = calc_mean_std(gf[k])
            sm, ss = calc_mean_std(sf[k])
            loss_s = loss_s + F.mse_loss(gm, sm) + F.mse_loss(gs, ss)
        loss_c, loss_s = cfg.content_weight * loss_c, cfg.style_weight * loss_s
        out = {"content": loss_c, "style": loss_s}
        total = loss_c + loss_s
        if cfg.identity_weight > 0:
            with self._ctx():
                rec = self.decoder(cf)
            loss_id = cfg.identity_weight * F.mse_loss(rec.float(), content.to(self.device))
            out["identity"] = loss_id
            total = total + loss_id
        out["total"] = total
        return out

    def step(self, batch: Tuple[Tensor, Tensor], step: int) -> Dict[str, float]:
        lr = self.cfg.lr / (1.0 + self.cfg.lr_decay * step)  # adjust_learning_rate(optimizer, iteration_count=i)
        if step < self.cfg.warmup_steps:
            lr *= (step + 1) / self.cfg.warmup_steps
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.zero_grad(set_to_none=True)
        losses = self.losses(*batch)
        loss = losses["total"]
        if not torch.isfinite(loss):
            raise TrainingError(f"the loss became {float(loss)} at step {step + 1}; lower --lr or the style weight")
        loss.backward()
        self.opt.step()
        return {**{k: float(v.detach()) for k, v in losses.items()}, "lr": lr}


def train_adain(cfg: AdaINTrainConfig, *, runtime: Optional[Runtime] = None,
                progress: Optional[ProgressFn] = None) -> List[Dict[str, float]]:
    """Train (or resume) an AdaIN decoder; returns the loss history. ``runtime``: the precision policy (its
    autocast dtype for the forward passes; None = float32).

    Raises:
        Interrupted: on Ctrl-C / SIGTERM, after writing a checkpoint and ``decoder.safetensors`` at that step (run
            again to resume).
    """
    from ..hub.modelfile import save_model_file
    from ..methods.adain import adain_stylize
    from ..io import load_image, save_image

    cfg.validate()
    resize = cfg.resize or 2 * cfg.image_size
    content = StyleImageFolder(cfg.content_dirs, size=cfg.image_size, resize=resize, resize_square=True,
                               crop="random", seed=cfg.seed)
    styles = StyleImageFolder(cfg.style_dirs, size=cfg.image_size, resize=resize, resize_square=True,
                              crop="random", seed=cfg.seed + 7919)
    for msg in content.skipped + styles.skipped:
        note(progress, "train", f"skipped {msg}")
    encoder, enc_desc, enc_id = load_loss_network(cfg.vgg, progress, prefer="adain-vgg-normalised")
    note(progress, "train", f"{len(content)} content and {len(styles)} style images; encoder: {enc_desc}")
    seed_everything(cfg.seed)
    dtype = runtime.dtype if runtime is not None else None
    method = AdaINMethod(cfg, encoder, dtype)
    c_order = DeterministicBatches(len(content), cfg.batch_size, seed=cfg.seed)
    s_order = DeterministicBatches(len(styles), cfg.batch_size, seed=cfg.seed + 1)
    run = Path(cfg.run_dir)
    s_content = load_image(cfg.sample_content).rgb[None] if cfg.sample_content else content.get(0)[None]
    s_style = load_image(cfg.sample_style).rgb[None] if cfg.sample_style else styles.get(0)[None]
    meta = {
        "trained_with": "imgforge adain train",
        "encoder": enc_id,
        "precision": precision_name(dtype),
        "config": json.dumps({k: v for k, v in dataclasses.asdict(cfg).items() if k != "run_dir"}, sort_keys=True,
                             default=str),
    }

    def get_batch(step: int) -> Tuple[Tensor, Tensor]:
        # distinct crop streams for content and style: slots 0..B-1 and B..2B-1
        c = torch.stack([content.get(i, step, k) for k, i in enumerate(c_order.global_batch(step))])
        s = torch.stack([styles.get(i, step, cfg.batch_size + k) for k, i in enumerate(s_order.global_batch(step))])
        return c, s

    if cfg.warm_output:  # before the loop: on resume the checkpoint's weights replace these
        method.warm_output(*get_batch(0))

    def enc_fn(x: Tensor) -> Tensor:
        return method.encoder(x, ("relu4_1",))["relu4_1"]

    def sample(step: int, run_dir: Path) -> None:
        method.decoder.eval()
        with torch.no_grad():
            out = adain_stylize(s_content.to(method.device), [s_style.to(method.device)], enc_fn, method.decoder)
        method.decoder.train()
        make_dir(run_dir / "samples", "run folder")
        save_image(out.cpu(), run_dir / "samples" / f"step_{step:06d}.png")
        save_model_file(run_dir / "decoder.safetensors", method.decoder.state_dict(), arch="adain_decoder",
                        extra={**meta, "steps": str(step)})

    record = {**dataclasses.asdict(cfg), "precision": precision_name(dtype), "encoder_id": enc_id,
              "n_content": len(content), "n_style": len(styles)}
    loop = LoopConfig(run_dir=str(run), steps=cfg.steps, seed=cfg.seed, checkpoint_every=cfg.checkpoint_every,
                      sample_every=cfg.checkpoint_every, log_every=cfg.log_every)
    def finish(history: List[Dict[str, float]], interrupted: bool) -> None:  # run by train_loop, signals held
        if interrupted:  # the decoder of the checkpoint just written, not that of the last periodic export
            sample(steps_done(history), run)
        elif not (run / "decoder.safetensors").exists() or cfg.steps % cfg.checkpoint_every:
            sample(cfg.steps, run)

    return train_loop(method, get_batch, loop, config_record=record, sample=sample, progress=progress,
                      task="adain train", finish=finish)
