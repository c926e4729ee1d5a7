"""``codecbench report``: tables and an offline HTML page from a results directory (reads only)."""

from __future__ import annotations

from pathlib import Path

import click

from codecbench.cli.options import Command, output_option, parse_names, parse_values, verbosity_options


@click.command(cls=Command)
@click.argument("results_dir", type=click.Path(file_okay=False))
@output_option("Report folder  [default: reports/<results dir name>]", folder=True)
@click.option("--anchor", default="jpeg", show_default=True, help="Codec the BD values are measured against.")
@click.option("--metrics", "metric_list", default="psnr_rgb,ms_ssim_db,lpips", show_default=True,
              help="Metrics of the tables (the plots show every stored metric).")
@click.option("--target-bpp", "target_list", default="0.25,0.5,1", show_default=True,
              help="Rates of the rate-matched table and the visual comparison (stored rate-targeted runs are added).")
@click.option("--bpp-range", default="0,2", show_default=True, help="START,END of the area-under-the-curve interval.")
@click.option("--reference", "references", multiple=True, metavar="FILE|compressai:NAME",
              help="Published curve, overlaid and compared: a file in CompressAI's results-JSON layout, or a "
                   "carried curve by name for each dataset (`codecbench references`). Repeatable.")
@click.option("--bd-method", type=click.Choice(["pchip", "cubic", "akima"]), default="pchip", show_default=True,
              help="Interpolation of the Bjøntegaard delta (pchip: JVET CTC; cubic: VCEG-M33).")
@click.option("--figures", "figure_list", default=None, metavar="svg,pdf,png",
              help="Also write static RD and speed figures sized for a two-column paper, in these formats "
                   '(needs matplotlib: pip install "codecbench[figures]").')
@verbosity_options
def report(results_dir, output, anchor, metric_list, target_list, bpp_range, references, bd_method, figure_list,
           verbosity):
    """Write report.html and BD-rate, rate-matched and area tables (Markdown, CSV, LaTeX) for RESULTS_DIR.

    Prints the BD-rate summary and the report's path on stdout.
    """
    from codecbench.api import require_figures
    from codecbench.render.report import build_report

    metrics = parse_names(metric_list)
    targets = parse_values(target_list, "--target-bpp")
    span = parse_values(bpp_range, "--bpp-range")
    if len(span) != 2 or not span[1] > span[0]:
        raise click.BadParameter(f"{bpp_range!r} must be START,END with END > START", param_hint="--bpp-range")
    missing = [r for r in references if not r.startswith("compressai:") and not Path(r).is_file()]
    if missing:
        raise click.BadParameter(f"{', '.join(missing)}: no such file (or use compressai:NAME)",
                                 param_hint="--reference")
    figures = parse_names(figure_list)
    if figures:
        require_figures()
    result = build_report(results_dir, output, anchor=anchor, metrics=metrics, targets=targets,
                          bpp_range=(span[0], span[1]), references=references, bd_method=bd_method,
                          figures=figures)
    if result.summary_markdown:
        click.echo(result.summary_markdown)
    for name, results in result.datasets.items():
        for note in results.notes:
            if note.startswith("reference "):
                click.echo(f"warning: {name}: {note}", err=True)
            elif note.startswith("no BD tables"):
                verbosity.info(f"{name}: {note}")
            else:
                verbosity.detail(f"{name}: {note}")
    for path in result.files:
        verbosity.detail(f"wrote {path}")
    click.echo(f"report: {Path(result.html_path)}")
