"""Architecture detection from state dicts: every keys_full.json (and legacy layouts) and synthetic models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import pytest
import torch
import torch.nn as nn

from imgforge.errors import WeightsError
from imgforge.hub.convert_translation import (
    detect_discriminator_arch,
    detect_generator_arch,
    detect_translation_arch,
)
from imgforge.models.translation import NLayerDiscriminator, PixelDiscriminator, ResnetGenerator, UnetGenerator
from tests.conftest import require

_NETG = {"resnet_9blocks": ("resnet_generator", {"n_blocks": 9, "padding_type": "reflect"}),
         "resnet_6blocks": ("resnet_generator", {"n_blocks": 6, "padding_type": "reflect"}),
         "unet_256": ("unet_generator", {"num_downs": 8}),
         "unet_128": ("unet_generator", {"num_downs": 7})}


def _meta_sd(entries: list) -> Dict[str, torch.Tensor]:
    dt = {"float32": torch.float32, "int64": torch.int64}
    return {k: torch.empty(shape, dtype=dt[d], device="meta") for k, shape, d in entries}


def _expected_from_config(cfg: Dict[str, Any]) -> tuple[str, Dict[str, Any]]:
    if cfg["kind"] == "G":
        arch, extra = _NETG[cfg["netG"]]
        kw = {"input_nc": cfg["input_nc"], "output_nc": cfg["output_nc"], "ngf": 64, "norm": cfg["norm"],
              "use_dropout": cfg["use_dropout"], **extra}
        return arch, kw
    return "patchgan_discriminator", {"input_nc": cfg["input_nc"], "ndf": 64, "n_layers": cfg["n_layers_D"], "norm": cfg["norm"]}


@pytest.mark.parametrize(
    "fixture,keys_file",
    [("A", "keys_full.json"), ("A", "keys_full_legacy_instancenorm.json"), ("B", "keys_full.json"),
     ("B", "keys_full_legacy_instancenorm.json"), ("C", "keys_full.json"), ("D", "keys_full.json"),
     ("E/basic_batch_in6", "keys_full.json"), ("E/basic_instance_in3", "keys_full.json")],
)
def test_detect_every_published_layout(compat_dir: Path, fixture: str, keys_file: str) -> None:
    folder = compat_dir / "translation" / fixture
    cfg = json.loads(require(folder / "config.json").read_text())
    sd = _meta_sd(json.loads(require(folder / keys_file).read_text()))
    expected = _expected_from_config(cfg)
    if cfg["kind"] == "G":
        assert detect_generator_arch(sd, unet_use_dropout=cfg["use_dropout"]) == expected
        with pytest.raises(WeightsError, match="generator"):
            detect_discriminator_arch(sd)
    else:
        assert detect_discriminator_arch(sd) == expected
        with pytest.raises(WeightsError, match="discriminator"):
            detect_generator_arch(sd)


def _with_legacy_instance_stats(model: nn.Module) -> Dict[str, torch.Tensor]:
    """The 2018-era layout: every InstanceNorm also saved running_mean / running_var / num_batches_tracked."""
    sd: Dict[str, torch.Tensor] = {}
    for name, mod in model.named_modules():
        for pname, p in mod.named_parameters(recurse=False):
            sd[f"{name}.{pname}"] = p.detach()
        for bname, b in mod.named_buffers(recurse=False):
            sd[f"{name}.{bname}"] = b
        if isinstance(mod, nn.InstanceNorm2d):
            c = mod.num_features
            sd[f"{name}.running_mean"] = torch.zeros(c)
            sd[f"{name}.running_var"] = torch.ones(c)
            sd[f"{name}.num_batches_tracked"] = torch.tensor(7)
    return sd


GENERATORS = [
    ResnetGenerator(3, 3, ngf=4, norm="instance", n_blocks=9),
    ResnetGenerator(1, 2, ngf=5, norm="batch", use_dropout=True, n_blocks=2),
    ResnetGenerator(3, 1, ngf=3, norm="none", n_blocks=4, padding_type="zero"),
    ResnetGenerator(4, 3, ngf=2, norm="instance", use_dropout=True, n_blocks=1, padding_type="zero"),
    ResnetGenerator(3, 3, ngf=6, norm="batch", n_blocks=0),
    UnetGenerator(3, 3, num_downs=8, ngf=2, norm="batch", use_dropout=True),
    UnetGenerator(1, 3, num_downs=5, ngf=3, norm="instance"),
    UnetGenerator(3, 2, num_downs=9, ngf=1, norm="none", use_dropout=True),
]
DISCRIMINATORS = [
    NLayerDiscriminator(6, ndf=4, n_layers=3, norm="batch"),
    NLayerDiscriminator(3, ndf=5, n_layers=0, norm="instance"),
    NLayerDiscriminator(3, ndf=5, n_layers=1, norm="instance"),
    NLayerDiscriminator(2, ndf=2, n_layers=6, norm="none"),
    PixelDiscriminator(6, ndf=3, norm="batch"),
    PixelDiscriminator(3, ndf=3, norm="instance"),
]


@pytest.mark.parametrize("model", GENERATORS, ids=lambda m: json.dumps(m.config()))
def test_detect_synthetic_generators(model: nn.Module) -> None:
    cfg = model.config()  # type: ignore[operator]
    arch = "resnet_generator" if isinstance(model, ResnetGenerator) else "unet_generator"
    assert detect_generator_arch(model.state_dict(), unet_use_dropout=cfg["use_dropout"]) == (arch, cfg)
    if cfg["norm"] == "instance":
        legacy = _with_legacy_instance_stats(model)
        assert len(legacy) > len(model.state_dict())
        assert detect_generator_arch(legacy, unet_use_dropout=cfg["use_dropout"]) == (arch, cfg)


@pytest.mark.parametrize("model", DISCRIMINATORS, ids=lambda m: json.dumps(m.config()))
def test_detect_synthetic_discriminators(model: nn.Module) -> None:
    arch = "patchgan_discriminator" if isinstance(model, NLayerDiscriminator) else "pixel_discriminator"
    assert detect_discriminator_arch(model.state_dict()) == (arch, model.config())  # type: ignore[operator]
    assert detect_translation_arch(model.state_dict()) == (arch, model.config())  # type: ignore[operator]


def test_bn_without_num_batches_tracked_is_still_batch() -> None:
    sd = {k: v for k, v in GENERATORS[1].state_dict().items() if not k.endswith("num_batches_tracked")}
    assert detect_generator_arch(sd)[1]["norm"] == "batch"


def test_unet_dropout_is_a_hint() -> None:
    sd = UnetGenerator(3, 3, num_downs=6, ngf=2, norm="batch", use_dropout=False).state_dict()
    assert detect_generator_arch(sd)[1]["use_dropout"] is True  # pix2pix default: not visible in the keys
    assert detect_generator_arch(sd, unet_use_dropout=False)[1]["use_dropout"] is False


def test_detect_rejects_foreign_and_inconsistent_layouts() -> None:
    with pytest.raises(WeightsError, match="not a pytorch-CycleGAN"):
        detect_translation_arch({"features.0.weight": torch.zeros(64, 3, 3, 3)})
    with pytest.raises(WeightsError):
        detect_translation_arch({})
    sd = dict(ResnetGenerator(3, 3, ngf=4, norm="batch", n_blocks=2).state_dict())
    sd["model.1.bias"] = torch.zeros(4)  # BatchNorm never comes with conv bias in the reference
    with pytest.raises(WeightsError, match="normalisation"):
        detect_generator_arch(sd)
    sd = dict(ResnetGenerator(3, 3, ngf=4, norm="instance", n_blocks=3).state_dict())
    sd = {k: v for k, v in sd.items() if not k.startswith("model.11.")}  # a hole in the block sequence
    with pytest.raises(WeightsError, match="blocks"):
        detect_generator_arch(sd)
    sd = dict(UnetGenerator(3, 3, num_downs=5, ngf=2, norm="batch").state_dict())
    sd = {k: v for k, v in sd.items() if ".model.3.model.3." not in k}  # only 3 levels left
    with pytest.raises(WeightsError, match="levels"):
        detect_generator_arch(sd)
