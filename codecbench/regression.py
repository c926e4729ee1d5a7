"""RD-curve regression checks: freeze a run's curves into a baseline, then compare later runs to it.

A **baseline** is a small JSON file (see ``make_baseline`` and ``dumps_baseline``)
holding, per dataset, the image checksums (image name → pixel SHA-256, as in
``codecbench.images.pixel_sha256``) and, per codec (with its version) and per
setting, the mean bpp and mean of each metric over the images, plus each image's
``bytes``, ``bpp`` and metrics. Only sweep cells count (rows with
``target_bpp`` set are rate-targeted cells and are ignored); failed cells are
left out; timing is never stored. Floats are rounded to ``SIGNIFICANT_DIGITS``
significant digits (relative error ≤ 5e-13, far below every tolerance) so the
file is byte-stable and diffs show only real changes.

``compare`` checks current results against a baseline, per dataset and codec:

- **BD-rate** (percent, Bjøntegaard delta with pchip interpolation, from
  ``codecbench.analysis.bd_rate``) of the current mean curve against the
  baseline's, per checked metric. Mean curve = per setting, the mean bpp and the
  mean metric over the images present in both (matched by pixel SHA-256), so a
  missing image never shifts the curve; settings present in both are used.
  Positive = the current codec needs more bits for the same quality = worse.
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
Exit codes (``CheckResult.exit_code``): 0 pass, 1 regression, 2 unusable input.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codecbench import __version__
from codecbench.files import atomic_write_text
from codecbench.analysis import METRIC_COLUMNS, bd_rate, higher_is_better

FORMAT = "codecbench-baseline"
FORMAT_VERSION = 1
#: Floats in a baseline are rounded to this many significant digits.
SIGNIFICANT_DIGITS = 12

#: Metrics checked when none are named: the two curves learned-compression papers report.
DEFAULT_METRICS = ("psnr_rgb", "ms_ssim")
#: Largest acceptable BD-rate, percent (current vs baseline; positive = more bits).
DEFAULT_MAX_BD_RATE = 0.1
#: Largest acceptable increase of a setting's mean bpp, percent of the baseline's.
DEFAULT_MAX_BPP_DRIFT = 0.5
#: Largest acceptable absolute change of a setting's mean metric, in the metric's unit.
DEFAULT_MAX_DRIFT: Mapping[str, float] = {
    "psnr_rgb": 0.02, "psnr_y": 0.02, "ms_ssim_db": 0.02,  # dB
    "ssim": 1e-4, "ms_ssim": 1e-4,  # unitless, 0..1
    "lpips": 1e-3,  # unitless distance
}

REGRESSION, IMPROVEMENT, CHANGE, INFO = "regression", "improvement", "change", "info"


class RegressionInputError(ValueError):
    """Input a baseline or check cannot use (exit code 2); the message names the file or item and the reason."""


# ---------------------------------------------------------------------------
# Numbers


def _rounded(value: float) -> float | str:
    """A float rounded to SIGNIFICANT_DIGITS; non-finite values as the strings the store uses ("inf", "nan")."""
    value = float(value)
    if not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def _stored(value: float) -> float:
    """A current value at the baseline's precision, so that identical results compare exactly equal."""
    return float(_rounded(value))


def _mean(values: Sequence[float]) -> float:
    """Mean, exactly rounded (``math.fsum``) so that it does not depend on the order of the images."""
    if all(math.isfinite(v) for v in values):
        return math.fsum(values) / len(values)
    return sum(values) / len(values)


def _percent_change(base: float, current: float) -> float:
    """100 × (current − base) / base."""
    if base == 0:
        return 0.0 if current == 0 else math.inf
    return 100.0 * (current - base) / base


def setting_key(setting: float) -> str:
    """The baseline's key of a setting: the float in shortest form with 12 significant digits ("10", "0.5")."""
    return f"{float(setting):.12g}"


def _is_failed(row: Mapping[str, Any]) -> bool:
    return bool(row.get("error"))


# ---------------------------------------------------------------------------
# Reading results


def _sweep_rows(rows: Iterable[Mapping[str, Any]], datasets: Sequence[str] | None,
                codecs: Sequence[str] | None) -> list[Mapping[str, Any]]:
    """Sweep rows (no target_bpp) of the selected datasets and codecs that name their cell."""
    out = []
    for row in rows:
        if row.get("target_bpp") is not None or row.get("setting") is None:
            continue
        if not all(row.get(k) is not None for k in ("dataset", "image", "image_sha256", "codec")):
            continue
        if datasets and row["dataset"] not in datasets:
            continue
        if codecs and row["codec"] not in codecs:
            continue
        out.append(row)
    return out


def _image_checksums(rows: Iterable[Mapping[str, Any]],
                     manifests: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, set[str]]]:
    """dataset → image name → the pixel SHA-256 values seen for it, in rows and run manifests."""
    seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for row in rows:
        if row.get("dataset") is not None and row.get("image") is not None and row.get("image_sha256"):
            seen[row["dataset"]][row["image"]].add(row["image_sha256"])
    for manifest in manifests:
        tables = manifest.get("datasets") if isinstance(manifest, Mapping) else None
        if not isinstance(tables, Mapping):
            continue
        for dataset, table in tables.items():
            if isinstance(table, Mapping):
                for name, sha in table.items():
                    if isinstance(sha, str) and sha:
                        seen[dataset][name].add(sha)
    return seen


def _latest_version(rows: Sequence[Mapping[str, Any]]) -> tuple[str, list[str]]:
    """(version of the most recently finished row, the other versions present), for one dataset × codec."""
    order = sorted(range(len(rows)), key=lambda i: (str(rows[i].get("finished_at") or ""), i))
    latest = str(rows[order[-1]].get("codec_version"))
    others = sorted({str(r.get("codec_version")) for r in rows} - {latest})
    return latest, others


def _by(rows: Iterable[Mapping[str, Any]], *keys: str) -> dict[tuple, list[Mapping[str, Any]]]:
    groups: dict[tuple, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in keys)].append(row)
    return groups


# ---------------------------------------------------------------------------
# Baselines


def make_baseline(rows: Iterable[Mapping[str, Any]], manifests: Iterable[Mapping[str, Any]] = (), *,
                  datasets: Sequence[str] | None = None, codecs: Sequence[str] | None = None,
                  notes: list[str] | None = None) -> dict[str, Any]:
    """Freeze the RD curves of results rows (``ResultsStore.rows()``) into a baseline dict.

    Per dataset and codec the rows of the most recently finished codec version
    are used. ``notes``, when given, receives one line per thing left out
    (failed cells, older codec versions). Raises RegressionInputError when
    nothing is left to freeze or an image name has two different checksums.
    """
    rows = list(rows)
    selected = _sweep_rows(rows, datasets, codecs)
    notes = notes if notes is not None else []
    if not any(not _is_failed(r) for r in selected):
        raise RegressionInputError(f"no successful sweep cells to freeze{_filter_text(datasets, codecs)}")
    checksums = _image_checksums(_sweep_rows(rows, datasets, None), manifests)
    out: dict[str, Any] = {}
    for (dataset,), dataset_rows in sorted(_by(selected, "dataset").items()):
        table = {}
        for name, shas in checksums[dataset].items():
            if len(shas) > 1:
                raise RegressionInputError(
                    f"dataset {dataset}: the results hold {len(shas)} different images named {name} "
                    f"({', '.join(sorted(s[:12] for s in shas))}); make the baseline from a fresh results directory")
            table[name] = next(iter(shas))
        codec_out = {}
        for (codec,), codec_rows in sorted(_by(dataset_rows, "codec").items()):
            version, older = _latest_version(codec_rows)
            if older:
                notes.append(f"{dataset}/{codec}: using version {version}; left out rows of {', '.join(older)}")
            current = [r for r in codec_rows if str(r.get("codec_version")) == version]
            failed = [r for r in current if _is_failed(r)]
            if failed:
                notes.append(f"{dataset}/{codec}: left out {len(failed)} failed cell(s), e.g. {_describe_failure(failed[0])}")
            images_by_setting: dict[str, dict[str, Any]] = defaultdict(dict)
            for r in current:
                if not _is_failed(r):
                    images_by_setting[setting_key(r["setting"])][r["image"]] = _image_entry(r)
            settings = {key: {"mean": _mean_entry(images.values()), "images": images}
                        for key, images in images_by_setting.items()}
            if settings:
                codec_out[codec] = {"codec_version": version, "settings": settings}
            else:
                notes.append(f"{dataset}/{codec}: left out, no successful cell")
        out[dataset] = {"checksums": table, "codecs": codec_out}
    return {
        "format": FORMAT, "format_version": FORMAT_VERSION, "codecbench_version": __version__,
        "precision": f"floats rounded to {SIGNIFICANT_DIGITS} significant digits",
        "datasets": out,
    }


def _filter_text(datasets: Sequence[str] | None, codecs: Sequence[str] | None) -> str:
    parts = ([f"dataset {', '.join(datasets)}"] if datasets else []) + ([f"codecs {', '.join(codecs)}"] if codecs else [])
    return f" ({'; '.join(parts)})" if parts else ""


def _describe_failure(row: Mapping[str, Any]) -> str:
    return f"{row.get('image')} at setting {setting_key(row['setting'])}: {str(row.get('error')).strip().splitlines()[0]}"


def _image_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"bytes": int(row["bytes"]), "bpp": _rounded(row["bpp"])}
    for metric in METRIC_COLUMNS:
        if _has_value(row, metric):
            entry[metric] = _rounded(row[metric])
    return entry


def _mean_entry(entries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Per value name (bpp and metrics; not bytes), the mean over the images that have it."""
    values: dict[str, list[float]] = defaultdict(list)
    for entry in entries:
        for name, value in entry.items():
            if name != "bytes":
                values[name].append(float(value))
    return {name: _rounded(_mean(v)) for name, v in values.items()}


def dumps_baseline(baseline: Mapping[str, Any]) -> str:
    """The baseline as diff-friendly JSON text: sorted keys (settings in numeric order), one value per line,
    except that each image's values and each setting's means share one line."""
    return _dump(baseline, 0, False) + "\n"


def _order(key: str) -> tuple:
    try:
        number = float(key)
    except ValueError:
        return (1, 0.0, key)
    return (0, number, key) if math.isfinite(number) else (1, 0.0, key)


def _dump(value: Any, depth: int, one_line: bool) -> str:
    """JSON text of ``value``; a setting's "mean" and each entry of its "images" go on one line."""
    if not isinstance(value, Mapping) or not value:
        return json.dumps(value, allow_nan=False)
    items = sorted(value.items(), key=lambda kv: _order(kv[0]))
    if one_line:
        return "{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v, allow_nan=False)}" for k, v in items) + "}"
    records = value.get("images") if isinstance(value.get("mean"), Mapping) else None
    pad = "  " * (depth + 1)
    lines = []
    for key, item in items:
        if records is not None and item is records:
            inner = [f"{pad}  {json.dumps(k)}: {_dump(v, 0, True)}" for k, v in sorted(item.items(),
                                                                                      key=lambda kv: _order(kv[0]))]
            lines.append(f"{pad}{json.dumps(key)}: " + ("{\n" + ",\n".join(inner) + f"\n{pad}}}" if inner else "{}"))
        else:
            lines.append(f"{pad}{json.dumps(key)}: {_dump(item, depth + 1, key == 'mean' and records is not None)}")
    return "{\n" + ",\n".join(lines) + "\n" + "  " * depth + "}"


def write_baseline(baseline: Mapping[str, Any], path: str | Path) -> Path:
    """Write a baseline atomically (parent folders created)."""
    return atomic_write_text(path, dumps_baseline(baseline))


def load_baseline(path: str | Path) -> dict[str, Any]:
    """Read and validate a baseline file; RegressionInputError naming the file and the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RegressionInputError(f"{path}: no such baseline file; create it with `codecbench baseline`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RegressionInputError(f"{path}: cannot read the baseline ({exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RegressionInputError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    problem = baseline_problem(data)
    if problem:
        raise RegressionInputError(f"{path}: not a usable codecbench baseline: {problem}")
    return data


def baseline_problem(data: Any) -> str | None:
    """What is wrong with a baseline dict (the first problem, with its path in the file), or None."""
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        return f'"format" is not "{FORMAT}"'
    if data.get("format_version") != FORMAT_VERSION:
        return (f'"format_version" is {data.get("format_version")!r}; this codecbench ({__version__}) '
                f"reads version {FORMAT_VERSION}")
    datasets = data.get("datasets")
    if not isinstance(datasets, Mapping) or not datasets:
        return '"datasets" is missing or empty'
    for dataset, part in datasets.items():
        where = f"datasets.{dataset}"
        if not isinstance(part, Mapping) or not isinstance(part.get("checksums"), Mapping) \
                or not isinstance(part.get("codecs"), Mapping):
            return f'{where}: needs "checksums" and "codecs" objects'
        checksums = part["checksums"]
        if not all(isinstance(v, str) and len(v) == 64 for v in checksums.values()):
            return f"{where}.checksums: values must be 64-character SHA-256 hex strings"
        for codec, entry in part["codecs"].items():
            where_codec = f"{where}.codecs.{codec}"
            if not isinstance(entry, Mapping) or not isinstance(entry.get("codec_version"), str) \
                    or not isinstance(entry.get("settings"), Mapping) or not entry["settings"]:
                return f'{where_codec}: needs a "codec_version" string and a non-empty "settings" object'
            for key, setting in entry["settings"].items():
                where_setting = f"{where_codec}.settings.{key}"
                try:
                    float(key)
                except ValueError:
                    return f"{where_setting}: the key is not a number"
                images = setting.get("images") if isinstance(setting, Mapping) else None
                if not isinstance(images, Mapping) or not images:
                    return f'{where_setting}: needs a non-empty "images" object'
                for name, values in images.items():
                    if name not in checksums:
                        return f"{where_setting}.images.{name}: image not listed in {where}.checksums"
                    problem = _values_problem(values)
                    if problem:
                        return f"{where_setting}.images.{name}: {problem}"
    return None


def _values_problem(values: Any) -> str | None:
    if not isinstance(values, Mapping):
        return "not an object"
    if not isinstance(values.get("bytes"), int) or "bpp" not in values:
        return 'needs integer "bytes" and "bpp"'
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return f"{name} is not a number"
        try:
            float(value)
        except ValueError:
            return f"{name}={value!r} is not a number"
    return None


# ---------------------------------------------------------------------------
# Comparing


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
        return _percent_change(*self.bpp)

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
    Raises RegressionInputError for a malformed baseline; every other unusable
    input is listed in ``CheckResult.unusable``.
    """
    problem = baseline_problem(baseline)
    if problem:
        raise RegressionInputError(f"not a usable codecbench baseline: {problem}")
    tolerances = tolerances or Tolerances()
    rows, manifests = list(rows), list(manifests)
    result = CheckResult(tolerances=tolerances, metrics=())

    base = _select_baseline(baseline, datasets, codecs, result)
    if result.unusable:
        return result
    result.metrics = _choose_metrics(base, metrics, tolerances, result)
    if result.unusable:
        return result

    current = _sweep_rows(rows, list(base), codecs)
    _check_checksums(base, _image_checksums(_sweep_rows(rows, list(base), None), manifests), result)
    if result.unusable:
        return result
    current_by_codec = _by(current, "dataset", "codec")
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
            if d == dataset and codec not in part["codecs"] and any(not _is_failed(r) for r in codec_rows):
                result.findings.append(Finding(INFO, dataset, codec, "coverage", "new codec, not in the baseline"))
        _report_new_images(dataset, part["checksums"], [r for r in current if r["dataset"] == dataset], result)
    for dataset in sorted({r["dataset"] for r in _sweep_rows(rows, datasets, codecs)} - set(base)):
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
        result.unusable.append(f"the baseline holds nothing{_filter_text(datasets, codecs)}")
    return chosen


def _choose_metrics(base: Mapping[str, Any], metrics: Sequence[str] | None, tolerances: Tolerances,
                    result: CheckResult) -> tuple[str, ...]:
    stored = {name for part in base.values() for entry in part["codecs"].values()
              for setting in entry["settings"].values() for values in setting["images"].values() for name in values}
    known = set(METRIC_COLUMNS)
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
    version, older = _latest_version(rows)
    comparison = CodecComparison(dataset, codec, base_version, version)
    result.codecs.append(comparison)
    if version != base_version:
        result.findings.append(Finding(CHANGE, dataset, codec, "version", f"codec version {base_version} → {version}"))
    if older:
        result.findings.append(Finding(INFO, dataset, codec, "version",
                                       f"using version {version}; rows of {', '.join(older)} ignored"))
    rows = [r for r in rows if str(r.get("codec_version")) == version]
    # cells matched by the setting's baseline key and the image's pixels
    good = {(setting_key(r["setting"]), r["image_sha256"]): r for r in rows if not _is_failed(r)}
    failed = {(setting_key(r["setting"]), r["image_sha256"]): r for r in rows if _is_failed(r)}

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
            lost = [r["image"] for v, r in pairs if metric in v and not _has_value(r, metric)]
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


def _has_value(row: Mapping[str, Any], metric: str) -> bool:
    """The row has a computed value of the metric (not missing, not NaN)."""
    value = row.get(metric)
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _first_line(text: Any) -> str:
    return str(text).strip().splitlines()[0] if str(text).strip() else "unknown error"


def _drift(setting: float, pairs: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]], metrics: Sequence[str],
           tolerances: Tolerances) -> SettingDrift:
    """Means over the common images, both sides at the baseline's precision, and the axes beyond tolerance."""
    bpp = (_mean([float(v["bpp"]) for v, _ in pairs]), _mean([_stored(r["bpp"]) for _, r in pairs]))
    worse, better = [], []
    drift = _percent_change(*bpp)
    if drift > tolerances.max_bpp_drift:
        worse.append("bpp")
    elif drift < -tolerances.max_bpp_drift:
        better.append("bpp")
    means = {}
    for metric in metrics:
        both = [(float(v[metric]), _stored(r[metric])) for v, r in pairs if metric in v and _has_value(r, metric)]
        if not both:
            continue
        base, current = _mean([b for b, _ in both]), _mean([c for _, c in both])
        means[metric] = (base, current)
        gain = (current - base) if higher_is_better(metric) else (base - current)
        if base == current or math.isnan(gain):  # equal infinities (lossless PSNR) give nan
            continue
        if gain < -tolerances.max_drift[metric]:
            worse.append(metric)
        elif gain > tolerances.max_drift[metric]:
            better.append(metric)
    return SettingDrift(setting, len(pairs), bpp, means, tuple(worse), tuple(better))


def _axis_change(s: SettingDrift, axis: str) -> str:
    if axis == "bpp":
        return f"{s.bpp_drift_percent:+.2f} %"
    return _delta_text(s.metrics[axis][1] - s.metrics[axis][0])


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


# ---------------------------------------------------------------------------
# Reports


_ICON = {REGRESSION: "❌", IMPROVEMENT: "🟢", CHANGE: "⚠️", INFO: "ℹ️"}


def format_markdown(result: CheckResult) -> str:
    """A Markdown summary for a pull-request comment or ``$GITHUB_STEP_SUMMARY``."""
    lines = [f"## codecbench check: {_headline(result)}", ""]
    lines.append(f"Baseline `{result.baseline_label}`, results `{result.results_label}`.")
    if result.unusable:
        lines += ["", "### ⛔ Unusable input", ""] + [f"- {reason}" for reason in result.unusable]
        return "\n".join(lines) + "\n"
    tol = result.tolerances
    drifts = ", ".join(f"{m} ±{tol.max_drift[m]:g}" for m in result.metrics)
    lines.append(f"Tolerances: BD-rate ≤ {tol.max_bd_rate:g} % (pchip; {', '.join(result.metrics)}), "
                 f"per-setting mean bpp ±{tol.max_bpp_drift:g} %, {drifts}. Timing is not checked.")
    versions = [f for f in result.findings if f.check == "version" and f.severity == CHANGE]
    if versions:
        lines += ["", "### ⚠️ Codec versions changed (curves still compared)", ""]
        lines += [f"- **{f.dataset}/{f.codec}**: {f.message}" for f in versions]
    for severity, title in ((REGRESSION, "Regressions"), (IMPROVEMENT, "Improvements"),
                            (CHANGE, "Changes"), (INFO, "Notes")):
        found = [f for f in result.of(severity) if f not in versions]
        if found:
            lines += ["", f"### {_ICON[severity]} {title}", ""]
            lines += [f"- {_where(f)}{f.message}" for f in found]
    for dataset in sorted({c.dataset for c in result.codecs}):
        lines += ["", f"### {dataset}", ""] + _codec_table(result, [c for c in result.codecs if c.dataset == dataset])
    for comparison in result.codecs:
        if any(f.dataset == comparison.dataset and f.codec == comparison.codec and f.severity != INFO
               and f.check != "version" for f in result.findings) and comparison.settings:
            lines += [""] + _setting_table(result, comparison)
    return "\n".join(lines) + "\n"


def _headline(result: CheckResult) -> str:
    if result.unusable:
        return "⛔ unusable input"
    regressions = result.of(REGRESSION)
    if regressions:
        return f"❌ {len(regressions)} regression(s)"
    improvements = result.of(IMPROVEMENT)
    return "✅ no regressions" + (f", {len(improvements)} improvement(s)" if improvements else "")


def _where(finding: Finding) -> str:
    parts = [p for p in (finding.dataset, finding.codec) if p]
    return f"**{'/'.join(parts)}**: " if parts else ""


def _status(result: CheckResult, comparison: CodecComparison) -> str:
    severities = {f.severity for f in result.findings
                  if f.dataset == comparison.dataset and f.codec == comparison.codec and f.check != "version"}
    for severity, label in ((REGRESSION, "❌ regression"), (CHANGE, "⚠️ changed"), (IMPROVEMENT, "🟢 improved")):
        if severity in severities:
            return label
    return "✅ pass"


def _codec_table(result: CheckResult, comparisons: Sequence[CodecComparison]) -> list[str]:
    header = ["codec", "version", *(f"BD-rate {m}" for m in result.metrics), "max Δbpp",
              *(f"max Δ{m}" for m in result.metrics), "same bytes", "result"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for c in comparisons:
        version = c.baseline_version if c.current_version in (None, c.baseline_version) \
            else f"{c.baseline_version} → {c.current_version}"
        if c.current_version is None:
            cells = ["—"] * (2 * len(result.metrics) + 2)
        else:
            bd = [("n/a" if c.bd_rate.get(m) is None else f"{c.bd_rate[m]:+.3f} %") for m in result.metrics]
            bpp = _largest([s.bpp_drift_percent for s in c.settings])
            deltas = [_largest([s.metrics[m][1] - s.metrics[m][0] for s in c.settings if m in s.metrics])
                      for m in result.metrics]
            cells = [*bd, "—" if bpp is None else f"{bpp:+.2f} %",
                     *("—" if d is None else _delta_text(d) for d in deltas), f"{c.same_bytes}/{c.common_cells}"]
        lines.append("| " + " | ".join([c.codec, f"`{version}`", *cells, _status(result, c)]) + " |")
    return lines


def _delta_text(delta: float) -> str:
    return "0" if delta == 0 else ("n/a" if math.isnan(delta) else f"{delta:+.3g}")


def _largest(values: Sequence[float]) -> float | None:
    finite = [v for v in values if not math.isnan(v)]
    return max(finite, key=abs) if finite else None


def _setting_table(result: CheckResult, c: CodecComparison) -> list[str]:
    header = ["setting", "images", "bpp", "Δbpp", *(f"{m}" for m in result.metrics), *(f"Δ{m}" for m in result.metrics),
              "verdict"]
    lines = [f"<details><summary>{c.dataset}/{c.codec}: per-setting means (baseline → current)</summary>", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in c.settings:
        values = [f"{s.metrics[m][0]:.6g} → {s.metrics[m][1]:.6g}" if m in s.metrics else "—" for m in result.metrics]
        deltas = [_delta_text(s.metrics[m][1] - s.metrics[m][0]) if m in s.metrics else "—" for m in result.metrics]
        lines.append("| " + " | ".join([setting_key(s.setting), str(s.n_images), f"{s.bpp[0]:.6g} → {s.bpp[1]:.6g}",
                                        f"{s.bpp_drift_percent:+.2f} %", *values, *deltas, s.verdict]) + " |")
    return lines + ["", "</details>"]


def to_junit(result: CheckResult) -> str:
    """JUnit XML: one testcase per dataset/codec × check (coverage, bpp, each metric); regressions are failures.

    Unusable input is one testcase with an ``<error>``; the checks of a codec
    without results are skipped.
    """
    suite = ET.Element("testsuite", name="codecbench check")
    cases: list[ET.Element] = []
    if result.unusable:
        case = ET.Element("testcase", classname="codecbench", name="input")
        ET.SubElement(case, "error", message="unusable input").text = "\n".join(result.unusable)
        cases.append(case)
    for c in result.codecs:
        for check in ("coverage", "bpp", *result.metrics):
            case = ET.Element("testcase", classname=f"{c.dataset}.{c.codec}", name=check)
            failures = [f.message for f in result.of(REGRESSION)
                        if (f.dataset, f.codec, f.check) == (c.dataset, c.codec, check)]
            if failures:
                ET.SubElement(case, "failure", message=failures[0]).text = "\n".join(failures)
            elif c.current_version is None and check != "coverage":
                ET.SubElement(case, "skipped", message="codec has no results")
            cases.append(case)
    suite.extend(cases)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(case.find("failure") is not None for case in cases)))
    suite.set("errors", str(sum(case.find("error") is not None for case in cases)))
    suite.set("skipped", str(sum(case.find("skipped") is not None for case in cases)))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
