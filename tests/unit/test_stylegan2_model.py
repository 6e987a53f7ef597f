"""StyleGAN2 generator/discriminator on tiny shapes: layers against explicit per-sample computations, API semantics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from imgforge.models.registry import build
from imgforge.models.stylegan2 import Discriminator, Generator, infer_discriminator_config, infer_generator_config
from imgforge.models.stylegan2_layers import ModulatedConv2d, StyledConv, ToRGB
from imgforge.ops.upfirdn2d import make_kernel, upfirdn2d_reference

CH = {4: 8, 8: 6, 16: 4}



def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give zero/one-initialised parameters random values so that every term matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("noise.weight"):
                p.uniform_(0.05, 0.3, generator=g)
            elif name.endswith("bias"):
                p.copy_((1.0 if "modulation" in name else 0.0) + 0.1 * torch.randn(p.shape, generator=g))
    return model


def tiny_generator(size: int = 16, seed: int = 0, **kw) -> Generator:
    torch.manual_seed(seed)
    ch = kw.pop("channels", {**CH, 32: 4, 64: 4})
    G = Generator(size, style_dim=8, n_mlp=2, channels=ch, **kw)
    randomize(G, seed)
    G.latent_avg.copy_(torch.randn(8, generator=torch.Generator().manual_seed(seed + 1)))
    return G.eval()


def ref_modconv(m: ModulatedConv2d, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
    """rosinality's formula, one sample at a time, with the literal upfirdn2d for the FIR filter."""
    outs = []
    for i in range(x.shape[0]):
        s = F.linear(style[i : i + 1], m.modulation.weight * m.modulation.scale, m.modulation.bias)  # (1, in)
        w = m.scale * m.weight[0] * s.view(1, -1, 1, 1)  # (out, in, k, k)
        if m.demodulate:
            w = w * torch.rsqrt(w.pow(2).sum([1, 2, 3]) + 1e-8).view(-1, 1, 1, 1)
        xi = x[i : i + 1]
        if m.upsample:
            o = F.conv_transpose2d(xi, w.transpose(0, 1), stride=2)
            o = upfirdn2d_reference(o, m.blur.kernel, pad=m.blur.pad)
        elif m.downsample:
            o = F.conv2d(upfirdn2d_reference(xi, m.blur.kernel, pad=m.blur.pad), w, stride=2)
        else:
            o = F.conv2d(xi, w, padding=m.padding)
        outs.append(o)
    return torch.cat(outs)


@pytest.mark.parametrize("kind", ["plain", "up", "down", "rgb"])
def test_modulated_conv_grouped_and_shared_paths_match_per_sample(kind: str) -> None:
    torch.manual_seed(0)
    m = ModulatedConv2d(5, 3 if kind == "rgb" else 7, 1 if kind == "rgb" else 3, 8, demodulate=kind != "rgb",
                        upsample=kind == "up", downsample=kind == "down")
    randomize(m)
    x, style = torch.randn(3, 5, 8, 8), torch.randn(3, 8)
    want = ref_modconv(m, x, style)
    for fused in (True, False):
        m.fused = fused
        got = m(x, style)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-5)
        b = torch.randn(want.shape[1])
        torch.testing.assert_close(m(x, style, bias=b, gain=1.7), 1.7 * (want + b.view(1, -1, 1, 1)), atol=5e-5,
                                   rtol=1e-5)


def test_styled_conv_and_to_rgb_epilogue() -> None:
    torch.manual_seed(1)
    sc = randomize(StyledConv(5, 6, 3, 8, upsample=True))
    x, style, noise = torch.randn(2, 5, 4, 4), torch.randn(2, 8), torch.randn(1, 1, 8, 8)
    y = ref_modconv(sc.conv, x, style) + sc.noise.weight * noise + sc.activate.bias.view(1, -1, 1, 1)
    want = F.leaky_relu(y, 0.2) * math.sqrt(2)
    with torch.no_grad():  # in-place epilogue
        torch.testing.assert_close(sc(x, style, noise=noise), want, atol=5e-5, rtol=1e-5)
    got = sc(x, style, noise=noise)  # autograd-safe epilogue
    torch.testing.assert_close(got, want, atol=5e-5, rtol=1e-5)
    sc.activate.clamp = 0.3
    torch.testing.assert_close(sc(x, style, noise=noise), want.clamp(-0.3, 0.3), atol=5e-5, rtol=1e-5)

    rgb = randomize(ToRGB(6, 8))
    feat, skip = torch.randn(2, 6, 8, 8), torch.randn(2, 3, 4, 4)
    up = upfirdn2d_reference(skip, make_kernel([1, 3, 3, 1]) * 4, up=2, pad=(2, 1))
    want = ref_modconv(rgb.conv, feat, style) + rgb.bias + up
    torch.testing.assert_close(rgb(feat, style, skip), want, atol=5e-5, rtol=1e-5)
    rgb.clamp = 0.2  # NVIDIA conv_clamp: on the ToRGB output, before the skip sum
    want = (ref_modconv(rgb.conv, feat, style) + rgb.bias).clamp(-0.2, 0.2) + up
    torch.testing.assert_close(rgb(feat, style, skip), want, atol=5e-5, rtol=1e-5)


def test_state_dict_layout_and_config_inference() -> None:
    G = tiny_generator()
    sd = G.state_dict()
    keys = list(sd)
    assert keys[0] == "latent_avg"
    assert keys[1:4] == ["style.1.weight", "style.1.bias", "style.2.weight"]
    assert keys[keys.index("convs.0.conv.weight") + 1] == "convs.0.conv.blur.kernel"
    assert [k for k in keys if k.startswith("to_rgbs.0.")] == [
        "to_rgbs.0.bias", "to_rgbs.0.upsample.kernel", "to_rgbs.0.conv.weight", "to_rgbs.0.conv.modulation.weight",
        "to_rgbs.0.conv.modulation.bias"]
    assert [k for k in keys if k.startswith("noises.")] == [f"noises.noise_{i}" for i in range(5)]
    assert [tuple(sd[f"noises.noise_{i}"].shape[-1:]) for i in range(5)] == [(4,), (8,), (8,), (16,), (16,)]
    cfg = infer_generator_config(sd)
    assert cfg == {"size": 16, "style_dim": 8, "n_mlp": 2, "z_dim": 8, "channels": {"4": 8, "8": 6, "16": 4}}
    G2 = build("stylegan2_generator", **G.arch_kwargs())
    G2.load_state_dict(sd, strict=True)


@pytest.mark.parametrize("size", [8, 64])
def test_any_resolution(size: int) -> None:
    G = tiny_generator(size)
    assert G.num_ws == 2 * int(math.log2(size)) - 2 and len(G.noise_buffers()) == G.num_ws - 1
    with torch.no_grad():
        img = G(torch.randn(2, G.z_dim))
    assert img.shape == (2, 3, size, size) and torch.isfinite(img).all()
    with pytest.raises(ValueError):
        Generator(12, 8, 2, channels=CH)


def test_fused_and_shared_paths_agree_and_grad_mode_does_not_matter() -> None:
    G = tiny_generator()
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        a = G(z)
        b = G.set_fused_modconv(False)(z)
    c = G(z)  # grad enabled, shared path, non-inplace epilogue
    G.set_fused_modconv(True)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a, c.detach(), atol=1e-5, rtol=1e-5)
    assert (a - b).abs().max() > 0  # two genuinely different computations


def test_mapping_truncation_and_synthesis_api() -> None:
    G = tiny_generator()
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        ws = G.mapping(z)
        w = G.get_latent(z)
        assert ws.shape == (4, G.num_ws, G.w_dim)
        torch.testing.assert_close(ws, w.unsqueeze(1).expand(-1, G.num_ws, -1))
        wt = G.mapping(z, truncation_psi=0.5)
        torch.testing.assert_close(wt, G.w_avg + 0.5 * (ws - G.w_avg))
        wc = G.mapping(z, truncation_psi=0.5, truncation_cutoff=2)
        torch.testing.assert_close(wc[:, :2], wt[:, :2])
        torch.testing.assert_close(wc[:, 2:], ws[:, 2:])
        torch.testing.assert_close(G(z, truncation_psi=0.5), G.synthesis(wt))
        torch.testing.assert_close(G.synthesis(w), G.synthesis(ws))  # (N, w_dim) is broadcast
        with pytest.raises(ValueError):
            G.synthesis(ws[:, :3])


def test_noise_modes() -> None:
    G = tiny_generator()
    ws = G.mapping(torch.randn(2, 8, generator=torch.Generator().manual_seed(7))).detach()
    with torch.no_grad():
        const = G.synthesis(ws, noise_mode="const")
        torch.testing.assert_close(G.synthesis(ws, noise_mode="const"), const, atol=0, rtol=0)
        torch.testing.assert_close(G.synthesis(ws, noise=G.noise_buffers()), const)
        torch.manual_seed(0)
        r1 = G.synthesis(ws, noise_mode="random")
        torch.manual_seed(0)
        r2 = G.synthesis(ws, noise_mode="random")
        torch.testing.assert_close(r1, r2)
        assert (r1 - const).abs().max() > 1e-3
        none = G.synthesis(ws, noise_mode="none")
        zeros = [torch.zeros_like(n) for n in G.noise_buffers()]
        torch.testing.assert_close(none, G.synthesis(ws, noise=zeros))
        assert (none - const).abs().max() > 1e-3
        with pytest.raises(ValueError):
            G.synthesis(ws, noise_mode="bogus")


def test_rosinality_forward_semantics() -> None:
    G = tiny_generator()
    g = torch.Generator().manual_seed(8)
    z1, z2 = torch.randn(2, 8, generator=g), torch.randn(2, 8, generator=g)
    with torch.no_grad():
        w1, w2 = G.get_latent(z1), G.get_latent(z2)
        img, lat = G([z1, z2], inject_index=3, randomize_noise=False, return_latents=True)
        assert lat.shape == (2, G.n_latent, 8)
        torch.testing.assert_close(lat[:, :3], w1.unsqueeze(1).expand(-1, 3, -1))
        torch.testing.assert_close(lat[:, 3:], w2.unsqueeze(1).expand(-1, G.n_latent - 3, -1))
        torch.testing.assert_close(img, G.synthesis(lat))
        img_t, none = G([z1], truncation=0.7, truncation_latent=G.w_avg, randomize_noise=False)
        assert none is None
        torch.testing.assert_close(img_t, G(z1, truncation_psi=0.7), atol=1e-6, rtol=1e-6)
        wplus = torch.randn(2, G.n_latent, 8, generator=g)
        torch.testing.assert_close(G([wplus], input_is_latent=True, randomize_noise=False)[0], G.synthesis(wplus))
        _, lat_r = G([z1, z2], return_latents=True, randomize_noise=False)  # random inject index in [1, n-1]
        assert torch.equal(lat_r[:, 0], w1) and torch.equal(lat_r[:, -1], w2)
    with pytest.raises(TypeError):
        G(z1, inject_index=2)


def test_gradients_reach_latents_and_noise() -> None:
    G = tiny_generator().requires_grad_(False)
    ws = G.mapping(torch.randn(1, 8)).detach().requires_grad_(True)
    noise = [n.clone().requires_grad_(True) for n in G.noise_buffers()]
    for fused in (True, False):
        G.set_fused_modconv(fused)
        G.synthesis(ws, noise=noise).square().mean().backward()
        assert ws.grad is not None and torch.isfinite(ws.grad).all() and ws.grad.abs().sum() > 0
        assert all(n.grad is not None and n.grad.abs().sum() > 0 for n in noise)
        ws.grad = None


def test_autocast_and_channels_last_close_to_fp32() -> None:
    G = tiny_generator(32)
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        ref = G(z)
        G.memory_format = torch.channels_last
        cl = G(z)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = G(z)
    G.memory_format = torch.contiguous_format
    torch.testing.assert_close(cl, ref, atol=1e-5, rtol=1e-5)
    assert low.dtype == torch.float32
    psnr = 10 * math.log10(ref.abs().max().item() ** 2 / (low - ref).pow(2).mean().item())
    assert psnr > 30


def test_model_file_roundtrip(tmp_path: Path) -> None:
    from imgforge.generator_api import load_generator
    from imgforge.hub.modelfile import save_model_file

    G = tiny_generator()
    path = save_model_file(tmp_path / "g.safetensors", G.state_dict(), arch="stylegan2_generator",
                           arch_kwargs=G.arch_kwargs())
    G2 = load_generator(path)
    assert not any(p.requires_grad for p in G2.parameters()) and not G2.training
    z = torch.randn(2, 8)
    with torch.no_grad():
        torch.testing.assert_close(G2(z), G(z), atol=0, rtol=0)
    torch.testing.assert_close(G2.w_avg, G.w_avg)


def test_discriminator() -> None:
    torch.manual_seed(0)
    D = randomize(Discriminator(16, channels={4: 8, 8: 6, 16: 4}))
    keys = list(D.state_dict())
    assert keys[:4] == ["convs.0.0.weight", "convs.0.1.bias", "convs.1.conv1.0.weight", "convs.1.conv1.1.bias"]
    assert "convs.1.conv2.0.kernel" in keys and "convs.1.skip.1.weight" in keys and keys[-1] == "final_linear.1.bias"
    assert infer_discriminator_config(D.state_dict()) == {"size": 16, "channels": {"16": 4, "4": 8, "8": 6}}
    x = torch.randn(3, 3, 16, 16, requires_grad=True)  # 3 is not a multiple of the stddev group 4
    out = D(x)
    assert out.shape == (3, 1)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    D2 = build("stylegan2_discriminator", **D.arch_kwargs())
    D2.load_state_dict(D.state_dict(), strict=True)
    torch.testing.assert_close(D2(x), out)
