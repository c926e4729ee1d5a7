"""Entropy coding of integers with fixed, quantized CDF tables (``constriction`` ANS).

The tables follow CompressAI's layout, so its checkpoints' tables are used as
they are: table ``t`` codes the ``pmf_length[t]`` integers ``offset[t]``,
``offset[t] + 1``, …, plus one *overflow* symbol; row ``t`` of ``cdfs`` holds
the cumulative frequencies (``cdf_length[t] = pmf_length[t] + 2`` entries,
from 0 to 2^``precision``, every symbol at least frequency 1).

A value outside its table's range is coded as the overflow symbol followed by
its distance ``e`` beyond the range (below: ``e = 2·(offset − v) − 1``, above:
``e = 2·(v − offset − pmf_length)``): the bit length b of ``e`` (uniform over
0–63), then the b − 1 bits below its leading 1 in uniform chunks of ≤ 16 bits,
lowest first (Elias-gamma-like, about 6 + b bits).

Coding order: values are pushed on a stack coder (ANS); a decoder pops them in
the reverse order of the pushes. Within one push, values are grouped by table
(ascending) and keep their raster order inside a group; the escapes follow all
table symbols. The probabilities the coder sees are exact dyadic fractions of
the integer tables, so the same tables give the same bytes on every machine.
Payload: the coder's 32-bit words, little-endian.
"""

from __future__ import annotations

import numpy as np

from codecbench.errors import EntropyError

PRECISION = 16  # bits of the tables' total frequency
_ESCAPE_BITS = 64  # alphabet of an escape's bit length
_CHUNK = 16  # bits per escape chunk


def quantized_cdf(pmf: np.ndarray, precision: int = PRECISION) -> np.ndarray:
    """Cumulative integer frequencies (length ``len(pmf) + 1``, 0 … 2^precision) of ``pmf``.

    ``pmf`` (float, including the overflow mass as its last entry) is scaled to
    2^precision and rounded; every symbol keeps frequency ≥ 1, and the rounding
    surplus or deficit is taken from or given to the most probable symbols.
    """
    pmf = np.maximum(np.asarray(pmf, dtype=np.float64), 0.0)
    total = 1 << precision
    if len(pmf) >= total:
        raise EntropyError(f"a table of {len(pmf)} symbols does not fit {precision}-bit frequencies")
    mass = pmf.sum()
    scaled = pmf / mass * total if mass > 0 else np.full(len(pmf), total / len(pmf))
    freq = np.maximum(1, np.round(scaled)).astype(np.int64)
    surplus = int(freq.sum()) - total
    order = np.argsort(-freq, kind="stable")
    k = 0
    while surplus > 0:  # take from the most probable symbols, never below 1
        index = order[k % len(order)]
        take = min(surplus, int(freq[index]) - 1)
        freq[index] -= take
        surplus -= take
        k += 1
    if surplus < 0:
        freq[order[0]] -= surplus
    return np.concatenate([[0], np.cumsum(freq)]).astype(np.int32)


class TableCoder:
    """Codes integer arrays with one table per value (``indexes``), CompressAI's table layout."""

    def __init__(self, cdfs: np.ndarray, cdf_lengths: np.ndarray, offsets: np.ndarray, precision: int = PRECISION) -> None:
        self.cdfs = np.asarray(cdfs, dtype=np.int64)
        self.cdf_lengths = np.asarray(cdf_lengths, dtype=np.int64).reshape(-1)
        self.offsets = np.asarray(offsets, dtype=np.int64).reshape(-1)
        if self.cdfs.ndim != 2 or not (len(self.cdfs) == len(self.cdf_lengths) == len(self.offsets)) or len(self.cdfs) == 0:
            shapes = f"{self.cdfs.shape}, {self.cdf_lengths.shape}, {self.offsets.shape}"
            raise EntropyError(f"entropy tables have inconsistent shapes {shapes}")
        self.precision = precision
        self._models: dict[int, object] = {}

    def _model(self, table: int):
        import constriction

        if table not in self._models:
            cdf = self.cdfs[table, : self.cdf_lengths[table]]
            freq = np.diff(cdf).astype(np.float64)
            if (freq <= 0).any() or cdf[-1] != 1 << self.precision:
                raise EntropyError(f"entropy table {table} is not a valid {self.precision}-bit CDF")
            self._models[table] = constriction.stream.model.Categorical(freq / float(1 << self.precision), perfect=False)
        return self._models[table]

    def _check_indexes(self, indexes: np.ndarray) -> np.ndarray:
        indexes = np.asarray(indexes, dtype=np.int64).reshape(-1)
        if indexes.size and (indexes.min() < 0 or indexes.max() >= len(self.cdfs)):
            raise EntropyError(f"entropy table index out of range 0–{len(self.cdfs) - 1}")
        return indexes

    def push(self, coder, values: np.ndarray, indexes: np.ndarray) -> None:
        """Push ``values`` (integers) coded with tables ``indexes`` (same size) onto the ANS ``coder``."""
        import constriction

        values = np.asarray(values, dtype=np.int64).reshape(-1)
        indexes = self._check_indexes(indexes)
        if values.shape != indexes.shape:
            raise EntropyError(f"{values.size} values but {indexes.size} table indexes")
        raw = values - self.offsets[indexes]
        top = self.cdf_lengths[indexes] - 2  # the overflow symbol
        over = (raw < 0) | (raw >= top)
        symbols = np.where(over, top, raw).astype(np.int32)
        escapes = np.where(raw[over] < 0, -2 * raw[over] - 1, 2 * (raw[over] - top[over]))
        forward: list[tuple[int, object]] = []  # escapes in decoding order: bit length, then the bits below the top one
        for e in escapes.tolist():
            forward.append((e.bit_length(), constriction.stream.model.Uniform(_ESCAPE_BITS)))
            for shift, width in _chunks(e.bit_length()):
                forward.append(((e >> shift) & ((1 << width) - 1), constriction.stream.model.Uniform(1 << width)))
        for symbol, model in reversed(forward):
            coder.encode_reverse(np.array([symbol], dtype=np.int32), model)
        for table in np.unique(indexes)[::-1].tolist():
            coder.encode_reverse(symbols[indexes == table], self._model(table))

    def pop(self, coder, indexes: np.ndarray) -> np.ndarray:
        """Pop the values pushed with tables ``indexes`` from ``coder`` (flat int64 array)."""
        import constriction

        indexes = self._check_indexes(indexes)
        symbols = np.empty(indexes.size, dtype=np.int64)
        try:
            for table in np.unique(indexes).tolist():
                where = indexes == table
                symbols[where] = coder.decode(self._model(table), int(where.sum()))
            top = self.cdf_lengths[indexes] - 2
            raw = symbols.copy()
            for k in np.flatnonzero(symbols == top).tolist():
                bits = int(coder.decode(constriction.stream.model.Uniform(_ESCAPE_BITS)))
                e = 1 << (bits - 1) if bits else 0
                for shift, width in _chunks(bits):
                    e |= int(coder.decode(constriction.stream.model.Uniform(1 << width))) << shift
                raw[k] = -(e + 1) // 2 if e % 2 else top[k] + e // 2
        except (ValueError, RuntimeError, AssertionError) as exc:  # constriction's errors on malformed data
            raise EntropyError(f"entropy decoding failed ({exc})") from exc
        return raw + self.offsets[indexes]


def _chunks(bit_length: int) -> list[tuple[int, int]]:
    """(shift, width) of the ≤ 16-bit uniform chunks that code the bits below an escape's leading 1."""
    return [(shift, min(_CHUNK, bit_length - 1 - shift)) for shift in range(0, max(0, bit_length - 1), _CHUNK)]


def new_coder():
    """An empty ANS coder to push values on."""
    import constriction

    return constriction.stream.stack.AnsCoder()


def coder_bytes(coder) -> bytes:
    """The coder's compressed words as bytes (little-endian uint32)."""
    return coder.get_compressed().astype("<u4").tobytes()


def coder_from_bytes(payload: bytes):
    """An ANS coder that pops from ``payload``; EntropyError unless it is whole 32-bit words."""
    import constriction

    if len(payload) % 4:
        raise EntropyError(f"entropy payload of {len(payload)} bytes is not whole 32-bit words")
    return constriction.stream.stack.AnsCoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))


def check_consumed(coder) -> None:
    """EntropyError unless the decoder read the payload exactly (a damaged stream usually leaves words)."""
    if not coder.is_empty():
        raise EntropyError("entropy payload holds data beyond the coded values")
