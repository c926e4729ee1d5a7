"""``codecbench metrics``: every registered metric, whether it can run here (and why not), and its convention."""

from __future__ import annotations

import json

import click

from codecbench.cli.options import Command, json_option


@click.command(cls=Command)
@json_option
def metrics(as_json):
    """List every registered metric: availability, direction, unit, whether `run` computes it by default, convention."""
    from codecbench.metrics import METRICS, UNLOADABLE

    entries = []
    for name, spec in METRICS.items():
        status = spec.availability()
        entries.append({"name": name, "available": status.ok, "reason": status.reason,
                        "better": "higher" if spec.higher_is_better else "lower", "unit": spec.unit,
                        "default": spec.default_run, "convention": spec.description,
                        "implementation": spec.implementation})
    entries += [{"name": name, "available": False, "reason": reason, "better": "-", "unit": "", "default": False,
                 "convention": "(failed to load)", "implementation": "-"} for name, reason in UNLOADABLE.items()]
    if as_json:
        click.echo(json.dumps(entries, indent=2, ensure_ascii=False))
        return
    rows = [("metric", "available", "better", "unit", "default", "convention")]
    rows += [(e["name"], "yes" if e["available"] else "no", e["better"], e["unit"] or "-",
              "yes" if e["default"] else "no", e["convention"]) for e in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        click.echo("  ".join(value.ljust(width) for value, width in zip(row[:5], widths)) + "  " + row[5])
    for entry in entries:
        if not entry["available"]:
            click.echo(f"\n{entry['name']}: {entry['reason']}")
