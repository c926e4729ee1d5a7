"""Checks of ``codecbench run``'s options that run before any work: usage errors exit 2 and name the option."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

import click

from codecbench.cli.options import parse_names


def did_you_mean(unknown: Iterable[str], known: Iterable[str]) -> str:
    """`` (did you mean jpeg?)`` for the unknown names that are close to a known one; else empty."""
    known = list(known)
    guesses = [match for name in unknown for match in difflib.get_close_matches(name, known, n=1)]
    return f" (did you mean {', '.join(guesses)}?)" if guesses else ""


def check_codec_names(names: Sequence[str]) -> None:
    """Usage error (``--codecs``) for names no plugin registers, with the closest known names."""
    from codecbench import registry

    known = registry.codec_names()
    unknown = [name for name in names if name not in known]
    if unknown:
        raise click.BadParameter(f"unknown codec(s) {', '.join(unknown)}{did_you_mean(unknown, known)}; "
                                 f"known: {', '.join(known)}", param_hint="--codecs")


def create_codecs(names: Sequence[str], options: dict[str, dict[str, Any]], problems: list[str]) -> dict[str, Any]:
    """The codecs to run, made once here and asked for their version.

    Bad options (a :class:`CodecError` from the constructor) are a usage error
    naming ``--codec-option``. An unavailable codec, or a plugin whose
    constructor or ``version()`` raises anything else, is left out with a
    problem (the other codecs run; the run exits 1).
    """
    from codecbench.errors import CodecError, CodecUnavailable
    from codecbench.execution import create_codec

    codecs = {}
    for name in names:
        try:
            codec = create_codec(name, options.get(name, {}))
        except CodecUnavailable as exc:
            _skip(problems, str(exc))
            continue
        except CodecError as exc:
            raise click.BadParameter(str(exc), param_hint="--codec-option") from None
        except Exception as exc:  # a plugin's bug must not stop the other codecs
            _skip(problems, f"codec {name} cannot be created ({type(exc).__name__}: {exc}); not run")
            continue
        try:
            codec.version()
        except Exception as exc:
            _skip(problems, f"codec {name}: version() failed ({type(exc).__name__}: {exc}); not run")
            continue
        codecs[name] = codec
    return codecs


def _skip(problems: list[str], message: str) -> None:
    problems.append(message)
    click.echo(f"error: {message}", err=True)


def check_lpips_weights(lpips_weights: str | None) -> None:
    """Load the LPIPS network once and measure one pair; a usage error naming where the weights came from."""
    import numpy as np

    from codecbench import metrics
    from codecbench.errors import MetricError
    from codecbench.metrics.perceptual import LPIPS_WEIGHTS_ENV

    probe = np.tile(np.arange(64, dtype=np.uint8)[:, None, None] * 4, (1, 64, 3))
    try:
        metrics.compute(probe, probe, ["lpips"])
    except MetricError as exc:
        source = "--lpips-weights" if lpips_weights else f"${LPIPS_WEIGHTS_ENV} or torchvision's cache"
        raise click.BadParameter(f"the LPIPS weights cannot be used: {exc}", param_hint=source) from None


def parse_timeouts(texts: Sequence[str], codec_names: Sequence[str]) -> tuple[float | None, dict[str, float]]:
    """``--cell-timeout`` values: (seconds for every codec or None, {codec: seconds})."""
    default: float | None = None
    per_codec: dict[str, float] = {}
    for part in (part for text in texts for part in parse_names(text)):
        name, sep, value = part.rpartition("=")
        try:
            seconds = float(value)
        except ValueError:
            seconds = float("nan")
        if not seconds > 0 or seconds == float("inf") or (sep and not name):
            raise click.BadParameter(f"{part!r} must be SECONDS or CODEC=SECONDS with SECONDS > 0 (e.g. 60 or "
                                     f"conv_lstm=600)", param_hint="--cell-timeout")
        if not sep:
            default = seconds
        elif name not in codec_names:
            raise click.BadParameter(f"{name}: not named in --codecs", param_hint="--cell-timeout")
        else:
            per_codec[name] = seconds
    return default, per_codec
