"""Learned-codec base (bitstream, header checks, padding, determinism) and the entropy coder.

The base class is exercised through ConvLstmCodec with tiny random-weight
networks written to temporary weights files.
"""

from __future__ import annotations

import hashlib
import math
import struct
import zlib

import numpy as np
import pytest
import torch

from codecbench.errors import CodecError, EntropyError
from codecbench.learned.entropy import STATES, decode_bits, encode_bits
from codecbench.learned.header import MAGIC, Header
from codecbench.learned.weights import save_weights
from codecbench_codecs.conv_lstm import ConvLstmCodec

TINY = {"encoder_widths": [8, 8, 8, 8], "decoder_widths": [8, 8, 8, 8], "bits": 32}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def write_tiny_weights(path, seed: int) -> str:
    torch.manual_seed(seed)
    network = ConvLstmCodec.build_network(TINY)
    return save_weights(ConvLstmCodec, network, TINY, path)


@pytest.fixture(scope="module")
def tiny_codec(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    write_tiny_weights(path, seed=0)
    return ConvLstmCodec(weights=str(path), threads=1)


@pytest.fixture(scope="module")
def odd_image(natural_image):
    return np.ascontiguousarray(natural_image[100:145, 200:267])  # 67 wide × 45 high


def test_round_trip_pads_and_crops_odd_sizes(tiny_codec, odd_image):
    data, decoded = tiny_codec.round_trip(odd_image, 3)
    assert decoded.shape == (45, 67, 3) and decoded.dtype == np.uint8
    header, payload = Header.unpack(data)
    assert (header.width, header.height, header.setting) == (67, 45, 3.0)
    # every byte is header or payload: bpp = 8 * len(data) / pixels counts both
    assert len(data) == tiny_codec.header_size() + len(payload)
    stats = tiny_codec.bitstream_stats(data, 67, 45)
    assert stats["bpp_raw"] == pytest.approx(3 * 32 * 3 * 5 / (67 * 45))  # ceil(45/16)=3 rows, ceil(67/16)=5 columns


@pytest.mark.slow
def test_same_bytes_same_image_across_runs_and_processes(tiny_codec, odd_image, decode_in_another_process):
    data = tiny_codec.encode(odd_image, 4)
    assert tiny_codec.encode(odd_image, 4) == data
    first = tiny_codec.decode(data)
    np.testing.assert_array_equal(ConvLstmCodec(weights=str(tiny_codec.weights_path), threads=1).decode(data), first)
    np.testing.assert_array_equal(decode_in_another_process(tiny_codec, data, 1), first)


def test_version_pins_weights_checksum(tiny_codec):
    digest = hashlib.sha256(tiny_codec.weights_path.read_bytes()).hexdigest()
    assert tiny_codec.version() == f"conv_lstm weights {digest[:12]} torch {torch.__version__}"


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: d[:-1], "truncated"),
        (lambda d: d[:10], "truncated"),
        (lambda d: d[:-1] + bytes([d[-1] ^ 0x10]), "CRC32"),
        (lambda d: b"XXXX" + d[4:], "magic"),
        (lambda d: d[:4] + bytes([99]) + d[5:], "version 99"),
        (lambda d: d + b"\0", "payload is"),
    ],
    ids=["truncated", "header-only", "corrupt-payload", "magic", "version", "trailing-byte"],
)
def test_damaged_bitstreams_raise(tiny_codec, odd_image, damage, message):
    data = tiny_codec.encode(odd_image, 2)
    with pytest.raises(CodecError, match=message):
        tiny_codec.decode(damage(data))


def test_bits_from_other_weights_are_refused(tiny_codec, odd_image, tmp_path):
    other_path = tmp_path / "other.pt"
    other_digest = write_tiny_weights(other_path, seed=1)
    data = ConvLstmCodec(weights=str(other_path)).encode(odd_image, 2)
    assert Header.unpack(data)[0].weights_prefix == bytes.fromhex(other_digest[:16])
    with pytest.raises(CodecError, match="other|weights"):
        tiny_codec.decode(data)


def test_header_with_valid_crc_but_wrong_model_is_refused(tiny_codec, odd_image):
    header, payload = Header.unpack(tiny_codec.encode(odd_image, 1))
    foreign = Header.for_payload("other_model", header.weights_prefix.hex(), 67, 45, 1.0, payload).pack() + payload
    with pytest.raises(CodecError, match="other_model"):
        tiny_codec.decode(foreign)


def test_header_layout_is_documented_big_endian(tiny_codec, odd_image):
    data = tiny_codec.encode(odd_image, 5)
    assert data[:4] == MAGIC and data[4] == 2 and data[5] == len("conv_lstm") and data[6:15] == b"conv_lstm"
    prefix, width, height, setting, length, crc = struct.unpack_from(">8sIIfII", data, 15)
    assert prefix.hex() == tiny_codec.weights_sha256()[:16]
    assert (width, height, setting, length) == (67, 45, 5.0, len(data) - 43)
    assert crc == zlib.crc32(data[:39] + data[43:])  # every header byte before the CRC, then the payload


def test_bad_settings_and_options(tiny_codec, odd_image):
    with pytest.raises(CodecError, match="iterations=17"):
        tiny_codec.encode(odd_image, 17)
    with pytest.raises(CodecError, match="unknown option"):
        ConvLstmCodec(quality=3)
    missing = ConvLstmCodec(weights="/nonexistent/weights.pt")
    assert not missing.availability().ok and "not found" in missing.availability().reason


# --- entropy coder ---------------------------------------------------------------------------

def _binary_entropy(p: float) -> float:
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


@pytest.mark.parametrize("p_one", [0.5, 0.05])
def test_entropy_coder_is_exact_and_near_entropy_on_iid_bits(p_one):
    rng = np.random.default_rng(7)
    codes = rng.random((2, 32, 32, 48)) < p_one  # a Kodak-sized image, 2 iterations
    payload = encode_bits(codes)
    np.testing.assert_array_equal(decode_bits(payload, codes.shape), codes)
    bits_per_bit = 8 * len(payload) / codes.size
    # near the entropy plus the cost of learning each context in use: iteration 0 has 2⁴ states per
    # channel (3 previous channels, above), iteration 1 2⁵ (and the previous iteration); an adaptive
    # binary model pays ≈ ½·log₂(n) + 1 bits to learn a context seen n times
    contexts = 32 * (2**4 + 2**5)
    learning = contexts * (0.5 * math.log2(codes.size / contexts) + 1) / codes.size
    assert bits_per_bit < _binary_entropy(p_one) + learning
    if p_one < 0.5:
        assert bits_per_bit < 0.4


@pytest.mark.parametrize(
    "seed_shape, reps",
    [((1, 32, 32, 48), (3, 1, 1, 1)), ((2, 32, 32, 48), (3, 1, 1, 1)), ((3, 1, 32, 48), (1, 32, 1, 1)),
     ((3, 3, 32, 48), (1, 11, 1, 1)), ((3, 32, 1, 48), (1, 1, 32, 1))],
    ids=["previous-iteration", "two-iterations-back", "previous-channel", "three-channels-back", "block-above"],
)
def test_entropy_coder_uses_each_context(seed_shape, reps):
    rng = np.random.default_rng(3)
    seed = rng.random(seed_shape) < 0.5
    codes = np.tile(seed, reps)  # periodic copies of the seed: bit = the bit one seed length back along one axis
    payload = encode_bits(codes)
    np.testing.assert_array_equal(decode_bits(payload, codes.shape), codes)
    # the seed costs ≈ 1 bit per bit; the copies only the cost of learning their contexts,
    # whereas coding without that context would cost ≈ 1 bit per bit for every copy
    assert 8 * len(payload) < seed.size + 0.25 * (codes.size - seed.size)


def test_entropy_prior_round_trip_and_effect():
    rng = np.random.default_rng(5)
    codes = rng.random((4, 32, 6, 6)) < 0.1
    prior = np.full((16, 32, STATES), 0.1)
    with_prior = encode_bits(codes, prior)
    np.testing.assert_array_equal(decode_bits(with_prior, codes.shape, prior), codes)
    assert len(with_prior) < len(encode_bits(codes))  # a correct prior saves the learning cost on small images


def test_entropy_decoder_rejects_bad_payloads():
    codes = np.random.default_rng(1).random((2, 32, 4, 4)) < 0.5
    payload = encode_bits(codes)
    with pytest.raises(EntropyError, match="32-bit words"):
        decode_bits(payload[:-1], codes.shape)
    with pytest.raises(EntropyError):
        decode_bits(payload + payload, codes.shape)
