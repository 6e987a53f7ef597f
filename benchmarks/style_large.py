"""Large images with fast style and AdaIN: peak memory and time through the CLI, and seam visibility.

1. ``--size`` (default 8192): a photo upscaled to ``size x size`` is written as PNG, then
   ``imgforge stylize --method fast`` and ``--method adain`` run on it in child processes; their peak resident
   memory (``ru_maxrss`` of the child, from ``wait4``) and wall time are reported. Memory is bounded by the tile
   size plus the float32 input and output images (2 x 0.8 GB at 8192²).
2. Seams at ``--seam-size`` (default 1024): the same photo at 1024² is stylised untiled and in tiles (``--seam-tile``,
   default 512), and for every tile boundary the mean absolute difference to the untiled result over a band of +-2 px
   around the cut is measured (in grey levels, 0..255); the largest is reported with the image-wide mean. Fast style:
   InstanceNorm statistics from the whole image (thumbnail = image) and from a 1/4-size thumbnail; AdaIN: exact
   tile-accumulated statistics and thumbnail statistics.

    OMP_NUM_THREADS=1 python benchmarks/style_large.py --out benchmarks/results/style_large.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("IMGFORGE_DATA_DIR", REPO.parent / "shared" / "data"))


def make_big(src: Path, size: int, dest: Path) -> Path:
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None
    Image.open(src).convert("RGB").resize((size, size), Image.BICUBIC).save(dest, compress_level=1)
    return dest


def run_cli(args: list) -> dict:
    """Run ``python -m imgforge ARGS`` and return wall time and the child's peak RSS."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "IMGFORGE_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "imgforge", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    if code:
        sys.exit(f"imgforge {' '.join(args)} failed ({code}):\n{err}")
    return {"seconds": wall, "peak_rss_gb": usage.ru_maxrss / 1024 ** 2}


def seams(content: Path, size: int, tile: int, a: argparse.Namespace) -> list:
    import torch
    import torch.nn.functional as F

    from imgforge.io import load_rgb
    from imgforge.jobs.stylize import _AdainRunner, load_fast_model
    from imgforge.methods.style_fastpath import FastStyleForward
    from imgforge.methods.style_tiles import fast_tiled, seam_difference
    from imgforge.ops.tiling import plan_tiles
    from imgforge.jobs.stylize import StylizeJob
    from imgforge.batch import SaveOptions
    from imgforge.runtime import Runtime

    x = F.interpolate(load_rgb(content), size=(size, size), mode="bicubic", align_corners=False,
                      antialias=True).clamp(0, 1)
    rows = []
    rt = Runtime.create("cpu", a.precision)
    net, _ = load_fast_model(a.model)
    fwd = FastStyleForward(net, unit=True, native_dtype=rt.native_dtype)
    with torch.inference_mode(), rt.autocast():
        ref = fwd(x).float().clamp(0, 1)
        for thumb in (size, size // 4):
            out = fast_tiled(fwd, x, tile=tile, thumb=thumb).float().clamp(0, 1)
            worst, mean = seam_difference(out * 255, ref * 255, plan_tiles(size, size, tile, 4, 32, 64))
            rows.append({"method": "fast", "statistics": f"thumbnail {thumb}px" + (" (= whole image)" if thumb == size else ""),
                         "seam_max_gl": worst, "mean_gl": mean})
    from imgforge.methods.style_tiles import adain_tiled

    job = StylizeJob(styles=(str(a.style),), method="adain", encoder=a.encoder, decoder=a.decoder, tile=0)
    runner = _AdainRunner(job, rt, SaveOptions(), None)
    with torch.inference_mode():
        ref = runner(x, "seams") * 255
        for stats, thumb in (("exact", size), ("thumbnail", size // 4)):
            with rt.autocast():
                out = adain_tiled(runner.encode, runner.decoder, x, runner.style_stats, tile=tile, stats=stats,
                                  thumb=thumb).float().clamp(0, 1) * 255
            worst, mean = seam_difference(out, ref, plan_tiles(size, size, tile, 8, 32, 64))
            label = "exact (tile-accumulated)" if stats == "exact" else f"thumbnail {thumb}px"
            rows.append({"method": "adain", "statistics": label, "seam_max_gl": worst, "mean_gl": mean})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=8192)
    ap.add_argument("--content", type=Path, default=DATA / "photos" / "astronaut.png")
    ap.add_argument("--style", type=Path, default=DATA / "paintings" / "starry_night.jpg")
    ap.add_argument("--model"), ap.add_argument("--encoder"), ap.add_argument("--decoder")
    ap.add_argument("--tile", type=int, default=1024)
    ap.add_argument("--adain-stats", default="thumbnail", help="--tile-stats for the large AdaIN run")
    ap.add_argument("--seam-size", type=int, default=1024)
    ap.add_argument("--seam-tile", type=int, default=512)
    ap.add_argument("--methods", nargs="+", default=["fast", "adain"], help="large runs to do")
    ap.add_argument("--skip-large", action="store_true")
    ap.add_argument("--skip-seams", action="store_true")
    ap.add_argument("--precision", default="fp32", help="auto | fp32 | bf16 (--precision of the CLI runs and the seams)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    results: dict = {}
    if not a.skip_large:
        with tempfile.TemporaryDirectory() as tmp:
            big = make_big(a.content, a.size, Path(tmp) / "big.png")
            common = ["--precision", a.precision, "--quiet", "stylize", str(big), "--tile", str(a.tile), "--overwrite"]
            fast = ["--method", "fast"] + (["--model", a.model] if a.model else [])
            adain = ["--method", "adain", "--style", str(a.style), "--tile-stats", a.adain_stats]
            adain += (["--encoder", a.encoder] if a.encoder else []) + (["--decoder", a.decoder] if a.decoder else [])
            for name, extra in (("fast", fast), ("adain", adain)):
                if name not in a.methods:
                    continue
                out = Path(tmp) / f"{name}.png"
                r = run_cli([*common, *extra, "-o", str(out)])
                from PIL import Image

                Image.MAX_IMAGE_PIXELS = None
                with Image.open(out) as im:
                    r["output_size"] = list(im.size)
                    im.resize((512, 512), Image.BILINEAR).save(Path(tmp) / f"{name}_small.png")
                results[name] = r
                print(name, json.dumps(r), flush=True)
    if not a.skip_seams:
        results["seams"] = seams(a.content, a.seam_size, a.seam_tile, a)
        for r in results["seams"]:
            print(json.dumps(r), flush=True)
    lines = []
    for name in ("fast", "adain"):
        if name in results:
            r = results[name]
            lines.append(f"- {name}: {a.size}x{a.size} in {r['seconds']:.0f} s, peak RSS {r['peak_rss_gb']:.2f} GB "
                         f"(tile {a.tile}{', ' + a.adain_stats + ' statistics' if name == 'adain' else ''})")
    if "seams" in results:
        lines += ["", f"Seams at {a.seam_size}² (tile {a.seam_tile}): mean |tiled - untiled| in grey levels",
                  "", "| method | statistics | largest over a tile boundary (±2 px) | whole image |", "|---|---|---|---|"]
        lines += [f"| {r['method']} | {r['statistics']} | {r['seam_max_gl']:.3f} | {r['mean_gl']:.3f} |"
                  for r in results["seams"]]
    text = "\n".join(lines)
    print(text)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text + "\n")
        a.out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
