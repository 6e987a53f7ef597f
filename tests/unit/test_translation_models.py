"""Translation networks: state-dict layout at the published width, shapes, options, init."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from imgforge.models.registry import build
from imgforge.models.translation import (
    NLayerDiscriminator,
    PixelDiscriminator,
    ResnetGenerator,
    UnetGenerator,
    discriminator_spec,
    generator_spec,
    init_weights,
)
from tests.conftest import require

FIXTURES = ["A", "B", "C", "D", "E/basic_batch_in6", "E/basic_instance_in3"]


def _published_model(cfg: dict) -> nn.Module:
    """Build the fixture's network at the published width (64) on the meta device from its config.json facts."""
    with torch.device("meta"):
        if cfg["kind"] == "G":
            arch, kw = generator_spec(
                cfg["netG"], cfg["input_nc"], cfg["output_nc"], ngf=64, norm=cfg["norm"], use_dropout=cfg["use_dropout"]
            )
        else:
            arch, kw = discriminator_spec(cfg["netD"], cfg["input_nc"], ndf=64, n_layers_D=cfg["n_layers_D"], norm=cfg["norm"])
        return build(arch, **kw)


def _layout(model: nn.Module) -> list:
    return [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in model.state_dict().items()]


@pytest.mark.parametrize("fixture", FIXTURES)
def test_state_dict_layout_matches_reference_at_published_width(compat_dir: Path, fixture: str) -> None:
    folder = compat_dir / "translation" / fixture
    cfg = json.loads(require(folder / "config.json").read_text())
    expected = json.loads(require(folder / "keys_full.json").read_text())
    model = _published_model(cfg)
    assert _layout(model) == expected
    assert sum(p.numel() for p in model.parameters()) == cfg["num_params_full"]


@pytest.mark.parametrize("n_blocks", [0, 2])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_resnet_shapes_and_bias_rule(n_blocks: int, norm: str) -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(2, 1, ngf=4, norm=norm, n_blocks=n_blocks).eval()
    y = g(torch.rand(2, 2, 12, 16) * 2 - 1)
    assert y.shape == (2, 1, 12, 16)
    assert y.abs().max() <= 1
    sd = g.state_dict()
    assert ("model.1.bias" in sd) == (norm == "instance")
    assert ("model.2.weight" in sd) == (norm == "batch")
    assert "model.{}.bias".format(17 + n_blocks) in sd  # final conv always has a bias
    assert g.pad_multiple == 4


def test_resnet_dropout_and_padding_shift_block_indices() -> None:
    def convs(**kw: object) -> list[int]:
        sd = ResnetGenerator(3, 3, ngf=4, norm="instance", n_blocks=1, **kw).state_dict()  # type: ignore[arg-type]
        return sorted({int(k.split(".")[3]) for k in sd if k.startswith("model.10.conv_block.")})

    assert convs() == [1, 5]
    assert convs(use_dropout=True) == [1, 6]
    assert convs(padding_type="zero") == [0, 3]
    assert convs(padding_type="zero", use_dropout=True) == [0, 4]
    assert convs(padding_type="replicate") == [1, 5]
    with pytest.raises(ValueError):
        ResnetGenerator(padding_type="circular")
    with pytest.raises(ValueError):
        ResnetGenerator(norm="layer")


@pytest.mark.parametrize("num_downs", [5, 6])
def test_unet_shapes_and_skip(num_downs: int) -> None:
    torch.manual_seed(0)
    g = UnetGenerator(3, 2, num_downs=num_downs, ngf=2, norm="batch", use_dropout=True).eval()
    assert g.pad_multiple == 2**num_downs
    y = g(torch.rand(1, 3, 2**num_downs, 2 * 2**num_downs) * 2 - 1)
    assert y.shape == (1, 2, 2**num_downs, 2 * 2**num_downs)
    n_dropout = sum(isinstance(m, nn.Dropout) for m in g.modules())
    assert n_dropout == num_downs - 5
    # Dropout is the last layer of a block, so it leaves no gap in the keys: same layout with and without it.
    assert list(UnetGenerator(3, 2, num_downs, 2, "batch", False).state_dict()) == list(g.state_dict())
    with pytest.raises(ValueError):
        UnetGenerator(num_downs=4)


def test_unet_eval_uses_running_stats() -> None:
    torch.manual_seed(1)
    g = UnetGenerator(3, 3, num_downs=5, ngf=2, norm="batch").eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    y0 = g(x)
    for m in g.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.add_(0.5)
    assert not torch.allclose(g(x), y0)


@pytest.mark.parametrize("n_layers", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("norm", ["batch", "instance", "none"])
def test_patchgan_layout(n_layers: int, norm: str) -> None:
    d = NLayerDiscriminator(6, ndf=4, n_layers=n_layers, norm=norm).eval()
    convs = [k for k, v in d.state_dict().items() if k.endswith(".weight") and v.dim() == 4]
    assert len(convs) == (3 if n_layers == 0 else n_layers + 2)
    out = d(torch.rand(2, 6, 128, 128))
    assert out.shape[:2] == (2, 1)
    sd = d.state_dict()
    assert "model.0.bias" in sd and f"{convs[-1][:-7]}.bias" in sd
    assert ("model.2.bias" in sd) == (norm == "instance")


def test_patchgan_basic_receptive_output_size() -> None:
    d = NLayerDiscriminator(3, ndf=2, n_layers=3, norm="batch").eval()
    assert d(torch.rand(1, 3, 256, 256)).shape == (1, 1, 30, 30)


def test_pixel_discriminator() -> None:
    d = PixelDiscriminator(3, ndf=4, norm="batch")
    assert list(d.state_dict())[:3] == ["net.0.weight", "net.0.bias", "net.2.weight"]
    assert "net.5.bias" not in d.state_dict()
    assert "net.5.bias" in PixelDiscriminator(3, ndf=4, norm="instance").state_dict()
    assert d(torch.rand(2, 3, 5, 7)).shape == (2, 1, 5, 7)


@pytest.mark.parametrize(
    "model",
    [
        ResnetGenerator(1, 3, ngf=4, norm="none", use_dropout=True, n_blocks=2, padding_type="zero"),
        UnetGenerator(2, 1, num_downs=6, ngf=3, norm="instance", use_dropout=True),
        NLayerDiscriminator(4, ndf=3, n_layers=2, norm="instance"),
        PixelDiscriminator(5, ndf=3, norm="none"),
    ],
    ids=["resnet", "unet", "patchgan", "pixel"],
)
def test_config_rebuilds_same_layout(model: nn.Module) -> None:
    arch = {
        ResnetGenerator: "resnet_generator",
        UnetGenerator: "unet_generator",
        NLayerDiscriminator: "patchgan_discriminator",
        PixelDiscriminator: "pixel_discriminator",
    }[type(model)]
    cfg = model.config()  # type: ignore[operator]
    assert json.loads(json.dumps(cfg)) == cfg
    rebuilt = build(arch, **cfg)
    assert _layout(rebuilt) == _layout(model)


def test_init_weights_normal_matches_reference_rules() -> None:
    torch.manual_seed(0)
    g = UnetGenerator(3, 3, num_downs=5, ngf=16, norm="batch")
    init_weights(g, "normal", 0.02)
    convs = [m for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    w = torch.cat([m.weight.flatten() for m in convs])
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3
    assert all(m.bias is None or torch.all(m.bias == 0) for m in convs)
    bns = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    bw = torch.cat([m.weight for m in bns])
    assert abs(bw.mean().item() - 1) < 5e-3 and 0.01 < bw.std().item() < 0.03
    assert all(torch.all(m.bias == 0) for m in bns)


def test_init_weights_is_seeded_and_other_types_run() -> None:
    def make(seed: int, kind: str) -> torch.Tensor:
        torch.manual_seed(seed)
        return init_weights(NLayerDiscriminator(3, 4, 2, "batch"), kind, 0.02).model[2].weight.detach().clone()

    assert torch.equal(make(0, "normal"), make(0, "normal"))
    assert not torch.equal(make(0, "normal"), make(1, "normal"))
    for kind in ("xavier", "kaiming", "orthogonal"):
        w = make(0, kind)
        assert torch.isfinite(w).all() and not torch.equal(w, make(0, "normal"))
    with pytest.raises(ValueError):
        make(0, "uniform")


def test_specs_map_reference_names() -> None:
    assert generator_spec("resnet_9blocks")[1]["n_blocks"] == 9
    assert generator_spec("unet_128", norm="batch", use_dropout=True)[1] == {
        "input_nc": 3,
        "output_nc": 3,
        "ngf": 64,
        "norm": "batch",
        "use_dropout": True,
        "num_downs": 7,
    }
    assert discriminator_spec("basic", 6, norm="batch")[1]["n_layers"] == 3
    assert discriminator_spec("n_layers", n_layers_D=5)[1]["n_layers"] == 5
    assert discriminator_spec("pixel")[0] == "pixel_discriminator"
    with pytest.raises(ValueError):
        generator_spec("resnet_12blocks")
    with pytest.raises(ValueError):
        discriminator_spec("spectral")
