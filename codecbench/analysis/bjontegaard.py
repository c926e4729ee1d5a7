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

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codecbench.analysis import pchip
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


def _integrals(method: str, curves: list[tuple[np.ndarray, np.ndarray]], lower: np.ndarray,
               upper: np.ndarray) -> np.ndarray:
    """∫ from lower to upper of each curve's interpolant y(x) (x strictly increasing); pchip in batches of equal length."""
    out = np.empty(len(curves))
    if method == "pchip":
        by_length: dict[int, list[int]] = {}
        for i, (x, _) in enumerate(curves):
            by_length.setdefault(len(x), []).append(i)
        for members in by_length.values():
            xs = np.stack([curves[i][0] for i in members])
            ys = np.stack([curves[i][1] for i in members])
            out[members] = pchip.integrals(xs, ys, lower[members], upper[members])
        return out
    from scipy.interpolate import Akima1DInterpolator

    for i, (x, y) in enumerate(curves):
        interpolant = Akima1DInterpolator(x, y) if method == "akima" else _CubicFit(x, y)
        out[i] = interpolant.integrate(lower[i], upper[i])
    return out


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


@dataclass
class _Pending:
    """Two checked curves (x strictly increasing) waiting for their integrals over [lower, upper]."""

    fields: dict
    warnings: list[str]
    anchor: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    lower: float
    upper: float


def _prepare(kind: str, rate_a, quality_a, rate_b, quality_b, method: str, higher_is_better: bool,
             min_overlap: float) -> BDResult | _Pending:
    """Check both curves and their overlap: the final result when no value can be computed, else what to integrate."""
    sign = 1.0 if higher_is_better else -1.0
    log_rate_a, q_a, reason_a, warnings_a = _check_curve("anchor", rate_a, quality_a, sign)
    log_rate_b, q_b, reason_b, warnings_b = _check_curve("test", rate_b, quality_b, sign)
    warnings = warnings_a + warnings_b
    fields = dict(kind=kind, method=method, higher_is_better=higher_is_better)
    if reason_a or reason_b:
        return BDResult(math.nan, **fields, warnings=tuple(warnings),
                        reason="; ".join(r for r in (reason_a, reason_b) if r))
    # BD-rate integrates log rate over quality; BD-quality integrates quality over log rate
    curves = [(q_a, log_rate_a), (q_b, log_rate_b)] if kind == "rate" else [(log_rate_a, q_a), (log_rate_b, q_b)]
    axis = "quality" if kind == "rate" else "rate"
    for name, (x, _) in zip(("anchor", "test"), curves):
        if len(np.unique(x)) != len(x):
            return BDResult(math.nan, **fields, warnings=tuple(warnings),
                            reason=f"{name} curve has two points with the same {axis}; cannot interpolate")
    (anchor_x, _), (test_x, _) = curves
    lower = max(anchor_x.min(), test_x.min())
    upper = min(anchor_x.max(), test_x.max())
    width = max(upper - lower, 0.0)
    overlap_anchor = width / (anchor_x.max() - anchor_x.min())
    overlap_test = width / (test_x.max() - test_x.min())
    interval = (lower, upper) if kind == "quality" or sign > 0 else (-upper, -lower)  # metric units
    fields.update(interval=tuple(map(float, interval)) if width > 0 else (math.nan, math.nan),
                  overlap_anchor=float(overlap_anchor), overlap_test=float(overlap_test))
    if width == 0:
        return BDResult(math.nan, **fields, warnings=tuple(warnings), reason=f"the curves do not overlap in {axis}")
    if min(overlap_anchor, overlap_test) < min_overlap:
        warnings.append(f"small overlap: {overlap_anchor:.0%} of the anchor's and {overlap_test:.0%} of the "
                        "test's range")
    ordered = [(x[np.argsort(x)], y[np.argsort(x)]) for x, y in curves]
    return _Pending(fields, warnings, ordered[0], ordered[1], float(lower), float(upper))


def bd_values(kind: str, pairs: Sequence[tuple[Sequence[float], Sequence[float], Sequence[float], Sequence[float]]],
              *, method: str = "pchip", higher_is_better: bool = True,
              min_overlap: float = MIN_OVERLAP) -> list[BDResult]:
    """BD-rate (``kind="rate"``) or BD-quality (``"quality"``) of many (rate_a, quality_a, rate_b, quality_b) pairs.

    Each result is exactly what :func:`bd_rate` / :func:`bd_quality` give for
    that pair; the interpolants are integrated together (a per-image BD table
    over thousands of curves is a few array operations).
    """
    if method not in BD_METHODS:
        raise ValueError(f"unknown BD interpolation {method!r}; choose one of {', '.join(BD_METHODS)}")
    prepared = [_prepare(kind, *pair, method, higher_is_better, min_overlap) for pair in pairs]
    pending = [p for p in prepared if isinstance(p, _Pending)]
    if pending:
        lower = np.array([p.lower for p in pending])
        upper = np.array([p.upper for p in pending])
        mean_difference = (_integrals(method, [p.test for p in pending], lower, upper)
                           - _integrals(method, [p.anchor for p in pending], lower, upper)) / (upper - lower)
        sign = 1.0 if higher_is_better else -1.0
        values = iter((10.0 ** mean_difference - 1.0) * 100.0 if kind == "rate" else sign * mean_difference)
    return [BDResult(float(next(values)), **p.fields, warnings=tuple(p.warnings)) if isinstance(p, _Pending) else p
            for p in prepared]


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
    return bd_values("rate", [(rate_a, quality_a, rate_b, quality_b)], method=method,
                     higher_is_better=higher_is_better, min_overlap=min_overlap)[0]


def bd_quality(rate_a: Sequence[float], quality_a: Sequence[float], rate_b: Sequence[float],
               quality_b: Sequence[float], *, method: str = "pchip", higher_is_better: bool = True,
               min_overlap: float = MIN_OVERLAP) -> BDResult:
    """BD-quality (e.g. BD-PSNR, in the metric's units) of curve B against anchor A at equal rate.

    Quality is interpolated as a function of log10(rate) (same methods as
    :func:`bd_rate`) and the mean of quality_B − quality_A over the
    overlapping log-rate interval is returned. The sign is the metric's own:
    positive BD-PSNR is better, negative BD-LPIPS is better.
    """
    return bd_values("quality", [(rate_a, quality_a, rate_b, quality_b)], method=method,
                     higher_is_better=higher_is_better, min_overlap=min_overlap)[0]


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
    means = _resample_counts(len(data), n_resamples, seed) @ data / len(data)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


@functools.lru_cache(maxsize=32)
def _resample_counts(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """(resamples × n): how often each value is drawn in each resample (read-only, cached).

    The draws are ``default_rng(seed).integers(0, n, (n_resamples, n))``; a
    resample's mean is then one row times the values, divided by n.
    """
    draws = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))
    counts = np.bincount((draws + n * np.arange(n_resamples)[:, None]).ravel(), minlength=n_resamples * n)
    counts = counts.reshape(n_resamples, n).astype(float)
    counts.flags.writeable = False
    return counts


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


def _per_image_points(codec: CodecResults, image: ImageRef, metric: str) -> tuple[np.ndarray, np.ndarray]:
    curve = codec.per_image.get(image.sha256)
    return curve.points(metric) if curve is not None else (np.empty(0), np.empty(0))


def _per_image_summary(results: dict[str, BDResult], n_resamples: int, seed: int) -> PerImageBD:
    values = [r.value for r in results.values() if r.ok]
    low, high = bootstrap_ci(values, n_resamples=n_resamples, seed=seed)
    return PerImageBD(float(np.mean(values)) if values else math.nan, low, high, len(values), len(results), results)


def compare(results: DatasetResults, anchor: str, metrics: Sequence[str], *, kind: str = "rate",
            method: str = "pchip", references: Sequence[RDCurve] = (), n_resamples: int = BOOTSTRAP_RESAMPLES,
            seed: int = BOOTSTRAP_SEED) -> list[BDComparison]:
    """BD-rate (``kind="rate"``) or BD-quality (``"quality"``) of every curve against ``anchor``.

    Measured codecs get both conventions; ``references`` (published curves,
    see :func:`codecbench.analysis.compressai.load_reference`) only the mean-curve one. Metrics the dataset
    does not have are skipped.
    """
    anchor_label = results.resolve(anchor)
    anchor_results = results.codecs[anchor_label]
    tests = [(label, codec) for label, codec in results.codecs.items() if label != anchor_label]
    out = []
    for metric in (m for m in metrics if m in results.metrics):
        anchor_mean = anchor_results.mean.points(metric)
        published = [(reference, reference.points(metric)) for reference in references]
        published = [(reference, points) for reference, points in published if len(points[0])]
        # every BD value of this metric in one batch: mean curves, then each test codec's images, then references
        pairs = [(*anchor_mean, *codec.mean.points(metric)) for _, codec in tests]
        pairs += [(*_per_image_points(anchor_results, image, metric), *_per_image_points(codec, image, metric))
                  for _, codec in tests for image in results.images]
        pairs += [(*anchor_mean, *points) for _, points in published]
        values = iter(bd_values(kind, pairs, method=method, higher_is_better=higher_is_better(metric)))
        means = [next(values) for _ in tests]
        for (label, _), mean_curve in zip(tests, means):
            per_image = {image.name: next(values) for image in results.images}
            out.append(BDComparison(results.name, anchor_label, label, "measured", metric, mean_curve,
                                    _per_image_summary(per_image, n_resamples, seed)))
        for reference, _ in published:
            out.append(BDComparison(results.name, anchor_label, reference.label, "reference", metric,
                                    next(values), None))
    return out
