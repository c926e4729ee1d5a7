"""Image quality metrics with the conventions of the learned-compression literature.

Every function takes the reference and the distorted image as H×W×3 uint8 RGB
arrays of equal shape and returns a Python float. The dataset value of a
metric is the mean over images (CompressAI's convention); that averaging is
done by the report, not here.

- ``psnr_rgb``: 10·log10(255² / MSE) in dB, MSE over all pixels and all three
  RGB channels, in float64. Identical images give +inf.
- ``psnr_y``: the same on BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B,
  computed from the 8-bit values (full range, not rounded), peak 255; the
  luma differences are formed exactly, as (299 ΔR + 587 ΔG + 114 ΔB) / 1000 in
  float64, so a change that leaves luma unchanged gives +inf.
- ``ssim``: Wang et al. 2004. Gaussian window σ = 1.5 truncated to 11×11
  normalised taps, K1 = 0.01, K2 = 0.03, data range 255, population (not
  sample) covariance, computed over the valid region only (no padding: the
  5-pixel border is not a window centre), mean of the SSIM map per RGB
  channel, then mean over the three channels. This is scikit-image's
  ``structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255, channel_axis=2)``.
- ``ms_ssim``: Wang et al. 2003. 5 scales with weights 0.0448, 0.2856,
  0.3001, 0.2363, 0.1333, the same window and constants, per RGB channel,
  2×2 average pooling between scales (an odd side gets one zero row/column in
  front, counted in the average: PyTorch's ``avg_pool2d(2, padding=side % 2)``),
  contrast–structure terms and the last scale's SSIM clamped at 0, product over
  scales, mean over channels: pytorch-msssim's ``ms_ssim(X, Y, data_range=255)``.
  With 5 scales the published weights are used as they are (they sum to
  1.0001). Images whose smaller side is ≤ 160 px cannot have 5 scales of at
  least 11 px: they use the largest number of scales S whose smallest scale is
  still ≥ 11 px (:func:`ms_ssim_scales`), with the first S weights renormalised
  to sum to 1, so that S = 1 gives max(SSIM, 0).
- ``ms_ssim_db``: −10·log10(1 − MS-SSIM) in dB; +inf when MS-SSIM = 1.

Numerics of SSIM and MS-SSIM: the Gaussian filtering runs in float32, as two
band-matrix products (down the columns, then along the rows), several times
faster than float64 filtering. Float32 alone would cancel badly in
σ² = E[x²] − μ² on flat areas, so the window centres are cut into tiles of
about 16×24 and each tile is shifted by its own centre pixel before x, y, x − y
and the squares are filtered (variances and covariances do not change under a
shift; the means get the shift added back). The filter taps are the float64
Gaussian rounded to multiples of 2⁻²⁵ so that they sum to exactly 1. On the 24
Kodak images distorted by JPEG (quality 5/30/90), Gaussian noise (σ 2 and 20),
+40 offset, inversion, a vertical flip and flat grey/black/white replacements,
SSIM and MS-SSIM stay within 1e-7 of the float64 references (worst 6.7e-8 and
4.2e-8; scikit-image, and pytorch-msssim given the same float64 window).
pytorch-msssim's own float32 window (sum 1 − 3e-8) moves its results by up to
1.2e-5 on the flat replacements. Products run in full float32 even if the
process allowed bfloat16 ones (``torch.set_float32_matmul_precision``).
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from codecbench.errors import MetricError
from codecbench.metrics.spec import check_pair, ms_ssim_to_db

PEAK = 255.0
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # 11 taps: scikit-image's truncate=3.5 and pytorch-msssim's win_size=11
SSIM_K1, SSIM_K2 = 0.01, 0.03
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
LUMA_BT601 = (0.299, 0.587, 0.114)
_LUMA_THOUSANDTHS = torch.tensor([299.0, 587.0, 114.0], dtype=torch.float64)  # 1000 × LUMA_BT601, exact

_taps = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
#: The normalised 1-D Gaussian (float64); the 2-D window is its outer product.
GAUSSIAN_WINDOW = np.exp(-(_taps**2) / (2 * SSIM_SIGMA**2))
GAUSSIAN_WINDOW /= GAUSSIAN_WINDOW.sum()
WINDOW_SIDE = GAUSSIAN_WINDOW.size

_C1 = (SSIM_K1 * PEAK) ** 2
_C2 = (SSIM_K2 * PEAK) ** 2
# Window centres per tile (about), rows × columns: each tile is centred on its own pixel value.
# Smaller tiles centre better but repeat more of the 10-pixel window margin; 16×24 measured best.
_TILE_ROWS, _TILE_COLS = 16, 24
_MOMENTS = 4  # filtered per RGB channel: x', x' − y', x'² + y'², (x' − y')²


def _float32_window() -> np.ndarray:
    """GAUSSIAN_WINDOW on a 2⁻²⁵ grid (each tap within 1.5e-8) with the centre tap making the sum exactly 1."""
    grid = 2.0**-25
    taps = np.round(GAUSSIAN_WINDOW / grid) * grid
    taps[SSIM_RADIUS] = 1.0 - (taps.sum() - taps[SSIM_RADIUS])
    return taps.astype(np.float32)


_WINDOW32 = _float32_window()


@functools.lru_cache(maxsize=64)
def _band(outputs: int) -> torch.Tensor:
    """outputs × (outputs + 10) float32 matrix whose rows are the window shifted by one: valid 1-D filtering."""
    band = np.zeros((outputs, outputs + WINDOW_SIDE - 1), np.float32)
    for tap, weight in enumerate(_WINDOW32):
        band[np.arange(outputs), np.arange(outputs) + tap] = weight
    return torch.from_numpy(band)


@contextlib.contextmanager
def ieee_float32_matmul() -> Iterator[None]:
    """Full float32 products even if the process allowed bfloat16 ones (set_float32_matmul_precision)."""
    previous = torch.get_float32_matmul_precision()
    if previous == "highest":
        yield
        return
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def _require_window(shape: tuple[int, ...]) -> None:
    if min(shape[:2]) < WINDOW_SIDE:
        raise MetricError(f"image {shape[1]}×{shape[0]} is smaller than the {WINDOW_SIDE}×{WINDOW_SIDE} SSIM window")


def _psnr_from_mse(mse: float) -> float:
    return math.inf if mse == 0 else 10.0 * math.log10(PEAK**2 / mse)


# -- SSIM / MS-SSIM core: planar 3×H×W float32 tensors holding exact pixel values --


def _tile_grid(valid: int, target: int) -> tuple[int, int]:
    """(tiles, window centres per tile): tiles of about ``target`` covering ``valid`` centres, the last one not empty."""
    size = -(-valid // max(1, round(valid / target)))
    return -(-valid // size), size


def _ssim_terms(x: torch.Tensor, y: torch.Tensor, want_ssim: bool, want_cs: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per-channel means (float64, shape (3,)) of the SSIM map and of the contrast–structure map.

    ``x`` and ``y`` are 3×H×W float32 tensors (H, W ≥ 11). The window centres are
    cut into tiles; each tile is shifted by its centre pixel before x', y',
    x' − y' and the squares are filtered (a band-matrix product down the
    columns, then along the rows), which keeps float32 accurate (module docstring).
    Tiles are processed one row of tiles at a time so the work stays in cache.
    """
    _, height, width = x.shape
    radius = SSIM_RADIUS
    valid_h, valid_w = height - 2 * radius, width - 2 * radius
    rows, tile_h = _tile_grid(valid_h, _TILE_ROWS)
    cols, tile_w = _tile_grid(valid_w, _TILE_COLS)
    span_h, span_w = tile_h + 2 * radius, tile_w + 2 * radius
    padded_h, padded_w = rows * tile_h + 2 * radius, cols * tile_w + 2 * radius
    centre_rows = torch.from_numpy(np.minimum(np.arange(rows) * tile_h + radius + tile_h // 2, height - 1))
    centre_cols = torch.from_numpy(np.minimum(np.arange(cols) * tile_w + radius + tile_w // 2, width - 1))

    def tiles(image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(rows, span_h, 3, cols, span_w) view of overlapping tiles, and each tile's shift (rows, 1, 3, cols, 1)."""
        shift = image[:, centre_rows[:, None], centre_cols[None, :]].permute(1, 0, 2)[:, None, :, :, None]
        if (padded_h, padded_w) != (height, width):
            padded = image.new_zeros((3, padded_h, padded_w))
            padded[:, :height, :width] = image
            image = padded
        image = image.contiguous()  # the strides below assume it
        view = image.as_strided((rows, span_h, 3, cols, span_w),
                                (tile_h * padded_w, padded_w, padded_h * padded_w, tile_w, 1))
        return view, shift

    x_tiles, x_shifts = tiles(x)
    y_tiles, y_shifts = tiles(y)
    down, across = _band(tile_h), _band(tile_w).T
    moments = torch.empty((span_h, _MOMENTS, 3, cols, span_w))
    xs, ds, squares, d_squares = moments.unbind(1)
    last_w = valid_w - (cols - 1) * tile_w
    ssim_sum = torch.zeros(3, dtype=torch.float64)
    cs_sum = torch.zeros(3, dtype=torch.float64)

    def accumulate(total: torch.Tensor, values: torch.Tensor) -> None:  # values: (h, 3, cols, tile_w)
        total += values[:, :, :-1].sum((0, 2, 3), dtype=torch.float64)
        total += values[:, :, -1, :last_w].sum((0, 2), dtype=torch.float64)

    with ieee_float32_matmul():
        for row in range(rows):
            x_shift, y_shift = x_shifts[row], y_shifts[row]
            torch.sub(x_tiles[row], x_shift, out=xs)
            ys = y_tiles[row] - y_shift
            torch.sub(xs, ys, out=ds)
            torch.mul(xs, xs, out=squares).addcmul_(ys, ys)
            torch.mul(ds, ds, out=d_squares)
            filtered = torch.mm(torch.mm(down, moments.view(span_h, -1)).view(-1, span_w), across)
            centres = tile_h if row < rows - 1 else valid_h - (rows - 1) * tile_h
            mu_x, mu_d, mean_squares, mean_d_squares = filtered.view(tile_h, _MOMENTS, 3, cols, tile_w)[:centres].unbind(1)
            mu_y = mu_x - mu_d
            # σx² + σy² + C2, and σ²(x − y) = σx² + σy² − 2σxy: cs = (2σxy + C2) / (σx² + σy² + C2)
            variances = torch.addcmul(mean_squares, mu_x, mu_x, value=-1).addcmul_(mu_y, mu_y, value=-1).add_(_C2)
            cs_map = torch.addcmul(mean_d_squares, mu_d, mu_d, value=-1).div_(variances).neg_().add_(1.0)
            if want_cs:
                accumulate(cs_sum, cs_map)
            if want_ssim:
                mean_x = mu_x.add_(x_shift)
                mean_y = mu_y.add_(y_shift)
                luminance = torch.mul(mean_x, mean_y).mul_(2).add_(_C1)
                # both squares rounded before adding, as 2·μxμy above: identical images give exactly 1
                luminance.div_(torch.mul(mean_x, mean_x).add_(torch.mul(mean_y, mean_y)).add_(_C1))
                accumulate(ssim_sum, luminance.mul_(cs_map))
    count = valid_h * valid_w
    return ((ssim_sum / count).numpy() if want_ssim else None), ((cs_sum / count).numpy() if want_cs else None)


def _pool(image: torch.Tensor) -> torch.Tensor:
    """2×2 average pooling of 3×H×W; an odd side gets one zero row/column in front (PyTorch avg_pool2d padding)."""
    _, height, width = image.shape
    if height % 2 or width % 2:
        padded = image.new_zeros((3, height + height % 2, width + width % 2))
        padded[:, height % 2:, width % 2:] = image
        image = padded
    return (image[:, 0::2, 0::2] + image[:, 1::2, 0::2] + image[:, 0::2, 1::2] + image[:, 1::2, 1::2]).mul_(0.25)


def ms_ssim_scales(height: int, width: int) -> int:
    """Number of MS-SSIM scales used: at most 5, each scale's smaller side ≥ 11 px (0 if the image is smaller)."""
    side, scales = min(height, width), 0
    while scales < len(MS_SSIM_WEIGHTS) and side >= WINDOW_SIDE:
        scales += 1
        side = (side + 1) // 2
    return scales


def ms_ssim_weights(scales: int) -> np.ndarray:
    """The published weights for 5 scales; for fewer, the first ``scales`` renormalised to sum to 1."""
    weights = np.array(MS_SSIM_WEIGHTS[:scales])
    return weights if scales == len(MS_SSIM_WEIGHTS) else weights / weights.sum()


def _ms_ssim_from(x: torch.Tensor, y: torch.Tensor, first_cs: np.ndarray, first_ssim: np.ndarray) -> float:
    """MS-SSIM given the first scale's per-channel cs and SSIM means."""
    scales = ms_ssim_scales(*x.shape[1:])
    factors = []
    ssim_means, cs = first_ssim, first_cs
    for level in range(1, scales):
        factors.append(np.maximum(cs, 0.0))
        x, y = _pool(x), _pool(y)
        ssim_means, cs = _ssim_terms(x, y, want_ssim=level == scales - 1, want_cs=level < scales - 1)
    factors.append(np.maximum(ssim_means, 0.0))
    per_channel = np.prod(np.stack(factors) ** ms_ssim_weights(scales)[:, None], axis=0)
    return float(per_channel.mean())


# -- the metrics --------------------------------------------------------------


class _Pair:
    """One reference/distorted pair, converted once and shared by the metrics computed on it."""

    def __init__(self, reference: np.ndarray, distorted: np.ndarray) -> None:
        check_pair(reference, distorted)
        self.reference, self.distorted = reference, distorted
        # exact 8-bit values, planar 3×H×W, C-contiguous
        self.x = torch.from_numpy(np.ascontiguousarray(reference.transpose(2, 0, 1), dtype=np.float32))
        self.y = torch.from_numpy(np.ascontiguousarray(distorted.transpose(2, 0, 1), dtype=np.float32))
        self._difference: torch.Tensor | None = None
        self._first_scale: tuple[np.ndarray, np.ndarray] | None = None
        self._ms_ssim: float | None = None

    def difference(self) -> torch.Tensor:
        """reference − distorted in float64, 3×(H·W) (exact)."""
        if self._difference is None:
            self._difference = (self.x - self.y).view(3, -1).double()
        return self._difference

    def first_scale(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (SSIM, cs) means at full resolution: SSIM and MS-SSIM's first scale share them."""
        if self._first_scale is None:
            _require_window(self.reference.shape)
            self._first_scale = _ssim_terms(self.x, self.y, want_ssim=True, want_cs=True)
        return self._first_scale

    def psnr_rgb(self) -> float:
        diff = self.difference().view(-1)
        return _psnr_from_mse(float(torch.dot(diff, diff)) / diff.numel())

    def psnr_y(self) -> float:
        luma_thousandths = _LUMA_THOUSANDTHS @ self.difference()  # 1000 × ΔY, whole numbers: exact
        return _psnr_from_mse(float(torch.dot(luma_thousandths, luma_thousandths)) / 1e6 / luma_thousandths.numel())

    def ssim(self) -> float:
        return float(self.first_scale()[0].mean())

    def ms_ssim(self) -> float:
        if self._ms_ssim is None:
            ssim_means, cs = self.first_scale()
            self._ms_ssim = _ms_ssim_from(self.x, self.y, cs, ssim_means)
        return self._ms_ssim

    def ms_ssim_db(self) -> float:
        return ms_ssim_to_db(self.ms_ssim())


def psnr_rgb(reference: np.ndarray, distorted: np.ndarray) -> float:
    """PSNR in dB: 10·log10(255² / MSE), MSE over all pixels and the 3 RGB channels (float64); +inf if identical."""
    return _Pair(reference, distorted).psnr_rgb()


def psnr_y(reference: np.ndarray, distorted: np.ndarray) -> float:
    """PSNR in dB of BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B (exact, unrounded, full range), peak 255."""
    return _Pair(reference, distorted).psnr_y()


def ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Mean SSIM (Gaussian σ 1.5, 11×11, K 0.01/0.03, range 255, valid region), averaged over RGB channels."""
    return _Pair(reference, distorted).ssim()


def ms_ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """MS-SSIM as pytorch-msssim (5 scales; fewer, renormalised, below 161 px), averaged over RGB channels."""
    return _Pair(reference, distorted).ms_ssim()


def ms_ssim_db(reference: np.ndarray, distorted: np.ndarray) -> float:
    """MS-SSIM in dB: −10·log10(1 − MS-SSIM); +inf when MS-SSIM = 1."""
    return _Pair(reference, distorted).ms_ssim_db()


def compute(reference: np.ndarray, distorted: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """Several of this module's metrics of one pair (the ``batch`` of their declarations).

    Conversions and SSIM/MS-SSIM's first scale are computed once and shared.
    """
    pair = _Pair(reference, distorted)
    return {name: getattr(pair, name)() for name in names}
