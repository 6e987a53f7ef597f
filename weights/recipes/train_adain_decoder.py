"""Recipe of ``weights/imgforge-adain-decoder-embedded.safetensors``: an AdaIN decoder trained for the embedded
encoder (``weights/imgforge-vgg19-embedded.safetensors``, relu4_1), so that ``imgforge stylize --method adain`` works
offline with no published weights.

Training data (all public domain / CC0, see weights/README.md):

- content: ``photos/*`` of the shared data folder (``--data``) plus photographs and textures from the scikit-image
  wheel (the same set as ``train_fast_style.py``);
- style: ``paintings/*`` and ``faces/*`` of the shared data folder, plus the skimage textures brick, grass, gravel.

Budget (2 shared CPU cores): ``--steps`` (default 400) steps of batch 4 with 96 px random crops of images resized to
144 x 144, Adam lr 1e-3 with the reference's inverse decay (5e-5), about 15 minutes with one intra-op thread. The
reference trains 160k steps of batch 8 at 256 px with lr 1e-4; this decoder is correspondingly blurrier. Loss as the
reference (content 1, style 10). Seeded and resumable: run the same command again after an interruption.

Usage::

    pip download --no-deps --only-binary=:all: scikit-image -d /tmp/skw
    OMP_NUM_THREADS=1 python weights/recipes/train_adain_decoder.py --skimage-wheel /tmp/skw/scikit_image-*.whl
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_fast_style import collect_content  # noqa: E402  (same content set)

STYLE_TEXTURES = ("brick.png", "grass.png", "gravel.png")


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="shared data folder")
    ap.add_argument("--skimage-wheel", type=Path, help="scikit-image wheel (extra content and style images)")
    ap.add_argument("--run-dir", type=Path, default=Path("/tmp/imgforge-adain-decoder"))
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--image-size", type=int, default=96)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--style-weight", type=float, default=10.0)
    ap.add_argument("--out", type=Path, default=REPO / "weights" / "imgforge-adain-decoder-embedded.safetensors")
    a = ap.parse_args()

    from imgforge.hub.modelfile import read_model_file, save_model_file
    from imgforge.methods.encoders import embedded_encoder_path
    from imgforge.progress import ProgressEvent
    from imgforge.training.adain import AdaINTrainConfig, train_adain

    content = collect_content(a.data, a.skimage_wheel, a.run_dir / "content")
    styles = collect_styles(a.data, a.skimage_wheel, a.run_dir / "styles")
    cfg = AdaINTrainConfig(
        content_dirs=(str(content),), style_dirs=(str(styles),), run_dir=str(a.run_dir / "run"),
        vgg=str(embedded_encoder_path()), image_size=a.image_size, resize=int(a.image_size * 1.5), batch_size=4,
        lr=a.lr, steps=a.steps, style_weight=a.style_weight, seed=0, checkpoint_every=50, log_every=10,
        sample_content=str(a.data / "photos" / "chelsea.png"), sample_style=str(a.data / "paintings" / "starry_night.jpg"),
    )
    t0 = time.time()

    def show(ev: ProgressEvent) -> None:
        if ev.message:
            print(ev.message, flush=True)
        elif ev.metrics:
            m = "  ".join(f"{k}={v:.4g}" for k, v in ev.metrics.items())
            print(f"step {ev.step}/{ev.total}  {m}  ({time.time() - t0:.0f} s)", flush=True)

    train_adain(cfg, progress=show)
    sd, meta = read_model_file(Path(cfg.run_dir) / "decoder.safetensors")
    arch = meta.pop("arch")
    for k in ("arch_kwargs", "format", "format_version", "source_sha256"):
        meta.pop(k, None)
    meta.update(
        name=a.out.stem,
        encoder="imgforge-vgg19-embedded",
        recipe="weights/recipes/train_adain_decoder.py",
        licence="CC0-1.0 (weights); trained on public-domain images only",
        notes=f"AdaIN decoder for the embedded encoder (relu4_1); {a.steps} steps of batch 4 at {a.image_size} px",
    )
    save_model_file(a.out, sd, arch=arch, extra={k: str(v) for k, v in meta.items()})
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
