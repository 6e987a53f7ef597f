"""imgforge: neural image editing and translation (style transfer, pix2pix/CycleGAN, StyleGAN2 editing)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
