"""Layer-wise least-squares decoder fitting: a fitted decoder reconstructs held-out images; same seed, same weights."""

from __future__ import annotations

import torch

from imgforge.models.vgg import vgg19_normalised
from imgforge.models.wct import WCTDecoder
from imgforge.training.decoder_fit import fit_decoder_lsq


def _smooth(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(1, 3, 6, 6, generator=g)
    return torch.nn.functional.interpolate(low, size=(32, 32), mode="bicubic", align_corners=False).clamp(0, 1)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


def test_fitted_level2_decoder_reconstructs_held_out_images_and_is_repeatable():
    torch.manual_seed(0)
    enc = vgg19_normalised(last_layer="relu2_1").eval()
    train = [_smooth(s) for s in range(6)]
    held = _smooth(100)
    with torch.no_grad():
        feat = enc(held, ["relu2_1"])["relu2_1"]
        before = psnr(WCTDecoder(2)(feat), held)
        dec = fit_decoder_lsq(enc, WCTDecoder(2), WCTDecoder(2).plan(), "relu2_1", train, per_image=300)
        after = psnr(dec(feat), held)
        again = fit_decoder_lsq(enc, WCTDecoder(2), WCTDecoder(2).plan(), "relu2_1", train, per_image=300)
    assert after > 20 and after > before + 10, (before, after)
    assert all(torch.equal(a, b) for a, b in zip(dec.state_dict().values(), again.state_dict().values()))
