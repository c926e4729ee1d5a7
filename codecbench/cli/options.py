"""What every command shares: the error-to-exit-code mapping, the common options, and the parsers of list and
``KEY=VALUE`` options.

Exit codes of every command (:data:`EXIT_CODES`, shown in every ``--help``): 0
success; 1 a failure while working (a codec, dataset, store or training error,
or failed cells); 2 a usage error (bad options or unusable input files, found
before anything is written); 130 interrupted. ``codecbench check`` adds
1 = regression, 2 = unusable input.

The common options, defined once here, mean the same on every command:

- ``-o/--output`` (:func:`output_option`): where a command writes its result (a file or folder);
- ``-q/--quiet`` and ``-v/--verbose`` (:func:`verbosity_options`), on commands that print progress or
  notes: quiet prints no progress (bars, log lines) and no notes, only the result with its summary line,
  warnings and errors; verbose adds detail (every failure and note in full, what is about to be done);
- ``--json`` (:func:`json_option`), on listings and ``check``: the result as JSON on stdout.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from codecbench.errors import CodecbenchError

#: The exit codes, as every command's ``--help`` ends.
EXIT_CODES = ("Exit codes: 0 success; 1 a failure while working (failed cells; a codec, dataset, store or "
              "training error); 2 a usage error (bad options or unusable input, found before anything is "
              "written); 130 interrupted.")


class CommandFailed(click.ClickException):
    """A CodecbenchError on its way out of a command: printed as ``Error: message``, exit code by error type."""

    def __init__(self, error: CodecbenchError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code


class Command(click.Command):
    """A click command whose CodecbenchErrors become a one-line message and the error's exit code.

    Its help ends with the exit codes (:data:`EXIT_CODES`) unless it names its own ``epilog``.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["epilog"] = kwargs.get("epilog") or EXIT_CODES
        super().__init__(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CodecbenchError as exc:
            raise CommandFailed(exc) from None


class Group(click.Group):
    """A click group with the same error mapping for its own callback; its subcommands use :class:`Command`."""

    command_class = Command

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["epilog"] = kwargs.get("epilog") or EXIT_CODES
        super().__init__(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CodecbenchError as exc:
            raise CommandFailed(exc) from None


class _Option(click.Option):
    """An option with old spellings that still work but are not shown in ``--help``."""

    def __init__(self, *args: Any, hidden_names: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hidden_names = hidden_names

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        shown = self.opts
        self.opts = [name for name in shown if name not in self.hidden_names]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


def output_option(help: str, *, dest: str = "output", folder: bool = False, required: bool = False,
                  default: str | None = None, old_names: tuple[str, ...] = (), path_type: type | None = None,
                  **kwargs: Any) -> Callable:
    """``-o/--output``: where the command writes its result (a file, or a ``folder``).

    ``old_names`` (e.g. ``--out``) keep working, unlisted in ``--help``.
    """
    return click.option("-o", "--output", *old_names, dest, cls=_Option, hidden_names=old_names, required=required,
                        default=default, help=help,
                        type=click.Path(file_okay=not folder, dir_okay=folder, path_type=path_type), **kwargs)


def json_option(function: Callable) -> Callable:
    """``--json``: the result as JSON on stdout (``as_json``)."""
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output: JSON on stdout.")(function)


def echo_json(document: Any) -> None:
    """``document`` as indented JSON on stdout (non-finite numbers as "inf", "-inf", "nan")."""
    from codecbench.values import to_json_number

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(key): clean(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(item) for item in value]
        return to_json_number(value)

    click.echo(json.dumps(clean(document), indent=2, ensure_ascii=False, default=str))


@dataclass(frozen=True)
class Verbosity:
    """``-q``/``-v`` of a command: what to print besides the result, its summary line, warnings and errors."""

    quiet: bool = False
    verbose: bool = False

    def info(self, message: str) -> None:
        """A progress line or a note: printed unless ``-q``."""
        if not self.quiet:
            click.echo(message, err=True)

    def detail(self, message: str) -> None:
        """A line of detail: printed with ``-v`` only."""
        if self.verbose:
            click.echo(message, err=True)

    def some(self, lines: list[str], limit: int = 20) -> list[str]:
        """``lines`` to print: all with ``-v``, else the first ``limit`` and a line saying how many are left."""
        if self.verbose or len(lines) <= limit:
            return list(lines)
        return lines[:limit] + [f"… and {len(lines) - limit} more (-v lists them all)"]


QUIET_HELP = "No progress bar, progress lines or notes: only the result and its summary, warnings and errors."
VERBOSE_HELP = "Print more detail: every failure and note in full, and what is about to be done."


def verbosity_options(function: Callable) -> Callable:
    """``-q/--quiet`` and ``-v/--verbose``, given to the command as one ``verbosity`` (:class:`Verbosity`)."""

    @functools.wraps(function)
    def command(*args: Any, quiet: bool, verbose: bool, **kwargs: Any) -> Any:
        if quiet and verbose:
            raise click.UsageError("-q/--quiet and -v/--verbose exclude each other")
        return function(*args, verbosity=Verbosity(quiet, verbose), **kwargs)

    command = click.option("-v", "--verbose", is_flag=True, help=VERBOSE_HELP)(command)
    return click.option("-q", "--quiet", is_flag=True, help=QUIET_HELP)(command)


def parse_names(text: str | None) -> list[str]:
    """``a, b,c`` → ``["a", "b", "c"]``; empty items dropped."""
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def parse_values(text: str, option: str | None = None) -> list[float]:
    """Parse ``10,20,30`` or an inclusive range ``10:90:10`` (or a mix: ``1,2,5:50:5``)."""
    values: list[float] = []
    for part in parse_names(text):
        if ":" in part:
            pieces = part.split(":")
            if len(pieces) != 3:
                raise click.BadParameter(f"range {part!r} must be START:STOP:STEP", param_hint=option)
            start, stop, step = (_number(p, text, option) for p in pieces)
            if step <= 0 or stop < start:
                raise click.BadParameter(f"range {part!r} needs STEP > 0 and STOP ≥ START", param_hint=option)
            count = int(round((stop - start) / step)) + 1
            values.extend(round(start + i * step, 10) for i in range(count) if start + i * step <= stop + 1e-9)
        else:
            values.append(_number(part, text, option))
    if not values:
        raise click.BadParameter(f"no values in {text!r}", param_hint=option)
    return values


def _number(part: str, text: str, option: str | None) -> float:
    try:
        return float(part)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of numbers ({part!r} is not a number)",
                                 param_hint=option) from None


def parse_key_values(pairs: tuple[str, ...] | list[str], option: str, example: str,
                     convert: Callable[[str], Any] = str) -> list[tuple[str, Any]]:
    """``KEY=VALUE`` pairs as (key, converted value), in order; a usage error naming ``option`` otherwise.

    ``convert`` turns the text after ``=`` into the value and raises ValueError
    (with the reason) when it cannot; ``example`` shows a valid pair.
    """
    parsed = []
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} must look like {example}", param_hint=option)
        try:
            parsed.append((key.strip(), convert(raw)))
        except ValueError as exc:
            raise click.BadParameter(f"{pair!r}: {exc} (e.g. {example})", param_hint=option) from None
    return parsed


def parse_codec_options(pairs: tuple[str, ...], device: str | None = None,
                        codec_names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``CODEC.KEY=VALUE`` pairs (and ``--device``) into {codec: {key: value}}."""
    from codecbench import registry

    options: dict[str, dict[str, Any]] = {}
    for name_key, value in parse_key_values(pairs, "--codec-option", "bpg.encoder=/usr/local/bin/bpgenc"):
        codec, dot, key = name_key.partition(".")
        if not dot or not codec or not key:
            raise click.BadParameter(f"{name_key!r} must look like CODEC.KEY, e.g. bpg.encoder",
                                     param_hint="--codec-option")
        options.setdefault(codec, {})[key] = value
    if device:
        for name, registered in registry.discover().items():
            cls = registered.codec_class
            if cls is not None and "device" in cls.option_names and (codec_names is None or name in codec_names):
                options.setdefault(name, {}).setdefault("device", device)
    return options
