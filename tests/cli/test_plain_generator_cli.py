"""The generator protocol: a tiny plain z-space generator (DCGAN-like, not StyleGAN) defined here runs through
``imgforge generate``, ``invert --space z``, ``morph`` and ``edit`` (latent arithmetic), from a safetensors file
whose metadata names its architecture (the model registry rebuilds it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from imgforge.cli.app import app
from imgforge.hub.modelfile import save_model_file
from imgforge.io import load_image, save_image
from imgforge.models.registry import register

ARCH = "test_tiny_dcgan"


class TinyDCGAN(nn.Module):
    """z (N, z_dim) -> (N, 3, 8, 8) in [0, 1] (sigmoid output: exercises the protocol's range mapping)."""

    output_range = (0.0, 1.0)

    def __init__(self, z_dim: int = 6, width: int = 8) -> None:
        super().__init__()
        self.z_dim, self.width, self.img_resolution = z_dim, width, 8
        self.fc = nn.Linear(z_dim, width * 4 * 4)
        self.up = nn.ConvTranspose2d(width, 3, 4, stride=2, padding=1)

    def arch_kwargs(self) -> dict:
        return {"z_dim": self.z_dim, "width": self.width}

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.fc(z)).view(-1, self.width, 4, 4)
        return torch.sigmoid(self.up(x))


register(ARCH)(TinyDCGAN)


def _expected(net: TinyDCGAN, seeds: list[int]) -> torch.Tensor:
    from imgforge.jobs.generate import z_from_seeds

    with torch.no_grad():
        return net(z_from_seeds(seeds, net.z_dim))


@pytest.fixture(scope="module")
def gen(tmp_path_factory: pytest.TempPathFactory) -> dict:
    d = tmp_path_factory.mktemp("plain_gen")
    torch.manual_seed(0)
    net = TinyDCGAN().eval()
    path = d / "dcgan.safetensors"
    save_model_file(path, net.state_dict(), arch=ARCH, arch_kwargs=net.arch_kwargs())
    return {"dir": d, "path": str(path), "net": net}


def _run(args: list[str], cwd: Path):  # type: ignore[no-untyped-def]
    old = os.getcwd()
    os.chdir(cwd)
    try:
        r = CliRunner().invoke(app, ["--device", "cpu", "--precision", "fp32", "--quiet", *args],
                               catch_exceptions=False, env={"IMGFORGE_OFFLINE": "1"})
    finally:
        os.chdir(old)
    assert r.exit_code == 0, r.output
    return r


def _read(path: Path) -> torch.Tensor:
    return load_image(str(path)).rgb


def test_load_generator_adapts_a_plain_network(gen: dict) -> None:
    from imgforge import load_generator
    from imgforge.models.protocols import LatentGenerator, ZSpaceGenerator

    G = load_generator(gen["path"])
    assert isinstance(G, ZSpaceGenerator) and isinstance(G, LatentGenerator)
    assert (G.z_dim, G.w_dim, G.num_ws, G.img_resolution, G.noise_buffers()) == (6, 6, 1, 8, [])
    z = torch.randn(2, 6, generator=torch.Generator().manual_seed(1))
    ws = G.mapping(z)
    assert ws.shape == (2, 1, 6) and torch.equal(ws[:, 0], z)
    with torch.no_grad():
        img = G.synthesis(ws)
        torch.testing.assert_close((img + 1) / 2, gen["net"](z), atol=1e-6, rtol=0)  # [0, 1] -> [-1, 1]
    assert not any(p.requires_grad for p in G.parameters())


def test_generate_with_a_plain_generator(gen: dict, tmp_path: Path) -> None:
    _run(["generate", "--weights", gen["path"], "--seeds", "0-3", "--out-dir", "out", "--grid", "grid.png"], tmp_path)
    want = _expected(gen["net"], [0, 1, 2, 3])
    for i in range(4):
        got = _read(tmp_path / "out" / f"seed{i:04d}.png")
        assert got.shape == (3, 8, 8)
        assert float((got - want[i]).abs().max()) <= 1 / 255 + 1e-6  # 8-bit rounding only
        lat = load_file(str(tmp_path / "out" / f"seed{i:04d}.safetensors"))
        assert lat["w"].shape == (1, 1, 6) and torch.equal(lat["w"][0], lat["z"])
    assert Image.open(tmp_path / "grid.png").size == (16, 16)


def test_invert_in_z_with_a_plain_generator(gen: dict, tmp_path: Path) -> None:
    target = _expected(gen["net"], [7])[0]
    save_image(target, tmp_path / "t.png")
    _run(["invert", str(tmp_path / "t.png"), "--weights", gen["path"], "--space", "z", "--loss", "mse",
          "--steps", "60", "--lr", "0.1", "--out-dir", "inv"], tmp_path)
    import json

    info = json.loads((tmp_path / "inv" / "t.json").read_text())
    assert info["space"] == "z" and info["steps"] == 60
    from imgforge.latents import load_latent

    rec = load_latent(tmp_path / "inv" / "t.latent.safetensors")
    assert rec.space == "z" and rec.latent.shape == (1, 6) and rec.ws.shape == (1, 1, 6) and rec.noise is None
    # the optimisation moved towards the target: better than the starting point (z nearest the mean w)
    with torch.no_grad():
        start = gen["net"](torch.zeros(1, 6))[0]
    err_start = float((start - target).square().mean())
    assert info["mse"] < 0.5 * err_start, (info["mse"], err_start)


def test_morph_and_edit_with_a_plain_generator(gen: dict, tmp_path: Path) -> None:
    _run(["morph", "1", "2", "--space", "z", "--frames", "3", "--weights", gen["path"], "--out-dir", "m"], tmp_path)
    a, b = _expected(gen["net"], [1, 2])
    torch.testing.assert_close(_read(tmp_path / "m" / "frame_000.png"), a, atol=1 / 255 + 1e-6, rtol=0)
    torch.testing.assert_close(_read(tmp_path / "m" / "frame_002.png"), b, atol=1 / 255 + 1e-6, rtol=0)
    assert (tmp_path / "m" / "morph.gif").is_file() and (tmp_path / "m" / "morph_sheet.png").is_file()

    _run(["edit", "3", "--from", "4", "--to", "5", "--strength", "1", "--frames", "2", "--weights", gen["path"],
          "-o", "strip.png"], tmp_path)
    strip = _read(tmp_path / "strip.png")  # 2 cells of 8 px with 2 px separators: (3, 12, 22)
    assert strip.shape == (3, 12, 22)
    from imgforge.jobs.generate import z_from_seeds

    z = z_from_seeds([3, 4, 5], 6)
    with torch.no_grad():
        want = gen["net"](torch.stack([z[0], z[0] + (z[2] - z[1])]))
    torch.testing.assert_close(strip[:, 2:10, 2:10], want[0], atol=1 / 255 + 1e-6, rtol=0)
    torch.testing.assert_close(strip[:, 2:10, 12:20], want[1], atol=1 / 255 + 1e-6, rtol=0)


def test_layer_edits_need_a_stylegan(gen: dict, tmp_path: Path) -> None:
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        r = CliRunner().invoke(app, ["--quiet", "edit", "3", "--direction", "0", "--weights", gen["path"]],
                               env={"IMGFORGE_OFFLINE": "1"})
        r2 = CliRunner().invoke(app, ["--quiet", "style-mix", "--rows", "1", "--cols", "2", "--weights", gen["path"]],
                                env={"IMGFORGE_OFFLINE": "1"})
    finally:
        os.chdir(old)
    for res in (r, r2):
        assert res.exit_code == 2, res.output
        assert "per-layer latents" in res.output


def test_class_conditional_generator_takes_class(tmp_path: Path) -> None:
    """A conditional DCGAN (the gan-train architecture) samples the class given by --class in generate and morph;
    without --class, with a class it lacks, or --class for an unconditional generator: one usage line, exit 2."""
    from imgforge.jobs.generate import z_from_seeds
    from imgforge.models.gan_nets import DCGANGenerator

    torch.manual_seed(0)
    net = DCGANGenerator(z_dim=5, img_resolution=8, channels=1, ngf=4, n_classes=3).eval()
    with torch.no_grad():  # larger than the DCGAN init, so that images differ visibly
        for p in net.parameters():
            p.normal_(0.0, 0.5)
    kw = {"z_dim": 5, "img_resolution": 8, "channels": 1, "ngf": 4, "n_classes": 3}
    path = tmp_path / "cg.safetensors"
    save_model_file(path, net.state_dict(), arch="dcgan_g", arch_kwargs=kw)
    runner = CliRunner()
    r = runner.invoke(app, ["generate", "--weights", str(path), "--seeds", "3,4", "--class", "2",
                            "--out-dir", str(tmp_path / "g")])
    assert r.exit_code == 0, r.output
    with torch.no_grad():
        want = net(z_from_seeds([3, 4], 5), torch.tensor([2, 2]))
    got = load_image(str(tmp_path / "g" / "seed0003.png")).rgb
    assert torch.allclose(got[:1], (want[0].clamp(-1, 1) + 1) / 2, atol=1 / 255 + 1e-6)
    other = net(z_from_seeds([3], 5), torch.tensor([0])).detach()
    assert (other - want[:1]).abs().max() > 0.1  # the class matters
    r = runner.invoke(app, ["morph", "1", "2", "--space", "z", "--frames", "3", "--weights", str(path), "--class",
                            "1", "--out-dir", str(tmp_path / "m")])
    assert r.exit_code == 0, r.output
    for extra, msg in (([], "class-conditional"), (["--class", "3"], "classes 0-2")):
        r = runner.invoke(app, ["generate", "--weights", str(path), "--seeds", "1", "--grid", str(tmp_path / "x.png"),
                                *extra])
        assert r.exit_code == 2 and msg in r.output, r.output
    plain = tmp_path / "plain.safetensors"
    t = TinyDCGAN()
    save_model_file(plain, t.state_dict(), arch=ARCH, arch_kwargs=t.arch_kwargs())
    r = runner.invoke(app, ["generate", "--weights", str(plain), "--seeds", "1", "--grid", str(tmp_path / "y.png"),
                            "--class", "0"])
    assert r.exit_code == 2 and "not class-conditional" in r.output, r.output
