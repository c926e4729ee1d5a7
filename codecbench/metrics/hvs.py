"""PSNR-HVS (Egiazarian et al. 2006) and PSNR-HVS-M (Ponomarenko et al. 2007), vectorised with numpy.

Convention (the original authors' MATLAB ``psnrhvsm.m``, which the ``psnr-hvsm``
package reproduces and checks against the published TID2013 values):

- Computed on luma only: 8-bit BT.601 studio-range Y = round(16 + (65.481 R +
  128.553 G + 24.966 B) / 255) from the 8-bit RGB values, peak 255.
- Non-overlapping 8×8 blocks from the top-left corner; a partial block at the
  right or bottom edge is ignored (MATLAB's loop stops there too). Images need
  at least one whole block.
- Per block, the orthonormal 2-D DCT-II of both images; the absolute
  coefficient differences are weighted by the contrast sensitivity table
  (CSF). PSNR-HVS: MSE = mean over blocks of Σ (CSF·|ΔDCT|)² / 64.
- PSNR-HVS-M additionally lowers every AC difference by the masking threshold
  of the block, max(mask(reference), mask(distorted)) / MASK_COEFF, clamped at
  0 (the DC term is not masked). mask = √(Σ_AC DCT²·MASK_COEFF · r) / 32 with r
  = the sum of the four 4×4 quarter variances over the 8×8 variance
  (MATLAB's ``var(x(:))·numel(x)``, sample variance), r = 0 for a flat block.
- PSNR = 10·log10(255² / MSE); identical images give +inf (the MATLAB code
  returns 100000 there, the package 100).

Daala's and libaom's ``psnrhvs`` tools differ from this definition: they use
overlapping blocks (step 7), an integer DCT, their own CSF tables and combine
Y, Cb and Cr; their values are not comparable to the ones here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.fft import dct

from codecbench.errors import MetricError
from codecbench.metrics.spec import check_pair

BLOCK = 8
PEAK = 255.0

#: Contrast sensitivity weights of the 8×8 DCT coefficients (row = vertical frequency).
CSF = np.array([
    [1.608443, 2.339554, 2.573509, 1.608443, 1.072295, 0.643377, 0.504610, 0.421887],
    [2.144591, 2.144591, 1.838221, 1.354478, 0.989811, 0.443708, 0.428918, 0.467911],
    [1.838221, 1.979622, 1.608443, 1.072295, 0.643377, 0.451493, 0.372972, 0.459555],
    [1.838221, 1.513829, 1.169777, 0.887417, 0.504610, 0.295806, 0.321689, 0.415082],
    [1.429727, 1.169777, 0.695543, 0.459555, 0.378457, 0.236102, 0.249855, 0.334222],
    [1.072295, 0.735288, 0.467911, 0.402111, 0.317717, 0.247453, 0.227744, 0.279729],
    [0.525206, 0.402111, 0.329937, 0.295806, 0.249855, 0.212687, 0.214459, 0.254803],
    [0.357432, 0.279729, 0.270896, 0.262603, 0.229778, 0.257351, 0.249855, 0.259950],
])
#: Masking weights of the 8×8 DCT coefficients, row-major (published with PSNR-HVS-M).
MASK_COEFF = np.array([
    0.390625, 0.826446, 1.000000, 0.390625, 0.173611, 0.062500, 0.038447, 0.026874, 0.694444, 0.694444, 0.510204,
    0.277008, 0.147929, 0.029727, 0.027778, 0.033058, 0.510204, 0.591716, 0.390625, 0.173611, 0.062500, 0.030779,
    0.021004, 0.031888, 0.510204, 0.346021, 0.206612, 0.118906, 0.038447, 0.013212, 0.015625, 0.026015, 0.308642,
    0.206612, 0.073046, 0.031888, 0.021626, 0.008417, 0.009426, 0.016866, 0.173611, 0.081633, 0.033058, 0.024414,
    0.015242, 0.009246, 0.007831, 0.011815, 0.041649, 0.024414, 0.016437, 0.013212, 0.009426, 0.006830, 0.006944,
    0.009803, 0.019290, 0.011815, 0.011080, 0.010412, 0.007972, 0.010000, 0.009426, 0.010203,
]).reshape(BLOCK, BLOCK)
_CSF = CSF.ravel()
_MASK_AC = np.where(np.arange(BLOCK**2) == 0, 0.0, MASK_COEFF.ravel())  # the DC term never masks
_DCT = dct(np.eye(BLOCK), norm="ortho", axis=0)  # rows: basis functions, so DCT(x) = D @ x @ D.T
_DCT_2D = np.kron(_DCT, _DCT).T  # flattened blocks (n, 64) @ _DCT_2D = flattened D @ x @ D.T
# BT.601 studio-range luma terms per 8-bit value, in the package's order of operations
_LUMA_TERMS = [weight * np.arange(256.0) / 255 for weight in (65.481, 128.553, 24.966)]


def studio_luma(image: np.ndarray) -> np.ndarray:
    """8-bit BT.601 studio-range Y (16–235) of an RGB uint8 image, as float64."""
    red, green, blue = (terms[image[..., channel]] for channel, terms in enumerate(_LUMA_TERMS))
    return np.round(16 + red + green + blue)


def _blocks(plane: np.ndarray) -> np.ndarray:
    """(blocks, 64): the whole 8×8 blocks of a plane, row-major, each flattened row-major."""
    rows, cols = plane.shape[0] // BLOCK, plane.shape[1] // BLOCK
    cropped = plane[: rows * BLOCK, : cols * BLOCK]
    return cropped.reshape(rows, BLOCK, cols, BLOCK).swapaxes(1, 2).reshape(-1, BLOCK**2)


def _masking(blocks: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """Masking strength of each block (see the module docstring); variances from exact integer sums."""
    energy = coefficients**2 @ _MASK_AC
    half = BLOCK // 2
    quarters = blocks.reshape(-1, 2, half, 2, half)
    sums, squares = quarters.sum(axis=(2, 4)), (quarters * quarters).sum(axis=(2, 4))
    n = half * half
    quarter_vars = (squares - sums**2 / n).sum(axis=(1, 2)) * (n / (n - 1))
    n = BLOCK * BLOCK
    whole = (squares.sum(axis=(1, 2)) - sums.sum(axis=(1, 2)) ** 2 / n) * (n / (n - 1))
    ratio = np.divide(quarter_vars, whole, out=np.zeros_like(whole), where=whole != 0)
    return np.sqrt(energy * ratio) / 32.0


def _psnr(mse: float) -> float:
    return math.inf if mse == 0 else 10.0 * math.log10(PEAK**2 / mse)


def compute(reference: np.ndarray, distorted: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """``psnr_hvs`` and/or ``psnr_hvsm`` of one pair, sharing the DCTs."""
    check_pair(reference, distorted)
    if min(reference.shape[:2]) < BLOCK:
        raise MetricError(f"image {reference.shape[1]}×{reference.shape[0]} has no whole 8×8 block for PSNR-HVS")
    unknown = set(names) - {"psnr_hvs", "psnr_hvsm"}
    if unknown:
        raise MetricError(f"codecbench.metrics.hvs computes psnr_hvs and psnr_hvsm, not {', '.join(sorted(unknown))}")
    blocks_ref, blocks_dist = _blocks(studio_luma(reference)), _blocks(studio_luma(distorted))
    dct_ref, dct_dist = blocks_ref @ _DCT_2D, blocks_dist @ _DCT_2D
    difference = np.abs(dct_ref - dct_dist)
    values: dict[str, float] = {}
    if "psnr_hvs" in names:
        values["psnr_hvs"] = _psnr(float(np.mean((difference * _CSF) ** 2)))
    if "psnr_hvsm" in names:
        mask = np.maximum(_masking(blocks_ref, dct_ref), _masking(blocks_dist, dct_dist))
        threshold = mask[:, None] / MASK_COEFF.ravel()
        threshold[:, 0] = 0.0  # the DC term is not masked
        masked = np.maximum(difference - threshold, 0.0) * _CSF
        values["psnr_hvsm"] = _psnr(float(np.mean(masked**2)))
    return values


def psnr_hvs(reference: np.ndarray, distorted: np.ndarray) -> float:
    """PSNR-HVS in dB on studio-range BT.601 Y (see the module docstring)."""
    return compute(reference, distorted, ["psnr_hvs"])["psnr_hvs"]


def psnr_hvsm(reference: np.ndarray, distorted: np.ndarray) -> float:
    """PSNR-HVS-M in dB on studio-range BT.601 Y (see the module docstring)."""
    return compute(reference, distorted, ["psnr_hvsm"])["psnr_hvsm"]
