"""Static figures for a paper: RD curves and speed against compression efficiency (matplotlib).

Sized for one column of a two-column paper (3.5 × 2.6 in), 8 pt text, thin
lines; fonts are embedded as TrueType in PDF (``pdf.fonttype`` 42, as most
publishers ask) and kept as text in SVG. PNG figures are 300 dpi. Measured
curves are solid with markers; published reference curves are dashed. The
figures are drawn with matplotlib's object interface (no pyplot state), in the
same colours as the HTML report.

Files, per dataset: ``fig_<dataset>_<metric>.<format>`` for each table metric,
and ``fig_<dataset>_speed.<format>``: each codec's mean encode and decode time
per image (log axis) against its BD-rate versus the anchor on the first table
metric that has BD values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from codecbench.analysis.bjontegaard import BDComparison
from codecbench.analysis.curves import DatasetResults, RDCurve
from codecbench.errors import UsageError
from codecbench.metrics import METRICS

FIGURE_FORMATS = ("svg", "pdf", "png")
FIGURE_SIZE_IN = (3.5, 2.6)
STYLE = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "legend.fontsize": 6.5, "xtick.labelsize": 7,
    "ytick.labelsize": 7, "lines.linewidth": 1.0, "lines.markersize": 3, "axes.linewidth": 0.6,
    "grid.linewidth": 0.4, "pdf.fonttype": 42, "svg.fonttype": "none", "savefig.dpi": 300,
}


def _new_figure(columns: int = 1):
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGURE_SIZE_IN, layout="constrained")
    return figure, figure.subplots(1, columns, squeeze=False, sharey=True)[0]


def rd_figure(results: DatasetResults, references: Sequence[RDCurve], metric: str, colors: dict[str, str]):
    """The dataset-mean RD curves of every codec on one metric, published curves dashed."""
    figure, (axes,) = _new_figure()
    for label, codec in results.codecs.items():
        bpp, values = codec.mean.points(metric)
        if len(bpp):
            axes.plot(bpp, values, marker="o", color=colors.get(label), label=label)
    for curve in references:
        bpp, values = curve.points(metric)
        if len(bpp):
            axes.plot(bpp, values, linestyle="--", color=colors.get(curve.label), label=curve.label)
    axes.set_xlabel("bpp")
    axes.set_ylabel(METRICS[metric].label)
    axes.set_title(f"{results.name} ({len(results.images)} images)")
    axes.grid(True, alpha=0.5)
    axes.legend(loc="lower right", frameon=False)
    return figure


def _mean_time(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else math.nan


def speed_figure(results: DatasetResults, comparisons: Sequence[BDComparison], colors: dict[str, str]):
    """Encode and decode time per image (log) against BD-rate on one metric; the anchor sits at 0 %."""
    from matplotlib.ticker import NullFormatter

    measured = [c for c in comparisons if c.source == "measured" and c.mean_curve.ok]
    metric = measured[0].metric
    points = {measured[0].anchor: 0.0} | {c.test: c.mean_curve.value for c in measured if c.metric == metric}
    figure, axes = _new_figure(columns=2)
    for panel, (what, attribute) in zip(axes, (("encode", "encode_s"), ("decode", "decode_s"))):
        for label, bd in points.items():
            seconds = _mean_time(getattr(results.codecs[label].mean, attribute))
            if math.isfinite(seconds) and seconds > 0:
                panel.scatter([seconds], [bd], s=12, color=colors.get(label), label=label)
                panel.annotate(label, (seconds, bd), fontsize=5.5, xytext=(2, 2), textcoords="offset points")
        panel.set_xscale("log")
        panel.xaxis.set_minor_formatter(NullFormatter())  # decade labels only: minor ones collide on short spans
        panel.margins(x=0.25, y=0.1)
        panel.set_xlabel(f"{what} (s/image)")
        panel.grid(True, which="both", alpha=0.4)
    axes[0].set_ylabel(f"BD-rate (%) vs {measured[0].anchor}\non {METRICS[metric].label}")
    figure.suptitle(f"{results.name}: speed and compression efficiency", fontsize=8)
    return figure


def check_formats(formats: Sequence[str]) -> None:
    """UsageError naming any format that is not one of :data:`FIGURE_FORMATS`."""
    unknown = [f for f in formats if f not in FIGURE_FORMATS]
    if unknown:
        raise UsageError(f"unknown figure format(s) {', '.join(unknown)}; choose from {', '.join(FIGURE_FORMATS)}")


def write_figures(folder: Path, results: DatasetResults, references: Sequence[RDCurve], metrics: Sequence[str],
                  rate_comparisons: Sequence[BDComparison], colors: dict[str, str],
                  formats: Sequence[str]) -> list[Path]:
    """Write one dataset's figures in every format; returns the files."""
    from matplotlib import rc_context

    check_formats(formats)
    written = []
    with rc_context(STYLE):  # the style must be in force while the artists are made, not only when saved
        figures = {f"fig_{results.name}_{metric}": rd_figure(results, references, metric, colors)
                   for metric in metrics if metric in results.metrics}
        if any(c.source == "measured" and c.mean_curve.ok for c in rate_comparisons):
            figures[f"fig_{results.name}_speed"] = speed_figure(results, rate_comparisons, colors)
        for stem, figure in figures.items():
            for fmt in formats:
                path = folder / f"{_safe(stem)}.{fmt}"
                figure.savefig(path, format=fmt, metadata={"Creator": "codecbench"})
                written.append(path)
    return written


def _safe(stem: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in stem)
