"""The one model loader: a weights name or file -> a ready model of the kind the caller expects.

:func:`load` resolves (manifest name, search path, cache, download when allowed: :func:`imgforge.hub.store.resolve`),
reads (our safetensors directly, any other format through its converter), checks the model's kind, puts it in
eval mode (optionally frozen) on the device, and says where it came from. Every command's loading goes through it;
the typed helpers elsewhere (``load_generator``, ``load_fast_model``, ...) only pick a default name and a
:class:`Kind`.

:func:`published_if_present` is the one place for the rule "the published network when a local copy exists
(never downloads), else the embedded one".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import torch
import torch.nn as nn

from ..errors import WeightsError
from ..progress import ProgressFn

PathOrName = Union[str, "os.PathLike[str]"]


class Kind(Enum):
    """What a caller expects a weights file to hold (the value completes "holds a X network, not ...")."""

    ANY = "a model"
    GENERATOR = "a generator"  #: anything with the generator protocol (StyleGAN2, or a plain z-space network)
    STYLEGAN2 = "a StyleGAN2 generator"
    TRANSLATION = "a translation generator"
    FAST_STYLE = "a fast-style TransformerNet (arch fast_style)"
    ADAIN_DECODER = "an AdaIN decoder"
    ENCODER = "a VGG encoder"
    DIGIT_CLASSIFIER = "the digit classifier"


def _is_kind(model: nn.Module, arch: str, kind: Kind) -> bool:
    if kind is Kind.ANY:
        return True
    if kind is Kind.GENERATOR:
        from ..models.protocols import is_generator, is_plain_z_generator

        return is_generator(model) or is_plain_z_generator(model)
    if kind is Kind.STYLEGAN2:
        from ..models.stylegan2 import Generator

        return isinstance(model, Generator)
    if kind is Kind.TRANSLATION:
        return hasattr(model, "pad_multiple")
    if kind is Kind.FAST_STYLE:
        from ..models.fast_style import TransformerNet

        return isinstance(model, TransformerNet)
    if kind is Kind.ADAIN_DECODER:
        from ..models.adain import AdaINDecoder

        return isinstance(model, AdaINDecoder)
    if kind is Kind.ENCODER:
        from ..models.vgg import VGGEncoder

        return isinstance(model, VGGEncoder)
    return arch == "mnist_digit_classifier"


@dataclass(frozen=True)
class ModelInfo:
    """Where a loaded model came from: ``name`` (as asked), ``path`` (the file read), ``meta`` (its metadata:
    ``arch``, ``arch_kwargs``, ``source_sha256``, ...). ``str()`` gives the name."""

    name: str
    path: Path
    meta: Dict[str, Any] = field(default_factory=dict)

    @property
    def arch(self) -> str:
        return str(self.meta.get("arch", ""))

    def __str__(self) -> str:
        return self.name


def load(name_or_path: PathOrName, expect: Kind = Kind.ANY, device: Optional[Union[str, torch.device]] = None, *,
         progress: Optional[ProgressFn] = None, converter: Optional[str] = None, offline: Optional[bool] = None,
         freeze: bool = False) -> Tuple[Any, ModelInfo]:
    """Resolve ``name_or_path`` and build its model.

    Args:
        name_or_path: a name from ``imgforge weights list`` or a file (our ``.safetensors``, or an upstream format
            that a converter reads: ``.pth``, ``.pt``, NVIDIA ``.pkl``).
        expect: the kind of model wanted; a file holding another kind raises :class:`WeightsError`.
            ``Kind.GENERATOR`` returns the model as a :class:`~imgforge.models.protocols.LatentGenerator`.
        device: where to put the model (default: CPU).
        progress: download progress. converter: force a converter (upstream files only). offline: override
            ``IMGFORGE_OFFLINE``. freeze: turn ``requires_grad`` off (inference, loss networks).
    Returns:
        ``(model in eval mode, ModelInfo)``.
    """
    from . import store

    model, meta = store.load_model(name_or_path, progress, converter=converter, offline=offline)
    path = Path(str(meta.get("path", os.fspath(name_or_path))))
    if not _is_kind(model, str(meta.get("arch", "")), expect):
        raise WeightsError(f"{path}: holds a {meta.get('arch')!r} network, not {expect.value}")
    if expect is Kind.GENERATOR:
        from ..models.protocols import as_generator

        model = as_generator(model, str(path))
    model.eval()
    if freeze:
        model.requires_grad_(False)
    if device is not None:
        model = model.to(device)
    return model, ModelInfo(os.fspath(name_or_path), path, meta)


def published_if_present(name: str) -> Optional[Path]:
    """The local file of published weights ``name`` when one exists (never downloads), else None -- the caller
    then uses the embedded network shipped in ``weights/``."""
    from . import store

    try:
        return store.resolve(name, offline=True)
    except WeightsError:
        return None
