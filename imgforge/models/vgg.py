"""VGG feature extractors for the style-transfer losses and the AdaIN encoder.

Two on-disk layouts are mirrored exactly, so published files load with ``strict=True``:

- torchvision VGG-16 / VGG-19 (``vgg16-397923af.pth``, ``vgg19-dcbb9e9d.pth``): the ``features`` Sequential with keys
  ``features.<i>.weight|bias`` where ``i`` counts every child (conv, ReLU, max-pool). 3x3 convs with zero padding 1,
  2x2 max-pools in floor mode. The classifier is not part of these modules (the converter drops ``classifier.*``).
  Input normalisation for ImageNet weights is built in: ``(x - mean) / std`` on RGB in [0, 1].
- pytorch-AdaIN ``vgg_normalised.pth``: a bare Sequential (keys ``<i>.weight|bias``) that starts with a 1x1 conv
  (3 -> 3; in the published file it turns RGB in [0, 1] into mean-subtracted BGR in 0..255), then reflection padding +
  3x3 conv + ReLU per layer and 2x2 max-pools with ``ceil_mode=True``. It takes RGB in [0, 1] as it is.

Every encoder takes RGB ``x: (B, 3, H, W)`` float in [0, 1] (see :attr:`VGGEncoder.input_range`), applies its own
normalisation, and returns the requested named activations, computing only up to the deepest one::

    enc = build("vgg19")
    feats = enc(x, layers=("relu1_1", "relu4_2"))   # {"relu1_1": (B, 64, H, W), "relu4_2": (B, 512, H/8, W/8)}

Layer names: ``conv<b>_<k>`` (before the ReLU), ``relu<b>_<k>`` (after it), ``pool<b>``; the AdaIN layout also has
``conv0`` (its leading 1x1 conv).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
from torch import Tensor

from .registry import register

# torchvision's ``cfgs``: "D" = vgg16, "E" = vgg19; ints are conv widths, "M" a max-pool.
_CFGS: Dict[str, List[Union[int, str]]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
DEFAULT_WIDTHS: Tuple[int, ...] = (64, 128, 256, 512, 512)

# Input conventions (mean, std) applied as ``(x * scale - mean) / std`` on RGB in [0, 1]; ``bgr`` flips channels first.
_NORMALISATIONS: Dict[str, Dict[str, object]] = {
    # torchvision ImageNet weights (IMAGENET1K_V1): RGB in [0, 1].
    "imagenet": {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "scale": 1.0, "bgr": False},
    # torchvision VGG16_Weights.IMAGENET1K_FEATURES (amdegroot): RGB in 0..255 minus the mean pixel.
    "imagenet_255": {"mean": (0.48235, 0.45882, 0.40784), "std": (1 / 255, 1 / 255, 1 / 255), "scale": 1.0, "bgr": False},
    # Caffe VGG (neural-style-pt's vgg19-d01eb7cb.pth): BGR in 0..255 minus the mean pixel, no std.
    "caffe_bgr": {"mean": (103.939, 116.779, 123.68), "std": (1.0, 1.0, 1.0), "scale": 255.0, "bgr": True},
}


def vgg_layer_names(arch: str = "vgg19") -> List[str]:
    """Names of the children of torchvision's ``features`` Sequential, in order (index = child index)."""
    names: List[str] = []
    block, k = 1, 1
    for v in _CFGS[arch]:
        if v == "M":
            names.append(f"pool{block}")
            block, k = block + 1, 1
        else:
            names += [f"conv{block}_{k}", f"relu{block}_{k}"]
            k += 1
    return names


def conv_indices(arch: str = "vgg19") -> List[int]:
    """Child indices of the convs in torchvision's ``features`` (the ``N`` of ``features.N.weight``)."""
    return [i for i, n in enumerate(vgg_layer_names(arch)) if n.startswith("conv")]


class VGGEncoder(nn.Module):
    """Common forward logic: run the layer stack up to the deepest requested named layer.

    Subclasses fill ``self._names`` (name -> child index) and implement :meth:`_stack` and :meth:`normalize`.
    """

    #: RGB value range the encoder expects from callers (normalisation happens inside).
    input_range: Tuple[float, float] = (0.0, 1.0)
    #: one-line description of the input convention.
    normalization: str = ""

    def __init__(self) -> None:
        super().__init__()
        self._names: Dict[str, int] = {}

    def _stack(self) -> List[nn.Module]:
        raise NotImplementedError

    def normalize(self, x: Tensor) -> Tensor:
        """Map RGB ``x: (B, 3, H, W)`` in [0, 1] to what the first conv expects."""
        raise NotImplementedError

    @property
    def layer_names(self) -> List[str]:
        """Every named layer this encoder can return, shallow to deep."""
        return sorted(self._names, key=self._names.__getitem__)

    @property
    def last_layer(self) -> str:
        """The deepest layer built (weights of deeper layers are not part of the model)."""
        return self.layer_names[-1]

    def channels(self, layer: str) -> int:
        """Number of channels of ``layer``'s output."""
        idx = self._index(layer)
        for m in reversed(self._stack()[: idx + 1]):
            if isinstance(m, nn.Conv2d):
                return m.out_channels
        return 3

    def _index(self, name: str) -> int:
        try:
            return self._names[name]
        except KeyError:
            raise KeyError(
                f"unknown layer {name!r} for {type(self).__name__} (built up to {self.last_layer}); "
                f"known: {', '.join(self.layer_names)}"
            ) from None

    def forward(self, x: Tensor, layers: Optional[Sequence[str]] = None) -> Dict[str, Tensor]:
        """Named activations.

        Args:
            x: (B, 3, H, W) float RGB in [0, 1].
            layers: names to return (default: the last layer built). Only the layers up to the deepest one run.
        Returns:
            ``{name: (B, C, H_l, W_l)}`` for each requested name, in the order asked.
        """
        if layers is None:
            layers = (self.last_layer,)
        if isinstance(layers, str):
            layers = (layers,)
        wanted: Dict[int, List[str]] = {}
        for name in layers:
            wanted.setdefault(self._index(name), []).append(name)
        out: Dict[str, Tensor] = {}
        if not wanted:
            return out
        h = self.normalize(x)
        last = max(wanted)
        for i, m in enumerate(self._stack()[: last + 1]):
            h = m(h)
            for name in wanted.get(i, ()):
                out[name] = h
        return {name: out[name] for name in layers}


def _resolve_last(names: List[str], last_layer: Optional[str], arch: str) -> int:
    if last_layer is None:
        return len(names) - 1
    if last_layer not in names:
        raise ValueError(f"{arch}: unknown last_layer {last_layer!r}; choose one of {', '.join(names)}")
    return names.index(last_layer)


class TorchvisionVGG(VGGEncoder):
    """torchvision VGG ``features`` (no batch norm) as a named-layer encoder.

    Args:
        arch: ``"vgg16"`` or ``"vgg19"``.
        last_layer: build only up to this layer (e.g. ``"relu5_1"``); default: all of ``features`` (``pool5``).
        widths: conv widths of the five blocks (default torchvision's 64, 128, 256, 512, 512).
        normalization: input convention of the weights: ``"imagenet"`` (torchvision, default), ``"imagenet_255"``
            (torchvision's IMAGENET1K_FEATURES file), ``"caffe_bgr"`` (Caffe-converted VGG of neural-style-pt).

    State dict: ``features.<i>.weight`` (C_out, C_in, 3, 3) and ``features.<i>.bias`` (C_out,) for the conv children.
    """

    def __init__(
        self,
        arch: str = "vgg19",
        last_layer: Optional[str] = None,
        widths: Optional[Sequence[int]] = None,
        normalization: str = "imagenet",
    ) -> None:
        super().__init__()
        if arch not in _CFGS:
            raise ValueError(f"unknown VGG configuration {arch!r}; choose vgg16 or vgg19")
        if normalization not in _NORMALISATIONS:
            raise ValueError(f"unknown normalization {normalization!r}; choose one of {', '.join(_NORMALISATIONS)}")
        widths = tuple(int(w) for w in (widths or DEFAULT_WIDTHS))
        if len(widths) != 5:
            raise ValueError(f"widths must give 5 block widths, got {widths}")
        names = vgg_layer_names(arch)
        last = _resolve_last(names, last_layer, arch)
        layers: List[nn.Module] = []
        c_in, block = 3, 0
        for v in _CFGS[arch]:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                block += 1
            else:
                c_out = widths[block]
                layers += [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                c_in = c_out
        self.features = nn.Sequential(*layers[: last + 1])
        self._names = {n: i for i, n in enumerate(names[: last + 1])}
        self.arch = arch
        self.normalization_name = normalization
        spec = _NORMALISATIONS[normalization]
        self._bgr = bool(spec["bgr"])
        self._scale = float(spec["scale"])  # type: ignore[arg-type]
        self.register_buffer("mean", torch.tensor(spec["mean"], dtype=torch.float32).reshape(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec["std"], dtype=torch.float32).reshape(3, 1, 1), persistent=False)
        self.normalization = {
            "imagenet": "RGB in [0,1], (x - [0.485,0.456,0.406]) / [0.229,0.224,0.225]",
            "imagenet_255": "RGB in 0..255 minus [123.0,117.0,104.0] (x*255 - mean*255)",
            "caffe_bgr": "BGR in 0..255 minus the Caffe mean pixel [103.939,116.779,123.68]",
        }[normalization]

    def _stack(self) -> List[nn.Module]:
        return list(self.features)

    def normalize(self, x: Tensor) -> Tensor:
        """``(x - mean) / std`` in x's dtype, subtraction first then a true division (as torchvision's Normalize)."""
        if self._bgr:
            x = x.flip(1)
        if self._scale != 1.0:
            x = x * self._scale
        mean = self.mean.to(dtype=x.dtype)
        std = self.std.to(dtype=x.dtype)
        return (x - mean) / std


@register("vgg19")
def vgg19(
    last_layer: Optional[str] = None, widths: Optional[Sequence[int]] = None, normalization: str = "imagenet"
) -> TorchvisionVGG:
    """torchvision VGG-19 ``features`` (see :class:`TorchvisionVGG`)."""
    return TorchvisionVGG("vgg19", last_layer=last_layer, widths=widths, normalization=normalization)


@register("vgg16")
def vgg16(
    last_layer: Optional[str] = None, widths: Optional[Sequence[int]] = None, normalization: str = "imagenet"
) -> TorchvisionVGG:
    """torchvision VGG-16 ``features`` (see :class:`TorchvisionVGG`)."""
    return TorchvisionVGG("vgg16", last_layer=last_layer, widths=widths, normalization=normalization)


def normalised_layer_names() -> List[str]:
    """Child names of pytorch-AdaIN's ``vgg`` Sequential (``""`` for the unnamed reflection pads)."""
    names = ["conv0"]
    for b, n_conv in enumerate((2, 2, 4, 4, 4), start=1):
        for k in range(1, n_conv + 1):
            names += ["", f"conv{b}_{k}", f"relu{b}_{k}"]
        if b < 5:
            names.append(f"pool{b}")
    return names


class VGGNormalised(VGGEncoder):
    """pytorch-AdaIN's ``vgg`` (``vgg_normalised.pth``): 53 children, keys ``<i>.weight|bias``.

    Child 0 is a 1x1 conv 3 -> 3 (no padding); every 3x3 conv is preceded by ``ReflectionPad2d(1)`` and followed by a
    ReLU; max-pools are 2x2, stride 2, ``ceil_mode=True``. Input: RGB in [0, 1], used as it is (the 1x1 conv holds the
    normalisation). ``relu4_1`` is child 30, the output of the encoder AdaIN uses.

    Args:
        last_layer: build only up to this layer (default ``"relu5_4"``, the whole file).
    """

    normalization = "RGB in [0,1] as is (the leading 1x1 conv normalises)"

    def __init__(self, last_layer: Optional[str] = None) -> None:
        super().__init__()
        names = normalised_layer_names()
        last = _resolve_last([n or f"_pad{i}" for i, n in enumerate(names)], last_layer, "vgg19_normalised")
        c_in = 3
        widths = iter([64, 64, 128, 128] + [256] * 4 + [512] * 8)
        for i, name in enumerate(names[: last + 1]):
            m: nn.Module
            if name == "conv0":
                m = nn.Conv2d(3, 3, kernel_size=1)
            elif name == "":
                m = nn.ReflectionPad2d((1, 1, 1, 1))
            elif name.startswith("conv"):
                c_out = next(widths)
                m = nn.Conv2d(c_in, c_out, kernel_size=3)
                c_in = c_out
            elif name.startswith("relu"):
                m = nn.ReLU()
            else:
                m = nn.MaxPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True)
            self.add_module(str(i), m)
        self._names = {n: i for i, n in enumerate(names[: last + 1]) if n}

    def _stack(self) -> List[nn.Module]:
        return list(self._modules.values())  # type: ignore[arg-type]

    def normalize(self, x: Tensor) -> Tensor:
        return x


@register("vgg19_normalised")
def vgg19_normalised(last_layer: Optional[str] = None) -> VGGNormalised:
    """pytorch-AdaIN's ``vgg_normalised`` encoder (see :class:`VGGNormalised`)."""
    return VGGNormalised(last_layer=last_layer)
