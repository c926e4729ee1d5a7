"""The report of a results store: one offline HTML page plus Markdown, CSV and LaTeX tables.

:func:`build_report` only reads the store (``cells.jsonl``, run manifests,
stored crops); it never runs a codec. It writes into the output folder:

``report.html``
    One self-contained page (:mod:`codecbench.render.html`): RD curves of every
    metric (dataset mean or one image), encode/decode time, the tables below,
    a visual comparison of the stored centre crops.
``bd_rate.{md,csv,tex}``, ``bd_quality.{md,csv,tex}``
    Bjøntegaard deltas against the anchor, both averaging conventions
    (:mod:`codecbench.analysis.bjontegaard`). Markdown and LaTeX are wide (a row
    per codec); CSV is long (a row per codec, metric and convention).
``rate_matched.{md,csv,tex}``
    Quality at the target rates, measured or interpolated.
``auc.{md,csv,tex}``
    Area under each mean RD curve over the bpp range.
``stages.{md,csv,tex}``
    Only when rows record per-stage timings (learned codecs, ``extra.stage_<name>_s``): the mean
    seconds of each stage per codec next to the mean total encode/decode time.
``fig_<dataset>_<metric|speed>.{svg,pdf,png}``
    With ``figures``: static RD and speed figures for a paper (:mod:`codecbench.render.figures`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codecbench.analysis.bjontegaard import BD_METHODS, compare
from codecbench.analysis.compressai import REFERENCE_PREFIX, load_reference, named_reference
from codecbench.analysis.curves import DatasetResults, RDCurve, summarise
from codecbench.analysis.ratematch import areas, rate_matched
from codecbench.errors import UsageError
from codecbench.metrics import METRICS
from codecbench.render.figures import check_formats, write_figures
from codecbench.render.html import crop_data, curve_colors, plot_data, render_page
from codecbench.render.tables import (
    AUC_CSV_COLUMNS,
    BD_CSV_COLUMNS,
    STAGE_CSV_COLUMNS,
    Table,
    auc_records,
    auc_table,
    bd_records,
    bd_table,
    rate_matched_csv_columns,
    rate_matched_records,
    rate_matched_table,
    stage_table,
    stage_timings,
    write_csv,
)
from codecbench.store import open_existing

DEFAULT_METRICS = ("psnr_rgb", "ms_ssim_db", "lpips")
DEFAULT_TARGETS = (0.25, 0.5, 1.0)
DEFAULT_BPP_RANGE = (0.0, 2.0)
#: The tables' file stems, in the order the page shows them.
TABLE_STEMS = ("bd_rate", "bd_quality", "rate_matched", "auc")


@dataclass
class Report:
    """What :func:`build_report` wrote."""

    folder: Path
    html_path: Path
    files: list[Path]
    summary_markdown: str  # BD-rate on PSNR-RGB and MS-SSIM, for the terminal
    datasets: dict[str, DatasetResults]


def _check_options(metrics: Sequence[str], targets: Sequence[float], bd_method: str, figures: Sequence[str]) -> None:
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise UsageError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    if bd_method not in BD_METHODS:
        raise UsageError(f"unknown BD method {bd_method!r}; choose one of {', '.join(BD_METHODS)}")
    check_formats(figures)
    if any(not (t > 0) for t in targets):
        raise UsageError(f"target bpp values must be positive, got {list(targets)}")


def build_report(results_dir: str | Path, output_dir: str | Path | None = None, *, anchor: str = "jpeg",
                 metrics: Sequence[str] = DEFAULT_METRICS, targets: Sequence[float] = DEFAULT_TARGETS,
                 bpp_range: tuple[float, float] = DEFAULT_BPP_RANGE, references: Sequence[str | Path] = (),
                 bd_method: str = "pchip", figures: Sequence[str] = ()) -> Report:
    """Write the report of a results directory (default folder ``reports/<results dir name>``).

    ``metrics`` select the tables' metrics (the plots show every stored
    metric); ``references`` are CompressAI results-JSON files (drawn on every
    dataset) or published curves by name (``compressai:vtm``: each dataset's own
    file, see :func:`codecbench.analysis.compressai.named_reference`), drawn as
    dashed curves and compared in the mean-curve convention. A name no dataset
    of the report has is a UsageError; a dataset without it gets a note.
    UsageError (a ValueError, with the reason) when the anchor has no results
    or an option is invalid; StoreError/ReferenceCurveError name an unreadable file.
    """
    store = open_existing(results_dir)
    folder = Path(output_dir) if output_dir is not None else Path("reports") / Path(results_dir).resolve().name
    _check_options(metrics, targets, bd_method, figures)
    file_curves = [load_reference(path) for path in references if not str(path).startswith(REFERENCE_PREFIX)]
    datasets = summarise(store.rows())
    datasets = {name: results for name, results in datasets.items() if results.codecs}
    if not datasets:
        raise UsageError(f"{store.root}: no successful cell to report on")
    anchored, problems = {}, []
    for name, results in datasets.items():
        try:
            anchored[name] = results.resolve(anchor)
        except ValueError as exc:
            results.notes.append(f"no BD tables: {exc}")
            problems.append(str(exc))
    if not anchored:
        raise UsageError(f"anchor {anchor!r}: {'; '.join(problems)}; choose the anchor with --anchor")

    curves_of = _reference_curves(datasets, file_curves, [str(r) for r in references
                                                          if str(r).startswith(REFERENCE_PREFIX)])
    reference_curves = list({c.label: c for curves in curves_of.values() for c in curves}.values())
    labels = sorted({label for r in datasets.values() for label in r.codecs}) + [c.label for c in reference_curves]
    colors = curve_colors(labels)
    folder.mkdir(parents=True, exist_ok=True)

    files: list[Path] = []
    tables: dict[str, list[Table]] = {stem: [] for stem in TABLE_STEMS}
    records: dict[str, list[dict[str, Any]]] = {stem: [] for stem in TABLE_STEMS}
    summary_tables: list[Table] = []
    plots, crops, blobs = [], {}, {}
    stage_tables: list[Table] = []
    records_of_stages: list[dict[str, Any]] = []
    for name, results in datasets.items():
        all_targets = sorted(set(map(float, targets)) | {t for c in results.codecs.values() for t in c.targets})
        if name in anchored:
            for kind in ("rate", "quality"):
                comparisons = compare(results, anchored[name], metrics, kind=kind, method=bd_method,
                                      references=curves_of[name])
                tables[f"bd_{kind}"].append(bd_table(results, comparisons, metrics, kind, bd_method))
                records[f"bd_{kind}"] += bd_records(comparisons, kind, bd_method)
                if kind == "rate":
                    if figures:
                        files += write_figures(folder, results, curves_of[name], metrics, comparisons, colors, figures)
                    terminal = [m for m in ("psnr_rgb", "ms_ssim_db", "ms_ssim") if m in results.metrics]
                    terminal = [m for m in terminal if m != "ms_ssim" or "ms_ssim_db" not in terminal]
                    summary_tables.append(bd_table(results, [c for c in comparisons if c.metric in terminal],
                                                   terminal, kind, bd_method))
        matched = rate_matched(results, all_targets, metrics)
        tables["rate_matched"].append(rate_matched_table(results, matched, metrics))
        records["rate_matched"] += rate_matched_records(matched, [m for m in metrics if m in results.metrics])
        area_entries = areas(results, metrics, bpp_range, curves_of[name])
        tables["auc"].append(auc_table(results, area_entries, metrics, bpp_range))
        records["auc"] += auc_records(area_entries, bpp_range)
        stage_records = stage_timings(results)
        stages = stage_table(results, stage_records)
        if stages is not None:
            stage_tables.append(stages)
            records_of_stages += stage_records
        plots.append(plot_data(results, curves_of[name], colors))
        crops[name] = crop_data(store, results, all_targets, blobs)

    csv_columns = {"bd_rate": BD_CSV_COLUMNS, "bd_quality": BD_CSV_COLUMNS,
                   "rate_matched": rate_matched_csv_columns(metrics), "auc": AUC_CSV_COLUMNS}
    for stem, stem_tables in tables.items():
        for suffix, text in (("md", "\n".join(t.to_markdown() for t in stem_tables)),
                             ("tex", "% codecbench report tables; needs \\usepackage{booktabs}\n"
                                     + "\n".join(t.to_latex() for t in stem_tables))):
            path = folder / f"{stem}.{suffix}"
            path.write_text(text)
            files.append(path)
        write_csv(folder / f"{stem}.csv", records[stem], csv_columns[stem])
        files.append(folder / f"{stem}.csv")
    if stage_tables:
        files += _write_stage_tables(folder, stage_tables, records_of_stages)
    else:  # no stale tables from an earlier report into this folder
        for suffix in ("md", "tex", "csv"):
            (folder / f"stages.{suffix}").unlink(missing_ok=True)

    per_dataset = [(results, [t for t in [*(t for stem in TABLE_STEMS for t in tables[stem]), *stage_tables]
                              if t.title.startswith(f"{name}:")]) for name, results in datasets.items()]
    page = render_page(store, per_dataset, plots, crops, blobs, anchor=anchor, bpp_range=bpp_range,
                       bd_method=bd_method, references=reference_curves)
    html_path = folder / "report.html"
    html_path.write_text(page, encoding="utf-8")
    files.append(html_path)
    summary = "\n".join(t.to_markdown() for t in summary_tables)
    return Report(folder, html_path, files, summary, datasets)


def _write_stage_tables(folder: Path, stage_tables: list[Table], records: list[dict[str, Any]]) -> list[Path]:
    """``stages.{md,tex,csv}``: the per-stage timing tables of the datasets that have them."""
    (folder / "stages.md").write_text("\n".join(t.to_markdown() for t in stage_tables))
    (folder / "stages.tex").write_text("% codecbench report tables; needs \\usepackage{booktabs}\n"
                                       + "\n".join(t.to_latex() for t in stage_tables))
    write_csv(folder / "stages.csv", records, STAGE_CSV_COLUMNS)
    return [folder / "stages.md", folder / "stages.tex", folder / "stages.csv"]


def _reference_curves(datasets: dict[str, DatasetResults], file_curves: list[RDCurve],
                      names: list[str]) -> dict[str, list[RDCurve]]:
    """Each dataset's reference curves: every file's, plus its own published curve of each name."""
    curves_of = {name: list(file_curves) for name in datasets}
    for reference in names:
        found = {name: named_reference(reference, name) for name in datasets}
        if not any(found.values()):
            raise UsageError(f"--reference {reference}: no published curve for dataset(s) {', '.join(datasets)}; "
                             "`codecbench references` lists the curves of each dataset")
        for name, curve in found.items():
            if curve is None:
                datasets[name].notes.append(f"reference {reference}: no published curve for dataset {name}; not drawn")
            else:
                curves_of[name].append(curve)
    return curves_of
