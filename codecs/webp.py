"""Lossy WebP through Pillow's libwebp: ``webp``.

Conventions: lossy VP8 (always 4:2:0, limited-range BT.601 YCbCr inside
libwebp), ``quality`` 0–100, compression ``method=4`` (Pillow's default, the
setting behind CompressAI's published WebP numbers). The bytes are the whole
RIFF/WEBP file; for an RGB image without metadata that is the 12-byte RIFF
header plus one ``VP8`` chunk (no EXIF, ICC or XMP chunks).
"""

from __future__ import annotations

import PIL
from PIL import features

from codecbench.codec import SettingSpec
from codecbench.plugins import Availability
from codecbench_codecs._pillow_io import PillowCodec, pillow_built_with

METHOD = 4  # libwebp speed/quality trade-off 0 (fast) – 6 (slow); Pillow's default


class WebpCodec(PillowCodec):
    """Lossy WebP at compression method 4."""

    name = "webp"
    description = f"WebP lossy (libwebp via Pillow), method {METHOD}"
    # Kodak 1–8: 0.12 to 2.1 bpp
    setting = SettingSpec(
        "quality", 0, 100, higher_is_better=True, default_sweep=(0, 5, 10, 20, 30, 45, 60, 75, 85, 90)
    )
    pillow_options = {"method": METHOD, "lossless": False}
    pillow_format = "WEBP"

    def version(self) -> str:
        return f"libwebp {features.version('webp')}, Pillow {PIL.__version__}"

    def availability(self) -> Availability:
        return pillow_built_with("webp", "WebP support (libwebp)")
