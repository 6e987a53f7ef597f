"""Safe readers: restricted NVIDIA-pickle unpickler (on synthetic pickles written the way NVIDIA's code writes them),
module-source policy, torch checkpoints with weights_only, and the StyleGAN2 converters."""

from __future__ import annotations

import argparse
import builtins
import io
import math
import os
import pickle
import sys
import types
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import numpy as np
import pytest
import torch

from imgforge.errors import ImgforgeError, UnsafeWeightsError, WeightsError
from imgforge.generator_api import detect_stylegan_format, load_generator
from imgforge.hub.convert_stylegan import convert_nvidia_stylegan2_pkl, convert_rosinality_stylegan2
from imgforge.hub.safe_pickle import (
    EasyDict,
    _rebuild_tensor_v2,
    _Storage,
    check_module_source,
    list_globals,
    load_network_pickle,
    load_torch_checkpoint,
    parse_legacy_storage,
)
from imgforge.models.stylegan2 import Generator
from imgforge.ops.upfirdn2d import make_kernel

SRC = '"""Stand-in module source for a test."""\nimport torch\n\n\nclass Generator(torch.nn.Module):\n    pass\n'



# --------------------------------------------------------------------------------- synthetic NVIDIA pickles
class _Persist:
    """Pickles like a torch_utils.persistence object: one REDUCE of _reconstruct_persistent_obj(meta)."""

    def __init__(self, fn: Callable[..., Any], class_name: str, state: Dict[str, Any], src: str):
        self.fn, self.class_name, self.state, self.src = fn, class_name, state, src

    def __reduce__(self) -> Any:
        meta = dict(type="class", version=6, module_src=self.src, class_name=self.class_name, state=self.state)
        return (self.fn, (meta,))


@pytest.fixture()
def fake_nvidia(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """Importable stand-ins for torch_utils.persistence and dnnlib.util so that pickle can write their names."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta: Any) -> Any:  # never called: loading must not import these
        raise AssertionError("the real reconstructor must never be called")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj  # type: ignore[attr-defined]
    util = types.ModuleType("dnnlib.util")
    ed = type("EasyDict", (dict,), {"__module__": "dnnlib.util"})
    util.EasyDict = ed  # type: ignore[attr-defined]
    torch_utils, dnnlib = types.ModuleType("torch_utils"), types.ModuleType("dnnlib")
    torch_utils.persistence, dnnlib.util = persistence, util  # type: ignore[attr-defined]
    for name, m in [("torch_utils", torch_utils), ("torch_utils.persistence", persistence), ("dnnlib", dnnlib),
                    ("dnnlib.util", util)]:
        monkeypatch.setitem(sys.modules, name, m)
    return types.SimpleNamespace(fn=_reconstruct_persistent_obj, EasyDict=ed)


def tiny_generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    G = Generator(16, style_dim=8, n_mlp=3, z_dim=6, channels={4: 8, 8: 6, 16: 4}).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("bias") or name.endswith("noise.weight"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g) + (1 if "modulation" in name else 0))
        G.latent_avg.copy_(torch.randn(8, generator=g))
    return G


def nvidia_tree(G: Generator, fx: types.SimpleNamespace, src: str = SRC) -> Dict[str, Any]:
    """Our generator's tensors laid out as an NVIDIA snapshot (stylegan2-ada-pytorch module tree and names)."""
    sd = {k: v.clone() for k, v in G.state_dict().items()}

    def P(t: torch.Tensor) -> torch.nn.Parameter:
        return torch.nn.Parameter(t.clone(), requires_grad=False)

    def mod(cls: str, params: Optional[dict] = None, buffers: Optional[dict] = None,
            modules: Optional[dict] = None, **attrs: Any) -> _Persist:
        state = {"training": False, "_parameters": OrderedDict(params or {}), "_buffers": OrderedDict(buffers or {}),
                 "_non_persistent_buffers_set": set(), "_forward_hooks": OrderedDict(),
                 "_modules": OrderedDict(modules or {}), **attrs}
        return _Persist(fx.fn, cls, state, src)

    def fc(w: torch.Tensor, b: torch.Tensor, lr: float, act: str) -> _Persist:
        return mod("FullyConnectedLayer", {"weight": P(w), "bias": P(b)}, activation=act,
                   weight_gain=np.float64(lr / math.sqrt(w.shape[1])), bias_gain=np.float64(lr))

    filt = make_kernel([1, 3, 3, 1])

    def layer(p: str, noise: int, res: int, up: int) -> _Persist:
        return mod("SynthesisLayer",
                   {"weight": P(sd[f"{p}.conv.weight"][0]), "noise_strength": P(sd[f"{p}.noise.weight"].reshape(())),
                    "bias": P(sd[f"{p}.activate.bias"])},
                   {"resample_filter": filt.clone(), "noise_const": sd[f"noises.noise_{noise}"][0, 0]},
                   {"affine": fc(sd[f"{p}.conv.modulation.weight"], sd[f"{p}.conv.modulation.bias"], 1, "linear")},
                   resolution=res, up=up, use_noise=True, activation="lrelu", conv_clamp=None,
                   act_gain=np.float64(math.sqrt(2)))

    def torgb(p: str) -> _Persist:
        return mod("ToRGBLayer", {"weight": P(sd[f"{p}.conv.weight"][0]), "bias": P(sd[f"{p}.bias"].reshape(-1))},
                   {}, {"affine": fc(sd[f"{p}.conv.modulation.weight"], sd[f"{p}.conv.modulation.bias"], 1, "linear")},
                   conv_clamp=None, weight_gain=np.float64(1 / math.sqrt(sd[f"{p}.conv.weight"].shape[2])))

    mapping = mod("MappingNetwork", {}, {"w_avg": sd["latent_avg"]},
                  {f"fc{i}": fc(sd[f"style.{i + 1}.weight"], sd[f"style.{i + 1}.bias"], 0.01, "lrelu")
                   for i in range(G.n_mlp)}, num_ws=G.num_ws, w_avg_beta=np.float64(0.995))
    blocks = {"b4": mod("SynthesisBlock", {"const": P(sd["input.input"][0])}, {"resample_filter": filt.clone()},
                        {"conv1": layer("conv1", 0, 4, 1), "torgb": torgb("to_rgb1")}, architecture="skip")}
    for k in range(len(G.to_rgbs)):
        r = 8 * 2**k
        blocks[f"b{r}"] = mod("SynthesisBlock", {}, {"resample_filter": filt.clone()},
                              {"conv0": layer(f"convs.{2 * k}", 2 * k + 1, r, 2),
                               "conv1": layer(f"convs.{2 * k + 1}", 2 * k + 2, r, 1), "torgb": torgb(f"to_rgbs.{k}")},
                              architecture="skip")
    ED = fx.EasyDict
    init = ED(z_dim=G.z_dim, w_dim=G.w_dim, mapping_kwargs=ED(num_layers=G.n_mlp),
              synthesis_kwargs=ED(channel_base=128, channel_max=8, num_fp16_res=0, conv_clamp=None), c_dim=0,
              img_resolution=G.size, img_channels=3)
    gen = mod("Generator", {}, {}, {"synthesis": mod("SynthesisNetwork", modules=blocks), "mapping": mapping},
              z_dim=G.z_dim, c_dim=0, w_dim=G.w_dim, img_resolution=G.size, img_channels=3, num_ws=G.num_ws,
              _init_args=(), _init_kwargs=init)
    return {"training_set_kwargs": None, "G": gen, "D": None, "G_ema": gen, "augment_pipe": None}


class _Evil:
    def __init__(self, fn: Callable[..., Any], *args: Any):
        self.fn, self.args = fn, args

    def __reduce__(self) -> Any:
        return (self.fn, self.args)


# -------------------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_synthetic_nvidia_pickle_converts_exactly(tmp_path: Path, fake_nvidia: types.SimpleNamespace,
                                                   protocol: int) -> None:
    G = tiny_generator()
    path = tmp_path / "snap.pkl"
    path.write_bytes(pickle.dumps(nvidia_tree(G, fake_nvidia), protocol=protocol))
    names = list_globals(path)
    assert "torch.storage._load_from_bytes" in names and "torch_utils.persistence._reconstruct_persistent_obj" in names
    np_major = int(np.__version__.split(".")[0])
    assert ("numpy._core.multiarray.scalar" if np_major >= 2 else "numpy.core.multiarray.scalar") in names

    data = load_network_pickle(path)
    assert data["G"] is data["G_ema"]
    fc0 = data["G_ema"].child("mapping.fc0")
    assert fc0.state["bias_gain"] == 0.01 and isinstance(fc0.state["bias_gain"], float)
    assert isinstance(data["G_ema"].init_kwargs["mapping_kwargs"], EasyDict)

    conv = convert_nvidia_stylegan2_pkl(path)
    assert conv.arch == "stylegan2_generator" and conv.arch_kwargs["z_dim"] == 6
    assert conv.extra["dropped_keys"].count("resample_filter") == 3 + 5  # 3 blocks + 5 synthesis layers
    G2 = Generator(**conv.arch_kwargs)
    G2.load_state_dict(conv.state_dict, strict=True)
    for k, v in G.state_dict().items():
        assert torch.equal(G2.state_dict()[k], v), k
    G3 = load_generator(path)
    z = torch.randn(2, 6, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        torch.testing.assert_close(G3(z, truncation_psi=0.6), G(z, truncation_psi=0.6), atol=0, rtol=0)
    assert detect_stylegan_format(path) == "nvidia_stylegan2_pkl"


def test_refuses_disallowed_global_without_side_effect(tmp_path: Path, fake_nvidia: types.SimpleNamespace) -> None:
    marker = tmp_path / "pwned"
    tree = nvidia_tree(tiny_generator(), fake_nvidia)
    tree["training_set_kwargs"] = {"comment": _Evil(os.system, f"touch {marker}")}
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(tree, protocol=4))
    with pytest.raises(UnsafeWeightsError, match=r"evil\.pkl.*global (posix|os|nt)\.system"):
        load_network_pickle(path)
    with pytest.raises(UnsafeWeightsError):
        load_generator(path)
    assert not marker.exists()


def test_refuses_code_in_storage_payload(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Evil(builtins.eval, f"open({str(marker)!r}, 'w')"), protocol=2)
    with pytest.raises(UnsafeWeightsError, match="builtins.eval"):
        parse_legacy_storage(payload)
    from torch.storage import _load_from_bytes

    path = tmp_path / "evil_storage.pkl"
    path.write_bytes(pickle.dumps({"x": _Evil(_load_from_bytes, payload)}, protocol=4))
    with pytest.raises(UnsafeWeightsError, match="storage payload.*builtins.eval"):
        load_network_pickle(path)
    assert not marker.exists()
    good = io.BytesIO()
    torch.save(torch.arange(5, dtype=torch.float32).untyped_storage(), good, _use_new_zipfile_serialization=False)
    st = parse_legacy_storage(good.getvalue())
    assert st.data is not None and st.data.dtype == torch.uint8 and st.numel == 20


def test_refuses_module_source_with_import_time_code(tmp_path: Path, fake_nvidia: types.SimpleNamespace) -> None:
    marker = tmp_path / "pwned"
    src = f"import os as _o; _o.system('touch {marker}')\n" + SRC
    path = tmp_path / "evil_src.pkl"
    path.write_bytes(pickle.dumps(nvidia_tree(tiny_generator(), fake_nvidia, src=src), protocol=4))
    with pytest.raises(UnsafeWeightsError, match=r"module source of class \w+ .*line 1"):
        load_network_pickle(path)
    assert not marker.exists()
    data = load_network_pickle(path, check_sources=False)  # opt-out still executes nothing
    assert data["G_ema"].class_name == "Generator" and not marker.exists()


@pytest.mark.parametrize(
    "src,ok",
    [
        (SRC, True),
        ("import numpy as np\nX = {'a': [1.0, -2.0]}\n@misc.profiled_function\ndef f(x, k=[1, 3, 3, 1], *, g=None):\n"
         "    return eval(x)\n", True),  # bodies never run on import
        ("class A(torch.nn.Module):\n    n = 3\n    def forward(self, x: torch.Tensor) -> Optional[int]:\n"
         "        pass\n", True),
        ("try:\n    import foo\nexcept ImportError:\n    foo = None\n", True),
        ("print('hi')\n", False),
        ("x = open('f')\n", False),
        ("@decorate(1)\ndef f():\n    pass\n", False),
        ("def f(x=os.system('a')):\n    pass\n", False),
        ("def f(x: exec('a')):\n    pass\n", False),
        ("class A(make_base()):\n    pass\n", False),
        ("class A(B, metaclass=M):\n    pass\n", False),
        ("class A:\n    exec('x')\n", False),
        ("for i in range(3):\n    pass\n", False),
        ("if __import__('os'):\n    pass\n", False),
        ("def f(:\n", False),
    ],
)
def test_module_source_policy(src: str, ok: bool) -> None:
    if ok:
        assert len(check_module_source(src)) == 64
    else:
        with pytest.raises(UnsafeWeightsError):
            check_module_source(src)


def test_refuses_persistent_ids_tensorflow_and_bad_geometry(tmp_path: Path) -> None:
    class PidPickler(pickle.Pickler):
        def persistent_id(self, obj: Any) -> Any:
            return ("storage", "x") if obj == "marked" else None

    buf = io.BytesIO()
    PidPickler(buf, protocol=4).dump({"a": "marked"})
    p1 = tmp_path / "pid.pkl"
    p1.write_bytes(buf.getvalue())
    with pytest.raises(UnsafeWeightsError, match="persistent id"):
        load_network_pickle(p1)
    p2 = tmp_path / "tf.pkl"
    p2.write_bytes(b"\x80\x04" + b"cdnnlib.tflib.network\nNetwork\n)\x81.")
    with pytest.raises(WeightsError, match="TensorFlow"):
        load_network_pickle(p2)
    st = _Storage(torch.float32, 4, torch.zeros(4))
    assert _rebuild_tensor_v2(st, 1, (3,), (1,)).shape == (3,)
    with pytest.raises(WeightsError, match="past its storage"):
        _rebuild_tensor_v2(st, 1, (4,), (1,))
    with pytest.raises(UnsafeWeightsError):
        _rebuild_tensor_v2("not a storage", 0, (1,), (1,))
    p3 = tmp_path / "trunc.pkl"
    p3.write_bytes(pickle.dumps({"a": 1})[:-3])
    with pytest.raises(WeightsError, match="not a readable network pickle"):
        load_network_pickle(p3)


@pytest.mark.parametrize("zip_format", [True, False])
def test_torch_checkpoint_loading_and_rosinality_converter(tmp_path: Path, zip_format: bool) -> None:
    G = tiny_generator(1)
    sd = {k: v for k, v in G.state_dict().items() if k != "latent_avg"}
    args = argparse.Namespace(size=16, latent=8, n_mlp=3)
    files = {
        "converted.pt": {"g_ema": sd, "latent_avg": G.latent_avg.clone()},
        "train.pt": {"g": sd, "d": {}, "g_ema": sd, "args": args, "ada_aug_p": 0.0},
        "bare.pt": sd,
    }
    for name, obj in files.items():
        torch.save(obj, tmp_path / name, _use_new_zipfile_serialization=zip_format)
        assert detect_stylegan_format(tmp_path / name) == "rosinality_stylegan2"
    assert load_torch_checkpoint(tmp_path / "train.pt")["args"].size == 16

    conv = convert_rosinality_stylegan2(tmp_path / "converted.pt")
    assert conv.arch_kwargs["channels"] == {"4": 8, "8": 6, "16": 4}
    for k, v in G.state_dict().items():
        assert torch.equal(conv.state_dict[k], v), k
    assert list(conv.state_dict) == list(G.state_dict())
    tr1, tr2 = convert_rosinality_stylegan2(tmp_path / "train.pt"), convert_rosinality_stylegan2(tmp_path / "bare.pt")
    torch.testing.assert_close(tr1.state_dict["latent_avg"], tr2.state_dict["latent_avg"], atol=0, rtol=0)
    assert "computed" in tr1.extra["w_avg"]
    with torch.no_grad():  # the computed centre is the mean w
        z = torch.randn(20000, 6, generator=torch.Generator().manual_seed(9))
        torch.testing.assert_close(tr1.state_dict["latent_avg"], G.get_latent(z).mean(0), atol=0.05, rtol=0)

    marker = tmp_path / "pwned"
    torch.save({"g_ema": sd, "args": _Evil(os.system, f"touch {marker}")}, tmp_path / "evil.pt",
               _use_new_zipfile_serialization=zip_format)
    with pytest.raises(UnsafeWeightsError, match="evil.pt.*system"):
        convert_rosinality_stylegan2(tmp_path / "evil.pt")
    assert not marker.exists()
    torch.save({"state_dict": sd}, tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="no 'g_ema'"):
        convert_rosinality_stylegan2(tmp_path / "other.pt")
    torch.save({"g_ema": {**sd, "extra.weight": torch.zeros(1)}}, tmp_path / "extra.pt")
    with pytest.raises(WeightsError, match="unexpected"):
        convert_rosinality_stylegan2(tmp_path / "extra.pt")


def test_load_generator_errors(tmp_path: Path) -> None:
    with pytest.raises(ImgforgeError, match="weights file not found"):
        load_generator(tmp_path / "missing.pt")
    p = tmp_path / "x.txt"
    p.write_text("hello")
    with pytest.raises(WeightsError, match="not a StyleGAN2 weights file"):
        load_generator(p)
