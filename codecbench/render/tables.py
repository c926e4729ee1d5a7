"""The report's tables: BD, rate-matched and area tables as Markdown, LaTeX and HTML, and their CSV records.

A :class:`Table` holds formatted cells and numbered notes; a cell that has a
note carries its marker, e.g. ``-10.00 [2]``. Column labels and decimals are
the metric vocabulary's (:data:`codecbench.metrics.METRICS`): a metric value
has ``digits`` decimals, a BD-quality value one more, a BD-rate (%) two.
Missing and non-finite values are shown by :func:`codecbench.values.format_number`
(``n/a``, or a blank cell in the rate-matched table) and written to CSV by
:func:`codecbench.values.csv_number` (an empty cell). CSV is long: a row per
codec, metric and convention; Markdown and LaTeX are wide: a row per codec.
"""

from __future__ import annotations

import csv
import html
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codecbench.analysis.bjontegaard import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, BDComparison, BDResult
from codecbench.analysis.curves import DatasetResults
from codecbench.analysis.ratematch import AreaEntry, RateMatched
from codecbench.metrics import METRICS
from codecbench.values import csv_number, finite_float, format_number

#: Decimals of a BD-rate (%).
BD_RATE_DIGITS = 2

BD_CSV_COLUMNS = ("dataset", "anchor", "codec", "source", "metric", "kind", "unit", "method", "convention", "value",
                  "ci_low", "ci_high", "n_images_used", "n_images", "overlap_anchor", "overlap_test", "warnings",
                  "reason")
AUC_CSV_COLUMNS = ("dataset", "codec", "source", "metric", "bpp_start", "bpp_end", "area", "covered_start",
                   "covered_end", "covered_fraction")


def rate_matched_csv_columns(metrics: Sequence[str]) -> tuple[str, ...]:
    """Columns of the rate-matched CSV: one per requested metric after the fixed ones."""
    return ("dataset", "target_bpp", "codec", "source", "bpp", "setting", "note", *metrics)


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
        """A booktabs ``table`` environment."""
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
        """An HTML fragment (heading, table, notes), every text escaped; numeric cells get class ``num``."""
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


def write_csv(path: Path, records: list[dict[str, Any]], columns: Sequence[str]) -> None:
    """Records as CSV with a header row; absent keys, None and non-finite values are empty cells."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({key: csv_number(record.get(key)) for key in columns})
    path.write_text(buffer.getvalue())


def _bd_cell(table: Table, comparison: BDComparison, result: BDResult, text: str, convention: str) -> str:
    where = f"{comparison.test} / {comparison.metric}, {convention}"
    if not result.ok:
        return "n/a " + table.note(f"{where}: {result.reason}")
    markers = "".join(" " + table.note(f"{where}: {w}") for w in result.warnings)
    return text + markers


def bd_table(results: DatasetResults, comparisons: list[BDComparison], metrics: Sequence[str], kind: str,
             method: str, n_resamples: int = BOOTSTRAP_RESAMPLES) -> Table:
    """Wide table of one dataset's BD values (rows: codecs; columns: metric × convention); ``kind`` rate|quality."""
    metrics = [m for m in metrics if m in results.metrics]
    anchor = comparisons[0].anchor if comparisons else "?"
    if kind == "rate":
        title = f"{results.name}: BD-rate vs {anchor} (%; negative = fewer bits at equal quality)"
    else:
        title = f"{results.name}: BD-quality vs {anchor} (metric units at equal rate; the metric's own direction)"
    headers = ["Codec"]
    for metric in metrics:
        label = METRICS[metric].label
        headers += [f"{label} mean curve", f"{label} per-image mean [95% CI]"]
    table = Table(title, headers, notes=[
        f"Interpolation {method} on log10(bpp). 'mean curve': BD of the dataset-mean curves (mean bpp and mean "
        f"metric per setting over {len(results.images)} images; CompressAI's convention). 'per-image mean': mean "
        f"of per-image BD values (JVET's convention) with a 95% percentile-bootstrap interval over images "
        f"({n_resamples} resamples, seed {BOOTSTRAP_SEED}). Reference curves: mean-curve convention only."
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
            digits = BD_RATE_DIGITS if kind == "rate" else METRICS[metric].digits + 1
            row.append(_bd_cell(table, comparison, comparison.mean_curve,
                                format_number(comparison.mean_curve.value, digits, signed=True), "mean curve"))
            row.append(_per_image_cell(table, test, metric, comparison, digits))
        table.rows.append(row)
    return table


def _per_image_cell(table: Table, test: str, metric: str, comparison: BDComparison, digits: int) -> str:
    """The mean of per-image BD values with its interval, and notes on images without a value or with warnings."""
    per_image = comparison.per_image
    if per_image is None:
        return ""
    where = f"{test} / {metric}, per image"
    if per_image.n_used == 0:
        reasons = sorted({r.reason for r in per_image.per_image.values() if r.reason})
        return "n/a " + table.note(f"{where}: no image has a value ({'; '.join(reasons)})")
    text = (f"{format_number(per_image.mean, digits, signed=True)} "
            f"[{format_number(per_image.ci_low, digits, signed=True)}, "
            f"{format_number(per_image.ci_high, digits, signed=True)}]")
    if per_image.n_used < per_image.n_images:
        failed = {name: r.reason for name, r in per_image.per_image.items() if not r.ok}
        first = next(iter(failed.items()))
        text += " " + table.note(f"{where}: mean of {per_image.n_used} of {per_image.n_images} images; no value "
                                 f"for {', '.join(failed)} (e.g. {first[0]}: {first[1]})")
    warned = sum(bool(r.warnings) for r in per_image.per_image.values() if r.ok)
    if warned:
        text += " " + table.note(f"{where}: {warned} image(s) with warnings (non-monotonic curve or small overlap)")
    return text


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


def rate_matched_table(results: DatasetResults, entries: list[RateMatched], metrics: Sequence[str]) -> Table:
    """Quality at each target rate; a metric outside the curve's range is a blank cell."""
    metrics = [m for m in metrics if m in results.metrics]
    table = Table(f"{results.name}: quality at matched rates",
                  ["Target bpp", "Codec", "Source", "bpp", "Setting"] + [METRICS[m].label for m in metrics])
    table.notes.append("measured: mean over images of rate-targeted cells (each at or below the target); "
                       "interpolated: on the mean curve, linear in log10(bpp) between the neighbouring settings; "
                       "blank outside the curve's range (never extrapolated).")
    for e in entries:
        note = " " + table.note(f"{e.codec} at {e.target_bpp:g} bpp: {e.note}") if e.note else ""
        row = [f"{e.target_bpp:g}", e.codec, e.source + note, format_number(e.bpp, 4), e.setting]
        row += [format_number(e.quality[m], METRICS[m].digits, missing="") for m in metrics]
        table.rows.append(row)
    return table


def rate_matched_records(entries: list[RateMatched], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of the rate-matched CSV (NaN for a metric the entry lacks)."""
    return [dict({"dataset": e.dataset, "target_bpp": e.target_bpp, "codec": e.codec, "source": e.source,
                  "bpp": e.bpp, "setting": e.setting, "note": e.note},
                 **{m: e.quality.get(m, math.nan) for m in metrics}) for e in entries]


def auc_table(results: DatasetResults, entries: list[AreaEntry], metrics: Sequence[str],
              bpp_range: tuple[float, float]) -> Table:
    """Area under each codec's mean curve over ``bpp_range`` and the part of the range the curve covers."""
    metrics = [m for m in metrics if m in results.metrics]
    start, stop = bpp_range
    table = Table(f"{results.name}: area under the mean RD curve, {start:g}–{stop:g} bpp",
                  ["Codec"] + [f"{METRICS[m].label} × bpp" for m in metrics] + ["Covered bpp"])
    table.notes.append(f"Trapezoid rule on the mean curve, linear bpp axis, clipped to {start:g}–{stop:g} bpp, no "
                       "extrapolation: a curve covering less of the interval gets less area (see 'Covered bpp').")
    by_codec: dict[str, dict[str, AreaEntry]] = {}
    for entry in entries:
        by_codec.setdefault(entry.codec, {})[entry.metric] = entry
    for codec, per_metric in by_codec.items():
        row = [codec] + [format_number(per_metric[m].area.value, METRICS[m].digits) if m in per_metric else ""
                         for m in metrics]
        spans = {(e.area.covered, e.area.covered_fraction) for e in per_metric.values()}
        (low, high), fraction = max(spans, key=lambda s: s[1])
        row.append(f"{low:.3g}–{high:.3g} ({fraction:.0%})" if math.isfinite(low) else "none")
        table.rows.append(row)
    return table


def auc_records(entries: list[AreaEntry], bpp_range: tuple[float, float]) -> list[dict[str, Any]]:
    """Rows of the area CSV: one per (codec, metric)."""
    return [{"dataset": e.dataset, "codec": e.codec, "source": e.source, "metric": e.metric,
             "bpp_start": bpp_range[0], "bpp_end": bpp_range[1], "area": e.area.value,
             "covered_start": e.area.covered[0], "covered_end": e.area.covered[1],
             "covered_fraction": e.area.covered_fraction} for e in entries]


#: Per-stage timings of learned codecs, as ``extra.stage_<name>_s`` (see ``LearnedCodec.timed_stage``), in
#: the order of a round trip; the first three belong to encode, the others to decode. Other stage names a
#: codec records are shown after these, in alphabetical order.
ENCODE_STAGES = ("transfer_to_device", "analysis", "entropy_encode")
DECODE_STAGES = ("entropy_decode", "synthesis", "transfer_to_host")
STAGE_CSV_COLUMNS = ("dataset", "codec", "device", "stage", "mean_s", "n_rows")
_STAGE_KEY = re.compile(r"^stage_(.+)_s$")


def _stage_means(rows: Sequence[dict[str, Any]]) -> tuple[dict[str, tuple[float, int]], str]:
    """Mean seconds and row count per stage over ``rows`` that record it, and the devices seen."""
    values: dict[str, list[float]] = {}
    devices: list[str] = []
    for row in rows:
        extra = row.get("extra") or {}
        for key, value in extra.items():
            match = _STAGE_KEY.match(key)
            if match and isinstance(value, (int, float)) and math.isfinite(value):
                values.setdefault(match.group(1), []).append(float(value))
        device = extra.get("device")
        if device is not None and str(device) not in devices and any(_STAGE_KEY.match(k) for k in extra):
            devices.append(str(device))
    return {stage: (sum(v) / len(v), len(v)) for stage, v in values.items()}, ", ".join(devices)


def stage_timings(results: DatasetResults) -> list[dict[str, Any]]:
    """Per codec with stage timings: device and the mean seconds of each stage and of encode_s/decode_s.

    One record per (codec, stage), ``stage`` = the stage name, ``encode`` or ``decode`` (the totals,
    means of ``encode_s``/``decode_s`` over the same rows); codecs whose rows record no stage are left out.
    """
    records = []
    for label, codec in results.codecs.items():
        means, device = _stage_means(codec.rows)
        if not means:
            continue
        timed = [row for row in codec.rows if any(_STAGE_KEY.match(k) for k in (row.get("extra") or {}))]
        for total in ("encode_s", "decode_s"):
            seconds = [v for v in (finite_float(row.get(total)) for row in timed) if math.isfinite(v)]
            if seconds:
                means[total[:-2]] = (sum(seconds) / len(seconds), len(seconds))
        known = ENCODE_STAGES + DECODE_STAGES + ("encode", "decode")
        for stage in [s for s in known if s in means] + sorted(s for s in means if s not in known):
            records.append({"dataset": results.name, "codec": label, "device": device, "stage": stage,
                            "mean_s": means[stage][0], "n_rows": means[stage][1]})
    return records


def stage_table(results: DatasetResults, records: list[dict[str, Any]]) -> Table | None:
    """Wide table of :func:`stage_timings` (a row per codec, seconds); None when no codec has stage timings."""
    if not records:
        return None
    others = sorted({r["stage"] for r in records} - set(ENCODE_STAGES + DECODE_STAGES + ("encode", "decode")))
    columns = ["encode", *ENCODE_STAGES, "decode", *DECODE_STAGES, *others]
    names = {"encode": "Encode total", "decode": "Decode total"}
    table = Table(f"{results.name}: time per stage of learned codecs (s, mean per image)",
                  ["Codec", "Device"] + [names.get(c, c.replace("_", " ")) for c in columns])
    table.notes.append("Mean over the codec's compared cells of each stage's wall-clock seconds in the cell's last "
                       "encode and decode (extra.stage_<name>_s; CUDA synchronised before each clock read), next to "
                       "the mean total encode_s/decode_s of the same cells (with --timing-repeats: the median of the "
                       "repeats, so the stages need not add up to it). Stages not listed in a total (padding, "
                       "header, bookkeeping) make up the rest.")
    by_codec: dict[str, dict[str, Any]] = {}
    for record in records:
        by_codec.setdefault(record["codec"], {"device": record["device"]})[record["stage"]] = record["mean_s"]
    for codec, values in by_codec.items():
        table.rows.append([codec, values["device"] or "?"]
                          + [format_number(values.get(c), 4, missing="") for c in columns])
    return table
