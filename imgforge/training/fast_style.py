"""Training a fast-neural-style TransformerNet (Johnson et al. 2016; pytorch/examples ``neural_style.py train``).

Defaults are the reference's (see :class:`FastStyleTrainConfig`): VGG-16 loss network with style layers relu1_2,
relu2_2, relu3_3, relu4_3 and content layer relu2_2; 256 px training images (resize shorter side, centre crop);
batch 4; Adam 1e-3 over all TransformerNet parameters; content weight 1e5, style weight 1e10; Gram matrices
normalised by C*H*W; MSE losses (mean reduction); style Gram matrices computed once from the style image; seed 42;
no shuffling; 2 epochs. The network works in pixel units 0..255 as the reference's.

The loss network is the published VGG-16 (``vgg16``) when present locally, else the embedded random-feature VGG-19
(``imgforge-vgg19-embedded``, which has the same layer names); ``vgg`` takes any VGG-16/19 name or file. The loss
weights of the reference are calibrated for ImageNet VGG-16 activations; other networks need their own weights (the
recipe in ``weights/recipes/train_fast_style.py`` gives the embedded encoder's).

The run folder holds ``checkpoint.pt`` (exact resume, see :mod:`imgforge.training.loop`), ``losses.jsonl``,
``config.json``, ``model.safetensors`` (the network at the last checkpoint, also the one written on Ctrl-C / SIGTERM;
an imgforge model file usable with ``imgforge stylize --method fast --model``) and ``samples/step_<N>.png`` (a fixed image stylised at every checkpoint).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..data.style_images import StyleImageFolder
from ..fsutil import sha256_file
from ..errors import TrainingError, UsageError
from ..validate import make_dir
from ..io import load_image, save_image
from ..ops.stats import gram
from ..progress import ProgressFn, note
from ..runtime import Runtime, precision_name, seed_everything
from .loop import DeterministicBatches, LoopConfig, load_states, steps_done, train_loop

__all__ = ["FastStyleTrainConfig", "FastStyleMethod", "train_fast_style", "load_loss_network", "REFERENCE_LAYERS"]

#: The reference's loss layers: VGG-16 features[0:4], [4:9], [9:16], [16:23].
REFERENCE_LAYERS: Tuple[str, ...] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")


@dataclass(frozen=True)
class FastStyleTrainConfig:
    """Settings of :func:`train_fast_style` (defaults: the reference's).

    Attributes:
        style: style image path.
        content_dirs: folders of content (training) images.
        run_dir: output folder (resumed when it holds a checkpoint).
        vgg: loss network name or file (None: published VGG-16 if present locally, else the embedded encoder).
        image_size: training crop side (reference 256).
        resize: shorter side before cropping (None = image_size, as the reference).
        crop: ``"center"`` (reference) or ``"random"`` (with flips).
        style_size: long side of the style image (None = its own size, as the reference).
        batch_size, lr, epochs: reference 4, 1e-3, 2. ``steps`` overrides ``epochs`` when given.
        content_weight, style_weight: reference 1e5, 1e10.
        style_layers, content_layer: reference relu1_2..relu4_3 and relu2_2.
        shuffle: shuffle the data each epoch (reference: no).
        seed: reference 42.
        checkpoint_every: steps between checkpoints, model exports and sample images (reference 2000).
        log_every: steps between progress events (reference 500).
        sample: image to stylise at each checkpoint (default: the first content image, centre crop).
        warm_output: not in the reference: start the last convolution at a useful output range (bias = the
            content images' mean colour, weights scaled so that the initial output's std is 40 grey levels) instead
            of PyTorch's default init (output near 0, i.e. black, which Adam at lr 1e-3 takes thousands of steps to
            lift). Helps short training budgets.
        device: where to train.
    """

    style: str
    content_dirs: Tuple[str, ...]
    run_dir: str
    vgg: Optional[str] = None
    image_size: int = 256
    resize: Optional[int] = None
    crop: str = "center"
    style_size: Optional[int] = None
    batch_size: int = 4
    lr: float = 1e-3
    epochs: int = 2
    steps: Optional[int] = None
    content_weight: float = 1e5
    style_weight: float = 1e10
    style_layers: Tuple[str, ...] = REFERENCE_LAYERS
    content_layer: str = "relu2_2"
    shuffle: bool = False
    seed: int = 42
    checkpoint_every: int = 2000
    log_every: int = 500
    sample: Optional[str] = None
    warm_output: bool = False
    device: str = "cpu"

    def validate(self) -> None:
        if self.image_size < 16:
            raise UsageError(f"--image-size must be at least 16, got {self.image_size}")
        if self.batch_size < 1 or self.lr <= 0:
            raise UsageError("--batch-size must be >= 1 and --lr > 0")
        if self.steps is not None and self.steps < 1:
            raise UsageError(f"--steps must be >= 1, got {self.steps}")
        if self.epochs < 1:
            raise UsageError(f"--epochs must be >= 1, got {self.epochs}")
        if not self.content_dirs:
            raise UsageError("give --content-dir (a folder of training images)")


def load_loss_network(spec: Optional[str], progress: Optional[ProgressFn] = None,
                      prefer: str = "vgg16") -> Tuple[nn.Module, str, str]:
    """The frozen loss network: ``spec`` (name or file) or the published ``prefer`` when present locally, else the
    embedded encoder. Returns ``(encoder, description, identifier)`` where the identifier names it in metadata."""
    from ..hub.loader import Kind, load, published_if_present
    from ..hub.encoders import EMBEDDED_NAME, load_style_encoder

    if spec is None:
        if published_if_present(prefer) is None:
            enc, desc = load_style_encoder(None)
            return enc, desc, EMBEDDED_NAME
        spec = prefer
    model, info = load(spec, Kind.ENCODER, progress=progress, freeze=True)
    if info.path.stem == EMBEDDED_NAME:
        ident = EMBEDDED_NAME
    elif Path(spec).is_file():
        ident = str(Path(spec).resolve())
    else:
        ident = spec  # a weights name
    return model, f"{info.path.name} ({info.arch})", ident


class FastStyleMethod:
    """The TrainMethod: TransformerNet + Adam; loss as the reference."""

    def __init__(self, cfg: FastStyleTrainConfig, vgg: nn.Module, style: Tensor,
                 dtype: Optional[torch.dtype] = None, channels_last: bool = False) -> None:
        from ..models.fast_style import TransformerNet

        self.cfg = cfg
        self.device = torch.device(cfg.device)
        self.dtype = dtype  #: autocast dtype of the forward passes (the Runtime's), None = float32
        #: channels_last activations and weights (the Runtime's choice: on CUDA, not on the CPU)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = TransformerNet().to(self.device, memory_format=self.memory_format).train()
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.vgg = vgg.to(self.device, memory_format=self.memory_format).eval()
        for p in self.vgg.parameters():
            p.requires_grad_(False)
        for option, names in (("--style-layers", cfg.style_layers), ("--content-layer", (cfg.content_layer,))):
            missing = [n for n in names if n not in self.vgg.layer_names]
            if missing:
                raise UsageError(f"{option} {', '.join(missing)}: the loss network has no such layer; it has "
                                 f"{', '.join(self.vgg.layer_names)}")
        self.layers = tuple(dict.fromkeys((*cfg.style_layers, cfg.content_layer)))
        with torch.no_grad():
            feats = self._features(style.to(self.device).contiguous(memory_format=self.memory_format))
            self.style_grams = {k: gram(feats[k].float()) for k in cfg.style_layers}  # (1, C, C), broadcast

    @torch.no_grad()
    def warm_output(self, batch: Tensor) -> None:
        """See :attr:`FastStyleTrainConfig.warm_output`: ``batch`` (B, 3, S, S) in [0, 1] of content images."""
        last = self.net.deconv3.conv2d
        last.bias.zero_()
        y = self.net(batch.to(self.device).contiguous(memory_format=self.memory_format) * 255.0)
        last.weight.mul_(40.0 / float(y.std().clamp_min(1e-6)))
        last.bias.copy_(batch.mean(dim=(0, 2, 3)).to(self.device) * 255.0)

    def _features(self, x01: Tensor) -> Dict[str, Tensor]:
        if self.dtype is None:
            return self.vgg(x01, self.layers)
        with torch.autocast(device_type=self.device.type, dtype=self.dtype):
            return self.vgg(x01, self.layers)

    def state_dict(self) -> Dict[str, Any]:
        return {"net": self.net.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        load_states(state, {"opt": self.opt})

    def losses(self, batch: Tensor) -> Dict[str, Tensor]:
        """``batch``: (B, 3, S, S) in [0, 1]. Returns content, style and total loss (weighted, float32)."""
        cfg = self.cfg
        x = batch.to(self.device).contiguous(memory_format=self.memory_format) * 255.0
        if self.dtype is None:
            y = self.net(x)
        else:
            with torch.autocast(device_type=self.device.type, dtype=self.dtype):
                y = self.net(x)
        fy = self._features(y.float() / 255.0)
        with torch.no_grad():
            fx = self._features(x / 255.0)
        c_loss = cfg.content_weight * F.mse_loss(fy[cfg.content_layer].float(), fx[cfg.content_layer].float())
        s_loss = y.new_zeros((), dtype=torch.float32)
        for k in cfg.style_layers:
            gy = gram(fy[k].float())
            s_loss = s_loss + F.mse_loss(gy, self.style_grams[k].expand_as(gy))
        s_loss = cfg.style_weight * s_loss
        return {"content": c_loss, "style": s_loss, "total": c_loss + s_loss}

    def step(self, batch: Tensor, step: int) -> Dict[str, float]:
        self.opt.zero_grad(set_to_none=True)
        losses = self.losses(batch)
        loss = losses["total"]
        if not torch.isfinite(loss):
            raise TrainingError(f"the loss became {float(loss)} at step {step + 1}; lower --lr or the loss weights")
        loss.backward()
        self.opt.step()
        return {k: float(v.detach()) for k, v in losses.items()}


def export_model(method: FastStyleMethod, path: Path, extra: Dict[str, str]) -> Path:
    """Write the network as an imgforge model file (arch ``fast_style``, reference key names)."""
    from ..hub.modelfile import save_model_file

    return save_model_file(path, method.net.state_dict(), arch="fast_style", extra=extra)


def _load_style(cfg: FastStyleTrainConfig) -> Tensor:
    style = load_image(cfg.style).rgb[None]
    if cfg.style_size:
        from ..methods.gatys import resize_long_side

        style = resize_long_side(style, cfg.style_size)
    return style


def train_fast_style(cfg: FastStyleTrainConfig, *, runtime: Optional[Runtime] = None,
                     progress: Optional[ProgressFn] = None) -> List[Dict[str, float]]:
    """Train (or resume) a fast-style network; returns the loss history (one row per step). ``runtime``: the
    precision policy (its autocast dtype for the forward passes and its channels_last choice; None = float32,
    contiguous).

    Raises:
        Interrupted: on Ctrl-C / SIGTERM, after writing a checkpoint and ``model.safetensors`` at that step (run
            again to resume).
    """
    cfg.validate()
    data = StyleImageFolder(cfg.content_dirs, size=cfg.image_size, resize=cfg.resize, crop=cfg.crop,
                            flip=cfg.crop == "random", seed=cfg.seed)
    for msg in data.skipped:
        note(progress, "train", f"skipped {msg}")
    steps = cfg.steps or cfg.epochs * -(-len(data) // cfg.batch_size)
    vgg, vgg_desc, vgg_id = load_loss_network(cfg.vgg, progress)
    note(progress, "train", f"{len(data)} content images; loss network: {vgg_desc}; {steps} steps")
    style = _load_style(cfg)
    seed_everything(cfg.seed)  # the network's initial weights follow the seed
    dtype = runtime.dtype if runtime is not None else None
    method = FastStyleMethod(cfg, vgg, style, dtype, channels_last=runtime is not None and runtime.channels_last)
    order = DeterministicBatches(len(data), cfg.batch_size, seed=cfg.seed, shuffle=cfg.shuffle)
    if cfg.warm_output:  # before the loop: on resume the checkpoint's weights replace these
        method.warm_output(data.batch(order.global_batch(0), 0))
    run = Path(cfg.run_dir)
    sample_img = (load_image(cfg.sample).rgb[None] if cfg.sample else data.get(0)[None])
    meta = {
        "trained_with": "imgforge fast-style train",
        "style_image": Path(cfg.style).name,
        "style_sha256": sha256_file(cfg.style),
        "loss_network": vgg_id,
        "precision": precision_name(dtype),
        "config": json.dumps({k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("run_dir",)},
                             sort_keys=True, default=str),
    }

    def get_batch(step: int) -> Tensor:
        return data.batch(order.global_batch(step), step)

    def sample(step: int, run_dir: Path) -> None:
        method.net.eval()
        with torch.no_grad():
            out = method.net(sample_img.to(method.device) * 255.0)[:, :, :sample_img.shape[2], :sample_img.shape[3]]
        method.net.train()
        make_dir(run_dir / "samples", "run folder")
        save_image((out / 255.0).clamp(0, 1).cpu(), run_dir / "samples" / f"step_{step:06d}.png")
        export_model(method, run_dir / "model.safetensors", {**meta, "steps": str(step)})

    record = {**dataclasses.asdict(cfg), "precision": precision_name(dtype), "steps_total": steps,
              "loss_network": vgg_id, "n_images": len(data)}
    loop = LoopConfig(run_dir=str(run), steps=steps, seed=cfg.seed, checkpoint_every=cfg.checkpoint_every,
                      sample_every=cfg.checkpoint_every, log_every=cfg.log_every)

    def finish(history: List[Dict[str, float]], interrupted: bool) -> None:
        if interrupted:  # the network of the checkpoint just written (not that of the last periodic export)
            sample(steps_done(history), run)
        elif not (run / "model.safetensors").exists() or steps % cfg.checkpoint_every:
            sample(steps, run)

    return train_loop(method, get_batch, loop, config_record=record, sample=sample, progress=progress,
                      task="fast-style train", finish=finish)
