"""Exception hierarchy: one root (`BirdcallError`), one subclass per kind of failure.

Every message is one line that names the offending file or parameter and the cause, so a batch job can log
it and go on.
"""

from __future__ import annotations

import os

__all__ = ["BirdcallError", "ParameterError", "AudioLoadError", "DataError", "CheckpointError", "ExportError", "MissingExtraError"]


class BirdcallError(Exception):
    """Root of every exception raised on purpose by birdcall."""


class ParameterError(BirdcallError, ValueError):
    """A function was called with an invalid argument or configuration value."""


class _PathError(BirdcallError):
    """An error about one file: ``str(err)`` is ``"<path>: <cause>"`` on one line."""

    def __init__(self, path: str | os.PathLike, cause: str):
        self.path = os.fspath(path)
        self.cause = " ".join(str(cause).split())  # force one line
        super().__init__(f"{self.path}: {self.cause}")


class AudioLoadError(_PathError):
    """An audio file is missing, empty, corrupt, truncated or not audio."""


class DataError(_PathError):
    """A data set file (metadata CSV, label table, solution/submission) is malformed."""


class CheckpointError(_PathError):
    """A model file cannot be read or does not carry what birdcall needs."""


class ExportError(BirdcallError):
    """A model could not be exported or the exported graph does not match torch."""


class MissingExtraError(BirdcallError, ImportError):
    """An optional extra (BirdNET: ``make birdnet``) is needed and not installed; the message names the extra,
    what is missing and how to install it, on one line."""
