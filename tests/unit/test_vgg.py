"""VGG encoders: layer naming, truncation, normalisation, converters (tiny widths, seeded)."""

from __future__ import annotations

import collections
import pickle
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from imgforge.errors import WeightsError
from imgforge.hub.converters import get_converter
from imgforge.models.registry import build
from imgforge.models.vgg import conv_indices, normalised_layer_names, vgg_layer_names

TINY = (4, 4, 8, 8, 8)


def _seeded(model: nn.Module, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return model.eval()


def test_torchvision_child_indices() -> None:
    names = vgg_layer_names("vgg19")
    # fixture H's README: relu1_1 = features.1, relu2_1 = 6, relu3_1 = 11, relu4_1 = 20, relu4_2 = 22, relu5_1 = 29
    for name, i in [("relu1_1", 1), ("relu2_1", 6), ("relu3_1", 11), ("relu4_1", 20), ("relu4_2", 22), ("relu5_1", 29)]:
        assert names[i] == name
    assert conv_indices("vgg19") == [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    assert conv_indices("vgg16") == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    assert len(names) == 37 and names[-1] == "pool5" and names[4] == "pool1"
    # fast-neural-style slices: relu1_2 = 3, relu2_2 = 8, relu3_3 = 15, relu4_3 = 22
    n16 = vgg_layer_names("vgg16")
    assert [n16.index(n) for n in ("relu1_2", "relu2_2", "relu3_3", "relu4_3")] == [3, 8, 15, 22]


def test_normalised_child_indices() -> None:
    names = normalised_layer_names()
    assert len(names) == 53
    assert [i for i, n in enumerate(names) if n.startswith("conv")] == [
        0, 2, 5, 9, 12, 16, 19, 22, 25, 29, 32, 35, 38, 42, 45, 48, 51]
    assert [i for i, n in enumerate(names) if n.startswith("pool")] == [7, 14, 27, 40]
    assert {names[i] for i in (3, 10, 17, 30, 43, 52)} == {"relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "relu5_4"}
    m = build("vgg19_normalised")
    assert isinstance(m[1] if hasattr(m, "__getitem__") else m._modules["1"], nn.ReflectionPad2d)
    assert m._modules["7"].ceil_mode and m._modules["2"].padding == (0, 0)


def test_truncation_and_only_needed_layers_run() -> None:
    enc = _seeded(build("vgg19", last_layer="relu3_1", widths=TINY))
    assert enc.last_layer == "relu3_1" and len(enc.features) == 12
    assert list(enc.state_dict())[-1] == "features.10.bias"
    called = []
    for i, m in enumerate(enc.features):
        m.register_forward_hook(lambda mod, inp, out, i=i: called.append(i))
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    out = enc(x, ("relu2_1", "relu1_1"))
    assert list(out) == ["relu2_1", "relu1_1"]
    assert max(called) == 6
    assert out["relu1_1"].shape == (1, 4, 16, 16) and out["relu2_1"].shape == (1, 4, 8, 8)
    assert enc.channels("relu3_1") == 8 and enc.channels("pool2") == 4
    with pytest.raises(KeyError, match="relu4_1"):
        enc(x, ("relu4_1",))
    # the conv output is returned before the ReLU and is not modified by it
    o = enc(x, ("conv1_1", "relu1_1"))
    assert (o["conv1_1"] < 0).any() and torch.equal(o["conv1_1"].clamp_min(0), o["relu1_1"])


def test_full_model_equals_sequential_reference() -> None:
    enc = _seeded(build("vgg16", widths=TINY))
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    ref = (x - torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    h = ref
    for m in enc.features:
        h = m(h)
    assert torch.equal(enc(x)["pool5"], h) and h.shape == (2, 8, 1, 1)


def test_normalisations() -> None:
    x = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(3))
    caffe = build("vgg19", widths=TINY, normalization="caffe_bgr")
    want = x.flip(1) * 255 - torch.tensor([103.939, 116.779, 123.68]).view(3, 1, 1)
    assert torch.allclose(caffe.normalize(x), want, atol=1e-4)
    f255 = build("vgg16", widths=TINY, normalization="imagenet_255")
    assert torch.allclose(f255.normalize(x), x * 255 - torch.tensor([0.48235, 0.45882, 0.40784]).view(3, 1, 1) * 255, atol=1e-3)
    assert build("vgg19_normalised").normalize(x) is x
    assert build("vgg19").input_range == (0.0, 1.0)
    with pytest.raises(ValueError):
        build("vgg19", normalization="bgr")


def _tiny_torchvision_file(tmp_path: Path, arch: str = "vgg19", classifier: bool = True) -> Path:
    model = _seeded(build(arch, widths=TINY))
    sd = collections.OrderedDict(model.state_dict())
    if classifier:
        for i in (0, 3, 6):
            sd[f"classifier.{i}.weight"] = torch.zeros(3, 2)
            sd[f"classifier.{i}.bias"] = torch.zeros(3)
    path = tmp_path / f"{arch}.pth"
    torch.save(sd, str(path))
    return path


@pytest.mark.parametrize("arch", ["vgg16", "vgg19"])
def test_torchvision_converter_detects_arch_and_widths(tmp_path: Path, arch: str) -> None:
    path = _tiny_torchvision_file(tmp_path, arch)
    conv = get_converter("torchvision_vgg")(path)
    assert conv.arch == arch and conv.arch_kwargs == {"widths": list(TINY)}
    assert conv.extra["dropped_keys"].count("classifier.") == 6 and len(conv.source_sha256) == 64
    model = build(conv.arch, **conv.arch_kwargs)
    model.load_state_dict(conv.state_dict, strict=True)


def test_torchvision_converter_nan_classifier_means_features_file(tmp_path: Path) -> None:
    model = _seeded(build("vgg16", widths=TINY))
    sd = dict(model.state_dict())
    sd["classifier.0.weight"] = torch.full((3, 2), float("nan"))
    path = tmp_path / "vgg16_features.pth"
    torch.save(sd, str(path))
    conv = get_converter("torchvision_vgg")(path)
    assert conv.arch_kwargs["normalization"] == "imagenet_255"
    assert get_converter("caffe_vgg")(_tiny_torchvision_file(tmp_path)).arch_kwargs["normalization"] == "caffe_bgr"


def test_torchvision_converter_rejects(tmp_path: Path) -> None:
    path = _tiny_torchvision_file(tmp_path, classifier=False)
    sd = torch.load(str(path), weights_only=True)
    bad = dict(sd)
    del bad["features.34.weight"], bad["features.34.bias"]
    torch.save(bad, str(tmp_path / "short.pth"))
    with pytest.raises(WeightsError, match="neither torchvision vgg19"):
        get_converter("torchvision_vgg")(tmp_path / "short.pth")
    bad = dict(sd)
    bad["features.1.weight"] = torch.zeros(1)  # a ReLU child has no parameters
    torch.save(bad, str(tmp_path / "relu.pth"))
    with pytest.raises(WeightsError):
        get_converter("torchvision_vgg")(tmp_path / "relu.pth")
    bad = dict(sd)
    bad["features.0.weight"] = torch.zeros(4, 3, 5, 5)
    torch.save(bad, str(tmp_path / "shape.pth"))
    with pytest.raises(WeightsError, match="do not fit"):
        get_converter("torchvision_vgg")(tmp_path / "shape.pth")
    bad = dict(sd)
    bad["features.0.weight"] = torch.full_like(sd["features.0.weight"], float("nan"))
    torch.save(bad, str(tmp_path / "nan.pth"))
    with pytest.raises(WeightsError, match="NaN"):
        get_converter("torchvision_vgg")(tmp_path / "nan.pth")


class _Evil:
    def __reduce__(self):  # pragma: no cover - must never run
        return (exec, ("raise SystemExit('executed')",))


def test_converters_refuse_code_in_pickles(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    with open(path, "wb") as fh:
        pickle.dump({"features.0.weight": _Evil()}, fh, protocol=2)
    for name in ("torchvision_vgg", "adain_vgg_normalised"):
        with pytest.raises(WeightsError, match="safely"):
            get_converter(name)(path)


def test_adain_converter_prefix_and_rejects(tmp_path: Path) -> None:
    full = _seeded(build("vgg19_normalised", last_layer="relu2_1"))
    sd = dict(full.state_dict())
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias", "5.weight", "5.bias", "9.weight", "9.bias"]
    torch.save(sd, str(tmp_path / "enc.pth"))
    conv = get_converter("adain_vgg_normalised")(tmp_path / "enc.pth")
    assert conv.arch == "vgg19_normalised" and conv.arch_kwargs == {"last_layer": "relu2_1"}
    m = build(conv.arch, **conv.arch_kwargs)
    m.load_state_dict(conv.state_dict, strict=True)
    bad = {k: v for k, v in sd.items() if not k.startswith("5.")}
    torch.save(bad, str(tmp_path / "gap.pth"))
    with pytest.raises(WeightsError, match="prefix"):
        get_converter("adain_vgg_normalised")(tmp_path / "gap.pth")
    torch.save({**sd, "3.weight": torch.zeros(1)}, str(tmp_path / "relu.pth"))
    with pytest.raises(WeightsError, match="3.weight"):
        get_converter("adain_vgg_normalised")(tmp_path / "relu.pth")


def test_load_style_encoder_paths(tmp_path: Path) -> None:
    from imgforge.hub.modelfile import save_model_file
    from imgforge.hub.encoders import load_style_encoder

    enc, desc = load_style_encoder(_tiny_torchvision_file(tmp_path, "vgg16"))
    assert desc == "torchvision vgg16 from vgg16.pth" and not enc.training
    assert not any(p.requires_grad for p in enc.parameters())
    sd = _seeded(build("vgg19_normalised", last_layer="relu2_1")).state_dict()
    torch.save(sd, str(tmp_path / "vgg_normalised.pth"))
    enc, desc = load_style_encoder(tmp_path / "vgg_normalised.pth")
    assert desc.startswith("AdaIN vgg_normalised") and enc.last_layer == "relu2_1"
    save_model_file(tmp_path / "mine.safetensors", sd, arch="vgg19_normalised", arch_kwargs={"last_layer": "relu2_1"},
                    extra={"name": "mine"})
    enc, desc = load_style_encoder(tmp_path / "mine.safetensors")
    assert desc.startswith("mine (vgg19_normalised") and torch.equal(enc.state_dict()["2.weight"], sd["2.weight"])
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pth"):
        load_style_encoder(tmp_path / "junk.pth")
    with pytest.raises(WeightsError, match="not found"):
        load_style_encoder(tmp_path / "missing.pth")
