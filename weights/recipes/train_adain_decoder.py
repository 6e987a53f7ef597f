"""Recipe of ``weights/imgforge-adain-decoder-embedded.safetensors``: an AdaIN decoder for the embedded encoder
(``weights/imgforge-vgg19-embedded.safetensors``, relu4_1), so that ``imgforge stylize --method adain`` works offline
with no published weights.

Method: **layer-wise least squares**, then (optionally) gradient steps with the reference objective.

The decoder mirrors the encoder (conv4_1 ... conv1_1, pools replaced by nearest x2 upsampling). Each decoder
convolution is fitted, in order, by ridge regression from its actual input (the output of the decoder layers fitted
before it, starting from the encoder's relu4_1 of the training images) to the encoder activation it mirrors:
pool3, relu3_3, relu3_2, relu3_1, pool2, relu2_1, pool1, relu1_1 and finally the image (3x3 reflection-padded
patches, 600 random positions per image and layer, ridge 1e-2 x mean diagonal, float64 normal equations). Fitting
on the chained decoder outputs (not the true activations) makes each layer correct the errors of the previous ones.
This takes about 3 minutes on one CPU core and gives a decoder that reconstructs photos (blurry, r² 0.85 on the
pixels of the training images) and applies AdaIN statistics faithfully.

Why not only gradient training (``imgforge adain train``, the reference's loss): within this project's budget
(~15 minutes of 2 shared CPU cores, ~150 steps of batch 4 at 96 px) it was measured to give colour blobs from a
random start (lr 1e-4 to 1e-3, with or without an identity loss), and 30 steps of it at lr 1e-4 starting from the
least-squares decoder degraded it to blobs too; so ``--steps`` defaults to 0. The trainer remains available to
fine-tune on real budgets (``--steps N`` here, or ``imgforge adain train --init-decoder``).

Training data (public domain / CC0, see weights/README.md): content and style images together: ``photos/*``,
``paintings/*`` and ``faces/*`` of the shared data folder (``--data``) and photographs/textures from the
scikit-image wheel (the set of ``train_fast_style.py`` plus brick, grass, gravel), each resized to 128 x 128.
Deterministic (seeded sampling, float64 solves): the same inputs give the same file on the same machine.

Usage::

    pip download --no-deps --only-binary=:all: scikit-image -d /tmp/skw
    OMP_NUM_THREADS=1 python weights/recipes/train_adain_decoder.py --skimage-wheel /tmp/skw/scikit_image-*.whl
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Dict, List

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_fast_style import collect_content  # noqa: E402  (same content set)

STYLE_TEXTURES = ("brick.png", "grass.png", "gravel.png")
#: decoder conv child index -> the encoder activation it reconstructs (the mirror of conv4_1 ... conv1_1)
PLAN = ((1, "pool3"), (5, "relu3_3"), (8, "relu3_2"), (11, "relu3_1"), (14, "pool2"), (18, "relu2_1"),
        (21, "pool1"), (25, "relu1_1"), (28, "image"))


def collect_styles(data: Path, wheel: Path | None, dest: Path) -> Path:
    from PIL import Image

    dest.mkdir(parents=True, exist_ok=True)
    for sub in ("paintings", "faces"):
        for p in sorted((data / sub).iterdir()):
            shutil.copy(p, dest / f"{sub}_{p.name}")
    if wheel is not None:
        with zipfile.ZipFile(wheel) as z:
            for name in STYLE_TEXTURES:
                out = dest / f"skimage_{Path(name).stem}.png"
                if not out.exists():
                    Image.open(io.BytesIO(z.read(f"skimage/data/{name}"))).convert("RGB").save(out)
    return dest


def fitting_setup(a):  # type: ignore[no-untyped-def]
    """The encoder and the fitting images (content + style sets at ``a.size`` px) of the least-squares decoder
    recipes (this one and fit_wct_decoders.py): ``(encoder path, encoder, content dir, style dir, images)``."""
    import torch.nn.functional as F

    from imgforge.hub.modelfile import load_model_file
    from imgforge.io import load_rgb
    from imgforge.hub.encoders import embedded_encoder_path

    enc_path = Path(a.encoder) if a.encoder else embedded_encoder_path()
    encoder, _ = load_model_file(enc_path)
    encoder.eval()
    content = collect_content(a.data, a.skimage_wheel, a.run_dir / "content")
    styles = collect_styles(a.data, a.skimage_wheel, a.run_dir / "styles")
    paths = sorted(content.iterdir()) + sorted(styles.iterdir())
    images = [F.interpolate(load_rgb(p), size=(a.size, a.size), mode="bilinear", align_corners=False,
                            antialias=True).clamp(0, 1) for p in paths]
    return enc_path, encoder, content, styles, images


def lsq_decoder(encoder, images: List, per_image: int = 600, ridge: float = 1e-2, seed: int = 0, log=print):  # type: ignore[no-untyped-def]
    """Fit an AdaINDecoder layer by layer (see the module docstring). ``images``: (1, 3, H, W) in [0, 1]."""
    from imgforge.models.adain import AdaINDecoder
    from imgforge.training.decoder_fit import fit_decoder_lsq

    return fit_decoder_lsq(encoder, AdaINDecoder(), PLAN, "relu4_1", images, per_image=per_image, ridge=ridge,
                           seed=seed, log=log)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="shared data folder")
    ap.add_argument("--skimage-wheel", type=Path, help="scikit-image wheel (extra content and style images)")
    ap.add_argument("--encoder", help="encoder file (default: the embedded encoder in weights/)")
    ap.add_argument("--run-dir", type=Path, default=Path("/tmp/imgforge-adain-decoder"))
    ap.add_argument("--size", type=int, default=128, help="side of the fitting images")
    ap.add_argument("--steps", type=int, default=0, help="gradient steps with the reference loss after the fit")
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--style-weight", type=float, default=1.0)
    ap.add_argument("--out", type=Path, default=REPO / "weights" / "imgforge-adain-decoder-embedded.safetensors")
    a = ap.parse_args()

    import torch

    from imgforge.hub.modelfile import read_model_file, save_model_file
    from imgforge.hub.encoders import EMBEDDED_NAME

    enc_path, encoder, content, styles, images = fitting_setup(a)
    print(f"fitting on {len(images)} images with encoder {enc_path.name}", flush=True)
    torch.manual_seed(0)
    dec = lsq_decoder(encoder, images, log=lambda m: print(m, flush=True))
    init = a.run_dir / "lsq_decoder.safetensors"
    save_model_file(init, dec.state_dict(), arch="adain_decoder", extra={"encoder": EMBEDDED_NAME})
    sd: Dict = dec.state_dict()
    how = f"layer-wise least squares on {len(images)} images at {a.size} px"
    if a.steps:
        from imgforge.training.adain import AdaINTrainConfig, train_adain

        cfg = AdaINTrainConfig(
            content_dirs=(str(content),), style_dirs=(str(styles),), run_dir=str(a.run_dir / "run"),
            vgg=str(enc_path), image_size=96, resize=144, batch_size=4, lr=a.lr, steps=a.steps,
            style_weight=a.style_weight, seed=0, checkpoint_every=25, log_every=5, init_decoder=str(init),
        )
        train_adain(cfg, progress=lambda ev: print(ev.message or f"step {ev.step} {dict(ev.metrics)}", flush=True))
        sd, _ = read_model_file(Path(cfg.run_dir) / "decoder.safetensors")
        how += f", then {a.steps} steps of the reference loss at lr {a.lr}"
    save_model_file(a.out, sd, arch="adain_decoder", extra={
        "name": a.out.stem, "encoder": EMBEDDED_NAME, "recipe": "weights/recipes/train_adain_decoder.py",
        "licence": "CC0-1.0 (weights); fitted on public-domain images only",
        "notes": f"AdaIN decoder for the embedded encoder (relu4_1): {how}",
    })
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
