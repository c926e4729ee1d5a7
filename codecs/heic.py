"""HEIC (HEVC still image in HEIF) through libheif and x265 (pillow-heif): ``heic``.

Conventions: full-range BT.601 YCbCr (pillow-heif's default nclx colour box:
matrix 6, full-range flag 1), 4:2:0 chroma (``chroma=420``), 8-bit,
``quality`` 0–100 (libheif's scale, mapped to an x265 rate factor). x265 runs
with libheif's defaults (preset ``slow``, tune ``ssim``, TU intra depth 2);
its output does not depend on the thread count. The bytes are the whole HEIF
file (``ftyp``/``meta`` boxes plus the HEVC bitstream) with no EXIF, XMP or
thumbnail.
"""

from __future__ import annotations

import io

import numpy as np
import pillow_heif

from codecbench.codec import Codec, SettingSpec
from codecbench.errors import CodecError, check_rgb
from codecbench.plugins import Availability
from codecbench_codecs._pillow_io import pillow_to_rgb

CHROMA = 420


class HeicCodec(Codec):
    """HEIC, x265 through libheif, 4:2:0."""

    name = "heic"
    description = "HEIC (libheif + x265 via pillow-heif), 4:2:0"
    # Kodak 1–8: 0.085 to 2.0 bpp
    setting = SettingSpec(
        "quality", 0, 100, higher_is_better=True, default_sweep=(10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60)
    )

    def version(self) -> str:
        info = pillow_heif.libheif_info()
        return f"libheif {info['libheif']}, {info['encoders']['x265']}, pillow-heif {pillow_heif.__version__}"

    def availability(self) -> Availability:
        if "x265" not in pillow_heif.libheif_info().get("encoders", {}):
            return Availability(False, "pillow-heif's libheif has no x265 HEVC encoder; reinstall pillow-heif from a wheel")
        return Availability(True)

    def encode(self, image: np.ndarray, setting: float | int) -> bytes:
        quality = self.setting.validate(setting)
        check_rgb(image, f"{self.name} input", CodecError)
        height, width = image.shape[:2]
        buffer = io.BytesIO()
        try:
            heif = pillow_heif.from_bytes("RGB", (width, height), np.ascontiguousarray(image).tobytes())
            heif.save(buffer, quality=quality, chroma=CHROMA)
        except Exception as exc:
            raise CodecError(f"{self.name}: encoding a {width}×{height} image failed ({type(exc).__name__}: {exc})") from exc
        return buffer.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        try:
            heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
            return pillow_to_rgb(heif.to_pillow(), self.name)
        except CodecError:
            raise
        except Exception as exc:
            raise CodecError(f"{self.name}: cannot decode {len(data)} bytes as HEIF ({type(exc).__name__}: {exc})") from exc
