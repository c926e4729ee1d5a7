"""The ``codecbench`` command line.

Subcommands live in their own modules and are imported only when used, so
``codecbench --help`` stays fast (no torch import).
"""

from __future__ import annotations

import importlib

import click

from codecbench import __version__

#: subcommand name -> "module:attribute" of its click command
COMMANDS = {
    "run": "codecbench.cli.run:run",
    "codecs": "codecbench.cli.run:codecs",
    "export": "codecbench.cli.run:export",
    "datasets": "codecbench.cli.datasets:datasets",
    "report": "codecbench.cli.report:report",
    "baseline": "codecbench.cli.check:baseline",
    "check": "codecbench.cli.check:check",
    "train": "codecbench.cli.train:train",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attribute = target.split(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="codecbench")
def cli() -> None:
    """Benchmark lossy image codecs: real bitstreams, standard metrics, BD-rate tables and RD plots."""


def main() -> None:
    cli()
