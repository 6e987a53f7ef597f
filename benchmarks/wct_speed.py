"""WCT speed on large images: imgforge's ``wct_stylize`` (float64 eigendecomposition, style statistics computed once,
whole image or in tiles) against a plain fp32 implementation of the reference algorithm (PytorchWCT's
``whiten_and_color``: per level, fp32 SVD of the content and the style covariance, recomputed every call, whole
image), in the same process, with the same encoder and decoders (the shipped embedded encoder + fitted decoders).

Reports seconds per image (best of ``--repeat``), and for the tiled run the mean and the worst-seam difference
(grey levels, 0..255) against imgforge's whole-image output (``seam_difference``) and the plain run's PSNR vs it.

    python benchmarks/wct_speed.py --sizes 512 1024 --tile 512 --out benchmarks/results/wct_speed.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("IMGFORGE_DATA_DIR", REPO.parent / "shared" / "data"))


def plain_wct(cf, sf, alpha=1.0):  # type: ignore[no-untyped-def]
    """The reference's whiten_and_color in fp32: (C, N) content, (C, M) style features."""
    import torch

    c_mean = cf.mean(1, keepdim=True)
    cf = cf - c_mean
    c_u, c_e, _ = torch.linalg.svd(cf @ cf.T / (cf.shape[1] - 1))
    k_c = int((c_e >= 1e-5).sum())
    s_mean = sf.mean(1, keepdim=True)
    sf = sf - s_mean
    s_u, s_e, _ = torch.linalg.svd(sf @ sf.T / (sf.shape[1] - 1))
    k_s = int((s_e >= 1e-5).sum())
    white = c_u[:, :k_c] @ torch.diag(c_e[:k_c].rsqrt()) @ (c_u[:, :k_c].T @ cf)
    out = s_u[:, :k_s] @ torch.diag(s_e[:k_s].sqrt()) @ (s_u[:, :k_s].T @ white) + s_mean
    return alpha * out + (1 - alpha) * (cf + c_mean)


def plain_stylize(content, style, enc, dec, levels):  # type: ignore[no-untyped-def]
    import torch.nn.functional as F

    x = content
    for lv in levels:
        name = f"relu{lv}_1"
        fc, fs = enc(x, [name])[name], enc(style, [name])[name]
        out = plain_wct(fc[0].flatten(1), fs[0].flatten(1)).reshape(fc.shape)
        x = dec[lv](out)
        if x.shape[2:] != content.shape[2:]:
            x = F.interpolate(x, size=content.shape[2:], mode="bilinear", align_corners=False)
    return x


def main() -> None:
    import torch
    import torch.nn.functional as F

    from imgforge.io import load_rgb
    from imgforge.jobs.stylize_wct import load_wct_models
    from imgforge.methods.style_tiles import seam_difference
    from imgforge.methods.wct import style_stats, wct_stylize
    from imgforge.ops.tiling import plan_tiles
    from imgforge.methods.wct import TILE_ALIGN

    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--content", default=str(DATA / "photos" / "chelsea.png"))
    p.add_argument("--style", default=str(DATA / "paintings" / "starry_night.jpg"))
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "wct_speed.md"))
    a = p.parse_args()
    enc, dec, desc = load_wct_models(None, None)
    enc, dec = enc.eval(), dec.eval()
    levels = tuple(sorted(dec.levels, reverse=True))
    style = F.interpolate(load_rgb(a.style), size=(512, 512), mode="bicubic", antialias=True).clamp(0, 1)
    rows = []
    with torch.inference_mode():
        for size in a.sizes:
            c = F.interpolate(load_rgb(a.content), size=(size, size), mode="bicubic", antialias=True).clamp(0, 1)

            def best(fn):  # type: ignore[no-untyped-def]
                ts, out = [], None
                for _ in range(a.repeat):
                    t0 = time.perf_counter()
                    out = fn()
                    ts.append(time.perf_counter() - t0)
                return min(ts), out

            t_plain, o_plain = best(lambda: plain_stylize(c, style, enc, dec, levels))

            def ours(tile):  # type: ignore[no-untyped-def]
                st = style_stats([style], enc, levels)  # once per run (a batch reuses it); counted here
                return wct_stylize(c, [style], enc, dec, levels=levels, stats=st, tile=tile)

            t_whole, o_whole = best(lambda: ours(0))
            t_tiled, o_tiled = best(lambda: ours(a.tile))
            tiles = plan_tiles(size, size, a.tile, TILE_ALIGN, 32, 64)
            q = lambda t: (t.clamp(0, 1) * 255).round()  # noqa: E731
            seam, mean = seam_difference(q(o_tiled), q(o_whole), tiles)
            mse = float(((o_plain.clamp(0, 1) - o_whole.clamp(0, 1)) ** 2).mean())
            rows.append({"size": size, "plain_fp32_s": round(t_plain, 2), "imgforge_whole_s": round(t_whole, 2),
                         "imgforge_tiled_s": round(t_tiled, 2), "tiles": len(tiles), "tile": a.tile,
                         "tiled_vs_whole_mean_grey": round(mean, 2), "tiled_vs_whole_worst_seam_grey": round(seam, 2),
                         "plain_vs_imgforge_psnr_db": round(10 * math.log10(1 / max(mse, 1e-12)), 1)})
            print(rows[-1], flush=True)
    load = os.getloadavg()
    meta = {"models": desc, "levels": levels, "threads": torch.get_num_threads(), "loadavg": load,
            "content": Path(a.content).name, "style": Path(a.style).name + " at 512x512", "repeat": a.repeat}
    out = Path(a.out)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [f"# WCT speed (CPU, {torch.get_num_threads()} threads, load average {load[0]:.1f}: a shared 2-core "
             f"machine, times are indicative)", "", f"{desc}; levels {levels}; content {meta['content']}, style "
             f"{meta['style']}; best of {a.repeat}.", "",
             "| size | plain fp32 (s) | imgforge whole (s) | imgforge tiled (s) | tiles | tiled vs whole: mean / worst "
             "seam (grey levels) | plain vs imgforge PSNR (dB) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['size']}² | {r['plain_fp32_s']} | {r['imgforge_whole_s']} | {r['imgforge_tiled_s']} | "
                     f"{r['tiles']} x {r['tile']} px | {r['tiled_vs_whole_mean_grey']} / "
                     f"{r['tiled_vs_whole_worst_seam_grey']} | {r['plain_vs_imgforge_psnr_db']} |")
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
