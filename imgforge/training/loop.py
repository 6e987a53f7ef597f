"""One plain training loop shared by every method (pix2pix, CycleGAN, fast style, AdaIN, StyleGAN2).

A method contributes a :class:`TrainMethod` (built after ``imgforge.runtime.seed_everything(seed)`` so that its
initial weights are repeatable): its networks and optimisers (``state_dict``/``load_state_dict``) and a
``step(batch, step) -> {loss name: value}``. The loop owns what every run needs:

- seeding and a deterministic data order (:class:`DeterministicBatches`: the permutation of epoch ``e`` is drawn
  from ``seed + e``), so that a resumed run sees exactly the batches it would have seen;
- periodic checkpoints, written atomically, with the method state, every RNG state and the loss history (also
  written as ``losses.jsonl``), so that
  ``resume`` continues with the same results as an uninterrupted run (also after ``kill -9``: from the last one);
- Ctrl-C / SIGTERM: the current step finishes, a checkpoint is written, and :class:`Interrupted` is raised;
- the method's final files (the ``finish`` callback: exported weights, run page), on the normal and the interrupted
  path alike, with further signals held until they are written;
- progress events with the losses; sample images every ``sample_every`` steps;
- DDP under ``torchrun``: :func:`ddp_context` sets up the process group; the data order gives each rank its slice
  of the global batch.
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Protocol, Tuple, Union

import numpy as np
import torch

from ..errors import OutputError, TrainingError
from ..fsutil import atomic_path, atomic_write_text
from ..validate import make_dir
from ..progress import ProgressEvent, ProgressFn, emit, note

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_VERSION = 1


class TrainMethod(Protocol):
    """What a method gives the loop."""

    def state_dict(self) -> Dict[str, Any]:
        """Networks, optimisers, schedulers, pools: everything needed to continue exactly."""

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""

    def step(self, batch: Any, step: int) -> Dict[str, float]:
        """One optimisation step on ``batch``; returns the losses as floats."""


@dataclass(frozen=True)
class LoopConfig:
    """Settings of :func:`train_loop`.

    Attributes:
        run_dir: folder of the run (checkpoint, samples, losses.jsonl, config.json).
        steps: total optimisation steps.
        seed: seed of the data order and of the RNGs.
        checkpoint_every: steps between checkpoints (and one at the end).
        sample_every: steps between sample images (0: never).
        log_every: steps between progress events.
        resume: continue from ``run_dir/checkpoint.pt`` when it exists.
    """

    run_dir: str
    steps: int
    seed: int = 0
    checkpoint_every: int = 500
    sample_every: int = 0
    log_every: int = 10
    resume: bool = True


class Interrupted(TrainingError):
    """Training stopped by Ctrl-C or SIGTERM after writing a checkpoint (what the user asked for: the CLI says
    "interrupted", not "error")."""

    exit_code = 130
    label = "interrupted"


# ---- RNG state -----------------------------------------------------------------------------------------------------


def rng_state() -> Dict[str, Any]:
    """Every RNG state as tensors/tuples (loadable with ``torch.load(weights_only=True)``)."""
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    state: Dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))
    np_keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", np_keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---- data order ----------------------------------------------------------------------------------------------------


@dataclass
class DeterministicBatches:
    """Index batches over a dataset of ``n`` items, reproducible from any step.

    The permutation of epoch ``e`` comes from ``torch.Generator().manual_seed(seed + e)`` (or the identity when
    ``shuffle`` is False); batch ``k`` of the run is the ``k``-th slice of ``batch_size`` indices, crossing epoch
    boundaries. Under DDP each rank takes its ``batch_size / world_size`` part of each global batch.
    """

    n: int
    batch_size: int
    seed: int = 0
    shuffle: bool = True
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise TrainingError("the dataset is empty")
        if self.batch_size % self.world_size:
            raise TrainingError(f"batch size {self.batch_size} is not divisible by {self.world_size} processes")

    def _perm(self, epoch: int) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.n)
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch))

    def global_batch(self, step: int) -> List[int]:
        """Indices of global batch number ``step`` (0-based)."""
        start = step * self.batch_size
        out: List[int] = []
        while len(out) < self.batch_size:
            epoch, pos = divmod(start + len(out), self.n)
            perm = self._perm(epoch)
            take = min(self.batch_size - len(out), self.n - pos)
            out.extend(perm[pos:pos + take].tolist())
        return out

    def local_batch(self, step: int) -> List[int]:
        """This rank's part of global batch ``step``."""
        per = self.batch_size // self.world_size
        return self.global_batch(step)[self.rank * per:(self.rank + 1) * per]

    def epoch_of(self, step: int) -> int:
        return (step * self.batch_size) // self.n


# ---- DDP -----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DistInfo:
    """Rank and world size of this process (world_size 1: no communication) and the collectives the training
    methods need (the one DDP helper of the package)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized()

    def average_grads(self, params: Iterable[torch.nn.Parameter]) -> None:
        """All-reduce (mean) the gradients of ``params`` with one flat buffer (missing gradients count as zero)."""
        if not self.active:
            return
        grads = []
        for p in params:
            if not p.requires_grad:
                continue
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
        if not grads:
            return
        flat = torch.cat([g.reshape(-1).float() for g in grads])
        torch.distributed.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for g in grads:
            n = g.numel()
            g.copy_(flat[offset:offset + n].view_as(g))
            offset += n

    def average_buffers(self, nets: Iterable[torch.nn.Module]) -> None:
        """Average floating-point buffers (BatchNorm running statistics) across ranks."""
        if not self.active:
            return
        for net in nets:
            for b in net.buffers():
                if b.is_floating_point():
                    torch.distributed.all_reduce(b)
                    b /= self.world_size

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of ``x`` over ranks (``x`` itself for one process)."""
        if not self.active:
            return x
        y = x.detach().clone()
        torch.distributed.all_reduce(y)
        return y / self.world_size

    def mean_scalars(self, values: Dict[str, torch.Tensor]) -> Dict[str, float]:
        """Loss tensors -> floats, averaged over ranks (so every rank reports the global batch's losses)."""
        keys = list(values)
        t = torch.stack([values[k].detach().float().reshape(()) for k in keys])
        if self.active:
            torch.distributed.all_reduce(t)
            t /= self.world_size
        return {k: float(v) for k, v in zip(keys, t.tolist())}

    def gather_batch(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the ranks' batches in rank order (the global batch); identity for one process."""
        if not self.active:
            return x
        parts = [torch.empty_like(x) for _ in range(self.world_size)]
        torch.distributed.all_gather(parts, x.contiguous())
        return torch.cat(parts, 0)

    def local_slice(self, x: torch.Tensor) -> torch.Tensor:
        if not self.active:
            return x
        per = x.shape[0] // self.world_size
        return x[self.rank * per:(self.rank + 1) * per]


def step_seed(seed: int, step: int, rank: int = 0, stream: Optional[int] = None) -> int:
    """The seed of the randomness of step ``step`` (0-based) on process ``rank``: a hash of the numbers (a pure
    function of them, so a resumed run draws what the uninterrupted one drew). ``stream`` separates independent
    streams; translation runs use stream 7. The 63-bit reductions (modulo without a stream, a shift with one) are
    those the runs have always used, so existing runs resume identically."""
    entropy = [int(seed) % (1 << 63), int(step), int(rank)] + ([int(stream)] if stream is not None else [])
    v = int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])
    return v % (1 << 63) if stream is None else v >> 1


def dist_info() -> DistInfo:
    """Rank and world size from the ``torchrun`` environment (1 process when absent)."""
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                    int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed(device: torch.device) -> DistInfo:
    """Initialise the process group under torchrun (gloo on CPU, nccl on CUDA); no-op for one process."""
    info = dist_info()
    if info.world_size > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend)
    return info


def distributed_device(device: Union[str, torch.device]) -> Tuple[DistInfo, torch.device]:
    """:func:`init_distributed`, and the device this process trains on: under torchrun with CUDA its own GPU
    (``cuda:LOCAL_RANK``, made current), else ``device``."""
    device = torch.device(device)
    info = init_distributed(device)
    if info.world_size > 1 and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    return info, device


def shutdown_distributed() -> None:
    """Leave the process group cleanly: a barrier, then ``destroy_process_group``; no-op for one process.

    Without the barrier a rank that finished early (rank > 0 writes nothing) tore its gloo group down while rank 0
    was still in it, and gloo sometimes aborted that process at exit ("terminate called without an active
    exception": 1 of 28 two-process CPU runs before, 0 of 39 after). Errors of an already broken group are ignored: this
    runs in ``finally`` blocks, where the original exception matters more.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    try:
        torch.distributed.barrier()
    except Exception:  # noqa: BLE001 - a peer died; destroy what is left
        pass
    torch.distributed.destroy_process_group()


# ---- checkpoints ---------------------------------------------------------------------------------------------------


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, batch_size: int, images_seen: int, ema_kimg: float,
               rampup: Optional[float] = 0.05, only: Optional[Callable[[str], bool]] = None) -> float:
    """Karras et al.'s generator moving average, in place: ``ema = lerp(model, ema, beta)`` with
    ``beta = 0.5 ** (batch_size / ema_nimg)``, ``ema_nimg = min(ema_kimg * 1000, images_seen * rampup)`` (a
    half-life in images); buffers (batch-norm statistics, noise maps) are copied. ``only(name)``: which parameters
    are averaged (None: all; the others keep their average). Returns ``beta``."""
    ema_nimg = ema_kimg * 1000
    if rampup is not None:
        ema_nimg = min(ema_nimg, images_seen * rampup)
    beta = 0.5 ** (batch_size / max(ema_nimg, 1e-8))
    with torch.no_grad():
        for (name, pe), p in zip(ema.named_parameters(), model.parameters()):
            if only is None or only(name):
                pe.copy_(p.detach().lerp(pe, beta))
        for be, b in zip(ema.buffers(), model.buffers()):
            be.copy_(b)
    return beta


def load_states(state: Dict[str, Any], objects: Dict[str, Any]) -> None:
    """``obj.load_state_dict(state[name])`` for every ``name: obj`` (networks, optimisers); a checkpoint that does not
    fit the current settings is one :class:`TrainingError` line, not a traceback.

    An optimiser takes its per-parameter state (Adam's moments, step counts) from the checkpoint but keeps the
    hyperparameters it was built with (lr, betas, eps, weight decay, ...): a run resumed with another ``--lr`` trains
    at that rate from the resumed step, as the resume note says, instead of at the checkpoint's. With unchanged
    settings the two are the same."""
    try:
        for name, obj in objects.items():
            if isinstance(obj, torch.optim.Optimizer):
                built = [{k: v for k, v in group.items() if k != "params"} for group in obj.param_groups]
                obj.load_state_dict(state[name])
                for group, hyper in zip(obj.param_groups, built):
                    group.update(hyper)
            else:
                obj.load_state_dict(state[name])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise TrainingError(f"the checkpoint does not fit these settings ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0]}); use the settings it was started with, or a new "
                            "--run-dir") from None


#: run settings that may change between a run and its resume without changing what is trained: the length (steps;
#: fast style's epochs), the bookkeeping (intervals, sample grids), where the run lives, how many processes share the
#: batch, the weights a fresh run started from (``init``: read only at step 0)
RESUME_FREE_KEYS = frozenset({"steps", "steps_total", "epochs", "checkpoint_every", "sample_every", "log_every",
                              "sample", "n_samples", "resume", "run_dir", "world_size", "init"})


def _flatten(d: Any, prefix: str = "") -> Dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: Dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def resumes(cfg: LoopConfig) -> bool:
    """Whether :func:`train_loop` with ``cfg`` continues from a checkpoint (``cfg.resume`` and one in the run folder)
    rather than starting fresh."""
    return bool(cfg.resume) and (Path(cfg.run_dir) / CHECKPOINT_NAME).exists()


def changed_settings(saved: Dict[str, Any], current: Dict[str, Any]) -> List[str]:
    """``"key: old -> new"`` for every setting (dotted path into the run's config record) that differs between a
    checkpoint's record and the current one, except :data:`RESUME_FREE_KEYS`; a key only on one side counts as
    changed (``-`` for the missing value; ``None`` reads "default") unless it is None there (a setting added after
    the checkpoint was written, left at its default: the behaviour the older run had)."""
    a = _flatten(json.loads(json.dumps(saved, default=str)))
    b = _flatten(json.loads(json.dumps(current, default=str)))
    out = []
    for key in sorted(set(a) | set(b)):
        if key.rsplit(".", 1)[-1] in RESUME_FREE_KEYS:
            continue
        if (key not in a and b[key] is None) or (key not in b and a[key] is None):
            continue
        if a.get(key, "-") != b.get(key, "-"):
            old, new = ("default" if v is None else v for v in (a.get(key, "-"), b.get(key, "-")))
            out.append(f"{key}: {old} -> {new}")
    return out


def save_checkpoint(path: Path, method: TrainMethod, step: int, history: List[Dict[str, float]], config: Dict[str, Any]) -> None:
    """Write the checkpoint atomically (tensors + plain containers only, readable with weights_only=True)."""
    payload = {
        "version": CHECKPOINT_VERSION,
        "step": step,
        "method": method.state_dict(),
        "rng": rng_state(),
        "history": history,
        "config": json.dumps(config, sort_keys=True, default=str),
    }
    try:
        with atomic_path(path) as tmp:
            torch.save(payload, str(tmp))
    except OutputError as exc:
        raise OutputError(f"{exc}; the previous checkpoint is kept") from None
    except RuntimeError as exc:  # torch.save's writer reports a full disk or a failed write as RuntimeError
        raise OutputError(f"{path}: checkpoint not written ({exc}); the previous checkpoint is kept") from None


def load_checkpoint(path: Path) -> Dict[str, Any]:
    """Read a checkpoint safely; :class:`TrainingError` with the path when it cannot be read."""
    try:
        payload = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise TrainingError(f"{path}: cannot read the checkpoint ({type(exc).__name__}: {exc}); "
                            "delete it to start over") from exc
    if not isinstance(payload, dict) or payload.get("version") != CHECKPOINT_VERSION:
        raise TrainingError(f"{path}: not an imgforge training checkpoint (version {CHECKPOINT_VERSION})")
    return payload


def steps_done(history: List[Dict[str, float]]) -> int:
    """The step a loss history reaches (its rows carry the loop's step count; 0 for none): what ``finish`` callbacks
    export at."""
    return int(history[-1]["step"]) if history else 0


class _StopFlag:
    """Turns SIGINT/SIGTERM into a flag checked between steps (restores the old handlers on exit); a second SIGINT
    raises KeyboardInterrupt at once, further SIGTERMs are ignored."""

    def __init__(self) -> None:
        self.signal: Optional[int] = None
        self._old: Dict[int, Any] = {}

    def __enter__(self) -> "_StopFlag":
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not in the main thread
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        # A second Ctrl-C means "stop now". Repeated SIGTERMs are one request: GNU ``timeout`` (without
        # --foreground), job schedulers and process managers signal the process and then its group, and the
        # graceful checkpoint must not be lost to the echo.
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.signal is None:
            self.signal = signum

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class signals_deferred(_StopFlag):
    """``with signals_deferred():`` short work that must finish (a run's final files): SIGINT/SIGTERM arriving
    meanwhile, once or several times (GNU ``timeout`` signals the process and then its group), are held until the
    block ends instead of killing the process half-way through a write; ``.signal`` tells whether one came."""

    def _handle(self, signum: int, frame: Any) -> None:
        self.signal = signum


def train_loop(
    method: TrainMethod,
    get_batch: Callable[[int], Any],
    cfg: LoopConfig,
    *,
    config_record: Optional[Dict[str, Any]] = None,
    sample: Optional[Callable[[int, Path], None]] = None,
    progress: Optional[ProgressFn] = None,
    is_main: bool = True,
    task: str = "train",
    finish: Optional[Callable[[List[Dict[str, float]], bool], None]] = None,
) -> List[Dict[str, float]]:
    """Run ``cfg.steps`` steps of ``method`` (continuing from the checkpoint when ``cfg.resume``).

    Args:
        method: the method's state and step.
        get_batch: ``get_batch(step) -> batch`` — must be a pure function of the step (e.g. via
            :class:`DeterministicBatches` and per-sample seeds), so that resume sees the same data.
        cfg: loop settings.
        config_record: the run's full configuration, saved as ``config.json`` and in the checkpoint.
        sample: ``sample(step, run_dir)`` writes sample images (main process only).
        progress: progress callback (losses as metrics).
        is_main: whether this process writes files (rank 0 under DDP).
        finish: ``finish(history, interrupted)`` writes the run's final files (exported weights, last samples, run
            page; main process only). It runs once the steps are done (also when there was nothing to do) and after
            the checkpoint of a Ctrl-C/SIGTERM (``interrupted`` True, before :class:`Interrupted` is raised), under
            :class:`signals_deferred`: a signal arriving meanwhile does not kill the process half-way.
    Returns:
        The loss history: one dict per step with ``step`` and each loss.
    Raises:
        Interrupted: after Ctrl-C/SIGTERM (a checkpoint, and ``finish``'s files, were written first).
    """

    def run_finish(interrupted: bool) -> None:
        if finish is not None and is_main:
            with signals_deferred():  # a signal now would lose the exported weights: the steps are done
                finish(history, interrupted)

    run_dir = Path(cfg.run_dir)
    ckpt = run_dir / CHECKPOINT_NAME
    history: List[Dict[str, float]] = []
    start = 0
    record = dict(config_record or {})
    if is_main:
        make_dir(run_dir, "run folder")
    if resumes(cfg):
        payload = load_checkpoint(ckpt)
        method.load_state_dict(payload["method"])
        set_rng_state(payload["rng"])
        start = int(payload["step"])
        history = list(payload["history"])
        note(progress, task, f"resuming from {ckpt} at step {start}")
        try:
            saved = json.loads(payload.get("config") or "{}")
        except (TypeError, ValueError):
            saved = {}
        diff = changed_settings(saved, record) if saved else []
        if diff:  # shapes that do not fit were refused above; these change the results, not the tensors
            shown = "; ".join(diff[:6]) + (f"; and {len(diff) - 6} more" if len(diff) > 6 else "")
            note(progress, task, f"resuming with settings that differ from the checkpoint's ({shown}): the run "
                                 "will not equal an uninterrupted one (to start over, use a new run folder)")
    else:
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
    if is_main:
        atomic_write_text(run_dir / "config.json", json.dumps(record, indent=2, sort_keys=True, default=str))
    if start >= cfg.steps:
        note(progress, task, f"already trained for {start} steps (target {cfg.steps}); nothing to do")
        run_finish(False)
        return history
    t0 = time.perf_counter()
    step = start
    interrupted = False
    with _StopFlag() as stop:
        while step < cfg.steps and not interrupted:
            batch = get_batch(step)
            losses = method.step(batch, step)
            step += 1
            row = {"step": float(step), **{k: float(v) for k, v in losses.items()}}
            history.append(row)
            if step % cfg.log_every == 0 or step == cfg.steps:
                rate = (step - start) / max(time.perf_counter() - t0, 1e-9)
                emit(progress, ProgressEvent(task, step, cfg.steps, metrics={**losses, "it/s": rate}))
            if sample is not None and is_main and cfg.sample_every and step % cfg.sample_every == 0:
                sample(step, run_dir)
            interrupted = stop.signal is not None
            if is_main and (step % cfg.checkpoint_every == 0 or step == cfg.steps or interrupted):
                save_checkpoint(ckpt, method, step, history, record)
                atomic_write_text(run_dir / "losses.jsonl", "".join(json.dumps(r) + "\n" for r in history))
        run_finish(interrupted)  # still under the stop flag: no gap before the deferral
    if interrupted:
        raise Interrupted(f"stopped at step {step}; checkpoint written to {ckpt}; "
                          "run the same command again to resume")
    return history
