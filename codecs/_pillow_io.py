"""Encoding and decoding through Pillow image plugins, shared by the Pillow-based codecs.

Images are written from an H×W×3 uint8 RGB array with no metadata (no EXIF,
ICC profile, XMP or comment), so the bytes are only what the format itself
needs. Decoding accepts RGB, and RGBA only when every pixel is opaque (alpha
255, then alpha is dropped); any other decoded mode is a :class:`CodecError`.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from codecbench.codec import CodecError, check_rgb


def encode_with_pillow(image: np.ndarray, pillow_format: str, codec_name: str, **params: Any) -> bytes:
    """Save ``image`` as ``pillow_format`` (a Pillow format id, e.g. ``"JPEG"``) with ``params``; return the file bytes."""
    check_rgb(image, f"{codec_name} input")
    buffer = io.BytesIO()
    try:
        Image.fromarray(np.ascontiguousarray(image)).save(buffer, format=pillow_format, **params)
    except Exception as exc:  # Pillow plugins raise OSError, ValueError, RuntimeError...
        height, width = image.shape[:2]
        raise CodecError(f"{codec_name}: encoding a {width}×{height} image failed ({type(exc).__name__}: {exc})") from exc
    return buffer.getvalue()


def decode_with_pillow(data: bytes, pillow_format: str, codec_name: str) -> np.ndarray:
    """Decode ``data``, which must be a ``pillow_format`` file, into an H×W×3 uint8 RGB array."""
    try:
        with Image.open(io.BytesIO(data), formats=[pillow_format]) as im:
            im.load()
            return pillow_to_rgb(im, codec_name)
    except CodecError:
        raise
    except Exception as exc:
        raise CodecError(
            f"{codec_name}: cannot decode {len(data)} bytes as {pillow_format} ({type(exc).__name__}: {exc})"
        ) from exc


def pillow_to_rgb(im: Image.Image, codec_name: str) -> np.ndarray:
    """A decoded RGB or fully opaque RGBA Pillow image as an H×W×3 uint8 array."""
    if im.mode == "RGBA":
        alpha = np.asarray(im.getchannel("A"))
        if alpha.min() < 255:
            raise CodecError(f"{codec_name}: decoded image has {int((alpha < 255).sum())} non-opaque pixel(s)")
        im = im.convert("RGB")
    if im.mode != "RGB":
        raise CodecError(f"{codec_name}: decoded image has mode {im.mode}, expected RGB")
    return np.ascontiguousarray(np.asarray(im), dtype=np.uint8)
