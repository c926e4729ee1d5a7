"""Rate–distortion analysis of stored results: Bjøntegaard deltas, rate-matched values, RD-curve areas.

Everything here is a pure function of rows read from a results store
(:class:`codecbench.store.ResultsStore`); nothing runs a codec.

Conventions
    *Rate* is bpp = 8 × bitstream bytes / (width × height of the original).
    *Quality* is one of the store's metric columns (:data:`METRIC_COLUMNS`):
    ``psnr_rgb`` and ``psnr_y`` in dB, ``ssim`` and ``ms_ssim`` in [0, 1],
    ``ms_ssim_db`` = −10·log10(1 − MS-SSIM) in dB (higher is better), and
    ``lpips`` (lower is better). A non-finite metric value (PSNR of a lossless
    cell is +inf) counts as missing.

Curves
    A codec's *curve* on a dataset is one point per setting of its sweep;
    rate-targeted cells (``target_bpp`` set) are kept apart (:class:`TargetPoint`).
    The *mean curve* (CompressAI's convention) has, per setting, the mean bpp
    and the mean metric over the dataset's *compared images*: the images on
    which every codec of the dataset has at least one successful cell. A
    setting is on the mean curve for a metric only if every compared image has
    a successful cell with a finite value of that metric; otherwise it is left
    out and a note says why (so every mean point averages the same images).
    The mean of ``ms_ssim_db`` is the dB value of the mean MS-SSIM
    (:func:`mean_metric`). A codec is identified by its name, or
    ``name@version`` when the dataset holds more than one version of it.

Bjøntegaard delta (:func:`bd_rate`, :func:`bd_quality`)
    See those functions. Two averaging conventions over a dataset, always
    labelled: BD on the mean curves (CompressAI) and the mean of per-image BD
    values (JVET), the latter with a percentile-bootstrap 95 % confidence
    interval over images (:func:`bootstrap_ci`: 10 000 resamples, seed 0).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: Metric columns of the store, in display order.
METRIC_COLUMNS = ("psnr_rgb", "psnr_y", "ssim", "ms_ssim", "ms_ssim_db", "lpips")

BD_METHODS = ("pchip", "cubic", "akima")

#: Points each curve needs for a Bjøntegaard delta (VCEG-M33; JVET CTC).
MIN_BD_POINTS = 4

#: Below this fraction of either curve's range covered by the overlap, a BD result carries a warning.
MIN_OVERLAP = 0.5

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95

#: CompressAI results-JSON keys → store metric columns (``--reference`` files).
COMPRESSAI_KEYS = {
    "psnr-rgb": "psnr_rgb", "psnr": "psnr_rgb", "ms-ssim-rgb": "ms_ssim", "ms-ssim": "ms_ssim",
    "psnr-y": "psnr_y", "ssim": "ssim", "ssim-rgb": "ssim", "ms-ssim-db": "ms_ssim_db", "lpips": "lpips",
}

#: Store metric columns → CompressAI keys, for :func:`to_compressai_json`.
COMPRESSAI_NAMES = {
    "psnr_rgb": "psnr-rgb", "psnr_y": "psnr-y", "ssim": "ssim", "ms_ssim": "ms-ssim-rgb",
    "ms_ssim_db": "ms-ssim-db", "lpips": "lpips",
}


def higher_is_better(metric: str) -> bool:
    """Direction of a metric, from ``codecbench.metrics.METRICS``."""
    from codecbench.metrics import METRICS

    try:
        return bool(METRICS[metric].higher_is_better)
    except KeyError:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(sorted(METRICS))}") from None


# ---------------------------------------------------------------------------
# Bjøntegaard delta


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
    warnings = []
    oriented = sign * quality
    steps = np.flatnonzero(np.diff(oriented) <= 0)
    if len(steps):
        i = steps[0]
        better = "higher" if sign > 0 else "lower"
        warnings.append(
            f"{name} curve is not monotonic: quality does not improve with rate at {len(steps)} step(s), "
            f"first from {rate[i]:.4g} to {rate[i + 1]:.4g} bpp (quality {quality[i]:.6g} → {quality[i + 1]:.6g}; "
            f"{better} is better)"
        )
    return np.log10(rate), oriented, None, warnings


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
# Curves from store rows


@dataclass(frozen=True)
class ImageRef:
    sha256: str
    name: str
    width: int
    height: int


@dataclass
class RDCurve:
    """Points of one RD curve, sorted by bpp. Metric arrays hold NaN where a point lacks the metric."""

    label: str
    source: str  # "measured" or "reference"
    bpp: np.ndarray
    quality: dict[str, np.ndarray]
    setting: np.ndarray  # NaN for reference curves
    encode_s: np.ndarray  # mean wall-clock seconds; NaN where unknown
    decode_s: np.ndarray
    n_images: int  # images averaged per point (1 for a single image; 0 for a reference)
    description: str = ""

    def points(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """(bpp, metric) of the points that have the metric, sorted by bpp."""
        values = self.quality.get(metric)
        if values is None:
            return np.empty(0), np.empty(0)
        keep = np.isfinite(values) & np.isfinite(self.bpp)
        return self.bpp[keep], values[keep]


@dataclass(frozen=True)
class TargetPoint:
    """Mean over the compared images of one codec's rate-targeted cells for one target bpp."""

    target_bpp: float
    bpp: float
    quality: dict[str, float]  # NaN where some image lacks the metric
    setting_range: tuple[float, float]
    n_images: int
    n_target_missed: int  # images where even the lowest-quality setting exceeded the target


@dataclass
class CodecResults:
    label: str
    codec: str
    version: str
    mean: RDCurve
    per_image: dict[str, RDCurve]  # image sha256 -> that image's curve
    targets: dict[float, TargetPoint]
    rows: list[dict[str, Any]]  # successful rows (sweep and rate-targeted) on the compared images


@dataclass
class DatasetResults:
    name: str
    images: list[ImageRef]  # the compared images, sorted by name
    codecs: dict[str, CodecResults]
    metrics: tuple[str, ...]  # metric columns with at least one finite value
    n_images_seen: int  # images with any row in the store, successful or not
    notes: list[str] = field(default_factory=list)

    def resolve(self, name: str) -> str:
        """The curve label for a codec name or ``name@version``; ValueError naming the choices otherwise."""
        if name in self.codecs:
            return name
        matches = [label for label, c in self.codecs.items() if c.codec == name]
        if len(matches) == 1:
            return matches[0]
        choices = ", ".join(self.codecs) or "none"
        if matches:
            raise ValueError(f"dataset {self.name}: {name!r} has several versions ({', '.join(matches)}); pick one")
        raise ValueError(f"dataset {self.name}: no results for codec {name!r} (codecs with results: {choices})")


def finite_float(value: Any) -> float:
    """A stored value as a float; NaN for None, non-numbers and non-finite numbers (PSNR = inf of a lossless cell)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    value = float(value)
    return value if math.isfinite(value) else math.nan


def _successful(row: dict[str, Any]) -> bool:
    return not row.get("error") and row.get("codec") is not None and finite_float(row.get("bpp")) > 0


def _mean_or_nan(values: list[float]) -> float:
    return float(np.mean(values)) if values and all(math.isfinite(v) for v in values) else math.nan


def _ms_ssim_of(row: dict[str, Any]) -> float:
    """A row's MS-SSIM in [0, 1]: the ms_ssim column, else recovered from ms_ssim_db."""
    linear = finite_float(row.get("ms_ssim"))
    if math.isnan(linear):
        decibels = finite_float(row.get("ms_ssim_db"))
        linear = 1.0 - 10.0 ** (-decibels / 10.0)
    return linear


def mean_metric(rows: Sequence[dict[str, Any]], metric: str) -> float:
    """Mean of a metric over rows (NaN if any row lacks a finite value).

    ``ms_ssim_db`` is the exception: −10·log10(1 − mean MS-SSIM), the dB value
    of the mean MS-SSIM, as CompressAI plots it (the mean of per-image dB values
    is larger; that convention would not match published curves).
    """
    if metric != "ms_ssim_db":
        return _mean_or_nan([finite_float(row.get(metric)) for row in rows])
    mean = _mean_or_nan([_ms_ssim_of(row) for row in rows])
    return -10.0 * math.log10(1.0 - mean) if mean < 1.0 else math.nan


def _curve_from_points(label: str, points: list[dict[str, Any]], metrics: Sequence[str], n_images: int) -> RDCurve:
    points = sorted(points, key=lambda p: p["bpp"])
    column = lambda key: np.array([p[key] for p in points], dtype=float)  # noqa: E731
    return RDCurve(label=label, source="measured", bpp=column("bpp"),
                   quality={m: column(m) for m in metrics}, setting=column("setting"),
                   encode_s=column("encode_s"), decode_s=column("decode_s"), n_images=n_images)


def summarise(rows: Iterable[dict[str, Any]]) -> dict[str, DatasetResults]:
    """Group store rows into per-dataset mean curves, per-image curves and rate-targeted means.

    See the module docstring for the rules (compared images, complete mean
    points, codec labels). Datasets are returned in first-seen order.
    """
    rows = list(rows)
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_dataset.setdefault(row.get("dataset"), []).append(row)
    return {name: _summarise_dataset(name, dataset_rows) for name, dataset_rows in by_dataset.items()}


def _summarise_dataset(name: str, rows: list[dict[str, Any]]) -> DatasetResults:
    notes: list[str] = []
    seen_images = {row.get("image_sha256") for row in rows}
    versions: dict[str, list[str]] = {}
    for row in rows:
        if row.get("codec") is not None and row.get("codec_version") not in versions.setdefault(row["codec"], []):
            versions[row["codec"]].append(row.get("codec_version"))
    label_of = {(codec, version): codec if len(vs) == 1 else f"{codec}@{version}"
                for codec, vs in versions.items() for version in vs}

    ok_rows: dict[str, list[dict[str, Any]]] = {label: [] for label in label_of.values()}
    failures: dict[str, int] = {}
    for row in rows:
        if row.get("codec") is None:
            notes.append(f"{row.get('image')}: {row.get('error')}")
            continue
        label = label_of[(row["codec"], row.get("codec_version"))]
        if _successful(row):
            ok_rows[label].append(row)
        else:
            failures[label] = failures.get(label, 0) + 1
    for label, count in failures.items():
        notes.append(f"{label}: {count} failed cell(s) (see the error column of cells.jsonl)")
    for label in [label for label, found in ok_rows.items() if not found]:
        notes.append(f"{label}: no successful cell; left out")
        del ok_rows[label]

    images: dict[str, ImageRef] = {}
    common: set[str] | None = None
    for label, found in ok_rows.items():
        shas = set()
        for row in found:
            shas.add(row["image_sha256"])
            images.setdefault(row["image_sha256"], ImageRef(row["image_sha256"], str(row.get("image")),
                                                            int(row.get("width") or 0), int(row.get("height") or 0)))
        common = shas if common is None else common & shas
    common = common or set()
    for sha in sorted(set(images) - common, key=lambda s: images[s].name):
        missing = [label for label, found in ok_rows.items() if sha not in {r["image_sha256"] for r in found}]
        notes.append(f"{images[sha].name}: left out of the comparison (no successful cell for {', '.join(missing)})")
    compared = sorted((images[sha] for sha in common), key=lambda image: image.name)

    metrics = tuple(m for m in METRIC_COLUMNS
                    if any(math.isfinite(finite_float(r.get(m))) for found in ok_rows.values() for r in found))
    codecs = {}
    for (codec, version), label in label_of.items():
        if label in ok_rows:
            codecs[label] = _summarise_codec(label, codec, version, ok_rows[label], common, metrics, notes)
    return DatasetResults(name, compared, codecs, metrics, len(seen_images), notes)


def _summarise_codec(label: str, codec: str, version: str, rows: list[dict[str, Any]], common: set[str],
                     metrics: Sequence[str], notes: list[str]) -> CodecResults:
    rows = [row for row in rows if row["image_sha256"] in common]
    sweep: dict[float, dict[str, dict[str, Any]]] = {}
    targeted: dict[float, dict[str, dict[str, Any]]] = {}
    for row in rows:
        if row.get("target_bpp") is not None:
            targeted.setdefault(float(row["target_bpp"]), {})[row["image_sha256"]] = row
        else:
            sweep.setdefault(float(row["setting"]), {})[row["image_sha256"]] = row
    n = len(common)

    def value(row: dict[str, Any], key: str) -> float:
        return finite_float(row.get(key))

    mean_points = []
    for setting, by_image in sorted(sweep.items()):
        if len(by_image) < n:
            notes.append(f"{label} setting {setting:g}: left out of the mean curve "
                         f"({n - len(by_image)} of {n} images have no successful cell)")
            continue
        point = {"setting": setting, "bpp": _mean_or_nan([value(r, "bpp") for r in by_image.values()]),
                 "encode_s": _mean_or_nan([value(r, "encode_s") for r in by_image.values()]),
                 "decode_s": _mean_or_nan([value(r, "decode_s") for r in by_image.values()])}
        for metric in metrics:
            point[metric] = mean_metric(list(by_image.values()), metric)
            lacking = sum(not math.isfinite(value(r, metric)) for r in by_image.values())
            if lacking and lacking < n:
                notes.append(f"{label} setting {setting:g}: no {metric} point on the mean curve "
                             f"({lacking} of {n} images lack a finite {metric})")
        mean_points.append(point)
    mean = _curve_from_points(label, mean_points, metrics, n)

    per_image_points: dict[str, list[dict[str, Any]]] = {}
    for setting, by_image in sweep.items():
        for sha, row in by_image.items():
            point = {"setting": setting, "bpp": value(row, "bpp"), "encode_s": value(row, "encode_s"),
                     "decode_s": value(row, "decode_s")}
            point.update({metric: value(row, metric) for metric in metrics})
            per_image_points.setdefault(sha, []).append(point)
    per_image = {sha: _curve_from_points(label, points, metrics, 1) for sha, points in per_image_points.items()}

    targets = {}
    for target, by_image in sorted(targeted.items()):
        if len(by_image) < n:
            notes.append(f"{label} target {target:g} bpp: not summarised "
                         f"({n - len(by_image)} of {n} images have no successful cell)")
            continue
        settings = [float(r["setting"]) for r in by_image.values()]
        targets[target] = TargetPoint(
            target_bpp=target, bpp=_mean_or_nan([value(r, "bpp") for r in by_image.values()]),
            quality={m: mean_metric(list(by_image.values()), m) for m in metrics},
            setting_range=(min(settings), max(settings)), n_images=n,
            n_target_missed=sum((r.get("extra") or {}).get("target_met") is False for r in by_image.values()),
        )
    return CodecResults(label, codec, str(version), mean, per_image, targets, rows)


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
    see :func:`load_reference`) only the mean-curve one. Metrics the dataset
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


# ---------------------------------------------------------------------------
# Rate-matched values and areas


def interpolate_at_bpp(bpp: Sequence[float], values: Sequence[float], target: float) -> float:
    """Value of a curve at ``target`` bpp, linear in log10(bpp) between the neighbouring points.

    NaN outside [min bpp, max bpp] (never extrapolated). Points are sorted by bpp first.
    """
    bpp = np.asarray(bpp, dtype=float)
    values = np.asarray(values, dtype=float)
    if len(bpp) == 0 or not (bpp.min() <= target <= bpp.max()):
        return math.nan
    order = np.argsort(bpp, kind="stable")
    return float(np.interp(math.log10(target), np.log10(bpp[order]), values[order]))


@dataclass(frozen=True)
class RateMatched:
    """Quality of one codec at one target bpp.

    ``source`` is ``measured`` (mean of rate-targeted cells, each at or below
    the target; ``bpp`` is their mean) or ``interpolated`` (on the mean curve,
    see :func:`interpolate_at_bpp`; ``bpp`` is the target). Metrics are NaN
    where the target lies outside the curve's range.
    """

    dataset: str
    codec: str
    target_bpp: float
    source: str
    bpp: float
    setting: str  # the setting, a range "a–b" of settings, or "" outside the curve
    quality: dict[str, float]
    note: str = ""


def rate_matched(results: DatasetResults, targets: Sequence[float], metrics: Sequence[str]) -> list[RateMatched]:
    """Each codec's mean quality at each target bpp (targets of rate-targeted cells are always included)."""
    metrics = [m for m in metrics if m in results.metrics]
    all_targets = sorted(set(float(t) for t in targets)
                         | {t for codec in results.codecs.values() for t in codec.targets})
    out = []
    for target in all_targets:
        for label, codec in results.codecs.items():
            measured = codec.targets.get(target)
            if measured is not None:
                low, high = measured.setting_range
                note = (f"target not reached on {measured.n_target_missed} of {measured.n_images} images"
                        if measured.n_target_missed else "")
                out.append(RateMatched(results.name, label, target, "measured", measured.bpp,
                                       f"{low:g}" if low == high else f"{low:g}–{high:g}",
                                       {m: measured.quality[m] for m in metrics}, note))
                continue
            curve = codec.mean
            quality = {m: interpolate_at_bpp(*curve.points(m), target) for m in metrics}
            rates = curve.bpp[np.isfinite(curve.bpp)]
            note = ""
            setting = ""
            if len(rates) and rates.min() <= target <= rates.max():
                below = curve.setting[curve.bpp <= target][-1]
                above = curve.setting[curve.bpp >= target][0]
                setting = f"{below:g}" if below == above else f"{below:g}–{above:g}"
            else:
                span = f"{rates.min():.3g}–{rates.max():.3g} bpp" if len(rates) else "no points"
                note = f"outside the curve ({span})"
            out.append(RateMatched(results.name, label, target, "interpolated", target, setting, quality, note))
    return out


@dataclass(frozen=True)
class Area:
    """Area under an RD curve over a bpp interval (metric units × bpp).

    ``covered`` is the part of the interval inside the curve's bpp range and
    ``covered_fraction`` its share of the interval.
    """

    value: float
    covered: tuple[float, float]
    covered_fraction: float


def rd_area(bpp: Sequence[float], quality: Sequence[float], bpp_range: tuple[float, float] = (0.0, 2.0)) -> Area:
    """Trapezoid-rule area under quality(bpp) on a linear bpp axis, clipped to ``bpp_range``.

    The curve (points sorted by bpp, joined by straight lines) is cut at the
    interval's ends by linear interpolation; the part of the interval outside
    the curve's bpp range contributes nothing (no extrapolation). NaN when the
    curve and the interval do not overlap.
    """
    start, stop = bpp_range
    if not stop > start:
        raise ValueError(f"bpp range must have end > start, got {bpp_range}")
    bpp = np.asarray(bpp, dtype=float)
    quality = np.asarray(quality, dtype=float)
    order = np.argsort(bpp, kind="stable")
    bpp, quality = bpp[order], quality[order]
    if len(bpp) < 2:
        return Area(math.nan, (math.nan, math.nan), 0.0)
    lower, upper = max(start, bpp[0]), min(stop, bpp[-1])
    if upper <= lower:
        return Area(math.nan, (math.nan, math.nan), 0.0)
    inside = (bpp > lower) & (bpp < upper)
    xs = np.concatenate([[lower], bpp[inside], [upper]])
    ys = np.concatenate([[np.interp(lower, bpp, quality)], quality[inside], [np.interp(upper, bpp, quality)]])
    area = float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2.0))
    return Area(area, (float(lower), float(upper)), float((upper - lower) / (stop - start)))


@dataclass(frozen=True)
class AreaEntry:
    dataset: str
    codec: str
    source: str
    metric: str
    area: Area


def areas(results: DatasetResults, metrics: Sequence[str], bpp_range: tuple[float, float] = (0.0, 2.0),
          references: Sequence[RDCurve] = ()) -> list[AreaEntry]:
    """:func:`rd_area` of every mean curve (and reference curve) for every metric."""
    out = []
    for metric in (m for m in metrics if m in results.metrics):
        for label, codec in results.codecs.items():
            area = rd_area(*codec.mean.points(metric), bpp_range)
            out.append(AreaEntry(results.name, label, "measured", metric, area))
        for reference in references:
            points = reference.points(metric)
            if len(points[0]):
                out.append(AreaEntry(results.name, reference.label, "reference", metric, rd_area(*points, bpp_range)))
    return out


# ---------------------------------------------------------------------------
# CompressAI results JSON


class ReferenceError(ValueError):
    """A ``--reference`` file is unreadable or not in CompressAI's results layout; the message names it."""


def load_reference(path: str | Path) -> RDCurve:
    """Read a published curve in CompressAI's results-JSON layout.

    ``{"name": …, "description": …, "results": {"bpp": [...], "psnr-rgb": [...], ...}}``;
    keys are mapped by :data:`COMPRESSAI_KEYS` (others are ignored). When only
    MS-SSIM is given, ``ms_ssim_db`` = −10·log10(1 − MS-SSIM) is derived.
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReferenceError(f"{path}: cannot read reference curve ({exc})") from exc
    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, dict) or "bpp" not in results:
        raise ReferenceError(f"{path}: not a CompressAI results file (needs an object with results.bpp)")

    def array(key: str) -> np.ndarray:
        try:
            values = np.asarray(results[key], dtype=float)
        except (TypeError, ValueError) as exc:
            raise ReferenceError(f"{path}: results.{key} is not a list of numbers") from exc
        if values.ndim != 1:
            raise ReferenceError(f"{path}: results.{key} is not a list of numbers")
        return values

    bpp = array("bpp")
    if len(bpp) == 0 or not np.all(np.isfinite(bpp) & (bpp > 0)):
        raise ReferenceError(f"{path}: results.bpp must be a non-empty list of positive numbers")
    quality = {column: array(key) for key, column in COMPRESSAI_KEYS.items() if key in results}
    for key in (k for k in COMPRESSAI_KEYS if k in results):
        if len(results[key]) != len(bpp):
            raise ReferenceError(f"{path}: results.{key} has {len(results[key])} values but results.bpp has {len(bpp)}")
    if not quality:
        raise ReferenceError(f"{path}: no known metric in results (expected one of {', '.join(COMPRESSAI_KEYS)})")
    if "ms_ssim" in quality and "ms_ssim_db" not in quality:
        with np.errstate(divide="ignore"):
            quality["ms_ssim_db"] = -10.0 * np.log10(1.0 - quality["ms_ssim"])
    order = np.argsort(bpp, kind="stable")
    nan = np.full(len(bpp), math.nan)
    name = str(document.get("name") or path.stem)
    return RDCurve(label=f"{name} (reference)", source="reference", bpp=bpp[order],
                   quality={m: v[order] for m, v in quality.items()}, setting=nan, encode_s=nan, decode_s=nan,
                   n_images=0, description=str(document.get("description") or ""))


def to_compressai_json(store_or_rows, codec: str, dataset: str | None = None) -> dict[str, Any]:
    """One codec's mean curve on one dataset in CompressAI's results-JSON layout.

    ``store_or_rows`` is a :class:`~codecbench.store.ResultsStore` or its
    rows; ``codec`` a codec name (or ``name@version``); ``dataset`` may be
    omitted when the store holds one. Points are the mean curve's (see the
    module docstring), sorted by bpp; a metric is written only when every
    point has it. Times are mean seconds per image. ValueError names what is
    missing.
    """
    rows = store_or_rows.rows() if hasattr(store_or_rows, "rows") else list(store_or_rows)
    summaries = summarise(rows)
    if dataset is None:
        if len(summaries) != 1:
            raise ValueError(f"the results hold {len(summaries)} datasets ({', '.join(map(str, summaries))}); "
                             "name one")
        dataset = next(iter(summaries))
    if dataset not in summaries:
        raise ValueError(f"no results for dataset {dataset!r} (datasets: {', '.join(map(str, summaries))})")
    results = summaries[dataset]
    label = results.resolve(codec)
    curve = results.codecs[label].mean
    keep = np.isfinite(curve.bpp)
    if not keep.any():
        raise ValueError(f"{label} on {dataset}: no complete point on the mean curve")
    out: dict[str, list[float]] = {"bpp": curve.bpp[keep].tolist()}
    for metric in results.metrics:
        values = curve.quality[metric][keep]
        if np.all(np.isfinite(values)):
            out[COMPRESSAI_NAMES[metric]] = values.tolist()
    for key, values in (("encoding_time", curve.encode_s[keep]), ("decoding_time", curve.decode_s[keep])):
        if np.all(np.isfinite(values)):
            out[key] = values.tolist()
    out["setting"] = curve.setting[keep].tolist()
    version = results.codecs[label].version
    return {
        "name": label,
        "description": f"codecbench: {results.codecs[label].codec} {version} on {dataset}, mean over "
                       f"{len(results.images)} images per setting (mean bpp and mean metric)",
        "results": out,
    }
