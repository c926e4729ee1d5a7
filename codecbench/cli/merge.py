"""``codecbench merge DIR... -o DIR``: join results directories (shards, machines) without losing a row."""

from __future__ import annotations

import sys

import click

from codecbench.cli.options import Command, output_option


@click.command(cls=Command)
@click.argument("sources", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True))
@output_option("New results directory to write the merged store to.", folder=True, required=True)
def merge(sources: tuple[str, ...], output: str) -> None:
    """Merge the results directories SOURCES into OUTPUT: identical rows once, conflicts reported, no row lost.

    Exits 1 when two inputs hold different results for one cell (both are kept; the later input's is read).
    """
    from codecbench.merging import merge_results

    summary = merge_results(list(sources), output)
    read = ", ".join(f"{count} from {source}" for source, count in summary.rows_read.items())
    click.echo(f"{summary.rows_written} rows ({summary.cells} cells) written to {output}: read {read}; "
               f"{summary.identical_dropped} identical duplicate(s) dropped, {len(summary.conflicts)} conflict(s), "
               f"{summary.files_copied} file(s) copied (manifests, crops, blobs)")
    for line in summary.conflicts:
        click.echo(f"conflict: {line}", err=True)
    sys.exit(1 if summary.conflicts else 0)
