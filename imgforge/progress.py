"""Progress reporting without any UI dependency.

Library functions take ``progress: ProgressFn | None``. They call it with :class:`ProgressEvent` objects; the CLI
renders them with rich, tests collect them in a list, and ``None`` means silence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional


@dataclass(frozen=True)
class ProgressEvent:
    """One progress update.

    Attributes:
        task: short name of the work ("stylize astronaut.png", "download vgg19", "train").
        step: units done so far (iterations, bytes, images).
        total: units in all, or ``None`` when unknown.
        metrics: numbers to show next to the bar (losses, PSNR, ...), by name.
        message: an optional one-line note ("using the embedded encoder ...").
        unit: what a step counts ("it", "B", "img").
    """

    task: str
    step: int = 0
    total: Optional[int] = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    message: Optional[str] = None
    unit: str = "it"


ProgressFn = Callable[[ProgressEvent], None]


def emit(progress: Optional[ProgressFn], event: ProgressEvent) -> None:
    """Call ``progress(event)`` when a callback is given."""
    if progress is not None:
        progress(event)


def note(progress: Optional[ProgressFn], task: str, message: str) -> None:
    """Send a one-line message (no step change)."""
    emit(progress, ProgressEvent(task=task, message=message))
