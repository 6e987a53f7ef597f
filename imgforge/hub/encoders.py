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
from .loader import published_if_present
from ..progress import ProgressFn
from ..models.vgg import VGGEncoder

EMBEDDED_NAME = "imgforge-vgg19-embedded"
EMBEDDED_FILE = EMBEDDED_NAME + ".safetensors"


def embedded_encoder_path() -> Path:
    """Path of the shipped embedded encoder file (it may be missing in a partial install)."""
    from .manifest import repo_weights_dir

    return repo_weights_dir() / EMBEDDED_FILE


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
    from .loader import Kind, load

    if path is None:
        emb = embedded_encoder_path()
        if not emb.is_file():
            raise WeightsError(
                f"the embedded encoder {emb} is missing (a partial install?); reinstall imgforge, or pass a torchvision "
                "VGG-19 file (vgg19-dcbb9e9d.pth), e.g. after `imgforge weights fetch vgg19`"
            )
        model, _ = load(emb, Kind.ENCODER, device, freeze=True)
        desc = (
            f"embedded encoder ({EMBEDDED_NAME}, random-feature VGG-19); "
            "for ImageNet VGG-19 run `imgforge weights fetch vgg19`"
        )
        return model, desc
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"encoder file not found: {p}")
    if p.suffix == ".safetensors":
        model, info = load(p, Kind.ENCODER, device, freeze=True)
        return model, f"{info.meta.get('name') or p.stem} ({info.arch}, from {p.name})"
    try:
        model, info = load(p, Kind.ENCODER, device, converter="torchvision_vgg", freeze=True)
        what = f"torchvision {info.arch}"
    except WeightsError as first:
        try:  # pytorch-AdaIN's vgg_normalised.pth also has the named layers Gatys needs
            model, info = load(p, Kind.ENCODER, device, converter="adain_vgg_normalised", freeze=True)
            what = "AdaIN vgg_normalised"
        except WeightsError:
            raise first from None
    return model, f"{what} from {p.name}"


def style_encoder_for(spec: Optional[str], published: str = "vgg19", *,
                      device: Optional[Union[str, torch.device]] = None, progress: Optional[ProgressFn] = None
                      ) -> Tuple[VGGEncoder, str]:
    """The encoder named by ``spec`` (a weights name or file, resolved through the weights store, downloading when
    allowed) or, when None, the ``published`` one if it is present locally, else the embedded encoder.
    Returns ``(encoder, one-line description)``."""
    from .store import resolve

    if spec is not None:
        return load_style_encoder(resolve(spec, progress=progress), device=device)
    return load_style_encoder(published_if_present(published), device=device)


def resolve_perceptual_encoder(spec: Optional[str] = None, *, device: Optional[torch.device] = None,
                               progress: Optional[ProgressFn] = None) -> Tuple[VGGEncoder, str]:
    """The encoder of the inversion loss and a one-line description saying which it is.

    ``spec`` (a weights name such as ``vgg16`` or a file) is resolved through the weights store (downloading when
    allowed). ``None``: the published torchvision VGG-16 if a local copy exists (never downloads), else the embedded
    encoder shipped in ``weights/``. Raises :class:`~imgforge.errors.WeightsError` when none is available.
    """
    if spec is not None:
        return style_encoder_for(spec, device=device, progress=progress)
    path = published_if_present("vgg16")
    if path is None:
        try:
            return load_style_encoder(None, device=device)
        except WeightsError as exc:
            raise WeightsError(
                f"no perceptual encoder: the published VGG-16 is not present and {exc}; run "
                "`imgforge weights fetch vgg16`, pass --encoder FILE, or use --loss mse"
            ) from None
    enc, desc = load_style_encoder(path, device=device)
    return enc, desc + " (published ImageNet VGG-16)"
