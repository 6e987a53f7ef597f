"""Compatibility of the VGG encoders with torchvision (fixture style/H) and pytorch-AdaIN's vgg_normalised (style/G).

The fixture weights are regenerated here from their recipes (an independent numpy port of the "FXH16" recipe, checked
against the recipe's sha256 values), written to ``tmp_path`` as legacy-format ``.pth`` files, and read back through
the converters, exactly as a published file would be.
"""

from __future__ import annotations

import collections
import hashlib
import json
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pytest
import torch

from imgforge.hub.converters import get_converter
from imgforge.hub.modelfile import load_model_file, save_model_file
from imgforge.hub.convert_vgg import detect_torchvision_vgg
from imgforge.models.registry import build
from tests.conftest import require

pytestmark = pytest.mark.compat

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def fxh16_tensor(seed: int, t: int, shape: Tuple[int, ...], p: int) -> np.ndarray:
    """Tensor number ``t`` of an FXH16 recipe: splitmix64 finaliser -> k in [-1024, 1023] -> k * 2**-p (float32)."""
    n = int(np.prod(shape)) if shape else 1
    j = np.arange(n, dtype=np.uint64)
    x = (np.uint64(seed) << np.uint64(40)) | (np.uint64(t) << np.uint64(32)) | j
    with np.errstate(over="ignore"):
        z = x + _GAMMA
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
    k = (z >> np.uint64(53)).astype(np.int64) - 1024
    return np.ldexp(k.astype(np.float32), -p).astype(np.float32).reshape(shape)


def regenerate_pth(recipe_path: Path, out: Path) -> "collections.OrderedDict[str, torch.Tensor]":
    """Rebuild a recipe's state dict, check every sha256, write it as a legacy (non-zip) .pth to ``out``."""
    recipe = json.loads(recipe_path.read_text())
    sd: "collections.OrderedDict[str, torch.Tensor]" = collections.OrderedDict()
    for t, (key, shape, p, sha) in enumerate(recipe["tensors"]):
        arr = fxh16_tensor(recipe["seed"], t, tuple(shape), p)
        assert hashlib.sha256(arr.astype("<f4").tobytes()).hexdigest() == sha, f"recipe port differs at {key}"
        sd[key] = torch.from_numpy(arr)
    torch.save(sd, str(out), _use_new_zipfile_serialization=False)
    return sd


def _read_safetensors(path: Path) -> Dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def _assert_close(got: torch.Tensor, want: torch.Tensor, name: str, rel: float = 1e-4) -> float:
    assert got.shape == want.shape, f"{name}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    err = float((got.double() - want.double()).abs().max())
    bound = rel * float(want.abs().max())
    assert err <= bound, f"{name}: max|got - expected| = {err:.3g} > {bound:.3g}"
    return err


# ----------------------------------------------------------------------------------------------------------------
# fixture H: torchvision VGG-19 / VGG-16


@pytest.fixture(scope="module")
def h_dir(compat_dir: Path) -> Path:
    return require(compat_dir / "style" / "H")


def _keys(entries: List[list]) -> List[Tuple[str, Tuple[int, ...]]]:
    return [(k, tuple(shape)) for k, shape, *_ in entries]


@pytest.mark.parametrize("arch", ["vgg19", "vgg16"])
def test_h_key_layout(h_dir: Path, arch: str) -> None:
    full = _keys(json.loads(require(h_dir / "keys_full.json").read_text())[arch])
    features = [(k, s) for k, s in full if k.startswith("features.")]
    classifier = [k for k, _ in full if k.startswith("classifier.")]
    assert len(features) == (32 if arch == "vgg19" else 26) and len(classifier) == 6
    model = build(arch)
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == features
    got_arch, feats, cls = detect_torchvision_vgg([k for k, _ in full])
    assert got_arch == arch and feats == [k for k, _ in features] and cls == classifier


def test_h_vgg16_file_through_converter(h_dir: Path, tmp_path: Path) -> None:
    full = _keys(json.loads(require(h_dir / "keys_full.json").read_text())["vgg16"])
    gen = torch.Generator().manual_seed(0)
    sd = collections.OrderedDict()
    for k, shape in full:  # real feature shapes; the classifier is shrunk (the converter drops it unread)
        sd[k] = torch.randn(shape if k.startswith("features.") else (2,), generator=gen)
    path = tmp_path / "vgg16-fake.pth"
    torch.save(sd, str(path), _use_new_zipfile_serialization=False)
    conv = get_converter("torchvision_vgg")(path)
    assert conv.arch == "vgg16" and conv.arch_kwargs == {}
    assert conv.extra["dropped_keys"].split(",") == [k for k, _ in full if k.startswith("classifier.")]
    model = build(conv.arch, **conv.arch_kwargs)
    model.load_state_dict(conv.state_dict, strict=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, sd[k])


def test_h_vgg19_features_match_reference(h_dir: Path, tmp_path: Path) -> None:
    recipe = require(h_dir / "recipe_vgg19_features.json")
    inputs = _read_safetensors(require(h_dir / "input.safetensors"))
    expected = _read_safetensors(require(h_dir / "expected.safetensors"))
    pth = tmp_path / "vgg19_features.pth"
    sd = regenerate_pth(recipe, pth)

    conv = get_converter("torchvision_vgg")(pth)
    assert conv.arch == "vgg19" and conv.arch_kwargs == {} and conv.extra["dropped_keys"] == ""
    assert list(conv.state_dict) == list(sd)
    # through our own file format as well (what `imgforge weights import` stores)
    ours = save_model_file(tmp_path / "vgg19.safetensors", conv.state_dict, arch=conv.arch, arch_kwargs=conv.arch_kwargs)
    model, meta = load_model_file(ours)
    assert meta["arch"] == "vgg19"

    x = inputs["input"]
    # the built-in normalisation is torchvision's, bit for bit
    assert torch.equal(model.normalize(x), inputs["input_normalized"])
    layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1")
    assert set(layers) <= set(expected)
    with torch.no_grad():
        got = model(x, layers)
    for name in layers:
        _assert_close(got[name], expected[name], name)


def test_h_converter_rejects_foreign_keys(h_dir: Path, tmp_path: Path) -> None:
    full = _keys(json.loads(require(h_dir / "keys_full.json").read_text())["vgg19"])
    sd = {k: torch.zeros(1) for k, _ in full}
    sd["features.1.running_mean"] = torch.zeros(1)
    path = tmp_path / "bad.pth"
    torch.save(sd, str(path))
    from imgforge.errors import WeightsError

    with pytest.raises(WeightsError, match="features.1.running_mean"):
        get_converter("torchvision_vgg")(path)


# ----------------------------------------------------------------------------------------------------------------
# fixture G: pytorch-AdaIN vgg_normalised


@pytest.fixture(scope="module")
def g_dir(compat_dir: Path) -> Path:
    return require(compat_dir / "style" / "G")


def test_g_key_layout(g_dir: Path) -> None:
    full = _keys(json.loads(require(g_dir / "keys_full.json").read_text())["vgg_normalised.pth"])
    assert len(full) == 34
    model = build("vgg19_normalised")
    assert [(k, tuple(v.shape)) for k, v in model.state_dict().items()] == full
    assert len(list(model.children())) == 53
    assert model._names["relu4_1"] == 30 and model._names["relu5_1"] == 43 and model._names["relu5_4"] == 52


def test_g_content_relu4_1_matches_reference(g_dir: Path, tmp_path: Path) -> None:
    recipe = require(g_dir / "recipe_vgg_normalised.json")
    inputs = _read_safetensors(require(g_dir / "inputs.safetensors"))
    expected = _read_safetensors(require(g_dir / "expected.safetensors"))
    pth = tmp_path / "vgg_normalised.pth"
    regenerate_pth(recipe, pth)

    conv = get_converter("adain_vgg_normalised")(pth)
    assert conv.arch == "vgg19_normalised" and conv.arch_kwargs == {}
    model = build(conv.arch, **conv.arch_kwargs).eval()
    model.load_state_dict(conv.state_dict, strict=True)
    with torch.no_grad():
        got = model(inputs["content"], ("relu4_1",))["relu4_1"]
    _assert_close(got, expected["content_relu4_1"], "content_relu4_1")

    # the encoder AdaIN uses (children 0..30) gives the same result
    short = build("vgg19_normalised", last_layer="relu4_1").eval()
    short.load_state_dict({k: v for k, v in conv.state_dict.items() if int(k.split(".")[0]) <= 30}, strict=True)
    assert len(list(short.children())) == 31
    with torch.no_grad():
        assert torch.equal(short(inputs["content"])["relu4_1"], got)
