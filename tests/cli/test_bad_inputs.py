"""The bad-input suite: every command group fed what a careless or hostile user would give it.

Each row of :data:`CASES` is one command line run in-process (CliRunner; exit codes and stderr lines are those of
the real ``imgforge`` process, see :func:`_invoke`) and asserts:

- the exit code (0 ok, 1 error, 2 usage error, 3 batch with some failures),
- no traceback and no uncaught exception (``result.exception`` is only ever ``SystemExit``),
- a message naming the culprit (a file name or the option's real name),
- every error printed is one line,
- the good items were written and no partial or temporary file was left.

New commands add their rows. ``{d}`` in a row is the shared workspace (see :func:`ws`); outputs go under
``out/<case id>/``.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from imgforge.cli.app import app
from imgforge.hub.modelfile import save_model_file
from imgforge.models.adain import AdaINDecoder
from imgforge.models.fast_style import TransformerNet
from imgforge.models.stylegan2 import Generator
from imgforge.models.translation import ResnetGenerator, UnetGenerator
from imgforge.models.vgg import TorchvisionVGG, vgg19

from .helpers import photo, png_header_only


@dataclass(frozen=True)
class Case:
    """One bad input: ``args`` after the global options; ``code`` expected; ``say`` words the output must contain
    (case-insensitive; all of them); ``made`` files that must exist afterwards, ``absent`` files that must not."""

    id: str
    args: Tuple[str, ...]
    code: int
    say: Tuple[str, ...] = ()
    made: Tuple[str, ...] = ()
    absent: Tuple[str, ...] = ()
    env: Dict[str, str] = field(default_factory=dict)
    pre: Tuple[str, ...] = ()  # global options before the command
    never: Tuple[str, ...] = ()  # words the output must not contain


def C(id: str, args: str | Sequence[str], code: int, say: str | Sequence[str] = (), made: Sequence[str] = (),
      absent: Sequence[str] = (), env: Optional[Dict[str, str]] = None, pre: Sequence[str] = (),
      never: Sequence[str] = ()) -> Case:
    a = tuple(args.split()) if isinstance(args, str) else tuple(args)
    s = (say,) if isinstance(say, str) else tuple(say)
    return Case(id, a, code, s, tuple(made), tuple(absent), dict(env or {}), tuple(pre), tuple(never))


# ---------------------------------------------------------------------------------------------------- workspace


def _save_png(arr: np.ndarray, path: Path) -> None:
    Image.fromarray(arr).save(path)


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny models, good and bad images, bad weights and latent files, datasets, blocked paths."""
    d = tmp_path_factory.mktemp("bad_inputs")
    torch.manual_seed(0)
    # images
    photo(1, (40, 32)).save(d / "good.png")
    photo(2, (36, 36)).save(d / "good2.png")
    photo(3, (32, 32)).save(d / "style.png")
    Image.new("RGB", (1, 1), (200, 40, 40)).save(d / "onepx.png")
    Image.new("RGB", (3, 2), (200, 40, 40)).save(d / "tiny.png")
    photo(5, (4, 4)).save(d / "small4.png")
    photo(6, (400, 20)).save(d / "strip.png")
    (d / "bomb.png").write_bytes(png_header_only(30000, 30000))
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    (d / "empty.png").write_bytes(b"")
    for name, files in {"batch_1px": ["a_good.png", "b_onepx.png", "c_good.png"],
                        "batch_mixed": ["a_good.png", "b_corrupt.png", "c_good.png"]}.items():
        (d / name).mkdir()
        for f in files:
            src = {"good": "good.png", "onepx": "onepx.png", "corrupt": "corrupt.png"}[f.split("_", 1)[1][:-4]]
            (d / name / f).write_bytes((d / src).read_bytes())
    # style networks
    fast = TransformerNet()
    save_model_file(d / "fast.safetensors", fast.state_dict(), arch="fast_style")
    enc = vgg19(last_layer="relu4_1", widths=(4, 8, 8, 512, 8))
    save_model_file(d / "enc.safetensors", enc.state_dict(), arch="vgg19",
                    arch_kwargs={"last_layer": "relu4_1", "widths": [4, 8, 8, 512, 8]})
    dec = AdaINDecoder()
    with torch.no_grad():
        dec[28].bias.fill_(0.5)
    save_model_file(d / "dec.safetensors", dec.state_dict(), arch="adain_decoder", extra={"encoder": str(d / "enc.safetensors")})
    genc = vgg19(last_layer="relu5_1", widths=(4, 8, 8, 8, 8))
    save_model_file(d / "genc.safetensors", genc.state_dict(), arch="vgg19",
                    arch_kwargs={"last_layer": "relu5_1", "widths": [4, 8, 8, 8, 8]})
    # translation generators
    p2p = UnetGenerator(num_downs=5, ngf=4, norm="batch")
    save_model_file(d / "p2p.safetensors", p2p.state_dict(), arch="unet_generator",
                    arch_kwargs={"num_downs": 5, "ngf": 4, "norm": "batch"})
    cg = ResnetGenerator(ngf=4, n_blocks=1)
    save_model_file(d / "cg.safetensors", cg.state_dict(), arch="resnet_generator",
                    arch_kwargs={"ngf": 4, "n_blocks": 1})
    # StyleGAN2 generator and perceptual encoder
    G = Generator(16, style_dim=32, n_mlp=2, channels={4: 32, 8: 32, 16: 16}).eval()
    save_model_file(d / "G.safetensors", G.state_dict(), arch="stylegan2_generator", arch_kwargs=G.arch_kwargs())
    venc = TorchvisionVGG("vgg16", last_layer="conv4_2", widths=(8, 8, 16, 16, 16))
    save_model_file(d / "venc.safetensors", venc.state_dict(), arch="vgg16",
                    arch_kwargs={"last_layer": "conv4_2", "widths": [8, 8, 16, 16, 16]})
    from safetensors.torch import save_file

    z_dim, w_dim, num_ws = G.z_dim, G.w_dim, G.num_ws
    save_file({"z": torch.randn(2, z_dim)}, str(d / "z_good.safetensors"))
    save_file({"z": torch.randn(2, z_dim + 3)}, str(d / "z_wrongdim.safetensors"))
    save_file({"z": torch.zeros(0, z_dim)}, str(d / "z_empty.safetensors"))
    np.save(d / "z_empty.npy", np.zeros((0, z_dim), np.float32))
    zn = torch.randn(1, z_dim)
    zn[0, 0] = float("nan")
    save_file({"z": zn}, str(d / "z_nan.safetensors"))
    save_file({"w": torch.full((1, num_ws, w_dim), float("inf"))}, str(d / "w_inf.safetensors"))
    save_file({"a": torch.randn(1, 3), "b": torch.randn(1, 4)}, str(d / "latent_names.safetensors"))
    (d / "latent_text.safetensors").write_text("not a latent\n")
    # latent files as invert writes them, then broken
    from imgforge.latents import load_latent  # noqa: F401  (format reference)

    r = CliRunner().invoke(app, ["--device", "cpu", "--precision", "fp32", "--quiet", "invert", str(d / "good2.png"),
                                 "--weights", str(d / "G.safetensors"), "--steps", "1", "--loss", "mse",
                                 "--out-dir", str(d / "inv")], env={"IMGFORGE_OFFLINE": "1"})
    assert r.exit_code == 0, r.output
    lat = d / "inv" / "good2.latent.safetensors"
    from safetensors.torch import load_file

    t = load_file(str(lat))
    bad = dict(t)
    for k in bad:
        if k.startswith("noise"):
            bad[k] = torch.zeros(1, 1, 3, 3)
    save_file(bad, str(d / "lat_noise_shape.safetensors"))
    nan = {k: v.clone() for k, v in t.items()}
    key = next(k for k in nan if k in ("w", "ws", "z") or k.startswith("w"))
    nan[key].view(-1)[0] = float("nan")
    save_file(nan, str(d / "lat_nan.safetensors"))
    wide = {k: v.clone() for k, v in t.items()}
    wide[key] = torch.cat([wide[key], wide[key]], dim=-1)
    save_file(wide, str(d / "lat_wdim.safetensors"))
    # bad weights files
    sd = fast.state_dict()
    save_model_file(d / "w_unknown_arch.safetensors", sd, arch="warp_drive")
    save_model_file(d / "w_bad_kwargs.safetensors", G.state_dict(), arch="stylegan2_generator",
                    arch_kwargs={**G.arch_kwargs(), "flux_capacitor": 3})
    save_model_file(d / "w_bad_value.safetensors", G.state_dict(), arch="stylegan2_generator",
                    arch_kwargs={**G.arch_kwargs(), "size": 17})
    save_model_file(d / "p2p_bad_kwargs.safetensors", p2p.state_dict(), arch="unet_generator",
                    arch_kwargs={"num_downs": 5, "ngf": 4, "norm": "sparkly"})
    save_model_file(d / "fast_bad_kwargs.safetensors", sd, arch="fast_style", arch_kwargs={"bogus": 1})
    save_model_file(d / "wrong_model.safetensors", sd, arch="fast_style")
    (d / "trunc.safetensors").write_bytes((d / "fast.safetensors").read_bytes()[:200])
    (d / "text.pth").write_text("hello\n")
    for pad in range(256):  # a real safetensors file whose header length starts with byte 0x80, then truncated
        save_model_file(d / "g80.safetensors", G.state_dict(), arch="stylegan2_generator",
                        arch_kwargs=G.arch_kwargs(), extra={"notes": "x" * pad})
        if (d / "g80.safetensors").read_bytes()[0] == 0x80:
            break
    (d / "g80_trunc.safetensors").write_bytes((d / "g80.safetensors").read_bytes()[:4000])
    hdr = struct.pack("<Q", 0x80 + (0x7B << 8))  # header length whose first byte is 0x80
    (d / "hdr80.safetensors").write_bytes(hdr + b"{" + b" " * 40)
    import pickle

    class _Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {d / 'PWNED'}",))

    (d / "evil.pkl").write_bytes(pickle.dumps({"G_ema": _Evil()}, protocol=2))
    (d / "evil.pth").write_bytes(pickle.dumps({"state_dict": _Evil()}, protocol=2))
    # datasets
    for name in ("content", "content_bad"):
        (d / name).mkdir()
        for i in range(3):
            photo(10 + i, (40, 40)).save(d / name / f"c{i}.png")
    (d / "content_bad" / "bomb.png").write_bytes(png_header_only(30000, 30000))
    (d / "content_bad" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    from tests.unit.test_translation_train_support import make_aligned, make_unaligned

    make_aligned(d / "pairs", n_train=2, n_val=1, size=32)
    make_unaligned(d / "unpaired", n=2, size=32)
    make_unaligned(d / "unpaired_bad", n=2, size=32)
    (d / "unpaired_bad" / "trainA" / "bomb.png").write_bytes(png_header_only(30000, 30000))
    (d / "unpaired_bad" / "trainB" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    (d / "pairs_bad").mkdir()
    for sub in ("train", "val"):
        (d / "pairs_bad" / sub).mkdir()
        for f in (d / "pairs" / sub).iterdir():
            (d / "pairs_bad" / sub / f.name).write_bytes(f.read_bytes())
    (d / "pairs_bad" / "train" / "bomb.png").write_bytes(png_header_only(30000, 30000))
    (d / "pairs_bad" / "train" / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    (d / "sg_data").mkdir()
    for i in range(4):
        photo(20 + i, (12, 12)).save(d / "sg_data" / f"{i}.png")
    (d / "sg_data" / "bomb.png").write_bytes(png_header_only(30000, 30000))
    (d / "sg_data" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    _dcgan_run(d / "gan_run")
    # the methods added after the first table: a flat style, a sketch folder, an empty folder
    Image.new("RGB", (40, 40), (90, 160, 40)).save(d / "flat.png")
    Image.new("RGB", (40, 40), "white").save(d / "blank_sketch.png")
    (d / "nothing").mkdir()
    # blocked output places
    (d / "afile").write_text("i am a file\n")
    (d / "existing_dir").mkdir()
    (d / "ro").mkdir()
    os.chmod(d / "ro", 0o555)
    return d


def _dcgan_run(run: Path) -> None:
    """A one-step ``gan train --arch dcgan`` run folder (its checkpoint, for resuming it with another --arch)."""
    from imgforge.data.gan_images import TrainingImages
    from imgforge.training.gan import GANTrainConfig, train_gan
    from imgforge.training.loop import LoopConfig

    images = TrainingImages(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    train_gan(images, GANTrainConfig(resolution=8, z_dim=4, width=4, batch_size=2),
              LoopConfig(str(run), 1, checkpoint_every=1))


# -------------------------------------------------------------------------------------------------------- cases

G = "--weights {d}/G.safetensors"
INV = "--steps 1 --loss mse"
FASTM = "--method fast --model {d}/fast.safetensors"
ADAIN = "--method adain --decoder {d}/dec.safetensors --encoder {d}/enc.safetensors --style {d}/style.png"
GATYS = "--style {d}/style.png --encoder {d}/genc.safetensors --iterations 1 --size 32"
ROOT_ONLY = os.geteuid() == 0 if hasattr(os, "geteuid") else False

CASES: List[Case] = [
    # ---- stylize: input images below the method's minimum size; a bad item never ends the batch
    C("fast-1px-batch", f"stylize {{d}}/batch_1px {FASTM} --out-dir out/fast-1px-batch", 3,
      ["b_onepx.png", "too small"], made=["out/fast-1px-batch/a_good_fast.png", "out/fast-1px-batch/c_good_fast.png"],
      absent=["out/fast-1px-batch/b_onepx_fast.png"]),
    C("adain-1px-batch", f"stylize {{d}}/batch_1px {ADAIN} --out-dir out/adain-1px-batch", 3,
      ["b_onepx.png", "too small"], made=["out/adain-1px-batch/a_good_adain.png", "out/adain-1px-batch/c_good_adain.png"]),
    C("gatys-1px-batch", f"stylize {{d}}/batch_1px {GATYS} --out-dir out/gatys-1px-batch", 3,
      ["b_onepx.png", "too small"], made=["out/gatys-1px-batch/a_good_gatys.png", "out/gatys-1px-batch/c_good_gatys.png"]),
    C("fast-corrupt-batch", f"stylize {{d}}/batch_mixed {FASTM} --out-dir out/fast-corrupt-batch", 3,
      ["b_corrupt.png"], made=["out/fast-corrupt-batch/a_good_fast.png", "out/fast-corrupt-batch/c_good_fast.png"]),
    C("adain-1px-style", f"stylize {{d}}/good.png --method adain --decoder {{d}}/dec.safetensors "
      "--encoder {d}/enc.safetensors --style {d}/onepx.png -o out/adain-1px-style/o.png", 1,
      ["onepx.png", "too small"], absent=["out/adain-1px-style/o.png"]),
    C("gatys-1px-style", f"stylize {{d}}/good.png --style {{d}}/onepx.png --encoder {{d}}/genc.safetensors "
      "--iterations 1 --size 32 -o out/gatys-1px-style/o.png", 1, ["onepx.png", "too small"]),
    C("fast-1px-single", f"stylize {{d}}/onepx.png {FASTM} -o out/fast-1px-single/o.png", 1,
      ["onepx.png", "too small"], absent=["out/fast-1px-single/o.png"]),
    # ---- outputs too large for memory
    C("gatys-huge-size", f"stylize {{d}}/good.png --style {{d}}/style.png --encoder {{d}}/genc.safetensors "
      "--size 100000 -o out/x.png", 2, ["--size", "GB"]),
    C("texture-huge", "texture --style {d}/style.png --encoder {d}/genc.safetensors --width 100000 --height 100000 "
      "-o out/t.png", 2, ["GB", "--width"]),
    C("fast-huge-size", f"stylize {{d}}/good.png {FASTM} --size 100000 --tile 0 -o out/x.png", 2, ["--size", "GB"]),
    # ---- options
    C("style-layers-unknown", f"stylize {{d}}/good.png {GATYS} --style-layers relu9_9 -o out/x.png", 2,
      ["--style-layers", "relu9_9"]),
    C("content-layers-unknown", f"stylize {{d}}/good.png {GATYS} --content-layers nope -o out/x.png", 2,
      ["--content-layers", "nope"]),
    C("texture-style-layers", "texture --style {d}/style.png --encoder {d}/genc.safetensors --style-layers bogus "
      "--width 16 --height 16 -o out/x.png", 2, ["--style-layers", "bogus"]),
    C("threads-env", f"stylize {{d}}/good.png {FASTM} -o out/threads/o.png", 2, ["IMGFORGE_THREADS", "many"],
      env={"IMGFORGE_THREADS": "many"}),
    C("threads-env-zero", f"stylize {{d}}/good.png {FASTM} -o out/threads0/o.png", 2, ["IMGFORGE_THREADS"],
      env={"IMGFORGE_THREADS": "0"}),
    C("max-pixels-env", f"stylize {{d}}/good.png {FASTM} -o out/mp/o.png", 2, ["IMGFORGE_MAX_PIXELS"],
      env={"IMGFORGE_MAX_PIXELS": "lots"}),
    # ---- outputs
    C("o-existing-dir", f"stylize {{d}}/good.png {FASTM} -o {{d}}/existing_dir", 2, ["existing_dir", "folder"]),
    C("out-dir-is-file", f"stylize {{d}}/good.png {FASTM} --out-dir {{d}}/afile", 2, ["afile", "not a directory"]),
    C("o-parent-is-file", f"stylize {{d}}/good.png {FASTM} -o {{d}}/afile/o.png", 2, ["afile", "not a directory"]),
    C("o-bad-ext", f"stylize {{d}}/good.png {FASTM} -o out/x.xyz", 2, [".xyz"]),
    # ---- weights files
    C("fast-unknown-arch", f"stylize {{d}}/good.png --method fast --model {{d}}/w_unknown_arch.safetensors -o out/x.png",
      1, ["w_unknown_arch.safetensors", "warp_drive"]),
    C("fast-bad-kwargs", f"stylize {{d}}/good.png --method fast --model {{d}}/fast_bad_kwargs.safetensors -o out/x.png",
      1, ["fast_bad_kwargs.safetensors", "bogus"]),
    C("fast-trunc-weights", f"stylize {{d}}/good.png --method fast --model {{d}}/trunc.safetensors -o out/x.png",
      1, ["trunc.safetensors"]),
    C("fast-evil-pickle", f"stylize {{d}}/good.png --method fast --model {{d}}/evil.pth -o out/x.png", 1,
      ["evil.pth"]),
    # ---- generate
    C("gen-bad-kwargs", "generate --weights {d}/w_bad_kwargs.safetensors --seeds 0 --out-dir out/g1", 1,
      ["w_bad_kwargs.safetensors", "flux_capacitor"]),
    C("gen-bad-value", "generate --weights {d}/w_bad_value.safetensors --seeds 0 --out-dir out/g2", 1,
      ["w_bad_value.safetensors"]),
    C("gen-unknown-arch", "generate --weights {d}/w_unknown_arch.safetensors --seeds 0 --out-dir out/g3", 1,
      ["w_unknown_arch.safetensors", "warp_drive"]),
    C("gen-hdr80", "generate --weights {d}/hdr80.safetensors --seeds 0 --out-dir out/g4", 1,
      ["hdr80.safetensors"]),
    C("gen-evil-pkl", "generate --weights {d}/evil.pkl --seeds 0 --out-dir out/g5", 1, ["evil.pkl"]),
    C("gen-z-empty", f"generate {G} --z-file {{d}}/z_empty.safetensors --out-dir out/g6", 1,
      ["z_empty.safetensors", "no latents"]),
    C("gen-z-empty-npy", f"generate {G} --z-file {{d}}/z_empty.npy --out-dir out/g7", 1,
      ["z_empty.npy", "no latents"]),
    C("gen-z-wrongdim", f"generate {G} --z-file {{d}}/z_wrongdim.safetensors --out-dir out/g8", 1,
      ["z_wrongdim.safetensors"]),
    C("gen-z-nan", f"generate {G} --z-file {{d}}/z_nan.safetensors --out-dir out/g9", 1, ["z_nan.safetensors", "NaN"]),
    C("gen-w-inf", f"generate {G} --w-file {{d}}/w_inf.safetensors --out-dir out/g10", 1, ["w_inf.safetensors"]),
    C("gen-out-dir-file", f"generate {G} --seeds 0 --out-dir {{d}}/afile", 2, ["afile", "not a directory"]),
    C("gen-grid-dir", f"generate {G} --seeds 0 --grid {{d}}/existing_dir", 2, ["existing_dir"]),
    C("gen-ok", f"generate {G} --seeds 0-1 --out-dir out/gen-ok", 0,
      made=["out/gen-ok/seed0000.png", "out/gen-ok/seed0001.safetensors"]),
    # ---- edits
    C("edit-bad-kwargs", f"edit 3 --weights {{d}}/w_bad_kwargs.safetensors --direction 0 -o out/e1.png", 1,
      ["w_bad_kwargs.safetensors"]),
    C("morph-noise-shape", f"morph {{d}}/lat_noise_shape.safetensors 4 {G} --frames 2 --out-dir out/m1", 1,
      ["lat_noise_shape.safetensors"]),
    C("morph-nan", f"morph {{d}}/lat_nan.safetensors 4 {G} --frames 2 --out-dir out/m2", 1,
      ["lat_nan.safetensors", "NaN"], absent=["out/m2"]),
    C("morph-wdim", f"morph {{d}}/lat_wdim.safetensors 4 {G} --frames 2 --out-dir out/m3", 1,
      ["lat_wdim.safetensors"]),
    C("morph-z-wrong", f"morph {{d}}/z_wrongdim.safetensors 4 {G} --frames 2 --out-dir out/m4", 1,
      ["z_wrongdim.safetensors"]),
    C("morph-names", f"morph {{d}}/latent_names.safetensors 4 {G} --frames 2 --out-dir out/m5", 1,
      ["latent_names.safetensors"]),
    C("style-mix-styles", f"style-mix --rows 1 --cols 2 --styles huge {G} -o out/sm.png", 2, ["--styles", "huge"]),
    C("superres-bad-latent-path", f"superres {{d}}/small4.png {G} {INV} -o out/sr1/sr.png "
      "--save-latent {d}/afile/lat.safetensors", 2, ["afile"], absent=["out/sr1/sr.png"]),
    C("inpaint-out-dir", f"inpaint {{d}}/good2.png --mask {{d}}/good2.png {G} {INV} -o {{d}}/existing_dir", 2,
      ["existing_dir"]),
    # ---- translation
    C("p2p-bad-kwargs", "pix2pix apply {d}/good.png --weights {d}/p2p_bad_kwargs.safetensors -o out/p1.png", 1,
      ["p2p_bad_kwargs.safetensors", "sparkly"]),
    C("cg-tile-1", "cyclegan apply {d}/good.png --weights {d}/cg.safetensors --eval --tile 1 -o out/c1.png", 2,
      ["--tile"]),
    C("p2p-1px-batch", "pix2pix apply {d}/batch_1px --weights {d}/p2p.safetensors --eval --out-dir out/p2p-1px", 0,
      made=["out/p2p-1px/a_good_pix2pix.png", "out/p2p-1px/b_onepx_pix2pix.png", "out/p2p-1px/c_good_pix2pix.png"]),
    C("p2p-crop-gt-load", "pix2pix train {d}/pairs --netG unet_32 --ngf 4 --ndf 4 --load-size 32 --crop-size 64 "
      "--steps 1 -o out/pt1", 2, ["--crop-size", "--load-size"]),
    C("p2p-run-dir-file", "pix2pix train {d}/pairs --netG unet_32 --ngf 4 --ndf 4 --load-size 32 --crop-size 32 "
      "--steps 1 -o {d}/afile", 2, ["afile"]),
    C("cg-run-dir-file", "cyclegan train {d}/unpaired --netG resnet_1blocks --ngf 4 --ndf 4 --load-size 32 "
      "--crop-size 32 --steps 1 -o {d}/afile", 2, ["afile"]),
    # ---- stylegan train
    C("sg-res-12", "stylegan train {d}/sg_data --resolution 12 --steps 1 --run-dir out/sg1", 2, ["--resolution", "12"]),
    C("sg-run-dir-file", "stylegan train {d}/sg_data --resolution 8 --channel-base 32 --channel-max 8 --z-dim 8 "
      "--w-dim 8 --map-layers 1 --batch-size 2 --steps 1 --run-dir {d}/afile", 2, ["afile"]),
    C("sg-bomb-dataset", "stylegan train {d}/sg_data --resolution 8 --channel-base 32 --channel-max 8 --z-dim 8 "
      "--w-dim 8 --map-layers 1 --batch-size 2 --steps 1 --sample-every 0 --run-dir out/sg-bomb", 0,
      made=["out/sg-bomb/checkpoint.pt"]),
    # ---- style training
    C("fast-train-bomb", "fast-style train --content-dir {d}/content_bad --style {d}/style.png "
      "--vgg {d}/genc.safetensors --image-size 16 --batch-size 2 --steps 1 --style-layers relu1_1 "
      "--content-layer relu2_1 --run-dir out/ft-bomb", 0, made=["out/ft-bomb"]),
    C("fast-train-run-dir-file", "fast-style train --content-dir {d}/content --style {d}/style.png "
      "--vgg {d}/genc.safetensors --image-size 16 --steps 1 --run-dir {d}/afile", 2, ["afile"]),
]

MORE: List[Case] = [
    # ---- stylize: inputs and batches
    C("st-missing", f"stylize {{d}}/nope.png {FASTM} -o out/st-missing.png", 1, ["nope.png", "no such file"]),
    C("st-empty", f"stylize {{d}}/empty.png {FASTM} -o out/st-empty.png", 1, ["empty.png", "empty"]),
    C("st-bomb", f"stylize {{d}}/bomb.png {FASTM} -o out/st-bomb.png", 1, ["bomb.png", "exceeds"]),
    C("st-corrupt", f"stylize {{d}}/corrupt.png {FASTM} -o out/st-corrupt.png", 1, ["corrupt.png"]),
    C("st-batch-missing", f"stylize {{d}}/good.png {{d}}/nope.png {FASTM} --out-dir out/st-bm", 3, ["nope.png"],
      made=["out/st-bm/good_fast.png"]),
    C("st-batch-bomb", f"stylize {{d}}/good.png {{d}}/bomb.png {{d}}/good2.png {ADAIN} --out-dir out/st-bb", 3,
      ["bomb.png"], made=["out/st-bb/good_adain.png", "out/st-bb/good2_adain.png"]),
    C("st-empty-folder", f"stylize {{d}}/existing_dir {FASTM} --out-dir out/st-ef", 1, ["existing_dir", "no images"]),
    C("st-o-two-inputs", f"stylize {{d}}/good.png {{d}}/good2.png {FASTM} -o out/x.png", 2, ["-o takes one input"]),
    C("st-o-and-out-dir", f"stylize {{d}}/good.png {FASTM} -o out/x.png --out-dir out/y", 2, ["--out-dir"]),
    C("st-shard", f"stylize {{d}}/good.png {FASTM} --shard 3/2 --out-dir out/y", 2, ["--shard"]),
    C("st-name-template", f"stylize {{d}}/good.png {FASTM} --name {{foo}}.png --out-dir out/y", 2, ["--name"]),
    C("st-quality", f"stylize {{d}}/good.png {FASTM} --quality 0 -o out/x.jpg", 2, ["--quality"]),
    C("st-alpha", f"stylize {{d}}/good.png {FASTM} --alpha 2 -o out/x.png", 2, ["--alpha"]),
    C("st-method", "stylize {d}/good.png --method magic --style {d}/style.png -o out/x.png", 2, ["--method", "magic"]),
    C("st-fast-with-style", f"stylize {{d}}/good.png {FASTM} --style {{d}}/style.png -o out/x.png", 2, ["--style"]),
    C("st-adain-no-style", "stylize {d}/good.png --method adain -o out/x.png", 2, ["--style"]),
    C("st-mask-count", f"stylize {{d}}/good.png {ADAIN} --mask {{d}}/good.png --mask {{d}}/good2.png -o out/x.png", 2,
      ["--mask"]),
    C("st-tile-small", f"stylize {{d}}/good.png {FASTM} --tile 10 -o out/x.png", 2, ["--tile"]),
    C("st-size-small", f"stylize {{d}}/good.png {FASTM} --size 8 -o out/x.png", 2, ["--size"]),
    C("st-scales", f"stylize {{d}}/good.png {GATYS} --scales 0 -o out/x.png", 2, ["--scales"]),
    C("st-style-weights", f"stylize {{d}}/good.png {GATYS} --style-weights a,b -o out/x.png", 2, ["--style-weights"]),
    C("st-max-pixels", f"stylize {{d}}/good.png {FASTM} --max-pixels 100 -o out/st-mp.png", 1, ["good.png", "exceeds"],
      absent=["out/st-mp.png"]),
    C("st-gatys-style-missing", "stylize {d}/good.png --style {d}/nope.png --encoder {d}/genc.safetensors "
      "--iterations 1 --size 32 -o out/x.png", 1, ["nope.png"]),
    C("st-gatys-style-bomb", "stylize {d}/good.png --style {d}/bomb.png --encoder {d}/genc.safetensors "
      "--iterations 1 --size 32 -o out/x.png", 1, ["bomb.png", "exceeds"]),
    C("st-adain-style-corrupt", "stylize {d}/good.png --method adain --decoder {d}/dec.safetensors "
      "--encoder {d}/enc.safetensors --style {d}/corrupt.png -o out/x.png", 1, ["corrupt.png"]),
    C("st-adain-decoder-missing", "stylize {d}/good.png --method adain --decoder {d}/nodec.safetensors "
      "--encoder {d}/enc.safetensors --style {d}/style.png -o out/x.png", 1, ["nodec"]),
    C("st-adain-decoder-wrong", "stylize {d}/good.png --method adain --decoder {d}/wrong_model.safetensors "
      "--encoder {d}/enc.safetensors --style {d}/style.png -o out/x.png", 1, ["wrong_model.safetensors"]),
    C("st-gatys-encoder-evil", "stylize {d}/good.png --style {d}/style.png --encoder {d}/evil.pth --iterations 1 "
      "--size 32 -o out/x.png", 1, ["evil.pth"]),
    C("st-gatys-encoder-text", "stylize {d}/good.png --style {d}/style.png --encoder {d}/text.pth --iterations 1 "
      "--size 32 -o out/x.png", 1, ["text.pth"]),
    C("st-fast-model-unknown", "stylize {d}/good.png --method fast --model warpdrive -o out/x.png", 1,
      ["warpdrive"]),
    C("st-fast-model-hdr80", "stylize {d}/good.png --method fast --model {d}/hdr80.safetensors -o out/x.png", 1,
      ["hdr80.safetensors"]),
    C("st-fast-model-text", "stylize {d}/good.png --method fast --model {d}/text.pth -o out/x.png", 1, ["text.pth"]),
    C("st-out-dir-under-file", f"stylize {{d}}/good.png {FASTM} --out-dir {{d}}/afile/sub", 2, ["afile"]),
    C("st-gatys-optimizer", f"stylize {{d}}/good.png {GATYS} --optimizer sgd -o out/x.png", 2, ["sgd"]),
    C("st-gatys-init", f"stylize {{d}}/good.png {GATYS} --init zeros -o out/x.png", 2, ["zeros"]),
    C("st-gatys-iterations", f"stylize {{d}}/good.png {GATYS} --iterations -1 -o out/x.png", 2, ["--iterations"]),
    C("st-adain-huge-size", f"stylize {{d}}/good.png {ADAIN} --size 100000 --tile 0 -o out/x.png", 2,
      ["--size", "GB", "--tile"]),
    C("st-strip-gatys-size", f"stylize {{d}}/strip.png {{d}}/good.png {GATYS} --out-dir out/st-sg", 3,
      ["strip.png", "too small", "--size 32"], made=["out/st-sg/good_gatys.png"]),
    C("st-strip-fast-size", f"stylize {{d}}/strip.png {FASTM} --size 40 -o out/st-sf.png", 1,
      ["strip.png", "too small"], absent=["out/st-sf.png"]),
    C("st-ok-fast", f"stylize {{d}}/good.png {FASTM} -o out/st-ok/fast.png", 0, made=["out/st-ok/fast.png"]),
    C("st-ok-adain-16px", "stylize {d}/good.png --method adain --decoder {d}/dec.safetensors --encoder "
      "{d}/enc.safetensors --style {d}/style.png -o out/st-ok/adain.png", 0, made=["out/st-ok/adain.png"]),
    # ---- texture
    C("tx-no-style", "texture --width 16 --height 16 -o out/x.png", 2, ["--style"]),
    C("tx-width-small", "texture --style {d}/style.png --width 8 -o out/x.png", 2, ["--width"]),
    C("tx-style-missing", "texture --style {d}/nope.png --encoder {d}/genc.safetensors --width 16 --height 16 "
      "--iterations 1 -o out/x.png", 1, ["nope.png"]),
    C("tx-style-1px", "texture --style {d}/onepx.png --encoder {d}/genc.safetensors --width 16 --height 16 "
      "--iterations 1 -o out/x.png", 1, ["onepx.png", "too small"]),
    C("tx-o-dir", "texture --style {d}/style.png --encoder {d}/genc.safetensors --width 16 --height 16 "
      "--iterations 1 -o {d}/existing_dir", 2, ["existing_dir", "folder"]),
    C("tx-o-ext", "texture --style {d}/style.png --encoder {d}/genc.safetensors --width 16 --height 16 "
      "--iterations 1 -o out/t.xyz", 2, [".xyz"]),
    C("tx-o-parent-file", "texture --style {d}/style.png --encoder {d}/genc.safetensors --width 16 --height 16 "
      "--iterations 1 -o {d}/afile/t.png", 2, ["afile", "not a directory"]),
    C("tx-max-pixels", "texture --style {d}/style.png --encoder {d}/genc.safetensors --width 64 --height 64 "
      "--iterations 1 -o out/tx-mp.png", 2, ["--width", "limit"], env={"IMGFORGE_MAX_PIXELS": "1000"}),
    C("tx-ok", "texture --style {d}/style.png --encoder {d}/genc.safetensors --width 16 --height 16 "
      "--iterations 1 -o out/tx-ok.png", 0, made=["out/tx-ok.png"]),
    # ---- generate
    C("gen-seeds-bad", f"generate {G} --seeds abc --out-dir out/gx", 2, ["--seeds", "abc"]),
    C("gen-seeds-and-z", f"generate {G} --seeds 1 --z-file {{d}}/z_good.safetensors --out-dir out/gx", 2, ["--z-file"]),
    C("gen-z-missing", f"generate {G} --z-file {{d}}/nope.safetensors --out-dir out/gx", 1, ["nope.safetensors"]),
    C("gen-z-text", f"generate {G} --z-file {{d}}/latent_text.safetensors --out-dir out/gx", 1, ["latent_text"]),
    C("gen-z-names", f"generate {G} --z-file {{d}}/latent_names.safetensors --out-dir out/gx", 1,
      ["latent_names.safetensors"]),
    C("gen-w-wrong", f"generate {G} --w-file {{d}}/z_wrongdim.safetensors --out-dir out/gx", 1,
      ["z_wrongdim.safetensors"]),
    C("gen-noise-mode", f"generate {G} --seeds 0 --noise-mode loud --out-dir out/gx", 2, ["--noise-mode", "loud"]),
    C("gen-grid-ext", f"generate {G} --seeds 0 --grid out/g.xyz", 2, [".xyz"]),
    C("gen-weights-missing", "generate --weights {d}/nope.safetensors --seeds 0 --out-dir out/gx", 1, ["nope"]),
    C("gen-weights-text", "generate --weights {d}/text.pth --seeds 0 --out-dir out/gx", 1, ["text.pth"]),
    C("gen-weights-trunc", "generate --weights {d}/trunc.safetensors --seeds 0 --out-dir out/gx", 1,
      ["trunc.safetensors"]),
    C("gen-weights-wrong", "generate --weights {d}/wrong_model.safetensors --seeds 0 --out-dir out/gx", 1,
      ["wrong_model.safetensors", "not a generator"]),
    C("gen-batch-size", f"generate {G} --seeds 0 --batch-size 0 --out-dir out/gx", 2, ["--batch-size"]),
    C("gen-z-ok", f"generate {G} --z-file {{d}}/z_good.safetensors --out-dir out/gen-z-ok", 0,
      made=["out/gen-z-ok/z0001.png"]),
    # ---- invert / morph / style-mix / edit / inpaint / superres
    C("inv-missing", f"invert {{d}}/nope.png {G} {INV} --out-dir out/inv1", 1, ["nope.png"]),
    C("inv-batch-corrupt", f"invert {{d}}/good2.png {{d}}/corrupt.png {G} {INV} --out-dir out/inv2", 3,
      ["corrupt.png"], made=["out/inv2/good2.png", "out/inv2/good2.latent.safetensors"]),
    C("inv-space", f"invert {{d}}/good2.png {G} {INV} --space q --out-dir out/inv3", 2, ["--space"]),
    C("inv-loss", f"invert {{d}}/good2.png {G} --steps 1 --loss magic --out-dir out/inv4", 2, ["--loss", "magic"]),
    C("inv-fit", f"invert {{d}}/good2.png {G} {INV} --fit squash --out-dir out/inv5", 2, ["--fit", "squash"]),
    C("inv-out-dir-file", f"invert {{d}}/good2.png {G} {INV} --out-dir {{d}}/afile", 2, ["afile", "not a directory"]),
    C("inv-bad-kwargs", f"invert {{d}}/good2.png --weights {{d}}/w_bad_kwargs.safetensors {INV} --out-dir out/inv6",
      1, ["w_bad_kwargs.safetensors"]),
    C("inv-evil", f"invert {{d}}/good2.png --weights {{d}}/evil.pkl {INV} --out-dir out/inv7", 1, ["evil.pkl"]),
    C("morph-out-dir-file", f"morph 1 2 {G} --frames 2 --out-dir {{d}}/afile", 2, ["afile", "not a directory"]),
    C("morph-missing", f"morph {{d}}/nope.png 2 {G} --frames 2 --out-dir out/m6", 1, ["nope.png"]),
    C("morph-space", f"morph 1 2 {G} --space q --frames 2 --out-dir out/m7", 2, ["--space"]),
    C("morph-frames", f"morph 1 2 {G} --frames 1 --out-dir out/m8", 2, ["--frames"]),
    C("morph-z-nan", f"morph {{d}}/z_nan.safetensors 2 {G} --frames 2 --out-dir out/m9", 1, ["z_nan.safetensors"],
      absent=["out/m9"]),
    C("morph-ok", f"morph 1 2 {G} --frames 2 --out-dir out/morph-ok", 0, made=["out/morph-ok/morph.gif"]),
    C("sm-layers", f"style-mix --rows 1 --cols 2 --layers 99 {G} -o out/sm1.png", 2, ["--layers", "99"]),
    C("sm-no-rows", f"style-mix --cols 2 {G} -o out/sm2.png", 2, ["--rows"]),
    C("sm-o-dir", f"style-mix --rows 1 --cols 2 {G} -o {{d}}/existing_dir", 2, ["existing_dir", "folder"]),
    C("sm-latent-nan", f"style-mix --rows {{d}}/z_nan.safetensors --cols 2 {G} -o out/sm3.png", 1,
      ["z_nan.safetensors"], absent=["out/sm3.png"]),
    C("sm-ok", f"style-mix --rows 1 --cols 2 --styles coarse {G} -o out/sm-ok.png", 0, made=["out/sm-ok.png"]),
    C("edit-no-direction", f"edit 3 {G} -o out/e2.png", 2, ["--direction"]),
    C("edit-latent-nan", f"edit {{d}}/lat_nan.safetensors {G} --direction 0 -o out/e3.png", 1,
      ["lat_nan.safetensors"], absent=["out/e3.png"]),
    C("edit-o-ext", f"edit 3 {G} --direction 0 -o out/e4.xyz", 2, [".xyz"]),
    C("edit-layers", f"edit 3 {G} --direction 0 --layers nowhere -o out/e5.png", 2, ["--layers", "nowhere"]),
    C("edit-ok", f"edit 3 {G} --direction 0 --frames 2 -o out/edit-ok.png", 0, made=["out/edit-ok.png"]),
    C("inp-mask-missing", f"inpaint {{d}}/good2.png --mask {{d}}/nope.png {G} {INV} -o out/i1.png", 1, ["nope.png"]),
    C("inp-mask-bomb", f"inpaint {{d}}/good2.png --mask {{d}}/bomb.png {G} {INV} -o out/i2.png", 1, ["bomb.png"]),
    C("inp-image-corrupt", f"inpaint {{d}}/corrupt.png --mask {{d}}/good2.png {G} {INV} -o out/i3.png", 1,
      ["corrupt.png"]),
    C("inp-combine", f"inpaint {{d}}/good2.png --mask {{d}}/good2.png {G} {INV} --combine max -o out/i4.png", 2,
      ["--combine"]),
    C("inp-samples", f"inpaint {{d}}/good2.png --mask {{d}}/good2.png {G} {INV} --samples 5 --candidates 2 "
      "-o out/i5.png", 2, ["--samples", "--candidates"]),
    C("inp-latent-dir", f"inpaint {{d}}/good2.png --mask {{d}}/good2.png {G} {INV} -o out/i6.png "
      "--save-latent {d}/existing_dir", 2, ["--save-latent", "existing_dir"], absent=["out/i6.png"]),
    C("sr-kernel", f"superres {{d}}/small4.png {G} {INV} --kernel sharp -o out/s1.png", 2, ["--kernel", "sharp"]),
    C("sr-missing", f"superres {{d}}/nope.png {G} {INV} -o out/s2.png", 1, ["nope.png"]),
    C("sr-o-dir", f"superres {{d}}/small4.png {G} {INV} -o {{d}}/existing_dir", 2, ["existing_dir", "folder"]),
    C("sr-scale", f"superres {{d}}/small4.png {G} {INV} --scale 3 -o out/s3.png", 2, ["--scale"]),
    C("sr-ok-both", f"superres {{d}}/small4.png {G} {INV} -o out/sr-ok/sr.png --save-latent out/sr-ok/sr.safetensors",
      0, made=["out/sr-ok/sr.png", "out/sr-ok/sr.safetensors"]),
    # ---- pix2pix / cyclegan apply
    C("p2p-weights-missing", "pix2pix apply {d}/good.png --weights {d}/nope.safetensors -o out/px.png", 1, ["nope"]),
    C("p2p-weights-evil", "pix2pix apply {d}/good.png --weights {d}/evil.pth -o out/px.png", 1, ["evil.pth"]),
    C("p2p-weights-text", "pix2pix apply {d}/good.png --weights {d}/text.pth -o out/px.png", 1, ["text.pth"]),
    C("p2p-weights-unknown-arch", "pix2pix apply {d}/good.png --weights {d}/w_unknown_arch.safetensors -o out/px.png",
      1, ["w_unknown_arch.safetensors", "warp_drive"]),
    C("p2p-direction", "pix2pix apply {d}/good.png --weights {d}/p2p.safetensors --direction sideways -o out/px.png",
      2, ["--direction", "sideways"]),
    C("p2p-batch-corrupt", "pix2pix apply {d}/batch_mixed --weights {d}/p2p.safetensors --eval --out-dir out/p2p-bc",
      3, ["b_corrupt.png"], made=["out/p2p-bc/a_good_pix2pix.png", "out/p2p-bc/c_good_pix2pix.png"]),
    C("p2p-o-dir", "pix2pix apply {d}/good.png --weights {d}/p2p.safetensors -o {d}/existing_dir", 2,
      ["existing_dir", "folder"]),
    C("p2p-out-dir-file", "pix2pix apply {d}/good.png --weights {d}/p2p.safetensors --out-dir {d}/afile", 2,
      ["afile", "not a directory"]),
    C("cg-tile-no-eval", "cyclegan apply {d}/good.png --weights {d}/cg.safetensors --tile 32 -o out/cx.png", 2,
      ["--tile", "--eval"]),
    C("cg-1px", "cyclegan apply {d}/onepx.png --weights {d}/cg.safetensors --eval -o out/cg-1px.png", 0,
      made=["out/cg-1px.png"]),
    C("cg-no-input", "cyclegan apply --weights {d}/cg.safetensors -o out/cx.png", 2, ["INPUT"]),
    # ---- pix2pix / cyclegan train and test
    C("p2p-train-missing", "pix2pix train {d}/nodata --netG unet_32 --ngf 4 --ndf 4 --load-size 32 --crop-size 32 "
      "--steps 1 -o out/pt2", 1, ["nodata"]),
    C("p2p-train-gan", "pix2pix train {d}/pairs --netG unet_32 --gan-mode magic --load-size 32 --crop-size 32 "
      "--steps 1 -o out/pt3", 2, ["--gan-mode", "magic"]),
    C("p2p-train-policy", "pix2pix train {d}/pairs --netG unet_32 --lr-policy sometimes --load-size 32 "
      "--crop-size 32 --steps 1 -o out/pt4", 2, ["--lr-policy"]),
    C("p2p-train-preprocess", "pix2pix train {d}/pairs --netG unet_32 --preprocess squash --load-size 32 "
      "--crop-size 32 --steps 1 -o out/pt5", 2, ["--preprocess", "squash"]),
    C("p2p-train-netd", "pix2pix train {d}/pairs --netG unet_32 --netD tower --load-size 32 --crop-size 32 "
      "--steps 1 -o out/pt6", 2, ["--netD", "tower"]),
    C("p2p-train-bad-images", "pix2pix train {d}/pairs_bad --netG unet_32 --ngf 4 --ndf 4 --load-size 32 "
      "--crop-size 32 --steps 1 --sample-every 0 -o out/p2p-bad", 0, made=["out/p2p-bad/checkpoint.pt"]),
    C("cg-train-bad-images", "cyclegan train {d}/unpaired_bad --netG resnet_1blocks --ngf 4 --ndf 4 --load-size 32 "
      "--crop-size 32 --steps 1 --sample-every 0 -o out/cg-bad", 0, made=["out/cg-bad/checkpoint.pt"]),
    C("cg-train-crop", "cyclegan train {d}/unpaired --netG resnet_1blocks --load-size 16 --crop-size 32 --steps 1 "
      "-o out/ct2", 2, ["--crop-size", "--load-size"]),
    C("p2p-test-weights", "pix2pix test {d}/pairs --weights {d}/nope.safetensors -o out/ptest", 1, ["nope"]),
    C("p2p-test-out-file", "pix2pix test {d}/pairs --phase val --weights {d}/p2p.safetensors -o {d}/afile", 2, ["afile"]),
    C("cg-test-missing", "cyclegan test {d}/nodata --weights {d}/cg.safetensors -o out/ctest", 1, ["nodata"]),
    # ---- stylegan train
    C("sg-missing", "stylegan train {d}/nodata --resolution 8 --steps 1 --run-dir out/sg2", 1, ["nodata"]),
    C("sg-loss", "stylegan train {d}/sg_data --loss magic --steps 1 --run-dir out/sg3", 2, ["--loss", "magic"]),
    C("sg-augment", "stylegan train {d}/sg_data --augment always --steps 1 --run-dir out/sg4", 2, ["--augment"]),
    C("sg-export-ext", "stylegan train {d}/sg_data --export out/g.pt --steps 1 --run-dir out/sg5", 2, ["--export"]),
    C("sg-export-dir", "stylegan train {d}/sg_data --export {d}/existing_dir --steps 1 --run-dir out/sg6", 2,
      ["--export"]),
    C("sg-precision", "stylegan train {d}/sg_data --steps 1 --run-dir out/sg7", 2, ["--precision"],
      pre=["--precision", "bf16"]),
    C("sg-empty", "stylegan train {d}/existing_dir --resolution 8 --steps 1 --run-dir out/sg8", 1,
      ["existing_dir", "no images"]),
    # ---- fast-style / adain train
    C("ft-style-missing", "fast-style train --content-dir {d}/content --style {d}/nope.png --vgg {d}/genc.safetensors "
      "--image-size 16 --steps 1 --run-dir out/ft2", 1, ["nope.png"]),
    C("ft-content-missing", "fast-style train --content-dir {d}/nodata --style {d}/style.png "
      "--vgg {d}/genc.safetensors --image-size 16 --steps 1 --run-dir out/ft3", 1, ["nodata"]),
    C("ft-image-size", "fast-style train --content-dir {d}/content --style {d}/style.png --image-size 4 --steps 1 "
      "--run-dir out/ft4", 2, ["--image-size"]),
    C("ft-style-layers", "fast-style train --content-dir {d}/content --style {d}/style.png --vgg {d}/genc.safetensors "
      "--image-size 16 --steps 1 --style-layers relu9_9 --run-dir out/ft5", 2, ["--style-layers", "relu9_9"]),
    C("ft-content-layer", "fast-style train --content-dir {d}/content --style {d}/style.png "
      "--vgg {d}/genc.safetensors --image-size 16 --steps 1 --content-layer nope --run-dir out/ft6", 2,
      ["--content-layer", "nope"]),
    C("ft-crop", "fast-style train --content-dir {d}/content --style {d}/style.png --crop sideways --steps 1 "
      "--run-dir out/ft7", 2, ["--crop", "sideways"]),
    C("ad-no-style-dir", "adain train --content-dir {d}/content --steps 1 --run-dir out/ad1", 2, ["--style-dir"]),
    C("ad-style-dir-missing", "adain train --content-dir {d}/content --style-dir {d}/nodata --vgg {d}/enc.safetensors "
      "--image-size 32 --resize 40 --steps 1 --run-dir out/ad2", 1, ["nodata"]),
    C("ad-warmup-negative", "adain train --content-dir {d}/content --style-dir {d}/content --steps 1 "
      "--warmup-steps -1 --run-dir out/ad3", 2, ["--warmup-steps"]),
    C("ad-run-dir-file", "adain train --content-dir {d}/content --style-dir {d}/content --steps 1 "
      "--run-dir {d}/afile", 2, ["afile"]),
    C("ad-bad-images", "adain train --content-dir {d}/content_bad --style-dir {d}/content --vgg {d}/enc.safetensors "
      "--image-size 32 --resize 40 --batch-size 2 --steps 1 --run-dir out/ad-bad", 0, made=["out/ad-bad"]),
    # ---- weights
    C("w-list-bad-flag", "weights list --colour", 2, ["--colour"]),
    C("w-fetch-unknown", "weights fetch warpdrive", 1, ["warpdrive"]),
    C("w-fetch-offline", "weights fetch vgg19", 1, ["vgg19", "offline"]),
    C("w-import-missing", "weights import {d}/nope.pth -o out/w1.safetensors", 1, ["nope.pth"]),
    C("w-import-evil", "weights import {d}/evil.pth -o out/w2.safetensors", 1, ["evil.pth"], absent=["out/w2.safetensors"]),
    C("w-import-evil-pkl", "weights import {d}/evil.pkl -o out/w3.safetensors", 1, ["evil.pkl"]),
    C("w-import-text", "weights import {d}/text.pth -o out/w4.safetensors", 1, ["text.pth"]),
    C("w-import-format", "weights import {d}/text.pth --format warpdrive -o out/w5.safetensors", 1, ["warpdrive"]),
    C("w-import-hdr80", "weights import {d}/hdr80.safetensors -o out/w6.safetensors", 1, ["hdr80.safetensors"]),
    C("w-import-o-dir", "weights import {d}/text.pth -o {d}/existing_dir", 2, ["existing_dir"]),
    C("w-verify-unknown", "weights verify warpdrive", 1, ["warpdrive"]),
    C("w-path-unknown", "weights path warpdrive", 1, ["warpdrive"]),
    C("g80-generate-ok", "generate --weights {d}/g80.safetensors --seeds 0 --out-dir out/g80", 0,
      made=["out/g80/seed0000.png"]),
    C("g80-generate", "generate --weights {d}/g80_trunc.safetensors --seeds 0 --out-dir out/gx", 1,
      ["g80_trunc.safetensors", "safetensors"], never=["pickle"]),
    C("g80-edit", "edit 3 --weights {d}/g80_trunc.safetensors --direction 0 -o out/e9.png", 1,
      ["g80_trunc.safetensors", "safetensors"], never=["pickle"]),
    C("g80-morph", "morph 1 2 --weights {d}/g80_trunc.safetensors --frames 2 --out-dir out/m10", 1,
      ["g80_trunc.safetensors"], never=["pickle"]),
    C("g80-invert", f"invert {{d}}/good2.png --weights {{d}}/g80_trunc.safetensors {INV} --out-dir out/inv8", 1,
      ["g80_trunc.safetensors"], never=["pickle"]),
    C("g80-p2p", "pix2pix apply {d}/good.png --weights {d}/g80_trunc.safetensors -o out/px.png", 1,
      ["g80_trunc.safetensors"], never=["pickle"]),
    C("w-path-file", "weights path {d}/fast.safetensors", 0, ["fast.safetensors"]),
]
CASES += MORE

# Commands and methods added later (WCT, patch textures, Perlin, PCA, sketch2image, variation, noise layers, the GAN
# family, metrics): their rows.
WCT = "--method wct --style {d}/style.png"
LATER: List[Case] = [
    C("wct-flat-style", "stylize {d}/good.png --method wct --style {d}/flat.png -o out/wct1.png", 1,
      ["flat colour"], absent=["out/wct1.png"]),
    C("wct-bad-levels", f"stylize {{d}}/good.png {WCT} --levels 7 -o out/wct2.png", 2, ["--levels"]),
    C("wct-levels-not-in-file", f"stylize {{d}}/good.png {WCT} --levels 5,4 -o out/wct3.png", 2, ["--levels", "1,2,3"]),
    C("wct-batch-1px", f"stylize {{d}}/batch_1px {WCT} --out-dir out/wct4", 3, ["b_onepx.png"],
      made=["out/wct4/a_good_wct.png", "out/wct4/c_good_wct.png"]),
    C("wct-decoder-wrong", f"stylize {{d}}/good.png {WCT} --decoder {{d}}/fast.safetensors -o out/wct5.png", 1,
      ["fast.safetensors", "wct"]),
    C("mrf-mask", "stylize {d}/good.png --method mrf --style {d}/style.png --mask {d}/good.png -o out/mrf1.png", 2,
      ["--mask", "mrf"]),
    C("el-window-even", "texture --method efros-leung --style {d}/style.png --window 4 -o out/t1.png", 2,
      ["--window"]),
    C("el-sample-small", "texture --method efros-leung --style {d}/small4.png --window 5 --width 16 --height 16 "
      "-o out/t2.png", 2, ["smaller than the window"]),
    C("el-too-large", "texture --method efros-leung --style {d}/style.png --width 2000 --height 2000 -o out/t3.png", 2,
      ["efros-leung", "quilting"]),
    C("quilt-no-sample", "texture --method quilting -o out/t4.png", 2, ["needs a texture sample"]),
    C("quilt-overlap", "texture --method quilting --style {d}/style.png --block 16 --overlap 16 -o out/t5.png", 2,
      ["--overlap"]),
    C("perlin-octaves", "texture --method perlin --octaves 0 -o out/t6.png", 2, ["--octaves"]),
    C("perlin-huge", "texture --method perlin --width 100000 --height 100000 -o out/t7.png", 2, ["100000"],
      absent=["out/t7.png"]),
    C("texture-method-unknown", "texture --method nope --style {d}/style.png -o out/t8.png", 2, ["--method"]),
    C("pca-too-many", "pca {d}/batch_mixed --components 30 --out-dir out/pca1", 2, ["--components 30"]),
    C("pca-empty", "pca {d}/nothing --out-dir out/pca2", 1, ["no readable images"]),
    C("pca-outdir-file", "pca {d}/sg_data --out-dir {d}/afile", 2, ["afile", "not a directory"]),
    C("sketch-empty", "sketch2image {d}/blank_sketch.png -o out/sk1.png", 1, ["blank_sketch.png", "empty"],
      absent=["out/sk1.png"]),
    C("sketch-o-many", "sketch2image {d}/good.png {d}/good2.png -o out/sk2.png", 2, ["-o"]),
    C("sketch-corrupt", "sketch2image {d}/corrupt.png --steps 1 --out-dir out/sk3", 1, ["corrupt.png"]),
    C("variation-n1", "variation --n 1 -o out/v1.png", 2, ["--n"]),
    C("variation-layers", "variation --noise-layers 3-1 -o out/v2.png", 2, ["--noise-layers"]),
    C("variation-ok", f"variation {G} --n 3 -o out/v3.png", 0, made=["out/v3.png"]),
    C("gen-noise-layers", f"generate {G} --seeds 0 --noise-layers sideways --out-dir out/gn", 2,
      ["--noise-layers"]),
    C("gan-loss", "gan train {d}/sg_data --loss minimax --run-dir out/gan1", 2, ["--loss", "minimax"]),
    C("gan-resolution", "gan train {d}/sg_data --resolution 24 --run-dir out/gan2", 2, ["power of two"]),
    C("gan-empty", "gan train {d}/nothing --run-dir out/gan3", 1, ["no images"]),
    C("gan-cond-flat", "gan train {d}/sg_data --cond --run-dir out/gan4", 2, ["--cond"]),
    C("gen-chain-stylegan", f"generate {G} --seeds 0 --chain out/chain.png", 2, ["--chain", "multi-scale"],
      absent=["out/chain.png"]),
    C("gan-ema-kimg", "gan train {d}/sg_data --arch progan --ema-kimg -1 --run-dir out/gan9", 2, ["--ema-kimg"]),
    C("gan-start-res", "gan train {d}/sg_data --arch progan --resolution 8 --start-resolution 16 --run-dir out/gan5", 2,
      ["--resolution 8", "smaller than the start resolution 16"]),
    C("gan-lapgan-start-res", "gan train {d}/sg_data --arch lapgan --start-resolution 4 --run-dir out/gan6", 2,
      ["--start-resolution 4", ">= 8"]),
    C("gan-combine", "gan train {d}/sg_data --arch msggan --combine sum --run-dir out/gan7", 2, ["--combine", "sum"]),
    C("gan-coarse", "gan train {d}/sg_data --arch lapgan --coarse conv --run-dir out/gan10", 2, ["--coarse", "conv"]),
    C("gan-progan-cond", "gan train {d}/sg_data --arch progan --cond --run-dir out/gan8", 2, ["--cond", "progan"]),
    # an option of another arch would do nothing: refused when given, also at its default value
    C("gan-coarse-progan", "gan train {d}/sg_data --arch progan --coarse mlp --run-dir out/gan11", 2,
      ["--coarse is for --arch lapgan, not progan"], absent=["out/gan11"]),
    C("gan-coarse-default-dcgan", "gan train {d}/sg_data --coarse dcgan --run-dir out/gan12", 2,
      ["--coarse", "not dcgan"], absent=["out/gan12"]),
    C("gan-combine-lapgan", "gan train {d}/sg_data --arch lapgan --combine simple --run-dir out/gan13", 2,
      ["--combine is for --arch msggan, not lapgan"], absent=["out/gan13"]),
    C("gan-phase-images-msggan", "gan train {d}/sg_data --arch msggan --phase-images 1000 --run-dir out/gan14", 2,
      ["--phase-images is for --arch progan, not msggan"], absent=["out/gan14"]),
    C("gan-fade-images-mlp", "gan train {d}/sg_data --arch mlp --fade-images 800000 --run-dir out/gan15", 2,
      ["--fade-images is for --arch progan, not mlp"], absent=["out/gan15"]),
    # an option of another loss would do nothing: refused when given, also at its default value
    C("gan-gp-lambda-hinge", "gan train {d}/sg_data --loss hinge --gp-lambda 5 --run-dir out/gan16", 2,
      ["--gp-lambda is for --loss wgan-gp|dragan, not hinge; drop it"], absent=["out/gan16"]),
    C("gan-gamma-default-ns", "gan train {d}/sg_data --gamma 0.5 --run-dir out/gan17", 2,
      ["--gamma is for --loss began, not ns"], absent=["out/gan17"]),
    C("gan-drift-lapgan", "gan train {d}/sg_data --arch lapgan --drift 0.001 --run-dir out/gan18", 2,
      ["--drift is for --arch mlp|dcgan|progan|msggan, not lapgan"], absent=["out/gan18"]),
    C("gan-drift-began", "gan train {d}/sg_data --arch dcgan --loss began --drift 0 --run-dir out/gan19", 2,
      ["--drift is for --loss", "not began"], absent=["out/gan19"]),
    C("gan-beta1-wgan", "gan train {d}/sg_data --loss wgan --beta1 0.5 --run-dir out/gan20", 2,
      ["--beta1/--beta2 are for --optimizer adam", "rmsprop"], absent=["out/gan20"]),
    C("gan-resume-other-arch", "gan train {d}/sg_data --arch progan --resolution 8 --z-dim 4 --width 4 --batch-size 2 "
      "--steps 2 --run-dir {d}/gan_run", 1, ["--arch dcgan", "not --arch progan", "--run-dir"]),
    C("vae-resolution", "vae train {d}/sg_data --resolution 12 --run-dir out/vae1", 2, ["power of two"]),
    C("metrics-empty", "metrics fid {d}/nothing {d}/sg_data --extractor digits", 1, ["nothing"]),
    C("metrics-inception-offline", "metrics fid {d}/sg_data {d}/batch_1px", 1, ["imgforge weights fetch fid-inception"]),
    C("metrics-psnr-sizes", "metrics psnr {d}/good.png {d}/good2.png", 1, ["size"]),
]
CASES += LATER


# ------------------------------------------------------------------------------------------------------- runner


def _invoke(case: Case, d: Path):  # type: ignore[no-untyped-def]
    fill = lambda s: s.replace("{d}", str(d))  # noqa: E731
    args = ["--device", "cpu", "--precision", "fp32", "--quiet", *case.pre, *[fill(a) for a in case.args]]
    env = {"IMGFORGE_OFFLINE": "1", "IMGFORGE_WEIGHTS_PATH": str(d / "no_weights"),
           "IMGFORGE_CACHE_DIR": str(d / "cache"), "COLUMNS": "200", **case.env}
    old = os.getcwd()
    os.chdir(d)
    try:
        return CliRunner().invoke(app, args, env=env)
    finally:
        os.chdir(old)


def _leftovers(root: Path) -> List[str]:
    return [str(p) for p in root.rglob("*.tmp")]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, ws: Path) -> None:
    before = set(_leftovers(ws))
    res = _invoke(case, ws)
    out = res.output
    detail = f"exit {res.exit_code}, exception {res.exception!r}, output:\n{out}"
    assert res.exception is None or isinstance(res.exception, SystemExit), detail
    assert "Traceback" not in out, detail
    assert res.exit_code == case.code, detail
    low = out.lower()
    for word in case.say:
        assert word.lower() in low, f"{word!r} missing; {detail}"
    for line in out.splitlines():
        if line.startswith(("error:", "usage error:")):
            assert len(line) < 600, detail
    for word in case.never:
        assert word.lower() not in low, f"{word!r} in the output; {detail}"
    for rel in case.made:
        assert (ws / rel).exists(), f"{rel} not written; {detail}"
    for rel in case.absent:
        assert not (ws / rel).exists(), f"{rel} written; {detail}"
    assert set(_leftovers(ws)) == before, f"temporary files left; {detail}"
    assert not (ws / "PWNED").exists()


# ------------------------------------------------------------------------------------- cases a subprocess needs

SG_TINY = ["--resolution", "8", "--channel-base", "32", "--channel-max", "8", "--z-dim", "8", "--w-dim", "8",
           "--map-layers", "1", "--batch-size", "2", "--sample-every", "0"]


def _fsize_limit(limit: int):  # type: ignore[no-untyped-def]
    def apply() -> None:
        import resource
        import signal

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write over the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.skipif(not hasattr(os, "fork"), reason="RLIMIT_FSIZE needs a POSIX system")
def test_disk_full_checkpoint_is_one_line_and_keeps_the_previous_one(ws: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    from .helpers import REPO

    run = tmp_path / "run"
    base = ["--device", "cpu", "--quiet", "stylegan", "train", str(ws / "sg_data"), *SG_TINY, "--run-dir", str(run)]
    r = CliRunner().invoke(app, [*base, "--steps", "1"], env={"IMGFORGE_OFFLINE": "1"})
    assert r.exit_code == 0, r.output
    before = (run / "checkpoint.pt").read_bytes()
    env = {**os.environ, "PYTHONPATH": str(REPO), "IMGFORGE_OFFLINE": "1", "IMGFORGE_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "imgforge", *base, "--steps", "2", "--checkpoint-every", "1"],
                       capture_output=True, env=env, timeout=300, preexec_fn=_fsize_limit(len(before) // 2))
    err = p.stderr.decode()
    assert p.returncode == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "checkpoint.pt" in err and "previous checkpoint is kept" in err, err
    assert (run / "checkpoint.pt").read_bytes() == before
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*.tmp"))


def test_stdout_closed_pipe_is_a_failure_not_a_success(ws: Path) -> None:
    import subprocess
    import sys

    from .helpers import REPO

    env = {**os.environ, "PYTHONPATH": str(REPO), "IMGFORGE_OFFLINE": "1", "IMGFORGE_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-m", "imgforge", "--precision", "fp32", "stylize", str(ws / "good.png"),
                          "--method", "fast", "--model", str(ws / "fast.safetensors"), "-o", "-"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # the reader goes away before anything is written (as `| head -c 0` would)
    err = p.stderr.read().decode()
    assert p.wait(timeout=300) != 0, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert "1 written" not in err and "broken pipe" in err, err


def test_nan_image_is_never_written(tmp_path: Path) -> None:
    from imgforge.errors import ComputeError
    from imgforge.io import save_image

    img = torch.rand(3, 8, 8)
    img[1, 2, 3] = float("nan")
    with pytest.raises(ComputeError, match="NaN"):
        save_image(img, tmp_path / "nan.png")
    assert not list(tmp_path.iterdir())
    img[1, 2, 3] = float("inf")
    with pytest.raises(ComputeError):
        save_image(img, tmp_path / "inf.png")
    assert not list(tmp_path.iterdir())


def test_table_covers_every_command_group() -> None:
    firsts = {" ".join(c.args[:2]) if c.args[0] in ("pix2pix", "cyclegan", "stylegan", "weights", "fast-style", "adain")
              else c.args[0] for c in CASES}
    want = {"stylize", "texture", "generate", "invert", "morph", "style-mix", "edit", "inpaint", "superres",
            "pix2pix apply", "pix2pix train", "pix2pix test", "cyclegan apply", "cyclegan train", "cyclegan test",
            "stylegan train", "fast-style train", "adain train", "weights list", "weights fetch", "weights import",
            "weights verify", "weights path", "pca", "sketch2image", "variation", "gan", "vae", "metrics"}
    assert want <= firsts, want - firsts
    assert len(CASES) >= 120


@pytest.mark.parametrize("case_id", ["threads-env", "gen-bad-kwargs", "st-batch-missing"])
def test_in_process_rows_match_the_real_process(case_id: str, ws: Path) -> None:
    """The table runs in-process; a few rows run again as ``python -m imgforge`` must give the same exit code and
    the same error lines (so CliRunner reproduces what users see)."""
    from .helpers import run_cli

    case = next(c for c in CASES if c.id == case_id)
    res = _invoke(case, ws)
    args = ["--device", "cpu", "--precision", "fp32", "--quiet", *[a.replace("{d}", str(ws)) for a in case.args]]
    p = run_cli(args, ws, env={"IMGFORGE_WEIGHTS_PATH": str(ws / "no_weights"), "IMGFORGE_CACHE_DIR": str(ws / "cache"),
                               "IMGFORGE_THREADS": "1", **case.env})
    err = p.stderr.decode()
    assert p.returncode == res.exit_code == case.code, (err, res.output)
    assert "Traceback" not in err
    errors = lambda text: [ln for ln in text.splitlines() if ln.startswith(("error:", "usage error:"))]  # noqa: E731
    assert errors(err) == errors(res.output) and errors(err), (err, res.output)
