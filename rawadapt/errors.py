"""Typed exceptions of rawadapt.

Every error a user can cause (bad file, bad shape, unknown sensor, bad config...) is a
:class:`RawAdaptError`. The CLI turns one into a single line ``error: <path>: <message>`` and
exit code 2, without a traceback.
"""

from __future__ import annotations

from os import PathLike


class RawAdaptError(Exception):
    """Base class of all errors rawadapt raises on bad input.

    Parameters
    ----------
    message
        What is wrong, in one line.
    path
        The file (or folder) concerned, if any; it prefixes the message.
    """

    exit_code: int = 2

    def __init__(self, message: str, path: str | PathLike[str] | None = None) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class InputFileError(RawAdaptError):
    """A file is missing, unreadable, corrupt, truncated or of an unsupported format."""


class UnsupportedSensorError(RawAdaptError):
    """The file's sensor is not a Bayer sensor (X-Trans, Foveon, linear DNG...)."""


class EmptyFrameError(RawAdaptError):
    """The frame is all zeros or mostly zeros (stripped or broken pixel data)."""


class CFAError(RawAdaptError):
    """An unknown or inconsistent colour filter array pattern."""


class MetadataError(RawAdaptError):
    """Metadata is missing or cannot be parsed (ISO, levels, names, manifest columns)."""


class ShapeError(RawAdaptError):
    """Arrays have the wrong shape, number of channels, or noisy/clean sizes differ."""


class NonFiniteError(RawAdaptError):
    """An array holds NaN or Inf values, or training diverged."""


class UnknownSensorError(RawAdaptError):
    """A sensor is not in a model's vocabulary or not in the profile library."""


class ConfigError(RawAdaptError):
    """A configuration file or option is invalid."""


class CheckpointError(RawAdaptError):
    """A checkpoint or run folder is missing, corrupt or incompatible."""


class RunLockedError(CheckpointError):
    """The run folder is locked by another running process (``RUN/.lock``)."""


class OutputFileError(RawAdaptError):
    """An output cannot be written: it is an input of the command, an existing folder, in a
    read-only folder or under a file, or the disk is full."""


class DatasetError(RawAdaptError):
    """A dataset root is missing, empty, or laid out wrongly."""


class MissingDependencyError(RawAdaptError):
    """An optional extra (bm3d, exifread, tensorboard...) is needed but not installed."""
