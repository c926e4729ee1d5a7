"""Bjøntegaard deltas, averaging conventions, rate matching and RD areas against hand-computed answers
and against the `bjontegaard` package (PyPI), an independent implementation."""

from __future__ import annotations

import json
import math

import bjontegaard
import numpy as np
import pytest

from codecbench.analysis.bjontegaard import BD_METHODS, bd_quality, bd_rate, bootstrap_ci, compare
from codecbench.analysis.compressai import load_reference
from codecbench.analysis.curves import mean_metric, summarise
from codecbench.analysis.ratematch import interpolate_at_bpp, rate_matched, rd_area
from codecbench.errors import ReferenceCurveError

# A realistic, non-linear RD curve (PSNR rises more slowly at high rates).
RATE = np.array([0.12, 0.25, 0.5, 0.9, 1.6, 2.8])
PSNR = np.array([26.1, 28.9, 31.8, 34.2, 36.9, 39.3])


@pytest.mark.parametrize("method", BD_METHODS)
def test_scaling_every_rate_by_0_9_is_minus_10_percent_for_any_interpolation(method):
    result = bd_rate(RATE, PSNR, 0.9 * RATE, PSNR, method=method)
    assert result.ok and result.reason is None and result.warnings == ()
    assert result.value == pytest.approx(-10.0, abs=1e-9)
    assert result.interval == pytest.approx((26.1, 39.3))
    assert result.overlap_anchor == result.overlap_test == pytest.approx(1.0)


@pytest.mark.parametrize("method", BD_METHODS)
def test_linear_in_log_rate_curves_give_the_exact_quality_and_rate_offsets(method):
    # PSNR = 30 + 8·log10(rate) for A; B is 0.5 dB better everywhere, sampled at other rates.
    rate_a = np.array([0.1, 0.2, 0.4, 0.8, 1.6])
    rate_b = np.array([0.15, 0.3, 0.55, 1.1, 2.0])
    psnr_a = 30 + 8 * np.log10(rate_a)
    psnr_b = 30.5 + 8 * np.log10(rate_b)
    assert bd_quality(rate_a, psnr_a, rate_b, psnr_b, method=method).value == pytest.approx(0.5, abs=1e-9)
    # equal quality needs 10^(-0.5/8) of the rate
    expected = (10 ** (-0.5 / 8) - 1) * 100
    assert bd_rate(rate_a, psnr_a, rate_b, psnr_b, method=method).value == pytest.approx(expected, abs=1e-9)


def test_lower_is_better_metric_keeps_the_sign_conventions():
    lpips = np.array([0.52, 0.41, 0.30, 0.21, 0.14, 0.09])
    # B needs 80 % of A's bits for every LPIPS value: BD-rate -20 %
    assert bd_rate(RATE, lpips, 0.8 * RATE, lpips, higher_is_better=False).value == pytest.approx(-20.0, abs=1e-9)
    # B has 0.01 lower (better) LPIPS at every rate: BD-LPIPS is -0.01 (negative = better)
    result = bd_quality(RATE, lpips, RATE, lpips - 0.01, higher_is_better=False)
    assert result.value == pytest.approx(-0.01, abs=1e-12)
    # the integration interval is reported in LPIPS units
    assert bd_rate(RATE, lpips, 0.8 * RATE, lpips, higher_is_better=False).interval == pytest.approx((0.09, 0.52))


def _curves(seed: int):
    """Two random, monotonic RD curves with different numbers of points."""
    rng = np.random.default_rng(seed)
    rate_a = np.sort(rng.uniform(0.05, 3.0, 5))
    rate_b = np.sort(rng.uniform(0.05, 3.0, 7))
    quality = lambda rate, shift: 30 + 6 * np.log2(rate) - 0.4 * np.log2(rate) ** 2 + shift  # noqa: E731
    return rate_a, quality(rate_a, 0.0), rate_b, quality(rate_b, rng.uniform(-1, 1))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("method", BD_METHODS)
def test_matches_the_bjontegaard_package(seed, method):
    rate_a, psnr_a, rate_b, psnr_b = _curves(seed)
    options = dict(method=method, require_matching_points=False, min_overlap=0)
    ours = bd_rate(rate_a, psnr_a, rate_b, psnr_b, method=method)
    assert ours.value == pytest.approx(bjontegaard.bd_rate(rate_a, psnr_a, rate_b, psnr_b, **options), abs=1e-6)
    ours = bd_quality(rate_a, psnr_a, rate_b, psnr_b, method=method)
    assert ours.value == pytest.approx(bjontegaard.bd_psnr(rate_a, psnr_a, rate_b, psnr_b, **options), abs=1e-6)


@pytest.mark.parametrize("method", BD_METHODS)
def test_lower_is_better_matches_the_bjontegaard_package(method):
    rate_a, psnr_a, rate_b, psnr_b = _curves(7)
    lpips_a, lpips_b = np.exp(-psnr_a / 20), np.exp(-psnr_b / 20)  # falls as rate rises
    options = dict(method=method, require_matching_points=False, min_overlap=0)
    # the package interpolates over increasing LPIPS as given: pass the points in decreasing-rate order
    expected = bjontegaard.bd_rate(rate_a[::-1], lpips_a[::-1], rate_b[::-1], lpips_b[::-1], **options)
    ours = bd_rate(rate_a, lpips_a, rate_b, lpips_b, method=method, higher_is_better=False)
    assert ours.value == pytest.approx(expected, abs=1e-6)
    expected = bjontegaard.bd_psnr(rate_a, lpips_a, rate_b, lpips_b, **options)
    ours = bd_quality(rate_a, lpips_a, rate_b, lpips_b, method=method, higher_is_better=False)
    assert ours.value == pytest.approx(expected, abs=1e-6)


def test_point_order_does_not_matter():
    order = [3, 0, 5, 1, 4, 2]
    shuffled = bd_rate(RATE[order], PSNR[order], 0.85 * RATE, PSNR + 0.2)
    assert shuffled.value == pytest.approx(bd_rate(RATE, PSNR, 0.85 * RATE, PSNR + 0.2).value, abs=1e-12)


# -- guard rails --------------------------------------------------------------

def test_fewer_than_four_points_gives_nan_with_the_reason():
    result = bd_rate(RATE, PSNR, RATE[:3], PSNR[:3])
    assert math.isnan(result.value) and not result.ok
    assert result.reason == "test curve has 3 points; a BD value needs at least 4"


def test_disjoint_curves_give_nan_and_zero_overlap():
    result = bd_rate(RATE, PSNR, RATE, PSNR + 20)
    assert math.isnan(result.value) and result.reason == "the curves do not overlap in quality"
    assert result.overlap_anchor == result.overlap_test == 0.0
    result = bd_quality(RATE, PSNR, RATE * 100, PSNR)
    assert math.isnan(result.value) and result.reason == "the curves do not overlap in rate"


def test_partial_overlap_reports_each_curves_covered_fraction_and_warns_when_small():
    rate = np.array([0.1, 0.2, 0.4, 0.8, 1.6])
    psnr_a = np.array([30.0, 32.5, 35.0, 37.5, 40.0])
    # test quality 37–47: overlap 37–40 is 30 % of both ranges (each 10 dB wide)
    result = bd_rate(rate, psnr_a, rate, psnr_a + 7)
    assert result.ok and result.interval == pytest.approx((37.0, 40.0))
    assert result.overlap_anchor == pytest.approx(0.3) and result.overlap_test == pytest.approx(0.3)
    assert result.warnings == ("small overlap: 30% of the anchor's and 30% of the test's range",)
    # log-rate axis: test rates ×2 → overlap log10(0.2)…log10(1.6), 3 of 4 octaves
    result = bd_quality(rate, psnr_a, 2 * rate, psnr_a)
    assert result.overlap_anchor == pytest.approx(0.75) and result.warnings == ()


def test_non_monotonic_curve_is_computed_with_a_warning_naming_the_curve():
    psnr = PSNR.copy()
    psnr[3] = psnr[2] - 0.3  # quality drops between 0.5 and 0.9 bpp
    result = bd_rate(RATE, PSNR, RATE, psnr)
    assert result.ok
    (warning,) = result.warnings
    assert warning.startswith("test curve is not monotonic") and "from 0.5 to 0.9 bpp" in warning
    lpips = np.array([0.5, 0.4, 0.3, 0.35, 0.2, 0.1])  # rises between 0.5 and 0.9 bpp
    monotonic = np.array([0.5, 0.4, 0.3, 0.25, 0.2, 0.1])
    (warning,) = bd_rate(RATE, lpips, RATE, monotonic, higher_is_better=False).warnings
    assert warning.startswith("anchor curve is not monotonic") and "lower is better" in warning


def test_repeated_quality_cannot_be_interpolated():
    psnr = PSNR.copy()
    psnr[2] = psnr[1]
    result = bd_rate(RATE, psnr, RATE, PSNR)
    assert math.isnan(result.value)
    assert result.reason == "anchor curve has two points with the same quality; cannot interpolate"


@pytest.mark.parametrize("rate, psnr, reason", [
    ([0.1, 0.2, 0.0, 0.8], [30, 31, 32, 33], "anchor curve has a rate ≤ 0"),
    ([0.1, 0.2, 0.4, 0.8], [30, 31, float("nan"), 33], "anchor curve has non-finite values"),
])
def test_invalid_points_give_nan_with_the_reason(rate, psnr, reason):
    result = bd_rate(rate, psnr, RATE, PSNR)
    assert math.isnan(result.value) and result.reason == reason


def test_programming_errors_raise():
    with pytest.raises(ValueError, match="unknown BD interpolation 'linear'"):
        bd_rate(RATE, PSNR, RATE, PSNR, method="linear")
    with pytest.raises(ValueError, match="equal length"):
        bd_rate(RATE, PSNR[:-1], RATE, PSNR)


# -- bootstrap ---------------------------------------------------------------

def test_bootstrap_interval_matches_the_normal_approximation():
    values = np.random.default_rng(3).normal(-12.0, 4.0, 400)
    low, high = bootstrap_ci(values)
    half_width = 1.96 * values.std(ddof=1) / math.sqrt(len(values))
    assert low == pytest.approx(values.mean() - half_width, abs=0.05 * half_width)
    assert high == pytest.approx(values.mean() + half_width, abs=0.05 * half_width)
    assert bootstrap_ci(values) == (low, high)  # seeded
    assert bootstrap_ci(values, seed=1) != (low, high)


def test_bootstrap_degenerate_cases():
    assert bootstrap_ci([-7.5] * 10) == (-7.5, -7.5)
    assert all(math.isnan(v) for v in bootstrap_ci([1.0]))


# -- rate matching and areas ------------------------------------------------

def test_interpolation_is_linear_in_log_bpp_and_never_extrapolates():
    bpp, psnr = [1.0, 0.25, 0.5], [40.0, 30.0, 33.0]
    assert interpolate_at_bpp(bpp, psnr, 0.5) == 33.0
    # halfway between 0.25 and 0.5 in log10: sqrt(0.125)
    assert interpolate_at_bpp(bpp, psnr, math.sqrt(0.125)) == pytest.approx(31.5, abs=1e-12)
    assert math.isnan(interpolate_at_bpp(bpp, psnr, 0.2)) and math.isnan(interpolate_at_bpp(bpp, psnr, 1.01))


def test_area_of_a_straight_line_clipped_to_the_interval():
    bpp = np.linspace(0.2, 1.6, 8)
    psnr = 30 + 5 * bpp
    area = rd_area(bpp, psnr, (0.0, 2.0))
    # ∫_{0.2}^{1.6} (30 + 5x) dx = 30·1.4 + 2.5·(1.6² − 0.2²)
    assert area.value == pytest.approx(48.3, abs=1e-12)
    assert area.covered == pytest.approx((0.2, 1.6)) and area.covered_fraction == pytest.approx(0.7)
    inner = rd_area(bpp, psnr, (0.5, 1.0))
    assert inner.value == pytest.approx(30 * 0.5 + 2.5 * (1.0 - 0.25), abs=1e-12) and inner.covered_fraction == 1.0


def test_area_uses_the_trapezoid_rule_and_reports_no_overlap():
    assert rd_area([0.0, 1.0, 2.0], [0.0, 1.0, 0.0], (0.0, 2.0)).value == pytest.approx(1.0)
    # cut at 0.5: the line from (0,0) to (1,1) is 0.5 there → area 1 − 0.125
    assert rd_area([0.0, 1.0, 2.0], [0.0, 1.0, 0.0], (0.5, 2.0)).value == pytest.approx(0.875)
    missing = rd_area([3.0, 4.0], [30.0, 31.0], (0.0, 2.0))
    assert math.isnan(missing.value) and missing.covered_fraction == 0.0
    with pytest.raises(ValueError, match="end > start"):
        rd_area([0.1, 0.2], [1.0, 2.0], (2.0, 1.0))


# -- dataset summaries ------------------------------------------------------

def _row(image: int, codec: str, setting: float, bpp: float, psnr: float, **extra) -> dict:
    row = {"dataset": "d", "image": f"im{image}.png", "image_sha256": f"sha{image}", "width": 8, "height": 8,
           "codec": codec, "codec_version": "1", "setting": setting, "target_bpp": None, "bpp": bpp,
           "psnr_rgb": psnr, "error": None, "encode_s": 0.01, "decode_s": 0.01}
    row.update(extra)
    return row


def _two_image_rows():
    """Two images with different RD curves for an anchor and a test codec (the conventions disagree)."""
    rows = []
    for setting in (1.0, 2.0, 3.0, 4.0, 5.0):
        for image, (k, offset) in enumerate(((0.3, 0.0), (1.1, 4.0))):
            anchor_rate = k * 1.6 ** setting
            rows.append(_row(image, "a", setting, anchor_rate, 26 + 2.5 * setting + offset))
            test_rate = anchor_rate * (0.7 if image == 0 else 0.95) * (1 + 0.04 * setting)
            rows.append(_row(image, "b", setting, test_rate, 26 + 2.5 * setting + offset + 0.1 * image))
    return rows


def test_both_averaging_conventions_against_the_bjontegaard_package():
    rows = _two_image_rows()
    (results,) = summarise(rows).values()
    (comparison,) = compare(results, "a", ["psnr_rgb"], method="pchip")

    def curve(codec, image=None):
        picked = [r for r in rows if r["codec"] == codec and (image is None or r["image_sha256"] == image)]
        settings = sorted({r["setting"] for r in picked})
        rate = [np.mean([r["bpp"] for r in picked if r["setting"] == s]) for s in settings]
        psnr = [np.mean([r["psnr_rgb"] for r in picked if r["setting"] == s]) for s in settings]
        return rate, psnr

    options = dict(method="pchip", require_matching_points=False, min_overlap=0)
    expected_mean_curve = bjontegaard.bd_rate(*curve("a"), *curve("b"), **options)
    per_image = [bjontegaard.bd_rate(*curve("a", sha), *curve("b", sha), **options) for sha in ("sha0", "sha1")]
    assert comparison.mean_curve.value == pytest.approx(expected_mean_curve, abs=1e-6)
    assert comparison.per_image.mean == pytest.approx(np.mean(per_image), abs=1e-6)
    assert comparison.per_image.n_used == comparison.per_image.n_images == 2
    assert abs(comparison.mean_curve.value - comparison.per_image.mean) > 1.0  # the conventions really differ here
    low, high = comparison.per_image.ci_low, comparison.per_image.ci_high
    assert min(per_image) - 1e-9 <= low <= comparison.per_image.mean <= high <= max(per_image) + 1e-9


def test_mean_curve_needs_every_compared_image_and_treats_infinite_psnr_as_missing():
    rows = _two_image_rows()
    rows = [r for r in rows if not (r["codec"] == "b" and r["setting"] == 2.0 and r["image_sha256"] == "sha1")]
    lossless = next(r for r in rows if r["codec"] == "a" and r["setting"] == 5.0 and r["image_sha256"] == "sha0")
    lossless["psnr_rgb"] = math.inf
    (results,) = summarise(rows).values()
    assert list(results.codecs["b"].mean.setting) == [1.0, 3.0, 4.0, 5.0]
    anchor = results.codecs["a"].mean
    assert list(anchor.setting) == [1.0, 2.0, 3.0, 4.0, 5.0] and math.isnan(anchor.quality["psnr_rgb"][-1])
    assert len(anchor.points("psnr_rgb")[0]) == 4
    assert any("b setting 2: left out of the mean curve (1 of 2 images" in n for n in results.notes)
    assert any("a setting 5: no psnr_rgb point on the mean curve (1 of 2 images lack" in n for n in results.notes)


def test_mean_ms_ssim_db_is_the_decibel_value_of_the_mean_ms_ssim():
    rows = [{"ms_ssim": 0.9}, {"ms_ssim_db": 20.0}]  # the second is MS-SSIM 0.99
    assert mean_metric(rows, "ms_ssim_db") == pytest.approx(-10 * math.log10(1 - 0.945))
    assert mean_metric([{"psnr_rgb": 30.0}, {"psnr_rgb": 33.0}], "psnr_rgb") == 31.5
    assert math.isnan(mean_metric([{"psnr_rgb": 30.0}, {"psnr_rgb": None}], "psnr_rgb"))


def test_rate_matched_prefers_measured_cells():
    rows = _two_image_rows()
    rows += [_row(i, "a", 2.5, 0.9 + 0.2 * i, 33.0 + i, target_bpp=1.2, extra={"target_met": i == 0})
             for i in range(2)]
    (results,) = summarise(rows).values()
    entries = {(e.codec, e.target_bpp): e for e in rate_matched(results, [1.2, 100.0], ["psnr_rgb"])}
    measured = entries[("a", 1.2)]
    assert measured.source == "measured" and measured.bpp == pytest.approx(1.0)
    assert measured.quality["psnr_rgb"] == pytest.approx(33.5) and measured.setting == "2.5"
    assert measured.note == "target not reached on 1 of 2 images"
    assert entries[("b", 1.2)].source == "interpolated"
    outside = entries[("b", 100.0)]
    assert math.isnan(outside.quality["psnr_rgb"]) and outside.setting == "" and "outside the curve" in outside.note


def test_unknown_anchor_is_named():
    (results,) = summarise(_two_image_rows()).values()
    with pytest.raises(ValueError, match=r"no results for codec 'jpeg' \(codecs with results: a, b\)"):
        compare(results, "jpeg", ["psnr_rgb"])


# -- reference curves -------------------------------------------------------

def test_load_reference_maps_compressai_keys(tmp_path):
    path = tmp_path / "ref.json"
    path.write_text(json.dumps({"name": "paper", "description": "d", "results": {
        "bpp": [0.5, 0.1, 0.2], "psnr": [33.0, 27.0, 29.0], "ms-ssim-rgb": [0.99, 0.9, 0.95],
        "encoding_time": [1, 2, 3]}}))
    curve = load_reference(path)
    assert curve.label == "paper (reference)" and curve.source == "reference"
    assert list(curve.bpp) == [0.1, 0.2, 0.5] and list(curve.quality["psnr_rgb"]) == [27.0, 29.0, 33.0]
    assert curve.quality["ms_ssim_db"] == pytest.approx([10.0, -10 * math.log10(0.05), 20.0])


@pytest.mark.parametrize("content, message", [
    ("{not json", "cannot read reference curve"),
    (json.dumps({"name": "x"}), "needs an object with results.bpp"),
    (json.dumps({"results": {"bpp": [0.1, 0.2], "psnr": [30.0]}}), "results.psnr has 1 values but results.bpp has 2"),
    (json.dumps({"results": {"bpp": [0.1, -0.2], "psnr": [30.0, 31.0]}}), "positive numbers"),
    (json.dumps({"results": {"bpp": [0.1, 0.2], "vmaf": [30.0, 31.0]}}), "no known metric"),
])
def test_bad_reference_files_are_named_with_the_reason(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ReferenceCurveError, match=message) as error:
        load_reference(path)
    assert str(path) in str(error.value)


# -- batched PCHIP integrals ----------------------------------------------------


def test_pchip_integrals_agree_with_scipy_on_monotone_flat_and_wiggly_curves():
    from scipy.interpolate import PchipInterpolator

    from codecbench.analysis import pchip

    rng = np.random.default_rng(7)
    x = np.sort(rng.uniform(-2, 3, size=(60, 7)), axis=1)
    y = np.concatenate([np.cumsum(rng.uniform(0, 2, (20, 7)), axis=1),  # increasing
                        rng.normal(size=(20, 7)),  # sign changes: zero slopes inside, clipped ends
                        np.repeat(rng.normal(size=(20, 1)), 7, axis=1)])  # flat
    y[45, 2:4] = y[45, 1]  # a plateau inside a curve
    lower = x[:, 0] + rng.uniform(0, 0.5, 60) * (x[:, -1] - x[:, 0])
    upper = lower + rng.uniform(0, 1, 60) * (x[:, -1] - lower)
    upper[:5] = x[:5, -1]  # up to the last knot
    lower[5:10] = x[5:10, 0]  # from the first knot
    ours = pchip.integrals(x, y, lower, upper)
    reference = [PchipInterpolator(x[i], y[i]).integrate(lower[i], upper[i]) for i in range(60)]
    np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-12)


def test_batched_bd_values_equal_one_pair_at_a_time():
    from codecbench.analysis.bjontegaard import bd_values

    rng = np.random.default_rng(3)
    pairs = []
    for n_a, n_b in ((4, 4), (5, 4), (6, 6), (4, 2), (5, 5)):
        rate_a, rate_b = np.sort(rng.uniform(0.1, 2, n_a)), np.sort(rng.uniform(0.1, 2, n_b))
        pairs.append((rate_a, 30 + 8 * np.log10(rate_a) + rng.normal(0, 0.05, n_a),
                      rate_b, 30.5 + 8 * np.log10(rate_b) + rng.normal(0, 0.05, n_b)))
    for kind, one in (("rate", bd_rate), ("quality", bd_quality)):
        batch = bd_values(kind, pairs)
        assert batch == [one(*pair) for pair in pairs]
        assert [r.ok for r in batch] == [True, True, True, False, True]
