"""CIEDE2000 colour difference (Sharma, Wu and Dalal 2005), by scikit-image.

``ciede2000``: the mean over pixels of ΔE00 between the reference and the
distorted image, with kL = kC = kH = 1; lower is better, 0 for identical
images. Colours go from 8-bit sRGB to CIELAB by scikit-image's ``rgb2lab``:
the sRGB transfer function (linear below 0.04045), the sRGB → XYZ matrix, the
D65 white of the 2° observer (0.95047, 1, 1.08883), and L* = 116·f(Y) − 16
with f(t) = t^(1/3) above 0.008856 and 7.787·t + 16/116 below. Hue angles are in [0, 2π); the mean hue and hue difference follow
Sharma et al.'s equations (10)–(15), including their rule for achromatic
colours (C′ = 0), as scikit-image's ``deltaE_ciede2000`` implements them.
"""

from __future__ import annotations

import numpy as np

from codecbench.metrics.spec import check_pair


def ciede2000(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Mean ΔE00 over pixels between two 8-bit sRGB images (lower is better)."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    check_pair(reference, distorted)
    return float(np.mean(deltaE_ciede2000(rgb2lab(reference), rgb2lab(distorted)), dtype=np.float64))
