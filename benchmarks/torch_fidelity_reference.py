"""The PyTorch implementation of PSNR-RGB, PSNR-Y, SSIM and MS-SSIM that codecbench used before the numpy one.

Kept only for ``bench_metrics.py``, which times it beside
:mod:`codecbench.metrics.fidelity` in one run and reports the ratio and the
largest difference; it is not shipped. Same conventions and numerics as the
numpy module (float32 band-matrix filtering of tiles shifted by their centre
pixel, 16×24 centres per tile), written with torch operations on x and y:
about 1,500 small torch operations per Kodak image.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from codecbench.metrics.fidelity import (
    PEAK,
    SSIM_K1,
    SSIM_K2,
    SSIM_RADIUS,
    WINDOW_SIDE,
    float32_window,
    ms_ssim_scales,
    ms_ssim_weights,
    psnr_from_mse,
    require_window,
    tile_grid,
)
from codecbench.metrics.spec import check_pair

_LUMA_THOUSANDTHS = torch.tensor([299.0, 587.0, 114.0], dtype=torch.float64)  # 1000 × BT.601 luma weights, exact
_C1 = (SSIM_K1 * PEAK) ** 2
_C2 = (SSIM_K2 * PEAK) ** 2
_TILE_ROWS, _TILE_COLS = 16, 24
_MOMENTS = 4  # filtered per RGB channel: x', x' − y', x'² + y'², (x' − y')²


@functools.lru_cache(maxsize=64)
def _band(outputs: int) -> torch.Tensor:
    """outputs × (outputs + 10) float32 matrix whose rows are the window shifted by one: valid 1-D filtering."""
    band = np.zeros((outputs, outputs + WINDOW_SIDE - 1), np.float32)
    for tap, weight in enumerate(float32_window()):
        band[np.arange(outputs), np.arange(outputs) + tap] = weight
    return torch.from_numpy(band)


@contextlib.contextmanager
def _ieee_float32_matmul() -> Iterator[None]:
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def _ssim_terms(x: torch.Tensor, y: torch.Tensor, want_ssim: bool,
                want_cs: bool) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Per-channel means (float64, shape (3,)) of the SSIM map and of the cs map; x, y: 3×H×W float32."""
    _, height, width = x.shape
    radius = SSIM_RADIUS
    valid_h, valid_w = height - 2 * radius, width - 2 * radius
    rows, tile_h = tile_grid(valid_h, _TILE_ROWS)
    cols, tile_w = tile_grid(valid_w, _TILE_COLS)
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
        image = image.contiguous()
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

    with _ieee_float32_matmul():
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
            variances = torch.addcmul(mean_squares, mu_x, mu_x, value=-1).addcmul_(mu_y, mu_y, value=-1).add_(_C2)
            cs_map = torch.addcmul(mean_d_squares, mu_d, mu_d, value=-1).div_(variances).neg_().add_(1.0)
            if want_cs:
                accumulate(cs_sum, cs_map)
            if want_ssim:
                mean_x = mu_x.add_(x_shift)
                mean_y = mu_y.add_(y_shift)
                luminance = torch.mul(mean_x, mean_y).mul_(2).add_(_C1)
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


class _Pair:
    """One reference/distorted pair, converted once and shared by the metrics computed on it."""

    def __init__(self, reference: np.ndarray, distorted: np.ndarray) -> None:
        check_pair(reference, distorted)
        self.shape = reference.shape
        self.x = torch.from_numpy(np.ascontiguousarray(reference.transpose(2, 0, 1), dtype=np.float32))
        self.y = torch.from_numpy(np.ascontiguousarray(distorted.transpose(2, 0, 1), dtype=np.float32))
        self.difference = (self.x - self.y).view(3, -1).double()
        self._first_scale: tuple[np.ndarray, np.ndarray] | None = None

    def first_scale(self) -> tuple[np.ndarray, np.ndarray]:
        if self._first_scale is None:
            require_window(self.shape)
            self._first_scale = _ssim_terms(self.x, self.y, want_ssim=True, want_cs=True)
        return self._first_scale

    def psnr_rgb(self) -> float:
        diff = self.difference.view(-1)
        return psnr_from_mse(float(torch.dot(diff, diff)) / diff.numel())

    def psnr_y(self) -> float:
        luma_thousandths = _LUMA_THOUSANDTHS @ self.difference
        return psnr_from_mse(float(torch.dot(luma_thousandths, luma_thousandths)) / 1e6 / luma_thousandths.numel())

    def ssim(self) -> float:
        return float(self.first_scale()[0].mean())

    def ms_ssim(self) -> float:
        ssim_means, cs = self.first_scale()
        x, y = self.x, self.y
        scales = ms_ssim_scales(*self.shape[:2])
        factors = []
        for level in range(1, scales):
            factors.append(np.maximum(cs, 0.0))
            x, y = _pool(x), _pool(y)
            ssim_means, cs = _ssim_terms(x, y, want_ssim=level == scales - 1, want_cs=level < scales - 1)
        factors.append(np.maximum(ssim_means, 0.0))
        return float(np.prod(np.stack(factors) ** ms_ssim_weights(scales)[:, None], axis=0).mean())


def compute(reference: np.ndarray, distorted: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """psnr_rgb, psnr_y, ssim and/or ms_ssim of one pair, as codecbench computed them with torch."""
    pair = _Pair(reference, distorted)
    return {name: getattr(pair, name)() for name in names}
