"""Converters for junyanz/pytorch-CycleGAN-and-pix2pix checkpoints (``latest_net_G.pth``, ``latest_net_D.pth``,
the published CycleGAN ``<name>.pth`` and pix2pix ``<name>.pth`` generators).

The reference saves the bare module's ``state_dict()`` with ``torch.save``; it carries no architecture options, so
they are detected from the keys and shapes (:func:`detect_generator_arch`, :func:`detect_discriminator_arch`, pure
functions on a name -> tensor mapping; only ``.shape`` is used, so meta tensors work).

What can and cannot be detected:

- kind: ResNet generator (``model.1.weight`` is a 7x7 conv), U-Net (``model.model.0.weight``), PatchGAN
  (``model.0.weight`` 4x4), pixel discriminator (``net.0.weight``).
- widths (ngf / ndf), input and output channels, ResNet ``n_blocks``, U-Net ``num_downs`` (nesting depth of
  ``model.3.`` slots), PatchGAN ``n_layers`` (number of convs - 2).
- norm: ``batch`` = norm keys ``weight, bias, running_mean, running_var[, num_batches_tracked]`` and bias-free convs;
  ``instance`` = no norm keys (InstanceNorm affine=False) and convs WITH bias; legacy ``instance`` = only
  ``running_mean, running_var, num_batches_tracked`` at the norm slots (2018-era published CycleGAN files); ``none`` =
  no norm keys and bias-free convs (the reference gives conv bias only with InstanceNorm).
- ResNet dropout and padding: Dropout(0.5) sits between the block's ReLU and second pad, so it pushes the second conv
  from ``conv_block.5`` to ``conv_block.6`` (reflect / replicate padding) or from ``.3`` to ``.4`` (zero padding:
  no pad layers, first conv at ``.0``). Reflect and replicate cannot be told apart; ``reflect`` (every published
  model) is assumed.
- U-Net dropout can NOT be detected: its Dropout is the last layer of a block sequence, after the up-norm, so it
  leaves no gap in the indices. It only matters for train-mode inference (the reference's ``test.py`` without
  ``--eval``); the default ``unet_use_dropout=True`` is the pix2pix default (all published U-Net models), override it
  with the converter's ``use_dropout`` argument.

Loading follows the reference's ``load_networks``: read with ``weights_only=True``, drop ``running_mean`` /
``running_var`` that sit on InstanceNorm modules without running stats and every InstanceNorm
``num_batches_tracked``, then a strict load. The dropped keys are listed in ``Converted.extra["dropped_keys"]``.
BatchNorm entries without ``num_batches_tracked`` (files from PyTorch < 0.4.1) get a zero counter, as PyTorch does
for version-less state dicts; these are listed in ``extra["added_keys"]``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn as nn

from ..errors import WeightsError
from ..models.registry import build
from .converters import Converted, load_plain_state_dict, register_converter, sha256_file

SOURCE_FORMAT = "pytorch-CycleGAN-and-pix2pix"
GENERATOR_ARCHS = ("resnet_generator", "unet_generator")
DISCRIMINATOR_ARCHS = ("patchgan_discriminator", "pixel_discriminator")

_NORM_STATS = {"running_mean", "running_var", "num_batches_tracked"}


def _shape(sd: Mapping[str, Any], key: str) -> Tuple[int, ...]:
    return tuple(int(s) for s in sd[key].shape)


def _norm_kind(sd: Mapping[str, Any], norm_prefix: str, conv_bias_key: str) -> str:
    """Norm type from the keys of one norm slot (``norm_prefix`` like ``"model.2."``) and the bias of the conv
    before it. Raises WeightsError for combinations the reference never writes."""
    names = {k[len(norm_prefix) :] for k in sd if k.startswith(norm_prefix)}
    conv_bias = conv_bias_key in sd
    if {"weight", "bias", "running_mean", "running_var"} <= names and names <= {"weight", "bias"} | _NORM_STATS:
        if not conv_bias:
            return "batch"
    elif not names:
        return "instance" if conv_bias else "none"
    elif names <= _NORM_STATS and {"running_mean", "running_var"} <= names and conv_bias:
        return "instance"  # legacy layout: InstanceNorm with (ignored) running statistics
    raise WeightsError(
        f"unrecognised normalisation layout at {norm_prefix!r}: keys {sorted(names)}, conv bias "
        f"{'present' if conv_bias else 'absent'} (expected BatchNorm weight/bias/running stats with bias-free convs, "
        "or no norm keys)"
    )


def _require(sd: Mapping[str, Any], key: str, what: str, ndim: int = 4) -> Tuple[int, ...]:
    if key not in sd:
        raise WeightsError(f"not a {what} state dict: key {key!r} is missing")
    shape = _shape(sd, key)
    if len(shape) != ndim:
        raise WeightsError(f"{key!r} has shape {list(shape)}; a {what} needs a {ndim}-D tensor there")
    return shape


def _detect_resnet(sd: Mapping[str, Any]) -> Tuple[str, Dict[str, Any]]:
    ngf, input_nc, kh, kw = _require(sd, "model.1.weight", "ResNet generator")
    if (kh, kw) != (7, 7):
        raise WeightsError(f"'model.1.weight' is a {kh}x{kw} conv; a ResNet generator starts with a 7x7 conv")
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"model\.(\d+)\.conv_block\.", k))})
    n_blocks = len(blocks)
    if blocks != list(range(10, 10 + n_blocks)):
        raise WeightsError(f"ResNet blocks at indices {blocks}; expected consecutive indices from model.10")
    use_dropout, padding_type = False, "reflect"
    if n_blocks:
        idx = sorted(
            int(m.group(1))
            for k in sd
            if (m := re.fullmatch(r"model\.10\.conv_block\.(\d+)\.weight", k)) and len(sd[k].shape) == 4
        )
        layouts = {(1, 5): ("reflect", False), (1, 6): ("reflect", True), (0, 3): ("zero", False), (0, 4): ("zero", True)}
        if tuple(idx) not in layouts:
            raise WeightsError(f"unrecognised residual block layout: convs at conv_block indices {idx}")
        padding_type, use_dropout = layouts[tuple(idx)]
    final = f"model.{17 + n_blocks}.weight"
    output_nc, ngf_out, fh, fw = _require(sd, final, "ResNet generator")
    if ngf_out != ngf or (fh, fw) != (7, 7):
        raise WeightsError(f"{final!r} has shape {list(_shape(sd, final))}; expected [output_nc, {ngf}, 7, 7]")
    norm = _norm_kind(sd, "model.2.", "model.1.bias")
    return "resnet_generator", {
        "input_nc": input_nc,
        "output_nc": output_nc,
        "ngf": ngf,
        "norm": norm,
        "use_dropout": use_dropout,
        "n_blocks": n_blocks,
        "padding_type": padding_type,
    }


def _detect_unet(sd: Mapping[str, Any], use_dropout: bool) -> Tuple[str, Dict[str, Any]]:
    ngf, input_nc, _, _ = _require(sd, "model.model.0.weight", "U-Net generator")
    two_ngf, output_nc, _, _ = _require(sd, "model.model.3.weight", "U-Net generator")
    if two_ngf != 2 * ngf:
        raise WeightsError(f"'model.model.3.weight' has {two_ngf} input channels; expected 2*ngf = {2 * ngf}")
    levels, prefix = 1, "model.model.1.model."
    while any(k.startswith(prefix) for k in sd):
        levels += 1
        prefix = prefix + "3.model."
    if levels < 5:
        raise WeightsError(f"U-Net with {levels} levels; the reference builds at least 5 (unet_128 has 7, unet_256 8)")
    norm = _norm_kind(sd, "model.model.1.model.2.", "model.model.1.model.1.bias")
    return "unet_generator", {
        "input_nc": input_nc,
        "output_nc": output_nc,
        "num_downs": levels,
        "ngf": ngf,
        "norm": norm,
        "use_dropout": bool(use_dropout),
    }


def _detect_patchgan(sd: Mapping[str, Any]) -> Tuple[str, Dict[str, Any]]:
    ndf, input_nc, kh, kw = _require(sd, "model.0.weight", "PatchGAN discriminator")
    if (kh, kw) != (4, 4):
        raise WeightsError(f"'model.0.weight' is a {kh}x{kw} conv; a PatchGAN discriminator starts with a 4x4 conv")
    idx = sorted(
        int(m.group(1)) for k in sd if (m := re.fullmatch(r"model\.(\d+)\.weight", k)) and len(sd[k].shape) == 4
    )
    n_layers = len(idx) - 2
    if n_layers < 1 or idx != [0] + [2 + 3 * i for i in range(n_layers)] + [3 * n_layers + 2]:
        raise WeightsError(f"unrecognised PatchGAN layout: convs at model indices {idx}")
    if n_layers == 1 and _shape(sd, "model.2.weight")[0] == ndf:
        n_layers = 0  # n_layers=0 has the same layout as 1, but its stride-1 conv keeps ndf channels
    last = f"model.{idx[-1]}.weight"
    if _shape(sd, last)[0] != 1:
        raise WeightsError(f"{last!r} has {_shape(sd, last)[0]} output channels; a PatchGAN ends with 1")
    norm = _norm_kind(sd, "model.3.", "model.2.bias")
    return "patchgan_discriminator", {"input_nc": input_nc, "ndf": ndf, "n_layers": n_layers, "norm": norm}


def _detect_pixel(sd: Mapping[str, Any]) -> Tuple[str, Dict[str, Any]]:
    ndf, input_nc, _, _ = _require(sd, "net.0.weight", "pixel discriminator")
    _require(sd, "net.5.weight", "pixel discriminator")
    norm = _norm_kind(sd, "net.3.", "net.2.bias")
    return "pixel_discriminator", {"input_nc": input_nc, "ndf": ndf, "norm": norm}


def detect_translation_arch(sd: Mapping[str, Any], *, unet_use_dropout: bool = True) -> Tuple[str, Dict[str, Any]]:
    """Detect any translation network (generator or discriminator) from a state dict.

    ``sd``: name -> tensor (keys without any ``module.`` prefix; only ``.shape`` is read). Returns
    ``(arch, kwargs)`` for :func:`imgforge.models.registry.build`. Raises :class:`WeightsError` when the layout is
    not one the reference writes. ``unet_use_dropout`` is used for U-Nets, whose dropout leaves no keys.
    """
    w = sd.get("model.1.weight")
    if "model.model.0.weight" in sd:
        return _detect_unet(sd, unet_use_dropout)
    if w is not None and len(w.shape) == 4 and tuple(w.shape[-2:]) == (7, 7):
        return _detect_resnet(sd)
    if "model.0.weight" in sd:
        return _detect_patchgan(sd)
    if "net.0.weight" in sd:
        return _detect_pixel(sd)
    first = ", ".join(list(sd)[:4])
    raise WeightsError(
        f"not a pytorch-CycleGAN-and-pix2pix network: no 'model.1.weight' (ResNet), 'model.model.0.weight' (U-Net), "
        f"'model.0.weight' (PatchGAN) or 'net.0.weight' (pixel D); first keys: {first or '(none)'}"
    )


def detect_generator_arch(sd: Mapping[str, Any], *, unet_use_dropout: bool = True) -> Tuple[str, Dict[str, Any]]:
    """Detect a generator (``resnet_generator`` or ``unet_generator``) and its kwargs; see the module docstring.

    ``kwargs``: input_nc, output_nc, ngf, norm, use_dropout and n_blocks + padding_type (ResNet) or num_downs (U-Net).
    """
    arch, kwargs = detect_translation_arch(sd, unet_use_dropout=unet_use_dropout)
    if arch not in GENERATOR_ARCHS:
        raise WeightsError(f"this is a discriminator ({arch}), not a generator; use the translation_discriminator converter")
    return arch, kwargs


def detect_discriminator_arch(sd: Mapping[str, Any]) -> Tuple[str, Dict[str, Any]]:
    """Detect a discriminator (``patchgan_discriminator``: input_nc, ndf, n_layers, norm; or
    ``pixel_discriminator``: input_nc, ndf, norm)."""
    arch, kwargs = detect_translation_arch(sd)
    if arch not in DISCRIMINATOR_ARCHS:
        raise WeightsError(f"this is a generator ({arch}), not a discriminator; use the translation_generator converter")
    return arch, kwargs


# --------------------------------------------------------------------------------------------------------------
# Reading and loading
# --------------------------------------------------------------------------------------------------------------


def read_translation_state_dict(path: Path) -> Tuple[Dict[str, torch.Tensor], str]:
    """Read a reference checkpoint safely (``weights_only=True``, CPU). Returns ``(state dict, stripped prefix)``.

    A ``module.`` / ``_orig_mod.`` prefix shared by every key (DataParallel / torch.compile wrappers, which the
    reference unwraps before saving but third-party files may keep) is removed and reported.
    """
    raw = load_plain_state_dict(path)
    sd: Dict[str, torch.Tensor] = {}
    for k, v in raw.items():
        if not isinstance(v, torch.Tensor):
            raise WeightsError(f"{path}: entry {k!r} is a {type(v).__name__}, not a tensor; expected a plain state dict")
        sd[str(k)] = v
    if not sd:
        raise WeightsError(f"{path}: the state dict is empty")
    stripped = ""
    changed = True
    while changed:
        changed = False
        for prefix in ("module.", "_orig_mod."):
            if all(k.startswith(prefix) for k in sd):
                sd = {k[len(prefix) :]: v for k, v in sd.items()}
                stripped += prefix
                changed = True
    return sd, stripped


def _reference_dropped_keys(model: nn.Module, sd: Mapping[str, torch.Tensor]) -> List[str]:
    """Keys the reference's loader removes: InstanceNorm ``running_mean``/``running_var`` where the module keeps no
    running stats, and every InstanceNorm ``num_batches_tracked``."""
    dropped = []
    for key in sd:
        owner, _, name = key.rpartition(".")
        try:
            mod = model.get_submodule(owner)
        except AttributeError:
            continue
        if not isinstance(mod, nn.modules.instancenorm._InstanceNorm):
            continue
        if name == "num_batches_tracked" or (name in ("running_mean", "running_var") and getattr(mod, name, None) is None):
            dropped.append(key)
    return dropped


def load_into(arch: str, kwargs: Mapping[str, Any], sd: Mapping[str, torch.Tensor], *, source: str) -> Tuple[nn.Module, List[str], List[str]]:
    """Build ``arch`` on the meta device and load ``sd`` into it strictly (tensors are assigned, not copied).

    Returns ``(model, dropped legacy keys, added keys)``. Raises :class:`WeightsError` naming ``source`` when keys or
    shapes do not fit.
    """
    with torch.device("meta"):
        model = build(arch, **dict(kwargs))
    dropped = _reference_dropped_keys(model, sd)
    drop = set(dropped)
    clean = {k: v for k, v in sd.items() if k not in drop}
    added = []
    for name, mod in model.named_modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm) and mod.track_running_stats:
            key = f"{name}.num_batches_tracked" if name else "num_batches_tracked"
            if key not in clean and f"{name}.running_mean" in clean:
                clean[key] = torch.tensor(0, dtype=torch.long)
                added.append(key)
    try:
        model.load_state_dict(clean, strict=True, assign=True)
    except RuntimeError as exc:
        msg = str(exc).replace("\n", " ")
        raise WeightsError(
            f"{source}: weights do not fit the detected architecture {arch} {json.dumps(dict(kwargs), sort_keys=True)}: "
            f"{msg[:800]}"
        ) from exc
    leftovers = [n for n, t in list(model.named_parameters()) + list(model.named_buffers()) if t.is_meta]
    if leftovers:
        raise WeightsError(f"{source}: weights do not fill {', '.join(leftovers[:5])} of {arch}")
    return model, dropped, added


def _convert(path: Path, kind: str, use_dropout: Optional[bool]) -> Converted:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    sd, stripped = read_translation_state_dict(path)
    dropout_source = "keys"
    if kind == "generator":
        arch, kwargs = detect_generator_arch(sd, unet_use_dropout=True if use_dropout is None else use_dropout)
        if arch == "unet_generator":
            dropout_source = "default (not visible in U-Net keys)" if use_dropout is None else "given"
        elif use_dropout is not None and use_dropout != kwargs["use_dropout"]:
            raise WeightsError(
                f"{path}: use_dropout={use_dropout} given, but the ResNet block layout says "
                f"use_dropout={kwargs['use_dropout']}"
            )
    else:
        arch, kwargs = detect_discriminator_arch(sd)
    model, dropped, added = load_into(arch, kwargs, sd, source=str(path))
    state = {k: v for k, v in model.state_dict().items()}
    extra = {
        "source_format": SOURCE_FORMAT,
        "source_file": path.name,
        "dropped_keys": ",".join(dropped),
        "dropped_key_count": str(len(dropped)),
        "added_keys": ",".join(added),
        "stripped_prefix": stripped,
    }
    if kind == "generator":
        extra["use_dropout_source"] = dropout_source
    return Converted(state_dict=state, arch=arch, arch_kwargs=dict(kwargs), source_sha256=sha256_file(path), extra=extra)


@register_converter("translation_generator")
def convert_translation_generator(path: Path, *, use_dropout: Optional[bool] = None) -> Converted:
    """Convert a reference generator checkpoint (``latest_net_G.pth``, published ``<name>.pth``).

    ``use_dropout``: only needed for U-Nets (invisible in their keys; ``None`` = True, the pix2pix default); for a
    ResNet it is read from the keys and a contradicting value raises :class:`WeightsError`.
    """
    return _convert(Path(path), "generator", use_dropout)


@register_converter("translation_discriminator")
def convert_translation_discriminator(path: Path) -> Converted:
    """Convert a reference discriminator checkpoint (``latest_net_D.pth``, ``latest_net_D_A.pth``, ...)."""
    return _convert(Path(path), "discriminator", None)


def build_converted(conv: Converted, *, device: torch.device | str = "cpu") -> nn.Module:
    """Build the model described by ``conv`` on ``device``, loading its state dict strictly; returned in eval mode.

    The model is built on the meta device and the tensors are assigned, so on CPU the model shares storage with
    ``conv.state_dict`` (no copy, no throw-away random init).
    """
    model, _, _ = load_into(conv.arch, conv.arch_kwargs, conv.state_dict, source=f"converted {conv.arch}")
    return model.to(device).eval()
