"""imgforge.metrics: image-quality and generative-model metrics (pure tensors/arrays, a progress callback, no UI).

Paired image distances (:mod:`.image`): :func:`mse`, :func:`psnr`, :func:`ssim` -- the project's one SSIM.
Feature-based scores are in :mod:`.scores` (FID, KID, IS, precision/recall, Parzen), :mod:`.ppl` (perceptual path
length), the Inception network in :mod:`.inception`, the resize protocols in :mod:`.resize` and the feature
extractors in :mod:`.extractors`.
"""

from .image import SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_WINDOW, gaussian_window, mse, psnr, psnr_from_mse, ssim

__all__ = ["SSIM_K1", "SSIM_K2", "SSIM_SIGMA", "SSIM_WINDOW", "gaussian_window", "mse", "psnr", "psnr_from_mse", "ssim"]
