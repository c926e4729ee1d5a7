"""The report's HTML page: one self-contained file rendered from ``templates/report.html.j2`` with Jinja2.

plotly.js is embedded, the plot data are embedded as JSON and the stored
crops as base64 PNG, and a Content-Security-Policy forbids the page any
network access. Text is autoescaped; JSON inside ``<script>`` elements is
written with every ``<`` as ``\\u003c``. In the page's JSON a number is rounded
to 6 significant digits (times: 4) and a missing or non-finite one is null.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from codecbench import __version__
from codecbench.analysis.curves import DatasetResults, RDCurve
from codecbench.metrics import METRICS
from codecbench.render.tables import Table
from codecbench.store import ResultsStore
from codecbench.values import finite_float

#: Curve colours (D3 category10), given to codec labels in the order given.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")


def curve_colors(labels: Iterable[str]) -> dict[str, str]:
    """A palette colour per label, cycling through :data:`PALETTE`."""
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}


def script_json(value: Any) -> str:
    """JSON safe inside a <script> element: every '<' (only ever inside strings) written as \\u003c."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


_ENVIRONMENT = jinja2.Environment(loader=jinja2.PackageLoader("codecbench.render", "templates"), autoescape=True,
                                  trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                                  undefined=jinja2.StrictUndefined)
_ENVIRONMENT.filters["script_json"] = script_json


def _round(values: np.ndarray | Sequence[float], digits: int = 6) -> list[float | None]:
    """Floats for the page's JSON: ``digits`` significant digits, None for NaN and ±inf."""
    return [None if not math.isfinite(v) else float(f"{v:.{digits}g}") for v in np.asarray(values, dtype=float)]


def _curve_columns(curve: RDCurve, metrics: Sequence[str]) -> dict[str, list]:
    columns = {"setting": _round(curve.setting), "bpp": _round(curve.bpp)}
    columns.update({m: _round(curve.quality[m]) for m in metrics if m in curve.quality})
    columns.update(encode_s=_round(curve.encode_s, 4), decode_s=_round(curve.decode_s, 4))
    columns.update({key: _round(values, 4) for key, values in curve.timing_spread.items()})
    return columns


def plot_data(results: DatasetResults, references: Sequence[RDCurve], colors: dict[str, str]) -> dict[str, Any]:
    """The JSON the page's script draws from: mean curves, per-image points (columnar), target means."""
    index = {image.sha256: i for i, image in enumerate(results.images)}
    curves = []
    for label, codec in results.codecs.items():
        points: dict[str, list] = {"img": []}
        for sha, curve in codec.per_image.items():
            columns = _curve_columns(curve, results.metrics)
            points["img"] += [index[sha]] * len(curve.bpp)
            for key, values in columns.items():
                points.setdefault(key, []).extend(values)
        curves.append({"label": label, "source": "measured", "color": colors[label],
                       "mean": _curve_columns(codec.mean, results.metrics), "pts": points})
    for reference in references:
        curves.append({"label": reference.label, "source": "reference", "color": colors[reference.label],
                       "mean": _curve_columns(reference, results.metrics), "pts": None})
    targets = []
    for label, codec in results.codecs.items():
        if codec.targets:
            ordered = list(codec.targets.values())
            entry = {"label": label, "color": colors[label], "target": [t.target_bpp for t in ordered],
                     "bpp": _round([t.bpp for t in ordered]), "n_missed": [t.n_target_missed for t in ordered]}
            entry.update({m: _round([t.quality[m] for t in ordered]) for m in results.metrics})
            targets.append(entry)
    return {"name": results.name, "images": [image.name for image in results.images],
            "metrics": list(results.metrics), "curves": curves, "targets": targets}


def crop_data(store: ResultsStore, results: DatasetResults, targets: Sequence[float],
              blobs: dict[str, str]) -> dict[str, Any]:
    """For each image with stored crops and each chosen bpp: every codec's crop closest in log(bpp).

    Crops are referred to by key; ``blobs`` collects each key's base64 PNG once.
    """
    images = []
    for image in results.images:
        original = store.crop_path(image.sha256, "original")
        if not original.is_file():
            continue
        entry = {"name": image.name, "original": _blob(blobs, original), "choices": {}}
        for target in targets:
            choices = []
            for label, codec in results.codecs.items():
                candidates = []
                for row in codec.rows:
                    if row["image_sha256"] != image.sha256:
                        continue
                    path = store.crop_path(image.sha256, ResultsStore.crop_label(
                        row["codec"], row.get("setting"), row.get("target_bpp")))
                    if path.is_file():
                        candidates.append((abs(math.log(row["bpp"] / target)), row, path))
                if not candidates:
                    continue
                _, row, path = min(candidates, key=lambda c: c[0])
                choice = {"label": label, "setting": row.get("setting"), "target": row.get("target_bpp"),
                          "bpp": float(f"{row['bpp']:.4g}"), "src": _blob(blobs, path)}
                choice.update({m: _round([finite_float(row.get(m))])[0] for m in results.metrics})
                choices.append(choice)
            entry["choices"][f"{target:g}"] = choices
        images.append(entry)
    return {"images": images, "bpps": [f"{t:g}" for t in targets]}


def _blob(blobs: dict[str, str], path: Path) -> str:
    key = f"{path.parent.name}/{path.name}"
    if key not in blobs:
        blobs[key] = base64.b64encode(path.read_bytes()).decode("ascii")
    return key


def _runs(store: ResultsStore) -> list[tuple[str, ...]]:
    """One row per run manifest: id, start, finish, host, codecbench version, command line."""
    rows = []
    for manifest in store.manifests():
        rows.append(tuple(str(v) for v in (
            manifest.get("run_id", ""), manifest.get("started_at", ""), manifest.get("finished_at", ""),
            (manifest.get("machine") or {}).get("hostname", ""), manifest.get("codecbench_version", ""),
            " ".join(manifest.get("command") or []))))
    return rows


def render_page(store: ResultsStore, datasets: Sequence[tuple[DatasetResults, Sequence[Table]]],
                plots: list[dict[str, Any]], crops: dict[str, Any], blobs: dict[str, str], *, anchor: str,
                bpp_range: tuple[float, float], bd_method: str, references: Sequence[RDCurve]) -> str:
    """The page: ``datasets`` pairs each dataset with its tables; ``plots``/``crops`` from :func:`plot_data`/
    :func:`crop_data`, one per dataset; ``references`` are the published curves overlaid."""
    import plotly.offline

    return _ENVIRONMENT.get_template("report.html.j2").render(
        store_name=store.root.name, store_root=str(store.root),
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"), version=__version__,
        anchor=anchor, bd_method=bd_method, references=references,
        bpp_range=f"{bpp_range[0]:g}–{bpp_range[1]:g}", datasets=datasets, runs=_runs(store),
        data={"datasets": plots, "labels": {m: spec.label for m, spec in METRICS.items()},
              "digits": {m: spec.digits for m, spec in METRICS.items()}},
        crops={"datasets": crops, "blobs": blobs},
        plotly_js=plotly.offline.get_plotlyjs().replace("</script", "<\\/script"),
    )
