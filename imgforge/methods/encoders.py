"""Which encoder the optimisation-based style methods use.

:func:`load_style_encoder` returns a published torchvision VGG-19 (or VGG-16) converted on the fly when a path is
given, an imgforge ``.safetensors`` encoder file as is, and otherwise the encoder shipped in ``weights/``: a
random-feature VGG-19 whose recipe is ``weights/recipes/make_embedded_encoder.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple, Union

import torch

from ..errors import WeightsError
from ..models.vgg import VGGEncoder

EMBEDDED_NAME = "imgforge-vgg19-embedded"
EMBEDDED_FILE = EMBEDDED_NAME + ".safetensors"


def embedded_encoder_path() -> Path:
    """Path of the shipped embedded encoder file (it may be missing in a partial install)."""
    from ..hub.manifest import repo_weights_dir

    return repo_weights_dir() / EMBEDDED_FILE


def _finish(model: torch.nn.Module, path: Path, device: Optional[Union[str, torch.device]]) -> VGGEncoder:
    if not isinstance(model, VGGEncoder):
        raise WeightsError(f"{path}: holds a {type(model).__name__}, not a VGG encoder with named layers")
    model = model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if device is not None:
        model = model.to(device)
    return model


def load_style_encoder(
    path: Optional[Union[str, Path]] = None, *, device: Optional[Union[str, torch.device]] = None
) -> Tuple[VGGEncoder, str]:
    """Load the encoder for Gatys style transfer / texture synthesis.

    Args:
        path: ``None`` for the embedded encoder; a torchvision VGG ``.pth`` (``vgg19-dcbb9e9d.pth``,
            ``vgg16-397923af.pth``) or pytorch-AdaIN ``vgg_normalised.pth``, read safely and converted; or an imgforge
            ``.safetensors`` encoder file.
        device: where to put the encoder (default CPU).
    Returns:
        ``(encoder in eval mode with frozen parameters, one-line description for the user)``. The encoder takes RGB
        in [0, 1] and returns named layers (``relu1_1`` ... ``relu5_1``, ``relu4_2`` ...).
    Raises:
        WeightsError: the file is missing, unsafe or not a VGG encoder.
    """
    from ..hub.modelfile import load_model_file

    if path is None:
        emb = embedded_encoder_path()
        if not emb.is_file():
            raise WeightsError(
                f"the embedded encoder {emb} is missing (a partial install?); reinstall imgforge, or pass a torchvision "
                "VGG-19 file (vgg19-dcbb9e9d.pth), e.g. after `imgforge weights fetch vgg19`"
            )
        model, _meta = load_model_file(emb)
        desc = (
            f"embedded encoder ({EMBEDDED_NAME}, random-feature VGG-19); "
            "for ImageNet VGG-19 run `imgforge weights fetch vgg19`"
        )
        return _finish(model, emb, device), desc
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"encoder file not found: {p}")
    if p.suffix == ".safetensors":
        model, meta = load_model_file(p)
        return _finish(model, p, device), f"{meta.get('name') or p.stem} ({meta.get('arch')}, from {p.name})"
    from ..hub.converters import get_converter
    from ..models.registry import build

    try:
        conv = get_converter("torchvision_vgg")(p)
        what = f"torchvision {conv.arch}"
    except WeightsError as first:
        try:  # pytorch-AdaIN's vgg_normalised.pth also has the named layers Gatys needs
            conv = get_converter("adain_vgg_normalised")(p)
            what = "AdaIN vgg_normalised"
        except WeightsError:
            raise first from None
    model = build(conv.arch, **conv.arch_kwargs)
    model.load_state_dict(conv.state_dict, strict=True)
    return _finish(model, p, device), f"{what} from {p.name}"
