"""Converter ``fid_inception``: the FID Inception-v3 ``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid) /
``weights-inception-2015-12-05-6726825d.pth`` (torch-fidelity) state dict, read with ``weights_only=True`` and
checked key for key against :class:`~imgforge.models.inception.FIDInceptionV3` (``num_batches_tracked`` optional)."""

from __future__ import annotations

from pathlib import Path

from .converters import Converted, register_converter, sha256_file


@register_converter("fid_inception")
def convert_fid_inception(path: Path) -> Converted:
    from ..models.inception import ARCH, read_inception_state_dict

    sd = read_inception_state_dict(path)
    return Converted(state_dict=sd, arch=ARCH, arch_kwargs={}, source_sha256=sha256_file(path))
