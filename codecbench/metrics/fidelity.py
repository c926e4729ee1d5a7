"""Image quality metrics with the conventions of the learned-compression literature (numpy, no torch).

Every function takes the reference and the distorted image as H×W×3 uint8 RGB
arrays of equal shape and returns a Python float. The dataset value of a
metric is the mean over images (CompressAI's convention); that averaging is
done by the report, not here.

- ``psnr_rgb``: 10·log10(255² / MSE) in dB, MSE over all pixels and all three
  RGB channels, in float64. Identical images give +inf.
- ``psnr_y``: the same on BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B,
  computed from the 8-bit values (full range, not rounded), peak 255; the
  luma differences are formed exactly, as (299 ΔR + 587 ΔG + 114 ΔB) / 1000,
  so a change that leaves luma unchanged gives +inf.
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

Numerics of SSIM and MS-SSIM (numpy and BLAS, no torch). They are computed from
the sum u = x + y and the difference d = x − y of the two images (exact in
float32 at every scale, and pooled as they are): with μ and σ² over the window,
cs = 1 − 2σd² / (σu² + σd² + 2 C2), which is Wang's (2σxy + C2) / (σx² + σy² + C2)
and stays precise where the images are close (σd² small), and luminance =
(2μxμy + C1) / (μx² + μy² + C1) with μx = (μu + μd) / 2, μy = (μu − μd) / 2.
Identical images give exactly 1, and swapping the images changes nothing. The
Gaussian filtering runs in float32, as two band-matrix products (down the
columns, then along the rows). Float32 alone would cancel badly in
σ² = E[u²] − μ² on flat areas, so the window centres are cut into tiles of
about 16×24 and each tile's u and d are shifted by their values at its centre
pixel before they and their squares are filtered (variances do not change
under a shift; the means get the shift added back). The filter taps are the
float64 Gaussian rounded to multiples of 2⁻²⁵ so that they sum to exactly 1.
The maps are summed in float32 along each row of window centres (pairwise)
and in float64 over the rows. On the 24 Kodak images distorted by JPEG
(quality 5/30/90), Gaussian noise (σ 2 and 20), +40 offset, inversion, a
vertical flip and flat grey/black/white replacements, SSIM and MS-SSIM stay
within 1e-7 of the float64 references (worst 5.9e-8 and 4.8e-8; scikit-image,
and pytorch-msssim given the same float64 window; ``benchmarks/fidelity_accuracy.py``).
pytorch-msssim's own float32 window (sum 1 − 3e-8) moves its results by up to
1.2e-5 on the flat replacements.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from codecbench.errors import MetricError
from codecbench.metrics.spec import check_pair, ms_ssim_to_db

PEAK = 255.0
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # 11 taps: scikit-image's truncate=3.5 and pytorch-msssim's win_size=11
SSIM_K1, SSIM_K2 = 0.01, 0.03
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
LUMA_BT601 = (0.299, 0.587, 0.114)
_LUMA_THOUSANDTHS = np.array([299.0, 587.0, 114.0], np.float32)  # 1000 × LUMA_BT601, exact

_taps = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
#: The normalised 1-D Gaussian (float64); the 2-D window is its outer product.
GAUSSIAN_WINDOW = np.exp(-(_taps**2) / (2 * SSIM_SIGMA**2))
GAUSSIAN_WINDOW /= GAUSSIAN_WINDOW.sum()
WINDOW_SIDE = GAUSSIAN_WINDOW.size

_C1 = (SSIM_K1 * PEAK) ** 2
_C2 = (SSIM_K2 * PEAK) ** 2
# Window centres per tile (about), rows × columns: each tile is centred on its own pixel value.
# Smaller tiles centre better but repeat more of the 10-pixel window margin.
TILE_ROWS, TILE_COLS = 16, 24
_CHUNK = 100_000  # floats of u and d tiles handled per step (whole tile rows, at least one): stays in cache


def float32_window() -> np.ndarray:
    """GAUSSIAN_WINDOW on a 2⁻²⁵ grid (each tap within 1.5e-8) with the centre tap making the sum exactly 1."""
    grid = 2.0**-25
    taps = np.round(GAUSSIAN_WINDOW / grid) * grid
    taps[SSIM_RADIUS] = 1.0 - (taps.sum() - taps[SSIM_RADIUS])
    return taps.astype(np.float32)


@functools.lru_cache(maxsize=64)
def band_matrix(outputs: int) -> np.ndarray:
    """outputs × (outputs + 10) float32 matrix whose rows are the window shifted by one: valid 1-D filtering."""
    band = np.zeros((outputs, outputs + WINDOW_SIDE - 1), np.float32)
    for tap, weight in enumerate(float32_window()):
        band[np.arange(outputs), np.arange(outputs) + tap] = weight
    band.flags.writeable = False
    return band


def tile_grid(valid: int, target: int) -> tuple[int, int]:
    """(tiles, window centres per tile): tiles of about ``target`` covering ``valid`` centres, the last one not empty."""
    size = -(-valid // max(1, round(valid / target)))
    return -(-valid // size), size


def require_window(shape: tuple[int, ...]) -> None:
    if min(shape[:2]) < WINDOW_SIDE:
        raise MetricError(f"image {shape[1]}×{shape[0]} is smaller than the {WINDOW_SIDE}×{WINDOW_SIDE} SSIM window")


def psnr_from_mse(mse: float) -> float:
    return math.inf if mse == 0 else 10.0 * math.log10(PEAK**2 / mse)


# -- SSIM / MS-SSIM core: planes u = x + y and d = x − y, 2×3×H×W float32 (plus zero padding) --


@dataclass(frozen=True)
class _Tiling:
    """How the valid window centres of an H×W image are cut into tiles (see the module docstring)."""

    height: int
    width: int

    @property
    def valid(self) -> tuple[int, int]:
        return self.height - 2 * SSIM_RADIUS, self.width - 2 * SSIM_RADIUS

    @property
    def grid(self) -> tuple[int, int, int, int]:
        """(tile rows, centres per tile row, tile columns, centres per tile column)."""
        valid_h, valid_w = self.valid
        return (*tile_grid(valid_h, TILE_ROWS), *tile_grid(valid_w, TILE_COLS))

    @property
    def padded_shape(self) -> tuple[int, int]:
        """Rows and columns the planes need (zeros beyond the image) so that every tile reads inside them."""
        rows, tile_h, cols, tile_w = self.grid
        return rows * tile_h + 2 * SSIM_RADIUS, cols * tile_w + 2 * SSIM_RADIUS


def _planes(tiling: _Tiling) -> np.ndarray:
    """2×3×padded planes for an image of ``tiling``'s size (u and d), zero beyond the image."""
    planes = np.empty((2, 3, *tiling.padded_shape), np.float32)
    planes[:, :, tiling.height:] = 0
    planes[:, :, :tiling.height, tiling.width:] = 0
    return planes


def _ssim_sums(planes: np.ndarray, tiling: _Tiling, want_ssim: bool) -> np.ndarray:
    """Per-channel sums (float64, 2×3) over the valid window centres of the cs map and, with ``want_ssim``, the SSIM map."""
    rows, tile_h, cols, tile_w = tiling.grid
    margin = 2 * SSIM_RADIUS
    span_h, span_w = tile_h + margin, tile_w + margin
    padded_h, padded_w = tiling.padded_shape
    valid_h, valid_w = tiling.valid
    line, out_line = cols * span_w, cols * tile_w  # one row of all tiles before filtering, after filtering
    centre_rows = np.minimum(np.arange(rows) * tile_h + SSIM_RADIUS + tile_h // 2, tiling.height - 1)
    centre_cols = np.minimum(np.arange(cols) * tile_w + SSIM_RADIUS + tile_w // 2, tiling.width - 1)
    centres = planes[:, :, centre_rows[:, None], centre_cols[None, :]].transpose(2, 0, 1, 3)  # rows, 2, 3, cols
    shift_in = np.repeat(centres[..., None, :, None], span_w, axis=-1).reshape(rows, 2, 3, 1, line)
    doubled = np.stack([centres[:, 0] + centres[:, 1], centres[:, 0] - centres[:, 1]], axis=1)  # 2x, 2y at the centres
    shift_out = np.repeat(doubled[..., None, :, None], tile_w, axis=-1).reshape(rows, 2, 3, 1, out_line)

    step = max(1, min(rows, _CHUNK // (2 * 3 * span_h * line)))  # tile rows per step
    moments = np.empty((step, 4, 3, span_h, line), np.float32)  # u', d', u'², d'²
    down = np.empty((step, 4, 3, tile_h, line), np.float32)
    filtered = np.empty((step, 4, 3, tile_h * cols, tile_w), np.float32)
    maps = np.empty((step, 2, 3, tile_h, out_line), np.float32)  # cs, SSIM (or scratch)
    down_band, across_band = band_matrix(tile_h), band_matrix(tile_w).T
    itemsize = planes.itemsize
    tile_strides = (tile_h * padded_w * itemsize, padded_h * padded_w * itemsize, padded_w * itemsize,
                    tile_w * itemsize, itemsize)
    sums = np.zeros((2, 3))
    summed = 2 if want_ssim else 1
    for first in range(0, rows, step):
        n = min(step, rows - first)
        m = moments[:n]
        for i in (0, 1):  # the tiles of u and d, each shifted by its centre value
            tiles = as_strided(planes[i, :, first * tile_h:], (n, 3, span_h, cols, span_w), tile_strides,
                               writeable=False)
            np.copyto(m[:, i].reshape(n, 3, span_h, cols, span_w), tiles)
            np.subtract(m[:, i], shift_in[first:first + n, i], out=m[:, i])
        np.multiply(m[:, 0], m[:, 0], out=m[:, 2])
        np.multiply(m[:, 1], m[:, 1], out=m[:, 3])
        f1 = down[:n]
        np.matmul(down_band, m.reshape(-1, span_h, line), out=f1.reshape(-1, tile_h, line))
        f2 = filtered[:n]
        np.matmul(f1.reshape(-1, tile_h * cols, span_w), across_band, out=f2.reshape(-1, tile_h * cols, tile_w))
        f2 = f2.reshape(n, 4, 3, tile_h, out_line)
        mu_u, mu_d, var_u, var_d = f2[:, 0], f2[:, 1], f2[:, 2], f2[:, 3]
        r = maps[:n]
        cs, scratch = r[:, 0], r[:, -1]
        np.multiply(mu_u, mu_u, out=scratch)
        np.subtract(var_u, scratch, out=var_u)  # σu²
        np.multiply(mu_d, mu_d, out=scratch)
        np.subtract(var_d, scratch, out=var_d)  # σd²
        # cs = 1 − 2σd² / (σu² + σd² + 2 C2): σd² is small where the images are close, and precise
        np.add(var_u, var_d, out=scratch)
        np.add(scratch, 2 * _C2, out=scratch)
        np.divide(var_d, scratch, out=cs)
        np.multiply(cs, -2.0, out=cs)
        np.add(cs, 1.0, out=cs)
        if want_ssim:  # luminance (2μxμy + C1) / (μx² + μy² + C1) = (2ab + 4 C1) / (a² + b² + 4 C1), a = 2μx, b = 2μy
            a, b = var_u, var_d  # reused
            np.add(mu_u, mu_d, out=a)
            np.add(a, shift_out[first:first + n, 0], out=a)
            np.subtract(mu_u, mu_d, out=b)
            np.add(b, shift_out[first:first + n, 1], out=b)
            np.multiply(a, b, out=mu_u)
            np.multiply(mu_u, 2.0, out=mu_u)
            np.add(mu_u, 4 * _C1, out=mu_u)
            np.multiply(a, a, out=a)
            np.multiply(b, b, out=b)
            np.add(a, b, out=scratch)
            np.add(scratch, 4 * _C1, out=scratch)
            np.divide(mu_u, scratch, out=scratch)
            np.multiply(scratch, cs, out=r[:, 1])  # SSIM
        row_sums = r[:, :summed, :, :, :valid_w].sum(axis=-1)  # float32, pairwise along each row of centres
        if first + n == rows:  # the last tile row may reach past the valid centres
            row_sums[-1, ..., valid_h - (rows - 1) * tile_h:] = 0
        sums[:summed] += row_sums.sum(axis=(0, 3), dtype=np.float64)
    return sums


def _ssim_terms(planes: np.ndarray, tiling: _Tiling, want_ssim: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-channel means (float64, shape (3,)) of the cs map and, with ``want_ssim``, of the SSIM map."""
    cs, ssim_means = _ssim_sums(planes, tiling, want_ssim) / math.prod(tiling.valid)
    return cs, (ssim_means if want_ssim else None)


def _pool(planes: np.ndarray, tiling: _Tiling) -> tuple[np.ndarray, _Tiling]:
    """2×2 average pooling of the image in ``planes``; an odd side gets one zero row/column in front."""
    height, width = tiling.height, tiling.width
    pad_h, pad_w = height % 2, width % 2
    image = planes[:, :, :height, :width]
    if pad_h or pad_w:
        image = np.zeros((2, 3, height + pad_h, width + pad_w), np.float32)
        image[:, :, pad_h:, pad_w:] = planes[:, :, :height, :width]
    pooled = _Tiling((height + pad_h) // 2, (width + pad_w) // 2)
    out = _planes(pooled)
    pairs = np.add(image[:, :, 0::2], image[:, :, 1::2])
    target = out[:, :, :pooled.height, :pooled.width]
    np.add(pairs[..., 0::2], pairs[..., 1::2], out=target)
    np.multiply(target, 0.25, out=target)
    return out, pooled


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


# -- the metrics --------------------------------------------------------------


class _Pair:
    """One reference/distorted pair, converted once and shared by the metrics computed on it."""

    def __init__(self, reference: np.ndarray, distorted: np.ndarray) -> None:
        check_pair(reference, distorted)
        self.shape = reference.shape
        self.difference = np.subtract(reference, distorted, dtype=np.int16)  # H×W×3, exact
        self._reference, self._distorted = reference, distorted
        self._planes: np.ndarray | None = None
        self._first_scale: tuple[np.ndarray, np.ndarray] | None = None
        self._ms_ssim: float | None = None

    def planes(self) -> np.ndarray:
        """u = x + y and d = x − y as zero-padded 2×3×H'×W' float32 planes (exact)."""
        if self._planes is None:
            require_window(self.shape)
            self._planes = _planes(_Tiling(*self.shape[:2]))
            height, width = self.shape[:2]
            total = np.add(self._reference, self._distorted, dtype=np.int16)
            np.copyto(self._planes[0, :, :height, :width], total.transpose(2, 0, 1), casting="unsafe")
            np.copyto(self._planes[1, :, :height, :width], self.difference.transpose(2, 0, 1), casting="unsafe")
        return self._planes

    def first_scale(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (cs, SSIM) means at full resolution: SSIM and MS-SSIM's first scale share them."""
        if self._first_scale is None:
            self._first_scale = _ssim_terms(self.planes(), _Tiling(*self.shape[:2]), want_ssim=True)
        return self._first_scale

    def psnr_rgb(self) -> float:
        diff = self.difference.reshape(-1).astype(np.float64)
        return psnr_from_mse(float(np.dot(diff, diff)) / diff.size)

    def psnr_y(self) -> float:
        # 1000 × ΔY = 299 ΔR + 587 ΔG + 114 ΔB: whole numbers below 2²⁴, exact in float32
        luma_thousandths = (self.difference.reshape(-1, 3).astype(np.float32) @ _LUMA_THOUSANDTHS).astype(np.float64)
        return psnr_from_mse(float(np.dot(luma_thousandths, luma_thousandths)) / 1e6 / luma_thousandths.size)

    def ssim(self) -> float:
        return float(self.first_scale()[1].mean())

    def ms_ssim(self) -> float:
        if self._ms_ssim is None:
            cs, ssim_means = self.first_scale()
            planes, tiling = self.planes(), _Tiling(*self.shape[:2])
            scales = ms_ssim_scales(*self.shape[:2])
            factors = []
            for level in range(1, scales):
                factors.append(np.maximum(cs, 0.0))
                planes, tiling = _pool(planes, tiling)
                cs, ssim_means = _ssim_terms(planes, tiling, want_ssim=level == scales - 1)
            factors.append(np.maximum(ssim_means, 0.0))
            per_channel = np.prod(np.stack(factors) ** ms_ssim_weights(scales)[:, None], axis=0)
            self._ms_ssim = float(per_channel.mean())
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
