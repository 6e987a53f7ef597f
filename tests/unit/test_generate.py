"""The generate job: seed parsing, seed -> z (NVIDIA's convention), latent files, grids, reproducibility."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, safe_open, save_file

from imgforge.errors import InputError, UsageError
from imgforge.hub.modelfile import save_model_file
from imgforge.jobs.generate import (
    GenerateJob, parse_seeds, read_latents, run_generate, z_from_seed, z_from_seeds,
)
from imgforge.models.stylegan2 import Generator


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_parse_seeds_ranges_and_lists() -> None:
    assert parse_seeds("0-15") == list(range(16))
    assert parse_seeds("1,5,9") == [1, 5, 9]
    assert parse_seeds(" 3 , 0-2, 2,10-11 ") == [3, 0, 1, 2, 10, 11]  # order kept, duplicates dropped
    assert parse_seeds("4294967295") == [2**32 - 1]
    for bad in ["", "a", "5-2", "1,,2", "-3", "1-", "4294967296", "0-200000"]:
        with pytest.raises(UsageError):
            parse_seeds(bad)


def test_z_from_seed_is_numpy_randomstate_like_nvidia() -> None:
    z = z_from_seed(42, 7)
    assert z.dtype == torch.float32 and z.shape == (7,)
    want = np.random.RandomState(42).randn(1, 7)[0].astype(np.float32)
    np.testing.assert_array_equal(z.numpy(), want)
    zs = z_from_seeds([3, 42], 7)
    assert torch.equal(zs[1], z) and not torch.equal(zs[0], z)
    with pytest.raises(UsageError):
        z_from_seed(-1, 4)


def test_make_grid_layout() -> None:
    imgs = torch.arange(5, dtype=torch.float32).view(5, 1, 1, 1).expand(5, 3, 2, 2)
    from imgforge.reports import make_grid

    g = make_grid(imgs, pad=0, pad_value=0.0, border=False)  # generate's contact sheet: 3 columns, 2 rows, last cell black
    assert g.shape == (3, 4, 6)
    assert g[0, 0, 0] == 0 and g[0, 0, 2] == 1 and g[0, 2, 0] == 3 and g[0, 2, 2] == 4 and g[0, 2, 4] == 0
    assert make_grid(imgs, cols=5, pad=1, pad_value=0.0, border=False).shape == (3, 2, 14)


def test_read_latents_formats(tmp_path: Path) -> None:
    z = torch.randn(3, 6)
    save_file({"z": z, "w": torch.randn(3, 4, 5)}, str(tmp_path / "a.safetensors"))
    assert torch.equal(read_latents(tmp_path / "a.safetensors", "z"), z)
    assert read_latents(tmp_path / "a.safetensors", "w").shape == (3, 4, 5)
    np.save(tmp_path / "b.npy", np.ones(6, np.float64))
    assert read_latents(tmp_path / "b.npy", "z").shape == (1, 6)
    np.savez(tmp_path / "c.npz", w=np.zeros((2, 5), np.float32))
    assert read_latents(tmp_path / "c.npz", "w").shape == (2, 5)
    save_file({"q": torch.randn(2, 3), "r": torch.randn(2, 3)}, str(tmp_path / "d.safetensors"))
    with pytest.raises(InputError, match="none called 'z'"):
        read_latents(tmp_path / "d.safetensors", "z")
    np.save(tmp_path / "f.npy", np.zeros((2, 3, 4), np.float32))
    with pytest.raises(InputError, match="must be"):
        read_latents(tmp_path / "f.npy", "z")  # 3-D z is refused
    np.save(tmp_path / "g.npy", np.full((1, 4), np.nan, np.float32))
    with pytest.raises(InputError, match="NaN"):
        read_latents(tmp_path / "g.npy", "z")
    (tmp_path / "e.safetensors").write_bytes(b"garbage")
    with pytest.raises(InputError, match="cannot read"):
        read_latents(tmp_path / "e.safetensors", "z")
    with pytest.raises(InputError, match="no such"):
        read_latents(tmp_path / "nope.npy", "z")


@pytest.fixture(scope="module")
def tiny_gen() -> Generator:
    torch.manual_seed(0)
    G = Generator(8, style_dim=8, n_mlp=1, channels={4: 8, 8: 8}, z_dim=6)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(torch.randn_like(p) * 0.3)  # non-trivial noise strengths / biases
        G.latent_avg.normal_()
    return G.eval()


def test_run_generate_writes_images_and_latents_reproducibly(tmp_path: Path, tiny_gen: Generator) -> None:
    wfile = tmp_path / "g.safetensors"
    save_model_file(wfile, tiny_gen.state_dict(), arch="stylegan2_generator", arch_kwargs=tiny_gen.arch_kwargs())
    job = GenerateJob(weights=str(wfile), seeds=(0, 1, 7), trunc=0.7, out_dir=str(tmp_path / "a"),
                      grid=str(tmp_path / "grid.png"), batch_size=2)
    res = run_generate(job)
    assert [p.name for p in res.images] == ["seed0000.png", "seed0001.png", "seed0007.png"]
    assert [p.name for p in res.latents] == ["seed0000.safetensors", "seed0001.safetensors", "seed0007.safetensors"]
    assert Image.open(res.grid).size == (16, 16)  # 2x2 grid of 8x8
    lat = load_file(str(res.latents[2]))
    assert torch.equal(lat["z"][0], z_from_seed(7, 6))
    with torch.no_grad():
        want_ws = tiny_gen.mapping(lat["z"], truncation_psi=0.7)
    torch.testing.assert_close(lat["w"], want_ws)
    with safe_open(str(res.latents[2]), "pt") as f:
        meta = f.metadata()
    assert meta["seed"] == "7" and meta["trunc"] == "0.7" and meta["noise_mode"] == "const"
    # same seeds -> same pixels; the z and w files give the image back
    again = run_generate(GenerateJob(weights=str(wfile), seeds=(7,), trunc=0.7, out_dir=str(tmp_path / "b")))
    assert again.images[0].read_bytes() == res.images[2].read_bytes()
    from_z = run_generate(GenerateJob(weights=str(wfile), z_file=str(res.latents[2]), trunc=0.7,
                                      out_dir=str(tmp_path / "c")))
    assert from_z.images[0].name == "z0000.png" and from_z.images[0].read_bytes() == res.images[2].read_bytes()
    from_w = run_generate(GenerateJob(weights=str(wfile), w_file=str(res.latents[2]), out_dir=str(tmp_path / "d")))
    assert from_w.images[0].name == "w0000.png" and from_w.images[0].read_bytes() == res.images[2].read_bytes()
    assert "z" not in load_file(str(from_w.latents[0]))


def test_noise_modes_and_random_noise_seeded_per_image(tmp_path: Path, tiny_gen: Generator) -> None:
    def pix(seeds, mode, d):  # type: ignore[no-untyped-def]
        r = run_generate(GenerateJob(seeds=seeds, noise_mode=mode, out_dir=str(tmp_path / d)), generator=tiny_gen)
        return [np.asarray(Image.open(p)) for p in r.images]

    a = pix((3, 4), "random", "r1")
    b = pix((4,), "random", "r2")  # seed 4 alone gets the same noise as in a batch
    np.testing.assert_array_equal(a[1], b[0])
    c = pix((3,), "const", "c")
    n = pix((3,), "none", "n")
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(c[0], n[0])


def test_job_validation_and_shape_errors(tmp_path: Path, tiny_gen: Generator) -> None:
    with pytest.raises(UsageError, match="exactly one"):
        run_generate(GenerateJob(out_dir=str(tmp_path)), generator=tiny_gen)
    with pytest.raises(UsageError, match="noise-mode"):
        run_generate(GenerateJob(seeds=(1,), noise_mode="loud", out_dir=str(tmp_path)), generator=tiny_gen)
    with pytest.raises(UsageError, match="nothing to write"):
        run_generate(GenerateJob(seeds=(1,)), generator=tiny_gen)
    save_file({"z": torch.randn(2, 5)}, str(tmp_path / "z5.safetensors"))
    with pytest.raises(InputError, match="5 dimensions"):
        run_generate(GenerateJob(z_file=str(tmp_path / "z5.safetensors"), out_dir=str(tmp_path)), generator=tiny_gen)
    save_file({"w": torch.randn(2, 3, 8)}, str(tmp_path / "w.safetensors"))
    with pytest.raises(InputError, match="does not fit"):
        run_generate(GenerateJob(w_file=str(tmp_path / "w.safetensors"), out_dir=str(tmp_path)), generator=tiny_gen)
    # a single w (N, w_dim) is broadcast to every layer
    save_file({"w": torch.randn(2, 8)}, str(tmp_path / "w1.safetensors"))
    r = run_generate(GenerateJob(w_file=str(tmp_path / "w1.safetensors"), grid=str(tmp_path / "g.png")),
                     generator=tiny_gen)
    assert r.images == [] and Image.open(r.grid).size == (16, 8)


def test_safetensors_whose_header_starts_with_0x80_is_not_taken_for_a_pickle(tmp_path: Path,
                                                                             tiny_gen: Generator) -> None:
    from imgforge.jobs.generate import load_generator_for

    path = tmp_path / "g.safetensors"
    for pad in range(300):  # pad the metadata until the header length's first byte is 0x80
        save_model_file(path, tiny_gen.state_dict(), arch="stylegan2_generator", arch_kwargs=tiny_gen.arch_kwargs(),
                        extra={"pad": "x" * pad})
        if path.read_bytes()[:1] == b"\x80":
            break
    assert path.read_bytes()[:1] == b"\x80"
    G, _ = load_generator_for(str(path))
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), tiny_gen.state_dict().values()))
