"""translate() / run_generator(): padding, modes (eval, reference test.py train mode), seeding, tiling."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn as nn

from imgforge.errors import InputError, UsageError
from imgforge.methods.translate import (
    from_model_range,
    inference_copy,
    pad_to_multiple,
    run_generator,
    to_model_range,
    translate,
)
from imgforge.models.translation import ResnetGenerator, UnetGenerator, init_weights
from imgforge.ops.tiling import ramp_weights as _ramp_weights, tile_starts as _tile_starts
from imgforge.progress import ProgressEvent


def _unet(dropout: bool = True) -> UnetGenerator:
    torch.manual_seed(0)
    g = init_weights(UnetGenerator(3, 3, num_downs=6, ngf=4, norm="batch", use_dropout=dropout), "normal", 0.2)
    # Realistic running stats, different from any single image's statistics.
    g.train()
    with torch.no_grad():
        for _ in range(3):
            g(torch.rand(2, 3, 64, 64) * 2 - 1)
    return g.eval()


class Pointwise(nn.Module):
    """A 1x1-conv 'generator': each output pixel depends on its input pixel only, so tiling must be exact."""

    input_nc = 3
    pad_multiple = 4

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))


def test_range_helpers() -> None:
    x = torch.rand(2, 3, 5, 5)
    assert torch.allclose(from_model_range(to_model_range(x)), x, atol=1e-7)
    assert to_model_range(torch.tensor([0.0, 0.5, 1.0])).tolist() == [-1.0, 0.0, 1.0]
    assert from_model_range(torch.tensor([-2.0, 0.0, 2.0])).tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("h,w,m", [(5, 7, 4), (3, 3, 32), (1, 6, 8), (16, 16, 16)])
def test_pad_to_multiple(h: int, w: int, m: int) -> None:
    x = torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w)
    y, (l, r, t, b) = pad_to_multiple(x, m)
    assert y.shape[-2] % m == 0 and y.shape[-1] % m == 0
    assert y.shape[-2] >= h and y.shape[-1] >= w and abs(l - r) <= 1 and abs(t - b) <= 1
    assert torch.equal(y[..., t : t + h, l : l + w], x)


def test_reflect_padding_values() -> None:
    x = torch.tensor([[[[1.0, 2.0, 3.0]]]])
    y, pads = pad_to_multiple(x, 8)
    assert pads == (2, 3, 3, 4)
    assert y[0, 0, 0].tolist() == [3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0, 2.0]  # reflected again past the edge


@pytest.mark.parametrize("h,w", [(17, 23), (8, 8), (30, 4), (1, 1)])
def test_output_has_input_size(h: int, w: int) -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(3, 1, ngf=2, norm="instance", n_blocks=1)
    y = translate(torch.rand(2, 3, h, w), g)
    assert y.shape == (2, 1, h, w) and 0 <= y.min() and y.max() <= 1


def test_eval_mode_equals_plain_eval_forward_and_unet_pads_to_64() -> None:
    g = _unet()
    x = torch.rand(1, 3, 64, 128) * 2 - 1
    with torch.no_grad():
        assert torch.equal(run_generator(x, g), g.eval()(x))
    assert run_generator(x[..., :20, :70], g).shape == (1, 3, 20, 70)


def test_train_mode_without_dropout_is_reference_train_forward_and_leaves_model_untouched() -> None:
    g = _unet()
    g.train()  # whatever mode the caller had must come back
    before = copy.deepcopy(g.state_dict())
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    y = run_generator(x, g, eval_mode=False, dropout=False)
    # The fixtures' definition: a deep copy in train mode, dropout layers in eval mode; one image at a time.
    ref = copy.deepcopy(g).train()
    for m in ref.modules():
        if isinstance(m, nn.Dropout):
            m.eval()
    with torch.no_grad():
        expect = torch.cat([ref(x[i : i + 1]) for i in range(2)])
    assert torch.equal(y, expect)
    assert not torch.allclose(y, run_generator(x, g), atol=1e-3)  # batch stats differ from running stats
    assert g.training and all(m.training for m in g.modules())
    assert all(torch.equal(before[k], v) for k, v in g.state_dict().items())  # running stats not updated
    assert all(m.track_running_stats for m in g.modules() if isinstance(m, nn.BatchNorm2d))


def test_dropout_is_seedable_and_does_not_touch_global_rng() -> None:
    g = _unet()
    assert sum(isinstance(m, nn.Dropout) for m in g.modules()) == 1
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    state = torch.get_rng_state()
    a = run_generator(x, g, eval_mode=False, generator=torch.Generator().manual_seed(5))
    b = run_generator(x, g, eval_mode=False, generator=torch.Generator().manual_seed(5))
    c = run_generator(x, g, eval_mode=False, generator=torch.Generator().manual_seed(6))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    assert not torch.allclose(a, run_generator(x, g, eval_mode=False, dropout=False))
    # Monte-Carlo dropout in eval mode is possible too, and also seedable.
    d1 = run_generator(x, g, dropout=True, generator=torch.Generator().manual_seed(1))
    d2 = run_generator(x, g, dropout=True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(d1, d2) and not torch.allclose(d1, run_generator(x, g))
    assert not g.training


def test_instance_norm_generator_same_in_both_modes() -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(3, 3, ngf=4, norm="instance", n_blocks=2)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    assert torch.allclose(run_generator(x, g), run_generator(x, g, eval_mode=False), atol=1e-6)


def test_input_checks() -> None:
    g = ResnetGenerator(3, 3, ngf=2, norm="instance", n_blocks=1)
    with pytest.raises(InputError, match="channels"):
        translate(torch.rand(1, 1, 8, 8), g)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        translate(torch.rand(1, 3, 8, 8) * 2 - 1, g)
    with pytest.raises(InputError):
        run_generator(torch.rand(3, 8, 8), g)
    with pytest.raises(UsageError):
        run_generator(torch.rand(1, 3, 8, 8), g, pad_multiple=0)


def test_translate_wraps_run_generator() -> None:
    torch.manual_seed(0)
    g = ResnetGenerator(3, 3, ngf=2, norm="instance", n_blocks=1)
    x = torch.rand(1, 3, 12, 12)
    assert torch.equal(translate(x, g), from_model_range(run_generator(to_model_range(x), g)))


def test_tile_geometry_and_ramps() -> None:
    assert _tile_starts(100, 100, 10) == [0]
    assert _tile_starts(100, 40, 8) == [0, 32, 60]
    starts = _tile_starts(100, 40, 8)
    ws = _ramp_weights(starts, 40, torch.device("cpu"))
    total = torch.zeros(100)
    for s, w in zip(starts, ws):
        total[s : s + 40] += w
        assert (w > 0).all()
    assert torch.allclose(total, torch.ones(100))  # complementary ramps: a partition of unity


def test_tiled_is_exact_for_pointwise_net_and_reports_progress() -> None:
    g = Pointwise()
    x = torch.rand(2, 3, 37, 70) * 2 - 1
    events: list[ProgressEvent] = []
    y = run_generator(x, g, tile=16, tile_overlap=6, progress=events.append)
    assert torch.allclose(y, run_generator(x, g), atol=1e-6)
    assert len(events) > 4 and events[-1].step == events[-1].total and events[-1].unit == "tile"
    y2 = run_generator(x, g, max_pixels=1000)  # auto tiling (512 tiles cover it: one tile)
    assert torch.allclose(y2, y, atol=1e-6)


def test_tiled_unet_in_eval_mode() -> None:
    g = _unet(dropout=False)
    x = torch.rand(1, 3, 100, 150) * 2 - 1
    full = run_generator(x, g)
    assert torch.equal(run_generator(x, g, tile=256), full)  # one tile covers the padded image: no tiling
    tiled = run_generator(x, g, tile=50, tile_overlap=16)  # rounded up to 64-pixel tiles
    assert tiled.shape == full.shape and tiled.abs().max() <= 1
    assert not g.training


def test_tiling_refused_in_train_mode() -> None:
    g = _unet()
    with pytest.raises(UsageError, match="eval"):
        run_generator(torch.rand(1, 3, 64, 64), g, eval_mode=False, tile=32)
    with pytest.raises(UsageError, match="overlap"):
        run_generator(torch.rand(1, 3, 128, 128), g, tile=64, tile_overlap=64)


def test_native_bf16_copy_tracks_fp32_in_both_modes() -> None:
    """A bf16 copy (convs bf16, norms float32) runs without autocast, stays close to fp32 and leaves G untouched."""
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(5)) * 2 - 1
    torch.manual_seed(1)
    resnet = init_weights(ResnetGenerator(3, 3, ngf=8, norm="instance", n_blocks=2), "normal", 0.02).eval()
    for G in (_unet(), resnet):
        before = copy.deepcopy(G.state_dict())
        G16 = inference_copy(G, torch.bfloat16)
        assert all(p.dtype == torch.float32 for p in G.parameters())
        assert any(p.dtype == torch.bfloat16 for p in G16.parameters())
        for eval_mode in (True, False):
            ref = run_generator(x, G, eval_mode=eval_mode, dropout=False)
            got = run_generator(x, G16, eval_mode=eval_mode, dropout=False, dtype=torch.bfloat16)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                auto = run_generator(x, G, eval_mode=eval_mode, dropout=False)
            assert got.dtype == torch.float32 and got.shape == ref.shape
            err, err_auto = (got - ref).abs(), (auto - ref).abs()
            # as accurate as bf16 autocast (which it replaces), and clearly bf16-level
            assert 0 < float(err.mean()) <= 1.5 * float(err_auto.mean()) + 1e-4 and float(err.mean()) < 0.02
            assert float(err.max()) <= 2 * float(err_auto.max()) + 1e-3
        for k, v in G.state_dict().items():
            assert torch.equal(v, before[k]), k
