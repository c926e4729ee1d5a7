"""JPEG 2000 through OpenJPEG (glymur): ``jpeg2000``.

Conventions: the standard lossy configuration of JPEG 2000 Part 1 — the
irreversible 9/7 wavelet, the irreversible colour transform (full-range RGB →
YCbCr, "ICT", MCT flag on), 64×64 code blocks, LRCP order, a single quality
layer and 5 decomposition levels (OpenJPEG's default of 6 resolutions; fewer
for images under 32 px a side, which OpenJPEG requires: ``2**levels`` must not
exceed the shorter side).

The setting is OpenJPEG's compression ratio: the rate allocator targets
``24 / ratio`` bits per pixel for 8-bit RGB (higher ratio = fewer bytes, lower
quality). The stored bytes are the raw J2K codestream (``.j2k``, starting
with the SOC marker ``FF 4F``), without the JP2 file-format boxes
(signature, file type, header, colour specification): a benchmark needs only
the codestream, and bpp counts exactly those bytes.

Options (both change the bytes, so both are part of the label, e.g.
``jpeg2000:colorspace=yuv,wavelet=5/3``):

``wavelet``
    ``9/7`` (default, irreversible) or ``5/3`` (reversible, integer).
``colorspace``
    ``rgb`` (default): RGB samples and the standard component transform (ICT
    with 9/7, RCT with 5/3). ``yuv``: the samples are limited-range BT.601
    Y'CbCr 4:4:4 computed here (Y = 16 + 219·Y'/255, Cb/Cr = 128 + 224·(B−Y')/(1.772·255)
    and (R−Y')/(1.402·255), rounded), coded without component transform, and
    converted back to RGB after decoding (rounded, clipped): what ffmpeg does
    with ``-pix_fmt yuv444p``.

The variant ``jpeg2000:colorspace=yuv,wavelet=5/3`` (alias
``jpeg2000-compressai``) is the anchor of CompressAI's published JPEG 2000
curves (ffmpeg ``-c:v libopenjpeg -compression_level q``, which asks OpenJPEG
for ratio 2·q); it codes 10–20 % more bytes than the default at equal PSNR.
CompressAI stored JP2 files, about 80 bytes more per image than this bare
codestream.

glymur needs files, so encoding and decoding go through a private temporary
directory that is removed afterwards.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import glymur
import numpy as np

from codecbench.codec import Codec, SettingSpec
from codecbench.errors import CodecError, check_rgb
from codecbench.plugins import Availability
from codecbench_codecs._ycbcr import rgb_to_ycbcr, ycbcr_to_rgb

WAVELETS = ("9/7", "5/3")
COLORSPACES = ("rgb", "yuv")

MAX_DECOMPOSITION_LEVELS = 5  # OpenJPEG's default numres=6
MISSING_LIBRARY = "glymur cannot find the OpenJPEG library (libopenjp2); install it, e.g. apt-get install libopenjp2-7"


def decomposition_levels(height: int, width: int) -> int:
    """Wavelet levels used for an image: 5, or fewer when ``2**levels`` would exceed the shorter side."""
    return min(MAX_DECOMPOSITION_LEVELS, int(math.floor(math.log2(min(height, width)))))


class Jpeg2000Codec(Codec):
    """JPEG 2000 (OpenJPEG), 9/7 irreversible wavelet + ICT, one layer, rate set by compression ratio."""

    name = "jpeg2000"
    description = "JPEG 2000 (OpenJPEG via glymur), 9/7 wavelet, ICT, 1 layer, J2K codestream"
    option_names = ("wavelet", "colorspace")

    def __init__(self, **options) -> None:
        super().__init__(**options)
        self.wavelet = str(options.get("wavelet", "9/7"))
        self.colorspace = str(options.get("colorspace", "rgb"))
        for option, value, allowed in (("wavelet", self.wavelet, WAVELETS),
                                       ("colorspace", self.colorspace, COLORSPACES)):
            if value not in allowed:
                raise CodecError(f"codec jpeg2000: option {option} must be one of {', '.join(allowed)}, got {value!r}")
    # Kodak 1–8: 2.0 to 0.10 bpp
    setting = SettingSpec(
        "ratio", 2, 400, higher_is_better=False, default_sweep=(12, 16, 24, 32, 48, 64, 96, 128, 192, 240),
        integer=False, unit=":1 compression",
    )

    def version(self) -> str:
        return f"OpenJPEG {glymur.version.openjpeg_version}, glymur {glymur.__version__}"

    def availability(self) -> Availability:
        if glymur.version.openjpeg_version in ("", "0.0.0"):
            return Availability(False, MISSING_LIBRARY)
        return Availability(True)

    def encode(self, image: np.ndarray, setting: float | int) -> bytes:
        ratio = self.setting.validate(setting)
        check_rgb(image, f"{self.name} input", CodecError)

        height, width = image.shape[:2]
        with tempfile.TemporaryDirectory(prefix="codecbench-j2k-") as tmp:
            path = Path(tmp) / "image.j2k"
            try:
                glymur.Jp2k(
                    str(path),
                    data=rgb_to_limited_yuv(image) if self.colorspace == "yuv" else np.ascontiguousarray(image),
                    cratios=[ratio],
                    irreversible=self.wavelet == "9/7",
                    mct=self.colorspace == "rgb",
                    numres=decomposition_levels(height, width) + 1,
                )
                return path.read_bytes()
            except Exception as exc:  # glymur raises OpenJPEGLibraryError, IOError, RuntimeError
                raise CodecError(
                    f"{self.name}: encoding a {width}×{height} image at ratio {ratio:g} failed ({type(exc).__name__}: {exc})"
                ) from exc

    def decode(self, data: bytes) -> np.ndarray:
        if data[:2] != b"\xff\x4f":
            raise CodecError(f"{self.name}: data does not start with the J2K SOC marker FF4F (got {data[:2].hex()})")
        with tempfile.TemporaryDirectory(prefix="codecbench-j2k-") as tmp:
            path = Path(tmp) / "image.j2k"
            path.write_bytes(data)
            try:
                decoded = glymur.Jp2k(str(path))[:]
            except Exception as exc:
                raise CodecError(f"{self.name}: cannot decode {len(data)} bytes ({type(exc).__name__}: {exc})") from exc
        if decoded.dtype != np.uint8 or decoded.ndim != 3 or decoded.shape[2] != 3:
            raise CodecError(f"{self.name}: decoded shape {decoded.shape} dtype {decoded.dtype}, expected H×W×3 uint8")
        return limited_yuv_to_rgb(decoded) if self.colorspace == "yuv" else np.ascontiguousarray(decoded)


def rgb_to_limited_yuv(image: np.ndarray) -> np.ndarray:
    """RGB uint8 → limited-range BT.601 Y'CbCr uint8 (H×W×3), rounded."""
    y, cb, cr = rgb_to_ycbcr(image)
    yuv = np.stack([16 + 219 / 255 * y, 128 + 224 / 255 * (cb - 128), 128 + 224 / 255 * (cr - 128)], axis=-1)
    return np.clip(np.rint(yuv), 0, 255).astype(np.uint8)


def limited_yuv_to_rgb(yuv: np.ndarray) -> np.ndarray:
    """The inverse of :func:`rgb_to_limited_yuv` (before its rounding), rounded and clipped to uint8 RGB."""
    values = yuv.astype(np.float64)
    return ycbcr_to_rgb((values[..., 0] - 16) * 255 / 219, 128 + (values[..., 1] - 128) * 255 / 224,
                        128 + (values[..., 2] - 128) * 255 / 224)
