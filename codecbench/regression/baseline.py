"""The baseline file: a run's RD curves frozen for later regression checks (``codecbench baseline``).

A baseline holds, per dataset, the image checksums (image name → pixel
SHA-256, as :func:`codecbench.data.images.pixel_sha256`) and, per codec (with its
version) and per setting, each image's ``bytes``, ``bpp`` and metrics, plus
the setting's ``mean``: its point on the mean RD curve
(:func:`codecbench.analysis.curves.mean_point`) over the images' stored values;
a metric some image lacks is left out of the mean. Only sweep cells count
(rows with ``target_bpp`` set are rate-targeted and ignored); failed cells are
left out; timing is never stored.

File format: JSON written by the standard :mod:`json` module, indented by 2,
keys sorted (numeric keys such as settings first, in numeric order), each
image's values and each setting's means on one line. Floats are rounded to
:data:`SIGNIFICANT_DIGITS` significant digits (relative error ≤ 5e-13, far
below every tolerance) so the file is byte-stable and diffs show only real
changes. Non-finite numbers (the PSNR of a lossless cell) are the strings
``"inf"``, ``"-inf"`` and ``"nan"`` (:func:`codecbench.values.to_json_number`).
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from codecbench import __version__
from codecbench.analysis.curves import mean_point
from codecbench.errors import BaselineError
from codecbench.files import atomic_write_text
from codecbench.metrics import METRICS
from codecbench.values import to_json_number

FORMAT = "codecbench-baseline"
FORMAT_VERSION = 1
#: Floats in a baseline are rounded to this many significant digits.
SIGNIFICANT_DIGITS = 12


# ---------------------------------------------------------------------------
# Numbers and rows


def rounded(value: float) -> float | str:
    """A float rounded to SIGNIFICANT_DIGITS; non-finite values as ``to_json_number`` writes them."""
    value = float(value)
    return to_json_number(value) if not math.isfinite(value) else float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def stored(value: float) -> float:
    """A current value at the baseline's precision, so that identical results compare exactly equal."""
    return float(rounded(value))


def setting_key(setting: float) -> str:
    """The baseline's key of a setting: the float in shortest form with 12 significant digits ("10", "0.5")."""
    return f"{float(setting):.12g}"


def is_failed(row: Mapping[str, Any]) -> bool:
    return bool(row.get("error"))


def has_value(row: Mapping[str, Any], metric: str) -> bool:
    """The row has a computed value of the metric (not missing, not NaN)."""
    value = row.get(metric)
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def sweep_rows(rows: Iterable[Mapping[str, Any]], datasets: Sequence[str] | None,
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


def image_checksums(rows: Iterable[Mapping[str, Any]],
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


def latest_version(rows: Sequence[Mapping[str, Any]]) -> tuple[str, list[str]]:
    """(version of the most recently finished row, the other versions present), for one dataset × codec."""
    order = sorted(range(len(rows)), key=lambda i: (str(rows[i].get("finished_at") or ""), i))
    latest = str(rows[order[-1]].get("codec_version"))
    others = sorted({str(r.get("codec_version")) for r in rows} - {latest})
    return latest, others


def group_by(rows: Iterable[Mapping[str, Any]], *keys: str) -> dict[tuple, list[Mapping[str, Any]]]:
    groups: dict[tuple, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in keys)].append(row)
    return groups


def filter_text(datasets: Sequence[str] | None, codecs: Sequence[str] | None) -> str:
    parts = ([f"dataset {', '.join(datasets)}"] if datasets else []) + ([f"codecs {', '.join(codecs)}"] if codecs else [])
    return f" ({'; '.join(parts)})" if parts else ""


# ---------------------------------------------------------------------------
# Making a baseline


def make_baseline(rows: Iterable[Mapping[str, Any]], manifests: Iterable[Mapping[str, Any]] = (), *,
                  datasets: Sequence[str] | None = None, codecs: Sequence[str] | None = None,
                  notes: list[str] | None = None) -> dict[str, Any]:
    """Freeze the RD curves of results rows (``ResultsStore.rows()``) into a baseline dict.

    Per dataset and codec the rows of the most recently finished codec version
    are used. ``notes``, when given, receives one line per thing left out
    (failed cells, older codec versions). Raises BaselineError when nothing is
    left to freeze or an image name has two different checksums.
    """
    rows = list(rows)
    selected = sweep_rows(rows, datasets, codecs)
    notes = notes if notes is not None else []
    if not any(not is_failed(r) for r in selected):
        raise BaselineError(f"no successful sweep cells to freeze{filter_text(datasets, codecs)}")
    checksums = image_checksums(sweep_rows(rows, datasets, None), manifests)
    out: dict[str, Any] = {}
    for (dataset,), dataset_rows in sorted(group_by(selected, "dataset").items()):
        table = {}
        for name, shas in checksums[dataset].items():
            if len(shas) > 1:
                raise BaselineError(
                    f"dataset {dataset}: the results hold {len(shas)} different images named {name} "
                    f"({', '.join(sorted(s[:12] for s in shas))}); make the baseline from a fresh results directory")
            table[name] = next(iter(shas))
        codec_out = {}
        for (codec,), codec_rows in sorted(group_by(dataset_rows, "codec").items()):
            version, older = latest_version(codec_rows)
            if older:
                notes.append(f"{dataset}/{codec}: using version {version}; left out rows of {', '.join(older)}")
            current = [r for r in codec_rows if str(r.get("codec_version")) == version]
            failed = [r for r in current if is_failed(r)]
            if failed:
                notes.append(f"{dataset}/{codec}: left out {len(failed)} failed cell(s), e.g. {_describe_failure(failed[0])}")
            images_by_setting: dict[str, dict[str, Any]] = defaultdict(dict)
            for r in current:
                if not is_failed(r):
                    images_by_setting[setting_key(r["setting"])][r["image"]] = _image_entry(r)
            settings = {key: {"mean": _setting_mean(images.values()), "images": images}
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


def _describe_failure(row: Mapping[str, Any]) -> str:
    return f"{row.get('image')} at setting {setting_key(row['setting'])}: {str(row.get('error')).strip().splitlines()[0]}"


def _image_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {"bytes": int(row["bytes"]), "bpp": rounded(row["bpp"])}
    for metric in METRICS:
        if has_value(row, metric):
            entry[metric] = rounded(row[metric])
    return entry


def image_values(entry: Mapping[str, Any]) -> dict[str, float]:
    """One image's stored values (bpp and metrics; not bytes) as floats."""
    return {name: float(value) for name, value in entry.items() if name != "bytes"}


def _setting_mean(entries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The setting's mean point over its images' stored values; metrics some image lacks are left out."""
    records = [image_values(entry) for entry in entries]
    metrics = [m for m in METRICS if all(m in record for record in records)]
    return {name: rounded(value) for name, value in mean_point(records, metrics).items()}


# ---------------------------------------------------------------------------
# The file


_LINE = "\x00line {}"
_LINE_PATTERN = re.compile(r'"\\u0000line (\d+)"')


def _order(key: str) -> tuple:
    try:
        number = float(key)
    except ValueError:
        return (1, 0.0, key)
    return (0, number, key) if math.isfinite(number) else (1, 0.0, key)


def _sorted(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return dict(sorted(mapping.items(), key=lambda item: _order(item[0])))


def dumps_baseline(baseline: Mapping[str, Any]) -> str:
    """The baseline as JSON text in the module's format (one image's values, one setting's means per line)."""
    lines: list[str] = []

    def one_line(record: Mapping[str, Any]) -> str:
        lines.append(json.dumps(_sorted(record), allow_nan=False))
        return _LINE.format(len(lines) - 1)

    def arrange(value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        setting = isinstance(value.get("mean"), Mapping)
        out = {}
        for key, item in value.items():
            if setting and key == "mean":
                out[key] = one_line(item)
            elif setting and key == "images":
                out[key] = _sorted({name: one_line(values) for name, values in item.items()})
            else:
                out[key] = arrange(item)
        return _sorted(out)

    text = json.dumps(arrange(baseline), indent=2, allow_nan=False)
    return _LINE_PATTERN.sub(lambda match: lines[int(match[1])], text) + "\n"


def write_baseline(baseline: Mapping[str, Any], path: str | Path) -> Path:
    """Write a baseline atomically (parent folders created)."""
    return atomic_write_text(path, dumps_baseline(baseline))


def load_baseline(path: str | Path) -> dict[str, Any]:
    """Read and validate a baseline file; BaselineError naming the file and the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such baseline file; create it with `codecbench baseline`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BaselineError(f"{path}: cannot read the baseline ({exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BaselineError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    problem = baseline_problem(data)
    if problem:
        raise BaselineError(f"{path}: not a usable codecbench baseline: {problem}")
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
