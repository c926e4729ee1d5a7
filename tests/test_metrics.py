"""Metrics against independent references: scikit-image, pytorch-msssim, lpips, hand-computed values."""

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_msssim import ms_ssim as reference_ms_ssim
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from codecbench import metrics


def jpeg(image, quality):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def reference_ssim(a, b):
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, channel_axis=2 if a.ndim == 3 else None)


def torch_ms_ssim(a, b, float64_window=True):
    x = torch.from_numpy(a.copy()).permute(2, 0, 1)[None].double()
    y = torch.from_numpy(b.copy()).permute(2, 0, 1)[None].double()
    win = torch.from_numpy(metrics.GAUSSIAN_WINDOW).view(1, 1, 11).repeat(3, 1, 1, 1) if float64_window else None
    return float(reference_ms_ssim(x, y, data_range=255, win=win))


@pytest.fixture(scope="module")
def pairs(natural_image):
    rng = np.random.default_rng(0)
    noisy = np.clip(natural_image + rng.normal(0, 12, natural_image.shape), 0, 255).astype(np.uint8)
    odd = natural_image[:301, :457]
    return [(natural_image, jpeg(natural_image, 20)), (natural_image, noisy), (odd, jpeg(odd, 50))]


def test_psnr_rgb_matches_scikit_image_and_hand_values(pairs):
    for a, b in pairs:
        assert metrics.psnr_rgb(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-10)
    flat = np.full((16, 16, 3), 100, np.uint8)
    assert metrics.psnr_rgb(flat, flat + 1) == pytest.approx(10 * math.log10(255**2), abs=1e-12)  # 48.1308 dB
    assert metrics.psnr_rgb(flat, flat) == math.inf


def test_psnr_y_uses_bt601_luma():
    rng = np.random.default_rng(1)
    a = rng.integers(10, 200, (32, 32, 3), dtype=np.uint8)
    # +1 on G and −5 on B changes luma by 0.587 − 0.57 = 0.017 everywhere
    b = a.astype(int)
    b[..., 1] += 1
    b[..., 2] -= 5
    b = np.clip(b, 0, 255).astype(np.uint8)
    assert metrics.psnr_y(a, b) == pytest.approx(10 * math.log10(255**2 / 0.017**2), abs=1e-9)
    assert metrics.psnr_y(a, a) == math.inf
    y_ref = a.astype(float) @ [0.299, 0.587, 0.114]
    y_dist = b.astype(float) @ [0.299, 0.587, 0.114]
    assert metrics.psnr_y(a, b) == pytest.approx(peak_signal_noise_ratio(y_ref, y_dist, data_range=255), abs=1e-9)


def test_ssim_matches_scikit_image(pairs):
    for a, b in pairs:
        assert metrics.ssim(a, b) == pytest.approx(reference_ssim(a, b), abs=1e-9)
    a = pairs[0][0]
    assert metrics.ssim(a, a) == pytest.approx(1.0, abs=1e-12)


def test_ms_ssim_matches_pytorch_msssim(pairs):
    for a, b in pairs:
        # same float64 window: equal to rounding; pytorch-msssim's own float32 window: within 1e-5
        assert metrics.ms_ssim(a, b) == pytest.approx(torch_ms_ssim(a, b), abs=1e-9)
        assert metrics.ms_ssim(a, b) == pytest.approx(torch_ms_ssim(a, b, float64_window=False), abs=1e-5)
    value = metrics.ms_ssim(*pairs[0])
    assert metrics.ms_ssim_db(*pairs[0]) == pytest.approx(-10 * math.log10(1 - value), abs=1e-12)
    assert metrics.ms_ssim_db(pairs[0][0], pairs[0][0]) == math.inf


def test_small_images_use_fewer_renormalised_scales(natural_image):
    assert metrics.ms_ssim_scales(161, 400) == 5
    assert metrics.ms_ssim_scales(160, 400) == 4  # pytorch-msssim refuses ≤ 160 px
    assert metrics.ms_ssim_scales(32, 32) == 2  # 32 → 16, then 8 < 11
    assert metrics.ms_ssim_scales(11, 11) == 1
    a = natural_image[100:132, 200:232]
    b = jpeg(a, 10)
    # two scales, weights 0.0448 and 0.2856 renormalised: cs at 32 px and SSIM at 16 px (hand-assembled)
    w = np.array([0.0448, 0.2856]) / (0.0448 + 0.2856)
    _, cs = metrics._ssim_and_cs(a.astype(float), b.astype(float))
    pooled = [x.astype(float).reshape(16, 2, 16, 2, 3).mean(axis=(1, 3)) for x in (a, b)]
    s_half = [reference_ssim(p[..., c], q[..., c]) for p, q in [pooled] for c in range(3)]
    expected = np.mean(np.maximum(cs, 0) ** w[0] * np.maximum(s_half, 0) ** w[1])
    assert metrics.ms_ssim(a, b) == pytest.approx(expected, abs=1e-9)
    tiny = natural_image[:11, :11]
    assert metrics.ms_ssim(tiny, jpeg(tiny, 30)) == pytest.approx(reference_ssim(tiny, jpeg(tiny, 30)), abs=1e-9)
    with pytest.raises(ValueError, match="smaller than the 11×11"):
        metrics.ssim(natural_image[:10, :40], natural_image[:10, :40])


def test_compute_equals_the_individual_functions(pairs):
    a, b = pairs[2]
    names = ["psnr_rgb", "psnr_y", "ssim", "ms_ssim", "ms_ssim_db"]
    together = metrics.compute(a, b, names)
    assert list(together) == names
    for name in names:
        assert together[name] == pytest.approx(metrics.METRICS[name].function(a, b), abs=1e-12)
    assert metrics.compute(a, b, ["ms_ssim_db"]) == {"ms_ssim_db": together["ms_ssim_db"]}
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.compute(a, b, ["psnr", "vmaf"])
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.compute(a, b[:-1], ["psnr_rgb"])


def test_metric_directions():
    assert not metrics.METRICS["lpips"].higher_is_better
    assert all(metrics.METRICS[n].higher_is_better for n in ("psnr_rgb", "psnr_y", "ssim", "ms_ssim", "ms_ssim_db"))


def test_lpips_matches_published_values(kodak_dir, lpips_weights):
    metrics.set_lpips_weights(lpips_weights)
    try:
        assert metrics.lpips_availability().ok
        original = np.asarray(Image.open(kodak_dir / "kodim01.png").convert("RGB"))
        assert metrics.lpips(original, original) == pytest.approx(0.0, abs=1e-7)
        # values from the weights' README, computed with the reference lpips implementation
        expected = {10: 0.2438, 30: 0.0922, 50: 0.0507, 75: 0.0222, 95: 0.0036}
        for quality, value in expected.items():
            assert metrics.lpips(original, jpeg(original, quality)) == pytest.approx(value, abs=1e-4)
    finally:
        metrics.set_lpips_weights(None)


def test_lpips_without_weights_says_why(tmp_path, monkeypatch):
    monkeypatch.delenv(metrics.LPIPS_WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    status = metrics.lpips_availability()
    assert not status.ok and "never downloads" in status.reason and metrics.LPIPS_WEIGHTS_ENV in status.reason
    monkeypatch.setenv(metrics.LPIPS_WEIGHTS_ENV, str(tmp_path / "missing.pth"))
    assert "does not exist" in metrics.lpips_availability().reason
