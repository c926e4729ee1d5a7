"""Baseline JPEG through Pillow's libjpeg(-turbo): ``jpeg`` (4:2:0) and ``jpeg444`` (4:4:4).

Conventions: RGB is converted to full-range BT.601 YCbCr by libjpeg (the JFIF
convention); quantisation tables are the standard IJG (Annex K) tables scaled
by ``quality`` 1–100; Huffman tables are the standard ones (``optimize=False``)
and the scan is sequential (``progressive=False``), i.e. Pillow's defaults
except for chroma subsampling, which is fixed per codec. Nothing is stored
beyond what libjpeg writes itself (SOI, the 18-byte JFIF APP0 segment, tables,
frame and scan headers, EOI): no EXIF, ICC profile or comment.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import PIL
from PIL import features

from codecbench.codec import Availability, Codec, SettingSpec
from codecbench_codecs._pillow_io import decode_with_pillow, encode_with_pillow


def _quality(default_sweep: tuple[int, ...]) -> SettingSpec:
    return SettingSpec(name="quality", low=1, high=100, higher_is_better=True, default_sweep=default_sweep)


class JpegCodec(Codec):
    """JPEG with 4:2:0 chroma subsampling (Pillow ``subsampling=2``)."""

    name = "jpeg"
    description = "JPEG (libjpeg-turbo via Pillow), 4:2:0, standard Huffman tables"
    # Measured on Kodak 1–8: 0.24 (q5) to 2.0 (q85) bpp. Below q5 most entries of the
    # scaled tables saturate at 255 and the rate stops falling (q1 still costs 0.18 bpp).
    setting = _quality((5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 85))
    pillow_subsampling: ClassVar[int] = 2  # Pillow's code for 4:2:0

    def version(self) -> str:
        turbo = features.version("libjpeg_turbo")
        library = f"libjpeg-turbo {turbo}" if turbo else "libjpeg"
        return f"{library} (libjpeg API {features.version('jpg')}), Pillow {PIL.__version__}"

    def availability(self) -> Availability:
        if not features.check("jpg"):
            return Availability(False, "Pillow was built without JPEG support (libjpeg); reinstall Pillow from a wheel")
        return Availability(True)

    def encode(self, image: np.ndarray, setting: float | int) -> bytes:
        quality = self.setting.validate(setting)
        return encode_with_pillow(
            image,
            "JPEG",
            self.name,
            quality=quality,
            subsampling=self.pillow_subsampling,
            optimize=False,
            progressive=False,
        )

    def decode(self, data: bytes) -> np.ndarray:
        return decode_with_pillow(data, "JPEG", self.name)


class Jpeg444Codec(JpegCodec):
    """JPEG without chroma subsampling (4:4:4, Pillow ``subsampling=0``)."""

    name = "jpeg444"
    description = "JPEG (libjpeg-turbo via Pillow), 4:4:4, standard Huffman tables"
    pillow_subsampling = 0
    setting = _quality((5, 10, 15, 20, 30, 40, 50, 60, 70, 80))  # Kodak 1–8: 0.33 (q5) to 2.0 (q80) bpp
