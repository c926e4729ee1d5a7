"""Lossy WebP through Pillow's libwebp: ``webp``.

Conventions: lossy VP8 (always 4:2:0, limited-range BT.601 YCbCr inside
libwebp), ``quality`` 0–100, compression ``method=4`` (Pillow's default, the
setting behind CompressAI's published WebP numbers). The bytes are the whole
RIFF/WEBP file; for an RGB image without metadata that is the 12-byte RIFF
header plus one ``VP8`` chunk (no EXIF, ICC or XMP chunks).
"""

from __future__ import annotations

import numpy as np
import PIL
from PIL import features

from codecbench.codec import Availability, Codec, SettingSpec
from codecbench_codecs._pillow_io import decode_with_pillow, encode_with_pillow

METHOD = 4  # libwebp speed/quality trade-off 0 (fast) – 6 (slow); Pillow's default


class WebpCodec(Codec):
    """Lossy WebP at compression method 4."""

    name = "webp"
    description = f"WebP lossy (libwebp via Pillow), method {METHOD}"
    setting = SettingSpec(
        name="quality",
        low=0,
        high=100,
        higher_is_better=True,
        default_sweep=(0, 5, 10, 20, 30, 45, 60, 75, 85, 90),  # Kodak 1–8: 0.12 to 2.1 bpp
    )

    def version(self) -> str:
        return f"libwebp {features.version('webp')}, Pillow {PIL.__version__}"

    def availability(self) -> Availability:
        if not features.check("webp"):
            return Availability(False, "Pillow was built without WebP support (libwebp); reinstall Pillow from a wheel")
        return Availability(True)

    def encode(self, image: np.ndarray, setting: float | int) -> bytes:
        quality = self.setting.validate(setting)
        return encode_with_pillow(image, "WEBP", self.name, quality=quality, method=METHOD, lossless=False)

    def decode(self, data: bytes) -> np.ndarray:
        return decode_with_pillow(data, "WEBP", self.name)
