"""The one interface every codec implements, classical or learned.

A codec turns an RGB image (``numpy.ndarray``, shape H×W×3, dtype uint8) and
one quality setting into the bytes it would store, and those bytes back into
an image of the same shape. Codecs never compute metrics; the runner does.

Codecs are found through the entry-point group ``codecbench.codecs`` (see
``codecbench.registry``); a third-party package registers one the same way the
built-in ones do::

    [project.entry-points."codecbench.codecs"]
    mycodec = "mypackage.module:MyCodec"
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from codecbench.errors import CodecError, check_rgb
from codecbench.plugins import Availability


@dataclass(frozen=True)
class SettingSpec:
    """The codec's single quality knob.

    ``name`` names the knob (``quality``, ``ratio``, ``iterations``...),
    ``low``/``high`` bound it (inclusive), ``higher_is_better`` says which
    direction gives higher quality and more bits, ``integer`` whether only
    whole values are meaningful, and ``default_sweep`` lists the settings a
    plain ``codecbench run`` uses (chosen to span about 0.1–2 bpp on Kodak).
    """

    name: str
    low: float
    high: float
    higher_is_better: bool
    default_sweep: tuple[float, ...]
    integer: bool = True
    unit: str = ""

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ValueError(f"setting {self.name}: low {self.low} > high {self.high}")
        for value in self.default_sweep:
            self.validate(value)

    def validate(self, value: float) -> float | int:
        """Return ``value`` in the codec's type, or raise ValueError naming the range."""
        if not (self.low <= value <= self.high):
            raise ValueError(f"{self.name}={value} is outside [{_fmt(self.low)}, {_fmt(self.high)}]")
        if self.integer:
            if float(value) != int(value):
                raise ValueError(f"{self.name}={value} must be a whole number")
            return int(value)
        return float(value)

    def describe(self) -> str:
        direction = "higher = better quality" if self.higher_is_better else "lower = better quality"
        unit = f" {self.unit}" if self.unit else ""
        return f"{self.name} {_fmt(self.low)}–{_fmt(self.high)}{unit} ({direction})"


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


class Codec(ABC):
    """Base class of every codec.

    Subclasses set the class attributes and implement :meth:`encode`,
    :meth:`decode` and :meth:`version`. Options arrive as keyword arguments
    to ``__init__``; a codec rejects options it does not know.
    ``runtime_options`` names the options that cannot change the bytes
    (program paths, devices, threads, timeouts, a weights file whose checksum
    is in the version); every other option is an *identity* option, part of
    the codec's label and so of every cell's key (:mod:`codecbench.variants`).
    ``deterministic`` says whether the same
    input and setting always give the same bytes (true for every built-in
    codec; the regression check relies on it).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    setting: ClassVar[SettingSpec]
    deterministic: ClassVar[bool] = True
    option_names: ClassVar[tuple[str, ...]] = ()
    runtime_options: ClassVar[tuple[str, ...]] = ()
    #: Default limit (wall-clock seconds) of one cell (encode, decode, metrics, rate search) in a sweep;
    #: ``codecbench run --cell-timeout`` overrides it.
    cell_timeout_s: ClassVar[float] = 300.0

    def __init__(self, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.option_names))
        if unknown:
            known = ", ".join(self.option_names) or "none"
            raise CodecError(f"codec {self.name}: unknown option(s) {', '.join(unknown)} (known: {known})")
        self.options: dict[str, Any] = dict(options)

    @abstractmethod
    def version(self) -> str:
        """Version of the library or program underneath, recorded with every result."""

    def availability(self) -> Availability:
        """Whether the codec can run here. Override when it depends on a library or program."""
        return Availability(True)

    def prepare(self) -> None:
        """Do the one-off work before the first encode (load weights, move them to the device).

        The process that computes the cells (worker, in-process executor or
        Dask worker) calls it when it first makes the codec, before any clock
        starts, so that no cell's time includes it; the time it takes is
        recorded once per run in the run manifest (``codec_load_s``). The
        default does nothing.
        """

    def synchronize(self) -> None:
        """Wait until work the codec queued on a device has finished; called before each clock read.

        The default does nothing (CPU work is done when a call returns);
        learned codecs on CUDA wait for the GPU.
        """

    def wants_gpu(self) -> bool:
        """Whether cells of this codec need a GPU: its ``device`` option names a CUDA device.

        On a Dask cluster they go only to workers that declare the GPU resource.
        """
        return str(self.options.get("device", "cpu")).startswith("cuda")

    @abstractmethod
    def encode(self, image: np.ndarray, setting: float | int) -> bytes:
        """Encode an H×W×3 uint8 RGB image at ``setting``; return the complete stored bytes."""

    @abstractmethod
    def decode(self, data: bytes) -> np.ndarray:
        """Decode bytes from :meth:`encode` into an H×W×3 uint8 RGB image."""

    def bitstream_stats(self, data: bytes, width: int, height: int) -> dict[str, float]:
        """Extra per-cell numbers about a bitstream (e.g. bpp before entropy coding).

        Stored with the result under the column ``extra``; the default is none.
        """
        return {}

    def model_size(self) -> dict[str, int]:
        """``parameters`` and ``weights_bytes`` of a learned codec's model(s); none for other codecs."""
        return {}

    def cell_extra(self) -> dict[str, Any]:
        """Numbers about the last encode and decode (e.g. per-stage seconds, the device), merged into ``extra``.

        The runner reads it after the cell's round trips; the default is none.
        """
        return {}

    def round_trip(self, image: np.ndarray, setting: float | int) -> tuple[bytes, np.ndarray]:
        """Encode then decode; checks the decoded shape and dtype."""
        data = self.encode(image, setting)
        decoded = self.decode(data)
        check_rgb(decoded, f"{self.name} decoded image", CodecError)
        if decoded.shape != image.shape:
            raise CodecError(f"{self.name}: decoded shape {decoded.shape} != input shape {image.shape}")
        return data, decoded


@dataclass
class CodecInfo:
    """What ``codecbench codecs`` lists about one registered codec."""

    name: str
    description: str
    version: str
    setting: str
    available: bool
    reason: str = ""
    entry_point: str = ""
    parameters: int | None = None  # learned codecs: parameters of the network (the default setting's)
    weights_bytes: int | None = None  # learned codecs: bytes of all weights files
