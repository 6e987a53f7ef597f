"""Typed exceptions. The CLI maps each to one plain line and an exit code; ``--debug`` shows the traceback.

Messages say what was wrong, with which file, and what to do about it.
"""

from __future__ import annotations


class ImgforgeError(Exception):
    """Base class of every error imgforge raises on purpose. ``exit_code`` is what the CLI exits with, ``label``
    the word its one line starts with."""

    exit_code: int = 1
    label: str = "error"


class InputError(ImgforgeError):
    """An input file or argument is missing, unreadable, corrupt, too large or of an unsupported kind."""


class OutputError(ImgforgeError):
    """An output cannot be written (unwritable directory, bad extension, ...)."""


class UsageError(ImgforgeError):
    """Options that contradict each other or are out of range (exit code 2, like a command-line usage error)."""

    exit_code = 2


class WeightsError(ImgforgeError):
    """Weights are missing, of an unknown format, or do not fit the architecture."""


class UnsafeWeightsError(WeightsError):
    """A weights file asks to run code or to build objects a safe loader does not allow."""


class OfflineError(WeightsError):
    """Something must be downloaded but ``IMGFORGE_OFFLINE=1`` is set (or the network is unreachable)."""


class ChecksumError(WeightsError):
    """A downloaded or local file does not have the sha256 the manifest expects."""


class DownloadError(WeightsError):
    """A download failed (HTTP error, connection lost, ...)."""


class TrainingError(ImgforgeError):
    """A training run cannot start or resume (bad dataset, incompatible checkpoint, ...)."""


class ComputeError(ImgforgeError):
    """A computation gave an unusable result (NaN or infinite values); nothing is written."""
