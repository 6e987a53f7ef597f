"""A small digit classifier (arch ``mnist_digit_classifier``): ``(N, 1 or 3, 32, 32)`` images in [0, 1] (white ink
on black; 3-channel input is averaged to grey) -> ``(N, 10)`` logits. Data and the shipped weights:
:mod:`imgforge.data.mnist`."""

from __future__ import annotations

import torch
import torch.nn as nn

from .registry import register

CLASSIFIER_ARCH = "mnist_digit_classifier"


@register(CLASSIFIER_ARCH)
class DigitClassifier(nn.Module):
    """A small CNN for 32x32 digits: ``(N, C, 32, 32)`` in [0, 1] (C = 1, or 3 averaged to grey) -> ``(N, 10)``
    logits. About 120k parameters; ~99 % on the held-out MNIST digits once trained (see the recipe)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        w = int(width)
        self.width = w
        self.features = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(), nn.Conv2d(w, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(2 * w * 16, 10))

    def arch_kwargs(self) -> dict:
        return {"width": self.width}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 3:
            x = x.mean(1, keepdim=True)
        if x.shape[-2:] != (32, 32):
            raise ValueError(f"DigitClassifier takes 32x32 images, got {tuple(x.shape[-2:])}")
        return self.head(self.features(x))
