"""Adaptive arithmetic coding of quantized PCA channels (``constriction`` range coder).

Input: integers q of shape K×H×W (kept channel, row, column) — the quantized
PCA coefficients of one image. Coding order: channel → row; one row of one
channel is a chunk of W symbols coded with the same model state.

Symbols. A value v with |v| ≤ ``RADIUS`` is symbol v + RADIUS; a larger one
is an escape symbol ``2·RADIUS + 1 + 2k + s`` (s = 1 if v < 0) of class
k = bit_length(u + 1) − 1, u = |v| − RADIUS − 1, followed (after every
symbol of the image) by the k low bits of u + 1 as one uniform symbol of
size 2^k (k ≥ 1). ``ESCAPE_CLASSES`` classes cover |v| < RADIUS + 2^16.

Models. One adaptive categorical model per (kept channel, context), the
context being the number of non-zero values among the same channel's value
in the row above and the previous channel's value at the same position
(0–2; "none" outside counts as zero). Counts start at ``PRIOR_STRENGTH`` ×
the prior (per precision B, channel, context; measured on training images and
stored with the weights) and grow by one per coded symbol after each chunk,
so the models adapt to the image; without a prior they start uniform.
Probability arithmetic is float64 (+, ×, ÷ only), so the bytes are the same
on every machine. Payload: the range coder's 32-bit words, little-endian.
"""

from __future__ import annotations

import numpy as np

from codecbench.errors import EntropyError

RADIUS = 15
ESCAPE_CLASSES = 16
ALPHABET = 2 * RADIUS + 1 + 2 * ESCAPE_CLASSES
CONTEXTS = 3
PRIOR_STRENGTH = 64.0  # pseudo-counts of a model's prior (spread over its ALPHABET symbols)
_FLOOR = 1e-6  # relative to 1: keeps every symbol codable


def to_symbols(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(symbols, escape sizes 2^k, escape offsets) for integer ``values``; escapes in row-major order."""
    values = np.asarray(values, dtype=np.int64)
    magnitude = np.abs(values)
    symbols = values + RADIUS
    big = magnitude > RADIUS
    u1 = magnitude[big] - RADIUS  # u + 1 ≥ 1
    k = np.floor(np.log2(u1)).astype(np.int64)
    k += (np.left_shift(1, k + 1) <= u1).astype(np.int64) - (np.left_shift(1, k) > u1).astype(np.int64)  # exact bit_length − 1
    if k.size and k.max() >= ESCAPE_CLASSES:
        raise EntropyError(f"value {int(magnitude.max())} too large for the entropy coder (|v| < {RADIUS + 2 ** ESCAPE_CLASSES})")
    symbols[big] = 2 * RADIUS + 1 + 2 * k + (values[big] < 0)
    return symbols, np.left_shift(1, k), u1 - np.left_shift(1, k)


def contexts(values_or_symbols_nonzero: np.ndarray) -> np.ndarray:
    """Context (0–2) of every position of a K×H×W non-zero mask: non-zero above + non-zero in the previous channel."""
    nz = values_or_symbols_nonzero.astype(np.int64)
    ctx = np.zeros_like(nz)
    ctx[:, 1:] += nz[:, :-1]
    ctx[1:] += nz[:-1]
    return ctx


class Models:
    """Symbol counts per (channel, context); ``prior``: K'×CONTEXTS×ALPHABET probabilities (K' ≥ channels) or None."""

    def __init__(self, channels: int, prior: np.ndarray | None = None) -> None:
        if prior is None:
            self.counts = np.full((channels, CONTEXTS, ALPHABET), PRIOR_STRENGTH / ALPHABET)
        else:
            prior = np.asarray(prior, dtype=np.float64)
            if prior.ndim != 3 or prior.shape[0] < channels or prior.shape[1:] != (CONTEXTS, ALPHABET):
                raise EntropyError(f"entropy prior has shape {prior.shape}, expected (≥{channels}, {CONTEXTS}, {ALPHABET})")
            self.counts = PRIOR_STRENGTH * prior[:channels] / prior[:channels].sum(axis=2, keepdims=True)

    def probabilities(self, channel: int, ctx: np.ndarray) -> np.ndarray:
        """W×ALPHABET probabilities for one chunk with contexts ``ctx``."""
        table = self.counts[channel] / self.counts[channel].sum(axis=1, keepdims=True) + _FLOOR
        return table[ctx]

    def update(self, channel: int, ctx: np.ndarray, symbols: np.ndarray) -> None:
        self.counts[channel] += np.bincount(ctx * ALPHABET + symbols, minlength=CONTEXTS * ALPHABET).reshape(CONTEXTS, ALPHABET)


def count_symbols(values: np.ndarray) -> np.ndarray:
    """K×CONTEXTS×ALPHABET counts of the symbols of ``values`` (K×H×W ints) in their contexts (for priors)."""
    symbols, _, _ = to_symbols(values)
    ctx = contexts(values != 0)
    counts = np.zeros((values.shape[0], CONTEXTS * ALPHABET))
    for c in range(values.shape[0]):
        counts[c] = np.bincount((ctx[c] * ALPHABET + symbols[c]).ravel(), minlength=CONTEXTS * ALPHABET)
    return counts.reshape(values.shape[0], CONTEXTS, ALPHABET)


def ideal_bits(values: np.ndarray, prior: np.ndarray | None = None) -> np.ndarray:
    """Bits the adaptive coder would spend on each channel of ``values`` (K×H×W), without running it.

    −Σ log2 p of the symbols plus the escapes' uniform bits, per channel (float64, length K); the coded
    payload is this total rounded up to whole 32-bit words. Channel c's bits depend only on channels ≤ c,
    so the cumulative sum gives the bits of every number of kept channels.
    """
    symbols, _, _ = to_symbols(values)
    ctx = contexts(values != 0)
    models = Models(values.shape[0], prior)
    escaped = symbols > 2 * RADIUS
    total = ((symbols - 2 * RADIUS - 1) // 2 * escaped).sum(axis=(1, 2)).astype(np.float64)  # k uniform bits per escape
    columns = np.arange(values.shape[2])
    for c in range(values.shape[0]):
        for y in range(values.shape[1]):
            p = models.probabilities(c, ctx[c, y])
            total[c] -= float(np.log2(p[columns, symbols[c, y]] / p.sum(axis=1)).sum())
            models.update(c, ctx[c, y], symbols[c, y])
    return total


def encode_values(values: np.ndarray, prior: np.ndarray | None = None) -> bytes:
    """Range-code integer ``values`` (K×H×W) with the adaptive models; return the payload bytes."""
    import constriction

    values = np.asarray(values, dtype=np.int64)
    if values.ndim != 3:
        raise ValueError(f"values must be K×H×W, got shape {values.shape}")
    symbols, sizes, offsets = to_symbols(values)
    ctx = contexts(values != 0)
    models = Models(values.shape[0], prior)
    encoder = constriction.stream.queue.RangeEncoder()
    family = constriction.stream.model.Categorical(perfect=False)
    rows = symbols.astype(np.int32)
    for c in range(values.shape[0]):
        for y in range(values.shape[1]):
            encoder.encode(rows[c, y], family, models.probabilities(c, ctx[c, y]))
            models.update(c, ctx[c, y], symbols[c, y])
    wide = sizes > 1
    if wide.any():
        encoder.encode(offsets[wide].astype(np.int32), constriction.stream.model.Uniform(), sizes[wide].astype(np.int32))
    return encoder.get_compressed().astype("<u4").tobytes()


def decode_values(payload: bytes, shape: tuple[int, int, int], prior: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`encode_values`: int64 values of ``shape`` (K×H×W); EntropyError if the payload does not fit."""
    import constriction

    if len(payload) % 4:
        raise EntropyError(f"payload of {len(payload)} bytes is not a whole number of 32-bit words")
    channels, height, width = shape
    models = Models(channels, prior)
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
    family = constriction.stream.model.Categorical(perfect=False)
    symbols = np.zeros(shape, dtype=np.int64)
    nonzero = np.zeros(shape, dtype=bool)
    try:
        for c in range(channels):
            for y in range(height):
                ctx = (nonzero[c, y - 1].astype(np.int64) if y > 0 else 0) + (nonzero[c - 1, y].astype(np.int64) if c > 0 else 0)
                ctx = np.broadcast_to(np.asarray(ctx, dtype=np.int64), (width,))
                row = np.asarray(decoder.decode(family, models.probabilities(c, ctx)), dtype=np.int64)
                symbols[c, y] = row
                nonzero[c, y] = row != RADIUS
                models.update(c, ctx, row)
        escaped = symbols > 2 * RADIUS
        k = (symbols[escaped] - 2 * RADIUS - 1) // 2
        values = symbols - RADIUS
        magnitude = np.left_shift(1, k) + RADIUS
        wide = k > 0
        if wide.any():
            extra = np.asarray(decoder.decode(constriction.stream.model.Uniform(), np.left_shift(1, k[wide]).astype(np.int32)), dtype=np.int64)
            magnitude[wide] += extra
        sign = np.where((symbols[escaped] - 2 * RADIUS - 1) % 2 == 1, -1, 1)
        values[escaped] = sign * magnitude
    except (ValueError, RuntimeError, AssertionError) as exc:  # constriction asserts on data no model could have coded
        raise EntropyError(f"payload cannot be decoded as {shape} values ({exc})") from exc
    if not decoder.maybe_exhausted():
        raise EntropyError(f"payload holds more data than {shape} values need")
    return values
