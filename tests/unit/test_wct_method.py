"""WCT decoders (layout = the reference's; level 4 = the AdaIN decoder) and the multi-level method."""

from __future__ import annotations

import pytest
import torch

from imgforge.errors import InputError, UsageError
from imgforge.methods.wct import wct_stylize
from imgforge.models.adain import AdaINDecoder
from imgforge.models.vgg import vgg19_normalised
from imgforge.models.wct import WCTDecoder, WCTDecoders
from imgforge.ops.wct import covariance


def test_level4_decoder_is_the_adain_decoder_layout():
    a, w = AdaINDecoder().state_dict(), WCTDecoder(4).state_dict()
    assert list(a) == list(w) and all(a[k].shape == w[k].shape for k in a)
    assert WCTDecoder(4).plan() == [(1, "pool3"), (5, "relu3_3"), (8, "relu3_2"), (11, "relu3_1"), (14, "pool2"),
                                    (18, "relu2_1"), (21, "pool1"), (25, "relu1_1"), (28, "image")]


@pytest.mark.parametrize("level, channels", [(1, 64), (2, 128), (3, 256), (4, 512), (5, 512)])
def test_decoders_map_their_level_back_to_the_image_size(level, channels):
    enc = vgg19_normalised().eval()
    x = torch.rand(1, 3, 32, 32)
    feat = enc(x, [f"relu{level}_1"])[f"relu{level}_1"]
    dec = WCTDecoder(level)
    assert feat.shape[1] == channels == dec.in_channels
    assert dec(feat).shape == (1, 3, 32, 32)
    assert dec.plan()[-1][1] == "image"


class Spy:
    """Decoders that record the features they get and return a fixed picture."""

    def __init__(self, image):
        self.seen, self.image = {}, image

    def __getitem__(self, level):
        def dec(feat):
            self.seen[level] = feat
            return self.image
        return dec


def _images():
    g = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, 48, 48, generator=g), torch.rand(1, 3, 44, 52, generator=g)


def test_each_level_gets_features_with_the_styles_covariance():
    torch.manual_seed(0)
    enc = vgg19_normalised().eval()
    content, style = _images()
    spy = Spy(content)
    wct_stylize(content, [style], enc, spy, levels=(2, 1))  # more pixels than channels at these levels
    for level in (2, 1):
        name = f"relu{level}_1"
        fs = enc(style, [name])[name][0].flatten(1)
        got = spy.seen[level][0].flatten(1)
        cs, cg = covariance(fs.detach()), covariance(got)
        assert float((cs - cg).abs().max() / cs.abs().max()) < 5e-3  # eigenvalues under the floor are dropped


def test_alpha_zero_and_weights_and_masks():
    torch.manual_seed(0)
    enc = vgg19_normalised().eval()
    content, style = _images()
    spy = Spy(content)
    wct_stylize(content, [style], enc, spy, alpha=0.0, levels=(2,))
    assert torch.allclose(spy.seen[2], enc(content, ["relu2_1"])["relu2_1"], atol=1e-5)
    one = Spy(content)
    wct_stylize(content, [style], enc, one, levels=(2,))
    two = Spy(content)
    wct_stylize(content, [style, style], enc, two, style_weights=[3, 1], levels=(2,))
    assert torch.allclose(one.seen[2], two.seen[2], atol=1e-4)
    m = Spy(content)
    wct_stylize(content, [style], enc, m, masks=[torch.zeros(1, 1, 48, 48)], levels=(2,))
    assert torch.allclose(m.seen[2], enc(content, ["relu2_1"])["relu2_1"], atol=1e-5)
    out = wct_stylize(content, [style], enc, WCTDecoders(), levels=(5, 4, 3, 2, 1))
    assert out.shape == content.shape and torch.isfinite(out).all()


def test_bad_inputs():
    enc = vgg19_normalised().eval()
    content, style = _images()
    with pytest.raises(InputError, match="flat colour"):
        wct_stylize(content, [torch.full((1, 3, 16, 16), 0.5)], enc, Spy(content), levels=(2,))
    with pytest.raises(UsageError, match="--alpha"):
        wct_stylize(content, [style], enc, Spy(content), alpha=2)
    with pytest.raises(UsageError, match="--mask"):
        wct_stylize(content, [style], enc, Spy(content), masks=[])


def test_precomputed_style_statistics_give_the_same_result():
    from imgforge.methods.wct import style_stats

    torch.manual_seed(0)
    enc = vgg19_normalised().eval()
    content, style = _images()
    levels = (2, 1)
    once = style_stats([style], enc, levels)
    a, b = Spy(content), Spy(content)
    wct_stylize(content, [style], enc, a, levels=levels)
    wct_stylize(content, [style], enc, b, levels=levels, stats=once)
    assert all(torch.equal(a.seen[lv], b.seen[lv]) for lv in levels)


def test_tiled_run_equals_the_whole_image_when_the_halo_covers_it_and_stays_close_with_a_small_halo():
    torch.manual_seed(0)
    enc = vgg19_normalised().eval()
    dec = WCTDecoders(levels=(2, 1)).eval()
    g = torch.Generator().manual_seed(1)
    content, style = torch.rand(1, 3, 125, 93, generator=g), torch.rand(1, 3, 40, 40, generator=g)
    mask = torch.zeros(1, 1, 125, 93)
    mask[..., :, 40:] = 1
    with torch.no_grad():
        for kw in ({}, {"masks": [mask]}):
            whole = wct_stylize(content, [style], enc, dec, levels=(2, 1), **kw)
            tiled = wct_stylize(content, [style], enc, dec, levels=(2, 1), tile=48, overlap=16, halo=128, **kw)
            assert tiled.shape == whole.shape
            assert float((tiled - whole).abs().max()) < 1e-4  # same statistics, ramps sum to 1
        content = content[:, :, :112, :80]  # the window edges on the stride grid: no resampling at the border
        small = wct_stylize(content, [style], enc, dec, levels=(2, 1), tile=48, overlap=16, halo=16)
        whole = wct_stylize(content, [style], enc, dec, levels=(2, 1))
    assert torch.isfinite(small).all()
    assert float((small - whole).abs().mean()) < 0.1 * float(whole.std())


def test_tiled_wct_memory_estimate_is_bounded():
    from imgforge.validate import BYTES_PER_PIXEL, check_output_size

    assert BYTES_PER_PIXEL["wct"][1] < BYTES_PER_PIXEL["wct"][0] / 10
    with pytest.raises(UsageError, match="use --tile"):
        check_output_size(200_000, 200_000, method="wct", option="--size 200000", max_pixels=10 ** 12)


def test_levels_with_too_few_feature_positions_per_channel_are_dropped_by_default():
    from imgforge.methods.wct import usable_levels

    # 128²: relu3_1 is 32² = 1024 positions for 256 channels (4 each) -> dropped; relu2_1 64² for 128 -> kept
    assert usable_levels((3, 2, 1), 128, 128) == (2, 1)
    assert usable_levels((3, 2, 1), 256, 256) == (3, 2, 1)
    assert usable_levels((5, 4, 3, 2, 1), 512, 512) == (4, 3, 2, 1)  # relu5_1: 32² for 512 channels
    assert usable_levels((3,), 16, 16) == (3,)  # nothing usable: the shallowest given level still runs
