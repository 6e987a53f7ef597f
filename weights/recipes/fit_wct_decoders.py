"""Recipe of ``weights/imgforge-wct-decoders-embedded.safetensors``: WCT decoders (relu1_1, relu2_1, relu3_1) for
the embedded encoder (``weights/imgforge-vgg19-embedded.safetensors``), so that ``stylize --method wct`` works
offline with no published weights. Stage 1 of the shipped file: its output (the file shipped before) was then
fine-tuned for reconstruction on a GPU by ``finetune_wct_decoders.py`` (the shipped file); ``--out`` defaults to the
shipped path, so write the fit elsewhere to keep the fine-tuned decoders.

Why three levels, not the paper's five: with this random-feature encoder, whitening and colouring at relu4_1 or
relu5_1 destroys the content (measured on chelsea x Starry Night at 256 and 448 px: level 4 alone or the 5..1 chain
gives colour blotches with no cat at any alpha, while 3..1 keeps the cat), although the level-4/5 decoders
themselves reconstruct photos (22.5 / 19.2 dB on chelsea). ``--levels 1,2,3,4,5`` fits all five (~17 min on one
core; the file is then 34 MB) for experiments.

Method: the layer-wise least squares of the AdaIN decoder's recipe (:func:`imgforge.training.decoder_fit.
fit_decoder_lsq`), once per level, on the same images (content and style images of ``train_adain_decoder.py``:
``shared/data`` photos, paintings, faces and scikit-image photographs/textures, 128 x 128) with the same seed. WCT's
decoders are reconstruction decoders, as the least-squares AdaIN decoder is, so a level-4 decoder comes out equal to
the shipped AdaIN decoder. Weights are stored in float16 (halves the file; they are used in float32).

Usage::

    pip download --no-deps --only-binary=:all: scikit-image -d /tmp/skw
    OMP_NUM_THREADS=1 python weights/recipes/fit_wct_decoders.py --skimage-wheel /tmp/skw/scikit_image-*.whl
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_adain_decoder import fitting_setup  # noqa: E402  (same encoder and images)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data", help="shared data folder")
    ap.add_argument("--skimage-wheel", type=Path, help="scikit-image wheel (extra content and style images)")
    ap.add_argument("--encoder", help="encoder file (default: the embedded encoder in weights/)")
    ap.add_argument("--run-dir", type=Path, default=Path("/tmp/imgforge-wct-decoders"))
    ap.add_argument("--size", type=int, default=128, help="side of the fitting images")
    ap.add_argument("--levels", default="1,2,3")
    ap.add_argument("--out", type=Path, default=REPO / "weights" / "imgforge-wct-decoders-embedded.safetensors")
    a = ap.parse_args()

    import torch

    from imgforge.hub.modelfile import save_model_file
    from imgforge.hub.encoders import EMBEDDED_NAME
    from imgforge.models.wct import WCTDecoders
    from imgforge.training.decoder_fit import fit_decoder_lsq

    enc_path, encoder, _, _, images = fitting_setup(a)
    levels = tuple(int(v) for v in a.levels.split(","))
    print(f"fitting levels {levels} on {len(images)} images with encoder {enc_path.name}", flush=True)
    torch.manual_seed(0)
    decoders = WCTDecoders(levels)
    t0 = time.time()
    for lv in levels:
        dec = decoders[lv]
        fit_decoder_lsq(encoder, dec, dec.plan(), f"relu{lv}_1", images,
                        log=lambda m, lv=lv: print(f"level {lv}: {m} ({time.time() - t0:.0f} s)", flush=True))
    save_model_file(a.out, decoders.state_dict(), arch="wct_decoders", arch_kwargs={"levels": list(levels)},
                    dtype=torch.float16, extra={
        "name": a.out.stem, "encoder": EMBEDDED_NAME, "recipe": "weights/recipes/fit_wct_decoders.py",
        "licence": "CC0-1.0 (weights); fitted on public-domain images only",
        "notes": f"WCT decoders for the embedded encoder: layer-wise least squares on {len(images)} images at "
                 f"{a.size} px, stored in float16",
    })
    print(f"wrote {a.out} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
