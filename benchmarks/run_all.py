#!/usr/bin/env python3
"""Every speed benchmark against its plain fp32 baseline, and the machine's convolution peak, in one run.

    python benchmarks/run_all.py [--quick] [--device cpu|cuda] [--threads 1,2] [--cases gatys,fast,...]

For each case and thread count a fresh subprocess runs the plain fp32 baseline and imgforge's path (same inputs,
same process, so the same load), and reports its peak resident memory; a separate subprocess measures a large 3x3
convolution (256 -> 256 channels at 128^2, channels_last) in fp32 and in bf16 (and fp16 on CUDA): the "peak" the
cases are measured against (the peak of the precision the imgforge variant ran in). The baselines and the imgforge
paths are the existing benchmarks' functions (style_speed.run_one, translation_speed.bench_apply,
invert_speed.plain_invert, gatys_wallclock.plain_gatys), imported, not copied.

Columns: baseline and imgforge time per unit (one image, one L-BFGS evaluation, one image-step), their ratio,
GFLOP/s achieved (the nominal convolution/matmul FLOPs of the plain network, counted by
``torch.utils.flop_counter``, divided by imgforge's time), the fraction of the peak, the PSNR of imgforge's output
against the baseline's (images in [0, 1]), the peak RSS of the case's process (on CUDA also the peak GPU memory),
and, with two thread counts, imgforge's 1-thread time / 2-thread time. Gatys' per-iteration time is (T(n2) - T(n1)) /
(n2 - n1) of two runs, as the issue measures it; its quality columns compare the final loss (one fp32 evaluator) and
the style/content distances with the plain fp32 run's after n2 evaluations.

On CUDA the Gatys and inversion cases also run in fp16 and with ``torch.compile`` (of the encoder); a compile
failure is reported in the table, not fatal. Each case subprocess has a time limit (``--case-timeout``).

Writes ``benchmarks/results/summary.md`` and ``summary.json`` (``--out`` to change), with the CPU model, its flags
(AMX / AVX512-BF16), torch version, thread counts and the load average at the start and the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))
DATA = Path(os.environ.get("IMGFORGE_DATA_DIR", REPO.parent / "shared" / "data"))
IMAGES = ("photos/astronaut.png", "paintings/starry_night.jpg")


def synthetic_data(folder: Path) -> Path:
    """Stand-ins for the two public images where ../shared/data is absent (e.g. on a device machine): smooth
    deterministic colour patterns with edges, 512 x 512 and 600 x 480 (timings do not depend on the content; the
    PSNR and loss columns do a little). Returns ``folder``."""
    import numpy as np
    from PIL import Image

    for rel, (h, w), seed in zip(IMAGES, ((512, 512), (480, 600)), (0, 1)):
        rng = np.random.default_rng(seed)
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        img = np.zeros((h, w, 3))
        for c in range(3):
            for _ in range(6):
                fx, fy, ph = rng.uniform(1, 12, 2).tolist() + [rng.uniform(0, 6.3)]
                img[..., c] += np.sin(2 * np.pi * (fx * xx + fy * yy) + ph)
        img += (rng.uniform(size=(h // 16 + 1, w // 16 + 1, 3)) > 0.8).repeat(16, 0).repeat(16, 1)[:h, :w] * 2
        img = (img - img.min()) / (img.max() - img.min())
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * 255).astype(np.uint8)).save(folder / rel)
    return folder

#: (cheapest first, so that a --budget cut keeps the most; Gatys with torch.compile on CUDA is the longest)
CASES = ("fast", "adain", "cyclegan", "pix2pix", "invert", "gatys")

#: sizes and repetitions: (full, quick) per device kind
SETTINGS = {
    "cpu": {
        False: {"gatys": 512, "gatys_n": (3, 13), "fast": 1024, "adain": 1024, "translate": 512, "reps": 3,
                "inv_batch": 16, "inv_steps": 40},
        True: {"gatys": 192, "gatys_n": (1, 4), "fast": 512, "adain": 512, "translate": 256, "reps": 1,
               "inv_batch": 4, "inv_steps": 8},
    },
    "cuda": {
        False: {"gatys": 512, "gatys_n": (10, 60), "fast": 1024, "adain": 1024, "translate": 512, "reps": 10,
                "inv_batch": 16, "inv_steps": 100},
        True: {"gatys": 512, "gatys_n": (5, 25), "fast": 1024, "adain": 1024, "translate": 512, "reps": 5,
               "inv_batch": 16, "inv_steps": 40},
    },
}


# ----------------------------------------------------------------------------------------------------- helpers


def _sync(dev: Any) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _psnr(a: Any, b: Any) -> float:
    mse = float(((a.float().cpu() - b.float().cpu()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def _flops(fn: Callable[[], Any]) -> float:
    """Nominal FLOPs of one call of ``fn`` (convolutions and matrix products, forward and any backward in it)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return float(fc.get_total_flops())


def _timed(fn: Callable[[], Any], dev: Any) -> float:
    _sync(dev)
    t = time.perf_counter()
    fn()
    _sync(dev)
    return time.perf_counter() - t


def _row(case: str, variant: str, unit: str, base_s: float, s: float, flops: float, precision: str,
         psnr: Optional[float], **extra: Any) -> Dict[str, Any]:
    return {"case": case, "variant": variant, "unit": unit, "baseline_s": base_s, "imgforge_s": s,
            "ratio": base_s / s if s else math.nan, "gflop": flops / 1e9,
            "gflops": flops / 1e9 / s if s else math.nan, "precision": precision, "psnr_db": psnr, **extra}


# ------------------------------------------------------------------------------------------------------ the peak


def conv_peak(dev: Any, quick: bool) -> Dict[str, float]:
    """GFLOP/s of one large 3x3 convolution (256 -> 256 at 128^2, channels_last, inference) per dtype."""
    import torch
    import torch.nn.functional as F

    batch = 32 if dev.type == "cuda" else 1
    if dev.type == "cuda":  # the best algorithm for this one shape (the cases run with torch's defaults)
        torch.backends.cudnn.benchmark = True
    reps = (20 if dev.type == "cuda" else 3) if quick else (50 if dev.type == "cuda" else 5)
    out: Dict[str, float] = {}
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    if dev.type == "cuda":
        dtypes["fp16"] = torch.float16
    g = torch.Generator().manual_seed(0)
    for name, dt in dtypes.items():
        x = torch.randn(batch, 256, 128, 128, generator=g).to(dev, dt).contiguous(memory_format=torch.channels_last)
        w = (torch.randn(256, 256, 3, 3, generator=g) * 0.02).to(dev, dt).contiguous(memory_format=torch.channels_last)
        flops = 2.0 * batch * 256 * 256 * 9 * 128 * 128
        with torch.inference_mode():
            F.conv2d(x, w, padding=1)
            best = min(_timed(lambda: F.conv2d(x, w, padding=1), dev) for _ in range(reps))
        out[name] = flops / best / 1e9
    return out


# ------------------------------------------------------------------------------------------------------- the cases


def _variants(dev: Any, optimisation: bool) -> List[str]:
    """imgforge variants per device: the policy's ``auto``; plus bf16 for the optimisation loops on the CPU (where
    auto is fp32), fp16 on CUDA, and torch.compile on CUDA for the optimisation loops (unless --no-compile)."""
    only = os.environ.get("IMGFORGE_BENCH_VARIANTS")  # --variants: these only (the optimisation loops)
    if optimisation and only:
        return [v for v in only.split(",") if v]
    if dev.type == "cuda":
        compile_ = optimisation and os.environ.get("IMGFORGE_BENCH_COMPILE", "1") == "1"
        return ["auto", "fp16"] + (["auto+compile"] if compile_ else [])
    return ["auto", "bf16"] if optimisation else ["auto"]


def case_gatys(dev: Any, st: Dict[str, Any]) -> List[Dict[str, Any]]:
    import torch

    from gatys_wallclock import load, plain_gatys
    from imgforge.hub.encoders import load_style_encoder
    from imgforge.methods.gatys import GatysConfig, _Objective, content_distance, resize_long_side, style_distance, stylize_gatys
    from imgforge.runtime import Runtime

    enc, _ = load_style_encoder(None, device=dev)
    size = st["gatys"]
    n1, n2 = st["gatys_n"]
    cfg = GatysConfig(size=size, progress_every=10**9)
    content = resize_long_side(load(DATA / "photos" / "astronaut.png"), size).to(dev)
    style = resize_long_side(load(DATA / "paintings" / "starry_night.jpg"), size).to(dev)

    def plain(n: int) -> Any:
        return plain_gatys(content, style, enc, cfg, n)

    plain(1)  # warm-up
    t1, t2 = _timed(lambda: plain(n1), dev), None
    ref = [None]

    def plain_long() -> None:
        ref[0] = plain(n2)

    t2 = _timed(plain_long, dev)
    base = (t2 - t1) / (n2 - n1)
    layers = tuple(dict.fromkeys(cfg.content_layers + cfg.style_layers))
    xf = content.clone().requires_grad_(True)

    def one_eval() -> None:
        f = enc(xf, layers)
        sum(v.square().mean() for v in f.values()).backward()

    flops = _flops(one_eval)
    judge = _Objective(enc, cfg, content, [style], [1.0], None)

    def quality(img: Any) -> Dict[str, float]:
        with torch.no_grad():
            return {"loss": float(judge(img)["total"]), "style_d": style_distance(img, [style], enc),
                    "content_d": content_distance(img, content, enc)}

    qref = quality(ref[0])
    rows = []
    for v in _variants(dev, True):
        try:
            rt = Runtime.create(str(dev), v.split("+")[0], task="optimisation")
            e = enc
            if v.endswith("+compile"):  # a copy already in the runtime's layout: no layout change, no recompiles
                import copy

                e = copy.deepcopy(enc)
                if rt.channels_last:
                    e = e.to(memory_format=torch.channels_last)
                e = torch.compile(e)
            out = [None]

            def run(n: int) -> None:
                out[0] = stylize_gatys(content, [style], e, dataclasses.replace(cfg, iterations=n), runtime=rt)

            run(1)  # warm-up (and compilation)
            a = _timed(lambda: run(n1), dev)
            b = _timed(lambda: run(n2), dev)
            s = (b - a) / (n2 - n1)
            q = quality(out[0])
            rows.append(_row("gatys", v, "L-BFGS evaluation", base, s, flops, rt.precision_name, _psnr(out[0], ref[0]),
                             size=size, iterations=n2,
                             loss_rel=q["loss"] / qref["loss"] - 1, style_rel=q["style_d"] / qref["style_d"] - 1,
                             content_rel=q["content_d"] / qref["content_d"] - 1, quality=q, quality_ref=qref))
        except Exception as exc:  # noqa: BLE001 - a failing variant (e.g. torch.compile) is reported, not fatal
            rows.append({"case": "gatys", "variant": v, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"})
    return rows


def case_invert(dev: Any, st: Dict[str, Any]) -> List[Dict[str, Any]]:
    import torch

    from imgforge.generator_api import load_generator
    from imgforge.hub.encoders import resolve_perceptual_encoder
    from imgforge.losses.perceptual import IMAGE2STYLEGAN_LAYERS, PerceptualDistance
    from imgforge.methods.invert import InvertConfig, Inverter, latent_stats
    from invert_speed import plain_invert
    from imgforge.runtime import Runtime

    G = load_generator("stylegan2-mnist32", device=dev)
    enc, _ = resolve_perceptual_encoder(None, device=dev)
    batch, steps = st["inv_batch"], st["inv_steps"]
    cfg = InvertConfig(space="w+", steps=steps, progress_every=10**9, w_avg_samples=10000)
    stats = latent_stats(G, cfg.w_avg_samples)
    with torch.no_grad():
        z = torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(0)).to(dev)
        targets = ((G(z) + 1) / 2).clamp(0, 1)
    n_plain = min(batch, 4 if dev.type == "cpu" else 2)
    # Same random streams on both sides: image i's latent noise comes from seed cfg.seed + i, as Inverter.run's
    # default seeds. (At 40 steps the final PSNR depends strongly on that stream -- per image by several dB, and by
    # ~1 dB on the mean of 32 images -- so unmatched seeds compare the streams, not the implementations.)
    seeds = [cfg.seed + i for i in range(batch)]
    plain_invert(G, targets[:1], enc, dataclasses.replace(cfg, steps=2), stats.w_avg, stats.w_std, seeds[0])
    ws_plain: List[Any] = []

    def plain_all() -> None:
        ws_plain.clear()
        for i in range(n_plain):
            ws_plain.append(plain_invert(G, targets[i:i + 1], enc, cfg, stats.w_avg, stats.w_std, seeds[i]))

    base = _timed(plain_all, dev) / (n_plain * steps)
    # the quality reference: the plain loop on every image of the batch (only the first n_plain are timed); the
    # comparison is paired per image (Adam amplifies rounding differences in near-zero gradient elements, so the
    # two loops' per-image PSNRs differ by ~0.4 dB sd even in fp32 with the same seeds)
    for i in range(n_plain, batch):
        ws_plain.append(plain_invert(G, targets[i:i + 1], enc, cfg, stats.w_avg, stats.w_std, seeds[i]))
    with torch.no_grad():
        G.set_fused_modconv(True)
        rec = torch.cat([((G.synthesis(w, noise_mode="const") + 1) / 2).clamp(0, 1) for w in ws_plain])
        plain_per = [_psnr(rec[i], targets[i]) for i in range(batch)]
        plain_q = sum(plain_per) / batch

    def one_step() -> None:
        w = stats.w_avg.view(1, 1, -1).repeat(1, G.num_ws, 1).clone().requires_grad_(True)
        img = (G.synthesis(w, noise_mode="const") + 1) / 2
        f = enc(img, layers=cfg.perceptual_layers)
        sum(v.square().mean() for v in f.values()).backward()

    flops = _flops(one_step)
    rows = []
    for v in _variants(dev, True):
        try:
            rt = Runtime.create(str(dev), v.split("+")[0], task="optimisation")
            e = torch.compile(enc) if v.endswith("+compile") else enc
            inv = Inverter(G, cfg, perceptual=PerceptualDistance(e, IMAGE2STYLEGAN_LAYERS), runtime=rt)
            inv._stats = stats
            warm = Inverter(G, dataclasses.replace(cfg, steps=2), perceptual=inv.perceptual, runtime=rt)
            warm._stats = stats
            warm.run(targets)
            res = [None]
            s = _timed(lambda: res.__setitem__(0, inv.run(targets, seeds=seeds)), dev) / (batch * steps)
            imgs = res[0].images
            per = [_psnr(imgs[i], targets[i]) for i in range(batch)]
            diff = [a - b for a, b in zip(per, plain_per)]
            d_mean = sum(diff) / batch
            d_se = (math.sqrt(sum((d - d_mean) ** 2 for d in diff) / (batch - 1) / batch) if batch > 1
                    else math.nan)
            rows.append(_row("invert", v, f"image-step (batch {batch})", base, s, flops, rt.precision_name, None,
                             steps=steps, recon_psnr_db=sum(per) / batch, recon_psnr_plain_db=plain_q,
                             recon_psnr_diff_db=d_mean, recon_psnr_diff_se_db=d_se, quality_images=batch))
        except Exception as exc:  # noqa: BLE001
            rows.append({"case": "invert", "variant": v, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"})
    return rows


def _style_case(method: str, dev: Any, st: Dict[str, Any]) -> List[Dict[str, Any]]:
    import tempfile

    import torch

    import style_speed

    size = st[method]
    rows: List[Dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        def ns(variant: str) -> argparse.Namespace:
            return argparse.Namespace(method=method, size=size, variant=variant, repeat=st["reps"],
                                      content=str(DATA / "photos" / "astronaut.png"),
                                      content2=str(DATA / "paintings" / "starry_night.jpg"), model=None,
                                      encoder=None, decoder=None, random=False, device=str(dev),
                                      save=str(Path(tmp) / f"{variant}.pt"))

        base = style_speed.run_one(ns("baseline"))
        ref = torch.load(ns("baseline").save)
        # nominal FLOPs: the plain networks' forward
        net, dec = style_speed._nets(ns("baseline"), method)
        net = net.to(dev)
        x = style_speed._content(str(DATA / "photos" / "astronaut.png"), size).to(dev)
        if method == "fast":
            flops = _flops(lambda: net(x * 255.0))
        else:
            dec = dec.to(dev)
            flops = _flops(lambda: dec(net(x, ("relu4_1",))["relu4_1"]))
        del net, dec
        for v in (["fast-auto", "fast-fp16"] if dev.type == "cuda" else ["fast-auto"]):
            r = style_speed.run_one(ns(v))
            out = torch.load(ns(v).save)
            rows.append(_row(method, v.replace("fast-", ""), f"image {size}²", base["seconds"], r["seconds"], flops,
                             r["precision"], _psnr(out, ref), size=size))
    return rows


def case_fast(dev: Any, st: Dict[str, Any]) -> List[Dict[str, Any]]:
    return _style_case("fast", dev, st)


def case_adain(dev: Any, st: Dict[str, Any]) -> List[Dict[str, Any]]:
    return _style_case("adain", dev, st)


def _translate_case(name: str, arch: str, kwargs: Dict[str, Any], dev: Any, st: Dict[str, Any]) -> List[Dict[str, Any]]:
    import torch

    from imgforge.models.registry import build
    from imgforge.runtime import Runtime
    from translation_speed import bench_apply

    rt = Runtime.create(str(dev), "auto")
    size = st["translate"]
    # what `imgforge translate apply` runs under the policy: the native bf16 copy on the CPU, autocast elsewhere
    if rt.native_dtype is not None:
        mine = ["bf16 native+cl"]
    elif rt.dtype is not None:
        mine = [f"{rt.precision_name}+cl"]
    else:
        mine = ["fp32 rw"]
    if dev.type == "cuda":
        mine = list(dict.fromkeys(mine + ["fp16+cl"]))
    res = bench_apply(arch, kwargs, size, st["reps"], ["fp32"] + mine, device=str(dev))
    G = build(arch, **kwargs).eval().to(dev)
    x = torch.zeros(1, 3, size, size, device=dev)
    with torch.no_grad():
        flops = _flops(lambda: G(x))
    return [_row(name, v, f"image {size}²", res["fp32"]["seconds"], res[v]["seconds"], flops,
                 "bf16" if v.startswith("bf16") else ("fp16" if v.startswith("fp16") else "fp32"), res[v]["psnr_db"],
                 size=size) for v in mine]


def case_cyclegan(dev: Any, st: Dict[str, Any]) -> List[Dict[str, Any]]:
    return _translate_case("cyclegan", "resnet_generator", {"ngf": 64, "norm": "instance", "n_blocks": 9}, dev, st)


def case_pix2pix(dev: Any, st: Dict[str, Any]) -> List[Dict[str, Any]]:
    return _translate_case("pix2pix", "unet_generator", {"ngf": 64, "norm": "batch", "num_downs": 8,
                                                         "use_dropout": True}, dev, st)


# ---------------------------------------------------------------------------------------------------------- driver


def child(a: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(a.child_threads)
    dev = torch.device(a.device)
    st = dict(SETTINGS[dev.type][a.quick])
    if os.environ.get("IMGFORGE_BENCH_GATYS_N"):  # --gatys-n
        st["gatys_n"] = tuple(int(n) for n in os.environ["IMGFORGE_BENCH_GATYS_N"].split(","))
    t0 = time.perf_counter()
    if a.child == "peak":
        rows: List[Dict[str, Any]] = [{"case": "peak", "gflops": conv_peak(dev, a.quick)}]
    else:
        rows = globals()[f"case_{a.child}"](dev, st)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    gpu = torch.cuda.max_memory_allocated(dev) / 2**20 if dev.type == "cuda" else None
    for r in rows:
        r.update(threads=a.child_threads, peak_rss_mb=rss, peak_gpu_mb=gpu, case_wall_s=time.perf_counter() - t0)
    print("JSON " + json.dumps(rows, default=float))


def machine_info(dev_type: str) -> Dict[str, Any]:
    import torch

    from imgforge.runtime import cpu_flags, cpu_has_amx_bf16, cpu_vendor

    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor()
    flags = cpu_flags()
    info = {"cpu_model": model, "cpu_vendor": cpu_vendor(), "cpus": os.cpu_count(), "amx_bf16": cpu_has_amx_bf16(),
            "avx512_bf16": "avx512_bf16" in flags, "avx512f": "avx512f" in flags, "avx2": "avx2" in flags,
            "torch": torch.__version__, "python": platform.python_version()}
    if dev_type == "cuda" and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
        info["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32  # fp32 convolutions on TF32 tensor cores
    return info


def _fmt(v: Any, spec: str = ".3f") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float) and math.isinf(v):
        return "inf"
    return format(v, spec)


def table(rows: List[Dict[str, Any]], peaks: Dict[int, Dict[str, float]], threads: List[int],
          every_thread_count: bool = False) -> str:
    """The markdown table of ``rows`` at ``threads[0]`` (every row with ``every_thread_count``); a row's own
    ``peak_gflops`` (set by :func:`merge`) is used before ``peaks``."""
    head = ("| case | variant | unit | threads | baseline fp32 (s) | imgforge (s) | ratio | GFLOP/s | fraction of peak "
            "| PSNR vs fp32 (dB) | peak RSS (MB) | 1→2 thread scaling | notes |")
    lines = [head, "|" + "---|" * 13]
    t0 = threads[0]
    for r in rows:
        if r["case"] == "peak" or (r.get("threads") != t0 and not every_thread_count):
            continue
        th = r.get("threads", t0)
        if "error" in r:
            lines.append(f"| {r['case']} | {r['variant']} | – | {th} | – | – | – | – | – | – | – | – | {r['error']} |")
            continue
        peak = (r.get("peak_gflops") or peaks.get(th, {})).get(r["precision"])
        frac = r["gflops"] / peak if peak else None
        scal = None
        if len(threads) > 1 and not every_thread_count:
            other = next((o for o in rows if o.get("case") == r["case"] and o.get("variant") == r["variant"]
                          and o.get("threads") == threads[1] and "imgforge_s" in o), None)
            if other:
                scal = r["imgforge_s"] / other["imgforge_s"]
        notes = []
        if r["case"] == "gatys":
            notes.append(f"{r['size']}², n={r['iterations']}: loss {r['loss_rel']:+.2%}, style d {r['style_rel']:+.2%}, "
                         f"content d {r['content_rel']:+.2%} vs fp32")
        if r["case"] == "invert":
            note = f"{r['steps']} steps: recon PSNR {r['recon_psnr_db']:.2f} dB (plain {r['recon_psnr_plain_db']:.2f}"
            if "recon_psnr_diff_db" in r:
                note += (f"; paired Δ {r['recon_psnr_diff_db']:+.2f} ± {r['recon_psnr_diff_se_db']:.2f} dB s.e., "
                         f"{r['quality_images']} images, same seeds")
            notes.append(note + ")")
        if r.get("peak_gpu_mb"):
            notes.append(f"GPU peak {r['peak_gpu_mb']:.0f} MB")
        if r.get("run"):  # merged from several processes (--merge): which one
            notes.append(f"process {r['run']}")
        idle = (r.get("idle_peak_gflops") or {}).get(r["precision"])
        if idle:
            notes.append(f"{r['gflops'] / idle:.0%} of the idle peak")
        lines.append(f"| {r['case']} | {r['variant']} ({r['precision']}) | {r['unit']} | {th} | {_fmt(r['baseline_s'], '.4f')} "
                     f"| {_fmt(r['imgforge_s'], '.4f')} | {_fmt(r['ratio'], '.2f')}× | {_fmt(r['gflops'], '.0f')} "
                     f"| {_fmt(frac, '.0%')} | {_fmt(r['psnr_db'], '.1f')} | {_fmt(r['peak_rss_mb'], '.0f')} "
                     f"| {_fmt(scal, '.2f')} | {'; '.join(notes)} |")
    return "\n".join(lines)


def cpu_line(info: Dict[str, Any]) -> str:
    """The summary's CPU line from :func:`machine_info`'s dict."""
    return (f"- CPU: {info['cpu_model']} ({info['cpu_vendor']}, {info['cpus']} CPUs); AMX-BF16: {info['amx_bf16']}; "
            f"AVX512-BF16: {info['avx512_bf16']}; AVX512F: {info['avx512f']}")


def merge(folder: Path, out: Optional[Path]) -> str:
    """One table from the ``*.json`` summaries in ``folder`` (several run_all processes run side by side, each with
    its own ``--out``): each row's fraction of peak uses the peak its own process tree measured (same load); the
    machine lines come from the first summary, ``lscpu.txt``, ``load.txt`` and ``notes.md`` in ``folder`` when
    present. Writes ``out`` (.md) and its .json when given; returns the markdown."""
    runs = []
    for f in sorted(folder.glob("*.json")):
        try:
            d = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(d, dict) and "rows" in d and "peaks" in d:
            runs.append((f.stem, d))
    if not runs:
        raise SystemExit(f"no run_all summaries (*.json) in {folder}")
    rows: List[Dict[str, Any]] = []
    peak_lines = []
    # a peak-only process (run_all --cases "") run when none of the others was: the uncontended peak, per thread count
    idle: Dict[int, Dict[str, float]] = {}
    for stem, d in runs:
        if all(r.get("case") == "peak" for r in d["rows"]):
            for k, v in d["peaks"].items():
                idle[int(k)] = {p: max(g, idle.get(int(k), {}).get(p, 0.0)) for p, g in v.items()}
    for stem, d in runs:
        peaks = {int(k): v for k, v in d["peaks"].items()}
        for th, p in peaks.items():
            peak_lines.append(f"- {stem}, {th} thread(s): " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in p.items()))
        for r in d["rows"]:
            if r.get("case") == "peak":
                continue
            r = dict(r, run=stem)
            r["peak_gflops"] = peaks.get(r.get("threads", 1), {})
            r["idle_peak_gflops"] = idle.get(r.get("threads", 1), {})
            rows.append(r)
    info = runs[0][1]["machine"]
    head = [f"# imgforge speed summary (merged from {len(runs)} run_all processes run side by side, device "
            f"{runs[0][1].get('device', 'cpu')})", "",
            cpu_line(info),
            f"- torch {info['torch']}, python {info['python']}",
            "- load average (1/5/15 min) per process, start → end: " + "; ".join(
                f"{stem} {d['load_start'][0]:.1f} → {d['load_end'][0]:.1f}" for stem, d in runs)]
    lscpu = folder / "lscpu.txt"
    if lscpu.is_file():
        keep = ("Model name", "Thread(s) per core", "Core(s) per socket", "Socket(s)", "CPU(s):", "L2 cache", "L3 cache")
        for line in lscpu.read_text().splitlines():
            if line.strip().startswith(keep):
                head.append(f"- lscpu: {' '.join(line.split())}")
            if line.strip().startswith("Flags"):
                amx = sorted(f for f in line.split() if f.startswith(("amx", "avx512_bf16", "avx512_fp16")))
                head.append(f"- lscpu flags: {' '.join(amx) or '(no AMX / AVX512-BF16 flags)'}")
    load = folder / "load.txt"
    if load.is_file():
        head.append("- load over the run (`/proc/loadavg` samples): " + "; ".join(
            " ".join(ln.split()[:4]) for ln in load.read_text().splitlines() if ln.strip()))
    head += ["- conv peak (3x3, 256→256 at 128², channels_last), measured by each process just before its case:",
             *peak_lines,
             "- fraction of peak: imgforge's GFLOP/s over the peak of the precision it ran in, measured by the same "
             "process (notes: also of the idle peak, a peak-only process run after the others, where there is one); "
             "ratio: baseline time / imgforge time", ""]
    md = "\n".join(head) + "\n" + table(rows, {}, [1], every_thread_count=True) + "\n"
    notes = folder / "notes.md"
    if notes.is_file():
        md += "\n" + notes.read_text()
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(md)
        out.with_suffix(".json").write_text(json.dumps({"machine": info, "runs": [s for s, _ in runs], "rows": rows},
                                                       indent=2, default=float) + "\n")
    return md


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few repetitions (~2-3 min on 2 CPU cores)")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--threads", default=None, help="comma-separated intra-op thread counts (CPU; default 1,2; "
                    "--quick: 1)")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    ap.add_argument("--case-timeout", type=float, default=None, help="seconds per case subprocess (default: 1800; "
                    "--quick: 300)")
    ap.add_argument("--no-compile", action="store_true", help="CUDA: skip the torch.compile variants")
    ap.add_argument("--budget", type=float, default=None, help="seconds for the whole run: cases that would start "
                    "later are skipped, a running one is cut at the limit (default: none; --quick --device cuda: 170)")
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "summary.md")
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    ap.add_argument("--gatys-n", default=None, help="N1,N2: Gatys evaluation counts (per-iteration time = "
                    "(T(N2) - T(N1)) / (N2 - N1); quality after N2); default 3,13 on the CPU")
    ap.add_argument("--variants", default=None, help="comma-separated imgforge variants of the optimisation cases "
                    "(gatys, invert) instead of the device's defaults, e.g. bf16")
    ap.add_argument("--merge", type=Path, default=None, metavar="DIR", help="merge the *.json summaries in DIR "
                    "(processes run side by side with their own --out) into one table at --out; runs nothing")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-threads", type=int, default=1, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        child(a)
        return 0
    if a.merge is not None:
        print(merge(a.merge, None if a.no_write else a.out))
        return 0
    cases = [c for c in a.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    if a.device == "cuda":
        threads = [int(a.threads.split(",")[0])] if a.threads else [max(1, min(16, os.cpu_count() or 1))]
    else:
        threads = [int(t) for t in (a.threads or ("1" if a.quick else "1,2")).split(",") if t]
    timeout = a.case_timeout or ((120.0 if a.device == "cuda" else 300.0) if a.quick else 1800.0)
    env = dict(os.environ)
    import tempfile

    tmpdir = tempfile.TemporaryDirectory()
    data_note = f"images: {DATA} ({', '.join(IMAGES)})"
    if not all((DATA / rel).is_file() for rel in IMAGES):
        env["IMGFORGE_DATA_DIR"] = str(synthetic_data(Path(tmpdir.name)))
        data_note = f"images: synthetic stand-ins ({DATA} has no {', '.join(IMAGES)})"
    env["IMGFORGE_BENCH_COMPILE"] = "0" if a.no_compile else "1"
    for key, val in (("IMGFORGE_BENCH_GATYS_N", a.gatys_n), ("IMGFORGE_BENCH_VARIANTS", a.variants)):
        if val:
            env[key] = val
    load0 = os.getloadavg()
    t_start = time.perf_counter()
    rows: List[Dict[str, Any]] = []
    peaks: Dict[int, Dict[str, float]] = {}
    def write(final: bool) -> None:
        load1 = os.getloadavg()
        info = machine_info(a.device)
        tab = table(rows, peaks, threads)
        peak_lines = [f"- {th} thread(s): " + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in p.items()) for th, p in peaks.items()]
        head = [f"# imgforge speed summary ({'quick' if a.quick else 'full'}, device {a.device})"
                + ("" if final else " (partial: the run was still going)"), "",
                f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; total {time.perf_counter() - t_start:.0f} s",
                cpu_line(info),
                f"- torch {info['torch']}, python {info['python']}" + (f"; GPU {info.get('gpu')} (CUDA {info.get('cuda')})"
                                                                      if a.device == "cuda" else "")
                + ("; fp32 convolutions use TF32 (torch.backends.cudnn.allow_tf32)" if info.get("cudnn_allow_tf32") else ""),
                f"- load average (1/5/15 min) at start {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f}, "
                f"at end {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f} (other processes share this machine when > 0)",
                f"- {data_note}",
                "- conv peak (3x3, 256→256 at 128², channels_last, same run):", *peak_lines,
                "- fraction of peak: imgforge's GFLOP/s (nominal FLOPs of the plain network / imgforge time) over the peak "
                "of the precision it ran in; ratio: baseline time / imgforge time; scaling: imgforge 1-thread / 2-thread time",
                ""]
        md = "\n".join(head) + "\n" + tab + "\n"
        if final:
            print(md)
        if not a.no_write:
            a.out.parent.mkdir(parents=True, exist_ok=True)
            a.out.write_text(md)
            a.out.with_suffix(".json").write_text(json.dumps({"machine": info, "threads": threads, "quick": a.quick,
                                                              "device": a.device, "load_start": load0, "load_end": load1,
                                                              "peaks": peaks, "rows": rows}, indent=2, default=float) + "\n")

    budget = a.budget if a.budget is not None else (170.0 if (a.quick and a.device == "cuda") else None)
    for th in threads:
        env.update(OMP_NUM_THREADS=str(th), MKL_NUM_THREADS=str(th))
        for c in ["peak"] + cases:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--child", c, "--child-threads", str(th),
                   "--device", a.device] + (["--quick"] if a.quick else [])
            t = time.perf_counter()
            left = math.inf if budget is None else budget - (t - t_start)
            if left < 15:
                rows.append({"case": c, "variant": "–", "error": f"skipped: --budget {budget:.0f} s spent", "threads": th})
                continue
            try:
                res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=min(timeout, left),
                                     cwd=str(REPO))
                lines = [ln for ln in res.stdout.splitlines() if ln.startswith("JSON ")]
                if res.returncode or not lines:
                    err = (res.stderr.strip().splitlines() or ["no output"])[-1][:200]
                    got = [{"case": c, "variant": "–", "error": f"exit {res.returncode}: {err}", "threads": th}]
                else:
                    got = json.loads(lines[-1][5:])
            except subprocess.TimeoutExpired:
                got = [{"case": c, "variant": "–", "error": f"timed out after {min(timeout, left):.0f} s", "threads": th}]
            for r in got:
                r.setdefault("threads", th)
            if c == "peak" and "gflops" in got[0]:
                peaks[th] = got[0]["gflops"]
            rows += got
            print(f"[{th} thread(s)] {c}: {time.perf_counter() - t:.1f} s " + json.dumps(got, default=float)[:300],
                  flush=True)
            write(False)  # what is measured so far survives a killed run
        write(True)
    return 0 if not any("error" in r for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
