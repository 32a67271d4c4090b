"""The exceptions of the musicgen package, and how a C status becomes one of them.

Every failure of the C library carries a status and a message that says what failed and where;
the message becomes the exception's text unchanged:

    =========================  =======================================================
    C status                   Python exception
    =========================  =======================================================
    invalid argument           ValueError
    I/O                        OSError (FileNotFoundError when a given path is missing)
    format                     FormatError (a RuntimeError)
    model                      ModelError (a RuntimeError; FileNotFoundError when the
                               model folder is missing)
    device                     DeviceError (a RuntimeError)
    aborted                    AbortedError (a RuntimeError); KeyboardInterrupt when
                               Ctrl-C stopped the call
    out of memory              MemoryError
    internal                   MusicGenError (a RuntimeError)
    =========================  =======================================================
"""
from __future__ import annotations

import errno
import os
from typing import Sequence

__all__ = ["MusicGenError", "ModelError", "FormatError", "DeviceError", "AbortedError", "from_status"]

# The values of musicgen_status (include/musicgen_common.h).
OK = 0
INVALID_ARGUMENT = 1
IO = 2
FORMAT = 3
MODEL = 4
DEVICE = 5
ABORTED = 6
OUT_OF_MEMORY = 7
INTERNAL = 8


class MusicGenError(RuntimeError):
    """A failure reported by libmusicgen; the base of the package's own exceptions.

    ``status`` is the C library's musicgen_status value (an int)."""

    status: int = INTERNAL

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class ModelError(MusicGenError):
    """A model folder is incomplete, inconsistent or holds another kind of model."""

    status = MODEL


class FormatError(MusicGenError):
    """A file or buffer holds data that cannot be used (a corrupt .ecdc, no samples, NaN)."""

    status = FORMAT


class DeviceError(MusicGenError):
    """The requested device is not available (e.g. device="cuda" without a GPU or CUDA build)."""

    status = DEVICE


class AbortedError(MusicGenError):
    """The call was stopped before it finished (e.g. a stream whose consumer went away)."""

    status = ABORTED


def _missing(paths: Sequence[str]) -> str | None:
    for p in paths:
        if p and not os.path.exists(p):
            return p
    return None


def from_status(status: int, message: str, paths: Sequence[str] = ()) -> BaseException:
    """The exception for a failed C call: its status, its message, and the input paths it was given."""
    if status == INVALID_ARGUMENT:
        return ValueError(message)
    if status in (IO, MODEL):
        missing = _missing(paths)
        if missing is not None:
            return FileNotFoundError(errno.ENOENT, message, missing)
        if status == IO:
            return OSError(message)
        return ModelError(message)
    if status == FORMAT:
        return FormatError(message)
    if status == DEVICE:
        return DeviceError(message)
    if status == ABORTED:
        return AbortedError(message)
    if status == OUT_OF_MEMORY:
        return MemoryError(message)
    return MusicGenError(message, status)
