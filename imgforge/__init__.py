"""imgforge: neural image editing and translation (style transfer, pix2pix/CycleGAN, StyleGAN2 editing)."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "load_generator"]


def __getattr__(name: str):  # lazy, so that `import imgforge` stays light (no torch import)
    if name == "load_generator":
        from .generator_api import load_generator

        return load_generator
    raise AttributeError(f"module 'imgforge' has no attribute {name!r}")
