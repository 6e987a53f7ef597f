"""Make the two small images the README's quickstart uses (run once; the outputs are committed).

- ``examples/images/astronaut.jpg``: the public-domain NASA portrait of Eileen Collins as shipped in the
  scikit-image package (``skimage/data/astronaut.png``), resized to 320x320. Pass the scikit-image wheel or the
  PNG itself with ``--astronaut``; scikit-image is not a dependency of imgforge.
- ``examples/images/swirls.jpg``: a procedural "painting": thousands of short brush strokes that follow a swirling
  flow field, in a night-sky palette. Made entirely by this script (seeded), so it is ours to ship (CC0).

Usage::

    pip download --no-deps --only-binary=:all: scikit-image -d /tmp/skw
    python examples/make_example_images.py --astronaut /tmp/skw/scikit_image-*.whl
"""

from __future__ import annotations

import argparse
import io
import math
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

OUT = Path(__file__).resolve().parent / "images"
PALETTE = [(18, 34, 84), (30, 60, 130), (52, 96, 170), (90, 140, 200), (150, 185, 220),
           (230, 210, 110), (245, 190, 60), (20, 40, 60), (60, 110, 120)]


def make_swirls(size: int = 384, seed: int = 7, strokes: int = 9000) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), (20, 36, 80))
    draw = ImageDraw.Draw(img)
    centres = rng.uniform(0.1, 0.9, (5, 2)) * size
    spins = rng.choice([-1.0, 1.0], 5) * rng.uniform(0.6, 1.4, 5)

    def angle(x: float, y: float) -> float:
        vx, vy = 1.0, 0.15 * math.sin(y / size * 6.0)
        for (cx, cy), s in zip(centres, spins):
            dx, dy = x - cx, y - cy
            r2 = dx * dx + dy * dy + 200.0
            k = s * 4000.0 / r2
            vx += -dy * k / math.sqrt(r2)
            vy += dx * k / math.sqrt(r2)
        return math.atan2(vy, vx)

    for i in range(strokes):
        x, y = rng.uniform(0, size, 2)
        near = min(math.hypot(x - cx, y - cy) for cx, cy in centres)
        colour = PALETTE[5 + int(rng.integers(0, 2))] if near < size * 0.06 else PALETTE[int(rng.integers(0, len(PALETTE)))]
        jitter = rng.integers(-18, 19, 3)
        colour = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(colour, jitter))
        width = int(rng.integers(2, 5))
        pts = [(x, y)]
        for _ in range(int(rng.integers(4, 10))):
            a = angle(x, y)
            x, y = x + 3.0 * math.cos(a), y + 3.0 * math.sin(a)
            pts.append((x, y))
        draw.line(pts, fill=colour, width=width, joint="curve")
    return img.filter(ImageFilter.SMOOTH)


def load_astronaut(src: Path) -> Image.Image:
    if src.suffix == ".whl":
        with zipfile.ZipFile(src) as z:
            return Image.open(io.BytesIO(z.read("skimage/data/astronaut.png"))).convert("RGB")
    return Image.open(src).convert("RGB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--astronaut", type=Path, help="scikit-image wheel or astronaut.png")
    a = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    make_swirls().save(OUT / "swirls.jpg", quality=92)
    print("wrote", OUT / "swirls.jpg")
    if a.astronaut:
        load_astronaut(a.astronaut).resize((320, 320), Image.LANCZOS).save(OUT / "astronaut.jpg", quality=92)
        print("wrote", OUT / "astronaut.jpg")


if __name__ == "__main__":
    main()
