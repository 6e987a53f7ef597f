"""Converters for StyleGAN2 generators: rosinality ``.pt`` and NVIDIA stylegan2-ada-pytorch ``.pkl``.

Both return our canonical state dict (rosinality ``g_ema`` keys + ``latent_avg``), arch ``"stylegan2_generator"``
and constructor kwargs (resolution, widths per resolution from the tensor shapes, ``n_mlp``, ``style_dim``, ...).
The truncation centre ``w_avg`` is the ``latent_avg [w_dim]`` tensor of the state dict.

NVIDIA -> rosinality names (``r = 8 * 2**k``)::

    mapping.fc{i}.weight/bias           -> style.{i+1}.weight/bias
    mapping.w_avg                        -> latent_avg
    synthesis.b4.const [C,4,4]           -> input.input [1,C,4,4]
    synthesis.b4.conv1.*                 -> conv1.*            (noise_const -> noises.noise_0)
    synthesis.b{r}.conv0.* / conv1.*     -> convs.{2k}.* / convs.{2k+1}.*   (noise_{2k+1} / noise_{2k+2})
    synthesis.b4.torgb.* / b{r}.torgb.*  -> to_rgb1.* / to_rgbs.{k}.*
    <layer>.weight [O,I,k,k]             -> <layer>.conv.weight [1,O,I,k,k]
    <layer>.affine.weight/bias           -> <layer>.conv.modulation.weight/bias
    <layer>.noise_strength []            -> <layer>.noise.weight [1]
    <layer>.bias [O]                     -> <layer>.activate.bias [O]   (ToRGB: to_rgb*.bias [1,3,1,1])
    *.resample_filter                    -> dropped (checked to be the standard [1,3,3,1] filter; the up-sampling
                                            kernels with gain 4 are recomputed as blur/upsample buffers)

No weight flip is needed between the two PyTorch ports (both flipped TF's up-conv kernels when converting).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
from torch import Tensor

from ..errors import WeightsError
from ..ops.upfirdn2d import make_kernel
from .converters import Converted, register_converter, sha256_file
from .safe_pickle import PersistentObject, load_network_pickle, load_torch_checkpoint

ARCH = "stylegan2_generator"
W_AVG_SAMPLES = 10_000
W_AVG_SEED = 0


def _meta_generator(kwargs: Mapping[str, Any]) -> Dict[str, Tuple[int, ...]]:
    """Our generator's state-dict keys and shapes for ``kwargs`` (built on the meta device: no memory, no init)."""
    from ..models.stylegan2 import Generator

    with torch.device("meta"):
        model = Generator(**kwargs)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _derived_buffers(keys: Mapping[str, Tuple[int, ...]], blur: List[float]) -> Dict[str, Tensor]:
    """The FIR buffers that are constants of the architecture: kernel normalised to sum 1, times 4 (2x up gain)."""
    k = make_kernel(blur) * 4
    return {name: k.clone() for name in keys if name.endswith(".blur.kernel") or name.endswith(".upsample.kernel")}


def _check_filter(name: str, t: Tensor, blur: List[float], gain: float, path: Path) -> None:
    ref = make_kernel(blur) * gain
    if tuple(t.shape) != tuple(ref.shape) or not torch.allclose(t.float(), ref, atol=1e-6):
        raise WeightsError(f"{path}: {name} is not the standard {blur} FIR filter; this generator variant is "
                           "not supported")


def compute_w_avg(state_dict: Mapping[str, Tensor], kwargs: Mapping[str, Any], n: int = W_AVG_SAMPLES,
                  seed: int = W_AVG_SEED) -> Tensor:
    """Mean of the mapping network's w over ``n`` z drawn from N(0, 1) with ``seed``: ``(w_dim,)`` float32.

    The fallback truncation centre for checkpoints without ``latent_avg`` (rosinality train.py files), seeded so
    that conversion is deterministic (upstream's ``mean_latent(4096)`` is not).
    """
    from ..models.stylegan2 import Generator

    model = Generator(**kwargs)
    model.load_state_dict(dict(state_dict), strict=True)
    z = torch.randn(n, model.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return model.get_latent(z).mean(0)


# ------------------------------------------------------------------------------------------------ rosinality
@register_converter("rosinality_stylegan2")
def convert_rosinality_stylegan2(path: Path) -> Converted:
    """rosinality/stylegan2-pytorch checkpoint (``convert_weight.py`` or ``train.py`` output, zip or legacy) ->
    our generator. Reads ``g_ema`` (a bare generator state dict is accepted too) and ``latent_avg`` when present;
    otherwise ``latent_avg`` is computed by :func:`compute_w_avg`. Loaded with ``weights_only=True``
    (``argparse.Namespace`` allowed for ``args``)."""
    from ..models.stylegan2 import infer_generator_config

    path = Path(path)
    ckpt = load_torch_checkpoint(path)
    if not isinstance(ckpt, Mapping):
        raise WeightsError(f"{path}: expected a checkpoint dict, got {type(ckpt).__name__}")
    if "g_ema" in ckpt:
        g = ckpt["g_ema"]
    elif "style.1.weight" in ckpt:
        g = ckpt
    else:
        raise WeightsError(f"{path}: no 'g_ema' in this checkpoint (keys: {', '.join(map(str, list(ckpt)[:10]))}); "
                           "expected a rosinality/stylegan2-pytorch checkpoint")
    if not isinstance(g, Mapping) or not all(isinstance(v, Tensor) for v in g.values()):
        raise WeightsError(f"{path}: 'g_ema' is not a state dict of tensors")
    try:
        kwargs = infer_generator_config(g)
    except WeightsError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    shapes = _meta_generator(kwargs)
    expected = [k for k in shapes if k != "latent_avg"]
    missing = [k for k in expected if k not in g]
    unexpected = [k for k in g if k not in shapes]
    if missing or unexpected:
        raise WeightsError(f"{path}: g_ema does not match a StyleGAN2 generator of {kwargs['size']} px: missing "
                           f"{missing[:5]}, unexpected {unexpected[:5]}")
    for k in expected:
        if tuple(g[k].shape) != shapes[k]:
            raise WeightsError(f"{path}: {k} has shape {tuple(g[k].shape)}, expected {shapes[k]}")
    for k in _derived_buffers(shapes, [1.0, 3.0, 3.0, 1.0]):  # derived constants: compare, never learn
        _check_filter(k, g[k], [1.0, 3.0, 3.0, 1.0], 4.0, path)
    sd: Dict[str, Tensor] = {k: g[k].detach().float().contiguous() for k in expected}
    extra: Dict[str, str] = {"source_format": "rosinality .pt"}
    if isinstance(ckpt.get("latent_avg"), Tensor):
        avg = ckpt["latent_avg"].detach().float().reshape(-1)
        if avg.numel() != kwargs["style_dim"]:
            raise WeightsError(f"{path}: latent_avg has {avg.numel()} values, expected {kwargs['style_dim']}")
        extra["w_avg"] = "latent_avg from the checkpoint"
    else:
        avg = compute_w_avg({**sd, "latent_avg": torch.zeros(kwargs["style_dim"])}, kwargs)
        extra["w_avg"] = f"computed: mean of mapping(z) over {W_AVG_SAMPLES} z, seed {W_AVG_SEED}"
    sd["latent_avg"] = avg
    sd = {k: sd[k] for k in shapes}  # our key order
    return Converted(sd, ARCH, kwargs, sha256_file(path), extra)


# ---------------------------------------------------------------------------------------------------- NVIDIA
def _attr(obj: Optional[PersistentObject], name: str, default: Any = None) -> Any:
    return obj.state.get(name, default) if obj is not None else default


def nvidia_generator_kwargs(G: PersistentObject, tensors: Mapping[str, Tensor], path: Path) -> Dict[str, Any]:
    """Our constructor kwargs for an NVIDIA ``Generator``, widths from the tensor shapes; refuses variants we do
    not implement (conditional, not 3 channels, non-"skip" synthesis, other activations)."""
    if G.class_name != "Generator":
        raise WeightsError(f"{path}: G_ema is a {G.class_name!r}, expected a StyleGAN2 'Generator'")
    if any(k.startswith("mapping.embed.") for k in tensors) or int(_attr(G, "c_dim", 0) or 0) > 0:
        raise WeightsError(f"{path}: conditional generators (c_dim > 0) are not supported")
    if any(".skip." in k for k in tensors) or "synthesis.b4.const" not in tensors:
        raise WeightsError(f"{path}: only the StyleGAN2 'skip' generator architecture is supported")
    n_mlp = 0
    while f"mapping.fc{n_mlp}.weight" in tensors:
        n_mlp += 1
    if n_mlp == 0:
        raise WeightsError(f"{path}: no mapping.fc0.weight: not a StyleGAN2 generator")
    res_list = sorted(int(k.split(".")[1][1:]) for k in tensors if k.startswith("synthesis.b") and k.endswith(".torgb.weight"))
    size = res_list[-1]
    if res_list != [2**i for i in range(2, size.bit_length())]:
        raise WeightsError(f"{path}: only the StyleGAN2 'skip' generator architecture is supported (ToRGB at {res_list})")
    w_dim, z_dim = tensors["mapping.fc0.weight"].shape[0], tensors["mapping.fc0.weight"].shape[1]
    for i in range(1, n_mlp):
        if tuple(tensors[f"mapping.fc{i}.weight"].shape) != (w_dim, w_dim):
            raise WeightsError(f"{path}: mapping layers of different widths are not supported")
    if tensors["synthesis.b4.torgb.weight"].shape[0] != 3:
        raise WeightsError(f"{path}: only 3-channel generators are supported")
    channels = {"4": int(tensors["synthesis.b4.const"].shape[0])}
    for r in res_list[1:]:
        channels[str(r)] = int(tensors[f"synthesis.b{r}.conv0.weight"].shape[0])
    fc0 = G.child("mapping.fc0")
    lr_mlp = float(_attr(fc0, "bias_gain", 0.01))
    for name in ("mapping.fc0", "synthesis.b4.conv1"):
        act = _attr(G.child(name), "activation", "lrelu")
        if act != "lrelu":
            raise WeightsError(f"{path}: activation {act!r} in {name} is not supported (only 'lrelu')")
    syn_kw = G.init_kwargs.get("synthesis_kwargs") or {}
    clamp = _attr(G.child("synthesis.b4.conv1"), "conv_clamp", syn_kw.get("conv_clamp"))
    img_res = _attr(G, "img_resolution", size)
    if img_res != size:
        raise WeightsError(f"{path}: img_resolution {img_res} does not match the synthesis blocks ({size})")
    kwargs: Dict[str, Any] = {"size": size, "style_dim": int(w_dim), "n_mlp": n_mlp, "z_dim": int(z_dim),
                              "channels": channels, "blur_kernel": [1.0, 3.0, 3.0, 1.0], "lr_mlp": lr_mlp}
    if clamp is not None:
        kwargs["conv_clamp"] = float(clamp)
    if syn_kw.get("num_fp16_res"):
        kwargs["num_fp16_res"] = int(syn_kw["num_fp16_res"])
    return kwargs


def nvidia_to_rosinality(tensors: Mapping[str, Tensor], kwargs: Mapping[str, Any], path: Path
                         ) -> Tuple[Dict[str, Tensor], List[str]]:
    """Rename/reshape NVIDIA ``G_ema`` tensors into our key layout. Walks *our* keys and fails on any left unfilled
    or any NVIDIA tensor left unused. Returns ``(state_dict, dropped NVIDIA names)``."""
    shapes = _meta_generator(kwargs)
    sd: Dict[str, Tensor] = dict(_derived_buffers(shapes, list(kwargs["blur_kernel"])))
    used: set[str] = set()

    def take(name: str) -> Tensor:
        if name not in tensors:
            raise WeightsError(f"{path}: NVIDIA tensor {name!r} missing")
        used.add(name)
        return tensors[name].detach().float()

    sd["latent_avg"] = take("mapping.w_avg") if "mapping.w_avg" in tensors else torch.zeros(kwargs["style_dim"])
    for i in range(kwargs["n_mlp"]):
        sd[f"style.{i + 1}.weight"] = take(f"mapping.fc{i}.weight")
        sd[f"style.{i + 1}.bias"] = take(f"mapping.fc{i}.bias")
    sd["input.input"] = take("synthesis.b4.const").unsqueeze(0)

    def layer(src: str, dst: str, noise_idx: int) -> None:
        sd[f"{dst}.conv.weight"] = take(f"{src}.weight").unsqueeze(0)
        sd[f"{dst}.conv.modulation.weight"] = take(f"{src}.affine.weight")
        sd[f"{dst}.conv.modulation.bias"] = take(f"{src}.affine.bias")
        sd[f"{dst}.activate.bias"] = take(f"{src}.bias")
        if f"{src}.noise_strength" in tensors:  # use_noise=True
            sd[f"{dst}.noise.weight"] = take(f"{src}.noise_strength").reshape(1)
            sd[f"noises.noise_{noise_idx}"] = take(f"{src}.noise_const")[None, None]
        else:
            sd[f"{dst}.noise.weight"] = torch.zeros(1)
            sd[f"noises.noise_{noise_idx}"] = torch.zeros(shapes[f"noises.noise_{noise_idx}"])
        if f"{src}.resample_filter" in tensors:
            _check_filter(f"{src}.resample_filter", take(f"{src}.resample_filter"), kwargs["blur_kernel"], 1.0, path)

    def torgb(src: str, dst: str) -> None:
        sd[f"{dst}.conv.weight"] = take(f"{src}.weight").unsqueeze(0)
        sd[f"{dst}.conv.modulation.weight"] = take(f"{src}.affine.weight")
        sd[f"{dst}.conv.modulation.bias"] = take(f"{src}.affine.bias")
        sd[f"{dst}.bias"] = take(f"{src}.bias").reshape(1, -1, 1, 1)

    layer("synthesis.b4.conv1", "conv1", 0)
    torgb("synthesis.b4.torgb", "to_rgb1")
    k, r = 0, 8
    while r <= kwargs["size"]:
        layer(f"synthesis.b{r}.conv0", f"convs.{2 * k}", 2 * k + 1)
        layer(f"synthesis.b{r}.conv1", f"convs.{2 * k + 1}", 2 * k + 2)
        torgb(f"synthesis.b{r}.torgb", f"to_rgbs.{k}")
        k, r = k + 1, r * 2
    dropped: List[str] = []
    for name in tensors:
        if name.endswith("resample_filter"):
            if name not in used:
                _check_filter(name, tensors[name], kwargs["blur_kernel"], 1.0, path)
            dropped.append(name)
        elif name not in used:
            raise WeightsError(f"{path}: NVIDIA tensor {name!r} has no place in the StyleGAN2 generator")
    missing = [key for key in shapes if key not in sd]
    if missing:
        raise WeightsError(f"{path}: conversion left keys unfilled: {missing[:5]}")
    for key, shp in shapes.items():
        if tuple(sd[key].shape) != shp:
            raise WeightsError(f"{path}: {key} has shape {tuple(sd[key].shape)} after conversion, expected {shp}")
    return {key: sd[key].contiguous() for key in shapes}, dropped


@register_converter("nvidia_stylegan2_pkl")
def convert_nvidia_stylegan2_pkl(path: Path, network: str = "G_ema") -> Converted:
    """NVIDIA stylegan2-ada-pytorch network pickle -> our generator (``G_ema`` by default), read with the
    restricted unpickler of :mod:`imgforge.hub.safe_pickle` (nothing from the file is executed)."""
    path = Path(path)
    data = load_network_pickle(path)
    if not isinstance(data, dict) or network not in data:
        keys = ", ".join(map(str, data)) if isinstance(data, dict) else type(data).__name__
        raise WeightsError(f"{path}: no {network!r} network in this pickle (found: {keys})")
    G = data[network]
    if not isinstance(G, PersistentObject):
        raise WeightsError(f"{path}: {network!r} is not a network object")
    tensors = dict(G.named_tensors())
    kwargs = nvidia_generator_kwargs(G, tensors, path)
    sd, dropped = nvidia_to_rosinality(tensors, kwargs, path)
    extra = {"source_format": "NVIDIA stylegan2-ada-pytorch .pkl", "network": network,
             "w_avg": "mapping.w_avg from the pickle" if "mapping.w_avg" in tensors else "absent (zeros)",
             "dropped_keys": ",".join(dropped)}
    if kwargs.get("num_fp16_res"):
        extra["note"] = ("the pickle ran its last num_fp16_res blocks in float16; imgforge computes them in "
                         "float32 (NVIDIA force_fp32=True); outputs differ by about 1e-2")
    return Converted(sd, ARCH, kwargs, sha256_file(path), extra)
