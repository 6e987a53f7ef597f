"""imgforge.metrics: image-quality and generative-model metrics (pure tensors/arrays, a progress callback, no UI).

Paired image distances (:mod:`.image`): :func:`mse`, :func:`psnr`, :func:`ssim` -- the project's one SSIM.
Feature-based scores (:mod:`.scores`): :func:`fid`, :func:`fid_from_stats`, :func:`kid`, :func:`inception_score`,
:func:`precision_recall`, :func:`parzen`; :func:`perceptual_path_length` (:mod:`.ppl`); LPIPS (:mod:`.lpips`).
The FID Inception network is in :mod:`.inception`, the resize protocols in :mod:`.resize`, the feature extractors
(``inception``, ``digits``, ``embedded``) in :mod:`.extractors`; file inputs, caching and weight resolution are in
:mod:`imgforge.jobs.metrics` (``imgforge metrics ...``).

Example::

    from imgforge.metrics import fid, kid
    from imgforge.metrics.extractors import build_extractor
    ex = build_extractor("digits")                      # or ("inception", "pt_inception-2015-12-05-6726825d.pth")
    f_real = ex(real_uint8)["features"]                 # (N, 3, H, W) images, 0..255
    f_fake = ex(fake_uint8)["features"]
    print(fid(f_real, f_fake), kid(f_real, f_fake, subset_size=100)["value"])
"""

from .image import SSIM_K1, SSIM_K2, SSIM_SIGMA, SSIM_WINDOW, gaussian_window, mse, psnr, psnr_from_mse, ssim
from .ppl import perceptual_path_length
from .scores import feature_stats, fid, fid_from_stats, inception_score, kid, parzen, precision_recall

__all__ = [
    "SSIM_K1", "SSIM_K2", "SSIM_SIGMA", "SSIM_WINDOW", "gaussian_window", "mse", "psnr", "psnr_from_mse", "ssim",
    "feature_stats", "fid", "fid_from_stats", "inception_score", "kid", "parzen", "precision_recall",
    "perceptual_path_length",
]
