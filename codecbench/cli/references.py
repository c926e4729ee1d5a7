"""``codecbench references``: the published RD curves codecbench carries, by name and dataset."""

from __future__ import annotations

import click

from codecbench.cli.options import Command


@click.command(cls=Command)
@click.option("--dataset", default=None, help="Only the curves of this dataset (e.g. kodak).")
def references(dataset):
    """List the published curves usable as `codecbench report --reference compressai:NAME`."""
    import json

    from codecbench.analysis.compressai import REFERENCES_DIR, published_references, reference_folder

    every = published_references()
    folders = list(every)
    if dataset is not None:
        folder = reference_folder(dataset)
        if folder is None:
            raise click.BadParameter(f"no published curves for {dataset!r}; datasets: {', '.join(every)}",
                                     param_hint="--dataset")
        folders = [folder]
    for folder in folders:
        click.echo(f"{folder}:")
        for name, path in every[folder].items():
            document = json.loads(path.read_text())
            points = len(document.get("results", {}).get("bpp", []))
            click.echo(f"  {name:<48} {points:>2} points  {document.get('description') or document.get('name', '')}")
    click.echo(f"Source: CompressAI (InterDigital), BSD 3-Clause Clear; {REFERENCES_DIR / 'compressai' / 'README.md'}")
