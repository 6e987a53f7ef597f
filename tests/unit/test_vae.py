"""VAE / AE: the ELBO bounds the importance-weighted estimate from below, and a few steps of training raise it."""

from __future__ import annotations

import torch

from imgforge.models.vae import VAE, elbo, iwae_log_likelihood


def _digits_like(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 8), torch.linspace(-1, 1, 8), indexing="ij")
    cx, cy = torch.rand(n, 1, 1, generator=g) - 0.5, torch.rand(n, 1, 1, generator=g) - 0.5
    return torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) * 6)[:, None].clamp(0, 1)


def test_elbo_is_below_the_iwae_estimate_and_both_are_finite():
    torch.manual_seed(0)
    model = VAE(latent_dim=4, img_resolution=8, width=8).eval()
    x = _digits_like(6, 1)
    e, rec, kl = elbo(model, x, generator=torch.Generator().manual_seed(0))
    assert e.shape == (6,) and torch.all(kl >= 0) and torch.allclose(e, rec - kl)
    # average over many draws: E[ELBO] <= E[IWAE_k] (Burda et al.)
    elbos = torch.stack([elbo(model, x, generator=torch.Generator().manual_seed(s))[0] for s in range(50)]).mean(0)
    iw = iwae_log_likelihood(model, x, k=50, generator=torch.Generator().manual_seed(1))
    assert torch.isfinite(iw).all() and float((iw - elbos).detach().mean()) > 0


def test_training_raises_the_elbo_and_ae_has_no_kl():
    torch.manual_seed(0)
    data = _digits_like(64, 2)
    model = VAE(latent_dim=4, img_resolution=8, width=8)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    model.eval()
    before = float(elbo(model, data, generator=torch.Generator().manual_seed(5))[0].detach().mean())
    model.train()
    for _ in range(60):
        loss = -elbo(model, data, generator=g)[0].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    after = float(elbo(model, data, generator=torch.Generator().manual_seed(5))[0].detach().mean())
    assert after > before + 2.0, (before, after)
    ae = VAE(latent_dim=4, img_resolution=8, width=8, deterministic=True).eval()
    _, _, kl = elbo(ae, data[:3])
    assert torch.equal(kl, torch.zeros(3))
    dec = model.decoder_generator
    assert dec.z_dim == 4 and dec.img_resolution == 8 and dec.output_range == (0.0, 1.0)
    assert dec(torch.randn(2, 4)).shape == (2, 1, 8, 8)
