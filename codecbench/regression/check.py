"""Comparing results with a baseline (``codecbench check``).

Per dataset and codec of the baseline:

- **BD-rate** (percent, Bjøntegaard delta with pchip interpolation,
  :func:`codecbench.analysis.bjontegaard.bd_rate`) of the current mean curve
  against the baseline's, per checked metric. The mean curves are
  :mod:`codecbench.analysis.curves`' (:func:`~codecbench.analysis.curves.mean_metric`)
  over the images present in both (matched by pixel SHA-256), so a missing
  image never shifts the curve; settings present in both are used. Positive =
  the current codec needs more bits for the same quality = worse.
- **Per-setting drift** of the same means: bpp relative (percent), each metric
  absolute (in the metric's unit). A setting regresses when at least one axis is
  worse than its tolerance and none is better; when one axis is worse and
  another better, the point moved along the curve: reported as a change, and
  the BD-rate judges it.
- **Coverage**: a codec, setting, image or metric value in the baseline but not
  in the results (failed or not run) is a regression; new ones are reported.
- **Versions and checksums**: a changed codec version is reported at the top
  and the curves are still compared; a changed image checksum (an image name
  whose pixels differ) makes the results unusable (exit code 2): the curves
  were measured on different images.

Improvements are reported and never fail; timing never affects the outcome.
Exit codes (:attr:`CheckResult.exit_code`): 0 pass, 1 regression, 2 unusable input.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from codecbench.analysis.bjontegaard import bd_rate
from codecbench.analysis.curves import mean, mean_metric
from codecbench.errors import BaselineError
from codecbench.metrics import METRICS, higher_is_better
from codecbench.regression.baseline import (
    baseline_problem,
    filter_text,
    group_by,
    has_value,
    image_checksums,
    image_values,
    is_failed,
    latest_version,
    setting_key,
    stored,
    sweep_rows,
)

#: Metrics checked when none are named: the two curves learned-compression papers report.
DEFAULT_METRICS = ("psnr_rgb", "ms_ssim")
#: Largest acceptable BD-rate, percent (current vs baseline; positive = more bits).
DEFAULT_MAX_BD_RATE = 0.1
#: Largest acceptable increase of a setting's mean bpp, percent of the baseline's.
DEFAULT_MAX_BPP_DRIFT = 0.5
#: Largest acceptable absolute change of a setting's mean metric, in the metric's unit (its declaration).
DEFAULT_MAX_DRIFT: Mapping[str, float] = {name: spec.drift_tolerance for name, spec in METRICS.items()}

REGRESSION, IMPROVEMENT, CHANGE, INFO = "regression", "improvement", "change", "info"


def percent_change(base: float, current: float) -> float:
    """100 × (current − base) / base."""
    if base == 0:
        return 0.0 if current == 0 else math.inf
    return 100.0 * (current - base) / base


def delta_text(delta: float) -> str:
    """A change of a mean metric for a message or table: "0", "n/a" for NaN, else 3 significant digits, signed."""
    return "0" if delta == 0 else ("n/a" if math.isnan(delta) else f"{delta:+.3g}")


@dataclass(frozen=True)
class Tolerances:
    """How far current results may be worse than the baseline before it counts as a regression.

    ``max_bd_rate``: percent (BD-rate of current vs baseline); ``max_bpp_drift``:
    percent of a setting's baseline mean bpp; ``max_drift``: absolute change of a
    setting's mean metric, per metric, in the metric's unit (dB for PSNR).
    """

    max_bd_rate: float = DEFAULT_MAX_BD_RATE
    max_bpp_drift: float = DEFAULT_MAX_BPP_DRIFT
    max_drift: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_MAX_DRIFT))


@dataclass(frozen=True)
class Finding:
    """One reported fact. ``check`` is "coverage", "bpp", a metric name, "drift", "version" or "dataset"."""

    severity: str  # REGRESSION, IMPROVEMENT, CHANGE or INFO
    dataset: str | None
    codec: str | None
    check: str
    message: str


@dataclass(frozen=True)
class SettingDrift:
    """One setting's means over the images present in both (bpp, and metrics by name)."""

    setting: float
    n_images: int
    bpp: tuple[float, float]  # (baseline, current)
    metrics: dict[str, tuple[float, float]]  # metric -> (baseline, current)
    worse: tuple[str, ...]  # axes ("bpp" or metric names) worse than their tolerance
    better: tuple[str, ...]  # axes better than their tolerance

    @property
    def bpp_drift_percent(self) -> float:
        return percent_change(*self.bpp)

    @property
    def verdict(self) -> str:
        if self.worse and self.better:
            return CHANGE
        if self.worse:
            return REGRESSION
        return IMPROVEMENT if self.better else "same"


@dataclass
class CodecComparison:
    """The comparison of one codec on one dataset."""

    dataset: str
    codec: str
    baseline_version: str
    current_version: str | None  # None: no results for this codec
    settings: list[SettingDrift] = field(default_factory=list)
    bd_rate: dict[str, float | None] = field(default_factory=dict)  # percent; None: not computable
    same_bytes: int = 0  # cells whose bitstream size equals the baseline's
    common_cells: int = 0


@dataclass
class CheckResult:
    """Everything ``compare`` found; ``exit_code`` is 0 pass, 1 regression, 2 unusable input."""

    tolerances: Tolerances
    metrics: tuple[str, ...]
    unusable: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    codecs: list[CodecComparison] = field(default_factory=list)
    baseline_label: str = "baseline"
    results_label: str = "results"

    def of(self, severity: str) -> list[Finding]:
        return [f for f in self.findings if f.severity == severity]

    @property
    def exit_code(self) -> int:
        if self.unusable:
            return 2
        return 1 if self.of(REGRESSION) else 0


def compare(baseline: Mapping[str, Any], rows: Iterable[Mapping[str, Any]],
            manifests: Iterable[Mapping[str, Any]] = (), *, tolerances: Tolerances | None = None,
            metrics: Sequence[str] | None = None, datasets: Sequence[str] | None = None,
            codecs: Sequence[str] | None = None) -> CheckResult:
    """Compare results rows (``ResultsStore.rows()``) and run manifests against a baseline dict.

    ``metrics``: metrics to check (default: DEFAULT_METRICS that the baseline
    holds); ``datasets``/``codecs`` restrict the check to part of the baseline.
    Raises BaselineError for a malformed baseline; every other unusable
    input is listed in ``CheckResult.unusable``.
    """
    problem = baseline_problem(baseline)
    if problem:
        raise BaselineError(f"not a usable codecbench baseline: {problem}")
    tolerances = tolerances or Tolerances()
    rows, manifests = list(rows), list(manifests)
    result = CheckResult(tolerances=tolerances, metrics=())

    base = _select_baseline(baseline, datasets, codecs, result)
    if result.unusable:
        return result
    result.metrics = _choose_metrics(base, metrics, tolerances, result)
    if result.unusable:
        return result

    current = sweep_rows(rows, list(base), codecs)
    _check_checksums(base, image_checksums(sweep_rows(rows, list(base), None), manifests), result)
    if result.unusable:
        return result
    current_by_codec = group_by(current, "dataset", "codec")
    overlap = [(d, c) for d, part in base.items() for c in part["codecs"] if current_by_codec.get((d, c))]
    if not overlap:
        have = sorted({f"{d}/{c}" for d, c in current_by_codec})
        want = sorted(f"{d}/{c}" for d, part in base.items() for c in part["codecs"])
        result.unusable.append(
            f"nothing to compare: the baseline has {', '.join(want)}; the results have "
            f"{', '.join(have) if have else 'no sweep cells for these datasets'}")
        return result

    problems = [str(p) for m in manifests if isinstance(m, Mapping) and isinstance(m.get("problems"), list)
                for p in m["problems"]]
    for dataset, part in sorted(base.items()):
        for codec, entry in sorted(part["codecs"].items()):
            _compare_codec(dataset, codec, entry, part["checksums"], current_by_codec.get((dataset, codec), []), result,
                           [p for p in problems if codec in p])
        for (d, codec), codec_rows in sorted(current_by_codec.items()):
            if d == dataset and codec not in part["codecs"] and any(not is_failed(r) for r in codec_rows):
                result.findings.append(Finding(INFO, dataset, codec, "coverage", "new codec, not in the baseline"))
        _report_new_images(dataset, part["checksums"], [r for r in current if r["dataset"] == dataset], result)
    for dataset in sorted({r["dataset"] for r in sweep_rows(rows, datasets, codecs)} - set(base)):
        result.findings.append(Finding(INFO, dataset, None, "dataset", "new dataset, not in the baseline"))
    return result


def _select_baseline(baseline: Mapping[str, Any], datasets: Sequence[str] | None, codecs: Sequence[str] | None,
                     result: CheckResult) -> dict[str, Any]:
    all_datasets = baseline["datasets"]
    missing = [d for d in datasets or () if d not in all_datasets]
    if missing:
        result.unusable.append(f"the baseline has no dataset {', '.join(missing)}; it has {', '.join(sorted(all_datasets))}")
        return {}
    chosen = {}
    for name, part in all_datasets.items():
        if datasets and name not in datasets:
            continue
        part_codecs = {c: e for c, e in part["codecs"].items() if not codecs or c in codecs}
        if part_codecs:
            chosen[name] = {"checksums": part["checksums"], "codecs": part_codecs}
    if not chosen:
        result.unusable.append(f"the baseline holds nothing{filter_text(datasets, codecs)}")
    return chosen


def _choose_metrics(base: Mapping[str, Any], metrics: Sequence[str] | None, tolerances: Tolerances,
                    result: CheckResult) -> tuple[str, ...]:
    stored = {name for part in base.values() for entry in part["codecs"].values()
              for setting in entry["settings"].values() for values in setting["images"].values() for name in values}
    known = set(METRICS)
    if metrics:
        unknown = [m for m in metrics if m not in known]
        absent = [m for m in metrics if m in known and m not in stored]
        if unknown:
            result.unusable.append(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if absent:
            result.unusable.append(f"the baseline holds no {', '.join(absent)} values; "
                                   f"it holds {', '.join(sorted(stored & known)) or 'no metric'}")
        chosen = tuple(metrics)
    else:
        chosen = tuple(m for m in DEFAULT_METRICS if m in stored)
        if not chosen:
            result.unusable.append(f"the baseline holds none of the default metrics ({', '.join(DEFAULT_METRICS)}); "
                                   f"name the metrics to check (it holds {', '.join(sorted(stored & known)) or 'none'})")
    untolerated = [m for m in chosen if m in known and m not in tolerances.max_drift]
    if untolerated:
        result.unusable.append(f"no drift tolerance for {', '.join(untolerated)}; give one (--max-drift METRIC=VALUE)")
    return chosen


def _check_checksums(base: Mapping[str, Any], seen: Mapping[str, Mapping[str, set[str]]], result: CheckResult) -> None:
    for dataset, part in sorted(base.items()):
        changed = [f"{name}: {sha[:12]}… → {', '.join(sorted(s[:12] + '…' for s in seen[dataset][name]))}"
                   for name, sha in sorted(part["checksums"].items())
                   if seen.get(dataset, {}).get(name) and sha not in seen[dataset][name]]
        if changed:
            result.unusable.append(
                f"dataset {dataset}: image pixels differ from the baseline's (pixel SHA-256), so the curves are not "
                f"comparable; re-create the baseline if the dataset changed on purpose: {'; '.join(changed)}")


def _report_new_images(dataset: str, checksums: Mapping[str, str], current: Sequence[Mapping[str, Any]],
                       result: CheckResult) -> None:
    known = set(checksums.values())
    new = sorted({r["image"] for r in current if r["image_sha256"] not in known})
    if new:
        result.findings.append(Finding(INFO, dataset, None, "dataset",
                                       f"{len(new)} image(s) not in the baseline: {_short_list(new)}"))


def _short_list(items: Sequence[str], limit: int = 8) -> str:
    items = list(items)
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _compare_codec(dataset: str, codec: str, entry: Mapping[str, Any], checksums: Mapping[str, str],
                   rows: Sequence[Mapping[str, Any]], result: CheckResult, problems: Sequence[str]) -> None:
    """Coverage, drift and BD-rate of one codec; ``problems``: run-level problems that name it."""
    base_version = entry["codec_version"]
    if not rows:
        result.codecs.append(CodecComparison(dataset, codec, base_version, None))
        why = f" (run problem: {_first_line(problems[-1])})" if problems else ""
        result.findings.append(Finding(REGRESSION, dataset, codec, "coverage", f"codec disappeared: no results{why}"))
        return
    version, older = latest_version(rows)
    comparison = CodecComparison(dataset, codec, base_version, version)
    result.codecs.append(comparison)
    if version != base_version:
        result.findings.append(Finding(CHANGE, dataset, codec, "version", f"codec version {base_version} → {version}"))
    if older:
        result.findings.append(Finding(INFO, dataset, codec, "version",
                                       f"using version {version}; rows of {', '.join(older)} ignored"))
    rows = [r for r in rows if str(r.get("codec_version")) == version]
    # cells matched by the setting's baseline key and the image's pixels
    good = {(setting_key(r["setting"]), r["image_sha256"]): r for r in rows if not is_failed(r)}
    failed = {(setting_key(r["setting"]), r["image_sha256"]): r for r in rows if is_failed(r)}

    missing_settings, missing_cells, missing_values = [], [], defaultdict(list)
    for key, setting_entry in sorted(entry["settings"].items(), key=lambda kv: float(kv[0])):
        pairs, lost_cells = [], []  # (baseline values, current row) per common image; missing cells
        for name, values in sorted(setting_entry["images"].items()):
            row = good.get((key, checksums[name]))
            if row is None:
                why = failed.get((key, checksums[name]))
                lost_cells.append(f"{name} at {key}" + (f" (failed: {_first_line(why['error'])})" if why else ""))
            else:
                pairs.append((values, row))
        if not pairs and not any(k == key for k, _ in failed):
            missing_settings.append(key)
            continue
        missing_cells += lost_cells
        if not pairs:
            continue
        for metric in result.metrics:
            lost = [r["image"] for v, r in pairs if metric in v and not has_value(r, metric)]
            if lost:
                missing_values[metric].append(f"{key} ({_short_list(lost, 3)})")
        comparison.settings.append(_drift(float(key), pairs, result.metrics, result.tolerances))
        comparison.common_cells += len(pairs)
        comparison.same_bytes += sum(int(v["bytes"]) == int(r["bytes"]) for v, r in pairs)

    if missing_settings:
        result.findings.append(Finding(REGRESSION, dataset, codec, "coverage",
                                       f"setting(s) disappeared: {_short_list(missing_settings)}"))
    if missing_cells:
        result.findings.append(Finding(REGRESSION, dataset, codec, "coverage",
                                       f"{len(missing_cells)} cell(s) missing: {_short_list(missing_cells, 5)}"))
    for metric, where in missing_values.items():
        result.findings.append(Finding(REGRESSION, dataset, codec, metric, f"{metric} not computed at setting(s) "
                                                                          f"{_short_list(where, 5)}"))
    new_settings = sorted({k for k, _ in good} - set(entry["settings"]), key=float)
    if new_settings:
        result.findings.append(Finding(INFO, dataset, codec, "coverage", f"new setting(s): {_short_list(new_settings)}"))
    _drift_findings(comparison, result)
    _bd_rate_findings(comparison, result)


def _first_line(text: Any) -> str:
    return str(text).strip().splitlines()[0] if str(text).strip() else "unknown error"


def _drift(setting: float, pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], metrics: Sequence[str],
           tolerances: Tolerances) -> SettingDrift:
    """Mean points over the common images, both sides at the baseline's precision, and the axes beyond tolerance.

    A metric's means use the images where both sides have it (a value missing
    on one side is a coverage finding).
    """
    baseline = [image_values(values) for values, _ in pairs]
    current = [{name: stored(row[name]) for name in ("bpp", *METRICS) if has_value(row, name)} for _, row in pairs]
    bpp = (mean([b["bpp"] for b in baseline]), mean([c["bpp"] for c in current]))
    worse, better = [], []
    drift = percent_change(*bpp)
    if drift > tolerances.max_bpp_drift:
        worse.append("bpp")
    elif drift < -tolerances.max_bpp_drift:
        better.append("bpp")
    means = {}
    for metric in metrics:
        common = [i for i, (values, row) in enumerate(pairs) if metric in values and has_value(row, metric)]
        if not common:
            continue
        base = mean_metric([baseline[i] for i in common], metric)
        now = mean_metric([current[i] for i in common], metric)
        means[metric] = (base, now)
        gain = (now - base) if higher_is_better(metric) else (base - now)
        if base == now or math.isnan(gain):  # equal infinities (lossless PSNR) give nan
            continue
        if gain < -tolerances.max_drift[metric]:
            worse.append(metric)
        elif gain > tolerances.max_drift[metric]:
            better.append(metric)
    return SettingDrift(setting, len(pairs), bpp, means, tuple(worse), tuple(better))


def _axis_change(s: SettingDrift, axis: str) -> str:
    if axis == "bpp":
        return f"{s.bpp_drift_percent:+.2f} %"
    return delta_text(s.metrics[axis][1] - s.metrics[axis][0])


def _drift_findings(comparison: CodecComparison, result: CheckResult) -> None:
    """Per axis, the settings that regressed or improved; once per codec, the settings that moved along the curve."""
    tol = result.tolerances
    n = len(comparison.settings)
    for axis in ("bpp", *result.metrics):
        limit = f"{tol.max_bpp_drift:g} %" if axis == "bpp" else f"{tol.max_drift[axis]:g}"
        for severity, side, what in ((REGRESSION, "worse", "worse"), (IMPROVEMENT, "better", "better")):
            hits = [s for s in comparison.settings if s.verdict == severity and axis in getattr(s, side)]
            if hits:
                detail = [f"{setting_key(s.setting)} ({_axis_change(s, axis)})" for s in hits]
                result.findings.append(Finding(
                    severity, comparison.dataset, comparison.codec, axis,
                    f"mean {axis} {what} at {len(hits)} of {n} setting(s), tolerance {limit}: {_short_list(detail, 6)}"))
    moved = [s for s in comparison.settings if s.verdict == CHANGE]
    if moved:
        detail = [f"{setting_key(s.setting)} (" + ", ".join(f"{axis} {_axis_change(s, axis)}"
                                                             for axis in (*s.worse, *s.better)) + ")" for s in moved]
        result.findings.append(Finding(
            CHANGE, comparison.dataset, comparison.codec, "drift",
            f"{len(moved)} of {n} setting(s) moved along the curve (one axis worse, another better; the BD-rate "
            f"judges): {_short_list(detail, 4)}"))


def _bd_rate_findings(comparison: CodecComparison, result: CheckResult) -> None:
    for metric in result.metrics:
        points = [(*s.bpp, *s.metrics[metric]) for s in comparison.settings
                  if metric in s.metrics and all(math.isfinite(x) for x in (*s.bpp, *s.metrics[metric]))]
        where = (comparison.dataset, comparison.codec, metric)
        bd = bd_rate([p[0] for p in points], [p[2] for p in points], [p[1] for p in points], [p[3] for p in points],
                     method="pchip", higher_is_better=higher_is_better(metric))
        comparison.bd_rate[metric] = bd.value if bd.ok else None
        for warning in bd.warnings:
            result.findings.append(Finding(INFO, *where, f"BD-rate ({metric}): {warning}"))
        limit = result.tolerances.max_bd_rate
        if not bd.ok:
            result.findings.append(Finding(CHANGE, *where, f"BD-rate ({metric}) not computed from {len(points)} "
                                                           f"common setting(s): {bd.reason}"))
        elif bd.value > limit:
            result.findings.append(Finding(REGRESSION, *where, f"BD-rate ({metric}) {bd.value:+.3f} % > {limit:g} %: "
                                                               "more bits for the same quality"))
        elif bd.value < -limit:
            result.findings.append(Finding(IMPROVEMENT, *where, f"BD-rate ({metric}) {bd.value:+.3f} %: "
                                                                "fewer bits for the same quality"))
