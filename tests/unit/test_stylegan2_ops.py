"""upfirdn2d and fused leaky ReLU against direct, loop-based definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from imgforge.ops.fused_act import FusedLeakyReLU, fused_leaky_relu
from imgforge.ops.upfirdn2d import downsample2d, make_kernel, upfirdn2d, upfirdn2d_reference, upsample2d



def _upfirdn_loops(x: np.ndarray, k: np.ndarray, up: int, down: int, pads: tuple[int, int, int, int]) -> np.ndarray:
    """Textbook definition, one output sample at a time: zero-insert, pad, true convolution, decimate."""
    x0, x1, y0, y1 = pads
    n, c, h, w = x.shape
    u = np.zeros((n, c, h * up, w * up))
    u[:, :, ::up, ::up] = x
    hp, wp = h * up + y0 + y1, w * up + x0 + x1
    p = np.zeros((n, c, hp, wp))
    # place u at offset (y0, x0), cropping for negative pads
    sy, sx = max(y0, 0), max(x0, 0)
    cy, cx = max(-y0, 0), max(-x0, 0)
    hh, ww = min(u.shape[2] - cy, hp - sy), min(u.shape[3] - cx, wp - sx)
    p[:, :, sy:sy + hh, sx:sx + ww] = u[:, :, cy:cy + hh, cx:cx + ww]
    kh, kw = k.shape
    oh, ow = (hp - kh) // down + 1, (wp - kw) // down + 1
    out = np.zeros((n, c, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            for ky in range(kh):
                for kx in range(kw):
                    out[:, :, oy, ox] += p[:, :, oy * down + ky, ox * down + kx] * k[kh - 1 - ky, kw - 1 - kx]
    return out


@pytest.mark.parametrize(
    "up,down,pad",
    [(2, 1, (2, 1)), (2, 1, (1, 1)), (2, 1, (0, 0)), (1, 1, (1, 1)), (1, 2, (2, 2)), (1, 2, (1, 1)),
     (1, 1, (2, 1)), (2, 2, (1, 2)), (1, 1, (-1, 2)), (2, 1, (1, 2, 2, 1)), (3, 1, (2, 2))],
)
def test_upfirdn2d_matches_loop_definition(up: int, down: int, pad: tuple[int, ...]) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
    k = torch.randn(4, 4, generator=g, dtype=torch.float64)  # asymmetric: catches flips
    pads = (pad[0], pad[1], pad[0], pad[1]) if len(pad) == 2 else pad
    want = _upfirdn_loops(x.numpy(), k.numpy(), up, down, pads)  # type: ignore[arg-type]
    for fn in (upfirdn2d, upfirdn2d_reference):
        got = fn(x, k, up=up, down=down, pad=pad).numpy()
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-12)


def test_upfirdn2d_bias_and_channels_last() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 4, 6, 6, generator=g)
    k = make_kernel([1, 3, 3, 1]) * 4
    b = torch.randn(4, generator=g)
    for up, pad in ((2, (2, 1)), (1, (1, 1))):
        want = upfirdn2d_reference(x, k, up=up, pad=pad) + b.view(1, -1, 1, 1)
        got = upfirdn2d(x.contiguous(memory_format=torch.channels_last), k, up=up, pad=pad, bias=b)
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_make_kernel_and_resampling_gain() -> None:
    k = make_kernel([1, 3, 3, 1])
    assert k.shape == (4, 4) and abs(k.sum().item() - 1) < 1e-7
    torch.testing.assert_close(k, torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 64)
    const = torch.full((1, 2, 8, 8), 0.7)
    up = upsample2d(const, k)
    down = downsample2d(const, k)
    assert up.shape == (1, 2, 16, 16) and down.shape == (1, 2, 4, 4)
    # away from the zero-padded border a constant stays constant (gain 4 compensates the zero insertion)
    torch.testing.assert_close(up[..., 3:-3, 3:-3], torch.full_like(up[..., 3:-3, 3:-3], 0.7))
    torch.testing.assert_close(down[..., 1:-1, 1:-1], torch.full_like(down[..., 1:-1, 1:-1], 0.7))


def test_fused_leaky_relu() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 5, 4, 4, generator=g)
    b = torch.randn(5, generator=g)
    y = x + b.view(1, -1, 1, 1)
    want = torch.where(y >= 0, y, 0.2 * y) * math.sqrt(2)
    torch.testing.assert_close(fused_leaky_relu(x, b), want)
    torch.testing.assert_close(fused_leaky_relu(x, b, clamp=0.5), want.clamp(-0.5, 0.5))
    x2 = torch.randn(3, 5, generator=g)  # (N, C) from linear layers
    torch.testing.assert_close(fused_leaky_relu(x2, b), torch.nn.functional.leaky_relu(x2 + b, 0.2) * math.sqrt(2))
    act = FusedLeakyReLU(5)
    assert [k for k, _ in act.named_parameters()] == ["bias"]
    assert FusedLeakyReLU(5, bias=False).bias is None
