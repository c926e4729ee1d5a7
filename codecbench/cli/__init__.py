"""The ``codecbench`` command line.

One module per command, imported only when used, so ``codecbench --help``
stays fast (no torch import). Every command is a :class:`codecbench.cli.options.Command`:
a ``CodecbenchError`` becomes a one-line message and its exit code (see
:mod:`codecbench.cli.options`).
"""

from __future__ import annotations

import click

from codecbench import __version__
from codecbench.cli.options import EXIT_CODES, Group
from codecbench.plugins import load_target

#: subcommand name -> "module:attribute" of its click command
COMMANDS = {
    "run": "codecbench.cli.run:run",
    "codecs": "codecbench.cli.codecs:codecs",
    "metrics": "codecbench.cli.metrics:metrics",
    "rescore": "codecbench.cli.rescore:rescore",
    "export": "codecbench.cli.export:export",
    "datasets": "codecbench.cli.datasets:datasets",
    "report": "codecbench.cli.report:report",
    "baseline": "codecbench.cli.baseline:baseline",
    "check": "codecbench.cli.check:check",
    "references": "codecbench.cli.references:references",
    "train": "codecbench.cli.train:train",
    "store": "codecbench.cli.store:store",
    "merge": "codecbench.cli.merge:merge",
}


class LazyGroup(Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return load_target(COMMANDS[name]) if name in COMMANDS else None


EPILOG = ("Options that mean the same on every command: -o/--output where it writes; -q/--quiet no progress and no "
          "notes; -v/--verbose more detail; --json (listings and check) JSON on stdout.\n\n"
          + EXIT_CODES + " `codecbench check`: 1 a regression, 2 unusable input.")


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.version_option(__version__, prog_name="codecbench")
def cli() -> None:
    """Benchmark lossy image codecs: real bitstreams, standard metrics, BD-rate tables and RD plots."""


def main() -> None:
    cli()
