"""A linear generative baseline: principal component analysis of images ("faces are almost linear").

:class:`PCAModel` holds the mean image and the principal directions of a set of images ``(N, C, H, W)`` in [0, 1];
it reconstructs images from their first k coefficients and samples new images with Gaussian coefficients of the
measured variances. Fitted with a thin SVD of the centred data (exact, float64).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import torch
from torch import Tensor

from ..errors import UsageError

__all__ = ["PCAModel", "fit_pca"]

if TYPE_CHECKING:
    from ..models.pca import PCAGenerator


@dataclass(frozen=True)
class PCAModel:
    """mean ``(D,)``, components ``(K, D)`` (orthonormal rows), variances ``(K,)``, explained-variance ratios
    ``(K,)`` and the image shape ``(C, H, W)``."""

    mean: Tensor
    components: Tensor
    variances: Tensor
    explained: Tensor
    shape: tuple[int, int, int]

    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    def encode(self, images: Tensor, k: Optional[int] = None) -> Tensor:
        """Coefficients ``(N, k)`` of images ``(N, C, H, W)`` on the first k components (all by default)."""
        comps = self.components[: k or self.n_components]
        return (images.reshape(images.shape[0], -1).double() - self.mean) @ comps.T

    def decode(self, coeffs: Tensor) -> Tensor:
        """Images ``(N, C, H, W)`` (float32, unclamped) from coefficients ``(N, k)`` on the first k components."""
        k = coeffs.shape[1]
        flat = self.mean + coeffs.double() @ self.components[:k]
        return flat.reshape(coeffs.shape[0], *self.shape).float()

    def reconstruct(self, images: Tensor, k: int) -> Tensor:
        """Projection of ``images`` onto the mean + first k components."""
        return self.decode(self.encode(images, k))

    def as_generator(self, k: Optional[int] = None) -> "PCAGenerator":
        """The first k components as a :class:`~imgforge.models.pca.PCAGenerator` (z ~ N(0, I) gives samples)."""
        from ..models.pca import PCAGenerator

        k = k or self.n_components
        c, h, w = self.shape
        if h != w:
            raise UsageError(f"a PCA generator needs square images, got {w}x{h}")
        g = PCAGenerator(components=k, channels=c, resolution=h)
        g.mean.copy_(self.mean.float())
        g.components.copy_(self.components[:k].float())
        g.std.copy_(self.variances[:k].sqrt().float())
        return g

    def sample(self, n: int, k: Optional[int] = None, generator: Optional[torch.Generator] = None) -> Tensor:
        """``n`` images with coefficients drawn from N(0, variance) on the first k components."""
        k = k or self.n_components
        z = torch.randn(n, k, generator=generator, dtype=torch.float64)
        return self.decode(z * self.variances[:k].sqrt())


def fit_pca(images: Tensor, components: Optional[int] = None) -> PCAModel:
    """Fit PCA to ``images (N, C, H, W)``; keeps ``components`` directions (at most N - 1; default all of them).

    Raises :class:`UsageError` when fewer than 2 images are given or more components are asked than N - 1.
    """
    n = images.shape[0]
    if n < 2:
        raise UsageError(f"PCA needs at least 2 images, got {n}")
    most = min(n - 1, images[0].numel())
    k = most if components is None else components
    if not 1 <= k <= most:
        raise UsageError(f"--components {k} is more than the data allow: {n} images give at most {most} "
                         f"principal components")
    flat = images.reshape(n, -1).double()
    mean = flat.mean(0)
    _, s, vh = torch.linalg.svd(flat - mean, full_matrices=False)
    var = s * s / (n - 1)
    total = var.sum()
    return PCAModel(mean, vh[:k].contiguous(), var[:k], var[:k] / total, tuple(images.shape[1:]))
