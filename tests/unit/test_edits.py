"""Editing operations on tiny random generators: layers, seeds, morphs, style mixing, SeFa, arithmetic, inpaint, superres."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from imgforge.errors import InputError, UsageError
from imgforge.methods.edits import (
    Source, conv_affines, describe_layers, edit_strip, inpaint, latent_arithmetic, layer_resolutions,
    morph_latents, parse_layers, parse_seeds, parse_sources, prepare_mask, prior_inits, render, sefa_directions,
    seed_to_z, slerp, strengths_for, style_groups, style_mix, superres,
)
from imgforge.jobs.edit import resolve_sources
from imgforge.latents import LatentRecord, save_latent
from imgforge.methods.invert import InvertConfig, Inverter
from imgforge.metrics import psnr
from imgforge.models.stylegan2 import Generator
from imgforge.ops.resize import downscale


@pytest.fixture(scope="module")
def G() -> Generator:
    torch.manual_seed(0)
    return Generator(16, style_dim=32, n_mlp=2, channels={4: 32, 8: 32, 16: 16}).eval().requires_grad_(False)


def _rec(G: Generator, seed: int) -> LatentRecord:
    z = seed_to_z(seed, G.z_dim)
    return LatentRecord(space="z", latent=z, ws=G.mapping(z))


def test_seeds() -> None:
    assert parse_seeds("1,2,5-7") == [1, 2, 5, 6, 7]
    with pytest.raises(UsageError):
        parse_seeds("3-1")
    with pytest.raises(UsageError):
        parse_seeds("x")
    z = seed_to_z(42, 16)
    assert torch.equal(z, torch.from_numpy(np.random.RandomState(42).randn(1, 16).astype(np.float32)))


def test_layer_groups_follow_the_resolution() -> None:
    # FACTS 3.7: ws[0] -> 4x4 conv; ws[2k+1], ws[2k+2] -> convs at 2^(k+3); the last -> final ToRGB only
    assert layer_resolutions(8, 32) == [4, 8, 8, 16, 16, 32, 32, 32]
    assert style_groups(8, 32) == {"coarse": [0, 1, 2], "middle": [3, 4, 5, 6, 7], "fine": []}
    g = style_groups(18, 1024)
    assert g["coarse"] == [0, 1, 2] and g["middle"] == [3, 4, 5, 6] and g["fine"] == list(range(7, 18))
    assert style_groups(14, 256)["fine"] == list(range(7, 14))
    assert parse_layers("1-3,6", 8, 32) == [1, 2, 3, 6]
    assert parse_layers("middle", 8, 32) == [3, 4, 5, 6, 7]
    assert parse_layers(None, 8, 32) == list(range(8))
    with pytest.raises(UsageError, match="fine group is empty"):
        parse_layers("fine", 8, 32)
    with pytest.raises(UsageError):
        parse_layers("2-8", 8, 32)
    assert "coarse 0-2" in describe_layers(8, 32)


def test_sources(G: Generator, tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"x")
    lat = save_latent(tmp_path / "b.latent.safetensors", _rec(G, 3))
    src = parse_sources([f"1,4-5,{tmp_path / 'a.png'}", str(lat)])
    assert [s.kind for s in src] == ["seed", "seed", "seed", "image", "latent"]
    assert src[3].label == "a.png"
    with pytest.raises(InputError):
        parse_sources(["missing.png"])
    recs = resolve_sources([Source("seed", 3), Source("latent", str(lat))], G)
    assert torch.equal(recs[0].ws, recs[1].ws)
    trunc = resolve_sources([Source("seed", 3)], G, truncation_psi=0.0)[0]
    assert torch.allclose(trunc.ws, G.w_avg.expand_as(trunc.ws))
    with pytest.raises(UsageError):
        resolve_sources([Source("image", str(tmp_path / "a.png"))], G)  # images need an inverter


def test_slerp_and_morph(G: Generator) -> None:
    a, b = seed_to_z(1, 32), seed_to_z(2, 32)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-6) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    mid = slerp(a / a.norm(), b / b.norm(), 0.5)
    assert mid.norm().item() == pytest.approx(1.0, abs=1e-5)  # stays on the sphere
    ra, rb = _rec(G, 1), _rec(G, 2)
    ws, noise = morph_latents(ra, rb, 5, G, "w+")
    assert ws.shape == (5, G.num_ws, G.w_dim) and noise is None
    assert torch.equal(ws[0], ra.ws[0]) and torch.allclose(ws[-1], rb.ws[0])
    assert torch.allclose(ws[2], (ra.ws[0] + rb.ws[0]) / 2, atol=1e-6)
    wz, _ = morph_latents(ra, rb, 3, G, "z")
    assert torch.allclose(wz[0], ra.ws[0], atol=1e-5) and torch.allclose(wz[-1], rb.ws[0], atol=1e-5)
    with pytest.raises(UsageError):
        morph_latents(LatentRecord("w+", ra.ws, ra.ws), rb, 3, G, "z")
    with pytest.raises(UsageError):
        morph_latents(ra, rb, 1, G)


def test_style_mix_grid(G: Generator) -> None:
    rows, cols = [_rec(G, 1), _rec(G, 2)], [_rec(G, 3), _rec(G, 4), _rec(G, 5)]
    grid = style_mix(G, rows, cols, list(range(G.num_ws)))
    pad = 2
    assert grid.shape == (3, 3 * 16 + 4 * pad, 4 * 16 + 5 * pad)

    def cell(gr: torch.Tensor, r: int, c: int) -> torch.Tensor:
        y, x = pad + r * (16 + pad), pad + c * (16 + pad)
        return gr[:, y:y + 16, x:x + 16]

    col_imgs = render(G, torch.cat([c.ws for c in cols]))
    row_imgs = render(G, torch.cat([r.ws for r in rows]))
    assert torch.allclose(cell(grid, 0, 2), col_imgs[1])  # header row
    assert torch.allclose(cell(grid, 2, 0), row_imgs[1])  # header column
    assert torch.allclose(cell(grid, 1, 3), col_imgs[2], atol=1e-6)  # all layers copied: the column image
    none = style_mix(G, rows, cols, [])
    assert torch.allclose(cell(none, 2, 1), row_imgs[1], atol=1e-6)  # nothing copied: the row image
    some = style_mix(G, rows, cols, [0, 1, 2])
    c = cell(some, 1, 1)
    assert not torch.allclose(c, row_imgs[0]) and not torch.allclose(c, col_imgs[0])


def test_sefa_directions_match_numpy(G: Generator) -> None:
    vals, dirs = sefa_directions(G, [0, 1, 2])
    mods = [m for i, m in enumerate(conv_affines(G)) if i in (0, 1, 2)]
    A = np.concatenate([m.weight.detach().double().numpy() for m in mods])
    A /= np.linalg.norm(A, axis=1, keepdims=True)
    ev, evec = np.linalg.eigh(A.T @ A)
    assert np.allclose(vals.numpy(), ev[::-1], rtol=1e-4)
    for k in range(3):  # same directions up to sign
        assert abs(float(np.dot(dirs[k].double().numpy(), evec[:, -1 - k]))) == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(dirs @ dirs.t(), torch.eye(G.w_dim), atol=1e-5)
    assert (vals[:-1] >= vals[1:]).all()
    assert (dirs.gather(1, dirs.abs().argmax(1, keepdim=True)) > 0).all()  # sign convention
    assert len(conv_affines(G)) == G.num_ws and conv_affines(G)[-1] is None


def test_edit_strip_and_arithmetic(G: Generator) -> None:
    base = _rec(G, 1).ws
    d = torch.zeros(G.w_dim)
    d[0] = 1.0
    s = strengths_for(2.0, 5, symmetric=True)
    assert s == [-2.0, -1.0, 0.0, 1.0, 2.0] and strengths_for(1.0, 3, symmetric=False) == [0.0, 0.5, 1.0]
    out = edit_strip(base, d, s, [1, 2])
    assert torch.equal(out[2], base[0])
    assert torch.allclose(out[4, 1, 0], base[0, 1, 0] + 2) and torch.equal(out[4, 0], base[0, 0])
    w1, w2, w3 = _rec(G, 1).ws, _rec(G, 2).ws, _rec(G, 3).ws
    ar = latent_arithmetic(w1, w2, w3, [0.0, 1.0], list(range(G.num_ws)))
    assert torch.equal(ar[0], w1[0]) and torch.allclose(ar[1], (w1 + w3 - w2)[0], atol=1e-6)
    part = latent_arithmetic(w1, w2, w3, [1.0], [0])
    assert torch.equal(part[0, 1:], w1[0, 1:])


def test_grid_and_mask_helpers() -> None:
    imgs = torch.zeros(5, 3, 4, 4)
    from imgforge.reports import make_grid

    g = make_grid(imgs, 3, pad=1)
    assert g.shape == (3, 2 * 4 + 3, 3 * 4 + 4)
    m = torch.zeros(3, 8, 8)
    m[:, :, 4:] = 1
    hole = prepare_mask(m, 8)
    assert hole.shape == (1, 1, 8, 8) and hole[..., :4].sum() == 0 and hole[..., 4:].min() == 1


def test_inpaint_keeps_known_pixels(G: Generator) -> None:
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        img = ((G(z) + 1) / 2).clamp(0, 1)
    hole = torch.zeros(2, 1, 16, 16)
    hole[..., 3:11, 5:13] = 1
    inv = Inverter(G, InvertConfig(space="w+", steps=40, loss="mse", w_avg_samples=500))
    comp, res = inpaint(inv, img, hole)
    known = hole == 0
    assert torch.equal(comp.masked_select(known.expand_as(comp)), img.masked_select(known.expand_as(img)))
    assert torch.equal((comp * hole)[hole.expand_as(comp) == 1], (res.images * hole)[hole.expand_as(comp) == 1])
    with pytest.raises(InputError):
        inpaint(inv, img, torch.ones(2, 1, 16, 16))


def test_prior_inits_pick_the_candidates_that_fit_the_known_pixels(G: Generator) -> None:
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(8))
    with torch.no_grad():
        img = ((G(z, noise_mode="const") + 1) / 2).clamp(0, 1)
    known = torch.ones(2, 1, 16, 16)
    known[..., 4:12, 4:12] = 0
    for space, shape in (("z", (3 * 2, G.z_dim)), ("w", (3 * 2, G.w_dim)), ("w+", (3 * 2, G.num_ws, G.w_dim))):
        inv = Inverter(G, InvertConfig(space=space, steps=0, loss="mse", w_avg_samples=500))
        init = prior_inits(inv, img, known, samples=3, candidates=40, seed=1, chunk=7)
        assert init.shape == shape
    # w+ rows are the candidates' w repeated per layer; their renders fit best, in order, per image
    cand = torch.randn(40, G.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        x = ((G(cand, noise_mode="const") + 1) / 2).clamp(0, 1)
    err = ((x[None] - img[:, None]).square() * known[:, None]).sum(dim=(2, 3, 4))  # (2, 40)
    order = err.argsort(dim=1)[:, :3]
    zi = prior_inits(Inverter(G, InvertConfig(space="z", steps=0, loss="mse", w_avg_samples=500)), img, known, 3,
                     candidates=40, seed=1)
    for k in range(3):
        for i in range(2):
            assert torch.equal(zi[k * 2 + i], cand[order[i, k]])
    with pytest.raises(UsageError):
        prior_inits(inv, img, known, samples=41, candidates=40)


def test_inpaint_with_several_samples_mean_and_best(G: Generator) -> None:
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        img = ((G(z) + 1) / 2).clamp(0, 1)
    hole = torch.zeros(2, 1, 16, 16)
    hole[..., 3:11, 5:13] = 1
    cfg = InvertConfig(space="w+", steps=15, loss="mse", w_avg_samples=500)
    comp_m, res_m = inpaint(Inverter(G, cfg), img, hole, samples=3, combine="mean", candidates=64)
    comp_b, res_b = inpaint(Inverter(G, cfg), img, hole, samples=3, combine="best", candidates=64)
    known = (hole == 0).expand_as(img)
    for comp in (comp_m, comp_b):
        assert torch.equal(comp[known], img[known])
    assert res_m.latent.shape == (2, G.num_ws, G.w_dim) and res_m.images.shape == (2, 3, 16, 16)
    assert torch.equal(res_m.latent, res_b.latent)  # the same runs; the result holds each image's best restart
    assert torch.equal(comp_b[~known], res_b.images[~known])
    # the same three restarts by hand: the mean fills the hole, the lowest loss is the "best"
    kn = 1 - hole
    init = prior_inits(Inverter(G, cfg), img, kn, 3, candidates=64, seed=cfg.seed)
    seeds = [cfg.seed + i + 1000 * k for k in range(3) for i in range(2)]
    allres = Inverter(G, cfg).run(img.repeat(3, 1, 1, 1), mask=kn.repeat(3, 1, 1, 1), init=init, seeds=seeds)
    fills = allres.images.view(3, 2, 3, 16, 16)
    torch.testing.assert_close(comp_m[~known], fills.mean(0)[~known])
    assert torch.equal(res_b.loss, allres.loss.view(3, 2).min(0).values)
    assert not torch.equal(comp_m, comp_b)
    with pytest.raises(UsageError):
        inpaint(Inverter(G, cfg), img, hole, samples=2, combine="median")
    with pytest.raises(UsageError):
        inpaint(Inverter(G, cfg), img, hole, samples=0)


def test_superres_matches_the_low_resolution_input(G: Generator) -> None:
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        hi = ((G(z) + 1) / 2).clamp(0, 1)
    lo = downscale(hi, 4)
    start = Inverter(G, InvertConfig(space="w+", steps=0, loss="mse", w_avg_samples=500)).run(hi).images
    res = superres(Inverter(G, InvertConfig(space="w+", steps=60, loss="mse", w_avg_samples=500)), lo, 4)
    assert res.images.shape == (2, 3, 16, 16)
    assert (psnr(downscale(res.images, 4), lo) > psnr(downscale(start, 4), lo) + 5).all()
    with pytest.raises(InputError):
        superres(Inverter(G, InvertConfig(steps=1, loss="mse")), hi, 4)
