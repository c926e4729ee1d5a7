"""Differentiable training losses for learned codecs (PyTorch, batched, any device).

``ms_ssim`` follows the convention of :func:`codecbench.metrics.fidelity.ms_ssim` (Gaussian
window σ 1.5, 11×11, valid region; K 0.01/0.03; 2×2 average pooling with a zero
row/column in front of an odd side; the published weights, renormalised when
fewer than 5 scales fit; per RGB channel, averaged over channels) so that a
model trained on it is optimised for the metric codecbench reports. Two
differences, both for training: inputs are float tensors in [0, ``data_range``]
(not rounded to uint8), and cs/SSIM factors are clamped at ``CLAMP`` instead
of 0 so that the gradient of ``factor ** weight`` stays finite.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from codecbench.metrics.fidelity import GAUSSIAN_WINDOW, SSIM_K1, SSIM_K2, ms_ssim_scales, ms_ssim_weights

CLAMP = 1e-6


def _filter(images: torch.Tensor) -> torch.Tensor:
    """Valid separable Gaussian filtering of N×C×H×W, each channel on its own."""
    channels = images.shape[1]
    taps = torch.as_tensor(GAUSSIAN_WINDOW, dtype=images.dtype, device=images.device)
    rows = taps.view(1, 1, -1, 1).expand(channels, 1, -1, 1)
    cols = taps.view(1, 1, 1, -1).expand(channels, 1, 1, -1)
    return F.conv2d(F.conv2d(images, rows, groups=channels), cols, groups=channels)


def _ssim_and_cs(x: torch.Tensor, y: torch.Tensor, data_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Means over the valid region of the SSIM map and of the contrast–structure map, N×C each."""
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    mu_x, mu_y = _filter(x), _filter(y)
    var_x = _filter(x * x) - mu_x**2
    var_y = _filter(y * y) - mu_y**2
    cov = _filter(x * y) - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    luminance = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return (luminance * cs).mean(dim=(2, 3)), cs.mean(dim=(2, 3))


def ssim(reference: torch.Tensor, distorted: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """SSIM of each image, shape N, from N×C×H×W tensors in [0, ``data_range``]: the ``ssim`` metric's
    convention (window, constants, valid region, mean of the map per channel, then over channels)."""
    if reference.shape != distorted.shape or reference.dim() != 4:
        raise ValueError(f"ssim needs two N×C×H×W tensors of one shape, got {tuple(reference.shape)} and {tuple(distorted.shape)}")
    if min(reference.shape[2:]) < len(GAUSSIAN_WINDOW):
        raise ValueError(f"ssim needs images of at least {len(GAUSSIAN_WINDOW)} pixels a side, got {tuple(reference.shape[2:])}")
    return _ssim_and_cs(reference, distorted, data_range)[0].mean(dim=1)


def ms_ssim(reference: torch.Tensor, distorted: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """MS-SSIM of each image, shape N, from N×3×H×W tensors in [0, ``data_range``] (see module docstring)."""
    if reference.shape != distorted.shape or reference.dim() != 4:
        raise ValueError(f"ms_ssim needs two N×C×H×W tensors of one shape, got {tuple(reference.shape)} and {tuple(distorted.shape)}")
    scales = ms_ssim_scales(*reference.shape[2:])
    if scales == 0:
        raise ValueError(f"ms_ssim needs images of at least 11×11 pixels, got {tuple(reference.shape[2:])}")
    weights = torch.as_tensor(ms_ssim_weights(scales), dtype=reference.dtype, device=reference.device)
    x, y = reference, distorted
    result = reference.new_ones(reference.shape[:2])
    for level in range(scales):
        ssim_mean, cs_mean = _ssim_and_cs(x, y, data_range)
        factor = ssim_mean if level == scales - 1 else cs_mean
        result = result * factor.clamp(min=CLAMP) ** weights[level]
        if level < scales - 1:
            padding = (x.shape[2] % 2, x.shape[3] % 2)
            x = F.avg_pool2d(x, 2, padding=padding, count_include_pad=True)
            y = F.avg_pool2d(y, 2, padding=padding, count_include_pad=True)
    return result.mean(dim=1)
