"""The checked header in front of every learned-codec bitstream.

Bitstream = header + payload (the codec's entropy-coded bytes); bpp counts both.
Header, big-endian::

    magic       4 bytes  b"CBLC"
    version     u8       FORMAT_VERSION
    model id    u8 length + ASCII (e.g. "conv_lstm")
    weights     8 bytes  first 8 bytes of the weights file's SHA-256
    width       u32      image width in pixels (before padding)
    height      u32      image height in pixels
    setting     f32      the quality setting
    payload     u32      payload length in bytes
    crc32       u32      zlib.crc32 of the payload

A wrong magic, unknown version, a length or CRC mismatch raise CodecError
before any decoding (the codec also checks the model and weights).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from codecbench.errors import CodecError

MAGIC = b"CBLC"
FORMAT_VERSION = 1
_FIXED_HEAD = struct.Struct(">4sBB")
_FIXED_TAIL = struct.Struct(">8sIIfII")


def header_size(model_id: str) -> int:
    """Bytes of the header of a bitstream made by model ``model_id``."""
    return _FIXED_HEAD.size + len(model_id) + _FIXED_TAIL.size


@dataclass(frozen=True)
class Header:
    model_id: str
    weights_prefix: bytes
    width: int
    height: int
    setting: float
    payload_length: int
    crc32: int

    @classmethod
    def for_payload(cls, model_id: str, weights_sha256: str, width: int, height: int, setting: float, payload: bytes) -> Header:
        """The header of ``payload`` made with the weights whose SHA-256 (hex) is ``weights_sha256``."""
        return cls(model_id, bytes.fromhex(weights_sha256[:16]), width, height, float(setting), len(payload), zlib.crc32(payload))

    def pack(self) -> bytes:
        model = self.model_id.encode("ascii")
        return _FIXED_HEAD.pack(MAGIC, FORMAT_VERSION, len(model)) + model + _FIXED_TAIL.pack(
            self.weights_prefix, self.width, self.height, self.setting, self.payload_length, self.crc32
        )

    @classmethod
    def unpack(cls, data: bytes) -> tuple[Header, bytes]:
        """The header and the payload; raises CodecError on a malformed or damaged bitstream."""
        if len(data) < _FIXED_HEAD.size:
            raise CodecError(f"bitstream too short ({len(data)} bytes) for a learned-codec header")
        magic, version, model_length = _FIXED_HEAD.unpack_from(data)
        if magic != MAGIC:
            raise CodecError(f"not a codecbench learned-codec bitstream (magic {magic!r}, expected {MAGIC!r})")
        if version != FORMAT_VERSION:
            raise CodecError(f"unknown learned-codec bitstream version {version} (this codecbench reads version {FORMAT_VERSION})")
        start = _FIXED_HEAD.size + model_length
        if len(data) < start + _FIXED_TAIL.size:
            raise CodecError(f"bitstream truncated inside the header ({len(data)} bytes)")
        model_id = data[_FIXED_HEAD.size : start].decode("ascii", errors="replace")
        prefix, width, height, setting, length, crc = _FIXED_TAIL.unpack_from(data, start)
        payload = data[start + _FIXED_TAIL.size :]
        if len(payload) != length:
            raise CodecError(f"bitstream truncated or padded: payload is {len(payload)} bytes, header says {length}")
        if zlib.crc32(payload) != crc:
            raise CodecError("bitstream corrupt: payload CRC32 mismatch")
        return cls(model_id, prefix, width, height, setting, length, crc), payload
