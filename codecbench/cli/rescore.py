"""``codecbench rescore``: add metrics to stored rows from kept outputs, without encoding again."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from codecbench.cli.options import Command, parse_names, verbosity_options


@click.command(cls=Command)
@click.argument("results_dir", type=click.Path(file_okay=False))
@click.option("--metrics", "metric_list", required=True,
              help="Comma-separated metrics to add (see `codecbench metrics`), e.g. ssimulacra2,flip.")
@click.option("-j", "--jobs", default=1, show_default=True, type=click.IntRange(1), help="Worker processes.")
@click.option("--force", is_flag=True, help="Recompute the metrics of rows that already have them.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where datasets are looked up (default: $CODECBENCH_DATA or ~/.cache/codecbench).")
@click.option("--offline", is_flag=True, help="Never download a dataset.")
@verbosity_options
def rescore(results_dir, metric_list, jobs, force, data_dir, offline, verbosity):
    """Add metric columns to the rows of RESULTS_DIR from the outputs kept by `run --keep-decoded` (resumable).

    Exits 0 when every successful row has the metrics, 1 when some could not be rescored (listed with the reason).
    """
    from codecbench import metrics
    from codecbench.data.datasets import resolve_dataset
    from codecbench.rescoring import rescore as rescore_rows
    from codecbench.store import open_existing

    names = parse_names(metric_list)
    for name in names:
        try:
            spec = metrics.metric(name)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--metrics") from None
        status = spec.availability()
        if not status.ok:
            raise click.BadParameter(f"{name} is unavailable: {status.reason}", param_hint="--metrics")
    store = open_existing(results_dir)

    def resolve(spec: str):
        return resolve_dataset(spec, Path(data_dir) if data_dir else None, download=not offline, progress=not verbosity.quiet)

    summary = rescore_rows(store, names, resolve, jobs=jobs, force=force, command=sys.argv, progress=not verbosity.quiet)
    not_rescored = sum(len(cells) for cells in summary.cannot.values())
    click.echo(f"{summary.rows} cells: {summary.complete} already had {', '.join(names)}, {summary.rescored} rescored, "
               f"{len(summary.failed)} failed, {not_rescored} cannot be rescored → {store.cells_path}", err=True)
    for reason, cells in summary.cannot.items():
        shown = "; ".join(verbosity.some(cells, limit=5))
        click.echo(f"cannot rescore {len(cells)} cell(s): {reason}: {shown}", err=True)
    for line in verbosity.some([f"failed: {line}" for line in summary.failed]):
        click.echo(line, err=True)
    if summary.interrupted:
        click.echo("interrupted: rescored cells are stored; run the same command again to continue", err=True)
    sys.exit(0 if summary.ok else (130 if summary.interrupted else 1))
