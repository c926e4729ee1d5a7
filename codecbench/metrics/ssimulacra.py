"""SSIMULACRA 2.1 (Sneyers 2023), libjxl's ``tools/ssimulacra2.cc``, in float64 numpy.

``ssimulacra2``: 100 for identical images, about 90 visually lossless, 70
high quality, 50 medium, 30 low; it can go negative; higher is better.
The definition, step by step as in libjxl:

- 8-bit sRGB → linear sRGB (the sRGB transfer function, linear below 0.04045).
- Six scales (1:1 … 1:32); a scale is computed while the previous one is at
  least 8 px on both sides. Each next scale is the 2×2 box average of the
  previous one **in linear RGB**, the last row/column repeated for odd sizes.
- At each scale, linear RGB → XYB: the opsin absorbance matrix plus bias
  0.0037930732552754493, clamped at 0, cube root minus the cube root of the
  bias, X = (m0 − m1)/2, Y = (m0 + m1)/2, B = m2; then rescaled to 0…1:
  X·14 + 0.42, Y + 0.01, B − Y + 0.55.
- Blur: libjxl's recursive Gaussian, σ = 1.5 (Charalampidis 2016, radius 5,
  three second-order recursions; samples outside the image count as 0),
  horizontally then vertically.
- Per channel, maps over all pixels: 1 − SSIM' with SSIM' = (1 − (μ1 − μ2)²) ·
  (2σ12 + C2) / (σ1² + σ2² + C2), C2 = 0.0009, clamped at 0; and the edge
  ratio (1 + |x2 − μ2|) / (1 + |x1 − μ1|) − 1 split into its positive part
  ("ringing") and negative part ("blurring"). Each map gives its mean and its
  4-norm (mean of 4th powers)^(1/4).
- The 108 values (fewer with fewer scales, weights consumed in order) are
  weighted and summed, then mapped to the score by libjxl's polynomial and
  power law.

libjxl computes in float32 with a colour-management library; this is float64.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.signal import lfilter

from codecbench.errors import MetricError
from codecbench.metrics.spec import check_pair

SIGMA = 1.5
SCALES = 6
C2 = 0.0009
OPSIN = np.array([[0.30, 0.622, 0.078],
                  [0.23, 0.692, 0.078],
                  [0.24342268924547819, 0.20476744424496821, 1 - 0.24342268924547819 - 0.20476744424496821]])
OPSIN_BIAS = 0.0037930732552754493
# Weights of libjxl's Msssim::Score (SSIMULACRA 2.1), order: channel X, Y, B; scale; norm 1, 4; ssim, ringing, blur.
WEIGHTS = np.array([
    0.0, 0.0007376606707406586, 0.0, 0.0, 0.0007793481682867309, 0.0, 0.0, 0.0004371155730107379, 0.0,
    1.1041726426657346, 0.00066284834129271, 0.00015231632783718752, 0.0, 0.0016406437456599754, 0.0,
    1.8422455520539298, 11.441172603757666, 0.0, 0.0007989109436015163, 0.000176816438078653, 0.0,
    1.8787594979546387, 10.94906990605142, 0.0, 0.0007289346991508072, 0.9677937080626833, 0.0,
    0.00014003424285435884, 0.9981766977854967, 0.00031949755934435053, 0.0004550992113792063, 0.0, 0.0,
    0.0013648766163243398, 0.0, 0.0, 0.0, 0.0, 0.0, 7.466890328078848, 0.0, 17.445833984131262,
    0.0006235601634041466, 0.0, 0.0, 6.683678146179332, 0.00037724407979611296, 1.027889937768264,
    225.20515300849274, 0.0, 0.0, 19.213238186143016, 0.0011401524586618361, 0.001237755635509985,
    176.39317598450694, 0.0, 0.0, 24.43300999870476, 0.28520802612117757, 0.0004485436923833408, 0.0, 0.0, 0.0,
    34.77906344483772, 44.835625328877896, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0008680556573291698, 0.0,
    0.0, 0.0, 0.0, 0.0, 0.0005313191874358747, 0.0, 0.00016533814161379112, 0.0, 0.0, 0.0, 0.0, 0.0,
    0.0004179171803251336, 0.0017290828234722833, 0.0, 0.0020827005846636437, 0.0, 0.0, 8.826982764996862,
    23.19243343998926, 0.0, 95.1080498811086, 0.9863978034400682, 0.9834382792465353, 0.0012286405048278493,
    171.2667255897307, 0.9807858872435379, 0.0, 0.0, 0.0, 0.0005130064588990679, 0.0, 0.00010854057858411537,
])
_LEVELS = np.arange(256) / 255.0
_LINEAR = np.where(_LEVELS > 0.04045, ((_LEVELS + 0.055) / 1.055) ** 2.4, _LEVELS / 12.92)


@functools.lru_cache(maxsize=4)
def recursive_gaussian(sigma: float) -> tuple[int, np.ndarray, np.ndarray]:
    """(radius N, n2, d1) of libjxl's CreateRecursiveGaussian: y_k[n] = n2_k·(x[n−N−1] + x[n+N−1]) − d1_k·y_k[n−1] − y_k[n−2]."""
    radius = round(3.2795 * sigma + 0.2546)
    omega = np.pi / (2 * radius) * np.array([1.0, 3.0, 5.0])
    p = np.array([1.0, -1.0, 1.0]) / np.tan(0.5 * omega)
    r = np.array([1.0, -1.0, 1.0]) * p * p / np.sin(omega)
    rho = np.exp(-0.5 * sigma * sigma * omega * omega) / radius
    d_13 = p[0] * r[1] - r[0] * p[1]
    zeta_15 = (p[1] * r[2] - r[1] * p[2]) / d_13
    zeta_35 = (p[2] * r[0] - r[2] * p[0]) / d_13
    matrix = np.array([p, r, [zeta_15, zeta_35, 1.0]])
    gamma = np.array([1.0, radius * radius - sigma * sigma, zeta_15 * rho[0] + zeta_35 * rho[1] + rho[2]])
    beta = np.linalg.solve(matrix, gamma)
    return radius, -beta * np.cos(omega * (radius + 1)), -2 * np.cos(omega)


def blur_axis(planes: np.ndarray, axis: int, sigma: float = SIGMA) -> np.ndarray:
    """libjxl's FastGaussian1D along ``axis``: zero outside the image, outputs aligned with the inputs."""
    radius, n2, d1 = recursive_gaussian(sigma)
    planes = np.moveaxis(planes, axis, -1)
    size = planes.shape[-1]
    # s[m] = x[m] + x[m − 2N] for m = 0 … size + N − 2 (m = n + N − 1), zero outside the image
    right = np.zeros(planes.shape[:-1] + (size + radius - 1,))
    right[..., : min(size, right.shape[-1])] = planes[..., : right.shape[-1]]
    summed = right.copy()
    summed[..., 2 * radius:] += planes[..., : max(right.shape[-1] - 2 * radius, 0)]
    out = sum(lfilter([n2[k]], [1.0, d1[k], 1.0], summed, axis=-1) for k in range(3))
    return np.moveaxis(out[..., radius - 1:], -1, axis)


def blur(planes: np.ndarray) -> np.ndarray:
    """The 2-D recursive Gaussian of a stack of planes (…, H, W): rows first, then columns."""
    return blur_axis(blur_axis(planes, -1), -2)


def _downsample(linear: np.ndarray) -> np.ndarray:
    """2×2 box average of (…, H, W) planes, the last row/column repeated when a side is odd."""
    height, width = linear.shape[-2:]
    padded = np.pad(linear, [(0, 0)] * (linear.ndim - 2) + [(0, height % 2), (0, width % 2)], mode="edge")
    return 0.25 * (padded[..., 0::2, 0::2] + padded[..., 1::2, 0::2] + padded[..., 0::2, 1::2] + padded[..., 1::2, 1::2])


def positive_xyb(linear: np.ndarray) -> np.ndarray:
    """libjxl's XYB of linear sRGB planes (3, H, W), rescaled to about 0…1 (MakePositiveXYB)."""
    mixed = np.tensordot(OPSIN, linear, axes=1) + OPSIN_BIAS
    mixed = np.cbrt(np.maximum(mixed, 0.0)) - np.cbrt(OPSIN_BIAS)
    x, y, b = 0.5 * (mixed[0] - mixed[1]), 0.5 * (mixed[0] + mixed[1]), mixed[2]
    return np.stack([x * 14.0 + 0.42, y + 0.01, b - y + 0.55])


def _norms(maps: np.ndarray) -> np.ndarray:
    """(mean, 4-norm) per channel of (3, H, W) maps → (3, 2)."""
    return np.stack([maps.mean(axis=(1, 2)), np.mean(maps**4, axis=(1, 2)) ** 0.25], axis=-1)


def _scale_features(xyb1: np.ndarray, xyb2: np.ndarray) -> np.ndarray:
    """(3 channels, 2 norms, 3 maps: ssim, ringing, blurring) of one scale."""
    blurred = blur(np.stack([xyb1 * xyb1, xyb2 * xyb2, xyb1 * xyb2, xyb1, xyb2]))
    sigma11, sigma22, sigma12, mu1, mu2 = blurred
    num_m = 1.0 - (mu1 - mu2) ** 2
    num_s = 2 * (sigma12 - mu1 * mu2) + C2
    denom_s = (sigma11 - mu1 * mu1) + (sigma22 - mu2 * mu2) + C2
    ssim_error = np.maximum(1.0 - num_m * num_s / denom_s, 0.0)
    edge = (1.0 + np.abs(xyb2 - mu2)) / (1.0 + np.abs(xyb1 - mu1)) - 1.0
    return np.stack([_norms(ssim_error), _norms(np.maximum(edge, 0.0)), _norms(np.maximum(-edge, 0.0))], axis=-1)


def score(features: list[np.ndarray]) -> float:
    """libjxl's Msssim::Score of the per-scale features (weights taken in order: channel, scale, norm, map)."""
    values = np.stack(features, axis=1)  # (channel, scale, norm, map)
    weighted = float(np.abs(values).ravel() @ WEIGHTS[: values.size]) * 0.9562382616834844
    weighted = 2.326765642916932 * weighted - 0.020884521182843837 * weighted**2 + 6.248496625763138e-05 * weighted**3
    return 100.0 - 10.0 * weighted**0.6276336467831387 if weighted > 0 else 100.0


def ssimulacra2(reference: np.ndarray, distorted: np.ndarray) -> float:
    """SSIMULACRA 2.1 score of the distorted image against the reference (higher is better, 100 = identical)."""
    check_pair(reference, distorted)
    if min(reference.shape[:2]) < 8:
        raise MetricError(f"image {reference.shape[1]}×{reference.shape[0]} is smaller than SSIMULACRA2's 8×8 minimum")
    linear1, linear2 = (np.moveaxis(_LINEAR[image], -1, 0) for image in (reference, distorted))
    features = []
    for scale in range(SCALES):
        if scale:
            if min(linear1.shape[1:]) < 8:
                break
            linear1, linear2 = _downsample(linear1), _downsample(linear2)
        features.append(_scale_features(positive_xyb(linear1), positive_xyb(linear2)))
    return score(features)
