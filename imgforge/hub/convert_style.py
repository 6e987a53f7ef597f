"""Converters for the feed-forward style networks.

- ``fast_style``: pytorch/examples fast-neural-style ``TransformerNet`` state dicts (the published ``candy.pth``,
  ``mosaic.pth``, ``rain_princess.pth``, ``udnie.pth`` and ``*.model`` files written by its ``train``). Keys whose
  name matches ``re.search(r"in\\d+\\.running_(mean|var)$", key)`` are dropped, exactly as the reference's
  ``stylize`` does (legacy InstanceNorm buffers of pre-0.4 PyTorch); everything else must fit
  :class:`~imgforge.models.fast_style.TransformerNet` strictly.
- ``adain_decoder``: naoto0804/pytorch-AdaIN ``decoder.pth`` (and ``decoder_iter_*.pth.tar`` from its training);
  nothing is dropped.

Both read pickles only through ``torch.load(weights_only=True)`` (:func:`load_plain_state_dict`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Mapping

import torch

from ..errors import WeightsError
from ..models.registry import build
from .converters import Converted, load_plain_state_dict, register_converter, sha256_file

__all__ = ["LEGACY_IN_STATS", "convert_fast_style", "convert_adain_decoder", "check_fits"]

#: The reference's deletion rule for legacy InstanceNorm running statistics (``re.search``, not ``re.match``).
LEGACY_IN_STATS = re.compile(r"in\d+\.running_(mean|var)$")


def _tensors(raw: Mapping[str, Any], path: Path) -> Dict[str, torch.Tensor]:
    out: Dict[str, torch.Tensor] = {}
    for k, v in raw.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise WeightsError(f"{path}: entry {k!r} is a {type(v).__name__}, not a tensor; is this a plain state dict?")
        out[k] = v
    return out


def check_fits(arch: str, state_dict: Mapping[str, torch.Tensor], path: Path, **arch_kwargs: Any) -> None:
    """Raise :class:`WeightsError` unless ``state_dict`` loads strictly into ``build(arch, **arch_kwargs)``.

    Compares key sets, shapes and floating dtypes against the model built on the meta device (no allocation), so
    it reports every missing, unexpected or misshapen key at once.
    """
    with torch.device("meta"):
        ref = build(arch, **arch_kwargs).state_dict()
    missing = [k for k in ref if k not in state_dict]
    unexpected = [k for k in state_dict if k not in ref]
    shapes = [
        f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(ref[k].shape)}"
        for k in ref
        if k in state_dict and tuple(state_dict[k].shape) != tuple(ref[k].shape)
    ]
    not_float = [k for k in ref if k in state_dict and not state_dict[k].is_floating_point()]
    problems: List[str] = []
    if missing:
        problems.append(f"missing keys: {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}")
    if unexpected:
        problems.append(f"unexpected keys: {', '.join(unexpected[:8])}{' ...' if len(unexpected) > 8 else ''}")
    if shapes:
        problems.append(f"shape mismatch: {'; '.join(shapes[:4])}{' ...' if len(shapes) > 4 else ''}")
    if not_float:
        problems.append(f"non-floating tensors: {', '.join(not_float[:8])}")
    if problems:
        raise WeightsError(f"{path}: does not fit architecture {arch!r} ({'; '.join(problems)}); is it the right kind of file?")


@register_converter("fast_style")
def convert_fast_style(path: Path) -> Converted:
    """Read a fast-neural-style ``TransformerNet`` state dict; drop legacy InstanceNorm running stats.

    Returns float32 tensors with the reference keys (62) for arch ``fast_style``; ``extra["dropped_keys"]`` lists
    the dropped keys, comma-separated.
    """
    path = Path(path)
    sd = _tensors(load_plain_state_dict(path), path)
    dropped = [k for k in sd if LEGACY_IN_STATS.search(k)]
    kept = {k: v.to(torch.float32).contiguous() for k, v in sd.items() if not LEGACY_IN_STATS.search(k)}
    check_fits("fast_style", kept, path)
    return Converted(
        state_dict=kept,
        arch="fast_style",
        arch_kwargs={},
        source_sha256=sha256_file(path),
        extra={"dropped_keys": ",".join(dropped)},
    )


@register_converter("adain_decoder")
def convert_adain_decoder(path: Path) -> Converted:
    """Read a pytorch-AdaIN decoder state dict (18 keys ``<child>.weight|bias``) for arch ``adain_decoder``."""
    path = Path(path)
    sd = _tensors(load_plain_state_dict(path), path)
    kept = {k: v.to(torch.float32).contiguous() for k, v in sd.items()}
    check_fits("adain_decoder", kept, path)
    return Converted(state_dict=kept, arch="adain_decoder", arch_kwargs={}, source_sha256=sha256_file(path))
