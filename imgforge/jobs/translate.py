"""Library side of ``imgforge pix2pix|cyclegan apply`` and ``... test``: load generators, translate batches of files,
write the reference-style results page, and measure paired quality (L1, SSIM).

Weights (``--weights``) may be:

- a name from ``imgforge weights list`` (``pix2pix-facades-label2photo``, ``cyclegan-horse2zebra``) or a file
  (imgforge ``.safetensors``, or a reference ``latest_net_G.pth`` whose architecture is detected from its keys);
- a training run folder of ours (``G.safetensors``; CycleGAN: ``G_A.safetensors`` = A->B, ``G_B.safetensors`` = B->A);
- a reference checkpoint folder (``latest_net_G.pth``, or ``latest_net_G_A.pth`` / ``latest_net_G_B.pth``).

For CycleGAN ``--direction BtoA`` picks G_B of a run/checkpoint folder, or the published reverse model of a name
(``cyclegan-horse2zebra`` -> ``cyclegan-zebra2horse``).

Modes: ``eval_mode=True`` is the reference's ``test.py --eval`` (running BatchNorm statistics, no dropout,
deterministic); ``False`` is its default (per-image batch statistics, dropout active). Random draws are seeded per
image from ``(seed, file name)``, so results do not depend on batching, sharding or skipped files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn

from ..batch import BatchResult, ItemResult, SaveOptions
from ..errors import ImgforgeError, InputError, UsageError, WeightsError
from ..io import STDIN, InputItem, OutputNamer, check_output_target, load_image, save_image
from ..progress import ProgressEvent, ProgressFn, emit, note
from ..runtime import Runtime
from ..methods.translate import inference_copy, run_generator

#: Smallest tile side: the ResNet generators downsample by 4 and reflection-pad what is left.
MIN_TILE = 16

#: Images with more pixels than this are translated in tiles (``tile=None``); 2048 x 2048.
AUTO_TILE_PIXELS = 2048 * 2048
AUTO_TILE = 1024
_REVERSE = {
    "apple2orange": "orange2apple", "summer2winter-yosemite": "winter2summer-yosemite", "horse2zebra": "zebra2horse",
    "sat2map": "map2sat", "cityscapes-photo2label": "cityscapes-label2photo", "facades-photo2label": "facades-label2photo",
}
_REVERSE.update({v: k for k, v in list(_REVERSE.items())})


@dataclass(frozen=True)
class TranslateJob:
    """Options of ``imgforge pix2pix|cyclegan apply``.

    Attributes:
        weights: name, file or folder (see the module docstring).
        method: ``"pix2pix"`` or ``"cyclegan"`` (only changes how folders and directions are read).
        direction: ``AtoB`` / ``BtoA`` (None: the model's own, else AtoB).
        eval_mode: running statistics, no dropout (``--eval``).
        seed: seeds dropout per image (None: random).
        tile: tile side for large images (None: automatic above :data:`AUTO_TILE_PIXELS`; 0: never).
        tile_overlap: overlap of neighbouring tiles in pixels.
        batch_size: images per forward pass (same-sized images only; eval mode).
        workers: DataLoader worker processes for decoding.
        half: ``"A"`` / ``"B"``: the inputs are A|B pairs side by side; use that half (None: whole image).
    """

    weights: str
    method: str = "pix2pix"
    direction: Optional[str] = None
    eval_mode: bool = False
    seed: Optional[int] = None
    tile: Optional[int] = None
    tile_overlap: int = 32
    batch_size: int = 1
    workers: int = 0
    half: Optional[str] = None

    def validate(self) -> None:
        if self.method not in ("pix2pix", "cyclegan"):
            raise UsageError(f"method must be pix2pix or cyclegan, got {self.method!r}")
        if self.direction not in (None, "AtoB", "BtoA"):
            raise UsageError(f"--direction {self.direction!r}: expected AtoB or BtoA")
        if self.batch_size < 1 or self.workers < 0:
            raise UsageError("--batch-size must be >= 1 and --workers >= 0")
        if self.tile is not None and (self.tile < 0 or 0 < self.tile < MIN_TILE):
            raise UsageError(f"--tile {self.tile}: must be 0 (never tile) or at least {MIN_TILE} pixels")
        if self.half not in (None, "A", "B"):
            raise UsageError(f"half must be A or B, got {self.half!r}")


def translation_runtime(device: str = "auto", precision: str = "auto", task: str = "inference") -> Runtime:
    """The runtime for translation commands (precision ``auto``: bf16 on fast-bf16 CPUs and GPUs; training uses
    channels_last on GPUs only; see :data:`imgforge.runtime.POLICY`)."""
    return Runtime.create(device, precision, task=task)


# ---- loading ------------------------------------------------------------------------------------------------------


@dataclass
class LoadedGenerator:
    """A generator ready to run, with where it came from."""

    model: nn.Module
    source: str
    direction: Optional[str] = None
    meta: Dict[str, Any] = field(default_factory=dict)


def load_generator(weights: str, *, method: str, direction: Optional[str] = None,
                   progress: Optional[ProgressFn] = None) -> LoadedGenerator:
    """Resolve ``weights`` (see the module docstring) to the generator for ``direction``."""
    from ..hub.loader import Kind, load

    p = Path(weights).expanduser()
    want_b = direction == "BtoA"
    if p.is_dir():
        if method == "cyclegan" or (p / "G_A.safetensors").exists() or (p / "latest_net_G_A.pth").exists():
            names = ["G_B.safetensors", "latest_net_G_B.pth"] if want_b else ["G_A.safetensors", "latest_net_G_A.pth"]
            names += ["G.safetensors", "latest_net_G.pth"] if not want_b else []
        else:
            names = ["G.safetensors", "latest_net_G.pth"]
        for n in names:
            if (p / n).is_file():
                model, info = load(str(p / n), Kind.TRANSLATION, progress=progress)
                d = info.meta.get("direction") or ("BtoA" if n.startswith(("G_B", "latest_net_G_B")) else None)
                return LoadedGenerator(model, str(p / n), d, info.meta)
        raise WeightsError(f"{p}: no generator for {direction or 'AtoB'} here (looked for {', '.join(names)})")
    if want_b and method == "cyclegan":
        from ..hub.manifest import find_entry

        entry = find_entry(weights)
        if entry is None or not entry.name.startswith("cyclegan-"):
            raise UsageError(
                f"--direction BtoA needs a run folder (G_B.safetensors), a reference checkpoint folder "
                f"(latest_net_G_B.pth) or a published model name with a reverse model; {weights!r} is one generator: "
                "give the B->A generator itself with the default direction"
            )
        rev = _REVERSE.get(entry.name[len("cyclegan-"):])
        if rev is None:
            raise UsageError(f"{entry.name} has no published reverse model; --direction BtoA is not available for it")
        weights = f"cyclegan-{rev}"
    model, info = load(weights, Kind.TRANSLATION, progress=progress)
    return LoadedGenerator(model, str(info.path), info.meta.get("direction"), info.meta)


# ---- batch translation --------------------------------------------------------------------------------------------


def image_seed(seed: int, key: str) -> int:
    """Per-image seed from the job seed and the input's name (independent of order, batching and sharding)."""
    h = hashlib.sha256(f"{int(seed)}:{key}".encode()).digest()
    return int.from_bytes(h[:8], "little") >> 1


def _split_half(rgb: torch.Tensor, alpha: Optional[torch.Tensor], half: str, source: str):  # type: ignore[no-untyped-def]
    w = rgb.shape[-1]
    if w < 2:
        raise InputError(f"{source}: {w} pixels wide is too narrow to hold an A|B pair")
    w2 = int(w / 2)
    sl = slice(0, w2) if half == "A" else slice(w2, w)
    return rgb[..., sl], (alpha[..., sl] if alpha is not None else None)


class _Files(torch.utils.data.Dataset):
    """Decodes inputs (in DataLoader workers); a failure is returned as a message, not raised."""

    def __init__(self, paths: Sequence[str], max_pixels: Optional[int], half: Optional[str]) -> None:
        self.paths, self.max_pixels, self.half = list(paths), max_pixels, half

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Dict[str, Any]:
        try:
            img = load_image(self.paths[i], max_pixels=self.max_pixels)
            rgb, alpha = img.rgb, img.alpha
            if self.half:
                rgb, alpha = _split_half(rgb, alpha, self.half, img.source)
            return {"i": i, "rgb": rgb, "alpha": alpha, "depth": img.bit_depth, "error": None}
        except ImgforgeError as exc:
            return {"i": i, "rgb": None, "alpha": None, "depth": 8, "error": str(exc)}


def _to_channels(x: torch.Tensor, nc: int) -> torch.Tensor:
    """``(B, 3, H, W)`` [0, 1] -> ``nc`` channels (1: ITU-R 601 luma, as PIL's ``convert('L')``)."""
    if nc == 1 and x.shape[1] == 3:
        w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(1, keepdim=True)
    return x


class Translator:
    """Runs one generator on ``[0, 1]`` images with the job's mode, tiling and runtime (device, autocast,
    channels_last). ``__call__(images (B, 3, H, W), keys) -> (B, 3, H, W)`` in [0, 1]."""

    def __init__(self, G: nn.Module, job: TranslateJob, runtime: Runtime) -> None:
        self.G = runtime.prepare(G)
        #: a native low-precision copy instead of autocast when the runtime says so (bf16 on the CPU)
        self.native = runtime.native_dtype is not None
        if runtime.device.type == "cpu":  # small feature maps as matrix products (+ bf16 weights when native)
            self.G = inference_copy(self.G, runtime.native_dtype)
        self.job, self.rt = job, runtime
        self.in_nc = int(getattr(G, "input_nc", 3))

    def _tile(self, h: int, w: int) -> Optional[int]:
        t = self.job.tile
        if t == 0:
            return None
        if t is None:
            return AUTO_TILE if (self.job.eval_mode and h * w > AUTO_TILE_PIXELS) else None
        if not self.job.eval_mode:
            raise UsageError("--tile needs --eval (batch statistics and dropout would differ per tile)")
        return t

    def run_model_range(self, x: torch.Tensor, keys: Sequence[str]) -> torch.Tensor:
        """``x: (B, C, H, W)`` in [-1, 1] -> generator output in [-1, 1] (float32, on the CPU)."""
        tile = self._tile(x.shape[-2], x.shape[-1])
        x = self.rt.to_input(x)
        with (torch.autocast("cpu", enabled=False) if self.native else self.rt.autocast()):
            if self.job.eval_mode:
                overlap = self.job.tile_overlap if tile is None or self.job.tile_overlap < tile else tile // 4
                y = run_generator(x, self.G, eval_mode=True, tile=tile, tile_overlap=overlap, dtype=self.rt.native_dtype)
            else:
                outs = []
                for i, key in enumerate(keys):
                    gen = None
                    if self.job.seed is not None:
                        gen = torch.Generator().manual_seed(image_seed(self.job.seed, key))
                    outs.append(run_generator(x[i:i + 1], self.G, eval_mode=False, generator=gen,
                                             dtype=self.rt.native_dtype))
                y = torch.cat(outs, 0)
        return y.float().cpu()

    def __call__(self, images: torch.Tensor, keys: Sequence[str]) -> torch.Tensor:
        x = _to_channels(images.float(), self.in_nc) * 2.0 - 1.0
        y = ((self.run_model_range(x, keys) + 1.0) / 2.0).clamp(0, 1)
        return y.expand(-1, 3, -1, -1) if y.shape[1] == 1 else y


def run_translate(
    job: TranslateJob,
    items: Sequence[InputItem],
    namer: OutputNamer,
    *,
    runtime: Runtime,
    save: SaveOptions = SaveOptions(),
    progress: Optional[ProgressFn] = None,
) -> BatchResult:
    """Translate every input and write the outputs; existing outputs are skipped unless ``save.overwrite``.

    Inputs are decoded by a :class:`torch.utils.data.DataLoader` (``job.workers`` processes) and same-sized images
    are translated together (``job.batch_size``). Per-item failures are recorded and the batch goes on.
    """
    job.validate()
    check_output_target(namer, len(items))
    results: List[Optional[ItemResult]] = [None] * len(items)
    todo: List[Tuple[int, str]] = []
    for idx, item in enumerate(items):
        if item.error:
            results[idx] = ItemResult(item.path, None, "failed", item.error)
            continue
        out = namer.path_for(item, idx)
        if out != STDIN and Path(out).exists() and not save.overwrite:
            results[idx] = ItemResult(item.path, out, "skipped")
            continue
        todo.append((idx, out))
    total, done = len(items), len(items) - len(todo)
    for r in results:
        if r is not None and r.status == "failed":
            emit(progress, ProgressEvent("images", 0, total, unit="img", message=f"failed: {r.error}"))
    if todo:
        gen = load_generator(job.weights, method=job.method, direction=job.direction, progress=progress)
        note(progress, "weights", f"generator: {gen.source}")
        translator = Translator(gen.model, job, runtime)
        paths = [items[i].path for i, _ in todo]
        workers = 0 if STDIN in paths else job.workers
        loader = torch.utils.data.DataLoader(_Files(paths, save.max_pixels, job.half), batch_size=job.batch_size,
                                             shuffle=False, num_workers=workers, collate_fn=list)
        import time

        for chunk in loader:
            t0 = time.perf_counter()
            good = [c for c in chunk if c["error"] is None]
            for c in chunk:
                if c["error"] is not None:
                    idx, out = todo[c["i"]]
                    results[idx] = ItemResult(items[idx].path, out, "failed", c["error"])
            groups: Dict[Tuple[int, int], List[Dict[str, Any]]] = {}
            for c in good:
                groups.setdefault(tuple(c["rgb"].shape[-2:]), []).append(c)
            for group in groups.values():
                keys = [Path(items[todo[c["i"]][0]].path).name for c in group]
                try:
                    y = translator(torch.stack([c["rgb"] for c in group]), keys)
                except UsageError:
                    raise
                except ImgforgeError as exc:
                    for c in group:
                        idx, out = todo[c["i"]]
                        results[idx] = ItemResult(items[idx].path, out, "failed", str(exc))
                    continue
                for c, img in zip(group, y):
                    idx, out = todo[c["i"]]
                    try:
                        depth = 16 if (save.bit_depth == "16" or (save.bit_depth == "auto" and c["depth"] == 16)) else 8
                        save_image(img, out, alpha=c["alpha"] if save.keep_alpha else None, quality=save.quality,
                                   bit_depth=depth)
                        results[idx] = ItemResult(items[idx].path, out, "ok", None,
                                                  (time.perf_counter() - t0) / max(len(chunk), 1))
                    except UsageError:
                        raise
                    except ImgforgeError as exc:
                        results[idx] = ItemResult(items[idx].path, out, "failed", str(exc))
            for c in chunk:
                done += 1
                r = results[todo[c["i"]][0]]
                msg = f"failed: {r.error}" if r is not None and r.status == "failed" else (
                    f"wrote {r.output}" if r is not None and r.output != STDIN else None)
                emit(progress, ProgressEvent("images", done, total, unit="img", message=msg))
    return BatchResult([r for r in results if r is not None])


# ---- reference-style test pages -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestJob:
    """Options of ``imgforge cyclegan|pix2pix test``.

    Attributes:
        weights: run folder / checkpoint folder / name / file (CycleGAN: a folder gives both generators; a name or
            file is G_A, and ``weights_b`` G_B).
        weights_b: CycleGAN B->A generator when ``weights`` is a single one.
        phase: ``test`` (``testA``/``testB`` for CycleGAN, ``test/`` pairs for pix2pix).
        size: resize to ``size x size`` as the reference's test (256); 0 = full resolution (padded and cropped back).
        eval_mode: ``--eval``.
        direction: pix2pix only: which side is the input.
        seed: dropout seed per image (train mode).
        max_images: stop after this many rows (None: all, unlike the reference's default of 50).
    """

    weights: str
    weights_b: Optional[str] = None
    phase: str = "test"
    size: int = 256
    eval_mode: bool = False
    direction: Optional[str] = None
    seed: Optional[int] = None
    max_images: Optional[int] = None


def _save_visual(x: torch.Tensor, path: Path) -> str:
    from ..reports import to_display

    save_image(to_display(x), path)
    return f"images/{path.name}"


def run_cyclegan_test(job: TestJob, data: Path, out_dir: Path, *, runtime: Runtime,
                      progress: Optional[ProgressFn] = None) -> Path:
    """Translate every ``testA`` image with G_A (and back with G_B) and every ``testB`` image with G_B (and back),
    pairing A and B by index as the reference's test does, and write ``out_dir/index.html`` with
    ``images/<A name>_<visual>.png`` (visuals real_A, fake_B, rec_A, real_B, fake_A, rec_B). Returns the page."""
    from ..data.folders import UnalignedDataset
    from ..data.transforms import Preprocess
    from ..reports import write_results_page

    pre = Preprocess("resize_and_crop", job.size, job.size, False) if job.size else Preprocess("full", 1, 1, False)
    ds = UnalignedDataset(data, job.phase, pre, serial=True)
    base = TranslateJob(job.weights, "cyclegan", eval_mode=job.eval_mode, seed=job.seed)
    if job.weights_b is not None:
        ga = load_generator(job.weights, method="cyclegan", direction=None, progress=progress)
        gb = load_generator(job.weights_b, method="cyclegan", direction=None, progress=progress)
    else:
        ga = load_generator(job.weights, method="cyclegan", direction="AtoB", progress=progress)
        gb = load_generator(job.weights, method="cyclegan", direction="BtoA", progress=progress)
    ta, tb = Translator(ga.model, base, runtime), Translator(gb.model, base, runtime)
    n = len(ds) if job.max_images is None else min(len(ds), job.max_images)
    rows: List[Tuple[str, List[Tuple[str, str]]]] = []
    img_dir = Path(out_dir) / "images"
    used: Dict[str, int] = {}
    for i in range(n):
        item = ds.get(i, None)
        name = Path(str(item["A_path"])).stem
        used[name] = used.get(name, 0) + 1
        if used[name] > 1:
            name = f"{name}_{used[name]}"
        A, B = item["A"][None], item["B"][None]  # type: ignore[index]
        key_a, key_b = Path(str(item["A_path"])).name, Path(str(item["B_path"])).name
        fake_B = ta.run_model_range(A, [key_a])
        rec_A = tb.run_model_range(fake_B, [key_a])
        fake_A = tb.run_model_range(B, [key_b])
        rec_B = ta.run_model_range(fake_A, [key_b])
        visuals = {"real_A": A, "fake_B": fake_B, "rec_A": rec_A, "real_B": B, "fake_A": fake_A, "rec_B": rec_B}
        rows.append((name, [(k, _save_visual(v[0], img_dir / f"{name}_{k}.png")) for k, v in visuals.items()]))
        emit(progress, ProgressEvent("test", i + 1, n, unit="img"))
    notes = [f"CycleGAN test on {data} ({job.phase}A/{job.phase}B, {n} rows); G_A: {ga.source}; G_B: {gb.source}; "
             f"{'eval mode' if job.eval_mode else 'train mode (as test.py without --eval)'}; "
             f"{'resized to %d px' % job.size if job.size else 'full resolution'}"]
    return write_results_page(Path(out_dir), f"cyclegan test: {Path(data).name}", rows, notes=notes)


def run_pix2pix_test(job: TestJob, data: Path, out_dir: Path, *, runtime: Runtime,
                     progress: Optional[ProgressFn] = None) -> Path:
    """Translate every pair of ``<data>/<phase>`` and write the results page (real_A = input, fake_B, real_B =
    target). Returns the page."""
    from ..data.folders import AlignedDataset
    from ..data.transforms import Preprocess
    from ..reports import write_results_page

    gen = load_generator(job.weights, method="pix2pix", progress=progress)
    direction = job.direction or gen.direction or "AtoB"
    pre = Preprocess("resize_and_crop", job.size, job.size, False) if job.size else Preprocess("full", 1, 1, False)
    in_nc, out_nc = int(getattr(gen.model, "input_nc", 3)), int(getattr(gen.model, "output_nc", 3))
    ds = AlignedDataset(data, job.phase, direction, pre, in_nc, out_nc, phase_fallback=False)
    tr = Translator(gen.model, TranslateJob(job.weights, "pix2pix", eval_mode=job.eval_mode, seed=job.seed), runtime)
    n = len(ds) if job.max_images is None else min(len(ds), job.max_images)
    rows = []
    img_dir = Path(out_dir) / "images"
    for i in range(n):
        item = ds.get(i, None)
        name = Path(str(item["path"])).stem
        x = item["input"][None]  # type: ignore[index]
        y = tr.run_model_range(x, [Path(str(item["path"])).name])
        visuals = {"real_A": x[0], "fake_B": y[0], "real_B": item["target"]}
        rows.append((name, [(k, _save_visual(v, img_dir / f"{name}_{k}.png")) for k, v in visuals.items()]))  # type: ignore[arg-type]
        emit(progress, ProgressEvent("test", i + 1, n, unit="img"))
    notes = [f"pix2pix test on {data}/{job.phase} ({n} pairs, {direction}); G: {gen.source}; "
             f"{'eval mode' if job.eval_mode else 'train mode (as test.py without --eval)'}"]
    return write_results_page(Path(out_dir), f"pix2pix test: {Path(data).name}", rows, notes=notes)


# ---- paired quality -----------------------------------------------------------------------------------------------


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of ``(B, C, H, W)`` images in [0, 1], ``(B,)`` float32 on ``x``'s device: the project's one SSIM,
    :func:`imgforge.metrics.ssim` (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03)."""
    from ..metrics import ssim as _ssim

    return _ssim(x, y).to(x.device, torch.float32)


def paired_scores(pred: torch.Tensor, target: torch.Tensor) -> Dict[str, float]:
    """``{"l1", "ssim"}`` means over a batch of ``[0, 1]`` images ``(B, C, H, W)`` (L1 in [0, 1] units)."""
    return {"l1": float((pred - target).abs().mean()), "ssim": float(ssim(pred, target).mean())}
