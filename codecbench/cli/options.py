"""What every command shares: the error-to-exit-code mapping and the parsers of list and ``KEY=VALUE`` options.

Exit codes of every command: 0 success; 1 a failure while working (a codec,
dataset, store or training error, or failed cells); 2 a usage error (bad
options or unusable input files, found before any work); 130 interrupted.
``codecbench check`` adds 1 = regression, 2 = unusable input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from codecbench.errors import CodecbenchError


class CommandFailed(click.ClickException):
    """A CodecbenchError on its way out of a command: printed as ``Error: message``, exit code by error type."""

    def __init__(self, error: CodecbenchError) -> None:
        super().__init__(str(error))
        self.exit_code = error.exit_code


class Command(click.Command):
    """A click command whose CodecbenchErrors become a one-line message and the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CodecbenchError as exc:
            raise CommandFailed(exc) from None


class Group(click.Group):
    """A click group with the same error mapping for its own callback; its subcommands use :class:`Command`."""

    command_class = Command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CodecbenchError as exc:
            raise CommandFailed(exc) from None


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
