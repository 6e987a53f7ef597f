"""FID / KID / IS / precision-recall / Parzen / PPL / resize protocols on small synthetic data (exact or closed-form
expectations), the Inception layout, and the single SSIM."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from imgforge.errors import InputError, UsageError, WeightsError
from imgforge.metrics import scores
from imgforge.models.inception import FIDInceptionV3, N_PARAM_ENTRIES, check_state_dict, inception_layout
from imgforge.metrics.ppl import lerp, perceptual_path_length, slerp
from imgforge.metrics.resize import inception_input, resize, resize_tf1


try:  # the sqrtm route (pytorch-fid's) needs scipy: `pip install imgforge[metrics]`; the test extra has it
    import scipy  # noqa: F401

    _HAVE_SCIPY = True
except ImportError:
    _HAVE_SCIPY = False


def test_fid_gaussians_closed_form() -> None:
    # diagonal covariances: FID = |mu1-mu2|^2 + sum (sqrt(a) - sqrt(b))^2
    m1, m2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.diag([1.0, 4.0, 9.0]), np.diag([4.0, 1.0, 1.0])
    expect = 1 + 0 + 4 + (1 - 2) ** 2 + (2 - 1) ** 2 + (3 - 1) ** 2
    for method in ("eigvals", "sqrtm") if _HAVE_SCIPY else ("eigvals",):
        assert scores.fid_from_stats(m1, s1, m2, s2, method)["value"] == pytest.approx(expect, abs=1e-9)


def test_fid_routes_agree_and_identity_is_zero() -> None:
    rng = np.random.RandomState(0)
    a, b = rng.randn(30, 64), rng.randn(40, 64) * 1.3 + 0.2  # fewer samples than dimensions: rank-deficient
    v = {m: scores.fid(a, b, m) for m in ("lowrank", "eigvals") + (("sqrtm",) if _HAVE_SCIPY else ())}
    assert v["lowrank"] == pytest.approx(v["eigvals"], rel=1e-7)
    assert v["lowrank"] == pytest.approx(v.get("sqrtm", v["lowrank"]), rel=1e-7)
    assert abs(scores.fid(a, a)) < 1e-9  # auto -> lowrank: exact zero
    assert scores.fid(a, b) == pytest.approx(scores.fid(b, a), abs=1e-9)
    c = rng.randn(200, 8)  # more samples than dimensions: auto -> eigvals
    assert scores.fid_terms(c, c + 0.5)["method"] == "eigvals"
    assert scores.fid(c, c + 0.5) == pytest.approx(8 * 0.25, abs=1e-9)
    with pytest.raises(InputError):
        scores.fid(a[:1], b)
    with pytest.raises(InputError):
        scores.fid(a, b[:, :10])


def test_kid_reference_estimator_and_rng() -> None:
    rng = np.random.RandomState(1)
    a, b = rng.randn(20, 16).astype(np.float32), rng.randn(25, 16).astype(np.float32)
    r = scores.kid(a, b, subsets=3, subset_size=10, seed=5, return_subsets=True)
    g = np.random.RandomState(5)
    for i in range(3):  # subsets drawn as the reference: A then B from one RandomState
        x, y = a[g.choice(20, 10, replace=False)], b[g.choice(25, 10, replace=False)]
        k = lambda p, q: (p.astype(np.float64) @ q.T.astype(np.float64) / 16 + 1) ** 3  # noqa: E731
        kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
        mmd = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / 90 - 2 * kxy.mean()
        assert r["mmd"][i] == pytest.approx(mmd, abs=1e-4)
    assert r["value"] == pytest.approx(r["mmd"].mean()) and r["std"] == pytest.approx(r["mmd"].std())
    with pytest.raises(InputError, match="subset-size"):
        scores.kid(a, b, subset_size=21)


def test_inception_score_bounds() -> None:
    eye = torch.eye(10).repeat(5, 1) * 50  # confident and balanced -> IS = number of classes
    assert scores.inception_score(eye, splits=1)["value"] == pytest.approx(10, rel=1e-6)
    flat = torch.zeros(50, 10)  # uniform predictions -> 1
    assert scores.inception_score(flat, splits=5)["value"] == pytest.approx(1.0)
    one = torch.zeros(50, 10)
    one[:, 3] = 50  # always the same class -> 1
    assert scores.inception_score(one, splits=2)["value"] == pytest.approx(1.0, abs=1e-9)
    # uneven splits: 7 rows in 3 splits of 2/2/3 rows, with a shuffle
    r = scores.inception_score(torch.randn(7, 4, generator=torch.Generator().manual_seed(0)), splits=3)
    assert r["splits"] == 3 and r["value"] >= 1.0
    with pytest.raises(InputError):
        scores.inception_score(flat[:3], splits=5)


def test_precision_recall() -> None:
    rng = np.random.RandomState(0)
    real = rng.randn(200, 2)
    assert scores.precision_recall(real, real) == {"precision": 1.0, "recall": 1.0, "k": 3}
    far = rng.randn(100, 2) + 50
    r = scores.precision_recall(real, far)
    assert r["precision"] == 0.0 and r["recall"] == 0.0
    collapsed = real[:1] + 0.01 * rng.randn(50, 2)  # one mode: precise, low recall
    r = scores.precision_recall(real, collapsed)
    assert r["precision"] == 1.0 and r["recall"] < 0.3


def test_parzen_matches_gaussian_density() -> None:
    s = np.zeros((1, 3))  # one sample at 0: the Parzen density is N(0, sigma^2 I)
    x = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    ll = scores.parzen_log_likelihood(s, x, 0.5)
    expect = [-1.5 * math.log(2 * math.pi * 0.25), -1.5 * math.log(2 * math.pi * 0.25) - 1 / (2 * 0.25)]
    assert np.allclose(ll, expect)
    rng = np.random.RandomState(0)
    samples = rng.randn(2000, 2) * 0.3
    test = rng.randn(400, 2) * 0.3
    r = scores.parzen(samples, test[:200], test[200:], sigmas=[0.01, 0.1, 1.0, 10.0])
    assert r["sigma"] == 0.1 and r["std"] > 0 and r["n_test"] == 200


def test_tf1_resize_rule() -> None:
    x = torch.arange(4.0).view(1, 1, 1, 4).expand(1, 1, 4, 4) * 10
    y = resize_tf1(x, 8)  # scale 0.5: src = 0, .5, 1, ..., 3.5 -> clamped at the border, no half-pixel shift
    assert torch.allclose(y[0, 0, 0], torch.tensor([0, 5, 10, 15, 20, 25, 30, 30.0]))
    assert torch.equal(resize_tf1(x, 4), x)
    assert resize(x, 4, "torch").shape == (1, 1, 4, 4) and resize(x, 8, "clean").shape == (1, 1, 8, 8)
    z = torch.zeros(1, 3, 5, 5)
    assert inception_input(z, "tf1", 7).min() == -1
    assert float(inception_input(z + 255, "torch", 7).max()) == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(UsageError):
        resize(x, 8, "bicubic")


def test_inception_layout_and_strict_check() -> None:
    lay = inception_layout()
    assert len(lay) == N_PARAM_ENTRIES and lay[-2] == ("fc.weight", (1008, 2048)) and lay[0][0] == "Conv2d_1a_3x3.conv.weight"
    sd = FIDInceptionV3().state_dict()
    slim = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}  # the TF-conversion form
    assert len(check_state_dict(slim, "x")) == N_PARAM_ENTRIES
    bad = dict(slim)
    bad["fc.weight"] = torch.zeros(1000, 2048)
    with pytest.raises(WeightsError, match="fc.weight"):
        check_state_dict(bad, "x")
    with pytest.raises(WeightsError, match="missing"):
        check_state_dict({k: v for k, v in slim.items() if k != "fc.bias"}, "x")


def test_slerp_lerp() -> None:
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    m = slerp(a, b, torch.tensor([[0.5]]))
    assert torch.allclose(m, torch.tensor([[math.sqrt(0.5), math.sqrt(0.5)]]))
    assert torch.allclose(lerp(a, b, torch.tensor([[0.25]])), torch.tensor([[0.75, 0.5]]))


def test_ppl_of_a_linear_generator() -> None:
    class Lin(torch.nn.Module):  # image = w (as 1x1 pixels): PPL in W with a squared distance = |w1 - w0|^2 average
        z_dim = 4

        def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0) -> torch.Tensor:
            return z[:, None, :] * 2

        def synthesis(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
            return ws[:, 0, :3, None, None] * 1e-3

    sq = lambda x, y: (x - y).square().flatten(1).sum(1)  # noqa: E731
    r = perceptual_path_length(Lin(), sq, 64, space="w", seed=0)
    # (img(t+eps) - img(t)) = eps * (w1 - w0)[:3] * 1e-3 / 2 (the [0,1] mapping halves it): value = E|.|^2 / 4 * 1e-6
    assert 0 < r["value"] < 3 * 8 * 1e-6 / 4 * 3 and r["n"] == 64
    with pytest.raises(UsageError):
        perceptual_path_length(Lin(), sq, 4, space="q")


def test_one_ssim() -> None:
    from imgforge.jobs import translate as translate_job
    from imgforge.metrics import ssim

    x = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0))
    y = (x + 0.1 * torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert torch.allclose(translate_job.ssim(x, y).double(), ssim(x, y), atol=1e-6)


def test_lpips_formula_and_reader(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from imgforge.metrics.lpips import LPIPS, LPIPS_LAYERS, read_lpips_linear
    from imgforge.models.vgg import TorchvisionVGG

    torch.manual_seed(0)
    widths = (4, 4, 8, 8, 8)
    vgg = TorchvisionVGG("vgg16", widths=widths).eval()
    chans = [vgg.channels(n) for n in LPIPS_LAYERS]
    sd = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(chans)}
    torch.save(sd, tmp_path / "vgg.pth")
    lin = read_lpips_linear(tmp_path / "vgg.pth")
    m = LPIPS(vgg, lin)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    assert torch.allclose(m(x, x), torch.zeros(2)) and torch.allclose(m(x, y), m(y, x))
    fx, fy = vgg(x, layers=list(LPIPS_LAYERS)), vgg(y, layers=list(LPIPS_LAYERS))
    ref = sum(((fx[n] / (fx[n].norm(dim=1, keepdim=True) + 1e-10) - fy[n] / (fy[n].norm(dim=1, keepdim=True) + 1e-10))
               ** 2 * w.view(1, -1, 1, 1)).sum(1).mean((1, 2)) for n, w in zip(LPIPS_LAYERS, lin))
    assert torch.allclose(m(x, y), ref, rtol=1e-5)
    torch.save({"lin0.model.1.weight": torch.rand(3)}, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="lin0"):
        read_lpips_linear(tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="VGG-16"):
        LPIPS(TorchvisionVGG("vgg19", widths=widths), lin)
