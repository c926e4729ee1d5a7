"""Adaptive context-model range coding of binary codes (``constriction``).

Codes are bool arrays T×C×H×W (iteration, channel, block row, block column),
coded in the order iteration → channel → block row; one block row of one
channel is a chunk (W bits). Each bit is coded with a Bernoulli probability
from its context: its iteration t and channel c, and six already coded bits
of the same block column, each in {none, 0, 1} (``CONTEXT``):

- the same channel and block at the two previous iterations (t − 1, t − 2),
- the three previous channels (c − 1, c − 2, c − 3) of the same block and iteration,
- the same channel of the block above (row − 1).

P(1) = n₁ / n per (t, c, state) from counts initialised with a prior P(1)
(``PRIOR_STRENGTH`` pseudo-counts; without a prior, the Krichevsky–Trofimov
½, ½) and updated after every chunk, so the model adapts to the image; the
decoder replays the same order and sees the same counts. Probability
arithmetic is IEEE float64 (+, ×, ÷ only), so the coded bytes are the same on
every machine. Payload: the range coder's 32-bit words, little-endian.
"""

from __future__ import annotations

import numpy as np

from codecbench.errors import EntropyError

# Context bits as (iterations back, channels back, rows up); the state is Σ 3^k · (bit + 1, or 0 if none),
# k = position in this tuple counted from the end (the block above is the least significant digit).
CONTEXT = ((1, 0, 0), (2, 0, 0), (0, 1, 0), (0, 2, 0), (0, 3, 0), (0, 0, 1))
STATES = 3 ** len(CONTEXT)
PRIOR_STRENGTH = 16.0  # pseudo-counts given to a context's prior P(1)
BACKOFF_STRENGTH = 4.0  # pseudo-counts of the coarse context (t − 1, c − 1, above) when measuring a prior
_PROBABILITY_FLOOR = 1e-4  # keeps every symbol codable


def _bernoulli():
    import constriction

    return constriction, constriction.stream.model.Bernoulli(perfect=False)


def _digit(codes: np.ndarray, t: int, c: int) -> np.ndarray | int:
    """Context digit of slab (t, c): bit + 1 per block, or 0 (none) outside the codes."""
    return codes[t, c].astype(np.int64) + 1 if t >= 0 and c >= 0 else 0


class ContextCounts:
    """Bit counts per (iteration, channel, state); ``state`` indexes the ``CONTEXT`` bits in base 3."""

    def __init__(self, iterations: int, channels: int, prior: np.ndarray | None = None) -> None:
        shape = (iterations, channels, STATES)
        if prior is None:
            self.ones = np.full(shape, 0.5)
            self.total = np.full(shape, 1.0)
        else:
            prior = np.asarray(prior, dtype=np.float64)
            if prior.ndim != 3 or prior.shape[1:] != (channels, STATES):
                raise EntropyError(f"entropy prior has shape {prior.shape}, expected (T, {channels}, {STATES})")
            rows = np.minimum(np.arange(iterations), prior.shape[0] - 1)  # iterations beyond the prior reuse its last
            self.ones = PRIOR_STRENGTH * prior[rows]
            self.total = np.full(shape, PRIOR_STRENGTH)

    @staticmethod
    def slab_states(codes: np.ndarray, t: int, c: int) -> np.ndarray:
        """State of every block of slab (t, c) without the block-above digit: H×W int (``row_states`` adds it)."""
        state = np.zeros(codes.shape[2:], np.int64)
        for dt, dc, dy in CONTEXT:
            state = state * 3 + (0 if dy else _digit(codes, t - dt, c - dc))
        return state

    @staticmethod
    def row_states(slab: np.ndarray, codes: np.ndarray, t: int, c: int, y: int) -> np.ndarray:
        return slab[y] + (codes[t, c, y - 1].astype(np.int64) + 1 if y > 0 else 0)

    def probabilities_for(self, t: int, c: int, states: np.ndarray) -> np.ndarray:
        p = self.ones[t, c, states] / self.total[t, c, states]
        return np.clip(p, _PROBABILITY_FLOOR, 1 - _PROBABILITY_FLOOR)

    def update(self, t: int, c: int, states: np.ndarray, bits: np.ndarray) -> None:
        self.ones[t, c] += np.bincount(states, weights=bits, minlength=STATES)
        self.total[t, c] += np.bincount(states, minlength=STATES)

    def add(self, codes: np.ndarray) -> None:
        """Count every bit of ``codes`` (T'×C×H×W, T' ≤ T) in its context."""
        for t in range(codes.shape[0]):
            for c in range(codes.shape[1]):
                slab = self.slab_states(codes, t, c)
                for y in range(codes.shape[2]):
                    self.update(t, c, self.row_states(slab, codes, t, c, y), codes[t, c, y].astype(np.float64))

    def probabilities(self) -> np.ndarray:
        """P(1) per context from the counts so far, float32 T×C×STATES, for use as a prior.

        A state seen n times gets (n₁ + b·p) / (n + b), where p is the P(1) of its coarse context
        (previous iteration, previous channel, above) and b = ``BACKOFF_STRENGTH``, so rare states
        borrow from similar ones instead of falling back to ½.
        """
        digits = np.arange(STATES)[:, None] // 3 ** np.arange(len(CONTEXT) - 1, -1, -1) % 3  # STATES×len(CONTEXT)
        coarse = sum(digits[:, CONTEXT.index(key)] * 3**k for k, key in enumerate(((0, 0, 1), (0, 1, 0), (1, 0, 0))))
        members = np.eye(27)[coarse]  # STATES×27: which coarse state each state belongs to
        backoff = ((self.ones @ members) / (self.total @ members))[:, :, coarse]
        return ((self.ones + BACKOFF_STRENGTH * backoff) / (self.total + BACKOFF_STRENGTH)).astype(np.float32)


def encode_bits(codes: np.ndarray, prior: np.ndarray | None = None) -> bytes:
    """Range-code bool ``codes`` (T×C×H×W) with the adaptive context model; return the payload bytes."""
    constriction, model = _bernoulli()
    codes = np.ascontiguousarray(codes, dtype=bool)
    if codes.ndim != 4:
        raise ValueError(f"codes must be T×C×H×W, got shape {codes.shape}")
    counts = ContextCounts(codes.shape[0], codes.shape[1], prior)
    probabilities = []
    for t in range(codes.shape[0]):
        for c in range(codes.shape[1]):
            slab = counts.slab_states(codes, t, c)
            for y in range(codes.shape[2]):
                states = counts.row_states(slab, codes, t, c, y)
                probabilities.append(counts.probabilities_for(t, c, states))
                counts.update(t, c, states, codes[t, c, y].astype(np.float64))
    encoder = constriction.stream.queue.RangeEncoder()
    if probabilities:  # the probabilities depend only on earlier bits, so one call codes everything in order
        encoder.encode(codes.reshape(-1).astype(np.int32), model, np.concatenate(probabilities))
    return encoder.get_compressed().astype("<u4").tobytes()


def decode_bits(payload: bytes, shape: tuple[int, int, int, int], prior: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`encode_bits`: bool codes of ``shape`` (T×C×H×W); EntropyError if the payload does not fit."""
    constriction, model = _bernoulli()
    if len(payload) % 4:
        raise EntropyError(f"payload of {len(payload)} bytes is not a whole number of 32-bit words")
    counts = ContextCounts(shape[0], shape[1], prior)
    decoder = constriction.stream.queue.RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
    codes = np.zeros(shape, dtype=bool)
    try:
        for t in range(shape[0]):
            for c in range(shape[1]):
                slab = counts.slab_states(codes, t, c)
                for y in range(shape[2]):
                    states = counts.row_states(slab, codes, t, c, y)
                    bits = np.asarray(decoder.decode(model, counts.probabilities_for(t, c, states)))
                    codes[t, c, y] = bits
                    counts.update(t, c, states, bits.astype(np.float64))
    except (ValueError, RuntimeError, AssertionError) as exc:  # constriction asserts on data no model could have coded
        raise EntropyError(f"payload cannot be decoded as {shape} codes ({exc})") from exc
    if not decoder.maybe_exhausted():
        raise EntropyError(f"payload holds more data than {shape} codes need")
    return codes
