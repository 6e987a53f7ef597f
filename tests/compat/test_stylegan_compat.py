"""StyleGAN2 compatibility: rosinality (S1) and NVIDIA (S2) reference outputs reproduced through load_generator,
published key layouts (keys_full.json), and the negative fixtures refused without side effects.

Tolerances are those the fixture READMEs suggest: atol=rtol=1e-4 on images, atol 1e-5 on w / ws / latents.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import pytest
import torch
from safetensors.torch import load_file

from imgforge.errors import UnsafeWeightsError
from imgforge.generator_api import load_generator
from imgforge.hub.convert_stylegan import convert_nvidia_stylegan2_pkl, nvidia_generator_kwargs, nvidia_to_rosinality
from imgforge.hub.safe_pickle import PersistentObject, list_globals, load_torch_checkpoint
from imgforge.models.stylegan2 import Discriminator, Generator, infer_discriminator_config, infer_generator_config
from imgforge.ops.upfirdn2d import make_kernel
from tests.conftest import require

pytestmark = pytest.mark.compat
IMG = dict(atol=1e-4, rtol=1e-4)
LAT = dict(atol=1e-5, rtol=0)



@pytest.fixture()
def s1(compat_dir: Path) -> Path:
    return require(compat_dir / "stylegan" / "S1")


@pytest.fixture()
def s2(compat_dir: Path) -> Path:
    return require(compat_dir / "stylegan" / "S2")


def _io(d: Path) -> tuple[Dict[str, torch.Tensor], Dict[str, torch.Tensor]]:
    return load_file(str(require(d / "input.safetensors"))), load_file(str(require(d / "expected.safetensors")))


# ------------------------------------------------------------------------------------------------ S1 rosinality
@pytest.mark.parametrize("ckpt", ["ckpt_converted.pt", "ckpt_train.pt"])
@pytest.mark.parametrize("fused", [True, False])
def test_s1_rosinality_outputs(s1: Path, ckpt: str, fused: bool) -> None:
    inp, exp = _io(s1)
    G = load_generator(require(s1 / ckpt)).set_fused_modconv(fused)
    with torch.no_grad():
        torch.testing.assert_close(G.get_latent(inp["z"]), exp["w"], **LAT)
        img, _ = G([inp["z"]], randomize_noise=False)
        torch.testing.assert_close(img, exp["img"], **IMG)
        img, _ = G([inp["z"]], truncation=0.7, truncation_latent=exp["latent_avg"], randomize_noise=False)
        torch.testing.assert_close(img, exp["img_trunc"], **IMG)
        img, _ = G([inp["wplus"]], input_is_latent=True, randomize_noise=False)
        torch.testing.assert_close(img, exp["img_wplus"], **IMG)
        img, lat = G([inp["z"], inp["z2"]], inject_index=2, randomize_noise=False, return_latents=True)
        torch.testing.assert_close(img, exp["img_mix"], **IMG)
        torch.testing.assert_close(lat, exp["latent_mix"], **LAT)
        # the same results through the NVIDIA-style API
        torch.testing.assert_close(G(inp["z"]), exp["img"], **IMG)
        torch.testing.assert_close(G.synthesis(inp["wplus"]), exp["img_wplus"], **IMG)
        if ckpt == "ckpt_converted.pt":  # w_avg = the checkpoint's latent_avg
            torch.testing.assert_close(G.w_avg, exp["latent_avg"], atol=0, rtol=0)
            torch.testing.assert_close(G(inp["z"], truncation_psi=0.7), exp["img_trunc"], **IMG)


def test_s1_train_checkpoint_networks(s1: Path) -> None:
    inp, exp = _io(s1)
    ck = load_torch_checkpoint(require(s1 / "ckpt_train.pt"))
    assert list(ck) == ["g", "d", "g_ema", "g_optim", "d_optim", "args", "ada_aug_p"]
    cfg = infer_generator_config(ck["g"])
    assert cfg["channels"] == {k: v for k, v in json.loads((s1 / "config.json").read_text())["channels"].items()
                               if int(k) <= cfg["size"]}
    g = Generator(**cfg)
    g.load_state_dict({**ck["g"], "latent_avg": torch.zeros(cfg["style_dim"])}, strict=True)
    with torch.no_grad():  # the raw generator is not g_ema: a loader that picked it would fail the test above
        assert (g([inp["z"]], randomize_noise=False)[0] - exp["img"]).abs().max() > 0.1
    D = Discriminator(**infer_discriminator_config(ck["d"]))
    D.load_state_dict(ck["d"], strict=True)
    assert list(D.state_dict()) == list(ck["d"])
    with torch.no_grad():
        assert D(exp["img"]).shape == (4, 1)


def _meta_keys(**kw: object) -> Dict[str, tuple]:
    with torch.device("meta"):
        G = Generator(**kw)  # type: ignore[arg-type]
    return {k: tuple(v.shape) for k, v in G.state_dict().items()}


@pytest.mark.parametrize("which", ["size1024", "size256"])
def test_s1_published_key_layout(s1: Path, which: str) -> None:
    ref = json.loads(require(s1 / "keys_full.json").read_text())[which]
    cfg = ref["config"]
    keys = _meta_keys(size=cfg["size"], style_dim=cfg["style_dim"], n_mlp=cfg["n_mlp"],
                      channel_multiplier=cfg["channel_multiplier"])
    assert [[k, list(s)] for k, s in keys.items() if k != "latent_avg"] == ref["keys"]
    fake = {k: torch.empty(s, device="meta") for k, s in keys.items()}
    inferred = infer_generator_config(fake)
    assert inferred["size"] == cfg["size"] and inferred["n_mlp"] == cfg["n_mlp"]
    assert inferred["channels"] == {k: v for k, v in ref["channels_used"].items()}
    with torch.device("meta"):
        G = Generator(**inferred)
    assert sum(p.numel() for p in G.parameters()) == ref["num_params"]
    assert G.num_ws == ref["n_latent"] and len(G.noise_buffers()) == ref["num_layers"]


# -------------------------------------------------------------------------------------------------- S2 NVIDIA
@pytest.mark.parametrize("fused", [True, False])
def test_s2_nvidia_outputs(s2: Path, fused: bool) -> None:
    inp, exp = _io(s2)
    path = require(s2 / "network-snapshot-000000.pkl")
    assert "numpy.core.multiarray.scalar" in list_globals(path)  # numpy-1 name (unit tests cover numpy._core)
    G = load_generator(path).set_fused_modconv(fused)
    assert (G.z_dim, G.w_dim, G.num_ws, G.img_resolution) == (64, 64, 8, 32)
    torch.testing.assert_close(G.w_avg, exp["w_avg"], atol=0, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(G.mapping(inp["z"]), exp["ws"], **LAT)
        torch.testing.assert_close(G.mapping(inp["z"], truncation_psi=0.7), exp["ws_trunc"], **LAT)
        torch.testing.assert_close(G(inp["z"], truncation_psi=1, noise_mode="const"), exp["img"], **IMG)
        torch.testing.assert_close(G(inp["z"], truncation_psi=0.7, noise_mode="const"), exp["img_trunc"], **IMG)
        torch.testing.assert_close(G.synthesis(inp["ws_in"], noise_mode="const"), exp["img_ws"], **IMG)
        # rosinality-style call on the converted NVIDIA weights
        img, _ = G([inp["ws_in"]], input_is_latent=True, randomize_noise=False)
        torch.testing.assert_close(img, exp["img_ws"], **IMG)


def test_s2_picks_g_ema(s2: Path) -> None:
    inp, exp = _io(s2)
    conv = convert_nvidia_stylegan2_pkl(require(s2 / "network-snapshot-000000.pkl"), network="G")
    G = Generator(**conv.arch_kwargs)
    G.load_state_dict(conv.state_dict, strict=True)
    with torch.no_grad():
        assert (G(inp["z"]) - exp["img"]).abs().max() > 0.1


def test_s2_published_names_map_to_rosinality_layout(compat_dir: Path) -> None:
    """NVIDIA FFHQ-1024 config-f names/shapes (S2 keys_full.json) convert to the rosinality 1024 layout (S1)."""
    ref2 = json.loads(require(compat_dir / "stylegan" / "S2" / "keys_full.json").read_text())
    ref1 = json.loads(require(compat_dir / "stylegan" / "S1" / "keys_full.json").read_text())["size1024"]
    tensors = {}
    for name, shape in ref2["parameters"] + ref2["buffers"]:
        tensors[name] = make_kernel([1, 3, 3, 1]) if name.endswith("resample_filter") else torch.zeros(shape)
    G = PersistentObject("Generator", {"_init_kwargs": ref2["config"], "img_resolution": 1024, "c_dim": 0})
    kwargs = nvidia_generator_kwargs(G, tensors, Path("keys_full.json"))
    assert kwargs["channels"] == ref2["channels"] and kwargs["n_mlp"] == 8 and kwargs["size"] == 1024
    sd, dropped = nvidia_to_rosinality(tensors, kwargs, Path("keys_full.json"))
    assert [[k, list(v.shape)] for k, v in sd.items() if k != "latent_avg"] == ref1["keys"]
    assert len(dropped) == sum(1 for n, _ in ref2["buffers"] if n.endswith("resample_filter"))
    assert sum(v.numel() for k, v in sd.items() if k not in ref1["buffers"] and k != "latent_avg") == ref2["num_params"]


# ------------------------------------------------------------------------------------------- negative fixtures
@pytest.mark.parametrize(
    "group,name,why",
    [("S1", "malicious.pt", r"global (builtins\.)?exec"),
     ("S2", "malicious.pkl", r"module source of class \w+"),
     ("S2", "malicious_reduce.pkl", r"global builtins\.exec"),
     ("S2", "malicious_storage.pkl", r"storage payload asks for global builtins\.eval")],
)
def test_malicious_files_refused_without_side_effect(compat_dir: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, group: str, name: str,
                                                     why: str) -> None:
    path = require(compat_dir / "stylegan" / group / name)
    marker = tmp_path / "marker-dir" / "PWNED"
    monkeypatch.setenv("FX_PWNED_MARKER", str(marker))
    with pytest.raises(UnsafeWeightsError, match=why) as info:
        load_generator(path)
    assert name in str(info.value)
    assert not marker.exists() and not marker.parent.exists()
