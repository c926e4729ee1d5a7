"""Bjøntegaard deltas: BD-rate and BD-quality of two RD curves, and of every codec of a dataset.

Interpolators: ``pchip`` (piecewise cubic Hermite, JVET common test
conditions; the default), ``cubic`` (least-squares cubic polynomial, the
original VCEG-M33) and ``akima`` (scipy's Akima1DInterpolator), on log10 bpp.

Over a dataset (:func:`compare`) there are two averaging conventions, always
labelled: BD on the mean curves (CompressAI; see
:mod:`codecbench.analysis.curves`) and the mean of per-image BD values (JVET),
the latter with a percentile-bootstrap 95 % confidence interval over images
(:func:`bootstrap_ci`: 10 000 resamples, seed 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codecbench.analysis.curves import CodecResults, DatasetResults, ImageRef, RDCurve, monotonicity_problem
from codecbench.metrics import higher_is_better

BD_METHODS = ("pchip", "cubic", "akima")

#: Points each curve needs for a Bjøntegaard delta (VCEG-M33; JVET CTC).
MIN_BD_POINTS = 4

#: Below this fraction of either curve's range covered by the overlap, a BD result carries a warning.
MIN_OVERLAP = 0.5

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95


@dataclass(frozen=True)
class BDResult:
    """One Bjøntegaard delta of a test curve against an anchor curve.

    ``value`` is NaN when it could not be computed, and ``reason`` says why.
    ``interval`` is the integration interval on the integration axis (the
    quality axis, metric units, for BD-rate; log10 bpp for BD-quality);
    ``overlap_anchor``/``overlap_test`` are the fractions of each curve's range
    on that axis that the interval covers. ``warnings`` name curve problems that
    did not prevent a value (non-monotonic curve, small overlap).
    """

    value: float
    kind: str  # "rate": percent; "quality": metric units
    method: str
    higher_is_better: bool
    interval: tuple[float, float] = (math.nan, math.nan)
    overlap_anchor: float = math.nan
    overlap_test: float = math.nan
    warnings: tuple[str, ...] = ()
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return math.isfinite(self.value)


class _CubicFit:
    """VCEG-M33: least-squares cubic polynomial y(x), integrated exactly."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self._antiderivative = np.polyint(np.polyfit(x, y, 3))

    def integrate(self, lower: float, upper: float) -> float:
        return float(np.polyval(self._antiderivative, upper) - np.polyval(self._antiderivative, lower))


def _interpolant(x: np.ndarray, y: np.ndarray, method: str):
    from scipy.interpolate import Akima1DInterpolator, PchipInterpolator

    if method == "pchip":
        return PchipInterpolator(x, y)
    if method == "akima":
        return Akima1DInterpolator(x, y)
    return _CubicFit(x, y)


def _check_curve(name: str, rate: Sequence[float], quality: Sequence[float], sign: float
                 ) -> tuple[np.ndarray, np.ndarray, str | None, list[str]]:
    """Validate one curve; returns (log10 rate, sign × quality, reason it is unusable, warnings), sorted by rate."""
    rate = np.asarray(rate, dtype=float)
    quality = np.asarray(quality, dtype=float)
    if rate.ndim != 1 or rate.shape != quality.shape:
        raise ValueError(f"{name} curve: rate and quality must be 1-D of equal length, "
                         f"got shapes {rate.shape} and {quality.shape}")
    if len(rate) < MIN_BD_POINTS:
        return rate, quality, f"{name} curve has {len(rate)} points; a BD value needs at least {MIN_BD_POINTS}", []
    if not (np.all(np.isfinite(rate)) and np.all(np.isfinite(quality))):
        return rate, quality, f"{name} curve has non-finite values", []
    if np.any(rate <= 0):
        return rate, quality, f"{name} curve has a rate ≤ 0", []
    order = np.argsort(rate, kind="stable")
    rate, quality = rate[order], quality[order]
    problem = monotonicity_problem(rate, quality, sign > 0)
    return np.log10(rate), sign * quality, None, [f"{name} curve is {problem}"] if problem else []


def _delta(kind: str, anchor_x, anchor_y, test_x, test_y, method: str, sign: float,
           warnings: list[str], min_overlap: float) -> BDResult:
    """Mean of (test − anchor) of y over the overlap of the x ranges, after interpolating y(x)."""
    base = dict(kind=kind, method=method, higher_is_better=sign > 0)
    for name, x in (("anchor", anchor_x), ("test", test_x)):
        if len(np.unique(x)) != len(x):
            axis = "quality" if kind == "rate" else "rate"
            return BDResult(math.nan, **base, warnings=tuple(warnings),
                            reason=f"{name} curve has two points with the same {axis}; cannot interpolate")
    lower = max(anchor_x.min(), test_x.min())
    upper = min(anchor_x.max(), test_x.max())
    width = max(upper - lower, 0.0)
    overlap_anchor = width / (anchor_x.max() - anchor_x.min())
    overlap_test = width / (test_x.max() - test_x.min())
    interval = (lower, upper) if kind == "quality" or sign > 0 else (-upper, -lower)  # metric units
    base.update(interval=tuple(map(float, interval)) if width > 0 else (math.nan, math.nan),
                overlap_anchor=float(overlap_anchor), overlap_test=float(overlap_test))
    if width == 0:
        axis = "quality" if kind == "rate" else "rate"
        return BDResult(math.nan, **base, warnings=tuple(warnings),
                        reason=f"the curves do not overlap in {axis}")
    if min(overlap_anchor, overlap_test) < min_overlap:
        warnings.append(f"small overlap: {overlap_anchor:.0%} of the anchor's and {overlap_test:.0%} of the "
                        "test's range")
    anchor_x_sorted = np.argsort(anchor_x)
    test_x_sorted = np.argsort(test_x)
    f_anchor = _interpolant(anchor_x[anchor_x_sorted], anchor_y[anchor_x_sorted], method)
    f_test = _interpolant(test_x[test_x_sorted], test_y[test_x_sorted], method)
    mean_difference = (f_test.integrate(lower, upper) - f_anchor.integrate(lower, upper)) / width
    if kind == "rate":
        value = (10.0 ** mean_difference - 1.0) * 100.0
    else:
        value = sign * mean_difference
    return BDResult(float(value), **base, warnings=tuple(warnings))


def _bd(kind, rate_a, quality_a, rate_b, quality_b, method, higher_is_better, min_overlap) -> BDResult:
    if method not in BD_METHODS:
        raise ValueError(f"unknown BD interpolation {method!r}; choose one of {', '.join(BD_METHODS)}")
    sign = 1.0 if higher_is_better else -1.0
    log_rate_a, q_a, reason_a, warnings_a = _check_curve("anchor", rate_a, quality_a, sign)
    log_rate_b, q_b, reason_b, warnings_b = _check_curve("test", rate_b, quality_b, sign)
    warnings = warnings_a + warnings_b
    if reason_a or reason_b:
        return BDResult(math.nan, kind, method, higher_is_better, warnings=tuple(warnings),
                        reason="; ".join(r for r in (reason_a, reason_b) if r))
    if kind == "rate":
        return _delta(kind, q_a, log_rate_a, q_b, log_rate_b, method, sign, warnings, min_overlap)
    return _delta(kind, log_rate_a, q_a, log_rate_b, q_b, method, sign, warnings, min_overlap)


def bd_rate(rate_a: Sequence[float], quality_a: Sequence[float], rate_b: Sequence[float], quality_b: Sequence[float],
            *, method: str = "pchip", higher_is_better: bool = True, min_overlap: float = MIN_OVERLAP) -> BDResult:
    """BD-rate (%) of curve B against anchor A: the mean rate difference at equal quality.

    log10(rate) is interpolated as a function of quality for each curve —
    ``pchip`` (piecewise cubic Hermite, JVET common test conditions; default),
    ``cubic`` (least-squares cubic polynomial, the original VCEG-M33) or
    ``akima`` (scipy's Akima1DInterpolator) — and integrated over the
    overlapping quality interval; BD-rate = (10^(mean of log10 rate_B −
    log10 rate_A) − 1) × 100. Negative: B needs fewer bits for the same
    quality. For a lower-is-better metric (LPIPS) the quality is negated
    first, which leaves the equal-quality comparison unchanged. Points are
    sorted by rate; each curve needs ≥ 4 points and distinct quality values.
    Problems with the data are returned in the result (``reason``,
    ``warnings``); an unknown method or arrays of unequal length raise ValueError.
    """
    return _bd("rate", rate_a, quality_a, rate_b, quality_b, method, higher_is_better, min_overlap)


def bd_quality(rate_a: Sequence[float], quality_a: Sequence[float], rate_b: Sequence[float],
               quality_b: Sequence[float], *, method: str = "pchip", higher_is_better: bool = True,
               min_overlap: float = MIN_OVERLAP) -> BDResult:
    """BD-quality (e.g. BD-PSNR, in the metric's units) of curve B against anchor A at equal rate.

    Quality is interpolated as a function of log10(rate) (same methods as
    :func:`bd_rate`) and the mean of quality_B − quality_A over the
    overlapping log-rate interval is returned. The sign is the metric's own:
    positive BD-PSNR is better, negative BD-LPIPS is better.
    """
    return _bd("quality", rate_a, quality_a, rate_b, quality_b, method, higher_is_better, min_overlap)


def bootstrap_ci(values: Sequence[float], *, n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                 level: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the mean of ``values``.

    Draws ``n_resamples`` resamples of the values with replacement
    (``numpy.random.default_rng(seed)``) and returns the (1 − level)/2 and
    (1 + level)/2 quantiles of their means. NaNs if fewer than 2 values.
    """
    data = np.asarray(values, dtype=float)
    if len(data) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, len(data), size=(n_resamples, len(data)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


# ---------------------------------------------------------------------------
# BD over a dataset


@dataclass(frozen=True)
class PerImageBD:
    """JVET convention: the mean over images of per-image BD values, with a bootstrap CI over images."""

    mean: float
    ci_low: float
    ci_high: float
    n_used: int  # images with a finite per-image value
    n_images: int
    per_image: dict[str, BDResult]  # image name -> result


@dataclass(frozen=True)
class BDComparison:
    """One test curve against the anchor on one metric, in both averaging conventions."""

    dataset: str
    anchor: str
    test: str
    source: str  # "measured" or "reference"
    metric: str
    mean_curve: BDResult  # CompressAI convention: BD of the dataset-mean curves
    per_image: PerImageBD | None  # JVET convention; None for reference curves (no per-image data)


def _per_image_bd(function, anchor: CodecResults, test: CodecResults, images: Sequence[ImageRef], metric: str,
                  method: str, direction: bool, n_resamples: int, seed: int) -> PerImageBD:
    results = {}
    for image in images:
        rate_a, quality_a = anchor.per_image[image.sha256].points(metric) if image.sha256 in anchor.per_image \
            else (np.empty(0), np.empty(0))
        rate_b, quality_b = test.per_image[image.sha256].points(metric) if image.sha256 in test.per_image \
            else (np.empty(0), np.empty(0))
        results[image.name] = function(rate_a, quality_a, rate_b, quality_b, method=method, higher_is_better=direction)
    values = [r.value for r in results.values() if r.ok]
    low, high = bootstrap_ci(values, n_resamples=n_resamples, seed=seed)
    return PerImageBD(float(np.mean(values)) if values else math.nan, low, high, len(values), len(images), results)


def compare(results: DatasetResults, anchor: str, metrics: Sequence[str], *, kind: str = "rate",
            method: str = "pchip", references: Sequence[RDCurve] = (), n_resamples: int = BOOTSTRAP_RESAMPLES,
            seed: int = BOOTSTRAP_SEED) -> list[BDComparison]:
    """BD-rate (``kind="rate"``) or BD-quality (``"quality"``) of every curve against ``anchor``.

    Measured codecs get both conventions; ``references`` (published curves,
    see :func:`codecbench.analysis.compressai.load_reference`) only the mean-curve one. Metrics the dataset
    does not have are skipped.
    """
    function = {"rate": bd_rate, "quality": bd_quality}[kind]
    anchor_label = results.resolve(anchor)
    anchor_results = results.codecs[anchor_label]
    out = []
    for metric in (m for m in metrics if m in results.metrics):
        direction = higher_is_better(metric)
        rate_a, quality_a = anchor_results.mean.points(metric)
        for label, test in results.codecs.items():
            if label == anchor_label:
                continue
            mean_curve = function(rate_a, quality_a, *test.mean.points(metric), method=method,
                                  higher_is_better=direction)
            per_image = _per_image_bd(function, anchor_results, test, results.images, metric, method, direction,
                                      n_resamples, seed)
            out.append(BDComparison(results.name, anchor_label, label, "measured", metric, mean_curve, per_image))
        for reference in references:
            rate_b, quality_b = reference.points(metric)
            if len(rate_b):
                mean_curve = function(rate_a, quality_a, rate_b, quality_b, method=method, higher_is_better=direction)
                out.append(BDComparison(results.name, anchor_label, reference.label, "reference", metric,
                                        mean_curve, None))
    return out
