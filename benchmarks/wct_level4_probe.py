"""Probe (issue 16 item 7): would WCT pass the 1.5x-of-Gatys target with a relu4_1 level, decoded by the AdaIN decoder?

The shipped WCT decoders cover relu1_1..relu3_1 only. The level-4 WCT decoder has exactly the AdaIN decoder's
architecture (:class:`imgforge.models.wct.WCTDecoder` ``(4)``), so this script builds a temporary 4-level decoders file
(the shipped levels 1-3 + the shipped AdaIN decoder as ``decoder4``), stylises the 12 pairs (4 paintings x chelsea /
astronaut / coffee) with the shipped default levels and with ``--levels 4,3,2,1``, and prints each pair's style /
content distance (embedded encoder; as ``style_family_eval.py``) and the ratio to the Gatys result of a
``style_family_eval.py`` JSON at the same size (``--gatys-json``), with the geometric means. ``--pictures DIR`` also
writes both outputs of each pair, to look at: the answer of the published probe (benchmarks/results/wct_level4_probe.md)
is that the distances pass while the pictures lose the content.

    python benchmarks/style_family_eval.py --size 256 --gatys-iters 20 --skip-patch --methods wct,adain,fast \\
        --out /tmp/e256
    python benchmarks/wct_level4_probe.py --size 256 --gatys-json /tmp/e256.json --pictures /tmp/wct4
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DATA = Path(os.environ.get("IMGFORGE_DATA_DIR", REPO.parent / "shared" / "data"))


def build_four_levels(dst: Path) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from imgforge.models.wct import WCTDecoder

    wct_file, adain_file = REPO / "weights" / "imgforge-wct-decoders-embedded.safetensors", \
        REPO / "weights" / "imgforge-adain-decoder-embedded.safetensors"
    tensors, adain = load_file(str(wct_file)), load_file(str(adain_file))
    want = WCTDecoder(4).state_dict()
    if set(want) != set(adain) or any(want[k].shape != v.shape for k, v in adain.items()):
        raise SystemExit("the AdaIN decoder does not have the level-4 WCT decoder's keys and shapes")
    tensors.update({f"decoder4.{k}": v for k, v in adain.items()})
    with safe_open(str(wct_file), "pt") as f:
        meta = dict(f.metadata())
    meta["arch_kwargs"] = json.dumps({"levels": [1, 2, 3, 4]})
    save_file(tensors, str(dst), metadata=meta)


def main() -> None:
    import torch

    from imgforge.hub.encoders import embedded_encoder_path
    from imgforge.hub.loader import load
    from imgforge.io import load_rgb, save_image
    from imgforge.jobs.stylize import StylizeJob, make_runner
    from imgforge.methods.gatys import content_distance, resize_long_side, style_distance
    from imgforge.runtime import Runtime

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--gatys-json", required=True, help="a style_family_eval.py result at the same --size")
    p.add_argument("--pictures", help="folder for the outputs (PAINTING_PHOTO_{default,l4}.png)")
    a = p.parse_args()
    ref = json.loads(Path(a.gatys_json).read_text())
    if int(ref["size"]) != a.size:
        raise SystemExit(f"--gatys-json is at {ref['size']} px, not {a.size}")
    rt = Runtime.create("cpu", "fp32")
    enc = load(str(embedded_encoder_path()))[0].eval()
    tmp_dir = tempfile.TemporaryDirectory()  # removed when the script ends
    tmp = Path(tmp_dir.name) / "wct4.safetensors"
    build_four_levels(tmp)
    variants = {"default": (None, None), "l4": (str(tmp), (4, 3, 2, 1))}
    ratios: dict = {v: [] for v in variants}
    for row in ref["pairs"]:
        paint, photo, g = DATA / "paintings" / row["painting"], DATA / "photos" / row["photo"], row["gatys"]
        style = resize_long_side(load_rgb(str(paint)), a.size)
        content = resize_long_side(load_rgb(str(photo)), a.size)
        line = f"{paint.stem[:14]:14s} {photo.stem[:10]:10s}"
        for v, (dec, levels) in variants.items():
            job = StylizeJob(styles=(str(paint),), method="wct", size=a.size, style_size=a.size, decoder=dec,
                             levels=levels)
            out = make_runner(job, rt)(content, "wct").float()[:, :, :content.shape[2], :content.shape[3]]
            s, c = style_distance(out, [style], enc), content_distance(out, content, enc)
            ratios[v].append((s / g["style"], c / g["content"]))
            line += f" | {v} {s:.3f} / {c:.3f} ({s / g['style']:.2f} / {c / g['content']:.2f})"
            if a.pictures:
                Path(a.pictures).mkdir(parents=True, exist_ok=True)
                save_image(out.clamp(0, 1), Path(a.pictures) / f"{paint.stem}_{photo.stem}_{v}.png")
        print(line, flush=True)
    for v, rs in ratios.items():
        gm = [math.exp(sum(math.log(r[i]) for r in rs) / len(rs)) for i in (0, 1)]
        print(f"{v}: geometric mean of the ratios to Gatys, style {gm[0]:.2f} / content {gm[1]:.2f} ({len(rs)} pairs)")


if __name__ == "__main__":
    with __import__("torch").no_grad():
        main()
