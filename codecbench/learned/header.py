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
    crc32       u32      zlib.crc32 of every header byte before it, then the payload

A wrong magic, unknown version, a length or CRC mismatch raise CodecError
before any decoding (the codec also checks the model and weights). The CRC
covers the header fields too, so a damaged width, height or setting is caught
like damaged payload bits (format version 1 covered the payload only).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, replace

from codecbench.errors import CodecError

MAGIC = b"CBLC"
FORMAT_VERSION = 2
_FIXED_HEAD = struct.Struct(">4sBB")
_FIELDS = struct.Struct(">8sIIfI")  # weights prefix, width, height, setting, payload length
_CRC = struct.Struct(">I")


def header_size(model_id: str) -> int:
    """Bytes of the header of a bitstream made by model ``model_id``."""
    return _FIXED_HEAD.size + len(model_id) + _FIELDS.size + _CRC.size


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
        header = cls(model_id, bytes.fromhex(weights_sha256[:16]), width, height, float(setting), len(payload), 0)
        return replace(header, crc32=zlib.crc32(payload, zlib.crc32(header._fields())))

    def _fields(self) -> bytes:
        """Every header byte before the CRC."""
        model = self.model_id.encode("ascii")
        return _FIXED_HEAD.pack(MAGIC, FORMAT_VERSION, len(model)) + model + _FIELDS.pack(
            self.weights_prefix, self.width, self.height, self.setting, self.payload_length
        )

    def pack(self) -> bytes:
        return self._fields() + _CRC.pack(self.crc32)

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
        crc_at = _FIXED_HEAD.size + model_length + _FIELDS.size
        if len(data) < crc_at + _CRC.size:
            raise CodecError(f"bitstream truncated inside the header ({len(data)} bytes)")
        model_id = data[_FIXED_HEAD.size : _FIXED_HEAD.size + model_length].decode("ascii", errors="replace")
        prefix, width, height, setting, length = _FIELDS.unpack_from(data, _FIXED_HEAD.size + model_length)
        (crc,) = _CRC.unpack_from(data, crc_at)
        payload = data[crc_at + _CRC.size :]
        if len(payload) != length:
            raise CodecError(f"bitstream truncated or padded: payload is {len(payload)} bytes, header says {length}")
        if zlib.crc32(payload, zlib.crc32(data[:crc_at])) != crc:
            raise CodecError("bitstream corrupt: header or payload CRC32 mismatch")
        return cls(model_id, prefix, width, height, setting, length, crc), payload
