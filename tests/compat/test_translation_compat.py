"""Compatibility with junyanz/pytorch-CycleGAN-and-pix2pix: fixtures translation/A-E reproduced from the files on disk.

Path under test: checkpoint file -> converter (safe read, architecture detection, legacy keys dropped, strict load)
-> our safetensors model file -> model -> run_generator / forward, compared with the reference outputs at the
tolerance the fixture READMEs give (atol 1e-5, rtol 0; same PyTorch ops on CPU are expected to be bitwise).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Tuple

import pytest
import torch
import torch.nn as nn
from safetensors.torch import load_file

from imgforge.hub.convert_translation import build_converted
from imgforge.hub.converters import Converted, get_converter
from imgforge.hub.modelfile import load_model_file, save_model_file
from imgforge.methods.translate import from_model_range, inference_state, run_generator, translate
from imgforge.models.registry import build
from imgforge.models.translation import generator_spec, init_weights
from tests.conftest import require

pytestmark = pytest.mark.compat

ATOL = 1e-5  # READMEs: bitwise with the same ops, otherwise atol=1e-5, rtol=0

GENERATOR_FILES = [
    ("A", "latest_net_G.pth"),
    ("A", "legacy_net_G.pth"),
    ("B", "latest_net_G.pth"),
    ("B", "legacy_net_G.pth"),
    ("C", "latest_net_G.pth"),
    ("D", "latest_net_G.pth"),
]
DISCRIMINATOR_FIXTURES = ["E/basic_batch_in6", "E/basic_instance_in3"]
_NETG = {"resnet_9blocks": ("resnet_generator", "n_blocks", 9), "resnet_6blocks": ("resnet_generator", "n_blocks", 6),
         "unet_256": ("unet_generator", "num_downs", 8), "unet_128": ("unet_generator", "num_downs", 7)}


def _fixture(compat_dir: Path, name: str) -> Tuple[Path, Dict[str, Any]]:
    folder = compat_dir / "translation" / name
    return folder, json.loads(require(folder / "config.json").read_text())


def _through_model_file(conv: Converted, tmp_path: Path) -> nn.Module:
    """Converted -> our safetensors file -> model rebuilt from the file's metadata alone."""
    path = save_model_file(tmp_path / "model.safetensors", conv.state_dict, arch=conv.arch,
                           arch_kwargs=conv.arch_kwargs, source_sha256=conv.source_sha256, extra=conv.extra)
    model, meta = load_model_file(path)
    assert meta["arch"] == conv.arch and meta["arch_kwargs"] == conv.arch_kwargs
    return model


def _max_err(y: torch.Tensor, ref: torch.Tensor) -> float:
    assert y.shape == ref.shape and y.dtype == ref.dtype
    return (y - ref).abs().max().item()


@pytest.mark.parametrize("fixture,filename", GENERATOR_FILES)
def test_generator_reproduces_reference(compat_dir: Path, tmp_path: Path, fixture: str, filename: str,
                                        record_property: Any) -> None:
    folder, cfg = _fixture(compat_dir, fixture)
    conv = get_converter("translation_generator")(require(folder / filename))
    arch, size_key, size = _NETG[cfg["netG"]]
    assert conv.arch == arch and conv.arch_kwargs[size_key] == size
    assert conv.arch_kwargs["ngf"] == cfg["width"] and conv.arch_kwargs["norm"] == cfg["norm"]
    assert (conv.arch_kwargs["input_nc"], conv.arch_kwargs["output_nc"]) == (cfg["input_nc"], cfg["output_nc"])
    assert conv.arch_kwargs["use_dropout"] == cfg["use_dropout"]
    expected_dropped = cfg.get("legacy_extra_keys", 0) if filename.startswith("legacy") else 0
    assert int(conv.extra["dropped_key_count"]) == expected_dropped
    assert len(conv.state_dict) == cfg["checkpoint_num_keys"]

    model = _through_model_file(conv, tmp_path)
    x = load_file(str(require(folder / "input.safetensors")))["input"]
    expected = load_file(str(require(folder / "expected.safetensors")))
    assert set(expected) == set(cfg["expected_keys"])
    for key, ref in expected.items():
        if key == "eval":
            y = run_generator(x, model, eval_mode=True)
            # the [0, 1] entry point gives the same result
            err01 = _max_err(translate(from_model_range(x), model), from_model_range(ref))
            assert err01 <= ATOL, f"{fixture}/{filename} translate(): max |diff| {err01:.3g}"
        elif key == "train_bn_no_dropout":
            y = run_generator(x, model, eval_mode=False, dropout=False)
        else:
            pytest.fail(f"unknown expected key {key!r} in {folder}")
        err = _max_err(y, ref)
        record_property(f"max_abs_err_{key}", err)
        assert err <= ATOL, f"{fixture}/{filename} {key}: max |diff| {err:.3g} > {ATOL}"
    if cfg.get("train_mode_equals_eval_bitwise"):
        # InstanceNorm, no dropout: the reference's default test.py (train mode) gives the eval output
        assert _max_err(run_generator(x, model, eval_mode=False), expected["eval"]) <= ATOL


@pytest.mark.parametrize("fixture", ["A", "B"])
def test_legacy_file_equals_current_file(compat_dir: Path, fixture: str) -> None:
    folder, cfg = _fixture(compat_dir, fixture)
    latest = get_converter("translation_generator")(require(folder / "latest_net_G.pth"))
    legacy = get_converter("translation_generator")(require(folder / "legacy_net_G.pth"))
    assert (legacy.arch, legacy.arch_kwargs) == (latest.arch, latest.arch_kwargs)
    assert list(legacy.state_dict) == list(latest.state_dict)
    assert all(torch.equal(legacy.state_dict[k], v) for k, v in latest.state_dict.items())
    dropped = legacy.extra["dropped_keys"].split(",")
    assert len(dropped) == cfg["legacy_extra_keys"]
    assert all(k.rsplit(".", 1)[1] in ("running_mean", "running_var", "num_batches_tracked") for k in dropped)
    # The raw legacy file does not load strictly: the dropped keys are really extra.
    raw = torch.load(str(folder / "legacy_net_G.pth"), map_location="cpu", weights_only=True)
    with pytest.raises(RuntimeError):
        build(latest.arch, **latest.arch_kwargs).load_state_dict(raw, strict=True)
    x = load_file(str(folder / "input.safetensors"))["input"]
    assert torch.equal(run_generator(x, build_converted(legacy)), run_generator(x, build_converted(latest)))


@pytest.mark.parametrize("fixture", DISCRIMINATOR_FIXTURES)
def test_discriminator_reproduces_reference(compat_dir: Path, tmp_path: Path, fixture: str,
                                            record_property: Any) -> None:
    folder, cfg = _fixture(compat_dir, fixture)
    conv = get_converter("translation_discriminator")(require(folder / "latest_net_D.pth"))
    assert conv.arch == "patchgan_discriminator"
    assert conv.arch_kwargs == {"input_nc": cfg["input_nc"], "ndf": cfg["width"], "n_layers": cfg["n_layers_D"],
                                "norm": cfg["norm"]}
    assert conv.extra["dropped_key_count"] == "0" and len(conv.state_dict) == cfg["checkpoint_num_keys"]
    model = _through_model_file(conv, tmp_path)
    x = load_file(str(require(folder / "input.safetensors")))["input"]
    expected = load_file(str(require(folder / "expected.safetensors")))
    assert set(expected) == set(cfg["expected_keys"])
    modes = {"eval": True, "train_bn_no_dropout": False}
    for key, ref in expected.items():
        with torch.no_grad(), inference_state(model, eval_mode=modes[key], dropout=False):
            y = model(x)
        err = _max_err(y, ref)
        record_property(f"max_abs_err_{key}", err)
        assert err <= ATOL, f"{fixture} {key}: max |diff| {err:.3g} > {ATOL}"
    assert all(torch.equal(v, conv.state_dict[k]) for k, v in model.state_dict().items())  # stats not updated


@pytest.mark.parametrize("fixture", ["A", "B", "C", "D", "E/basic_batch_in6", "E/basic_instance_in3"])
def test_init_parity_with_reference(compat_dir: Path, fixture: str) -> None:
    """Same seed + same layers + init_weights(normal, 0.02) -> the tensors the README lists as untouched after init."""
    folder, cfg = _fixture(compat_dir, fixture)
    torch.manual_seed(cfg["weight_seed"])
    if cfg["kind"] == "G":
        arch, kw = generator_spec(cfg["netG"], cfg["input_nc"], cfg["output_nc"], ngf=cfg["width"], norm=cfg["norm"],
                                  use_dropout=cfg["use_dropout"])
        ckpt = folder / "latest_net_G.pth"
    else:
        arch, kw = "patchgan_discriminator", {"input_nc": cfg["input_nc"], "ndf": cfg["width"],
                                              "n_layers": cfg["n_layers_D"], "norm": cfg["norm"]}
        ckpt = folder / "latest_net_D.pth"
    state = torch.get_rng_state()
    model = init_weights(build(arch, **kw), cfg["init_type"], cfg["init_gain"])
    torch.set_rng_state(state)
    ref = torch.load(str(require(ckpt)), map_location="cpu", weights_only=True)
    names = cfg["tensors_equal_to_reference_init"]
    assert names
    sd = model.state_dict()
    assert all(torch.equal(sd[n], ref[n]) for n in names)
