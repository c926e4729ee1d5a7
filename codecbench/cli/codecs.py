"""``codecbench codecs``: every registered codec, its version, setting range and availability."""

from __future__ import annotations

import json

import click

from codecbench.cli.options import Command, json_option, parse_codec_options


@click.command(cls=Command)
@click.option("--codec-option", "codec_option_pairs", multiple=True, metavar="CODEC.KEY=VALUE")
@json_option
def codecs(codec_option_pairs, as_json):
    """List every registered codec: version, setting range and availability."""
    from dataclasses import asdict

    from codecbench import registry

    infos = registry.describe_all(parse_codec_options(codec_option_pairs))
    if as_json:
        click.echo(json.dumps([asdict(info) for info in infos], indent=2))
        return
    rows = [("codec", "available", "version", "setting", "model", "description")]
    for info in infos:
        rows.append((info.name, "yes" if info.available else "no", info.version, info.setting, _model(info), info.description))
    widths = [max(len(str(r[i])) for r in rows) for i in range(5)]
    for row in rows:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row[:5], widths)) + "  " + row[5])
    for info in infos:
        if not info.available:
            click.echo(f"\n{info.name}: {info.reason}")
    from codecbench.variants import load_aliases

    click.echo("\nvariant aliases (--codecs ALIAS; NAME:KEY=VALUE,... works too):")
    for alias, spec in load_aliases().items():
        click.echo(f"  {alias:<22} {spec}")


def _model(info) -> str:
    """``1.28 M params, 17.0 MB`` for a learned codec, ``-`` otherwise."""
    if info.parameters is None:
        return "-"
    return f"{info.parameters / 1e6:.2f} M params, {info.weights_bytes / 1e6:.1f} MB"
