"""Speed of pix2pix / CycleGAN training steps and inference against a plain fp32 eager baseline, same networks,
same process.

    python benchmarks/translation_speed.py                     # train 256^2 batch 1, apply 512^2
    python benchmarks/translation_speed.py --threads 2 --reps 5 --json out/speed.json

Measured:

- train step: one full pix2pix step (G forward, D forward/backward on fake and real pairs, G backward through D,
  two Adam updates) with the reference networks (unet_256 + basic PatchGAN, widths 64, batch norm, dropout),
  256 x 256, batch 1; optionally (``--cyclegan``) one CycleGAN step (2 x resnet_9blocks + 2 x PatchGAN).
- apply: ``run_generator`` in eval mode on a 512 x 512 image for the CycleGAN generator (resnet_9blocks, instance
  norm) and the pix2pix generator (unet_256, batch norm; padded to 512).

Variants: ``fp32`` (plain eager, NCHW, every layer computed by its torch module, torch's default Adam: the baseline),
``fp32 rw`` (float32 as imgforge trains and runs it: the U-Net's image-end convolutions rewritten, see
imgforge/ops/narrow_conv.py; torch's fused Adam for training, see imgforge/training/translation_common.py; for apply
the CPU inference copy whose convolutions on tiny feature maps are matrix products, see imgforge/ops/gemm_conv.py),
``fp32+cl`` (channels_last), ``bf16+cl`` (bf16 autocast + channels_last), ``bf16`` (autocast, NCHW), and for apply
``bf16 native+cl`` (the bf16 inference copy run without autocast, channels_last: what ``imgforge ... apply`` runs
under bf16 on a CPU) and ``fp32 frozen`` (TorchScript freeze + optimize_for_inference of the plain network: conv/BN
folding and oneDNN fusions). All variants but the baseline and ``fp32 frozen`` have the rewritten layers and the
fused Adam. Each variant runs once to warm up, then ``--reps`` times, interleaved with the others; the median is
reported with its speed-up over the baseline. Apply outputs are compared with the baseline's by PSNR (images in
[0, 1]).

The numbers depend on the machine and its load: run on an otherwise idle machine when you can, and quote the
thread count.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imgforge.methods.translate import inference_copy, pad_to_multiple, run_generator  # noqa: E402
from imgforge.models.registry import build  # noqa: E402
from imgforge.ops.narrow_conv import set_fast_narrow  # noqa: E402
from imgforge.runtime import cpu_has_amx_bf16, cpu_flags  # noqa: E402
from imgforge.training.cyclegan import CycleGANConfig, CycleGANMethod  # noqa: E402
from imgforge.training.pix2pix import Pix2PixConfig, Pix2PixMethod  # noqa: E402

TRAIN_VARIANTS = {"fp32": (None, False), "fp32 rw": (None, False), "fp32+cl": (None, True),
                  "bf16+cl": (torch.bfloat16, True), "bf16": (torch.bfloat16, False),
                  "fp16+cl": (torch.float16, True)}


def _baseline(net: torch.nn.Module, variant: str) -> torch.nn.Module:
    """The ``fp32`` baseline runs the plain torch computation of every layer (U-Net image-end rewrites off)."""
    return set_fast_narrow(net, variant != "fp32")


def _plain_adam(method: object) -> None:
    """Give a training method the reference's optimisers (torch's default, unfused Adam) for the baseline."""
    for name in ("opt_G", "opt_D"):
        opt = getattr(method, name)
        params = [p for g in opt.param_groups for p in g["params"]]
        g = opt.param_groups[0]
        setattr(method, name, torch.optim.Adam(params, lr=g["lr"], betas=g["betas"]))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_times(fns: Dict[str, Callable[[], object]], reps: int,
                  device: torch.device = torch.device("cpu")) -> Dict[str, float]:
    for fn in fns.values():  # warm-up (oneDNN primitive creation, allocator)
        fn()
    _sync(device)
    times: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            _sync(device)
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_train(method: str, size: int, reps: int, variants: List[str]) -> Dict[str, Dict[str, float]]:
    fns: Dict[str, Callable[[], object]] = {}
    for name in variants:
        dtype, cl = TRAIN_VARIANTS[name]
        if method == "pix2pix":
            cfg = Pix2PixConfig(netG=f"unet_{size}", crop_size=size, load_size=size, seed=0)
            torch.manual_seed(0)
            m = Pix2PixMethod(cfg, device=torch.device("cpu"), autocast_dtype=dtype, channels_last=cl)
            g = torch.Generator().manual_seed(1)
            batch = {"input": torch.rand(1, 3, size, size, generator=g) * 2 - 1,
                     "target": torch.rand(1, 3, size, size, generator=g) * 2 - 1}
        else:
            cfg = CycleGANConfig(crop_size=size, load_size=size, seed=0)
            torch.manual_seed(0)
            m = CycleGANMethod(cfg, device=torch.device("cpu"), autocast_dtype=dtype, channels_last=cl)
            g = torch.Generator().manual_seed(1)
            batch = {"A": torch.rand(1, 3, size, size, generator=g) * 2 - 1,
                     "B": torch.rand(1, 3, size, size, generator=g) * 2 - 1}
        if name == "fp32":
            _plain_adam(m)
            if method == "pix2pix":  # (the ResNet generators have no rewritten layers)
                _baseline(m.netG, name)
        counter = {"step": 0}

        def step(m=m, batch=batch, counter=counter) -> object:  # type: ignore[no-untyped-def]
            counter["step"] += 1
            return m.step(batch, counter["step"])

        fns[name] = step
    med = _median_times(fns, reps)
    base = med["fp32"]
    return {k: {"seconds": v, "speedup": base / v} for k, v in med.items()}


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def bench_apply(arch: str, kwargs: dict, size: int, reps: int, variants: List[str],
                device: str = "cpu") -> Dict[str, Dict[str, float]]:
    dev = torch.device(device)
    torch.manual_seed(0)
    G = build(arch, **kwargs).eval().to(dev)
    for p in G.parameters():
        p.requires_grad_(False)
    x = (torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(2)) * 2 - 1).to(dev)
    fns: Dict[str, Callable[[], torch.Tensor]] = {}
    for name in variants:
        if name == "fp32 frozen":
            mult = int(G.pad_multiple)
            pad = -(-size // mult) * mult
            with torch.no_grad():
                plain = _baseline(copy.deepcopy(G), "fp32")
                frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(
                    plain, torch.zeros(1, 3, pad, pad, device=dev))))

            def run_frozen(frozen=frozen, mult=mult) -> torch.Tensor:
                with torch.no_grad():  # same padding/cropping as run_generator (a frozen module has no modes)
                    xp, pads = pad_to_multiple(x, mult, int(getattr(G, "min_input_size", 1)))
                    y = frozen(xp)
                    left, right, top, bottom = pads
                    return y[..., top:y.shape[-2] - bottom, left:y.shape[-1] - right]

            fns[name] = run_frozen
            continue
        if name == "bf16 native+cl":  # what `imgforge ... apply` runs under bf16 on a CPU (Translator)
            net16 = _baseline(inference_copy(G, torch.bfloat16), name).to(memory_format=torch.channels_last)
            x16 = x.contiguous(memory_format=torch.channels_last)

            def run_native(net16=net16, x16=x16) -> torch.Tensor:
                with torch.inference_mode():
                    return run_generator(x16, net16, eval_mode=True, dtype=torch.bfloat16)

            fns[name] = run_native
            continue
        dtype, cl = TRAIN_VARIANTS[name]
        # fp32 rw: what imgforge runs in float32 on a CPU (inference_copy: small feature maps as matrix products)
        net = inference_copy(G) if name == "fp32 rw" else _baseline(copy.deepcopy(G), name)
        xin = x
        if cl:
            net = net.to(memory_format=torch.channels_last)
            xin = x.contiguous(memory_format=torch.channels_last)

        def run(net=net, xin=xin, dtype=dtype) -> torch.Tensor:
            ctx = torch.autocast(dev.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
            with torch.inference_mode(), ctx:
                return run_generator(xin, net, eval_mode=True)

        fns[name] = run
    ref = ((fns["fp32"]() + 1) / 2).clamp(0, 1)
    quality = {k: _psnr(((fn() + 1) / 2).clamp(0, 1), ref) for k, fn in fns.items()}
    med = _median_times(fns, reps, dev)  # type: ignore[arg-type]
    base = med["fp32"]
    return {k: {"seconds": v, "speedup": base / v, "psnr_db": quality[k]} for k, v in med.items()}


def main(argv: Optional[List[str]] = None) -> Dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="intra-op threads")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions per variant (median reported)")
    ap.add_argument("--train-size", type=int, default=256)
    ap.add_argument("--apply-size", type=int, default=512)
    ap.add_argument("--cyclegan", action="store_true", help="also time a CycleGAN training step")
    ap.add_argument("--skip-train", action="store_true")
    ap.add_argument("--skip-apply", action="store_true")
    ap.add_argument("--variants", default="fp32,fp32 rw,fp32+cl,bf16+cl,bf16", help="comma-separated train/apply variants")
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    variants = [v for v in args.variants.split(",") if v]
    if "fp32" not in variants:
        variants.insert(0, "fp32")
    results: Dict[str, object] = {
        "torch": torch.__version__, "threads": args.threads, "cpu_avx512_bf16": "avx512_bf16" in cpu_flags(), "cpu_amx_bf16": cpu_has_amx_bf16(),
        "cpu_amx": "amx_bf16" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else None,
    }
    if not args.skip_train:
        results["train_pix2pix"] = bench_train("pix2pix", args.train_size, args.reps, variants)
        _show(f"pix2pix train step {args.train_size}^2, batch 1", results["train_pix2pix"])  # type: ignore[arg-type]
        if args.cyclegan:
            results["train_cyclegan"] = bench_train("cyclegan", args.train_size, args.reps, variants)
            _show(f"cyclegan train step {args.train_size}^2, batch 1", results["train_cyclegan"])  # type: ignore[arg-type]
    if not args.skip_apply:
        av = variants + ["bf16 native+cl", "fp32 frozen"]
        results["apply_cyclegan"] = bench_apply("resnet_generator", {"ngf": 64, "norm": "instance", "n_blocks": 9},
                                                args.apply_size, args.reps, av)
        _show(f"cyclegan apply (resnet_9blocks) {args.apply_size}^2", results["apply_cyclegan"])  # type: ignore[arg-type]
        results["apply_pix2pix"] = bench_apply("unet_generator", {"ngf": 64, "norm": "batch", "num_downs": 8,
                                                                  "use_dropout": True}, args.apply_size, args.reps, av)
        _show(f"pix2pix apply (unet_256) {args.apply_size}^2", results["apply_pix2pix"])  # type: ignore[arg-type]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return results


def _show(title: str, rows: Dict[str, Dict[str, float]]) -> None:
    print(f"\n{title}")
    for name, r in rows.items():
        q = f"  PSNR {r['psnr_db']:.1f} dB" if "psnr_db" in r else ""
        print(f"  {name:12s} {r['seconds']:8.3f} s  x{r['speedup']:.2f}{q}", flush=True)


if __name__ == "__main__":
    main()
