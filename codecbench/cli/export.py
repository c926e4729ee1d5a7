"""``codecbench export``: the results table as CSV or JSON, or one mean curve in CompressAI's JSON layout."""

from __future__ import annotations

import json

import click

from codecbench.cli.options import Command, output_option
from codecbench.errors import UsageError


@click.command(cls=Command)
@click.argument("results_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "parquet", "compressai"]), default="csv",
              show_default=True, help="parquet needs pyarrow and -o FILE.")
@output_option("File to write; - is stdout (parquet needs a file).", default="-", show_default=True)
@click.option("--codec", default=None, help="With --format compressai: the codec to export.")
@click.option("--dataset", default=None, help="With --format compressai: the dataset (default: the only one).")
def export(results_dir, fmt, output, codec, dataset):
    """Write the results table as CSV, JSON or Parquet, or one codec's mean curve in CompressAI's JSON layout.

    Tables hold the current row of every cell; non-finite values (a lossless PSNR) are +inf in Parquet, ``inf`` in
    CSV and null in JSON; ``extra`` is JSON text in CSV and Parquet.
    """
    from codecbench.files import atomic_write, atomic_write_text
    from codecbench.store import open_existing

    if fmt == "compressai" and not codec:
        raise click.BadParameter("--format compressai needs --codec NAME", param_hint="--codec")
    if fmt == "parquet":
        if output == "-":
            raise click.BadParameter("Parquet is binary: name a file, e.g. -o results.parquet", param_hint="--output")
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UsageError('--format parquet needs pyarrow: pip install "codecbench[parquet]"') from None
    store = open_existing(results_dir)
    if fmt == "parquet":
        frame = _flat_table(store)
        atomic_write(output, lambda temporary: frame.to_parquet(temporary, index=False))
        click.echo(f"wrote {output} ({len(frame)} rows)", err=True)
        return
    if fmt == "compressai":
        from codecbench.analysis.compressai import to_compressai_json

        text = json.dumps(to_compressai_json(store.rows(), codec, dataset), indent=2)
    elif fmt == "json":
        frame = store.dataframe()
        text = frame.to_json(orient="records", indent=2)
    else:
        text = _flat_table(store).to_csv(index=False)
    if output == "-":
        click.echo(text)
    else:
        atomic_write_text(output, text)
        click.echo(f"wrote {output}", err=True)


def _flat_table(store):
    """The store's current rows with ``extra`` as JSON text (empty when absent): one flat column per field."""
    frame = store.dataframe()
    frame["extra"] = frame["extra"].map(lambda v: json.dumps(v) if v is not None else "")
    return frame
