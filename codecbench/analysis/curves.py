"""RD curves from store rows: the one definition of a per-image curve and of a mean curve.

Conventions
    *Rate* is bpp = 8 × bitstream bytes / (width × height of the original).
    *Quality* is one of the metrics of :data:`codecbench.metrics.METRICS`. A
    metric value that is missing or NaN counts as missing; +inf (the PSNR of a
    lossless cell) is a value: a mean with it is +inf, and a point of an RD
    curve needs a finite mean (:func:`curve_point`).

Mean over images (:func:`mean_point`, :func:`mean_metric`)
    A mean point of a setting has the mean bpp and, per metric, the mean over
    the same images, averaged as the metric declares it
    (:attr:`codecbench.metrics.MetricSpec.mean_of`): the arithmetic mean,
    except ``ms_ssim_db``, the dB value of the mean MS-SSIM (CompressAI's
    convention). Means are exactly rounded (``math.fsum``), so they do not
    depend on the order of the images; a missing value makes the mean NaN.
    The caller chooses the images: :func:`summarise` uses a dataset's
    compared images, the regression check the images common to a baseline
    and the results.

Curves of a dataset (:func:`summarise`)
    A codec's *curve* on a dataset is one point per setting of its sweep,
    sorted by bpp; rate-targeted cells (``target_bpp`` set) are kept apart
    (:class:`TargetPoint`). The *mean curve* (CompressAI's convention) averages
    the dataset's *compared images*: the images on which every codec of the
    dataset has at least one successful cell. A setting is on the mean curve
    for a metric only if every compared image has a successful cell with a
    finite value of that metric; otherwise it is left out and a note says why
    (so every mean point averages the same images). When rows repeat a cell,
    the last one counts. A codec is identified by its name, or
    ``name@version`` when the dataset holds more than one version of it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from codecbench.errors import UsageError
from codecbench.metrics import METRICS, metric as metric_spec
from codecbench.values import finite_float


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
    timing_spread: dict[str, np.ndarray] = field(default_factory=dict)  # TIMING_SPREAD keys, when timed repeatedly

    def points(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """(bpp, metric) of the points that have a finite value of the metric, sorted by bpp."""
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
    metrics: tuple[str, ...]  # metrics with at least one finite value
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
            raise UsageError(f"dataset {self.name}: {name!r} has several versions ({', '.join(matches)}); pick one")
        raise UsageError(f"dataset {self.name}: no results for codec {name!r} (codecs with results: {choices})")


# ---------------------------------------------------------------------------
# Means over images


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean, exactly rounded (``math.fsum``); NaN for no values or a NaN value, ±inf kept."""
    if not values:
        return math.nan
    if all(math.isfinite(v) for v in values):
        return math.fsum(values) / len(values)
    return sum(values) / len(values)


def _value(row: Mapping[str, Any], key: str) -> float:
    """A stored number as a float (infinities kept); NaN for a missing value or a non-number."""
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value)


def mean_metric(rows: Sequence[Mapping[str, Any]], metric: str) -> float:
    """Mean of a metric over rows, averaged as the metric declares (NaN if any row lacks a value).

    For a metric with ``mean_of`` (``ms_ssim_db``): ``from_linear`` of the
    mean of that metric, each row's value taken from its ``mean_of`` column,
    else recovered from its own column by ``to_linear``.
    """
    spec = metric_spec(metric)
    if spec.mean_of is None:
        return mean([_value(row, metric) for row in rows])
    linear = []
    for row in rows:
        value = _value(row, spec.mean_of)
        linear.append(spec.to_linear(_value(row, metric)) if math.isnan(value) else value)
    return spec.from_linear(mean(linear))


def mean_point(rows: Sequence[Mapping[str, Any]], metrics: Iterable[str]) -> dict[str, float]:
    """The mean point of one setting over ``rows`` (one per image): ``bpp`` and each metric."""
    point = {"bpp": mean([_value(row, "bpp") for row in rows])}
    point.update({metric: mean_metric(rows, metric) for metric in metrics})
    return point


def curve_point(rows: Sequence[Mapping[str, Any]], metrics: Iterable[str]) -> dict[str, float]:
    """:func:`mean_point` as a point of an RD curve: a mean that is not finite is missing (NaN)."""
    return {key: value if math.isfinite(value) else math.nan for key, value in mean_point(rows, metrics).items()}


# ---------------------------------------------------------------------------
# Curve checks


def monotonicity_problem(bpp: np.ndarray, quality: np.ndarray, higher_is_better: bool) -> str | None:
    """Why a curve sorted by bpp is not monotonic (quality must improve at every rate step), or None."""
    oriented = quality if higher_is_better else -quality
    steps = np.flatnonzero(np.diff(oriented) <= 0)
    if not len(steps):
        return None
    i = steps[0]
    better = "higher" if higher_is_better else "lower"
    return (f"not monotonic: quality does not improve with rate at {len(steps)} step(s), "
            f"first from {bpp[i]:.4g} to {bpp[i + 1]:.4g} bpp (quality {quality[i]:.6g} → {quality[i + 1]:.6g}; "
            f"{better} is better)")


# ---------------------------------------------------------------------------
# Curves from store rows


def _successful(row: dict[str, Any]) -> bool:
    return not row.get("error") and row.get("codec") is not None and finite_float(row.get("bpp")) > 0


#: Fastest and slowest of a cell's repeated timings (``--timing-repeats``), in its ``extra``; a mean point
#: averages each over the images, like ``encode_s``.
TIMING_SPREAD = ("encode_s_min", "encode_s_max", "decode_s_min", "decode_s_max")


def _extra_value(row: Mapping[str, Any], key: str) -> float:
    return finite_float((row.get("extra") or {}).get(key))


def _timing_spread(columns: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The spread columns that hold any value (none when the cells were timed once)."""
    return {key: columns[key] for key in TIMING_SPREAD if np.isfinite(columns[key]).any()}


def _curve_from_points(label: str, points: list[dict[str, Any]], metrics: Sequence[str], n_images: int) -> RDCurve:
    points = sorted(points, key=lambda p: p["bpp"])
    column = lambda key: np.array([p[key] for p in points], dtype=float)  # noqa: E731
    return RDCurve(label=label, source="measured", bpp=column("bpp"),
                   quality={m: column(m) for m in metrics}, setting=column("setting"),
                   encode_s=column("encode_s"), decode_s=column("decode_s"), n_images=n_images,
                   timing_spread=_timing_spread({key: column(key) for key in TIMING_SPREAD}))


def summarise(rows: Iterable[dict[str, Any]]) -> dict[str, DatasetResults]:
    """Group store rows into per-dataset mean curves, per-image curves and rate-targeted means.

    See the module docstring for the rules (compared images, complete mean
    points, codec labels). Datasets are returned in first-seen order.
    """
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
    for found in ok_rows.values():
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

    metrics = tuple(m for m in METRICS
                    if any(math.isfinite(finite_float(r.get(m))) for found in ok_rows.values() for r in found))
    codecs = {}
    for (codec, version), label in label_of.items():
        if label in ok_rows:
            codecs[label] = _summarise_codec(label, codec, version, ok_rows[label], common, metrics, notes)
    return DatasetResults(name, compared, codecs, metrics, len(seen_images), notes)


def _complete(groups: dict[float, dict[str, dict[str, Any]]], n: int, what: Callable[[float], str],
              notes: list[str]) -> Iterator[tuple[float, list[dict[str, Any]]]]:
    """(key, rows) of the groups, by key, that have a row for each of the ``n`` images; a note for each other."""
    for key, by_image in sorted(groups.items()):
        if len(by_image) < n:
            notes.append(f"{what(key)} ({n - len(by_image)} of {n} images have no successful cell)")
        else:
            yield key, list(by_image.values())


def _per_image_curves(label: str, sweep: dict[float, dict[str, dict[str, Any]]], metrics: Sequence[str]
                      ) -> dict[str, RDCurve]:
    """Each image's curve: its sweep cells sorted by bpp (ties in first-seen order), columns built once per codec."""
    cells = [(sha, setting, row) for setting, by_image in sweep.items() for sha, row in by_image.items()]
    if not cells:
        return {}
    order_of_image: dict[str, int] = {}
    image_index = np.array([order_of_image.setdefault(sha, len(order_of_image)) for sha, _, _ in cells])
    columns = {key: np.array([finite_float(row.get(key)) for _, _, row in cells])
               for key in ("bpp", "encode_s", "decode_s", *metrics)}
    columns["setting"] = np.array([setting for _, setting, _ in cells])
    columns.update({key: np.array([_extra_value(row, key) for _, _, row in cells]) for key in TIMING_SPREAD})
    order = np.lexsort((columns["bpp"], image_index))  # stable: by image, then by bpp
    bounds = np.searchsorted(image_index[order], np.arange(len(order_of_image) + 1))
    spread = list(_timing_spread(columns))  # the same keys on every image's curve
    curves = {}
    for sha, start, stop in zip(order_of_image, bounds[:-1], bounds[1:]):
        part = {key: values[order[start:stop]] for key, values in columns.items()}
        curves[sha] = RDCurve(label=label, source="measured", bpp=part["bpp"], quality={m: part[m] for m in metrics},
                              setting=part["setting"], encode_s=part["encode_s"], decode_s=part["decode_s"], n_images=1,
                              timing_spread={key: part[key] for key in spread})
    return curves


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
    for setting, cells in _complete(sweep, n, lambda s: f"{label} setting {s:g}: left out of the mean curve", notes):
        point = dict(curve_point(cells, metrics), setting=setting, encode_s=mean([value(r, "encode_s") for r in cells]),
                     decode_s=mean([value(r, "decode_s") for r in cells]),
                     **{key: mean([_extra_value(r, key) for r in cells]) for key in TIMING_SPREAD})
        for metric in metrics:
            lacking = sum(not math.isfinite(value(r, metric)) for r in cells)
            if lacking and lacking < n:
                notes.append(f"{label} setting {setting:g}: no {metric} point on the mean curve "
                             f"({lacking} of {n} images lack a finite {metric})")
        mean_points.append(point)
    mean_curve = _curve_from_points(label, mean_points, metrics, n)

    per_image = _per_image_curves(label, sweep, metrics)

    targets = {}
    for target, cells in _complete(targeted, n, lambda t: f"{label} target {t:g} bpp: not summarised", notes):
        settings = [float(r["setting"]) for r in cells]
        point = curve_point(cells, metrics)
        targets[target] = TargetPoint(
            target_bpp=target, bpp=point.pop("bpp"), quality=point,
            setting_range=(min(settings), max(settings)), n_images=n,
            n_target_missed=sum((r.get("extra") or {}).get("target_met") is False for r in cells),
        )
    return CodecResults(label, codec, str(version), mean_curve, per_image, targets, rows)
