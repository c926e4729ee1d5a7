"""BT.601 Y'CbCr ↔ RGB in float64, full range on the 8-bit scale (the JPEG/JFIF and CompressAI convention).

Y = 0.299 R + 0.587 G + 0.114 B, Cb = 128 + (B − Y)/1.772, Cr = 128 + (R − Y)/1.402;
the inverse is exact (before the final rounding to uint8).
"""

from __future__ import annotations

import numpy as np

KR, KB = 0.299, 0.114
KG = 1.0 - KR - KB


def rgb_to_ycbcr(image: np.ndarray) -> np.ndarray:
    """H×W×3 RGB (0–255) → float64 planes Y, Cb, Cr (3×H×W), full range, 8-bit scale."""
    r, g, b = (image[..., c].astype(np.float64) for c in range(3))
    y = KR * r + KG * g + KB * b
    return np.stack([y, 128.0 + (b - y) / (2 * (1 - KB)), 128.0 + (r - y) / (2 * (1 - KR))])


def ycbcr_to_rgb(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Float Y, Cb, Cr planes (full range, 8-bit scale) → H×W×3 uint8 RGB, rounded and clipped."""
    r = y + 2 * (1 - KR) * (cr - 128.0)
    b = y + 2 * (1 - KB) * (cb - 128.0)
    g = (y - KR * r - KB * b) / KG
    return np.clip(np.rint(np.stack([r, g, b], axis=-1)), 0, 255).astype(np.uint8)
