"""TransformerNet (fast-neural-style): key layout, forward against an explicit computation, converter, wrapper."""

from __future__ import annotations

import json
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from imgforge.errors import InputError, WeightsError
from imgforge.hub.convert_style import LEGACY_IN_STATS, convert_fast_style
from imgforge.hub.converters import get_converter
from imgforge.hub.modelfile import load_model_file, save_model_file
from imgforge.methods.fast import fast_stylize, fast_stylize_255, reference_uint8
from imgforge.models.fast_style import TransformerNet, output_size
from imgforge.models.registry import build
from tests.conftest import require


def _net(seed: int = 0) -> TransformerNet:
    torch.manual_seed(seed)
    net = TransformerNet().eval()
    # non-trivial InstanceNorm affine parameters, so that ignoring them would show
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.split(".")[-2].startswith("in"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5 if name.endswith("weight") else torch.randn(p.shape, generator=g) * 0.3)
    return net


def _legacy_state_dict(net: TransformerNet) -> "OrderedDict[str, torch.Tensor]":
    """The published layout: every InstanceNorm carries running_mean/var right after weight/bias."""
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    g = torch.Generator().manual_seed(7)
    for k, v in net.state_dict().items():
        out[k] = v.clone()
        if k.endswith(".bias") and k.split(".")[-2].startswith("in"):
            base = k[: -len("bias")]
            out[base + "running_mean"] = torch.randn(v.shape, generator=g) * 5
            out[base + "running_var"] = torch.rand(v.shape, generator=g) * 20 + 0.5
    return out


# ---------------------------------------------------------------- key layout


def test_keys_match_published_layout(compat_dir: Path) -> None:
    entries = json.loads(require(compat_dir / "style" / "F" / "keys_full.json").read_text())
    published = [(k, tuple(s)) for k, s, _dt in entries if not LEGACY_IN_STATS.search(k)]
    ours = [(k, tuple(v.shape)) for k, v in TransformerNet().state_dict().items()]
    assert ours == published  # same keys, same order, same shapes
    assert len(entries) - len(published) == 30  # 15 InstanceNorms x (running_mean, running_var)


def test_registered_and_no_running_stats() -> None:
    net = build("fast_style")
    assert isinstance(net, TransformerNet)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert len(norms) == 15
    assert all(m.affine and not m.track_running_stats for m in norms)
    assert not any("running" in k for k in net.state_dict())


# ---------------------------------------------------------------- forward


def _explicit_forward(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """TransformerNet written out with functional ops, from the reference's description."""

    def conv(prefix: str, y: torch.Tensor, k: int, stride: int) -> torch.Tensor:
        y = F.pad(y, (k // 2,) * 4, mode="reflect")
        return F.conv2d(y, sd[prefix + ".conv2d.weight"], sd[prefix + ".conv2d.bias"], stride=stride)

    def inorm(prefix: str, y: torch.Tensor) -> torch.Tensor:
        mean = y.mean(dim=(2, 3), keepdim=True)
        var = y.var(dim=(2, 3), unbiased=False, keepdim=True)
        y = (y - mean) / torch.sqrt(var + 1e-5)
        return y * sd[prefix + ".weight"].view(1, -1, 1, 1) + sd[prefix + ".bias"].view(1, -1, 1, 1)

    y = torch.relu(inorm("in1", conv("conv1", x, 9, 1)))
    y = torch.relu(inorm("in2", conv("conv2", y, 3, 2)))
    y = torch.relu(inorm("in3", conv("conv3", y, 3, 2)))
    for r in range(1, 6):
        p = f"res{r}"
        h = torch.relu(inorm(p + ".in1", conv(p + ".conv1", y, 3, 1)))
        y = y + inorm(p + ".in2", conv(p + ".conv2", h, 3, 1))
    y = torch.relu(inorm("in4", conv("deconv1", y.repeat_interleave(2, 2).repeat_interleave(2, 3), 3, 1)))
    y = torch.relu(inorm("in5", conv("deconv2", y.repeat_interleave(2, 2).repeat_interleave(2, 3), 3, 1)))
    return conv("deconv3", y, 9, 1)


def test_forward_matches_explicit_computation() -> None:
    net = _net(1)
    x = torch.rand(2, 3, 16, 20, generator=torch.Generator().manual_seed(2)) * 255
    sd = {k: v.double() for k, v in net.state_dict().items()}
    with torch.no_grad():
        got = net.double()(x.double())
        want = _explicit_forward(sd, x.double())
    assert got.shape == (2, 3, 16, 20)
    assert torch.allclose(got, want, rtol=0, atol=1e-9 * want.abs().max().item())


def test_eval_and_train_mode_agree() -> None:
    """InstanceNorm normalises with the input's own statistics in both modes."""
    net = _net(3)
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(4)) * 255
    with torch.no_grad():
        a = net.eval()(x)
        b = net.train()(x)
    assert torch.equal(a, b)


@pytest.mark.parametrize("h,w", [(16, 16), (13, 18), (17, 21)])
def test_output_size_and_crop(h: int, w: int) -> None:
    net = _net(5)
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(6))
    raw = fast_stylize_255(x * 255, net)
    assert tuple(raw.shape[2:]) == output_size(h, w)
    out = fast_stylize(x, net)
    assert out.shape == (1, 3, h, w)
    assert out.min() >= 0 and out.max() <= 1
    assert torch.allclose(out, (raw[:, :, :h, :w] / 255).clamp(0, 1))
    assert tuple(fast_stylize(x, net, crop_to_input=False).shape[2:]) == output_size(h, w)


def test_fast_stylize_progress_and_input_errors() -> None:
    net = _net(0)
    events: list = []
    fast_stylize(torch.rand(1, 3, 8, 8), net, progress=events.append)
    assert len(events) == 1 and events[0].step == events[0].total == 1
    with pytest.raises(InputError):
        fast_stylize(torch.rand(1, 4, 8, 8), net)
    with pytest.raises(InputError):
        fast_stylize(torch.rand(3, 8, 8), net)
    with pytest.raises(InputError):
        fast_stylize(torch.rand(1, 3, 2, 8), net)


def test_reference_uint8_truncates() -> None:
    x = torch.tensor([-3.0, 0.0, 0.99, 1.0, 127.5, 254.9, 255.0, 300.0])
    assert reference_uint8(x).tolist() == [0, 0, 0, 1, 127, 254, 255, 255]
    assert reference_uint8(x).dtype == torch.uint8


# ---------------------------------------------------------------- converter


def test_converter_drops_legacy_stats_and_loads_strictly(tmp_path: Path) -> None:
    net = _net(8)
    path = tmp_path / "mosaic.pth"
    torch.save(_legacy_state_dict(net), path, _use_new_zipfile_serialization=False)
    # the raw file does not load strictly, as with the published files
    with pytest.raises(RuntimeError, match="running stats"):
        TransformerNet().load_state_dict(torch.load(path, weights_only=True), strict=True)
    conv = get_converter("fast_style")(path)
    assert conv.arch == "fast_style" and conv.arch_kwargs == {}
    dropped = conv.extra["dropped_keys"].split(",")
    assert len(dropped) == 30 and "res2.in1.running_mean" in dropped and "in5.running_var" in dropped
    assert list(conv.state_dict) == list(net.state_dict())
    assert len(conv.source_sha256) == 64
    loaded = TransformerNet().eval()
    loaded.load_state_dict(conv.state_dict, strict=True)
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(9))
    assert torch.equal(fast_stylize(x, loaded), fast_stylize(x, net))

    # round trip through our own safetensors format
    out = save_model_file(tmp_path / "mosaic.safetensors", conv.state_dict, arch=conv.arch, source_sha256=conv.source_sha256)
    model, meta = load_model_file(out)
    assert meta["arch"] == "fast_style" and isinstance(model, TransformerNet)
    assert torch.equal(fast_stylize(x, model), fast_stylize(x, net))


def test_converter_rule_is_the_reference_regex(tmp_path: Path) -> None:
    """Only keys ending in in<digits>.running_(mean|var) go; a near miss stays and is reported."""
    sd = _legacy_state_dict(_net(0))
    sd["in1.running_mean_old"] = torch.zeros(32)
    path = tmp_path / "x.pth"
    torch.save(sd, path)
    with pytest.raises(WeightsError, match=r"unexpected keys: in1\.running_mean_old"):
        convert_fast_style(path)


def test_converter_errors(tmp_path: Path) -> None:
    sd = OrderedDict(TransformerNet().state_dict())
    del sd["res3.in2.bias"]
    p = tmp_path / "missing.pth"
    torch.save(sd, p)
    with pytest.raises(WeightsError, match=r"missing keys: res3\.in2\.bias"):
        convert_fast_style(p)

    sd = OrderedDict(TransformerNet().state_dict())
    sd["conv1.conv2d.weight"] = torch.zeros(16, 3, 9, 9)
    p = tmp_path / "shape.pth"
    torch.save(sd, p)
    with pytest.raises(WeightsError, match="shape mismatch"):
        convert_fast_style(p)

    p = tmp_path / "notdict.pth"
    torch.save([torch.zeros(1)], p)
    with pytest.raises(WeightsError, match="state dict"):
        convert_fast_style(p)

    p = tmp_path / "garbage.pth"
    p.write_bytes(b"not a checkpoint at all")
    with pytest.raises(WeightsError, match="garbage.pth"):
        convert_fast_style(p)


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))  # type: ignore[attr-defined]


def test_converter_refuses_code_in_pickles(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = _Evil()
    evil.marker = marker  # type: ignore[attr-defined]
    p = tmp_path / "evil.pth"
    with open(p, "wb") as fh:
        pickle.dump({"conv1.conv2d.weight": evil}, fh, protocol=2)
    with pytest.raises(WeightsError):
        convert_fast_style(p)
    assert not marker.exists()
