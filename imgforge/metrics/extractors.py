"""Feature extractors for the distribution metrics, each labelled so numbers from different ones are never mixed.

Every extractor takes uint8-valued images ``(N, 3, H, W)`` (float or uint8, 0..255) and returns
``{"features": (N, D) float32, "logits": (N, C) float32}``; ``name``, ``resize`` and ``weights_sha256`` go into
every result.

* ``inception`` -- :class:`InceptionExtractor`: the FID Inception-v3 (:mod:`.inception`) on 299x299 input resized
  by the chosen protocol (:mod:`.resize`, default ``tf1``). ``features`` = pool3 (2048), ``logits`` = the unbiased
  logits (1008, torch-fidelity's IS feature). Only these numbers compare with published FID / KID / IS tables.
* ``digits`` -- :class:`DigitsExtractor`: the shipped MNIST digit classifier (``weights/mnist-digit-classifier``,
  :mod:`imgforge.data.mnist`) on 32x32 grey input in [0, 1] (RGB averaged; other sizes resized by the protocol).
  ``features`` = its penultimate activations (the 1024 values entering the last linear layer), ``logits`` = its 10
  class logits. Gives digit-FID / digit-IS / recognised fraction / class coverage: comparable only with other
  imgforge digit numbers (the classifier is ours), like the "MNIST classifier FID" of MNIST GAN papers.
* ``embedded`` -- :class:`EmbeddedExtractor`: the embedded random-feature VGG-19 shipped in ``weights/``
  (``imgforge-vgg19-embedded``) on 128x128 input in [0, 1]; ``features`` = global average of relu5_1 (512), no
  logits. For relative comparisons between models on the same data only.

Speed: the network runs through :class:`~imgforge.runtime.Runtime` (device, channels_last). Precision: Inception and
the digit classifier run in float32 -- bf16 moved the Inception pool3 features far outside the compat fixture's
2e-5 tolerance (benchmarks/results/metrics.md); the embedded extractor follows the runtime's precision.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Dict, Optional, Union

import torch
import torch.nn as nn
from torch import Tensor

from ..errors import UsageError
from ..runtime import Runtime
from .resize import DEFAULT_RESIZE, check_protocol, inception_input, resize

EXTRACTORS = ("inception", "digits", "embedded")


def _sha256(path: Optional[Path]) -> str:
    if path is None:
        return ""
    from ..hub.store import sha256_file

    return sha256_file(Path(path))


class Extractor:
    """Base: ``name``, ``resize``, ``weights`` (a label), ``weights_sha256``, ``dim``, ``has_logits``."""

    name = ""
    dim = 0
    has_logits = True
    #: fp32 forced (see module docstring) unless False.
    force_fp32 = True

    def __init__(self, model: nn.Module, *, weights: str, weights_sha256: str, resize: str,
                 runtime: Optional[Runtime] = None) -> None:
        self.resize = check_protocol(resize)
        self.runtime = runtime or Runtime.create("cpu", "fp32")
        self.model = self.runtime.prepare(model)
        self.weights = weights
        self.weights_sha256 = weights_sha256

    @property
    def precision(self) -> str:
        return "fp32" if self.force_fp32 else self.runtime.precision_name

    def _autocast(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext() if self.force_fp32 else self.runtime.autocast()

    def prepare(self, x: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def run(self, x: Tensor) -> Dict[str, Tensor]:  # pragma: no cover - abstract
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, images255: Tensor) -> Dict[str, Tensor]:
        """Features of a batch of 0..255 images ``(N, 3, H, W)``."""
        if images255.dim() != 4 or images255.shape[1] not in (1, 3):
            raise UsageError(f"expected images (N, 1 or 3, H, W), got {tuple(images255.shape)}")
        if images255.shape[1] == 1:
            images255 = images255.expand(-1, 3, -1, -1)
        x = self.runtime.to_input(self.prepare(images255.float()))
        with self._autocast():
            out = self.run(x)
        return {k: v.float().cpu() for k, v in out.items()}

    def label(self) -> Dict[str, str]:
        return {"extractor": self.name, "weights": self.weights, "weights_sha256": self.weights_sha256,
                "resize": self.resize, "precision": self.precision}


class InceptionExtractor(Extractor):
    name = "inception"
    dim = 2048

    def prepare(self, x: Tensor) -> Tensor:
        return inception_input(x, self.resize)

    def run(self, x: Tensor) -> Dict[str, Tensor]:
        out = self.model(x)
        return {"features": out["pool3"], "logits": out["logits_unbiased"]}


class DigitsExtractor(Extractor):
    name = "digits"
    dim = 1024

    def prepare(self, x: Tensor) -> Tensor:
        return resize(x.mean(1, keepdim=True), 32, self.resize) / 255.0

    def run(self, x: Tensor) -> Dict[str, Tensor]:
        m = self.model
        h = m.features(x).flatten(1)  # type: ignore[operator]
        lin = m.head[-1]  # type: ignore[index]
        return {"features": h, "logits": lin(h)}


class EmbeddedExtractor(Extractor):
    name = "embedded"
    dim = 512
    has_logits = False
    force_fp32 = False
    SIZE = 128

    def prepare(self, x: Tensor) -> Tensor:
        return resize(x, self.SIZE, self.resize) / 255.0

    def run(self, x: Tensor) -> Dict[str, Tensor]:
        f = self.model(x, layers=["relu5_1"])["relu5_1"]
        return {"features": f.float().mean(dim=(2, 3))}


def build_extractor(name: str, weights: Optional[Union[str, Path]] = None, *, resize: str = DEFAULT_RESIZE,
                    runtime: Optional[Runtime] = None) -> Extractor:
    """An extractor by name with its weights file (``None``: the shipped default for digits/embedded; Inception has
    no default file here -- the jobs layer resolves one)."""
    if name not in EXTRACTORS:
        raise UsageError(f"--extractor must be one of {', '.join(EXTRACTORS)}, got {name!r}")
    if name == "inception":
        from ..hub.convert_inception import load_fid_inception

        if weights is None:
            raise UsageError("the inception extractor needs a weights file")
        p = Path(weights)
        return InceptionExtractor(load_fid_inception(p), weights=p.name, weights_sha256=_sha256(p), resize=resize,
                                  runtime=runtime)
    if name == "digits":
        from ..data.mnist import default_classifier_path, load_digit_classifier

        p = Path(weights) if weights is not None else default_classifier_path()
        return DigitsExtractor(load_digit_classifier(p), weights=p.name, weights_sha256=_sha256(p), resize=resize,
                               runtime=runtime)
    from ..hub.encoders import embedded_encoder_path, load_style_encoder

    p = Path(weights) if weights is not None else embedded_encoder_path()
    enc, _desc = load_style_encoder(weights)
    return EmbeddedExtractor(enc, weights=p.name, weights_sha256=_sha256(p), resize=resize, runtime=runtime)
