"""Recipe of ``weights/imgforge-fast-starry-night.safetensors``: a fast-style TransformerNet for van Gogh's
*The Starry Night* (1889, public domain), trained with the embedded encoder as the loss network.

Training data (all public domain / CC0, see weights/README.md):

- style: ``paintings/starry_night.jpg`` of the shared data folder (``--data``);
- content: ``photos/*`` of the shared data folder, plus the photographs and textures shipped inside the
  scikit-image wheel (``skimage/data``: brick, grass, gravel, hubble_deep_field, motorcycle_left/right, retina,
  ihc, coins, moon, ...), read from the wheel file without installing it.

Budget (the machine has 2 shared CPU cores): 96 px random crops of images resized to 144 px, batch 4, ``--steps``
(default 200) Adam steps at lr 2e-3, about 15 minutes with one intra-op thread on the shared machine. The reference
(pytorch/examples) trains 2 epochs of COCO at 256 px (~40k steps) at lr 1e-3 with an ImageNet VGG-16; this network is
correspondingly rougher. Loss weights differ from the reference's 1e5 / 1e10 because the embedded encoder's
activations have another scale: content 1, style 3e4 (the photo-vs-painting Gram gap then weighs ~20x a visible
content change). ``warm_output`` starts the last convolution at the content images' mean colour (PyTorch's default
init outputs black, which Adam needs thousands of steps to lift; measured: 40 steps without it give a dark field). Everything is seeded: the same command on the same machine and thread count
gives the same file. It can be stopped and run again: training resumes exactly from the last checkpoint.

Usage::

    pip download --no-deps --only-binary=:all: scikit-image -d /tmp/skw
    OMP_NUM_THREADS=1 python weights/recipes/train_fast_style.py --skimage-wheel /tmp/skw/scikit_image-*.whl
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

#: Photographs and textures of skimage/data used as extra content images (greyscale ones become grey RGB).
SKIMAGE_FILES = ("astronaut.png", "brick.png", "chelsea.png", "coffee.png", "coins.png", "grass.png", "gravel.png",
                 "hubble_deep_field.jpg", "ihc.png", "moon.png", "motorcycle_left.png", "motorcycle_right.png",
                 "retina.jpg", "rocket.jpg", "camera.png", "clock_motion.png")


def collect_content(data: Path, wheel: Path | None, dest: Path) -> Path:
    """Copy the content training images into ``dest`` (photos of the shared data + skimage wheel images)."""
    from PIL import Image

    dest.mkdir(parents=True, exist_ok=True)
    for p in sorted((data / "photos").iterdir()):
        shutil.copy(p, dest / f"photos_{p.name}")
    if wheel is not None:
        with zipfile.ZipFile(wheel) as z:
            for name in SKIMAGE_FILES:
                out = dest / f"skimage_{Path(name).stem}.png"
                if out.exists():
                    continue
                try:
                    raw = z.read(f"skimage/data/{name}")
                except KeyError:
                    print(f"note: {name} is not in {wheel.name}; skipped")
                    continue
                Image.open(io.BytesIO(raw)).convert("RGB").save(out)
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="shared data folder")
    ap.add_argument("--skimage-wheel", type=Path, help="scikit-image wheel (extra content images)")
    ap.add_argument("--style", default="paintings/starry_night.jpg", help="style image, relative to --data")
    ap.add_argument("--run-dir", type=Path, default=Path("/tmp/imgforge-fast-starry-night"))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--style-size", type=int, default=288, help="long side of the style image")
    ap.add_argument("--content-weight", type=float, default=1.0)
    ap.add_argument("--style-weight", type=float, default=3e4)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--vgg", help="loss network (default: the embedded encoder in weights/)")
    ap.add_argument("--out", type=Path, default=REPO / "weights" / "imgforge-fast-starry-night.safetensors")
    a = ap.parse_args()

    from imgforge.hub.modelfile import read_model_file, save_model_file
    from imgforge.progress import ProgressEvent
    from imgforge.training.fast_style import FastStyleTrainConfig, train_fast_style

    content = collect_content(a.data, a.skimage_wheel, a.run_dir / "content")
    cfg = FastStyleTrainConfig(
        style=str(a.data / a.style), content_dirs=(str(content),), run_dir=str(a.run_dir / "run"), vgg=a.vgg,
        image_size=a.image_size, resize=int(a.image_size * 1.5), crop="random", style_size=a.style_size,
        batch_size=4, lr=a.lr, steps=a.steps, content_weight=a.content_weight, style_weight=a.style_weight,
        shuffle=True, seed=42, checkpoint_every=25, log_every=5, sample=str(a.data / "photos" / "chelsea.png"),
        warm_output=True,
    )
    t0 = time.time()

    def show(ev: ProgressEvent) -> None:
        if ev.message:
            print(ev.message, flush=True)
        elif ev.metrics:
            m = "  ".join(f"{k}={v:.4g}" for k, v in ev.metrics.items())
            print(f"step {ev.step}/{ev.total}  {m}  ({time.time() - t0:.0f} s)", flush=True)

    train_fast_style(cfg, progress=show)
    sd, meta = read_model_file(Path(cfg.run_dir) / "model.safetensors")
    meta.pop("arch_kwargs", None)
    arch = meta.pop("arch")
    for k in ("format", "format_version", "source_sha256"):
        meta.pop(k, None)
    meta.update(
        name=a.out.stem,
        recipe="weights/recipes/train_fast_style.py",
        licence="CC0-1.0 (weights); trained on public-domain images only",
        notes=(f"fast-style TransformerNet for {Path(a.style).name} (public domain), loss network "
               f"{meta.get('loss_network')}, {a.steps} steps of batch 4 at {a.image_size} px"),
    )
    save_model_file(a.out, sd, arch=arch, extra={k: str(v) for k, v in meta.items()})
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
