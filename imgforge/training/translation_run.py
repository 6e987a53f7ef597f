"""Running a pix2pix or CycleGAN training job: dataset -> method -> :func:`imgforge.training.loop.train_loop`, plus
sample grids, exported generators and the run's HTML page.

A run folder holds:

- ``checkpoint.pt`` (everything needed to resume exactly), ``losses.jsonl``, ``config.json`` (written by the loop);
- ``G.safetensors`` (pix2pix) or ``G_A.safetensors`` + ``G_B.safetensors`` (CycleGAN): imgforge model files that
  ``imgforge pix2pix apply --weights RUN`` / ``imgforge cyclegan apply --weights RUN`` load; written at every sample
  step and at the end;
- ``samples/step_<n>.png`` grids of fixed images (from ``val``/``test`` when the dataset has them) and ``index.html``.

The data of step ``s`` is a pure function of ``(seed, s)``: the order comes from
:class:`~imgforge.training.loop.DeterministicBatches` and each sample's augmentation from
:func:`imgforge.data.transforms.sample_rng` with its position in the global batch, so a resumed run (also after
``kill -9``) and a DDP run see exactly the data of an uninterrupted single-process run.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from ..errors import InputError, TrainingError, UsageError
from ..hub.modelfile import save_model_file
from ..progress import ProgressFn, note
from ..runtime import Runtime, precision_name, seed_everything
from ..reports import save_grid, write_run_page
from .loop import (CHECKPOINT_NAME, DeterministicBatches, LoopConfig, init_distributed, shutdown_distributed, steps_done,
                   train_loop)
from .loop import DistInfo
from .translation_common import TranslationTrainConfig, check_resume_compatible

#: Config fields that must not change when a run is resumed (they change the networks or the method).
RESUME_KEYS = ("method", "netG", "netD", "n_layers_D", "ngf", "ndf", "norm", "dropout", "input_nc", "output_nc",
               "gan_mode", "pool_size", "batch_size", "seed", "direction")


@dataclass
class TrainResult:
    """What a training run produced."""

    run_dir: Path
    steps: int
    history: List[Dict[str, float]] = field(default_factory=list)
    exports: Dict[str, Path] = field(default_factory=dict)
    page: Optional[Path] = None


def training_precision(runtime: Runtime, precision: str) -> Optional[torch.dtype]:
    """Autocast dtype for training: ``auto`` means fp32 on CPUs (the reference trains in fp32, and bf16 is not
    faster on every CPU) and the runtime's choice on GPUs; ``bf16`` / ``fp16`` / ``fp32`` as asked."""
    p = (precision or "auto").lower()
    if p == "auto":
        return runtime.dtype if runtime.device.type != "cpu" else None
    return runtime.dtype


class _Recorder:
    """Wraps a method so the run page can show the losses of steps not yet in ``losses.jsonl``."""

    def __init__(self, method: Any) -> None:
        self.method = method
        self.rows: List[Dict[str, float]] = []

    def state_dict(self) -> Dict[str, Any]:
        return self.method.state_dict()

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        self.method.load_state_dict(state)

    def step(self, batch: Any, step: int) -> Dict[str, float]:
        losses = self.method.step(batch, step)
        self.rows.append({"step": float(step + 1), **losses})
        if len(self.rows) > 100_000:
            del self.rows[:50_000]
        return losses


def _read_history(run_dir: Path) -> List[Dict[str, float]]:
    path = run_dir / "losses.jsonl"
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return []


def export_generators(method: Any, run_dir: Path, step: int, record: Dict[str, Any]) -> Dict[str, Path]:
    """Save the method's generators as imgforge safetensors files in ``run_dir`` (``G.safetensors``, ...)."""
    out = {}
    for stem, (net, arch, kwargs, extra) in method.exports().items():
        meta = {"method": method.name, "step": str(step), "data": str(record.get("data", "")),
                "recipe": json.dumps(record, sort_keys=True, default=str)}
        meta.update({k: str(v) for k, v in extra.items()})
        out[stem] = save_model_file(run_dir / f"{stem}.safetensors", net.state_dict(), arch=arch, arch_kwargs=kwargs,
                                    extra=meta)
    return out


def run_training(
    method_factory: Callable[[DistInfo, int], Any],
    dataset: Any,
    make_item: Callable[[int, Any], Dict[str, Any]],
    keys: Sequence[str],
    sample_batch: Optional[Dict[str, Any]],
    cfg: TranslationTrainConfig,
    *,
    run_dir: Path,
    record: Dict[str, Any],
    resume: bool = True,
    progress: Optional[ProgressFn] = None,
    device: torch.device = torch.device("cpu"),
) -> TrainResult:
    """Train with the shared loop.

    Args:
        method_factory: ``(dist, n_data) -> method`` (called after seeding, so the init is repeatable).
        dataset: has ``len()``; ``make_item(index, rng)`` builds one sample from it.
        keys: tensor fields of an item, stacked into the batch.
        sample_batch: fixed batch for the sample grids (None: no grids).
        record: the configuration saved as ``config.json`` (method, data, options).
        resume: continue from ``run_dir/checkpoint.pt`` when present; False starts over (old checkpoint removed).
    """
    from ..data.folders import stack
    from ..data.transforms import sample_rng

    run_dir = Path(run_dir)
    info = init_distributed(device)
    dist_ = DistInfo(info.rank, info.world_size)
    is_main = info.is_main
    if cfg.batch_size % info.world_size:
        raise UsageError(f"--batch-size {cfg.batch_size} must be divisible by the {info.world_size} processes")
    if resume:
        check_resume_compatible(run_dir, record, RESUME_KEYS)
    elif is_main:
        for name in (CHECKPOINT_NAME, "losses.jsonl"):
            (run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(run_dir / "samples", ignore_errors=True)
    if info.world_size > 1:
        torch.distributed.barrier()
    n_data = len(dataset)
    total = cfg.total_steps(n_data)
    seed_everything(cfg.seed)
    method = method_factory(dist_, n_data)
    recorder = _Recorder(method)
    order = DeterministicBatches(n_data, cfg.batch_size, seed=cfg.seed, rank=info.rank, world_size=info.world_size)
    per = cfg.batch_size // info.world_size

    def get_batch(step: int) -> Dict[str, Any]:
        idx = order.local_batch(step)
        items = [make_item(i, sample_rng(cfg.seed, step, info.rank * per + j)) for j, i in enumerate(idx)]
        try:
            return stack(items, keys)  # type: ignore[return-value]
        except RuntimeError as exc:
            raise TrainingError(f"cannot batch images of different sizes ({exc}); use --batch-size 1 or a "
                                "preprocess mode with a fixed crop") from None

    sample_files: List[Tuple[int, str]] = []
    if (run_dir / "samples").is_dir():
        for p in sorted((run_dir / "samples").glob("step_*.png")):
            try:
                sample_files.append((int(p.stem.split("_")[1]), f"samples/{p.name}"))
            except (IndexError, ValueError):
                pass
    title = f"{method.name}: {record.get('data', '')}"

    def page(history: Sequence[Dict[str, float]], notes: Sequence[str] = ()) -> Path:
        return write_run_page(run_dir, title, record, history, sample_files, method.columns, notes)

    def live_history() -> List[Dict[str, float]]:
        hist = _read_history(run_dir)
        last = hist[-1]["step"] if hist else 0
        return hist + [r for r in recorder.rows if r["step"] > last]

    def sample(step: int, folder: Path) -> None:
        if sample_batch is not None:
            rel = f"samples/step_{step:07d}.png"
            save_grid(method.visuals(sample_batch), folder / rel)
            sample_files[:] = [s for s in sample_files if s[0] != step] + [(step, rel)]
        export_generators(method, folder, step, record)
        page(live_history())

    loop_cfg = LoopConfig(str(run_dir), total, seed=cfg.seed, checkpoint_every=cfg.checkpoint_every,
                          sample_every=cfg.sample_every, log_every=cfg.log_every, resume=resume)
    result = TrainResult(run_dir=run_dir, steps=total, history=[])

    def finish(history: List[Dict[str, float]], interrupted: bool) -> None:
        done = steps_done(history)
        if interrupted:
            export_generators(method, run_dir, done, record)
            page(history, ["interrupted; run the same command again to resume"])
            return
        if sample_batch is not None and cfg.sample_every and not any(s[0] == done for s in sample_files) and done:
            sample(done, run_dir)
        result.exports = export_generators(method, run_dir, done, record)
        result.page = page(history)

    try:
        result.history = train_loop(recorder, get_batch, loop_cfg, config_record=record, sample=sample,
                                    progress=progress if is_main else None, is_main=is_main, task=method.name,
                                    finish=finish)
    finally:
        if info.world_size > 1:
            shutdown_distributed()
    if is_main:
        note(progress, method.name, f"run folder: {run_dir} (page: {result.page})")
    return result


# ---- entry points -------------------------------------------------------------------------------------------------


def _record(method: str, data: str, cfg: TranslationTrainConfig, precision: Optional[torch.dtype], world: int) -> Dict[str, Any]:
    rec = {"method": method, "data": data, **cfg.to_record()}
    rec["precision"] = precision_name(precision)
    rec["world_size"] = world
    return rec


def _sample_batch(items: List[Dict[str, Any]], keys: Sequence[str]) -> Optional[Dict[str, Any]]:
    """Stack the sample images; when their sizes differ (preprocess modes without a fixed crop) keep the first."""
    from ..data.folders import stack

    if not items:
        return None
    try:
        return stack(items, keys)
    except RuntimeError:
        return stack(items[:1], keys)


def _world() -> int:
    from .loop import dist_info

    return dist_info().world_size


def _note_skipped(ds: Any, progress: Optional[ProgressFn]) -> None:
    """One note per unreadable or oversized training image left out, then the count (as apply batches do)."""
    skipped = getattr(ds, "skipped", [])
    for msg in skipped:
        note(progress, "train", f"skipped {msg}")
    if skipped:
        note(progress, "train", f"{len(skipped)} unreadable or oversized images skipped, {len(ds)} used")


def train_pix2pix(
    data: Path,
    run_dir: Path,
    cfg: Any,
    *,
    runtime: Runtime,
    precision: str = "auto",
    resume: bool = True,
    progress: Optional[ProgressFn] = None,
    data_label: Optional[str] = None,
) -> TrainResult:
    """Train pix2pix on an aligned dataset folder (see :class:`imgforge.data.folders.AlignedDataset`)."""
    from ..data.folders import AlignedDataset
    from ..data.transforms import Preprocess
    from .pix2pix import Pix2PixMethod

    cfg.validate()
    pre = Preprocess(cfg.preprocess, cfg.load_size, cfg.crop_size, cfg.flip)
    ds = AlignedDataset(data, "train", cfg.direction, pre, cfg.input_nc, cfg.output_nc)
    _note_skipped(ds, progress)
    sample_batch = None
    if cfg.sample_every:
        sample_ds = ds
        for phase in ("val", "test"):
            try:
                sample_ds = AlignedDataset(data, phase, cfg.direction, pre, cfg.input_nc, cfg.output_nc,
                                           phase_fallback=False)
                break
            except InputError:
                continue
        n = min(cfg.n_samples, len(sample_ds))
        sample_batch = _sample_batch([sample_ds.get(i, None, pre.for_test()) for i in range(n)], ("input", "target"))
    dtype = training_precision(runtime, precision)
    record = _record("pix2pix", data_label or str(data), cfg, dtype, _world())
    note(progress, "pix2pix", f"{len(ds)} training pairs ({ds.layout}) in {data}; {cfg.total_steps(len(ds))} steps")

    def factory(d: DistInfo, n: int) -> Pix2PixMethod:
        return Pix2PixMethod(cfg, device=runtime.device, autocast_dtype=dtype,
                             channels_last=runtime.channels_last, dist=d, n_data=n)

    return run_training(factory, ds, ds.get, ("input", "target"), sample_batch, cfg, run_dir=run_dir, record=record,
                        resume=resume, progress=progress, device=runtime.device)


def train_cyclegan(
    data: Path,
    run_dir: Path,
    cfg: Any,
    *,
    runtime: Runtime,
    precision: str = "auto",
    resume: bool = True,
    progress: Optional[ProgressFn] = None,
    data_label: Optional[str] = None,
) -> TrainResult:
    """Train CycleGAN on an unaligned dataset folder (``trainA/``, ``trainB/``)."""
    from ..data.folders import UnalignedDataset
    from ..data.transforms import Preprocess
    from .cyclegan import CycleGANMethod

    cfg.validate()
    pre = Preprocess(cfg.preprocess, cfg.load_size, cfg.crop_size, cfg.flip)
    ds = UnalignedDataset(data, "train", pre, cfg.input_nc, cfg.output_nc, serial=cfg.serial_batches)
    _note_skipped(ds, progress)
    sample_batch = None
    if cfg.sample_every:
        try:
            sds = UnalignedDataset(data, "test", pre, cfg.input_nc, cfg.output_nc, serial=True)
        except InputError:
            sds = UnalignedDataset(data, "train", pre, cfg.input_nc, cfg.output_nc, serial=True)
        n = min(cfg.n_samples, len(sds))
        sample_batch = _sample_batch([sds.get(i, None, pre=pre.for_test()) for i in range(n)], ("A", "B"))
    dtype = training_precision(runtime, precision)
    record = _record("cyclegan", data_label or str(data), cfg, dtype, _world())
    note(progress, "cyclegan", f"{len(ds.A_paths)} A and {len(ds.B_paths)} B images in {data}; "
                               f"{cfg.total_steps(len(ds))} steps")

    def make_item(index: int, rng: Any) -> Dict[str, Any]:
        return ds.get(index, rng)

    def factory(d: DistInfo, n: int) -> CycleGANMethod:
        return CycleGANMethod(cfg, device=runtime.device, autocast_dtype=dtype,
                              channels_last=runtime.channels_last, dist=d, n_data=n)

    return run_training(factory, ds, make_item, ("A", "B"), sample_batch, cfg, run_dir=run_dir, record=record,
                        resume=resume, progress=progress, device=runtime.device)
