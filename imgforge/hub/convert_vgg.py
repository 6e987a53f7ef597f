"""Converters for VGG encoder files: torchvision VGG-16/19 ``.pth`` and pytorch-AdaIN's ``vgg_normalised.pth``.

Both read the file with ``torch.load(weights_only=True)`` only, check every key, and return a state dict that loads
with ``strict=True`` into the architecture they name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch

from ..errors import WeightsError
from ..models.registry import build
from ..models.vgg import conv_indices, normalised_layer_names, vgg_layer_names
from .converters import Converted, load_plain_state_dict, register_converter, sha256_file

_FEATURE_KEY = re.compile(r"^features\.(\d+)\.(weight|bias)$")
_CLASSIFIER_KEY = re.compile(r"^classifier\.(\d+)\.(weight|bias)$")
_SEQ_KEY = re.compile(r"^(\d+)\.(weight|bias)$")


def _tensors(path: Path, sd: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
    out: Dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if not isinstance(k, str) or not isinstance(v, torch.Tensor):
            raise WeightsError(f"{path}: entry {k!r} is not a named tensor; not a VGG state dict")
        out[k] = v
    return out


def _unwrap(sd: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept ``{"state_dict": {...}}`` wrappers and a ``module.`` prefix (DataParallel saves)."""
    if "state_dict" in sd and isinstance(sd["state_dict"], Mapping) and len(sd) <= 3:
        sd = sd["state_dict"]
    if sd and all(isinstance(k, str) and k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def detect_torchvision_vgg(keys: List[str]) -> Tuple[str, List[str], List[str]]:
    """Architecture of a torchvision-layout VGG state dict from its keys.

    Returns ``(arch, feature_keys, classifier_keys)``; raises :class:`WeightsError` (without a path; the caller adds
    it) for unknown keys or a conv index pattern that is neither vgg16 nor vgg19.
    """
    feats: List[str] = []
    cls: List[str] = []
    unknown: List[str] = []
    idx = set()
    for k in keys:
        m = _FEATURE_KEY.match(k)
        if m:
            feats.append(k)
            idx.add(int(m.group(1)))
        elif _CLASSIFIER_KEY.match(k):
            cls.append(k)
        else:
            unknown.append(k)
    if unknown:
        shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
        raise WeightsError(
            f"{len(unknown)} key(s) that are not torchvision VGG keys (features.N.weight|bias, classifier.N.*): {shown}"
            " (a batch-norm VGG or another network?)"
        )
    found = sorted(idx)
    for arch in ("vgg19", "vgg16"):
        if found == conv_indices(arch):
            return arch, feats, cls
    raise WeightsError(
        f"conv indices {found} match neither torchvision vgg19 {conv_indices('vgg19')} nor vgg16 {conv_indices('vgg16')}"
    )


def _convert_torchvision(path: Path, normalization: Optional[str]) -> Converted:
    path = Path(path)
    sd = _tensors(path, _unwrap(load_plain_state_dict(path)))
    try:
        arch, feats, cls = detect_torchvision_vgg(list(sd))
    except WeightsError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    # widths from the first conv of each block (all 64/128/256/512/512 for published files)
    names = vgg_layer_names(arch)
    widths = [int(sd[f"features.{names.index(f'conv{b}_1')}.weight"].shape[0]) for b in range(1, 6)]
    if normalization is None:
        normalization = "imagenet"
        # torchvision's IMAGENET1K_FEATURES file (amdegroot) has an all-NaN classifier and 0..255 inputs
        w0 = sd.get("classifier.0.weight")
        if w0 is not None and w0.numel() > 0 and bool(torch.isnan(w0.flatten()[:1024]).all()):
            normalization = "imagenet_255"
    kwargs: Dict[str, Any] = {}
    if widths != [64, 128, 256, 512, 512]:
        kwargs["widths"] = widths
    if normalization != "imagenet":
        kwargs["normalization"] = normalization
    model = build(arch, **kwargs)
    state = {k: sd[k].to(torch.float32) for k in feats}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: weights do not fit torchvision {arch}: {exc}") from None
    for k, v in state.items():
        if not bool(torch.isfinite(v).all()):
            raise WeightsError(f"{path}: tensor {k} has NaN or infinite values")
    return Converted(
        state_dict=dict(model.state_dict()),
        arch=arch,
        arch_kwargs=kwargs,
        source_sha256=sha256_file(path),
        extra={"dropped_keys": ",".join(cls), "source_format": "torchvision_vgg"},
    )


@register_converter("torchvision_vgg")
def convert_torchvision_vgg(path: Path) -> Converted:
    """torchvision ``vgg16-*.pth`` / ``vgg19-*.pth`` (or a features-only state dict of the same layout).

    The architecture is detected from the conv indices; ``classifier.*`` keys are dropped; any other key is an error.
    The IMAGENET1K_FEATURES file (all-NaN classifier) gets the 0..255 input normalisation it was trained with.
    """
    return _convert_torchvision(path, None)


@register_converter("caffe_vgg")
def convert_caffe_vgg(path: Path) -> Converted:
    """neural-style-pt's Caffe-converted ``vgg19-d01eb7cb.pth`` / ``vgg16-00b39a1b.pth``: torchvision key layout
    (raw files may have ``classifier.1/4`` keys; they are dropped too), BGR 0..255 mean-subtracted inputs."""
    return _convert_torchvision(path, "caffe_bgr")


@register_converter("adain_vgg_normalised")
def convert_adain_vgg_normalised(path: Path) -> Converted:
    """pytorch-AdaIN ``vgg_normalised.pth``: a bare Sequential state dict (``<i>.weight|bias``), 34 tensors up to
    relu5_4. A file cut after an earlier conv (e.g. the 31-child encoder up to relu4_1) is accepted and gives a model
    built up to that layer; keys must otherwise be exactly the upstream ones."""
    path = Path(path)
    sd = _tensors(path, _unwrap(load_plain_state_dict(path)))
    names = normalised_layer_names()
    conv_idx = [i for i, n in enumerate(names) if n.startswith("conv")]
    found: List[int] = []
    for k in sd:
        m = _SEQ_KEY.match(k)
        if not m or int(m.group(1)) not in conv_idx:
            raise WeightsError(
                f"{path}: key {k!r} is not a vgg_normalised key (expected <i>.weight|bias for i in {conv_idx})"
            )
        found.append(int(m.group(1)))
    found = sorted(set(found))
    if not found or found != conv_idx[: len(found)]:
        raise WeightsError(f"{path}: conv indices {found} are not a prefix of vgg_normalised's {conv_idx}")
    for i in found:
        if f"{i}.weight" not in sd or f"{i}.bias" not in sd:
            raise WeightsError(f"{path}: conv {i} lacks its weight or bias")
    last_conv = found[-1]
    last_layer = names[last_conv + 1]  # the ReLU after the last conv present (conv0 has none: use conv0)
    if last_conv == 0:
        last_layer = "conv0"
    kwargs: Dict[str, Any] = {} if last_layer == "relu5_4" else {"last_layer": last_layer}
    model = build("vgg19_normalised", **kwargs)
    try:
        model.load_state_dict({k: v.to(torch.float32) for k, v in sd.items()}, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{path}: weights do not fit vgg_normalised: {exc}") from None
    return Converted(
        state_dict=dict(model.state_dict()),
        arch="vgg19_normalised",
        arch_kwargs=kwargs,
        source_sha256=sha256_file(path),
        extra={"source_format": "adain_vgg_normalised"},
    )

