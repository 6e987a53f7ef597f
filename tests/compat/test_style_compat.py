"""Compatibility with the published style-network formats (fixtures ``style/F`` and ``style/G``).

F: a fast-neural-style TransformerNet checkpoint in the published (pre-1.6, legacy InstanceNorm stats) format, read
through our converter, reproduces the reference output. G: pytorch-AdaIN ``decoder.pth`` and ``vgg_normalised.pth``
(regenerated here from its recipe into tmp_path) reproduce ``style_transfer()`` of ``test.py``: plain, alpha,
two-style interpolation, preserve-colour. Tolerance as the READMEs suggest: ``max|got - expected| <= 1e-4 *
max|expected|`` per tensor; images derived from the outputs as the reference saves them agree within 1 grey level.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from imgforge.errors import WeightsError
from imgforge.hub.converters import Converted, get_converter
from imgforge.methods.adain import adain_stylize, blend_features
from imgforge.methods.fast import fast_stylize_255, reference_uint8
from imgforge.models.adain import adain_encoder
from imgforge.models.registry import build
from imgforge.ops.stats import coral
from tests.conftest import require

pytestmark = pytest.mark.compat

REL_TOL = 1e-4


def _rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    assert got.shape == want.shape, (tuple(got.shape), tuple(want.shape))
    return float((got.double() - want.double()).abs().max() / want.double().abs().max())


def _model(conv: Converted) -> torch.nn.Module:
    model = build(conv.arch, **conv.arch_kwargs)
    model.load_state_dict(conv.state_dict, strict=True)
    return model.eval()


def _manifest_sha(folder: Path, name: str) -> str:
    return json.loads(require(folder / "manifest.json").read_text())[name]["sha256"]


# ====================================================================== F: fast-neural-style


@pytest.fixture(scope="module")
def fdir(compat_dir: Path) -> Path:
    return require(compat_dir / "style" / "F")


@pytest.fixture(scope="module")
def f_converted(fdir: Path) -> Converted:
    return get_converter("fast_style")(require(fdir / "checkpoint.pth"))


def test_F_converter_reads_published_format(fdir: Path, f_converted: Converted) -> None:
    entries = json.loads(require(fdir / "keys_full.json").read_text())
    legacy = [k for k, _s, _d in entries if re.search(r"in\d+\.running_(mean|var)$", k)]
    assert f_converted.extra["dropped_keys"].split(",") == legacy and len(legacy) == 30
    assert list(f_converted.state_dict) == [k for k, _s, _d in entries if k not in legacy]
    assert f_converted.source_sha256 == _manifest_sha(fdir, "checkpoint.pth")


def _in_affine(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The README's deterministic InstanceNorm affine values (exact in float32)."""
    out = dict(sd)
    for k, v in sd.items():
        c = torch.arange(v.shape[0], dtype=torch.float64)
        if re.search(r"in\d+\.weight$", k):
            out[k] = (0.5 + torch.remainder(7 * c, 16) / 16).float()
        elif re.search(r"in\d+\.bias$", k):
            out[k] = ((torch.remainder(5 * c, 9) - 4) / 8).float()
    return out


@pytest.mark.parametrize("key", ["output", "output_in_affine"])
def test_F_forward(fdir: Path, f_converted: Converted, key: str) -> None:
    x = load_file(str(require(fdir / "input.safetensors")))["input"]
    want = load_file(str(require(fdir / "expected.safetensors")))[key]
    conv = f_converted
    if key == "output_in_affine":
        conv = Converted(_in_affine(conv.state_dict), conv.arch, conv.arch_kwargs)
    got = fast_stylize_255(x, _model(conv))
    assert _rel_err(got, want) <= REL_TOL
    # as the reference saves it: clamp(0, 255), truncating uint8 cast
    assert (reference_uint8(got).int() - reference_uint8(want).int()).abs().max() <= 1


# ====================================================================== G: AdaIN

_GAMMA, _M1, _M2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _recipe_tensor(seed: int, t: int, shape: List[int], p: int) -> np.ndarray:
    """The fixtures' "FXH16" weight recipe (G/README.md): splitmix64 finaliser of (seed<<40 | t<<32 | j)."""
    j = np.arange(int(np.prod(shape)), dtype=np.uint64)
    z = (np.uint64(seed) << np.uint64(40)) | (np.uint64(t) << np.uint64(32)) | j
    with np.errstate(over="ignore"):
        z = z + _GAMMA
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    k = (z >> np.uint64(53)).astype(np.int64) - 1024
    return np.ldexp(k.astype(np.float32), -p).astype(np.float32).reshape(shape)


def _regenerate(recipe_path: Path) -> "OrderedDict[str, torch.Tensor]":
    recipe = json.loads(recipe_path.read_text())
    sd: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    for t, (key, shape, p, sha) in enumerate(recipe["tensors"]):
        a = _recipe_tensor(recipe["seed"], t, shape, p)
        assert hashlib.sha256(a.astype("<f4").tobytes()).hexdigest() == sha, f"recipe tensor {key} differs"
        sd[key] = torch.from_numpy(a)
    return sd


@pytest.fixture(scope="module")
def gdir(compat_dir: Path) -> Path:
    return require(compat_dir / "style" / "G")


@pytest.fixture(scope="module")
def g_expected(gdir: Path) -> Dict[str, torch.Tensor]:
    return load_file(str(require(gdir / "expected.safetensors")))


@pytest.fixture(scope="module")
def g_inputs(gdir: Path) -> Dict[str, torch.Tensor]:
    return load_file(str(require(gdir / "inputs.safetensors")))


@pytest.fixture(scope="module")
def g_decoder(gdir: Path) -> torch.nn.Module:
    conv = get_converter("adain_decoder")(require(gdir / "decoder.pth"))
    assert conv.source_sha256 == _manifest_sha(gdir, "decoder.pth")
    return _model(conv)


@pytest.fixture(scope="module")
def g_encoder(gdir: Path, tmp_path_factory: pytest.TempPathFactory) -> torch.nn.Module:
    try:
        convert = get_converter("adain_vgg_normalised")
    except WeightsError:
        pytest.skip("converter 'adain_vgg_normalised' (imgforge.hub.convert_vgg) is not available in this tree")
    # the full 34-tensor file in the published legacy (non-zip) format, regenerated from its recipe
    path = tmp_path_factory.mktemp("adain") / "vgg_normalised.pth"
    torch.save(_regenerate(require(gdir / "recipe_vgg_normalised.json")), path, _use_new_zipfile_serialization=False)
    vgg = _model(convert(path))
    return adain_encoder(vgg).eval()


def test_G_recipe_reproduces_decoder_file(gdir: Path) -> None:
    """Validates the recipe implementation used for vgg_normalised.pth against a file that is on disk."""
    regen = _regenerate(require(gdir / "recipe_decoder.json"))
    on_disk = torch.load(str(require(gdir / "decoder.pth")), map_location="cpu", weights_only=True)
    assert list(regen) == list(on_disk)
    assert all(torch.equal(regen[k], on_disk[k]) for k in regen)


def test_G_decoder_layout(gdir: Path, g_decoder: torch.nn.Module) -> None:
    entries = json.loads(require(gdir / "keys_full.json").read_text())["decoder.pth"]
    assert [(k, list(v.shape)) for k, v in g_decoder.state_dict().items()] == [(k, s) for k, s, _d in entries]


def test_G_decoder_and_alpha_blend(g_decoder: torch.nn.Module, g_expected: Dict[str, torch.Tensor]) -> None:
    """decoder(adain_feat) and the alpha blend, from the stored features (no encoder needed)."""
    with torch.no_grad():
        out = g_decoder(g_expected["adain_feat"])
        assert _rel_err(out, g_expected["output_alpha_1.0"]) <= REL_TOL
        c, a = g_expected["content_relu4_1"], g_expected["adain_feat"]
        feat = a * 0.6 + c * (1 - 0.6)
        assert _rel_err(g_decoder(feat), g_expected["output_alpha_0.6"]) <= REL_TOL


def test_G_coral_style(g_inputs: Dict[str, torch.Tensor], g_expected: Dict[str, torch.Tensor]) -> None:
    got = coral(g_inputs["style"][0], g_inputs["content"][0]).unsqueeze(0)
    assert _rel_err(got, g_expected["coral_style"]) <= REL_TOL


def test_G_encoder_features(
    g_encoder: torch.nn.Module, g_inputs: Dict[str, torch.Tensor], g_expected: Dict[str, torch.Tensor]
) -> None:
    with torch.no_grad():
        cf = g_encoder(g_inputs["content"])
        sf = g_encoder(g_inputs["style"])
    assert _rel_err(cf, g_expected["content_relu4_1"]) <= REL_TOL
    assert _rel_err(blend_features(cf, [sf]), g_expected["adain_feat"]) <= REL_TOL


_CASES: Dict[str, Tuple[Tuple[str, ...], dict]] = {
    "output_alpha_1.0": (("style",), {"alpha": 1.0}),
    "output_alpha_0.6": (("style",), {"alpha": 0.6}),
    "output_interp_0.7_0.3": (("style", "style2"), {"style_weights": [7, 3]}),
    "output_preserve_color": (("style",), {"preserve_color": True}),
}


@pytest.mark.parametrize("key", list(_CASES))
def test_G_style_transfer(
    key: str,
    g_encoder: torch.nn.Module,
    g_decoder: torch.nn.Module,
    g_inputs: Dict[str, torch.Tensor],
    g_expected: Dict[str, torch.Tensor],
) -> None:
    styles, kwargs = _CASES[key]
    got = adain_stylize(g_inputs["content"], [g_inputs[s] for s in styles], g_encoder, g_decoder, clamp=False, **kwargs)
    want = g_expected[key]
    assert _rel_err(got, want) <= REL_TOL

    def save_image_uint8(x: torch.Tensor) -> torch.Tensor:  # torchvision save_image: clamp, x255, round
        return x.clamp(0, 1).mul(255).add(0.5).clamp(0, 255).to(torch.uint8)

    assert (save_image_uint8(got).int() - save_image_uint8(want).int()).abs().max() <= 1
