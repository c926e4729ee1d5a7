"""PSNR-HVS(-M), CIEDE2000, SSIMULACRA2, FLIP and Butteraugli against independent references."""

import contextlib
import io
import math
import subprocess

import numpy as np
import pytest
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab

from codecbench import metrics
from codecbench.errors import MetricError
from codecbench.metrics import colour, hvs, libjxl, ssimulacra

KODAK_SAMPLE = ("kodim01.png", "kodim05.png", "kodim13.png", "kodim20.png", "kodim23.png")


def _jpeg(image: np.ndarray, quality: int, subsampling: int = 2) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality, subsampling=subsampling)
    return np.asarray(Image.open(buffer).convert("RGB"))


@pytest.fixture(scope="module")
def kodak_pairs(kodak_dir):
    """(name, reference, distorted): JPEG 4:2:0 at qualities 5, 30 and 90 of five Kodak images, plus noise."""
    rng = np.random.default_rng(7)
    pairs = []
    for name in KODAK_SAMPLE:
        image = np.asarray(Image.open(kodak_dir / name).convert("RGB"))
        pairs += [(f"{name} q{q}", image, _jpeg(image, q)) for q in (5, 30, 90)]
        noisy = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
        pairs.append((f"{name} noise", image, noisy))
    return pairs


@pytest.fixture(scope="module")
def small_pairs(natural_image):
    """Pairs that need no shared data: an odd-sized crop (partial 8×8 blocks) and a tiny image."""
    odd = natural_image[3:204, 5:190]
    return [("odd", odd, _jpeg(odd, 20)), ("tiny", natural_image[:12, :13], _jpeg(natural_image[:12, :13], 10))]


# -- PSNR-HVS and PSNR-HVS-M ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def psnr_hvsm_package():
    """The psnr-hvsm package's numpy backend (it prints a note about its optional torch backend on import)."""
    with contextlib.redirect_stdout(io.StringIO()):
        psnr_hvsm = pytest.importorskip("psnr_hvsm")
    return psnr_hvsm.BACKENDS["numpy"]


@pytest.mark.slow
def test_psnr_hvs_matches_the_psnr_hvsm_package(kodak_pairs, psnr_hvsm_package):
    worst = 0.0
    for name, reference, distorted in kodak_pairs:
        y_ref, _, _ = psnr_hvsm_package["bt601ycbcr"](reference)
        y_dist, _, _ = psnr_hvsm_package["bt601ycbcr"](distorted)
        with np.errstate(invalid="ignore"):  # the package divides 0/0 on flat blocks before masking them out
            expected = [float(v) for v in psnr_hvsm_package["psnr_hvs_hvsm"](y_ref, y_dist)]
        got = metrics.compute(reference, distorted, ["psnr_hvs", "psnr_hvsm"])
        worst = max(worst, abs(got["psnr_hvs"] - expected[0]), abs(got["psnr_hvsm"] - expected[1]))
        assert got["psnr_hvsm"] >= got["psnr_hvs"], name  # masking only lowers the weighted errors
    assert worst <= 1e-6


def test_psnr_hvs_uses_whole_blocks_and_reports_identity_as_inf(small_pairs, psnr_hvsm_package):
    _, reference, distorted = small_pairs[0]  # 185×201: whole blocks cover 184×200
    y_ref, _, _ = psnr_hvsm_package["bt601ycbcr"](reference[:200, :184])
    y_dist, _, _ = psnr_hvsm_package["bt601ycbcr"](distorted[:200, :184])
    with np.errstate(invalid="ignore"):
        expected = psnr_hvsm_package["psnr_hvs_hvsm"](y_ref, y_dist)
    assert hvs.psnr_hvs(reference, distorted) == pytest.approx(float(expected[0]), abs=1e-9)
    assert hvs.psnr_hvsm(reference, distorted) == pytest.approx(float(expected[1]), abs=1e-9)
    assert hvs.psnr_hvs(reference, reference) == math.inf
    with pytest.raises(MetricError, match="no whole 8×8 block"):
        hvs.psnr_hvs(reference[:7], distorted[:7])


# -- CIEDE2000 ----------------------------------------------------------------------------------------

# Sharma, Wu and Dalal (2005), Table 1: (L*, a*, b*) pairs and their ΔE00, printed to 4 decimals.
SHARMA_PAIRS = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 2.8361, -74.0200), (50.0, 0.0, -82.7485), 3.4412),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((50.0, 2.5, 0.0), (61.0, -5.0, 29.0), 22.8977),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
]


def _lab(image: np.ndarray) -> np.ndarray:
    """CIELAB (D65, 2°) from 8-bit sRGB, written from the CIE and sRGB definitions."""
    levels = image / 255.0
    linear = np.where(levels > 0.04045, ((levels + 0.055) / 1.055) ** 2.4, levels / 12.92)
    xyz = linear @ np.array([[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169],
                             [0.019334, 0.119193, 0.950227]]).T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def _delta_e_2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """ΔE00 written from Sharma, Wu and Dalal (2005), equations (1)–(22), kL = kC = kH = 1."""
    (l1, a1, b1), (l2, a2, b2) = np.moveaxis(lab1, -1, 0), np.moveaxis(lab2, -1, 0)
    c7 = ((np.hypot(a1, b1) + np.hypot(a2, b2)) / 2) ** 7
    g = 0.5 * (1 - np.sqrt(c7 / (c7 + 25.0**7)))
    c1, c2 = np.hypot(a1 * (1 + g), b1), np.hypot(a2 * (1 + g), b2)
    h1, h2 = np.mod(np.arctan2(b1, a1 * (1 + g)), 2 * np.pi), np.mod(np.arctan2(b2, a2 * (1 + g)), 2 * np.pi)
    zero = c1 * c2 == 0
    dh = np.where(zero, 0, h2 - h1 - 2 * np.pi * np.sign(h2 - h1) * (np.abs(h2 - h1) > np.pi))
    mean_h = np.where(zero, h1 + h2, np.where(np.abs(h1 - h2) <= np.pi, (h1 + h2) / 2,
                                              (h1 + h2 + 2 * np.pi * np.where(h1 + h2 < 2 * np.pi, 1, -1)) / 2))
    t = (1 - 0.17 * np.cos(mean_h - np.pi / 6) + 0.24 * np.cos(2 * mean_h) + 0.32 * np.cos(3 * mean_h + np.pi / 30)
         - 0.20 * np.cos(4 * mean_h - 63 * np.pi / 180))
    mean_c = (c1 + c2) / 2
    l50 = ((l1 + l2) / 2 - 50) ** 2
    s_l, s_c, s_h = 1 + 0.015 * l50 / np.sqrt(20 + l50), 1 + 0.045 * mean_c, 1 + 0.015 * mean_c * t
    r_t = -2 * np.sqrt(mean_c**7 / (mean_c**7 + 25.0**7)) * np.sin(
        np.pi / 3 * np.exp(-(((mean_h * 180 / np.pi - 275) / 25) ** 2)))
    dl, dc, dhh = (l2 - l1) / s_l, (c2 - c1) / s_c, 2 * np.sqrt(c1 * c2) * np.sin(dh / 2) / s_h
    return np.sqrt(dl**2 + dc**2 + dhh**2 + r_t * dc * dhh)


def test_ciede2000_formula_reproduces_sharma_2005():
    first = np.array([pair[0] for pair in SHARMA_PAIRS])
    second = np.array([pair[1] for pair in SHARMA_PAIRS])
    expected = [pair[2] for pair in SHARMA_PAIRS]
    np.testing.assert_allclose(_delta_e_2000(first, second), expected, atol=5e-5)
    np.testing.assert_allclose(deltaE_ciede2000(first, second), expected, atol=5e-5)
    np.testing.assert_allclose(deltaE_ciede2000(second, first), expected, atol=5e-5)


def test_ciede2000_is_the_mean_delta_e00_of_the_cielab_values(natural_image, small_pairs):
    compressed = _jpeg(natural_image, 15)
    assert np.abs(_lab(natural_image) - rgb2lab(natural_image)).max() <= 1e-9
    for reference, distorted in [(natural_image, compressed), small_pairs[0][1:]]:
        independent = float(np.mean(_delta_e_2000(_lab(reference), _lab(distorted))))
        assert colour.ciede2000(reference, distorted) == pytest.approx(independent, abs=1e-9)
    assert colour.ciede2000(natural_image, natural_image) == 0.0


# -- SSIMULACRA2 ---------------------------------------------------------------------------------------


def _libjxl_fast_gaussian_1d(values: np.ndarray, sigma: float) -> np.ndarray:
    """A line-by-line transcription of libjxl's scalar FastGaussian1D loop (tools/gauss_blur.cc)."""
    radius, n2, d1 = ssimulacra.recursive_gaussian(sigma)
    out = np.zeros(len(values))
    prev, prev2 = np.zeros(3), np.zeros(3)
    for n in range(-radius + 1, len(values)):
        left, right = n - radius - 1, n + radius - 1
        total = (values[left] if left >= 0 else 0.0) + (values[right] if right < len(values) else 0.0)
        current = n2 * total - d1 * prev - prev2
        prev2, prev = prev, current
        if n >= 0:
            out[n] = current.sum()
    return out


def test_ssimulacra2_blur_is_libjxls_recursive_gaussian():
    rng = np.random.default_rng(3)
    for length in (4, 9, 37, 200):
        line = rng.random(length)
        assert np.abs(ssimulacra.blur_axis(line[None], -1)[0] - _libjxl_fast_gaussian_1d(line, 1.5)).max() < 1e-12
    impulse = np.zeros(41)
    impulse[20] = 1.0
    kernel = ssimulacra.blur_axis(impulse[None], -1)[0]
    gaussian = np.exp(-((np.arange(41) - 20) ** 2) / (2 * 1.5**2)) / (1.5 * math.sqrt(2 * math.pi))
    assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.abs(kernel - gaussian).max() < 2e-3  # Charalampidis' approximation of σ = 1.5


def _package_score(tmp_path, reference, distorted):
    from ssimulacra2 import compute_ssimulacra2

    Image.fromarray(reference).save(tmp_path / "reference.png")
    Image.fromarray(distorted).save(tmp_path / "distorted.png")
    return compute_ssimulacra2(str(tmp_path / "reference.png"), str(tmp_path / "distorted.png"))


@pytest.mark.slow
def test_ssimulacra2_against_the_py_ssimulacra2_package(tmp_path, kodak_pairs, monkeypatch):
    """py-ssimulacra2 (an independent port) blurs with scipy's Gaussian instead of libjxl's recursive one.

    It also blurs the transposed image (its XYB conversion swaps the axes) with
    zero padding on one axis and mirroring on the other. With that one step
    made the same, the two agree to 1e-6; with each its own blur they differ
    by up to about 6 points at JPEG quality 5 (scores near −50) and less than
    0.5 at quality 90.
    """
    package = pytest.importorskip("ssimulacra2.ssimulacra2")
    own = {name: ssimulacra.ssimulacra2(ref, dist) for name, ref, dist in kodak_pairs if "q" in name}
    theirs = {name: _package_score(tmp_path, ref, dist) for name, ref, dist in kodak_pairs if "q" in name}
    assert max(abs(own[n] - theirs[n]) for n in own) < 8.0
    assert max(abs(own[n] - theirs[n]) for n in own if n.endswith("q90")) < 0.5

    def package_blur(planes: np.ndarray) -> np.ndarray:
        return np.stack([package.blur_image(stack.transpose(2, 1, 0)).transpose(2, 1, 0) for stack in planes])

    monkeypatch.setattr(ssimulacra, "blur", package_blur)
    for name, reference, distorted in kodak_pairs[:4]:
        assert ssimulacra.ssimulacra2(reference, distorted) == pytest.approx(theirs.get(name, _package_score(
            tmp_path, reference, distorted)), abs=1e-6)


@pytest.mark.slow
def test_ssimulacra2_range_and_order(natural_image, small_pairs):
    assert ssimulacra.ssimulacra2(natural_image, natural_image) == 100.0
    scores = [ssimulacra.ssimulacra2(natural_image, _jpeg(natural_image, q)) for q in (10, 40, 90)]
    assert scores == sorted(scores) and scores[-1] < 100
    assert math.isfinite(ssimulacra.ssimulacra2(*small_pairs[1][1:]))  # 13×12: two scales
    with pytest.raises(MetricError, match="8×8 minimum"):
        ssimulacra.ssimulacra2(natural_image[:7, :9], natural_image[:7, :9])


# -- FLIP ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_flip_is_the_official_evaluators_mean(natural_image, small_pairs):
    flip_evaluator = pytest.importorskip("flip_evaluator")
    for reference, distorted in [(natural_image, _jpeg(natural_image, 20)), small_pairs[0][1:]]:
        error_map, float32_mean, parameters = flip_evaluator.evaluate(
            reference.astype(np.float32) / 255, distorted.astype(np.float32) / 255, "LDR", applyMagma=False)
        assert parameters["ppd"] == pytest.approx(67.02, abs=0.01)
        value = metrics.compute(reference, distorted, ["flip"])["flip"]
        assert value == pytest.approx(float(np.mean(error_map, dtype=np.float64)), abs=1e-12)
        assert value == pytest.approx(float32_mean, abs=1e-5)  # the tool sums in float32
    assert metrics.compute(natural_image, natural_image, ["flip"])["flip"] == 0.0


# -- Butteraugli ---------------------------------------------------------------------------------------


def test_butteraugli_is_what_libjxl_prints_for_png_files(tmp_path, natural_image):
    status = libjxl.butteraugli_availability()
    if not status.ok:
        pytest.skip(status.reason)
    distorted = _jpeg(natural_image[:128, :160], 25)
    Image.fromarray(natural_image[:128, :160]).save(tmp_path / "a.png")
    Image.fromarray(distorted).save(tmp_path / "b.png")
    printed = subprocess.run([libjxl.butteraugli_program(), str(tmp_path / "a.png"), str(tmp_path / "b.png")],
                             capture_output=True, text=True, check=True).stdout.split()[0]
    assert libjxl.butteraugli(natural_image[:128, :160], distorted) == float(printed) > 0.5
    assert libjxl.butteraugli(distorted, distorted) == 0.0


def test_butteraugli_without_the_program_is_unavailable_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setenv(libjxl.PROGRAM_ENV, str(tmp_path / "missing"))
    status = metrics.METRICS["butteraugli"].availability()
    assert not status.ok and "is not an executable file" in status.reason
