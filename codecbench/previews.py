"""Preview crops: the small centre crops of originals and decoded images that the report shows side by side."""

from __future__ import annotations

import io

import numpy as np

#: Side of the square centre crop stored for visual comparison (pixels).
CROP_SIDE = 256


def centre_crop(image: np.ndarray, side: int = CROP_SIDE) -> np.ndarray:
    """The central ``side``×``side`` region (the whole image along a shorter side)."""
    height, width = image.shape[:2]
    top, left = max(0, (height - side) // 2), max(0, (width - side) // 2)
    return image[top : top + side, left : left + side]


def png_bytes(array: np.ndarray) -> bytes:
    """An RGB array as PNG bytes (fast, light compression: previews are small and lossless)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def preview_png(image: np.ndarray) -> bytes:
    """The centre crop of ``image`` as PNG bytes."""
    return png_bytes(centre_crop(image))
