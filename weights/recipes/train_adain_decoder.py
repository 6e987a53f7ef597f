"""Recipe of ``weights/imgforge-adain-decoder-embedded.safetensors``: an AdaIN decoder for the embedded encoder
(``weights/imgforge-vgg19-embedded.safetensors``, relu4_1), so that ``imgforge stylize --method adain`` works offline
with no published weights.

Method: **layer-wise least squares**, then gradient steps with the reference objective. The shipped file is
the output of both stages: this recipe's least-squares fit (``--steps 0``, the file shipped before), then 8,093
steps on an NVIDIA H200 (the GPU command below, 350 s, style weight 10, identity weight 100; held-out style / content
distance 4.43x / 1.19x -> 1.69x / 1.22x Gatys, benchmarks/results/adain_retrain.md), stored in float16.

The decoder mirrors the encoder (conv4_1 ... conv1_1, pools replaced by nearest x2 upsampling). Each decoder
convolution is fitted, in order, by ridge regression from its actual input (the output of the decoder layers fitted
before it, starting from the encoder's relu4_1 of the training images) to the encoder activation it mirrors:
pool3, relu3_3, relu3_2, relu3_1, pool2, relu2_1, pool1, relu1_1 and finally the image (3x3 reflection-padded
patches, 600 random positions per image and layer, ridge 1e-2 x mean diagonal, float64 normal equations). Fitting
on the chained decoder outputs (not the true activations) makes each layer correct the errors of the previous ones.
This takes about 3 minutes on one CPU core and gives a decoder that reconstructs photos (blurry, r² 0.85 on the
pixels of the training images) and applies AdaIN statistics faithfully, but its styled images are muddy.

Why the fit first: within a CPU budget (~15 minutes of 2 shared cores, ~150 steps of batch 4 at 96 px) gradient
training with the reference loss gave colour blobs from a random start (lr 1e-4 to 1e-3, with or without an
identity loss), and 30 steps of it at lr 1e-4 and no warm-up degraded the least-squares decoder to blobs too. With
a warm-up, lr 3e-5 and an identity loss (``--identity-weight``: pixel MSE of the decoded content, which keeps the
decoder reconstructing) it improves on the fit (CPU probes: benchmarks/results/adain_retrain_cpu_probes.md), and a
few thousand GPU steps give the shipped decoder. ``--steps`` defaults to 0 (the fit only).

Training data (public domain / CC0, see weights/README.md): content and style images together: ``photos/*``,
``paintings/*`` and ``faces/*`` of the shared data folder (``--data``) and photographs/textures from the
scikit-image wheel (the set of ``train_fast_style.py`` plus brick, grass, gravel), each resized to 128 x 128.
Deterministic (seeded sampling, float64 solves): the same inputs give the same file on the same machine.

Usage::

    pip download --no-deps --only-binary=:all: scikit-image -d /tmp/skw
    OMP_NUM_THREADS=1 python weights/recipes/train_adain_decoder.py --skimage-wheel /tmp/skw/scikit_image-*.whl

Gradient training from the least-squares decoder on a GPU for a fixed wall time (issue 16 item 7): the reference
loss plus the identity loss with a learning-rate warm-up (Adam's first updates are ~lr in every weight; at lr 1e-4
with no warm-up the loss of the fitted decoder rose 600x at step 2), the decoder written at the step reached when
``--max-seconds`` expires. The shipped file came from exactly this command (``--init-decoder``: the least-squares
file, which was the shipped one then; one NVIDIA H200 shared with other runs, 8,093 steps in 350 s, bf16)::

    python weights/recipes/train_adain_decoder.py --init-decoder weights/imgforge-adain-decoder-embedded.safetensors \
        --content-dir .gpu/adain_data/content --style-dir .gpu/adain_data/styles --run-dir /tmp/r4/style/sw10-id100 \
        --steps 1000000 --max-seconds 350 --device cuda --image-size 128 --resize 160 --batch-size 8 --lr 3e-5 \
        --warmup-steps 300 --style-weight 10 --identity-weight 100 --checkpoint-every 1000 --log-every 100 --half \
        --out /tmp/r4/style/dec/adain-sw10-id100.safetensors

(``--style-weight 40`` in a parallel run was worse: 1.93x / 1.48x.) To repeat it from scratch, first write the
least-squares file (the Usage command with ``--out /tmp/lsq.safetensors``) and pass it to ``--init-decoder``.

``.gpu/adain_data/content``: the fast-style content set (``train_fast_style.py --collect-only``, 18 images; the
evaluation photos chelsea, astronaut, coffee held out); ``.gpu/adain_data/styles``: the 4 shared paintings, the 2
faces and the brick/grass/gravel textures (9 images). Compare against the shipped file with ``benchmarks/style_family_eval.py --adain LABEL=FILE``.
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

from train_fast_style import collect_content, progress_printer, recipe_runtime  # noqa: E402  (same content set, runtime, timer)

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
    ap.add_argument("--init-decoder", type=Path,
                    help="skip the least-squares fit: start the gradient steps from this decoder file (e.g. the "
                         "shipped one)")
    ap.add_argument("--content-dir", type=Path, help="with --init-decoder: content training images (default: the "
                                                     "fitting set collected from --data)")
    ap.add_argument("--style-dir", type=Path, help="with --init-decoder: style training images")
    ap.add_argument("--image-size", type=int, default=96, help="random crop side of the gradient steps")
    ap.add_argument("--resize", type=int, default=144, help="images are resized to this square first")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr-decay", type=float, default=5e-5)
    ap.add_argument("--warmup-steps", type=int, default=0, help="see AdaINTrainConfig.warmup_steps")
    ap.add_argument("--identity-weight", type=float, default=0.0, help="see AdaINTrainConfig.identity_weight")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps")
    ap.add_argument("--precision", help="autocast precision (default: fp32 on the CPU, the training policy's "
                                        "'auto' elsewhere)")
    ap.add_argument("--checkpoint-every", type=int, default=25)
    ap.add_argument("--log-every", type=int, default=5)
    ap.add_argument("--max-seconds", type=float, help="stop the gradient steps gracefully after this long (as "
                                                      "SIGTERM: the step finishes, checkpoint + decoder written) "
                                                      "and still write --out")
    ap.add_argument("--half", action="store_true", help="write --out in float16 (half the size; the loader reads it "
                                                        "back as float32)")
    ap.add_argument("--out", type=Path, default=REPO / "weights" / "imgforge-adain-decoder-embedded.safetensors")
    a = ap.parse_args()

    import torch

    from imgforge.hub.modelfile import read_model_file, save_model_file
    from imgforge.hub.encoders import EMBEDDED_NAME, embedded_encoder_path

    if a.init_decoder is not None:  # fine-tune an existing decoder: no fit, no data collection from --data
        enc_path = Path(a.encoder) if a.encoder else embedded_encoder_path()
        content = a.content_dir or collect_content(a.data, a.skimage_wheel, a.run_dir / "content")
        styles = a.style_dir or collect_styles(a.data, a.skimage_wheel, a.run_dir / "styles")
        init = a.init_decoder
        sd, init_meta = read_model_file(init)
        how = init_meta.get("notes", f"started from {init.name}").split(": ", 1)[-1]
        if not a.steps:
            ap.error("--init-decoder needs --steps")
    else:
        enc_path, encoder, content, styles, images = fitting_setup(a)
        print(f"fitting on {len(images)} images with encoder {enc_path.name}", flush=True)
        torch.manual_seed(0)
        dec = lsq_decoder(encoder, images, log=lambda m: print(m, flush=True))
        init = a.run_dir / "lsq_decoder.safetensors"
        save_model_file(init, dec.state_dict(), arch="adain_decoder", extra={"encoder": EMBEDDED_NAME})
        sd = dec.state_dict()
        how = f"layer-wise least squares on {len(images)} images at {a.size} px"
    if a.steps:
        from imgforge.training.adain import AdaINTrainConfig, train_adain
        from imgforge.training.loop import Interrupted

        rt = recipe_runtime(a.device, a.precision)
        cfg = AdaINTrainConfig(
            content_dirs=(str(content),), style_dirs=(str(styles),), run_dir=str(a.run_dir / "run"),
            vgg=str(enc_path), image_size=a.image_size, resize=a.resize, batch_size=a.batch_size, lr=a.lr,
            lr_decay=a.lr_decay, steps=a.steps, style_weight=a.style_weight, seed=0,
            checkpoint_every=a.checkpoint_every, log_every=a.log_every, init_decoder=str(init),
            identity_weight=a.identity_weight, warmup_steps=a.warmup_steps, device=str(rt.device) if rt is not None else "cpu",
        )
        show, cancel = progress_printer(a.max_seconds)  # --max-seconds: as SIGTERM (step, checkpoint, decoder)
        try:
            train_adain(cfg, runtime=rt, progress=show)
        except Interrupted as exc:
            print(f"interrupted: {exc}", flush=True)
        finally:
            cancel()
        sd, meta = read_model_file(Path(cfg.run_dir) / "decoder.safetensors")
        how += (f", then {meta.get('steps', a.steps)} steps of the reference loss (batch {a.batch_size}, "
                f"{a.image_size} px crops, style weight {a.style_weight:g}, lr {a.lr:g}, warm-up {a.warmup_steps}"
                + (f", identity weight {a.identity_weight:g}" if a.identity_weight else "") + ")")
    save_model_file(a.out, sd, arch="adain_decoder", dtype=torch.float16 if a.half else None, extra={
        "name": a.out.stem, "encoder": EMBEDDED_NAME, "recipe": "weights/recipes/train_adain_decoder.py",
        "licence": "CC0-1.0 (weights); " + ("fitted and trained" if a.steps else "fitted") + " on public-domain / CC0 images only",
        "notes": f"AdaIN decoder for the embedded encoder (relu4_1): {how}",
    })
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
