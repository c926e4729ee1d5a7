"""The work of one cell: encode, decode, measure. Runs in a worker process (or inline, with ``--in-process``).

The runner plans cells and stores rows; this module computes them. A cell
that fails with an exception (codec error, bad image, wrong output) becomes a
row with its ``error`` message; crashes, hangs and exits are the executor's
business (:mod:`codecbench.workers`).

Rate-targeted cells (``target_bpp``): the codec's setting is searched by
bisection, assuming bpp is monotonic in the setting, for the highest-quality
setting whose bpp is **at or below** the target; when even the lowest-quality
setting is above the target, that setting is used and the row's
``extra.target_met`` is false.

Timing: ``encode_s``/``decode_s`` are wall-clock seconds (``time.perf_counter``)
of one ``encode``/``decode`` call of the codec, excluding image loading,
metrics and the codec's one-off ``prepare`` (weights loading), which runs when
the process first makes the codec. The codec's ``synchronize`` runs before each
clock read (CUDA work is waited for). With ``--timing-repeats R`` the cell's
first round trip is a warm-up and R more are timed: ``encode_s``/``decode_s``
are their medians, and ``extra`` keeps ``encode_s_min``, ``encode_s_max``,
``decode_s_min``, ``decode_s_max`` and ``timing_repeats``.

Determinism: a codec that declares ``deterministic = True`` is encoded twice
on the first cell it meets in each process; different bytes make that cell and
every later cell of the codec in that process an error row (its bpp would not
be reproducible).
"""

from __future__ import annotations

import math
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codecbench.codec import Codec
from codecbench.data.items import ImageItem
from codecbench.errors import CodecbenchError, CodecError
from codecbench.store import cell_key, utc_now

#: Bisection steps for continuous settings in rate-targeted search.
MAX_SEARCH_STEPS = 24


@dataclass(frozen=True)
class Cell:
    """One unit of work; picklable, sent to worker processes."""

    item: ImageItem
    image_sha256: str
    width: int
    height: int
    codec: str
    codec_version: str
    setting: float | None
    target_bpp: float | None
    save_crop: bool
    keep_outputs: bool = False  # hand the bitstream and decoded image back to be kept (--keep-decoded)
    timing_repeats: int = 0  # --timing-repeats: timed round trips after a warm-up (0: time the one round trip)

    def key(self) -> tuple:
        return cell_key(self.row_identity())

    def row_identity(self) -> dict[str, Any]:
        return {
            "dataset": self.item.dataset, "image": self.item.name, "image_sha256": self.image_sha256,
            "width": self.width, "height": self.height, "codec": self.codec,
            "codec_version": self.codec_version, "setting": self.setting, "target_bpp": self.target_bpp,
        }

    def describe(self) -> str:
        """``codec setting S on image`` (or ``target T bpp``), for messages."""
        what = f"setting {self.setting:g}" if self.target_bpp is None else f"target {self.target_bpp:g} bpp"
        return f"{self.codec} {what} on {self.item.dataset}/{self.item.name}"


def create_codec(name: str, options: dict[str, Any]) -> Codec:
    """THE place codecs are made from a name and its options (the command line and every worker use it)."""
    from codecbench import registry

    return registry.create(name, **options)


@dataclass
class CellContext:
    """What a process computing cells keeps between cells: its codecs (made once) and the current image."""

    codec_options: dict[str, dict[str, Any]]
    metric_names: tuple[str, ...]
    codecs: dict[str, Codec] = field(default_factory=dict)
    determinism_checked: set[str] = field(default_factory=set)
    nondeterministic: dict[str, str] = field(default_factory=dict)  # codec -> why it failed the probe
    _image: tuple[tuple[str, int | None], np.ndarray] | None = None

    def codec(self, name: str) -> Codec:
        if name not in self.codecs:
            codec = create_codec(name, self.codec_options.get(name, {}))
            codec.prepare()  # weights loading never lands inside a cell's clock
            self.codecs[name] = codec
        return self.codecs[name]

    def use_image(self, item: ImageItem, image: np.ndarray) -> None:
        """Make ``image``, loaded elsewhere (e.g. passed by another Dask worker), the current image of ``item``."""
        self._image = ((item.path, item.index), image)

    def image(self, item: ImageItem) -> np.ndarray:
        ident = (item.path, item.index)
        if self._image is None or self._image[0] != ident:
            self._image = (ident, item.load())
        return self._image[1]


def limit_torch_threads(threads: int) -> None:
    """torch threads of this process (0: torch's default), without importing torch for it.

    If torch is loaded they are set now; otherwise ``OMP_NUM_THREADS`` is set, which torch
    reads when a learned codec or LPIPS loads it, so that classical cells never load torch.
    """
    if not threads:
        return
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    else:
        os.environ["OMP_NUM_THREADS"] = str(threads)


def bits_per_pixel(n_bytes: int, width: int, height: int) -> float:
    """bpp = 8 × bytes of the stored bitstream / (width × height of the original image)."""
    return 8.0 * n_bytes / (width * height)


def _clock(codec: Codec) -> float:
    codec.synchronize()
    return time.perf_counter()


def _timed_round_trip(codec: Codec, image: np.ndarray, setting: float | int) -> tuple[bytes, np.ndarray, float, float]:
    start = _clock(codec)
    data = codec.encode(image, setting)
    encoded = _clock(codec)
    if not isinstance(data, (bytes, bytearray)):
        raise CodecError(f"encode returned {type(data).__name__}, expected bytes")
    decoded = codec.decode(bytes(data))
    decode_s = _clock(codec) - encoded
    if not isinstance(decoded, np.ndarray) or decoded.shape != image.shape or decoded.dtype != np.uint8:
        raise CodecError(
            f"decoded image has shape {getattr(decoded, 'shape', None)} dtype {getattr(decoded, 'dtype', None)}, "
            f"expected {image.shape} uint8"
        )
    return bytes(data), decoded, encoded - start, decode_s


def _repeated_timing(codec: Codec, image: np.ndarray, setting: float | int, repeats: int
                     ) -> tuple[float, float, dict[str, float]]:
    """(median encode s, median decode s, spread for ``extra``) of ``repeats`` round trips after a warm-up one."""
    times = np.array([_timed_round_trip(codec, image, setting)[2:] for _ in range(repeats)])
    encode, decode = times[:, 0], times[:, 1]
    return float(np.median(encode)), float(np.median(decode)), {
        "timing_repeats": repeats, "encode_s_min": float(encode.min()), "encode_s_max": float(encode.max()),
        "decode_s_min": float(decode.min()), "decode_s_max": float(decode.max())}


def _search_target(codec: Codec, image: np.ndarray, target: float) -> tuple[float | int, tuple, dict[str, Any]]:
    """Highest-quality setting with bpp ≤ target (bisection); returns (setting, round-trip, info)."""
    spec = codec.setting
    height, width = image.shape[:2]
    tried: dict[float, tuple] = {}

    def trial(value: float | int) -> float:
        value = spec.validate(value)
        if value not in tried:
            tried[value] = _timed_round_trip(codec, image, value)
        return bits_per_pixel(len(tried[value][0]), width, height)

    # q maps "quality position" 0..1 onto the setting, low quality at 0.
    worst, best = (spec.low, spec.high) if spec.higher_is_better else (spec.high, spec.low)
    if trial(worst) > target:
        return spec.validate(worst), tried[spec.validate(worst)], {"target_met": False, "search_steps": len(tried)}
    if trial(best) <= target:
        return spec.validate(best), tried[spec.validate(best)], {"target_met": True, "search_steps": len(tried)}
    ok, bad = worst, best  # bpp(ok) ≤ target < bpp(bad)
    log_scale = not spec.integer and spec.low > 0 and spec.high / spec.low > 10
    for _ in range(MAX_SEARCH_STEPS):
        if spec.integer:
            if abs(bad - ok) <= 1:
                break
            mid = (ok + bad) // 2 if ok < bad else (ok + bad + 1) // 2
        else:
            mid = math.sqrt(ok * bad) if log_scale else (ok + bad) / 2
        if trial(mid) <= target:
            ok = mid
        else:
            bad = mid
    chosen = spec.validate(ok)
    return chosen, tried[chosen], {"target_met": True, "search_steps": len(tried)}


def _check_determinism(context: CellContext, name: str, codec: Codec, image: np.ndarray, setting: float | int,
                       data: bytes) -> None:
    """Encode once more on the codec's first cell in this process; raise CodecError if the bytes differ."""
    if name in context.nondeterministic:
        raise CodecError(context.nondeterministic[name])
    if not codec.deterministic or name in context.determinism_checked:
        return
    context.determinism_checked.add(name)
    again = codec.encode(image, setting)
    if again != data:
        context.nondeterministic[name] = (
            f"codec {name} declares deterministic = True but two encodes of the same image and setting gave "
            f"different bytes ({len(data)} and {len(again)} bytes); declare deterministic = False"
        )
        raise CodecError(context.nondeterministic[name])


def execute_cell(context: CellContext, cell: Cell) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Run one cell: encode, decode, measure. Returns (row, crops as PNG bytes by label)."""
    from codecbench import metrics
    from codecbench.previews import preview_png
    from codecbench.store import ResultsStore

    row: dict[str, Any] = cell.row_identity()
    crops: dict[str, bytes] = {}
    try:
        codec = context.codec(cell.codec)
        image = context.image(cell.item)
        extra: dict[str, Any] = {}
        if cell.target_bpp is not None:
            setting, result, extra = _search_target(codec, image, cell.target_bpp)
            row["setting"] = setting
        else:
            setting = codec.setting.validate(cell.setting)
            result = _timed_round_trip(codec, image, setting)
        data, decoded, encode_s, decode_s = result
        _check_determinism(context, cell.codec, codec, image, setting, data)
        if cell.timing_repeats:  # the round trip above was the warm-up
            encode_s, decode_s, spread = _repeated_timing(codec, image, setting, cell.timing_repeats)
            extra.update(spread)
        row.update(bytes=len(data), bpp=bits_per_pixel(len(data), cell.width, cell.height),
                   encode_s=encode_s, decode_s=decode_s)
        row.update(metrics.compute(image, decoded, context.metric_names))
        extra.update(codec.bitstream_stats(data, cell.width, cell.height))
        extra.update(codec.cell_extra())
        row["extra"] = extra or None
        row["error"] = None
        if cell.save_crop:
            crops[ResultsStore.crop_label(cell.codec, cell.setting, cell.target_bpp)] = preview_png(decoded)
        if cell.keep_outputs:
            from codecbench.blobs import OUTPUTS_KEY, cell_outputs

            row[OUTPUTS_KEY] = cell_outputs(data, decoded)
    except Exception as exc:  # a failing cell is recorded, never fatal
        row["error"] = error_message(exc)
    row["finished_at"] = utc_now()
    return row, crops


def error_message(exc: BaseException) -> str:
    """``Type: message``, plus where it was raised for exceptions that are not codecbench's own."""
    if isinstance(exc, (CodecbenchError, ValueError)):
        return f"{type(exc).__name__}: {exc}"
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    location = f" (at {os.path.basename(where.filename)}:{where.lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{location}"


def failed_row(cell: Cell, message: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The row of a cell that produced no result: its identity, the error and ``extra`` (e.g. the failure kind)."""
    return dict(cell.row_identity(), error=message, extra=extra, finished_at=utc_now())

