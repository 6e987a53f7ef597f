"""The (V)AE commands' file side: load a trained model, read images at its resolution (the tensor-level sampling,
reconstruction and interpolation are in :mod:`imgforge.methods.vae`)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Tuple, Union

import torch

from ..errors import WeightsError
from ..models.vae import VAE

PathLike = Union[str, Path]


def load_vae(weights: PathLike) -> Tuple[VAE, dict]:
    """``(model in eval mode, metadata)`` from a ``vae.safetensors``, a run folder holding one, or a weights name."""
    from ..hub.modelfile import load_model_file
    from ..models.vae import MODEL_NAME

    p = Path(weights).expanduser()
    if p.is_dir():
        p = p / MODEL_NAME
    if not p.is_file():
        from ..hub.store import resolve

        try:
            p = Path(resolve(str(weights)))  # a weights name, e.g. the shipped vae-mnist32
        except WeightsError:
            raise WeightsError(f"{p}: no such file or weights name; give the vae.safetensors of a `imgforge vae "
                               "train` run (or its folder), or a name such as vae-mnist32") from None
    model, meta = load_model_file(p)
    if not isinstance(model, VAE):
        raise WeightsError(f"{p}: holds a {meta.get('arch')!r} model, not a VAE (use the run's vae.safetensors)")
    return model.eval().requires_grad_(False), meta


def read_images(model: VAE, paths: Sequence[PathLike]) -> torch.Tensor:
    """Images ``(N, C, R, R)`` in [0, 1] at the model's resolution and channels."""
    from ..data.stylegan_images import _square_resize
    from ..io import load_image

    r = model.decoder.img_resolution
    c = model.encoder[0].in_channels
    out = []
    for p in paths:
        arr = _square_resize(load_image(p).rgb.permute(1, 2, 0).numpy(), r)
        x = torch.from_numpy(arr.copy()).permute(2, 0, 1).float() / 255.0
        out.append(x.mean(0, keepdim=True) if c == 1 else x)
    return torch.stack(out)
