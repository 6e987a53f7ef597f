"""The ``metrics`` job: file I/O, weight resolution and feature caching around :mod:`imgforge.metrics`.

:func:`run_metrics` takes a frozen :class:`MetricsConfig` (what ``imgforge metrics ...`` parses) and returns a
:class:`MetricsReport`: one result dict per score with the keys ``metric``, ``value``, ``std`` (where defined),
``extractor``, ``weights``, ``weights_sha256``, ``resize``, ``precision``, ``counts`` and ``seed``, plus
metric-specific extras.

Inputs (``MetricsConfig.inputs``): image folders (non-recursive) or glob patterns, read with PIL
``.convert("RGB")`` as uint8 in sorted path order (torch-fidelity's reader); ``.npz`` statistics files in
pytorch-fid's format (``mu``, ``sigma``) for FID; or, for the "fake" side, a generator (``generator`` + ``n`` +
``first_seed``: seeds ``first_seed ... first_seed + n - 1`` through :func:`imgforge.models.protocols.z_from_seeds`,
``noise_mode="const"``, quantised as NVIDIA's metric code does: ``(img * 127.5 + 128).clamp(0, 255)`` to uint8).
Unreadable images are skipped, named in the progress notes and counted in ``counts``.

Feature cache: ``<cache>/metrics/<key>.npz`` with ``key`` = sha256 of the absolute paths, their mtime and size, the
extractor, its weights' sha256, the resize protocol and precision -- a real set is encoded once.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..errors import InputError, UsageError, WeightsError
from ..fsutil import atomic_path
from ..metrics import scores
from ..metrics.extractors import EXTRACTORS, Extractor, build_extractor
from ..metrics.resize import DEFAULT_RESIZE, check_protocol
from ..progress import ProgressEvent, ProgressFn, emit, note
from ..runtime import Runtime

METRICS = ("fid", "kid", "is", "pr", "ppl", "parzen", "psnr", "ssim", "lpips", "all")
PAIRED = ("psnr", "ssim", "lpips")
INCEPTION_ENTRY = "fid-inception"
INCEPTION_MISSING = (
    "the Inception weights are not available offline: run `imgforge weights fetch fid-inception` (the 91 MB "
    "pt_inception-2015-12-05-6726825d.pth of pytorch-fid) or pass --weights FILE; --extractor digits|embedded "
    "works without downloads"
)
DIGIT_THRESHOLD = 0.9


@dataclass(frozen=True)
class MetricsConfig:
    metric: str
    inputs: Tuple[str, ...] = ()
    extractor: str = "inception"
    weights: Optional[str] = None
    resize: str = DEFAULT_RESIZE
    batch_size: int = 50
    subsets: int = 100
    subset_size: int = 1000
    seed: int = 2020
    splits: int = 10
    k: int = 3
    fid_method: str = "auto"
    save_stats: Optional[str] = None
    cache: bool = True
    generator: Optional[str] = None
    n: int = 10000
    first_seed: int = 0
    trunc: float = 1.0
    space: str = "w"
    sampling: str = "end"
    crop: Optional[int] = None
    grey: bool = False
    lpips_weights: Optional[str] = None
    device: str = "auto"
    precision: str = "auto"


@dataclass
class FeatureSet:
    """Features of one input (or its statistics only, from an ``.npz``)."""

    source: str
    features: Optional[np.ndarray] = None
    logits: Optional[np.ndarray] = None
    stats: Optional[Tuple[np.ndarray, np.ndarray]] = None
    bad: List[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n(self) -> int:
        return 0 if self.features is None else int(len(self.features))


@dataclass
class MetricsReport:
    results: List[Dict[str, Any]]
    bad: int = 0
    notes: List[str] = field(default_factory=list)


# ---- inputs ---------------------------------------------------------------------------------------------------------


def list_images(spec: str) -> List[str]:
    """Sorted image paths of a folder / glob / file; InputError when it names nothing."""
    from ..io import expand_inputs

    items = expand_inputs([spec])
    errors = [it.error for it in items if it.error]
    if errors:
        raise InputError(errors[0])
    return [it.path for it in items]


def read_uint8(path: str) -> np.ndarray:
    """``(H, W, 3)`` uint8 via PIL ``.convert("RGB")``; InputError naming the file when unreadable."""
    from PIL import Image

    from ..io import max_pixels_default

    try:
        with Image.open(path) as im:
            if im.width * im.height > max_pixels_default():
                raise ValueError(f"{im.width}x{im.height} pixels is more than the limit {max_pixels_default()}")
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except Exception as exc:  # PIL raises many kinds on corrupt data
        raise InputError(f"{path}: cannot read image ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
                         ) from None


def read_stats(path: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(mu, sigma)`` from a pytorch-fid ``.npz``."""
    try:
        with np.load(path, allow_pickle=False) as z:
            mu, sigma = np.asarray(z["mu"], np.float64), np.asarray(z["sigma"], np.float64)
    except KeyError:
        raise InputError(f"{path}: a statistics file needs arrays 'mu' and 'sigma' (pytorch-fid format)") from None
    except Exception as exc:
        raise InputError(f"{path}: cannot read statistics ({type(exc).__name__}: {exc})") from None
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise InputError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not fit together")
    return mu, sigma


def write_stats(path: str, features: np.ndarray) -> None:
    """Save pytorch-fid-format statistics (``mu``, ``sigma`` float64) atomically."""
    mu, sigma = scores.feature_stats(features)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, mu=mu, sigma=sigma)


# ---- extractor and features ---------------------------------------------------------------------------------------


def resolve_extractor_weights(cfg: MetricsConfig, progress: Optional[ProgressFn] = None) -> Optional[Path]:
    from ..hub.store import find_local, resolve

    if cfg.weights is not None:
        return Path(resolve(cfg.weights, progress=progress))
    if cfg.extractor != "inception":
        return None
    from ..hub.manifest import get_entry

    path = find_local(get_entry(INCEPTION_ENTRY))
    if path is None:
        raise WeightsError(INCEPTION_MISSING)
    return path


def make_extractor(cfg: MetricsConfig, runtime: Runtime, progress: Optional[ProgressFn] = None) -> Extractor:
    if cfg.extractor not in EXTRACTORS:
        raise UsageError(f"--extractor must be one of {', '.join(EXTRACTORS)}, got {cfg.extractor!r}")
    check_protocol(cfg.resize)
    ex = build_extractor(cfg.extractor, resolve_extractor_weights(cfg, progress), resize=cfg.resize, runtime=runtime)
    note(progress, "metrics", f"extractor {ex.name} ({ex.weights}, sha256 {ex.weights_sha256[:12]}), resize "
         f"{ex.resize}, {ex.precision}")
    return ex


def _cache_key(paths: Sequence[str], ex: Extractor) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        h.update(f"{os.path.abspath(p)}\0{st.st_mtime_ns}\0{st.st_size}\n".encode())
    h.update(json.dumps(ex.label(), sort_keys=True).encode())
    return h.hexdigest()


def _cache_file(key: str) -> Path:
    from ..hub.store import cache_dir

    return cache_dir() / "metrics" / f"{key}.npz"


def _run_batch(ex: Extractor, arrays: List[np.ndarray]) -> Dict[str, np.ndarray]:
    """Extractor over images of possibly different sizes (grouped by size, order kept)."""
    out: Dict[str, List[Optional[np.ndarray]]] = {}
    groups: Dict[Tuple[int, ...], List[int]] = {}
    for i, a in enumerate(arrays):
        groups.setdefault(a.shape, []).append(i)
    for idx in groups.values():
        x = torch.from_numpy(np.stack([arrays[i] for i in idx])).permute(0, 3, 1, 2)
        res = ex(x)
        for k, v in res.items():
            slot = out.setdefault(k, [None] * len(arrays))
            for j, i in enumerate(idx):
                slot[i] = v[j].numpy()
    return {k: np.stack(v) for k, v in out.items()}  # type: ignore[arg-type]


def extract_images(paths: Sequence[str], ex: Extractor, *, batch_size: int = 50, cache: bool = True,
                   label: str = "images", progress: Optional[ProgressFn] = None) -> FeatureSet:
    """Features of image files (cached), bad files skipped and listed."""
    import time

    key = _cache_key(paths, ex)
    cf = _cache_file(key)
    if cache and cf.is_file():
        try:
            with np.load(cf, allow_pickle=False) as z:
                fs = FeatureSet(label, features=z["features"], logits=z["logits"] if "logits" in z.files else None,
                                bad=[str(b) for b in z["bad"]])
            note(progress, f"features {label}", f"{fs.n} cached features ({cf.name[:12]})")
            return fs
        except Exception:
            pass  # unreadable cache entry: recompute
    t0 = time.perf_counter()
    feats: List[np.ndarray] = []
    logits: List[np.ndarray] = []
    bad: List[str] = []
    bs = max(1, int(batch_size))
    for i in range(0, len(paths), bs):
        arrays = []
        for p in paths[i:i + bs]:
            try:
                arrays.append(read_uint8(p))
            except InputError as exc:
                bad.append(p)
                note(progress, f"features {label}", f"skipped {exc}")
        if arrays:
            res = _run_batch(ex, arrays)
            feats.append(res["features"])
            if "logits" in res:
                logits.append(res["logits"])
        emit(progress, ProgressEvent(task=f"features {label}", step=min(i + bs, len(paths)), total=len(paths),
                                     unit="img"))
    fs = FeatureSet(label, features=np.concatenate(feats) if feats else np.zeros((0, ex.dim), np.float32),
                    logits=np.concatenate(logits) if logits else None, bad=bad,
                    seconds=time.perf_counter() - t0)
    if cache:
        arrays_out: Dict[str, np.ndarray] = {"features": fs.features, "bad": np.array(bad, dtype=str)}
        if fs.logits is not None:
            arrays_out["logits"] = fs.logits
        try:
            with atomic_path(cf) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, **arrays_out)  # type: ignore[arg-type]
        except Exception as exc:  # a read-only cache must not fail the metric
            note(progress, f"features {label}", f"feature cache not written ({exc})")
    return fs


@torch.no_grad()
def generate_uint8(generator: Optional[str], n: int, first_seed: int, trunc: float, runtime: Runtime,
                   batch_size: int, progress: Optional[ProgressFn] = None):  # type: ignore[no-untyped-def]
    """Yield uint8 ``(B, H, W, 3)`` batches of generator samples for seeds ``first_seed ...`` (see module doc)."""
    from ..generator_api import load_generator_for
    from ..models.protocols import z_from_seeds

    if n < 1:
        raise UsageError("--n must be at least 1")
    G, name = load_generator_for(generator, runtime.device, progress)
    for i in range(0, n, batch_size):
        seeds = range(first_seed + i, first_seed + min(n, i + batch_size))
        z = z_from_seeds(seeds, G.z_dim).to(runtime.device)
        img = G(z, truncation_psi=trunc, noise_mode="const").float()
        u8 = (img * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        yield u8
        emit(progress, ProgressEvent(task=f"generate {name}", step=min(n, i + batch_size), total=n, unit="img"))


def extract_generator(cfg: MetricsConfig, ex: Extractor, runtime: Runtime,
                      progress: Optional[ProgressFn] = None) -> FeatureSet:
    import time

    t0 = time.perf_counter()
    feats, logits = [], []
    for u8 in generate_uint8(cfg.generator, cfg.n, cfg.first_seed, cfg.trunc, runtime, cfg.batch_size, progress):
        res = _run_batch(ex, list(u8))
        feats.append(res["features"])
        if "logits" in res:
            logits.append(res["logits"])
    return FeatureSet(f"generator {cfg.generator or 'default'}", features=np.concatenate(feats),
                      logits=np.concatenate(logits) if logits else None, seconds=time.perf_counter() - t0)


def load_source(spec: Optional[str], cfg: MetricsConfig, ex: Extractor, runtime: Runtime,
                progress: Optional[ProgressFn] = None, allow_stats: bool = False) -> FeatureSet:
    """A feature set from a folder/glob, an ``.npz`` (stats) or the configured generator (``spec`` None)."""
    if spec is None:
        return extract_generator(cfg, ex, runtime, progress)
    if spec.lower().endswith(".npz"):
        if not allow_stats:
            raise UsageError(f"{spec}: {cfg.metric} needs images (features), not a statistics file")
        mu, sigma = read_stats(spec)
        return FeatureSet(spec, stats=(mu, sigma))
    paths = list_images(spec)
    fs = extract_images(paths, ex, batch_size=cfg.batch_size, cache=cfg.cache, label=spec, progress=progress)
    if fs.n == 0:
        raise InputError(f"{spec}: none of its {len(paths)} image(s) could be read")
    return fs


# ---- results --------------------------------------------------------------------------------------------------------


def _base(metric: str, ex: Optional[Extractor], counts: Dict[str, int], seed: Optional[int]) -> Dict[str, Any]:
    d: Dict[str, Any] = {"metric": metric}
    if ex is not None:
        d.update(ex.label())
    d["counts"] = counts
    d["seed"] = seed
    return d


def _counts(**sets: FeatureSet) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for name, fs in sets.items():
        if fs.stats is None:
            out[name] = fs.n
            out[f"{name}_skipped"] = len(fs.bad)
    return out


def _stats_of(fs: FeatureSet) -> Tuple[np.ndarray, np.ndarray]:
    if fs.stats is not None:
        return fs.stats
    if fs.n < 2:
        raise InputError(f"{fs.source}: FID needs at least 2 images, got {fs.n}")
    return scores.feature_stats(fs.features)  # type: ignore[arg-type]


def fid_result(real: FeatureSet, fake: FeatureSet, ex: Extractor, method: str = "auto") -> Dict[str, Any]:
    mu1, s1 = _stats_of(real)
    mu2, s2 = _stats_of(fake)
    feats = (np.asarray(real.features, np.float64), np.asarray(fake.features, np.float64)) \
        if real.stats is None and fake.stats is None else None
    t = scores.fid_from_stats(mu1, s1, mu2, s2, method, _features=feats)
    d = _base("fid", ex, _counts(real=real, fake=fake), None)
    d.update(value=t["value"], sqrt_method=t["method"],
             terms={k: t[k] for k in ("mu_diff_sq", "trace1", "trace2", "sqrt_trace")})
    return d


def kid_result(real: FeatureSet, fake: FeatureSet, ex: Extractor, cfg: MetricsConfig,
               subset_size: Optional[int] = None, progress: Optional[ProgressFn] = None) -> Dict[str, Any]:
    k = scores.kid(real.features, fake.features, cfg.subsets, subset_size or cfg.subset_size, cfg.seed,  # type: ignore[arg-type]
                   progress=progress)
    d = _base("kid", ex, _counts(real=real, fake=fake), cfg.seed)
    d.update(value=k["value"], std=k["std"], subsets=k["subsets"], subset_size=k["subset_size"])
    return d


def is_results(fake: FeatureSet, ex: Extractor, cfg: MetricsConfig) -> List[Dict[str, Any]]:
    if fake.logits is None:
        raise UsageError(f"the {ex.name} extractor has no class logits; IS needs --extractor inception or digits")
    r = scores.inception_score(fake.logits, splits=cfg.splits, seed=cfg.seed)
    d = _base("is" if ex.name == "inception" else f"{ex.name}_is", ex, _counts(fake=fake), cfg.seed)
    d.update(value=r["value"], std=r["std"], splits=r["splits"])
    out = [d]
    if ex.name == "digits":
        p = torch.from_numpy(fake.logits).double().softmax(1)
        conf, pred = p.max(1)
        hist = torch.bincount(pred, minlength=p.shape[1])
        rec = _base("recognised", ex, _counts(fake=fake), None)
        rec.update(value=float((conf >= DIGIT_THRESHOLD).double().mean()), threshold=DIGIT_THRESHOLD)
        cov = _base("class_coverage", ex, _counts(fake=fake), None)
        cov.update(value=int((hist > 0).sum()), classes=int(p.shape[1]), histogram=hist.tolist(),
                   min_class_share=float(hist.min()) / max(1, len(p)))
        out += [rec, cov]
    return out


def pr_result(real: FeatureSet, fake: FeatureSet, ex: Extractor, cfg: MetricsConfig) -> List[Dict[str, Any]]:
    r = scores.precision_recall(real.features, fake.features, k=cfg.k)  # type: ignore[arg-type]
    out = []
    for m in ("precision", "recall"):
        d = _base(m, ex, _counts(real=real, fake=fake), None)
        d.update(value=r[m], k=cfg.k)
        out.append(d)
    return out


# ---- entry point ------------------------------------------------------------------------------------------------------


def run_metrics(cfg: MetricsConfig, progress: Optional[ProgressFn] = None,
                runtime: Optional[Runtime] = None) -> MetricsReport:
    """Run one ``imgforge metrics`` command (see the module docstring)."""
    if cfg.metric not in METRICS:
        raise UsageError(f"unknown metric {cfg.metric!r}; one of {', '.join(METRICS)}")
    if cfg.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    rt = runtime or Runtime.create(cfg.device, cfg.precision)
    from .metrics_pixels import paired_job, parzen_job, ppl_job

    if cfg.metric in PAIRED:
        r = paired_job(cfg, rt, progress)
        return MetricsReport([r], bad=r["counts"]["pairs_skipped"])
    if cfg.metric == "parzen":
        r = parzen_job(cfg, rt, progress)
        return MetricsReport([r], bad=r["counts"]["held_out_skipped"] + r["counts"]["model_skipped"])
    if cfg.metric == "ppl":
        return MetricsReport([ppl_job(cfg, rt, progress)])
    ex = make_extractor(cfg, rt, progress)
    needs_two = cfg.metric in ("fid", "kid", "pr", "all")
    if cfg.metric == "is":
        if len(cfg.inputs) != (0 if cfg.generator is not None else 1):
            raise UsageError("is takes one input: imgforge metrics is FAKE (or --generator G --n N)")
    elif needs_two:
        want = 1 if cfg.generator is not None else 2
        if len(cfg.inputs) != want:
            raise UsageError(f"{cfg.metric} needs REAL and FAKE (or REAL with --generator G --n N); got "
                             f"{len(cfg.inputs)} input(s)")
    allow_stats = cfg.metric == "fid"
    results: List[Dict[str, Any]] = []
    if cfg.metric == "is":
        fake = load_source(cfg.inputs[0] if cfg.inputs else None, cfg, ex, rt, progress)
        results += is_results(fake, ex, cfg)
        sets = [fake]
    else:
        real = load_source(cfg.inputs[0], cfg, ex, rt, progress, allow_stats)
        fake = load_source(cfg.inputs[1] if len(cfg.inputs) > 1 else None, cfg, ex, rt, progress, allow_stats)
        sets = [real, fake]
        if cfg.save_stats and real.stats is None:
            if real.n < 2:
                raise InputError(f"{real.source}: statistics need at least 2 images, got {real.n}")
            write_stats(cfg.save_stats, real.features)  # type: ignore[arg-type]
            note(progress, "metrics", f"saved the statistics of {real.source} to {cfg.save_stats}")
        if cfg.metric in ("fid", "all"):
            results.append(fid_result(real, fake, ex, cfg.fid_method))
        if cfg.metric in ("kid", "all"):
            size = cfg.subset_size
            if cfg.metric == "all":
                size = min(size, real.n, fake.n)
                if size < 2:
                    raise InputError("KID needs at least 2 images in each set")
            results.append(kid_result(real, fake, ex, cfg, size, progress))
        if cfg.metric == "all" and fake.logits is not None:
            results += is_results(fake, ex, cfg)
        if cfg.metric in ("pr", "all"):
            results += pr_result(real, fake, ex, cfg)
    for fs in sets:
        if fs.seconds:
            note(progress, "metrics", f"{fs.source}: {fs.n} images encoded in {fs.seconds:.1f} s "
                 f"({fs.n / max(fs.seconds, 1e-9):.1f} img/s)")
    return MetricsReport(results, bad=sum(len(fs.bad) for fs in sets))
