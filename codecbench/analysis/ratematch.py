"""Rate-matched values and areas under RD curves.

:func:`rate_matched` gives each codec's mean quality at chosen bpp targets
(measured rate-targeted cells first, else interpolated on the mean curve);
:func:`areas` the area under each mean curve over a bpp interval. Curves are
those of :mod:`codecbench.analysis.curves`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from codecbench.analysis.curves import DatasetResults, RDCurve


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
