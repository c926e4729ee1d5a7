"""Reading images as 8-bit RGB, the one form codecbench compares.

Conversion rules (each is lossless and unambiguous, everything else is a
per-image :class:`ImageError` that names the file and the reason):

- 8-bit RGB: used as stored.
- 8-bit grayscale (``L``) and bilevel (``1``): the gray value is copied to R, G and B.
- Palette (``P``) without transparency: expanded through its palette.
- RGBA / LA / palette with transparency / gray or RGB with a transparent
  colour (PNG tRNS): accepted only when every pixel is fully opaque
  (alpha 255), then alpha is dropped; any transparent pixel is an
  error, because flattening onto a background is a choice codecbench will not
  make for you.
- 16-bit (or deeper) images (PNG, TIFF, PPM/PGM with maxval > 255), CMYK,
  float and other modes: error (reducing them to 8-bit RGB needs a rounding
  or colour-management choice).
- Multi-frame files (animated GIF/WebP, multi-page TIFF): error.
- EXIF orientation is ignored: pixels are compared as stored.
- Images smaller than 11×11 pixels: error (the SSIM window is 11×11).
- Truncated or corrupt files: error with the decoder's message.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from codecbench.errors import ImageError, check_rgb

MIN_SIDE = 11  # the SSIM Gaussian window (σ = 1.5, 11 taps) must fit in the image

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".ppm", ".pnm", ".pgm", ".bmp", ".tif", ".tiff", ".webp", ".gif")


def _png_bit_depth(path: Path) -> int | None:
    """Bit depth from a PNG's IHDR chunk (Pillow silently reduces 16-bit RGB PNGs to 8 bits)."""
    with open(path, "rb") as f:
        head = f.read(26)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) >= 25:
        return head[24]
    return None


def _stored_sample_depth(im: Image.Image) -> int:
    """Bits per sample stored in a TIFF or PPM file (Pillow silently reduces 16-bit RGB ones to 8 bits); 8 otherwise."""
    if im.format == "TIFF":
        bits = im.tag_v2.get(258, 8)  # BitsPerSample, one value per channel
        return max(bits) if isinstance(bits, tuple) else int(bits)
    if im.format == "PPM" and im.tile and isinstance(im.tile[0].args, tuple):
        return int(im.tile[0].args[1]).bit_length()  # the header's maxval
    return 8


def load_rgb(path: str | Path) -> np.ndarray:
    """Read ``path`` as an H×W×3 uint8 RGB array following the module's conversion rules."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    try:
        depth = _png_bit_depth(path)
        if depth is not None and depth > 8:
            raise ImageError(f"{path}: {depth}-bit PNG; codecbench compares 8-bit RGB and will not choose a rounding for you")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                depth = _stored_sample_depth(im)
                if depth > 8:
                    raise ImageError(f"{path}: {depth}-bit samples; codecbench compares 8-bit RGB and will not choose "
                                     "a rounding for you")
                frames = getattr(im, "n_frames", 1)
                if frames > 1:
                    raise ImageError(f"{path}: has {frames} frames; only single-frame images are supported")
                im.load()
                return to_rgb(im, str(path))
    except ImageError:
        raise
    except Exception as exc:  # Pillow raises many types for corrupt or truncated files
        raise ImageError(f"{path}: cannot be decoded ({type(exc).__name__}: {exc})") from exc


def to_rgb(im: Image.Image, name: str = "image") -> np.ndarray:
    """Convert a loaded Pillow image to H×W×3 uint8 RGB, or raise ImageError (rules above)."""
    mode = im.mode
    if "transparency" in im.info and mode in ("P", "L", "1", "RGB"):
        # a tRNS chunk (palette alphas, or one gray level / colour marked transparent)
        im, mode = im.convert("RGBA"), "RGBA"
    elif mode == "P":
        im, mode = im.convert("RGB"), "RGB"
    if mode in ("RGBA", "LA", "PA"):
        alpha = np.asarray(im.getchannel("A"))
        if alpha.min() < 255:
            transparent = int((alpha < 255).sum())
            raise ImageError(f"{name}: {transparent} pixel(s) are not fully opaque; flatten the alpha channel first")
        im = im.convert("RGB" if mode != "LA" else "L")
        mode = im.mode
    if mode in ("L", "1"):
        gray = np.asarray(im.convert("L"))
        array = np.repeat(gray[:, :, None], 3, axis=2)
    elif mode == "RGB":
        array = np.asarray(im)
    else:
        raise ImageError(f"{name}: mode {im.mode} is not 8-bit RGB, grayscale or palette; convert it explicitly first")
    array = np.ascontiguousarray(array, dtype=np.uint8)
    check_size(array, name)
    return array


def check_size(image: np.ndarray, name: str = "image") -> None:
    """Raise ImageError unless both sides are at least ``MIN_SIDE`` pixels."""
    height, width = image.shape[:2]
    if height < MIN_SIDE or width < MIN_SIDE:
        raise ImageError(f"{name}: {width}×{height} px is smaller than the {MIN_SIDE}×{MIN_SIDE} minimum (SSIM window)")


def pixel_sha256(image: np.ndarray) -> str:
    """SHA-256 (hex) of the raw RGB bytes, row-major H×W×3 uint8.

    Together with width and height this identifies an image independently of
    its file encoding: any lossless copy has the same checksum.
    """
    check_rgb(image, error=ImageError)
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
