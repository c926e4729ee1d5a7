"""Differentiable MS-SSIM (training loss) against codecbench's MS-SSIM metric, which is itself checked
against independent references in test_metrics.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codecbench.learned.losses import ms_ssim
from codecbench.metrics import fidelity as metrics


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].double() / 255


@pytest.mark.slow  # float64 MS-SSIM in torch: seconds on a busy machine
@pytest.mark.parametrize(("height", "width", "scales"), [(64, 64, 3), (181, 200, 5), (45, 67, 3)])
def test_matches_the_metric(natural_image, height, width, scales):
    reference = natural_image[100 : 100 + height, 50 : 50 + width]
    noise = np.random.default_rng(1).integers(-25, 26, reference.shape)
    distorted = np.clip(reference.astype(int) + noise, 0, 255).astype(np.uint8)
    assert metrics.ms_ssim_scales(height, width) == scales  # odd sides are pooled with padding at 181, 45, 67
    expected = metrics.ms_ssim(reference, distorted)
    assert ms_ssim(_tensor(reference), _tensor(distorted)).item() == pytest.approx(expected, abs=1e-7)
    # float32: the training precision
    assert ms_ssim(_tensor(reference).float(), _tensor(distorted).float()).item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.slow
def test_batched_values_are_per_image(natural_image):
    a = _tensor(natural_image[:64, :64])
    b = _tensor(natural_image[200:264, 200:264])
    values = ms_ssim(torch.cat([a, a]), torch.cat([a, b]))
    assert values.shape == (2,)
    assert values[0].item() == pytest.approx(1.0, abs=1e-12)
    assert values[1].item() == pytest.approx(ms_ssim(a, b).item(), abs=1e-12) and values[1] < 0.9


def test_gradient_is_finite_where_structure_is_anticorrelated(natural_image):
    reference = _tensor(natural_image[:64, :64]).float()
    distorted = (1 - reference).clone().requires_grad_(True)  # negative cs at every scale: clamped factors
    (1 - ms_ssim(reference, distorted)).sum().backward()
    assert torch.isfinite(distorted.grad).all()


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match="one shape"):
        ms_ssim(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 31))
    with pytest.raises(ValueError, match="at least 11"):
        ms_ssim(torch.zeros(1, 3, 10, 32), torch.zeros(1, 3, 10, 32))
