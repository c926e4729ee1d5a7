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

import PIL
from PIL import features

from codecbench.codec import SettingSpec
from codecbench.plugins import Availability
from codecbench_codecs._pillow_io import PillowCodec, pillow_built_with


def _quality(default_sweep: tuple[int, ...]) -> SettingSpec:
    return SettingSpec(name="quality", low=1, high=100, higher_is_better=True, default_sweep=default_sweep)


class JpegCodec(PillowCodec):
    """JPEG with 4:2:0 chroma subsampling (Pillow ``subsampling=2``)."""

    name = "jpeg"
    description = "JPEG (libjpeg-turbo via Pillow), 4:2:0, standard Huffman tables"
    # Measured on Kodak 1–8: 0.24 (q5) to 2.0 (q85) bpp. Below q5 most entries of the
    # scaled tables saturate at 255 and the rate stops falling (q1 still costs 0.18 bpp).
    setting = _quality((5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 85))
    pillow_options = {"subsampling": 2, "optimize": False, "progressive": False}  # 2 is Pillow's code for 4:2:0
    pillow_format = "JPEG"

    def version(self) -> str:
        turbo = features.version("libjpeg_turbo")
        library = f"libjpeg-turbo {turbo}" if turbo else "libjpeg"
        return f"{library} (libjpeg API {features.version('jpg')}), Pillow {PIL.__version__}"

    def availability(self) -> Availability:
        return pillow_built_with("jpg", "JPEG support (libjpeg)")


class Jpeg444Codec(JpegCodec):
    """JPEG without chroma subsampling (4:4:4, Pillow ``subsampling=0``)."""

    name = "jpeg444"
    description = "JPEG (libjpeg-turbo via Pillow), 4:4:4, standard Huffman tables"
    setting = _quality((5, 10, 15, 20, 30, 40, 50, 60, 70, 80))  # Kodak 1–8: 0.33 (q5) to 2.0 (q80) bpp
    pillow_options = {**JpegCodec.pillow_options, "subsampling": 0}
