"""Converters translation_generator / translation_discriminator on synthetic checkpoint files."""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from imgforge.errors import WeightsError
from imgforge.hub.converters import converter_names, get_converter, sha256_file
from imgforge.hub.convert_translation import build_converted, convert_translation_generator
from imgforge.hub.modelfile import load_model_file, save_model_file
from imgforge.models.translation import NLayerDiscriminator, ResnetGenerator, UnetGenerator, init_weights


def _perturbed(model: nn.Module, seed: int) -> nn.Module:
    """Random non-zero weights, biases and BatchNorm statistics (so that dropping any of them would show)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in list(model.parameters()) + [b for b in model.buffers() if b.is_floating_point()]:
            if t.dim() == 1:  # biases, BatchNorm affine and running stats (kept positive for running_var)
                t.add_(0.1 * torch.randn(t.shape, generator=g)).abs_()
            else:
                t.normal_(0, 0.1, generator=g)
    return model


def _save(sd: dict, path: Path) -> Path:
    torch.save(OrderedDict(sd), str(path))
    return path


def test_converters_are_registered() -> None:
    assert {"translation_generator", "translation_discriminator"} <= set(converter_names())


def test_resnet_roundtrip_and_legacy_keys_dropped(tmp_path: Path) -> None:
    torch.manual_seed(0)
    g = _perturbed(ResnetGenerator(3, 3, ngf=4, norm="instance", n_blocks=2), 1).eval()
    sd = g.state_dict()
    legacy = OrderedDict()
    extra_keys = []
    for k, v in sd.items():
        legacy[k] = v
        if k in ("model.1.bias", "model.10.conv_block.1.bias"):
            stem = "model.2" if k == "model.1.bias" else "model.10.conv_block.2"
            for name, val in (("running_mean", torch.randn(v.shape[0])), ("running_var", torch.rand(v.shape[0]) + 0.5),
                              ("num_batches_tracked", torch.tensor(123456))):
                legacy[f"{stem}.{name}"] = val
                extra_keys.append(f"{stem}.{name}")
    conv = get_converter("translation_generator")(_save(legacy, tmp_path / "legacy_net_G.pth"))
    assert conv.arch == "resnet_generator" and conv.arch_kwargs == g.config()
    assert conv.extra["dropped_keys"].split(",") == extra_keys
    assert conv.extra["dropped_key_count"] == str(len(extra_keys))
    assert conv.source_sha256 == sha256_file(tmp_path / "legacy_net_G.pth")
    assert list(conv.state_dict) == list(sd)
    assert all(torch.equal(conv.state_dict[k], sd[k]) for k in sd)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(build_converted(conv)(x), g(x))


def test_unet_batchnorm_and_dropout_hint(tmp_path: Path) -> None:
    torch.manual_seed(0)
    g = _perturbed(UnetGenerator(3, 2, num_downs=5, ngf=2, norm="batch", use_dropout=False), 2).eval()
    p = _save(g.state_dict(), tmp_path / "latest_net_G.pth")
    conv = convert_translation_generator(p)
    assert conv.arch_kwargs["use_dropout"] is True and conv.arch_kwargs["num_downs"] == 5
    assert conv.extra["use_dropout_source"].startswith("default")
    conv = convert_translation_generator(p, use_dropout=False)
    assert conv.arch_kwargs == g.config() and conv.extra["use_dropout_source"] == "given"
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(build_converted(conv)(x), g(x))


def test_resnet_dropout_contradiction_is_an_error(tmp_path: Path) -> None:
    p = _save(ResnetGenerator(3, 3, ngf=2, norm="instance", n_blocks=1).state_dict(), tmp_path / "g.pth")
    with pytest.raises(WeightsError, match="use_dropout"):
        convert_translation_generator(p, use_dropout=True)
    assert convert_translation_generator(p, use_dropout=False).arch_kwargs["use_dropout"] is False


def test_discriminator_and_kind_mismatch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    d = _perturbed(NLayerDiscriminator(6, ndf=2, n_layers=3, norm="batch"), 3).eval()
    p = _save(d.state_dict(), tmp_path / "latest_net_D.pth")
    conv = get_converter("translation_discriminator")(p)
    assert (conv.arch, conv.arch_kwargs) == ("patchgan_discriminator", d.config())
    x = torch.rand(1, 6, 64, 64)
    with torch.no_grad():
        assert torch.equal(build_converted(conv)(x), d(x))
    with pytest.raises(WeightsError, match="discriminator"):
        get_converter("translation_generator")(p)
    pg = _save(ResnetGenerator(3, 3, ngf=2, n_blocks=1).state_dict(), tmp_path / "g.pth")
    with pytest.raises(WeightsError, match="generator"):
        get_converter("translation_discriminator")(pg)


def test_module_prefix_and_missing_num_batches_tracked(tmp_path: Path) -> None:
    d = NLayerDiscriminator(3, ndf=2, n_layers=2, norm="batch")
    sd = {f"module.{k}": v for k, v in d.state_dict().items() if not k.endswith("num_batches_tracked")}
    conv = get_converter("translation_discriminator")(_save(sd, tmp_path / "old.pth"))
    assert conv.extra["stripped_prefix"] == "module."
    assert conv.extra["added_keys"].split(",") == ["model.3.num_batches_tracked", "model.6.num_batches_tracked"]
    assert list(conv.state_dict) == list(d.state_dict())


def test_unsafe_and_malformed_files_are_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("owned",))

    bad = tmp_path / "evil.pth"
    torch.save({"model.1.weight": torch.zeros(1), "x": Evil()}, str(bad), pickle_module=pickle)
    with pytest.raises(WeightsError, match="safely"):
        convert_translation_generator(bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError):
        convert_translation_generator(junk)
    with pytest.raises(WeightsError, match="not found"):
        convert_translation_generator(tmp_path / "missing.pth")
    notensor = _save({"model.1.weight": torch.zeros(2, 3, 7, 7), "epoch": 3}, tmp_path / "mixed.pth")  # type: ignore[dict-item]
    with pytest.raises(WeightsError, match="not a tensor"):
        convert_translation_generator(notensor)


def test_wrong_shapes_or_missing_keys_fail_loudly(tmp_path: Path) -> None:
    sd = dict(ResnetGenerator(3, 3, ngf=4, norm="instance", n_blocks=2).state_dict())
    sd["model.10.conv_block.1.weight"] = torch.zeros(16, 16, 3, 1)
    with pytest.raises(WeightsError, match=r"g\.pth.*do not fit"):
        convert_translation_generator(_save(sd, tmp_path / "g.pth"))
    sd = dict(ResnetGenerator(3, 3, ngf=4, norm="instance", n_blocks=2).state_dict())
    del sd["model.19.bias"]  # final conv bias missing
    with pytest.raises(WeightsError, match="model.19.bias"):
        convert_translation_generator(_save(sd, tmp_path / "h.pth"))
    sd = dict(ResnetGenerator(3, 3, ngf=4, norm="instance", n_blocks=2).state_dict())
    sd["model.4.running_mean"] = torch.zeros(3)  # not at an InstanceNorm slot: must not be silently dropped
    with pytest.raises(WeightsError):
        convert_translation_generator(_save(sd, tmp_path / "i.pth"))


def test_model_file_roundtrip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    g = init_weights(UnetGenerator(3, 3, num_downs=5, ngf=2, norm="batch", use_dropout=True))
    conv = convert_translation_generator(_save(g.state_dict(), tmp_path / "latest_net_G.pth"))
    out = save_model_file(tmp_path / "g.safetensors", conv.state_dict, arch=conv.arch, arch_kwargs=conv.arch_kwargs,
                          source_sha256=conv.source_sha256, extra=conv.extra)
    model, meta = load_model_file(out)
    assert meta["arch"] == "unet_generator" and meta["arch_kwargs"] == conv.arch_kwargs
    assert meta["dropped_key_count"] == "0"
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x), g.eval()(x))
