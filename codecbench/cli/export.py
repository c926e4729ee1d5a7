"""``codecbench export``: the results table as CSV or JSON, or one mean curve in CompressAI's JSON layout."""

from __future__ import annotations

import json

import click

from codecbench.cli.options import Command


@click.command(cls=Command)
@click.argument("results_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "compressai"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="-", show_default=True)
@click.option("--codec", default=None, help="With --format compressai: the codec to export.")
@click.option("--dataset", default=None, help="With --format compressai: the dataset (default: the only one).")
def export(results_dir, fmt, output, codec, dataset):
    """Write the results table as CSV or JSON, or one codec's mean curve in CompressAI's JSON layout."""
    from codecbench.store import open_existing

    store = open_existing(results_dir)
    if fmt == "compressai":
        from codecbench.analysis.compressai import to_compressai_json

        if not codec:
            raise click.BadParameter("--format compressai needs --codec NAME", param_hint="--codec")
        text = json.dumps(to_compressai_json(store.rows(), codec, dataset), indent=2)
    elif fmt == "json":
        frame = store.dataframe()
        text = frame.to_json(orient="records", indent=2)
    else:
        frame = store.dataframe()
        frame["extra"] = frame["extra"].map(lambda v: json.dumps(v) if v is not None else "")
        text = frame.to_csv(index=False)
    if output == "-":
        click.echo(text)
    else:
        from codecbench.files import atomic_write_text

        atomic_write_text(output, text)
        click.echo(f"wrote {output}", err=True)
