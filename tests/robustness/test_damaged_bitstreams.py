"""Damaged bitstreams of every codec with a checksum (conv_lstm's header carries a CRC32 of header and payload).

The contract (README, *Learned codecs*): a damaged or truncated bitstream raises an error instead of decoding
to a wrong image. Every single-bit flip of the header, of the payload and of the CRC, and every truncation,
must raise CodecError.
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from codecbench import registry
from codecbench.errors import CodecError, CodecUnavailable
from codecbench.learned.header import header_size


@pytest.fixture(scope="module")
def conv_lstm_stream():
    try:
        codec = registry.create("conv_lstm", threads=1)
    except CodecUnavailable as exc:
        pytest.skip(str(exc))
    image = np.ascontiguousarray(data.astronaut()[:32, :48])
    stream = codec.encode(image, 2)
    return codec, stream, codec.decode(stream)


def _flipped(stream: bytes, position: int, bit: int) -> bytes:
    damaged = bytearray(stream)
    damaged[position] ^= 1 << bit
    return bytes(damaged)


def test_payload_crc_and_truncation_damage_always_raise(conv_lstm_stream, record_outcome):
    codec, stream, _ = conv_lstm_stream
    head = header_size(codec.model_id)
    crc_and_payload = range(head - 4, len(stream))
    for position in crc_and_payload:
        for bit in (0, 7):  # lowest and highest bit of every byte
            with pytest.raises(CodecError):
                codec.decode(_flipped(stream, position, bit))
    for length in range(0, len(stream), 3):
        with pytest.raises(CodecError):
            codec.decode(stream[:length])
    with pytest.raises(CodecError):
        codec.decode(stream + b"\0")
    record_outcome("damaged bitstreams", f"conv_lstm: {2 * len(crc_and_payload)} single-bit flips of CRC + payload",
                   "every one raises CodecError")
    record_outcome("damaged bitstreams", f"conv_lstm: {len(range(0, len(stream), 3))} truncations, 1 extension",
                   "every one raises CodecError")


def test_every_header_bit_flip_raises(conv_lstm_stream, record_outcome):
    codec, stream, _ = conv_lstm_stream
    flips = [(position, bit) for position in range(header_size(codec.model_id) - 4) for bit in (0, 3, 7)]
    for position, bit in flips:
        with pytest.raises(CodecError):
            codec.decode(_flipped(stream, position, bit))
    record_outcome("damaged bitstreams", f"conv_lstm: {len(flips)} single-bit flips of the header fields",
                   "every one raises CodecError")
