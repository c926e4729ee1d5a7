"""``codecbench baseline``: freeze a run's RD curves into a baseline file for ``codecbench check``.

Exits 2 when the results cannot be frozen (missing results directory, nothing
to freeze, two different images under one name).
"""

from __future__ import annotations

import click

from codecbench.cli.options import Command, output_option, parse_names, verbosity_options
from codecbench.errors import BaselineError, StoreError
from codecbench.regression.baseline import make_baseline, write_baseline
from codecbench.store import open_existing
from codecbench.variants import split_codec_list


@click.command(cls=Command)
@click.argument("results_dir", type=click.Path(file_okay=False))
@output_option("Baseline file to write, e.g. results/baselines/sample.json.", required=True)
@click.option("--dataset", "dataset_list", default=None, help="Only these datasets (comma-separated).")
@click.option("--codecs", "codec_list", default=None, help="Only these codecs (comma-separated).")
@verbosity_options
def baseline(results_dir, output, dataset_list, codec_list, verbosity):
    """Freeze the RD curves of RESULTS_DIR into a small, diff-friendly baseline JSON for `codecbench check`."""
    notes: list[str] = []
    try:
        store = open_existing(results_dir)
    except StoreError as exc:  # input the baseline cannot use
        raise BaselineError(str(exc)) from None
    try:
        frozen = make_baseline(store.rows(), store.manifests(), datasets=parse_names(dataset_list) or None,
                               codecs=split_codec_list(codec_list or "") or None, notes=notes)
    except BaselineError as exc:
        raise BaselineError(f"{results_dir}: {exc}") from None
    for note in verbosity.some(notes):
        verbosity.info(f"note: {note}")
    write_baseline(frozen, output)
    summary = ", ".join(f"{name}: {', '.join(sorted(part['codecs']))}" for name, part in sorted(frozen["datasets"].items()))
    click.echo(f"wrote {output} ({summary})", err=True)
