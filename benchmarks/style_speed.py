"""Stylize throughput of fast style and AdaIN: imgforge's inference path against a plain fp32 eager baseline of the
same networks, in the same run.

- baseline: the ``nn.Module`` forward in float32, NCHW, under ``torch.no_grad()`` (the reference code's way);
- fast path: imgforge's inference forward (:mod:`imgforge.methods.style_fastpath`: fused instance norm, sub-pixel
  upsampling convolutions, in-place ReLUs), channels_last, ``torch.inference_mode()``, in float32 ("fast-fp32")
  and under the runtime's autocast ("fast-auto": bf16 where :func:`imgforge.runtime.resolve_precision` picks it;
  "fast-bf16": bf16 autocast forced, to measure it on CPUs where ``auto`` stays fp32).

For each network, size and variant a fresh subprocess runs ``--repeat`` timed passes after one warm-up pass and
reports images/s (best pass), its peak resident memory (ru_maxrss) and, for the fast variants, the PSNR of its
output (as an image in [0, 1]) against the baseline's. Weights: ``--model`` (fast) and ``--encoder/--decoder``
(AdaIN) as for ``imgforge stylize``; default the shipped ones (random weights with ``--random``, which only matters
for PSNR). Content: a photo resized to the size (``--content``).

    OMP_NUM_THREADS=1 python benchmarks/style_speed.py --sizes 512 1024 --out benchmarks/results/style_speed.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("IMGFORGE_DATA_DIR", REPO.parent / "shared" / "data"))


def _content(path: str, size: int):  # type: ignore[no-untyped-def]
    import torch.nn.functional as F

    from imgforge.io import load_rgb

    x = load_rgb(path)
    return F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def _nets(a: argparse.Namespace, method: str):  # type: ignore[no-untyped-def]
    import torch

    if method == "fast":
        from imgforge.models.fast_style import TransformerNet
        from imgforge.jobs.stylize import load_fast_model

        if a.random:
            torch.manual_seed(0)
            return TransformerNet().eval(), None
        return load_fast_model(a.model)[0], None
    from imgforge.jobs.stylize import load_adain_pair

    if a.random:
        from imgforge.models.adain import AdaINDecoder
        from imgforge.models.vgg import vgg19

        torch.manual_seed(0)
        return vgg19(last_layer="relu4_1").eval(), AdaINDecoder().eval()
    enc, dec, _ = load_adain_pair(a.encoder, a.decoder)
    return enc, dec


def run_one(a: argparse.Namespace) -> dict:
    """One (method, size, variant) measurement in this process."""
    import torch

    from imgforge.jobs.stylize import _pad8
    from imgforge.methods.style_fastpath import DecoderForward, FastStyleForward
    from imgforge.runtime import Runtime

    dev = torch.device(getattr(a, "device", None) or "cpu")
    torch.manual_seed(0)
    x = _content(a.content, a.size).to(dev)
    net, dec = _nets(a, a.method)
    net = net.to(dev)
    dec = dec.to(dev) if dec is not None else None
    rt = Runtime.create(str(dev), {"baseline": "fp32", "fast-fp32": "fp32", "fast-bf16": "bf16",
                                   "fast-fp16": "fp16"}.get(a.variant, "auto"))
    style = _content(a.content2, 256).to(dev) if a.method == "adain" else None

    if a.method == "fast":
        if a.variant == "baseline":
            def fn():  # type: ignore[no-untyped-def]
                with torch.no_grad():
                    return (net(x * 255.0) / 255.0).clamp(0, 1)
        else:
            fwd = FastStyleForward(net, channels_last=True, unit=True, native_dtype=rt.native_dtype)

            def fn():  # type: ignore[no-untyped-def]
                with torch.inference_mode(), rt.autocast():
                    return fwd(x).float().clamp(0, 1)
    else:
        from imgforge.ops.stats import adain

        def enc_of(model):  # type: ignore[no-untyped-def]
            pad = _pad8(model)

            def e(t):  # type: ignore[no-untyped-def]
                if pad and (t.shape[-1] % 8 or t.shape[-2] % 8):
                    t = torch.nn.functional.pad(t, (0, -t.shape[-1] % 8, 0, -t.shape[-2] % 8), mode="reflect")
                return model(t, ("relu4_1",))["relu4_1"]
            return e

        if a.variant == "baseline":
            e = enc_of(net)
            with torch.no_grad():
                sf = e(style)

            def fn():  # type: ignore[no-untyped-def]
                with torch.no_grad():
                    return dec(adain(e(x), sf)).clamp(0, 1)
        else:
            enc = rt.prepare(net)
            e = enc_of(enc)
            dfw = DecoderForward(dec, channels_last=True, native_dtype=rt.native_dtype)
            with torch.inference_mode(), rt.autocast():
                sf = e(rt.to_input(style)).float()

            def fn():  # type: ignore[no-untyped-def]
                with torch.inference_mode():
                    with rt.autocast():
                        f = e(rt.to_input(x)).float()
                        out = dfw(adain(f, sf))
                    return out.float().clamp(0, 1)

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    out = fn()  # warm-up
    sync()
    times = []
    for _ in range(a.repeat):
        t0 = time.perf_counter()
        out = fn()
        sync()
        times.append(time.perf_counter() - t0)
    torch.save(out.float().cpu().contiguous(), a.save)
    return {"method": a.method, "size": a.size, "variant": a.variant, "precision": rt.precision_name,
            "seconds": min(times), "images_per_s": 1.0 / min(times), "threads": torch.get_num_threads(),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def psnr(a, b) -> float:  # type: ignore[no-untyped-def]
    mse = float(((a.float() - b.float()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    ap.add_argument("--methods", nargs="+", default=["fast", "adain"])
    ap.add_argument("--variants", nargs="+", default=["baseline", "fast-fp32", "fast-auto"])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--content", default=str(DATA / "photos" / "astronaut.png"))
    ap.add_argument("--content2", default=str(DATA / "paintings" / "starry_night.jpg"),
                    help="AdaIN style image")
    ap.add_argument("--model"), ap.add_argument("--encoder"), ap.add_argument("--decoder")
    ap.add_argument("--random", action="store_true", help="random weights instead of the shipped ones")
    ap.add_argument("--out", type=Path, help="also write the table (markdown) and the raw JSON next to it")
    ap.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--method", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--save", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(run_one(a)))
        return

    import torch

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for method in a.methods:
            for size in a.sizes:
                outs = {}
                for variant in a.variants:
                    save = str(Path(tmp) / f"{method}_{size}_{variant}.pt")
                    cmd = [sys.executable, __file__, "--one", "--method", method, "--size", str(size), "--variant",
                           variant, "--save", save, "--repeat", str(a.repeat), "--content", a.content,
                           "--content2", a.content2]
                    for k in ("model", "encoder", "decoder"):
                        if getattr(a, k):
                            cmd += [f"--{k}", getattr(a, k)]
                    if a.random:
                        cmd.append("--random")
                    res = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
                    if res.returncode:
                        sys.exit(f"{method} {size} {variant} failed:\n{res.stderr}")
                    row = json.loads(res.stdout.strip().splitlines()[-1])
                    outs[variant] = torch.load(save)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                base = outs.get("baseline")
                for row in rows:
                    if row["method"] == method and row["size"] == size and base is not None:
                        b = next(r for r in rows if r["method"] == method and r["size"] == size and r["variant"] == "baseline")
                        row["speedup"] = row["images_per_s"] / b["images_per_s"]
                        row["psnr_db"] = psnr(outs[row["variant"]], base)
    lines = ["| method | size | variant | precision | threads | images/s | speedup | PSNR vs fp32 (dB) | peak RSS (MB) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p = r.get("psnr_db", float("nan"))
        lines.append(f"| {r['method']} | {r['size']}² | {r['variant']} | {r['precision']} | {r['threads']} | "
                     f"{r['images_per_s']:.3f} | {r.get('speedup', float('nan')):.2f}x | "
                     f"{'inf' if p == float('inf') else f'{p:.1f}'} | {r['peak_rss_mb']:.0f} |")
    table = "\n".join(lines)
    print(table)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(table + "\n")
        a.out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
