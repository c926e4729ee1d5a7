"""``codecbench references``: the published RD curves codecbench carries, by name and dataset."""

from __future__ import annotations

import click

from codecbench.cli.options import Command, echo_json, json_option


@click.command(cls=Command)
@click.option("--dataset", default=None, help="Only the curves of this dataset (e.g. kodak).")
@json_option
def references(dataset, as_json):
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
    entries = []
    for folder in folders:
        for name, path in every[folder].items():
            document = json.loads(path.read_text())
            entries.append({"dataset": folder, "name": name,
                            "points": len(document.get("results", {}).get("bpp", [])),
                            "description": document.get("description") or document.get("name", ""),
                            "path": str(path)})
    if as_json:
        echo_json(entries)
        return
    for folder in folders:
        click.echo(f"{folder}:")
        for entry in (entry for entry in entries if entry["dataset"] == folder):
            click.echo(f"  {entry['name']:<48} {entry['points']:>2} points  {entry['description']}")
    click.echo(f"Source: CompressAI (InterDigital), BSD 3-Clause Clear; {REFERENCES_DIR / 'compressai' / 'README.md'}")
