"""One error hierarchy for codecbench, and the one check of an image array.

Every error codecbench raises on purpose derives from :class:`CodecbenchError`;
each layer has its own subclass. The command line maps them to exit codes in
one place (``codecbench.cli``): :class:`UsageError` and its subclasses exit
with 2 (bad options or input files, nothing computed), every other
``CodecbenchError`` with 1. The messages name the file, option or item and the
reason, so the command line prints them without a traceback.

The layer classes also derive from the built-in exception they replaced
(``ValueError`` or ``RuntimeError``), so ``except ValueError`` in user code
keeps working.

=================  ==========================================================
layer              classes
=================  ==========================================================
data               :class:`DataError` → ``DatasetError`` (→ ``UnknownDatasetError``,
                   also a usage error), ``ImageError``,
                   ``DownloadError``, ``ChecksumError``, ``ArchiveError``
codec              :class:`CodecError` → ``CodecUnavailable``, ``EntropyError``
                   (a learned bitstream that cannot be decoded)
metric             :class:`MetricError` → ``MetricUnavailable``
store              :class:`StoreError`
executor           :class:`ExecutorError` (a Dask cluster that cannot be reached, is lost, or has
                   workers with other versions)
usage              :class:`UsageError` → ``BaselineError`` (a baseline or
                   check input that cannot be used), ``ReferenceCurveError``
                   (an unreadable published curve)
training           :class:`TrainingError`
=================  ==========================================================
"""

from __future__ import annotations

from typing import Any


class CodecbenchError(Exception):
    """Base of every error codecbench raises on purpose; ``exit_code`` is the command line's exit status."""

    exit_code = 1


# -- usage ----------------------------------------------------------------------


class UsageError(CodecbenchError, ValueError):
    """Bad options or input files, found before any work (exit code 2)."""

    exit_code = 2


class BaselineError(UsageError):
    """A baseline or results directory a regression check cannot use; the message names the file and the reason."""


class ReferenceCurveError(UsageError):
    """A published reference curve is unreadable or not in CompressAI's results layout; the message names it."""


# -- data -------------------------------------------------------------------------


class DataError(CodecbenchError):
    """Datasets, image files and downloads."""


class DatasetError(DataError, RuntimeError):
    """A dataset cannot be found, verified or fetched; the message says which files and what to do."""


class UnknownDatasetError(UsageError, DatasetError):
    """A dataset spec that names no registered dataset, no folder and no patch set (a usage error, exit 2)."""


class ImageError(DataError, ValueError):
    """An image file cannot be used (corrupt, unsupported mode or depth, too small); the message names it."""


class DownloadError(DataError, RuntimeError):
    """A download failed (network, HTTP status, interrupted)."""


class ChecksumError(DataError, RuntimeError):
    """A downloaded or stored file does not have the published checksum."""


class ArchiveError(DataError, RuntimeError):
    """An archive is unreadable or holds members that would escape the target folder."""


# -- codecs -----------------------------------------------------------------------


class CodecError(CodecbenchError, RuntimeError):
    """A codec failed to encode or decode (bad input, library or program error)."""


class CodecUnavailable(CodecError):
    """The codec cannot run on this machine; the message says why and how to fix it."""


class EntropyError(CodecError, ValueError):
    """An entropy-coded payload cannot be decoded (damaged or truncated)."""


# -- metrics ----------------------------------------------------------------------


class MetricError(CodecbenchError, ValueError):
    """A metric cannot be computed on these inputs (unknown name, wrong shapes, image too small)."""


class MetricUnavailable(MetricError, RuntimeError):
    """A metric cannot run on this machine (missing package or weights); the message says why."""


# -- store and training -------------------------------------------------------------


class StoreError(CodecbenchError, RuntimeError):
    """A results directory cannot be read or written; the message names the file and line."""


class ExecutorError(CodecbenchError, RuntimeError):
    """Cells cannot be sent out: the cluster is unreachable, lost, or its workers differ from the driver."""


class TrainingError(CodecbenchError, RuntimeError):
    """Training or exporting a learned codec cannot proceed (bad data, options or checkpoint)."""


# -- the one image-array check -------------------------------------------------------


def check_rgb(image: Any, what: str = "image", error: type[Exception] = ValueError) -> None:
    """Raise ``error`` unless ``image`` is an H×W×3 ``numpy`` uint8 array (codecbench's image type).

    Each layer passes its own error class (``CodecError`` for codec output,
    ``MetricError`` for metric inputs...); ``what`` names the array in the message.
    """
    import numpy as np

    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise error(f"{what} must be an H×W×3 uint8 RGB array, got shape {shape} dtype {dtype}")
