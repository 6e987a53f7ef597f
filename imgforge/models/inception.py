"""The FID Inception-v3 (TensorFlow ``inception-2015-12-05`` graph) in the published PyTorch state-dict layout.

This is the network pytorch-fid and torch-fidelity use: their ``pt_inception-2015-12-05-6726825d.pth`` /
``weights-inception-2015-12-05-6726825d.pth`` files (566 entries: 94 conv units ``<unit>.conv.weight`` +
``<unit>.bn.{weight,bias,running_mean,running_var[,num_batches_tracked]}``, then ``fc.weight (1008, 2048)`` and
``fc.bias (1008)``) load into :class:`FIDInceptionV3` strictly. Differences from torchvision's Inception-v3:
BatchNorm eps 0.001, the average-pool branches of ``Mixed_5*``, ``Mixed_6b..e`` and ``Mixed_7b`` do not count the
zero padding (TensorFlow), ``Mixed_7c``'s pool branch is a 3x3 max-pool, 1008 classes, no auxiliary head.

Input: ``(N, 3, 299, 299)`` float, already resized and normalised (see :mod:`imgforge.metrics.resize`).
Outputs (:meth:`FIDInceptionV3.forward`): ``pool3`` (N, 2048) = global average of ``Mixed_7c``,
``logits_unbiased`` = ``pool3 @ fc.weight.T`` (torch-fidelity's Inception-Score feature, no bias),
``logits`` = ``logits_unbiased + fc.bias``; all float32.

Weights are read with ``torch.load(weights_only=True)`` (never an arbitrary unpickle), or from an imgforge
safetensors file. NVIDIA's TorchScript variant (``inception-2015-12-05.pt``, clean-fid / StyleGAN2-ADA) is NOT
supported: a TorchScript archive carries Python/TorchScript code (``code/`` in the zip) that ``torch.jit.load``
compiles and runs, and its parameters are not a state dict we could read without that; use the ``.pth`` file (same
TensorFlow graph, converted by pytorch-fid's author).
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from ..errors import WeightsError
from .registry import register

ARCH = "fid_inception_v3"
#: The published file names; both end in torch.hub's 8-hex-digit sha256 prefix.
PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
TORCH_FIDELITY_FILE = "weights-inception-2015-12-05-6726825d.pth"
SHA256_PREFIX = "6726825d"
PYTORCH_FID_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + PYTORCH_FID_FILE
TORCH_FIDELITY_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + TORCH_FIDELITY_FILE
INPUT_SIZE = 299
N_PARAM_ENTRIES = 566  # with num_batches_tracked


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm (eps 0.001) -> ReLU."""

    def __init__(self, cin: int, cout: int, **kw: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)  # type: ignore[arg-type]
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: Tensor) -> Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg3(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([b3, bd, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for m in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = m(bd)
        return torch.cat([b1, b7, bd, self.branch_pool(_avg3(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    def __init__(self, cin: int, max_pool: bool) -> None:
        super().__init__()
        self.max_pool = bool(max_pool)
        self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg3(x)
        return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)


@register(ARCH)
class FIDInceptionV3(nn.Module):
    """The FID Inception-v3; ``forward(x)`` returns ``{"pool3", "logits_unbiased", "logits"}`` (see module doc)."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def arch_kwargs(self) -> dict:
        return {}

    def pool3(self, x: Tensor) -> Tensor:
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
                     "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(self, name)(x)
        return x.float().mean(dim=(2, 3))

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        pool3 = self.pool3(x)
        unbiased = pool3.mm(self.fc.weight.float().T)
        return {"pool3": pool3, "logits_unbiased": unbiased, "logits": unbiased + self.fc.bias.float()}


def check_state_dict(sd: Mapping[str, object], source: str) -> Dict[str, Tensor]:
    """The tensors of ``sd`` that :class:`FIDInceptionV3` needs (``num_batches_tracked`` optional and ignored);
    :class:`WeightsError` naming missing/unexpected keys or wrong shapes."""
    ref = FIDInceptionV3().state_dict()
    out: Dict[str, Tensor] = {}
    missing: List[str] = []
    for k, v in ref.items():
        t = sd.get(k)
        if t is None:
            if k.endswith("num_batches_tracked"):
                out[k] = v
                continue
            missing.append(k)
            continue
        if not isinstance(t, Tensor):
            raise WeightsError(f"{source}: {k} is a {type(t).__name__}, not a tensor")
        if tuple(t.shape) != tuple(v.shape):
            raise WeightsError(f"{source}: {k} has shape {tuple(t.shape)}, the FID Inception needs {tuple(v.shape)}")
        out[k] = t
    extra = [k for k in sd if k not in ref]
    if missing or extra:
        raise WeightsError(
            f"{source}: not the FID Inception-v3 layout of {PYTORCH_FID_FILE} "
            f"({len(missing)} missing key(s){', e.g. ' + missing[0] if missing else ''}; "
            f"{len(extra)} unexpected{', e.g. ' + extra[0] if extra else ''})")
    return out


def inception_layout() -> List[Tuple[str, Tuple[int, ...]]]:
    """``[(key, shape)]`` of the published layout, in order (566 entries)."""
    return [(k, tuple(v.shape)) for k, v in FIDInceptionV3().state_dict().items()]
