"""What a weights file is, from its bytes: :func:`sniff_format` (the one format sniffer of the package; nothing is
unpickled) and :func:`guess_converter` (which converter reads an upstream file, from its format and key names)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from ..errors import InputError, WeightsError
from .manifest import read_safetensors_metadata


def sniff_format(path: Path) -> str:
    """What a weights file is, from its first bytes (nothing is unpickled).

    Returns one of ``"safetensors"``, ``"torch_zip"`` (torch.save >= 1.6), ``"torch_legacy"`` (older torch.save),
    ``"nvidia_pkl"`` (an NVIDIA network pickle), ``"zip"`` (another zip archive), ``"pickle"`` (another pickle),
    ``"unknown"``.
    """
    if read_safetensors_metadata(path) is not None:
        return "safetensors"
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as zf:
                if any(n.endswith("/data.pkl") or n == "data.pkl" for n in zf.namelist()):
                    return "torch_zip"
        except zipfile.BadZipFile:
            return "unknown"
        return "zip"
    # torch's legacy format starts with the pickled magic number 0x1950a86a20f9469cfc6c (protocol 2, LONG1).
    if head.startswith(b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"):
        return "torch_legacy"
    if len(head) > 8 and head[8:9] == b"{":  # a damaged safetensors file (its header length may start with 0x80)
        return "safetensors"
    if head[:1] == b"\x80":
        if b"torch_utils.persistence" in head or b"dnnlib" in head:
            return "nvidia_pkl"
        return "pickle"
    return "unknown"


def guess_converter(path: Path) -> str:
    """Best guess of the converter for an upstream file, from its format and (for torch files) its key names.

    Torch files are read with ``weights_only=True`` (memory-mapped when possible); nothing else is executed. Raises
    :class:`WeightsError` asking for ``--format`` when the file is not recognised.
    """
    fmt = sniff_format(path)
    ask = "pass --format CONVERTER (see `imgforge weights import --help` for the names)"
    if fmt == "nvidia_pkl":
        return "nvidia_stylegan2_pkl"
    if fmt not in ("torch_zip", "torch_legacy"):
        raise WeightsError(f"{path}: cannot tell which converter reads this file (format: {fmt}); {ask}")
    import torch

    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=(fmt == "torch_zip"))
    except Exception as exc:  # UnpicklingError for disallowed globals (e.g. rosinality train files), corrupt files
        if "argparse" in str(exc) and "Namespace" in str(exc):
            return "rosinality_stylegan2"
        raise WeightsError(
            f"{path}: cannot be read safely as a plain state dict ({type(exc).__name__}); {ask}"
        ) from exc
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: holds a {type(obj).__name__}, not a state dict; {ask}")
    keys = [str(k) for k in obj.keys()]
    shapes = {k: tuple(v.shape) for k, v in obj.items() if hasattr(v, "shape")}
    if "g_ema" in keys:
        return "rosinality_stylegan2"
    if any(k.startswith("features.") for k in keys) and any(k.startswith("classifier.") for k in keys):
        return "torchvision_vgg"
    if "conv1.conv2d.weight" in keys and any(k.startswith("res1.") for k in keys):
        return "fast_style"
    if keys and all(k.startswith("model.") for k in keys):
        first = shapes.get("model.0.weight", ())
        if len(first) == 4 and first[-1] == 4:  # a 4x4 conv straight on the input: a PatchGAN discriminator
            raise WeightsError(
                f"{path}: looks like a pix2pix/CycleGAN discriminator (net_D); only generators are converted for "
                "inference: import the matching latest_net_G.pth"
            )
        return "translation_generator"
    if keys and all(k.split(".", 1)[0].isdigit() for k in keys):
        if shapes.get("0.weight") == (3, 3, 1, 1):
            return "adain_vgg_normalised"
        first = shapes.get(keys[0], ())
        if len(first) == 4 and first[1] == 512:
            return "adain_decoder"
    raise WeightsError(f"{path}: a state dict whose keys ({', '.join(keys[:4])}, ...) no converter claims; {ask}")
