"""Metrics against independent references: scikit-image, pytorch-msssim, lpips, hand-computed values."""

import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_msssim import ms_ssim as reference_ms_ssim
from pytorch_msssim.ssim import _ssim as reference_ssim_and_cs
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from codecbench import metrics
from codecbench.data.images import load_rgb
from codecbench.metrics import fidelity, perceptual

#: The contract: SSIM and MS-SSIM equal the float64 references to this (measured ≤ 1e-7).
TOLERANCE = 1e-6


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Pillow JPEG round trip with default settings (4:2:0)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                 data_range=255, channel_axis=2)


def as_batch(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.copy()).permute(2, 0, 1)[None].double()


def float64_window() -> torch.Tensor:
    """The exact Gaussian, shaped as pytorch-msssim's ``win`` (its default window is float32, summing to 1 − 3e-8)."""
    return torch.from_numpy(fidelity.GAUSSIAN_WINDOW).view(1, 1, 11).repeat(3, 1, 1, 1)


def torch_ms_ssim(a: np.ndarray, b: np.ndarray, exact_window: bool = True) -> float:
    win = float64_window() if exact_window else None
    return float(reference_ms_ssim(as_batch(a), as_batch(b), data_range=255, win=win))


def assembled_ms_ssim(a: np.ndarray, b: np.ndarray, weights: np.ndarray) -> float:
    """MS-SSIM with ``len(weights)`` scales from pytorch-msssim's per-scale function and PyTorch's avg_pool2d."""
    x, y = as_batch(a), as_batch(b)
    factors = []
    for level in range(len(weights)):
        ssim_channels, cs_channels = reference_ssim_and_cs(x, y, data_range=255, win=float64_window())
        if level < len(weights) - 1:
            factors.append(torch.relu(cs_channels[0]))
            padding = [side % 2 for side in x.shape[2:]]
            x, y = F.avg_pool2d(x, 2, padding=padding), F.avg_pool2d(y, 2, padding=padding)
    factors.append(torch.relu(ssim_channels[0]))
    per_channel = torch.prod(torch.stack(factors) ** torch.tensor(weights)[:, None], dim=0)
    return float(per_channel.mean())


@pytest.fixture(scope="module")
def pairs(natural_image):
    """(reference, distorted) on the 512×512 astronaut: JPEG, noise, and an odd-sized crop."""
    rng = np.random.default_rng(0)
    noisy = np.clip(natural_image + rng.normal(0, 12, natural_image.shape), 0, 255).astype(np.uint8)
    odd = natural_image[:301, :457]
    return [(natural_image, jpeg(natural_image, 20)), (natural_image, noisy), (odd, jpeg(odd, 50))]


# -- PSNR ---------------------------------------------------------------------


def test_psnr_rgb_matches_scikit_image_and_hand_values(pairs):
    for a, b in pairs:
        assert metrics.psnr_rgb(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-10)
    flat = np.full((16, 16, 3), 100, np.uint8)
    assert metrics.psnr_rgb(flat, flat + 1) == pytest.approx(48.1308036087, abs=1e-9)  # 10·log10(255²)
    assert metrics.psnr_rgb(flat, flat) == math.inf
    # one channel off by 3: MSE = 9 / 3 = 3
    shifted = flat.copy()
    shifted[..., 2] += 3
    assert metrics.psnr_rgb(flat, shifted) == pytest.approx(10 * math.log10(255**2 / 3), abs=1e-12)


def test_psnr_y_uses_unrounded_bt601_luma(pairs):
    rng = np.random.default_rng(1)
    a = rng.integers(20, 230, (32, 48, 3), dtype=np.uint8)
    # ΔR, ΔG, ΔB = −15, +9, −7: ΔY = 0.299·(−15) + 0.587·9 + 0.114·(−7) = 0, a pure chroma change
    chroma_only = (a.astype(int) + [-15, 9, -7]).astype(np.uint8)
    assert metrics.psnr_y(a, chroma_only) == math.inf
    assert metrics.psnr_rgb(a, chroma_only) == pytest.approx(10 * math.log10(255**2 / ((225 + 81 + 49) / 3)), abs=1e-12)
    # +1 on G and −5 on B: ΔY = 0.587 − 0.570 = 0.017 everywhere
    small = (a.astype(int) + [0, 1, -5]).astype(np.uint8)
    assert metrics.psnr_y(a, small) == pytest.approx(10 * math.log10(255**2 / 0.017**2), abs=1e-9)
    for ref, dist in pairs:
        y_ref, y_dist = ref.astype(float) @ [0.299, 0.587, 0.114], dist.astype(float) @ [0.299, 0.587, 0.114]
        assert metrics.psnr_y(ref, dist) == pytest.approx(peak_signal_noise_ratio(y_ref, y_dist, data_range=255), abs=1e-9)


# -- SSIM and MS-SSIM ------------------------------------------------------------


@pytest.mark.slow
def test_ssim_and_ms_ssim_match_references_on_a_natural_image(pairs):
    for a, b in pairs:  # includes 301×457: odd sides in the valid region and in the pooling
        assert metrics.ssim(a, b) == pytest.approx(reference_ssim(a, b), abs=TOLERANCE)
        assert metrics.ms_ssim(a, b) == pytest.approx(torch_ms_ssim(a, b), abs=TOLERANCE)
    # pytorch-msssim as shipped (float32 window summing to 1 − 3e-8) is within ~1e-5 of the exact window
    a, b = pairs[0]
    assert metrics.ms_ssim(a, b) == pytest.approx(torch_ms_ssim(a, b, exact_window=False), abs=2e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["kodim01", "kodim20"])
def test_ssim_and_ms_ssim_match_references_on_kodak(kodak_dir, name):
    """JPEG at two qualities, and a flat grey replacement: the hardest case for float32 (flat sky in kodim20)."""
    reference = load_rgb(kodak_dir / f"{name}.png")
    distortions = [jpeg(reference, 10), jpeg(reference, 75), np.full_like(reference, 128)]
    for distorted in distortions:
        assert metrics.ssim(reference, distorted) == pytest.approx(reference_ssim(reference, distorted), abs=TOLERANCE)
        assert metrics.ms_ssim(reference, distorted) == pytest.approx(torch_ms_ssim(reference, distorted), abs=TOLERANCE)


@pytest.mark.parametrize("height, width", [(11, 11), (12, 27), (27, 12), (26, 35), (299, 58), (58, 635), (1021, 40), (33, 1019)])
def test_ssim_matches_scikit_image_at_many_sizes(natural_image, height, width):
    """Sizes around the 16×24-centre tiling: tiles exactly filled, one centre over, and long sides."""
    tall = np.concatenate([natural_image, natural_image[::-1], natural_image], axis=0)  # 1536×512
    wide = np.concatenate([natural_image, natural_image[:, ::-1], natural_image], axis=1)  # 512×1536
    source = tall if height > 512 else wide
    a = np.ascontiguousarray(source[:height, :width])
    b = jpeg(a, 15)
    assert metrics.ssim(a, b) == pytest.approx(reference_ssim(a, b), abs=TOLERANCE)


def test_identical_images_and_symmetry(pairs):
    a, b = pairs[0]
    together = metrics.compute(a, a, ["psnr_rgb", "psnr_y", "ssim", "ms_ssim", "ms_ssim_db"])
    assert together == {"psnr_rgb": math.inf, "psnr_y": math.inf, "ssim": 1.0, "ms_ssim": 1.0, "ms_ssim_db": math.inf}
    for name in ("psnr_rgb", "psnr_y", "ssim", "ms_ssim"):
        assert metrics.METRICS[name].function(a, b) == pytest.approx(metrics.METRICS[name].function(b, a), abs=1e-7)


def test_ms_ssim_db():
    assert metrics.ms_ssim_to_db(0.99) == pytest.approx(20.0, abs=1e-9)
    assert metrics.ms_ssim_to_db(0.9) == pytest.approx(10.0, abs=1e-9)
    assert metrics.ms_ssim_to_db(1.0) == math.inf


@pytest.mark.slow
def test_small_images_use_fewer_renormalised_scales(natural_image):
    # smallest scale ≥ 11 px, sides halved rounding up (odd sides are padded)
    assert fidelity.ms_ssim_scales(161, 400) == 5  # 161 → 81 → 41 → 21 → 11
    assert fidelity.ms_ssim_scales(400, 160) == 4  # 160 → 80 → 40 → 20 (→ 10); pytorch-msssim refuses ≤ 160 px
    assert fidelity.ms_ssim_scales(32, 32) == 2
    assert fidelity.ms_ssim_scales(21, 500) == 2  # 21 → 11
    assert fidelity.ms_ssim_scales(20, 500) == 1  # 20 → 10
    assert fidelity.ms_ssim_scales(10, 500) == 0
    assert fidelity.ms_ssim_weights(5) == pytest.approx(fidelity.MS_SSIM_WEIGHTS)  # as published, sum 1.0001
    assert fidelity.ms_ssim_weights(2) == pytest.approx([0.0448 / 0.3304, 0.2856 / 0.3304])

    # 5 scales at the 161 px boundary: pytorch-msssim itself
    a = natural_image[:161, :203]
    b = jpeg(a, 25)
    assert metrics.ms_ssim(a, b) == pytest.approx(torch_ms_ssim(a, b), abs=TOLERANCE)
    # 4 and 2 scales: pytorch-msssim's per-scale statistics assembled with the renormalised weights
    for shape, scales in (((160, 203), 4), ((37, 45), 2)):
        a = natural_image[100:100 + shape[0], 150:150 + shape[1]]
        b = jpeg(a, 25)
        weights = np.array(fidelity.MS_SSIM_WEIGHTS[:scales]) / sum(fidelity.MS_SSIM_WEIGHTS[:scales])
        assert metrics.ms_ssim(a, b) == pytest.approx(assembled_ms_ssim(a, b, weights), abs=TOLERANCE)
    # 1 scale: SSIM (clamped at 0)
    a = natural_image[200:220, 300:333]
    b = jpeg(a, 30)
    assert metrics.ms_ssim(a, b) == pytest.approx(max(reference_ssim(a, b), 0.0), abs=TOLERANCE)
    with pytest.raises(ValueError, match="10×40 is smaller than the 11×11"):
        metrics.ssim(natural_image[:40, :10], natural_image[:40, :10])


def test_float32_filtering_stays_exact_when_bfloat16_matmuls_are_allowed(pairs):
    """A codec may call torch.set_float32_matmul_precision("medium"), which makes CPU matmuls bfloat16 here."""
    a, b = pairs[0]
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        assert metrics.ssim(a, b) == pytest.approx(reference_ssim(a, b), abs=TOLERANCE)
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(previous)


# -- registry and compute() ------------------------------------------------------


def test_compute_shares_work_and_equals_the_individual_functions(pairs):
    a, b = pairs[2]
    names = ["ms_ssim_db", "psnr_y", "ssim", "psnr_rgb", "ms_ssim"]
    together = metrics.compute(a, b, names)
    assert list(together) == names
    for name in names:
        assert together[name] == pytest.approx(metrics.METRICS[name].function(a, b), abs=1e-9)
    assert metrics.compute(a, b, ["ms_ssim_db"]) == {"ms_ssim_db": together["ms_ssim_db"]}
    assert together["ms_ssim_db"] == pytest.approx(-10 * math.log10(1 - together["ms_ssim"]), abs=1e-12)


def test_bad_input_is_rejected_with_the_reason(pairs):
    a, b = pairs[2]
    with pytest.raises(ValueError, match=r"unknown metric\(s\) psnr, vmaf; known: psnr_rgb, psnr_y, ssim"):
        metrics.compute(a, b, ["psnr", "ssim", "vmaf"])
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.compute(a, b[:-1], ["psnr_rgb"])
    with pytest.raises(ValueError, match="distorted must be an H×W×3 uint8 RGB array"):
        metrics.psnr_rgb(a, b.astype(np.float32))
    with pytest.raises(ValueError, match="reference must be an H×W×3 uint8 RGB array"):
        metrics.ssim(a[..., 0], b[..., 0])


def test_metric_specs():
    assert list(metrics.METRICS)[:6] == ["psnr_rgb", "psnr_y", "ssim", "ms_ssim", "ms_ssim_db", "lpips"]
    assert not metrics.METRICS["lpips"].higher_is_better
    assert all(metrics.METRICS[n].higher_is_better for n in ("psnr_rgb", "psnr_y", "ssim", "ms_ssim", "ms_ssim_db"))
    assert [metrics.METRICS[n].unit for n in ("psnr_rgb", "psnr_y", "ms_ssim_db")] == ["dB"] * 3
    assert all(spec.description and spec.name == name for name, spec in metrics.METRICS.items())


# -- LPIPS --------------------------------------------------------------------


@pytest.fixture
def no_lpips_weights(tmp_path, monkeypatch):
    """No explicit weights, no environment variable, and an empty torch hub folder."""
    monkeypatch.delenv(perceptual.LPIPS_WEIGHTS_ENV, raising=False)
    perceptual.set_lpips_weights(None)
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(previous)
    perceptual.set_lpips_weights(None)


@pytest.mark.slow
def test_lpips_matches_published_values(kodak_dir, lpips_weights, no_lpips_weights):
    perceptual.set_lpips_weights(lpips_weights)
    assert perceptual.lpips_availability().ok
    original = load_rgb(kodak_dir / "kodim01.png")
    assert metrics.lpips(original, original) == 0.0
    # values from the weights' README (reference lpips package, Pillow JPEG default settings)
    expected = {10: 0.2438, 30: 0.0922, 50: 0.0507, 75: 0.0222, 95: 0.0036}
    for quality, value in expected.items():
        distorted = jpeg(original, quality)
        assert metrics.lpips(original, distorted) == pytest.approx(value, abs=5e-4)
    assert metrics.compute(original, distorted, ["lpips"])["lpips"] == pytest.approx(metrics.lpips(distorted, original), abs=1e-6)


@pytest.mark.slow
def test_lpips_reads_torchvisions_cached_checkpoint(kodak_dir, lpips_weights, no_lpips_weights):
    """A whole-AlexNet checkpoint in torch hub's cache (keys features.N.*, classifier.N.*) is used as is."""
    features = torch.load(lpips_weights, weights_only=True)
    checkpoint = {f"features.{key}": value for key, value in features.items()}
    checkpoint["classifier.1.weight"] = torch.zeros(4, 4)
    (no_lpips_weights / "checkpoints").mkdir(parents=True)
    torch.save(checkpoint, no_lpips_weights / "checkpoints" / perceptual.TORCHVISION_ALEXNET_FILE)
    assert perceptual.lpips_availability().ok
    original = load_rgb(kodak_dir / "kodim01.png")
    assert metrics.lpips(original, jpeg(original, 10)) == pytest.approx(0.2438, abs=5e-4)


def test_lpips_without_weights_says_why(tmp_path, no_lpips_weights, monkeypatch):
    status = perceptual.lpips_availability()
    assert not status.ok
    assert "never downloads" in status.reason and perceptual.LPIPS_WEIGHTS_ENV in status.reason
    assert str(no_lpips_weights / "checkpoints") in status.reason
    image = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(RuntimeError, match="lpips unavailable: no AlexNet backbone weights"):
        metrics.lpips(image, image)
    assert metrics.compute(image, image, ["psnr_rgb", "ssim"]) == {"psnr_rgb": math.inf, "ssim": 1.0}

    monkeypatch.setenv(perceptual.LPIPS_WEIGHTS_ENV, str(tmp_path / "missing.pth"))
    assert "missing.pth does not exist" in perceptual.lpips_availability().reason

    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(2, 2)}, wrong)
    perceptual.set_lpips_weights(wrong)  # overrides the environment
    assert perceptual.lpips_availability().ok  # the file exists; its contents are checked when loading
    with pytest.raises(RuntimeError, match="wrong.pth: not an AlexNet features state dict"):
        metrics.lpips(image, image)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    perceptual.set_lpips_weights(garbage)
    with pytest.raises(RuntimeError, match="garbage.pth: cannot be read as a PyTorch state dict"):
        metrics.lpips(image, image)
