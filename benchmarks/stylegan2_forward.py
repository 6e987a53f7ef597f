"""StyleGAN2 generator forward speed on this machine: fp32 eager baseline vs the faster inference settings.

Random weights with the published FFHQ config-f widths (style_dim 512, 8 mapping layers, channel_multiplier 2);
noise strengths set to 0.1 so that the noise path is exercised. Modes, measured interleaved in the same run so that
a shared/noisy machine affects them alike:

* ``fp32_eager``: ``torch.no_grad()``, float32, NCHW, grouped ("fused") modulated conv (the reference setting);
* ``fast_fp32``: ``torch.inference_mode()``, channels_last input, grouped modulated conv;
* ``fast_bf16``: as ``fast_fp32`` under ``torch.autocast("cpu", dtype=torch.bfloat16)`` (style path stays fp32).

PSNR is of each mode's images against ``fp32_eager``'s, over the data range [-1, 1] (peak-to-peak 2).

    python benchmarks/stylegan2_forward.py --sizes 256 1024 --batch 1 --rounds 2

Measured on the development machine (AMD EPYC with AVX512-BF16 but no AMX, 2 shared cores, torch 2.13, batch 1,
--threads 1, 2026-12-03): 256 px 0.88 / 0.92 / 1.50 img/s and 1024 px 0.28 / 0.29 / 0.42 img/s (best of 2) for
fp32_eager / fast_fp32 / fast_bf16, bf16 PSNR 44-45 dB (benchmarks/results/stylegan2_forward.md). An earlier run
under heavier load measured bf16 slower than fp32 at 256 px: compare modes within one run only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imgforge.models.stylegan2 import Generator  # noqa: E402

MODES = ("fp32_eager", "fast_fp32", "fast_bf16")


def cpu_flags() -> str:
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    return ",".join(f for f in ("avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags) or "none"


def make_runner(G: Generator, z: torch.Tensor, mode: str) -> Callable[[], torch.Tensor]:
    def run() -> torch.Tensor:
        G.set_fused_modconv(True)
        if mode == "fp32_eager":
            G.memory_format = torch.contiguous_format
            with torch.no_grad():
                return G(z)
        G.memory_format = torch.channels_last
        amp = (torch.autocast("cpu", dtype=torch.bfloat16) if mode == "fast_bf16" else contextlib.nullcontext())
        with torch.inference_mode(), amp:
            return G(z).float()

    return run


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = (a.double() - b.double()).pow(2).mean().item()
    return float("inf") if mse == 0 else 10 * math.log10(4.0 / mse)


def bench(size: int, batch: int, rounds: int, modes: List[str]) -> Dict[str, Dict[str, float]]:
    torch.manual_seed(0)
    G = Generator(size, 512, 8, channel_multiplier=2).eval().requires_grad_(False)
    for m in G.modules():
        if m.__class__.__name__ == "NoiseInjection":
            m.weight.fill_(0.1)
    z = torch.randn(batch, G.z_dim, generator=torch.Generator().manual_seed(1))
    runners = {m: make_runner(G, z, m) for m in modes}
    outs = {m: runners[m]() for m in modes}  # warm-up (oneDNN primitive creation) + outputs for PSNR
    times: Dict[str, List[float]] = {m: [] for m in modes}
    for _ in range(rounds):
        for m in modes:
            t0 = time.perf_counter()
            runners[m]()
            times[m].append(time.perf_counter() - t0)
    res: Dict[str, Dict[str, float]] = {}
    ref = outs.get("fp32_eager")
    for m in modes:
        best, med = min(times[m]), statistics.median(times[m])
        res[m] = {"img_per_s_best": batch / best, "img_per_s_median": batch / med, "s_per_batch_best": best}
        if ref is not None:
            res[m]["psnr_vs_fp32_db"] = psnr(outs[m], ref)
            res[m]["max_abs_vs_fp32"] = (outs[m] - ref).abs().max().item()
    return res


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=2, help="timed forwards per mode (after one warm-up)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave the default)")
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu_flags": cpu_flags(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "batch": args.batch, "rounds": args.rounds}
    print(json.dumps(info))
    results: Dict[str, object] = {"info": info}
    for size in args.sizes:
        res = bench(size, args.batch, args.rounds, args.modes)
        results[str(size)] = res
        base = res.get("fp32_eager", {}).get("img_per_s_best")
        for m, r in res.items():
            speed = f" x{r['img_per_s_best'] / base:.2f}" if base else ""
            extra = (f"  PSNR {r['psnr_vs_fp32_db']:.1f} dB  max|d| {r['max_abs_vs_fp32']:.2e}"
                     if "psnr_vs_fp32_db" in r else "")
            print(f"{size:5d}px  {m:10s}  {r['img_per_s_best']:7.3f} img/s (best)  "
                  f"{r['img_per_s_median']:7.3f} (median){speed}{extra}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
