"""Inference paths used by stylize/training: fused TransformerNet/decoder forwards, tiles with whole-image statistics,
Gatys additions (colour, masks, scales)."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from imgforge.methods.adain import blend_features
from imgforge.methods.gatys import GatysConfig
from imgforge.methods.gatys_ext import (
    histogram_match, luminance_transfer, rgb_to_ycbcr, stylize_gatys_ext, ycbcr_to_rgb,
)
from imgforge.methods.style_fastpath import (
    DecoderForward, FastStyleForward, StatsRecorder, split_narrow_conv, subpixel_kernels,
)
from imgforge.methods.style_tiles import (
    FeatAccumulator, adain_from_stats, adain_tiled, fast_tiled, feature_stats, seam_difference,
)
from imgforge.ops.tiling import plan_axis, plan_tiles, tiled_map
from imgforge.models.adain import AdaINDecoder
from imgforge.models.fast_style import TransformerNet
from imgforge.models.vgg import vgg19


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _net(seed: int = 0) -> TransformerNet:
    torch.manual_seed(seed)
    net = TransformerNet().eval()
    with torch.no_grad():  # non-trivial InstanceNorm affine values, so that statistics matter
        for name, p in net.named_parameters():
            if ".in" in f".{name}" and p.dim() == 1:
                p.copy_(torch.rand(p.shape) + 0.5 if name.endswith("weight") else torch.randn(p.shape) * 0.5)
    return net


def _img(seed: int, h: int, w: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, h // 8 + 1, w // 8 + 1, generator=g)
    return F.interpolate(base, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


def test_subpixel_kernels_equal_upsample_then_conv() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 5, 7, 6, generator=g)
    w = torch.randn(4, 5, 3, 3, generator=g)
    ref = F.conv2d(F.pad(F.interpolate(x, scale_factor=2, mode="nearest"), (1, 1, 1, 1), mode="reflect"), w)
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate")
    ks = subpixel_kernels(w)
    for a in range(2):
        for b in range(2):
            got = F.conv2d(xp[:, :, a:a + 8, b:b + 7], ks[a][b])
            assert torch.allclose(got, ref[:, :, a::2, b::2], atol=1e-4)


def test_split_narrow_conv_equals_the_conv() -> None:
    g = torch.Generator().manual_seed(4)
    x = torch.randn(2, 6, 13, 11, generator=g, dtype=torch.float64)
    for shape in ((3, 6, 9, 9), (2, 6, 5, 3), (1, 6, 3, 7)):
        w = torch.randn(*shape, generator=g, dtype=torch.float64)
        b = torch.randn(shape[0], generator=g, dtype=torch.float64)
        w1, sel = split_narrow_conv(w)
        assert w1.shape == (shape[2] * shape[0], 6, 1, shape[3]) and sel.shape == (shape[0], shape[2] * shape[0], shape[2], 1)
        assert set(sel.unique().tolist()) == {0.0, 1.0} and int(sel.sum()) == shape[0] * shape[2]
        torch.testing.assert_close(F.conv2d(F.conv2d(x, w1), sel, b), F.conv2d(x, w, b), rtol=1e-12, atol=1e-12)


def test_native_bf16_forwards_track_fp32() -> None:
    """Built with native_dtype=bf16 (the Runtime's choice on a bf16 CPU) the fused forwards run natively in bf16,
    also under the runner's autocast: outputs within bf16 rounding of fp32."""
    net = _net()
    fwd = FastStyleForward(net, unit=True)
    fwd16 = FastStyleForward(net, unit=True, native_dtype=torch.bfloat16)
    x = _img(5, 64, 48)
    with torch.inference_mode():
        ref = fwd(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = fwd16(x)
            assert torch.is_autocast_enabled("cpu")  # restored after the native section
    assert got.dtype == torch.bfloat16 and got.shape == ref.shape
    err = (got.float() - ref).abs()
    rng = ref.max() - ref.min()
    assert 0 < err.max() <= 0.05 * rng and err.mean() <= 0.01 * rng
    torch.manual_seed(3)
    dec = AdaINDecoder().eval()
    f = torch.randn(1, 512, 6, 5).relu()
    dfw = DecoderForward(dec)
    with torch.inference_mode():
        ref = dfw(f)
        got = DecoderForward(dec, native_dtype=torch.bfloat16)(f)  # no autocast needed: the choice is explicit
    assert got.dtype == torch.bfloat16
    err = (got.float() - ref).abs()
    assert 0 < err.max() <= 0.05 * (ref.max() - ref.min())


def test_fused_forwards_equal_the_modules() -> None:
    net = _net()
    x = _img(2, 44, 36) * 255
    with torch.no_grad():
        want = net(x)
    with torch.inference_mode():
        got = FastStyleForward(net)(x)
        got_unit = FastStyleForward(net, unit=True, channels_last=False)(x / 255) * 255
    scale = want.abs().max()
    assert got.shape == want.shape
    assert (got - want).abs().max() <= 1e-4 * scale
    assert (got_unit - want).abs().max() <= 1e-4 * scale
    torch.manual_seed(3)
    dec = AdaINDecoder().eval()
    f = torch.randn(1, 512, 5, 4).relu()
    with torch.no_grad():
        want = dec(f)
    with torch.inference_mode():
        got = DecoderForward(dec)(f)
    assert got.shape == (1, 3, 40, 32) and (got - want).abs().max() <= 1e-4 * want.abs().max()


def test_plan_axis_partitions_and_ramps_sum_to_one() -> None:
    for size, tile in [(100, 40), (333, 128), (64, 64), (257, 100)]:
        cells = plan_axis(size, tile, 4, 16, 20)
        cores = [c for _w, _o, c, _r in cells]
        assert cores[0][0] == 0 and cores[-1][1] == size
        assert all(a[1] == b[0] for a, b in zip(cores, cores[1:]))
        assert all(c0 % 4 == 0 for c0, _ in cores)
        ones = torch.ones(1, 1, size, 3)
        tiles = plan_tiles(size, 3, tile, 4, 16, 20)
        out = tiled_map(lambda win, t: torch.ones(1, 1, *win.shape[-2:]), ones, tiles, out_channels=1)
        assert torch.allclose(out, ones, atol=1e-6)
        for w, o, c, _r in cells:
            assert w[0] <= o[0] <= c[0] < c[1] <= o[1] <= w[1]


def test_fast_tiled_with_whole_image_statistics_matches_untiled() -> None:
    net = _net(4)
    fwd = FastStyleForward(net, unit=True)
    x = _img(5, 184, 64)
    tiles = plan_tiles(184, 64, 92, 4, 16, 48)
    assert len(tiles) == 2 and tiles[0].win[0][1] < 184
    with torch.inference_mode():
        ref = fwd(x)
        exact = fast_tiled(fwd, x, tile=92, overlap=16, halo=48, thumb=10_000)
        own = tiled_map(lambda win, t: fwd(win), x, tiles)  # per-tile statistics
    seam, mean = seam_difference(exact, ref, tiles)
    assert (exact - ref).abs().max() <= 1e-3 * ref.abs().max()
    seam_own, _ = seam_difference(own, ref, tiles)
    assert seam < 1e-3 * seam_own  # per-tile statistics would show the tiles


def test_stats_recorder_accumulates_exact_statistics() -> None:
    net = _net(6)
    fwd = FastStyleForward(net, unit=True)
    x = _img(7, 64, 48)
    with torch.inference_mode():
        whole = StatsRecorder(core=(0, 64, 0, 48))
        fwd(x, recorder=whole)
        stats = whole.stats()
        parts = StatsRecorder()
        for t in plan_tiles(64, 48, 24, 4, 8, 64):
            (wy0, wy1), (wx0, wx1) = t.win
            parts.core = (t.core[0][0] - wy0, t.core[0][1] - wy0, t.core[1][0] - wx0, t.core[1][1] - wx0)
            fwd(x[:, :, wy0:wy1, wx0:wx1], stats=stats, recorder=parts)
    got = parts.stats()
    for k, (m, v) in stats.items():
        assert torch.allclose(got[k][0], m, atol=1e-4 * (m.abs().max() + 1)), k
        assert torch.allclose(got[k][1], v, rtol=1e-3, atol=1e-6), k


def _tiny_adain():  # type: ignore[no-untyped-def]
    torch.manual_seed(8)
    enc = vgg19(last_layer="relu4_1", widths=(4, 8, 8, 512, 8)).eval()
    dec = AdaINDecoder().eval()
    return enc, dec


def test_adain_tiled_exact_statistics_and_masks() -> None:
    enc, dec = _tiny_adain()

    def encode(x: torch.Tensor) -> torch.Tensor:
        return enc(x, ("relu4_1",))["relu4_1"]

    content = _img(9, 64, 56)
    styles = [_img(10, 40, 40), _img(11, 48, 32)]
    sstats = [feature_stats(encode(s)) for s in styles]
    mask = torch.zeros(1, 1, 64, 56)
    mask[..., :, :24] = 1
    with torch.inference_mode():
        cf = encode(content)
        ref = dec(blend_features(cf, [encode(s) for s in styles], alpha=0.7, style_weights=[2, 1]))
        one = adain_tiled(encode, dec, content, sstats, alpha=0.7, style_weights=[2, 1], tile=1000)
        tiled = adain_tiled(encode, dec, content, sstats, alpha=0.7, style_weights=[2, 1], tile=32, overlap=16, halo=64)
        masked = adain_tiled(encode, dec, content, sstats, masks=[mask, 1 - mask], tile=32, overlap=16, halo=64)
        masked_ref = adain_tiled(encode, dec, content, sstats, masks=[mask, 1 - mask], tile=1000)
    assert torch.equal(one, ref)  # untiled: the library's blend_features, same operations
    assert (tiled - ref).abs().max() <= 1e-3 * ref.abs().max()
    assert (masked - masked_ref).abs().max() <= 1e-3 * masked_ref.abs().max()
    acc = FeatAccumulator()
    acc.add(cf[:, :, :5])
    acc.add(cf[:, :, 5:])
    assert torch.allclose(acc.stats().std, feature_stats(cf).std, rtol=1e-4)
    # with the content's own statistics, adain_from_stats is blend_features
    assert torch.equal(adain_from_stats(cf, feature_stats(cf), sstats[:1]), blend_features(cf, [encode(styles[0])]))


def test_colour_helpers() -> None:
    x = _img(12, 20, 24)
    assert torch.allclose(ycbcr_to_rgb(rgb_to_ycbcr(x)), x, atol=1e-5)
    styl = _img(13, 20, 24)
    out = luminance_transfer(styl, x)
    inside = ((out > 0.001) & (out < 0.999)).all(1, keepdim=True)  # not clamped there
    assert inside.float().mean() > 0.5
    assert ((rgb_to_ycbcr(out)[:, :1] - rgb_to_ycbcr(styl)[:, :1]).abs() * inside).max() < 1e-4
    assert ((rgb_to_ycbcr(out)[:, 1:] - rgb_to_ycbcr(x)[:, 1:]).abs() * inside).max() < 1e-4
    hm = histogram_match(styl, x)
    for c in range(3):
        assert torch.allclose(hm[0, c].flatten().sort()[0], x[0, c].flatten().sort()[0], atol=1e-6)


def test_gatys_ext_scales_masks_and_colour() -> None:
    torch.manual_seed(14)
    enc = vgg19(last_layer="relu4_2", widths=(4, 8, 8, 8, 8)).eval()
    content = _img(15, 80, 64)
    styles = [_img(16, 32, 32), torch.flip(_img(17, 32, 32), (1,))]
    cfg = GatysConfig(size=40, iterations=4, style_layers=("relu1_1", "relu2_1"), optimizer="adam", lr=0.05)
    events = []
    out = stylize_gatys_ext(content, styles, enc, cfg, scales=2, progress=events.append)
    assert out.shape == (1, 3, 40, 32) and len(events) >= 2
    m = torch.zeros(1, 1, 80, 64)
    m[..., :40, :] = 1
    masked = stylize_gatys_ext(content, styles, enc, cfg, masks=[m, 1 - m])
    assert masked.shape == out.shape and not torch.equal(masked, out)
    kept = stylize_gatys_ext(content, styles, enc, cfg, preserve_color=True)
    small = F.interpolate(content, size=kept.shape[-2:], mode="bilinear", align_corners=False)
    assert (rgb_to_ycbcr(kept)[:, 1:] - rgb_to_ycbcr(small)[:, 1:]).abs().mean() < 0.02
