"""The report of a results store: one offline HTML page plus Markdown, CSV and LaTeX tables.

:func:`build_report` only reads the store (``cells.jsonl``, run manifests,
stored crops); it never runs a codec. It writes into the output folder:

``report.html``
    One self-contained page: plotly.js is embedded, the data are embedded as
    JSON and the crops as base64 PNG, and a Content-Security-Policy forbids the
    page any network access. RD curves of every metric (dataset mean or one
    image), encode/decode time, the tables below, a visual comparison of the
    stored centre crops.
``bd_rate.{md,csv,tex}``, ``bd_quality.{md,csv,tex}``
    Bjøntegaard deltas against the anchor, both averaging conventions
    (:mod:`codecbench.analysis`). Markdown and LaTeX are wide (a row per
    codec); CSV is long (a row per codec, metric and convention).
``rate_matched.{md,csv,tex}``
    Quality at the target rates, measured or interpolated.
``auc.{md,csv,tex}``
    Area under each mean RD curve over the bpp range.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from codecbench import __version__, analysis
from codecbench.analysis import BDComparison, DatasetResults, RDCurve
from codecbench.store import ResultsStore, open_existing

DEFAULT_METRICS = ("psnr_rgb", "ms_ssim_db", "lpips")
DEFAULT_TARGETS = (0.25, 0.5, 1.0)
DEFAULT_BPP_RANGE = (0.0, 2.0)

LABELS = {
    "psnr_rgb": "PSNR-RGB (dB)", "psnr_y": "PSNR-Y (dB)", "ssim": "SSIM", "ms_ssim": "MS-SSIM",
    "ms_ssim_db": "MS-SSIM (dB)", "lpips": "LPIPS",
}
#: Decimals shown for metric values and for BD-quality values.
DIGITS = {"psnr_rgb": 2, "psnr_y": 2, "ssim": 4, "ms_ssim": 4, "ms_ssim_db": 2, "lpips": 4}
BD_QUALITY_DIGITS = {"psnr_rgb": 3, "psnr_y": 3, "ssim": 5, "ms_ssim": 5, "ms_ssim_db": 3, "lpips": 5}

#: Curve colours (D3 category10), given to codec labels in sorted order.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")


# ---------------------------------------------------------------------------
# Tables


@dataclass
class Table:
    """A formatted table with numbered notes; rendered as Markdown, LaTeX or HTML."""

    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def note(self, text: str) -> str:
        """Add a note (once) and return its marker, e.g. ``[2]``."""
        if text not in self.notes:
            self.notes.append(text)
        return f"[{self.notes.index(text) + 1}]"

    def to_markdown(self) -> str:
        cell = lambda text: text.replace("|", "\\|")  # noqa: E731
        lines = [f"### {self.title}", "", "| " + " | ".join(map(cell, self.headers)) + " |",
                 "|" + "|".join(":--" if i == 0 else "--:" for i in range(len(self.headers))) + "|"]
        lines += ["| " + " | ".join(map(cell, row)) + " |" for row in self.rows]
        if not self.rows:
            lines.append("| " + " | ".join(["(none)"] + [""] * (len(self.headers) - 1)) + " |")
        lines += [""] + [f"[{i}] {text}  " for i, text in enumerate(self.notes, 1)]
        return "\n".join(lines).rstrip() + "\n"

    def to_latex(self) -> str:
        spec = "l" + "r" * (len(self.headers) - 1)
        lines = ["\\begin{table}[t]", "\\centering", f"\\caption{{{_latex(self.title)}}}",
                 f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
                 " & ".join(_latex(h) for h in self.headers) + " \\\\", "\\midrule"]
        lines += [" & ".join(_latex(c) for c in row) + " \\\\" for row in self.rows]
        lines += ["\\bottomrule", "\\end{tabular}"]
        if self.notes:
            notes = " \\\\ ".join(f"[{i}] {_latex(t)}" for i, t in enumerate(self.notes, 1))
            lines.append("\\par\\footnotesize " + notes)
        lines.append("\\end{table}")
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in self.headers)

        def cell(text: str) -> str:
            return f'<td class="num">{esc(text)}</td>' if _NUMERIC.match(text) else f"<td>{esc(text)}</td>"

        body = "".join("<tr>" + "".join(map(cell, row)) + "</tr>" for row in self.rows)
        if not self.rows:
            body = f'<tr><td colspan="{len(self.headers)}">(none)</td></tr>'
        notes = "".join(f"<li>[{i}] {esc(t)}</li>" for i, t in enumerate(self.notes, 1))
        return (f"<h3>{esc(self.title)}</h3><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                + (f'<ul class="notes">{notes}</ul>' if notes else ""))


_NUMERIC = re.compile(r"^(n/a|[-+]?\d)")

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "−": "$-$", "–": "--", "≤": r"$\le$", "→": r"$\to$", "×": r"$\times$", "·": r"$\cdot$"}


def _latex(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _number(value: float, digits: int, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _csv_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return "" if value is None else value


def _write_csv(path: Path, records: list[dict[str, Any]], columns: Sequence[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({key: _csv_value(record.get(key)) for key in columns})
    path.write_text(buffer.getvalue())


def _bd_cell(table: Table, comparison: BDComparison, result: analysis.BDResult, text: str, convention: str) -> str:
    where = f"{comparison.test} / {comparison.metric}, {convention}"
    if not result.ok:
        return "n/a " + table.note(f"{where}: {result.reason}")
    markers = "".join(" " + table.note(f"{where}: {w}") for w in result.warnings)
    return text + markers


def bd_table(results: DatasetResults, comparisons: list[BDComparison], metrics: Sequence[str], kind: str,
             method: str, n_resamples: int = analysis.BOOTSTRAP_RESAMPLES) -> Table:
    """Wide table of one dataset's BD values (rows: codecs; columns: metric × convention)."""
    metrics = [m for m in metrics if m in results.metrics]
    anchor = comparisons[0].anchor if comparisons else "?"
    if kind == "rate":
        title = f"{results.name}: BD-rate vs {anchor} (%; negative = fewer bits at equal quality)"
    else:
        title = f"{results.name}: BD-quality vs {anchor} (metric units at equal rate; the metric's own direction)"
    headers = ["Codec"]
    for metric in metrics:
        headers += [f"{LABELS[metric]} mean curve", f"{LABELS[metric]} per-image mean [95% CI]"]
    table = Table(title, headers, notes=[
        f"Interpolation {method} on log10(bpp). 'mean curve': BD of the dataset-mean curves (mean bpp and mean "
        f"metric per setting over {len(results.images)} images; CompressAI's convention). 'per-image mean': mean "
        f"of per-image BD values (JVET's convention) with a 95% percentile-bootstrap interval over images "
        f"({n_resamples} resamples, seed {analysis.BOOTSTRAP_SEED}). Reference curves: mean-curve convention only."
    ])
    by_test: dict[tuple[str, str], dict[str, BDComparison]] = {}
    for comparison in comparisons:
        by_test.setdefault((comparison.test, comparison.source), {})[comparison.metric] = comparison
    for (test, _source), per_metric in by_test.items():
        row = [test]
        for metric in metrics:
            comparison = per_metric.get(metric)
            if comparison is None:
                row += ["", ""]
                continue
            digits = 2 if kind == "rate" else BD_QUALITY_DIGITS[metric]
            row.append(_bd_cell(table, comparison, comparison.mean_curve,
                                _number(comparison.mean_curve.value, digits, signed=True), "mean curve"))
            per_image = comparison.per_image
            if per_image is None:
                row.append("")
            elif per_image.n_used == 0:
                reasons = sorted({r.reason for r in per_image.per_image.values() if r.reason})
                row.append("n/a " + table.note(f"{test} / {metric}, per image: no image has a value "
                                               f"({'; '.join(reasons)})"))
            else:
                text = (f"{per_image.mean:+.{digits}f} [{_number(per_image.ci_low, digits, True)}, "
                        f"{_number(per_image.ci_high, digits, True)}]")
                if per_image.n_used < per_image.n_images:
                    failed = {name: r.reason for name, r in per_image.per_image.items() if not r.ok}
                    first = next(iter(failed.items()))
                    text += " " + table.note(f"{test} / {metric}, per image: mean of {per_image.n_used} of "
                                             f"{per_image.n_images} images; no value for {', '.join(failed)} "
                                             f"(e.g. {first[0]}: {first[1]})")
                warned = sum(bool(r.warnings) for r in per_image.per_image.values() if r.ok)
                if warned:
                    text += " " + table.note(f"{test} / {metric}, per image: {warned} image(s) with warnings "
                                             "(non-monotonic curve or small overlap)")
                row.append(text)
        table.rows.append(row)
    return table


def bd_records(comparisons: list[BDComparison], kind: str, method: str) -> list[dict[str, Any]]:
    """Long-format rows for the BD CSV: one per (codec, metric, convention)."""
    records = []
    for c in comparisons:
        base = {"dataset": c.dataset, "anchor": c.anchor, "codec": c.test, "source": c.source, "metric": c.metric,
                "kind": f"bd_{kind}", "unit": "%" if kind == "rate" else c.metric, "method": method}
        r = c.mean_curve
        records.append(dict(base, convention="mean_curve", value=r.value, overlap_anchor=r.overlap_anchor,
                            overlap_test=r.overlap_test, warnings="; ".join(r.warnings), reason=r.reason))
        if c.per_image is not None:
            p = c.per_image
            warnings = sorted({f"{name}: {w}" for name, res in p.per_image.items() for w in res.warnings})
            reasons = sorted({f"{name}: {res.reason}" for name, res in p.per_image.items() if res.reason})
            records.append(dict(base, convention="per_image_mean", value=p.mean, ci_low=p.ci_low, ci_high=p.ci_high,
                                n_images_used=p.n_used, n_images=p.n_images, warnings="; ".join(warnings),
                                reason="; ".join(reasons)))
    return records


BD_CSV_COLUMNS = ("dataset", "anchor", "codec", "source", "metric", "kind", "unit", "method", "convention", "value",
                  "ci_low", "ci_high", "n_images_used", "n_images", "overlap_anchor", "overlap_test", "warnings",
                  "reason")


def rate_matched_table(results: DatasetResults, entries: list[analysis.RateMatched], metrics: Sequence[str]) -> Table:
    metrics = [m for m in metrics if m in results.metrics]
    table = Table(f"{results.name}: quality at matched rates",
                  ["Target bpp", "Codec", "Source", "bpp", "Setting"] + [LABELS[m] for m in metrics])
    table.notes.append("measured: mean over images of rate-targeted cells (each at or below the target); "
                       "interpolated: on the mean curve, linear in log10(bpp) between the neighbouring settings; "
                       "blank outside the curve's range (never extrapolated).")
    for e in entries:
        note = " " + table.note(f"{e.codec} at {e.target_bpp:g} bpp: {e.note}") if e.note else ""
        row = [f"{e.target_bpp:g}", e.codec, e.source + note, _number(e.bpp, 4), e.setting]
        row += ["" if not math.isfinite(e.quality[m]) else _number(e.quality[m], DIGITS[m]) for m in metrics]
        table.rows.append(row)
    return table


def rate_matched_records(entries: list[analysis.RateMatched], metrics: Sequence[str]) -> list[dict[str, Any]]:
    return [dict({"dataset": e.dataset, "target_bpp": e.target_bpp, "codec": e.codec, "source": e.source,
                  "bpp": e.bpp, "setting": e.setting, "note": e.note},
                 **{m: e.quality.get(m, math.nan) for m in metrics}) for e in entries]


def auc_table(results: DatasetResults, entries: list[analysis.AreaEntry], metrics: Sequence[str],
              bpp_range: tuple[float, float]) -> Table:
    metrics = [m for m in metrics if m in results.metrics]
    start, stop = bpp_range
    table = Table(f"{results.name}: area under the mean RD curve, {start:g}–{stop:g} bpp",
                  ["Codec"] + [f"{LABELS[m]} × bpp" for m in metrics] + ["Covered bpp"])
    table.notes.append(f"Trapezoid rule on the mean curve, linear bpp axis, clipped to {start:g}–{stop:g} bpp, no "
                       "extrapolation: a curve covering less of the interval gets less area (see 'Covered bpp').")
    by_codec: dict[str, dict[str, analysis.AreaEntry]] = {}
    for entry in entries:
        by_codec.setdefault(entry.codec, {})[entry.metric] = entry
    for codec, per_metric in by_codec.items():
        row = [codec] + [_number(per_metric[m].area.value, DIGITS[m]) if m in per_metric else "" for m in metrics]
        spans = {(e.area.covered, e.area.covered_fraction) for e in per_metric.values()}
        (low, high), fraction = max(spans, key=lambda s: s[1])
        row.append(f"{low:.3g}–{high:.3g} ({fraction:.0%})" if math.isfinite(low) else "none")
        table.rows.append(row)
    return table


def auc_records(entries: list[analysis.AreaEntry], bpp_range: tuple[float, float]) -> list[dict[str, Any]]:
    return [{"dataset": e.dataset, "codec": e.codec, "source": e.source, "metric": e.metric,
             "bpp_start": bpp_range[0], "bpp_end": bpp_range[1], "area": e.area.value,
             "covered_start": e.area.covered[0], "covered_end": e.area.covered[1],
             "covered_fraction": e.area.covered_fraction} for e in entries]


# ---------------------------------------------------------------------------
# Report assembly


@dataclass
class Report:
    folder: Path
    html_path: Path
    files: list[Path]
    summary_markdown: str  # BD-rate on PSNR-RGB and MS-SSIM, for the terminal
    datasets: dict[str, DatasetResults]


def _round(values: np.ndarray | Sequence[float], digits: int = 6) -> list[float | None]:
    """Floats for JSON: 6 significant digits, None for NaN."""
    return [None if not math.isfinite(v) else float(f"{v:.{digits}g}") for v in np.asarray(values, dtype=float)]


def _curve_columns(curve: RDCurve, metrics: Sequence[str]) -> dict[str, list]:
    columns = {"setting": _round(curve.setting), "bpp": _round(curve.bpp)}
    columns.update({m: _round(curve.quality[m]) for m in metrics if m in curve.quality})
    columns.update(encode_s=_round(curve.encode_s, 4), decode_s=_round(curve.decode_s, 4))
    return columns


def _plot_data(results: DatasetResults, references: Sequence[RDCurve], colors: dict[str, str]) -> dict[str, Any]:
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


def _crop_data(store: ResultsStore, results: DatasetResults, targets: Sequence[float],
               blobs: dict[str, str]) -> dict[str, Any]:
    """For each image with stored crops and each chosen bpp: every codec's crop closest in log(bpp)."""
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
                choice.update({m: _round([analysis.finite_float(row.get(m))])[0] for m in results.metrics})
                choices.append(choice)
            entry["choices"][f"{target:g}"] = choices
        images.append(entry)
    return {"images": images, "bpps": [f"{t:g}" for t in targets]}


def _blob(blobs: dict[str, str], path: Path) -> str:
    key = f"{path.parent.name}/{path.name}"
    if key not in blobs:
        blobs[key] = base64.b64encode(path.read_bytes()).decode("ascii")
    return key


def _json_for_script(value: Any) -> str:
    """JSON safe inside a <script> element: every '<' (only ever inside strings) written as \\u003c."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def _runs_html(store: ResultsStore) -> str:
    rows = []
    for manifest in store.manifests():
        command = " ".join(manifest.get("command") or [])
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            manifest.get("run_id", ""), manifest.get("started_at", ""), manifest.get("finished_at", ""),
            (manifest.get("machine") or {}).get("hostname", ""), manifest.get("codecbench_version", ""),
            command)) + "</tr>")
    if not rows:
        return "<p>No run manifests in this results directory.</p>"
    return ("<table><thead><tr><th>Run</th><th>Started</th><th>Finished</th><th>Host</th><th>codecbench</th>"
            "<th>Command</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def build_report(results_dir: str | Path, output_dir: str | Path | None = None, *, anchor: str = "jpeg",
                 metrics: Sequence[str] = DEFAULT_METRICS, targets: Sequence[float] = DEFAULT_TARGETS,
                 bpp_range: tuple[float, float] = DEFAULT_BPP_RANGE, references: Sequence[str | Path] = (),
                 bd_method: str = "pchip") -> Report:
    """Write the report of a results directory (default folder ``reports/<results dir name>``).

    ``metrics`` select the tables' metrics (the plots show every stored
    metric); ``references`` are CompressAI results-JSON files drawn as dashed
    curves and compared in the mean-curve convention, on every dataset.
    ValueError (with the reason) when the anchor has no results or an option is
    invalid; StoreError/ReferenceError name an unreadable file.
    """
    store = open_existing(results_dir)
    folder = Path(output_dir) if output_dir is not None else Path("reports") / Path(results_dir).resolve().name
    unknown = [m for m in metrics if m not in analysis.METRIC_COLUMNS]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(analysis.METRIC_COLUMNS)}")
    if bd_method not in analysis.BD_METHODS:
        raise ValueError(f"unknown BD method {bd_method!r}; choose one of {', '.join(analysis.BD_METHODS)}")
    if any(not (t > 0) for t in targets):
        raise ValueError(f"target bpp values must be positive, got {list(targets)}")
    reference_curves = [analysis.load_reference(path) for path in references]
    datasets = analysis.summarise(store.rows())
    datasets = {name: results for name, results in datasets.items() if results.codecs}
    if not datasets:
        raise ValueError(f"{store.root}: no successful cell to report on")
    anchored, problems = {}, []
    for name, results in datasets.items():
        try:
            anchored[name] = results.resolve(anchor)
        except ValueError as exc:
            results.notes.append(f"no BD tables: {exc}")
            problems.append(str(exc))
    if not anchored:
        raise ValueError(f"anchor {anchor!r}: {'; '.join(problems)}; choose the anchor with --anchor")

    labels = sorted({label for r in datasets.values() for label in r.codecs}) + [c.label for c in reference_curves]
    colors = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
    folder.mkdir(parents=True, exist_ok=True)

    tables: dict[str, list[Table]] = {"bd_rate": [], "bd_quality": [], "rate_matched": [], "auc": []}
    records: dict[str, list[dict[str, Any]]] = {key: [] for key in tables}
    summary_tables: list[Table] = []
    plot_data, crop_data, blobs = [], {}, {}
    for name, results in datasets.items():
        all_targets = sorted(set(map(float, targets)) | {t for c in results.codecs.values() for t in c.targets})
        if name in anchored:
            for kind in ("rate", "quality"):
                comparisons = analysis.compare(results, anchored[name], metrics, kind=kind, method=bd_method,
                                               references=reference_curves)
                tables[f"bd_{kind}"].append(bd_table(results, comparisons, metrics, kind, bd_method))
                records[f"bd_{kind}"] += bd_records(comparisons, kind, bd_method)
                if kind == "rate":
                    terminal = [m for m in ("psnr_rgb", "ms_ssim_db", "ms_ssim") if m in results.metrics]
                    terminal = [m for m in terminal if m != "ms_ssim" or "ms_ssim_db" not in terminal]
                    summary_tables.append(bd_table(results, [c for c in comparisons if c.metric in terminal],
                                                   terminal, kind, bd_method))
        matched = analysis.rate_matched(results, all_targets, metrics)
        tables["rate_matched"].append(rate_matched_table(results, matched, metrics))
        records["rate_matched"] += rate_matched_records(matched, [m for m in metrics if m in results.metrics])
        area_entries = analysis.areas(results, metrics, bpp_range, reference_curves)
        tables["auc"].append(auc_table(results, area_entries, metrics, bpp_range))
        records["auc"] += auc_records(area_entries, bpp_range)
        plot_data.append(_plot_data(results, reference_curves, colors))
        crop_data[name] = _crop_data(store, results, all_targets, blobs)

    csv_columns = {
        "bd_rate": BD_CSV_COLUMNS, "bd_quality": BD_CSV_COLUMNS,
        "rate_matched": ("dataset", "target_bpp", "codec", "source", "bpp", "setting", "note",
                         *[m for m in metrics]),
        "auc": ("dataset", "codec", "source", "metric", "bpp_start", "bpp_end", "area", "covered_start",
                "covered_end", "covered_fraction"),
    }
    files = []
    for stem, stem_tables in tables.items():
        for suffix, text in (("md", "\n".join(t.to_markdown() for t in stem_tables)),
                             ("tex", "% codecbench report tables; needs \\usepackage{booktabs}\n"
                                     + "\n".join(t.to_latex() for t in stem_tables))):
            path = folder / f"{stem}.{suffix}"
            path.write_text(text)
            files.append(path)
        _write_csv(folder / f"{stem}.csv", records[stem], csv_columns[stem])
        files.append(folder / f"{stem}.csv")

    page = _render_html(store, datasets, tables, plot_data, crop_data, blobs, anchor, bpp_range, bd_method,
                        reference_curves)
    html_path = folder / "report.html"
    html_path.write_text(page, encoding="utf-8")
    files.append(html_path)
    summary = "\n".join(t.to_markdown() for t in summary_tables)
    return Report(folder, html_path, files, summary, datasets)


# ---------------------------------------------------------------------------
# HTML


def _render_html(store, datasets, tables, plot_data, crop_data, blobs, anchor, bpp_range, bd_method,
                 reference_curves) -> str:
    import plotly.offline

    esc = html.escape
    blocks = []
    for i, (name, results) in enumerate(datasets.items()):
        sections = []
        for stem, heading in (("bd_rate", "BD-rate"), ("bd_quality", "BD-quality"),
                              ("rate_matched", "Rate-matched quality"), ("auc", "Area under the RD curve")):
            for table in tables[stem]:
                if table.title.startswith(f"{name}:"):
                    sections.append(f'<section class="table">{table.to_html()}</section>')
        codec_list = ", ".join(f"{esc(label)} ({esc(c.version)})" for label, c in results.codecs.items())
        notes = "".join(f"<li>{esc(n)}</li>" for n in results.notes)
        blocks.append(
            f'<div class="ds-block" data-ds="{i}"><p class="meta">Dataset <b>{esc(name)}</b>: '
            f"{len(results.images)} images compared ({results.n_images_seen} in the store); codecs: {codec_list}.</p>"
            + "".join(sections)
            + (f'<details class="notes"><summary>Notes on the data ({len(results.notes)})</summary><ul>{notes}</ul>'
               "</details>" if notes else "")
            + "</div>"
        )
    references = "".join(f"<li>{esc(c.label)}: {esc(c.description)}</li>" for c in reference_curves)
    data = {"datasets": plot_data, "labels": LABELS, "digits": DIGITS}
    replacements = {
        "@@TITLE@@": esc(f"codecbench report: {store.root.name}"),
        "@@HEADER@@": (
            f"<h1>codecbench report: {esc(store.root.name)}</h1><p class=\"meta\">Results <code>{esc(str(store.root))}"
            f"</code>; generated {esc(datetime.now(timezone.utc).isoformat(timespec='seconds'))} by codecbench "
            f"{esc(__version__)}; anchor {esc(anchor)}; BD interpolation {esc(bd_method)}; bpp = 8 × bitstream bytes "
            f"/ (width × height); mean curves average bpp and metric per setting over the compared images.</p>"
            + (f"<p>Reference curves (published, dashed):</p><ul>{references}</ul>" if references else "")
        ),
        "@@TABLES@@": "".join(blocks),
        "@@RUNS@@": _runs_html(store),
        "@@DATA@@": _json_for_script(data),
        "@@CROPS@@": _json_for_script({"datasets": crop_data, "blobs": blobs}),
        "@@BPPRANGE@@": esc(f"{bpp_range[0]:g}–{bpp_range[1]:g}"),
    }
    replacements["@@PLOTLY@@"] = plotly.offline.get_plotlyjs().replace("</script", "<\\/script")
    return re.sub(r"@@[A-Z]+@@", lambda match: replacements[match.group(0)], _PAGE)


_PAGE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>@@TITLE@@</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; margin: 0 1.5rem 3rem; color: #222; }
h1 { font-size: 1.5rem; margin: 1rem 0 0.3rem; }
h2 { font-size: 1.2rem; margin: 1.8rem 0 0.5rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
h3 { font-size: 1rem; margin: 1.2rem 0 0.4rem; }
.meta { color: #555; font-size: 0.9rem; }
.controls { position: sticky; top: 0; background: #fafafa; border-bottom: 1px solid #ddd; padding: 0.5rem 0; z-index: 10; display: flex; gap: 1.2rem; flex-wrap: wrap; align-items: center; font-size: 0.9rem; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 0.8rem; }
.plot { min-height: 380px; border: 1px solid #eee; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.3rem 0; }
section.table { overflow-x: auto; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; white-space: nowrap; }
td.num { text-align: right; }
th { background: #f3f3f3; }
ul.notes, details.notes { font-size: 0.8rem; color: #555; }
.crops { display: flex; flex-wrap: wrap; gap: 0.8rem; }
.crops figure { margin: 0; font-size: 0.8rem; }
.crops img { display: block; image-rendering: pixelated; border: 1px solid #ccc; }
.hidden { display: none; }
code { font-size: 0.85rem; }
</style>
<script>@@PLOTLY@@</script>
</head>
<body>
@@HEADER@@
<div class="controls">
  <label id="ds-control">Dataset <select id="ds-select"></select></label>
  <label>Curves <select id="image-select"></select></label>
  <label><input type="checkbox" id="logx"> log-scale bpp axis</label>
</div>
<h2>Rate–distortion curves</h2>
<p class="meta">Each point: hover for codec, setting, bpp and every metric. Solid: measured; dashed: published reference; diamonds: rate-targeted cells (mean).</p>
<div class="grid" id="rd-plots"></div>
<h2>Encode and decode time</h2>
<p class="meta">Wall-clock time of one encode / decode call (mean over the compared images, or of the selected image).</p>
<div class="grid" id="time-plots"></div>
<h2>Tables</h2>
<p class="meta">The same tables are written beside this page as Markdown, CSV and LaTeX. Area under the curve over @@BPPRANGE@@ bpp.</p>
@@TABLES@@
<h2>Visual comparison</h2>
<div class="controls" style="position: static">
  <label>Image <select id="crop-image"></select></label>
  <label>Closest to <select id="crop-bpp"></select> bpp</label>
  <label><input type="checkbox" id="crop-zoom"> zoom ×2</label>
</div>
<p class="meta">Centre crops of the original and of each codec's decoded image at its stored cell whose bpp is closest (in log bpp) to the chosen rate on this image.</p>
<div class="crops" id="crops"></div>
<h2>Runs</h2>
@@RUNS@@
<script type="application/json" id="report-data">@@DATA@@</script>
<script type="application/json" id="report-crops">@@CROPS@@</script>
<script>
(function () {
  "use strict";
  const DATA = JSON.parse(document.getElementById("report-data").textContent);
  const CROPS = JSON.parse(document.getElementById("report-crops").textContent);
  const $ = (id) => document.getElementById(id);
  const state = { ds: 0, image: -1, logx: false };
  const ds = () => DATA.datasets[state.ds];
  const fmt = (v, d) => (v === null || v === undefined ? "n/a" : Number(v).toFixed(d));
  const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);

  function option(select, value, text) {
    const o = document.createElement("option");
    o.value = value; o.textContent = text; select.appendChild(o);
  }

  function hover(curve, cols, i) {
    const lines = ["<b>" + esc(curve.label) + "</b>"];
    if (cols.setting && cols.setting[i] !== null) lines.push("setting " + cols.setting[i]);
    lines.push(fmt(cols.bpp[i], 4) + " bpp");
    for (const m of ds().metrics) if (cols[m]) lines.push(DATA.labels[m] + " " + fmt(cols[m][i], DATA.digits[m]));
    if (cols.encode_s && cols.encode_s[i] !== null)
      lines.push("encode " + fmt(cols.encode_s[i] * 1000, 1) + " ms, decode " + fmt(cols.decode_s[i] * 1000, 1) + " ms");
    return lines.join("<br>");
  }

  // The columns of a curve under the current selection: its mean curve, or the selected image's points.
  function columns(curve) {
    if (state.image < 0) return curve.mean;
    if (!curve.pts) return null;
    const keep = [];
    curve.pts.img.forEach((v, i) => { if (v === state.image) keep.push(i); });
    const out = {};
    for (const k in curve.pts) out[k] = keep.map((i) => curve.pts[k][i]);
    return out;
  }

  function traces(y, scale) {
    const out = [];
    for (const c of ds().curves) {
      const cols = columns(c);
      if (!cols || !cols[y]) continue;
      const idx = cols.bpp.map((_, i) => i).filter((i) => cols[y][i] !== null && cols.bpp[i] !== null);
      if (!idx.length) continue;
      out.push({
        type: "scatter", mode: "lines+markers", name: c.label, legendgroup: c.label,
        x: idx.map((i) => cols.bpp[i]), y: idx.map((i) => cols[y][i] * scale),
        text: idx.map((i) => hover(c, cols, i)), hoverinfo: "text",
        line: { color: c.color, dash: c.source === "reference" ? "dash" : "solid", width: 1.5 },
        marker: { size: 5 },
      });
    }
    if (state.image < 0) {
      for (const t of ds().targets) {
        if (!t[y]) continue;
        const idx = t.target.map((_, i) => i).filter((i) => t[y][i] !== null);
        if (!idx.length) continue;
        out.push({
          type: "scatter", mode: "markers", name: t.label + " (rate-targeted)", legendgroup: t.label, showlegend: false,
          x: idx.map((i) => t.bpp[i]), y: idx.map((i) => t[y][i] * scale), hoverinfo: "text",
          text: idx.map((i) => "<b>" + esc(t.label) + "</b><br>target " + t.target[i] + " bpp (mean " + fmt(t.bpp[i], 4) +
            " bpp)<br>" + DATA.labels[y] + " " + fmt(t[y][i], DATA.digits[y]) +
            (t.n_missed[i] ? "<br>target missed on " + t.n_missed[i] + " image(s)" : "")),
          marker: { color: t.color, symbol: "diamond", size: 9, line: { width: 1, color: "#000" } },
        });
      }
    }
    return out;
  }

  function layout(title, ytitle, logy) {
    return {
      title: { text: title, font: { size: 14 }, x: 0.01, xanchor: "left" }, height: 380, hovermode: "closest",
      margin: { l: 60, r: 10, t: 40, b: 45 }, legend: { font: { size: 10 } },
      xaxis: { title: { text: "bpp" }, type: state.logx ? "log" : "linear" },
      yaxis: { title: { text: ytitle }, type: logy ? "log" : "linear" },
    };
  }

  const CONFIG = { displaylogo: false, responsive: true };
  const PLOTS = [];  // [div, y column, scale, title, y title, log y]

  function buildPlots() {
    for (const [div] of PLOTS) Plotly.purge(div);
    PLOTS.length = 0;
    for (const id of ["rd-plots", "time-plots"]) $(id).innerHTML = "";
    const add = (parent, key, scale, title, ytitle, logy) => {
      const div = document.createElement("div");
      div.className = "plot"; div.id = "plot-" + key;
      $(parent).appendChild(div);
      PLOTS.push([div, key, scale, title, ytitle, logy]);
    };
    for (const m of ds().metrics) add("rd-plots", m, 1, DATA.labels[m] + " vs bpp", DATA.labels[m], false);
    add("time-plots", "encode_s", 1000, "Encode time vs bpp", "encode time (ms)", true);
    add("time-plots", "decode_s", 1000, "Decode time vs bpp", "decode time (ms)", true);
  }

  function render() {
    const view = state.image < 0 ? "dataset mean" : ds().images[state.image];
    return Promise.all(PLOTS.map(([div, key, scale, title, ytitle, logy]) =>
      Plotly.react(div, traces(key, scale), layout(title + " (" + view + ")", ytitle, logy), CONFIG)));
  }

  function selectDataset(i) {
    state.ds = i; state.image = -1;
    const images = $("image-select");
    images.innerHTML = "";
    option(images, -1, "Dataset mean (CompressAI convention)");
    ds().images.forEach((name, j) => option(images, j, name));
    document.querySelectorAll(".ds-block").forEach((el) => el.classList.toggle("hidden", Number(el.dataset.ds) !== i));
    buildPlots();
    setupCrops();
    return render();
  }

  function setupCrops() {
    const info = CROPS.datasets[ds().name];
    const image = $("crop-image"), bpp = $("crop-bpp");
    image.innerHTML = ""; bpp.innerHTML = "";
    if (!info || !info.images.length) {
      $("crops").textContent = "No crops are stored for this dataset (the runner stores them for the first images of a run).";
      return;
    }
    info.images.forEach((im, j) => option(image, j, im.name));
    info.bpps.forEach((b) => option(bpp, b, b));
    renderCrops();
  }

  function figure(src, caption) {
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.src = "data:image/png;base64," + CROPS.blobs[src];
    img.alt = caption.split("\n")[0];
    img.addEventListener("load", () => { if ($("crop-zoom").checked) img.style.width = 2 * img.naturalWidth + "px"; });
    const cap = document.createElement("figcaption");
    cap.innerText = caption;
    fig.appendChild(img); fig.appendChild(cap);
    return fig;
  }

  function renderCrops() {
    const info = CROPS.datasets[ds().name];
    const box = $("crops");
    box.innerHTML = "";
    if (!info || !info.images.length) return;
    const im = info.images[Number($("crop-image").value)];
    box.appendChild(figure(im.original, "original\n" + im.name));
    for (const c of im.choices[$("crop-bpp").value] || []) {
      const setting = c.target !== null ? "target " + c.target + " bpp, setting " + c.setting : "setting " + c.setting;
      const metrics = ds().metrics.filter((m) => c[m] !== null && c[m] !== undefined)
        .map((m) => DATA.labels[m] + " " + fmt(c[m], DATA.digits[m])).join("\n");
      box.appendChild(figure(c.src, c.label + "\n" + setting + "\n" + fmt(c.bpp, 4) + " bpp\n" + metrics));
    }
  }

  const dsSelect = $("ds-select");
  DATA.datasets.forEach((d, i) => option(dsSelect, i, d.name));
  if (DATA.datasets.length < 2) $("ds-control").classList.add("hidden");
  dsSelect.addEventListener("change", () => selectDataset(Number(dsSelect.value)));
  $("image-select").addEventListener("change", (e) => { state.image = Number(e.target.value); render(); });
  $("logx").addEventListener("change", (e) => { state.logx = e.target.checked; render(); });
  $("crop-image").addEventListener("change", renderCrops);
  $("crop-bpp").addEventListener("change", renderCrops);
  $("crop-zoom").addEventListener("change", renderCrops);
  selectDataset(0).then(() => { document.body.dataset.ready = "1"; });
})();
</script>
</body>
</html>
"""
