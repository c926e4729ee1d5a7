"""Encoding and decoding through Pillow image plugins, shared by the Pillow-based codecs.

Images are written from an H×W×3 uint8 RGB array with no metadata (no EXIF,
ICC profile, XMP or comment), so the bytes are only what the format itself
needs. Decoding accepts RGB, and RGBA only when every pixel is opaque (alpha
255, then alpha is dropped); any other decoded mode is a :class:`CodecError`.

:class:`PillowCodec` is the codec that is nothing more than one Pillow format
plugin with a ``quality`` setting, and :func:`pillow_built_with` the
availability check for a format Pillow may have been built without.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
from PIL import Image, features

from codecbench.codec import Codec
from codecbench.errors import CodecError, check_rgb
from codecbench.plugins import Availability


def encode_with_pillow(image: np.ndarray, pillow_format: str, codec_name: str, **params: Any) -> bytes:
    """Save ``image`` as ``pillow_format`` (a Pillow format id, e.g. ``"JPEG"``) with ``params``; return the file bytes."""
    check_rgb(image, f"{codec_name} input", CodecError)
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


def pillow_built_with(feature: str, support: str) -> Availability:
    """Available when Pillow was built with ``feature`` (a :func:`PIL.features.check` id, e.g. ``"webp"``).

    ``support`` names what is missing in the reason, e.g. ``"WebP support (libwebp)"``.
    """
    if not features.check(feature):
        return Availability(False, f"Pillow was built without {support}; reinstall Pillow from a wheel")
    return Availability(True)


class PillowCodec(Codec):
    """A codec that is one Pillow format plugin whose setting is Pillow's ``quality`` save option.

    Subclasses set ``pillow_format`` (the Pillow format id) and ``pillow_options``
    (the other save options, the same at every setting); encoding validates the
    setting and saves with ``quality`` plus those options, decoding opens only
    that format.
    """

    pillow_format: ClassVar[str]
    pillow_options: ClassVar[Mapping[str, Any]] = {}

    def encode(self, image: np.ndarray, setting: float | int) -> bytes:
        quality = self.setting.validate(setting)
        return encode_with_pillow(image, self.pillow_format, self.name, quality=quality, **self.pillow_options)

    def decode(self, data: bytes) -> np.ndarray:
        return decode_with_pillow(data, self.pillow_format, self.name)
