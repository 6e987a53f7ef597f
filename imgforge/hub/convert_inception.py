"""Converter ``fid_inception``: the FID Inception-v3 ``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid) /
``weights-inception-2015-12-05-6726825d.pth`` (torch-fidelity) state dict, read with ``weights_only=True`` and
checked key for key against :class:`~imgforge.models.inception.FIDInceptionV3` (``num_batches_tracked`` optional)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Mapping, Union

from torch import Tensor

from ..errors import WeightsError
from ..models.inception import ARCH, FIDInceptionV3, check_state_dict
from .converters import Converted, register_converter, sha256_file

__all__ = ["read_inception_state_dict", "load_fid_inception", "convert_fid_inception"]


def read_inception_state_dict(path: Union[str, Path]) -> Dict[str, Tensor]:
    """Read the published ``.pth`` (``torch.load(weights_only=True)``) or an imgforge safetensors file and check it."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"Inception weights not found: {p}")
    if p.suffix == ".safetensors":
        from .modelfile import read_model_file

        sd, meta = read_model_file(p)
        if meta.get("arch") not in (None, ARCH):
            raise WeightsError(f"{p}: holds a {meta.get('arch')!r} model, not {ARCH}")
    else:
        from .safe_pickle import load_torch_checkpoint

        obj = load_torch_checkpoint(p, allow=())
        if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
            obj = obj["state_dict"]
        if not isinstance(obj, Mapping):
            raise WeightsError(f"{p}: expected a state dict, got {type(obj).__name__}")
        sd = dict(obj)
    return check_state_dict(sd, str(p))


def load_fid_inception(path: Union[str, Path]) -> FIDInceptionV3:
    """:class:`FIDInceptionV3` with the weights at ``path``, eval mode, frozen."""
    model = FIDInceptionV3()
    model.load_state_dict(read_inception_state_dict(path), strict=True)
    return model.eval().requires_grad_(False)



@register_converter("fid_inception")
def convert_fid_inception(path: Path) -> Converted:
    sd = read_inception_state_dict(path)
    return Converted(state_dict=sd, arch=ARCH, arch_kwargs={}, source_sha256=sha256_file(path))
