"""External encoder/decoder programs (``bpg``, ``vvc``): where they are found and how they are run.

A program is looked up, in order, from the codec option (``--codec-option
bpg.encoder=PATH``), its own environment variable (``CODECBENCH_BPGENC``), the
tools folder ``$CODECBENCH_TOOLS`` (a folder holding the programs under their
usual names, e.g. ``../shared/tools/codecs/bin``), then ``PATH``.

Programs run without a shell (argv lists), each call limited by the codec's
``timeout`` option (seconds); a failure raises :class:`CodecError` with the
command line and the program's stderr. Files pass through a private temporary
directory that the codec removes afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codecbench.errors import CodecError, CodecUnavailable
from codecbench.plugins import Availability

TOOLS_ENV = "CODECBENCH_TOOLS"


@dataclass(frozen=True)
class Program:
    """One external program of a codec: ``codec``'s option ``option``, variable ``env``, file name ``default``."""

    codec: str
    option: str
    env: str
    default: str
    package: str  # what to install, for the message

    def locate(self, options: dict[str, Any]) -> tuple[str | None, str]:
        """(resolved executable or None, why it is missing)."""
        for configured, source in ((options.get(self.option), f"option {self.codec}.{self.option}"),
                                   (os.environ.get(self.env), f"environment variable {self.env}")):
            if configured:
                return shutil.which(str(configured)), (
                    f"{self.default} {str(configured)!r} (from {source}) is not an executable file")
        tools = os.environ.get(TOOLS_ENV)
        if tools:
            found = shutil.which(str(Path(tools) / self.default))
            if found:
                return found, ""
        where = f"in ${TOOLS_ENV} ({tools}) or on PATH" if tools else "on PATH"
        return shutil.which(self.default), (
            f"{self.default} not found {where}; install {self.package} or pass "
            f"--codec-option {self.codec}.{self.option}=PATH (or set {self.env})"
        )

    def require(self, options: dict[str, Any]) -> str:
        path, reason = self.locate(options)
        if path is None:
            raise CodecUnavailable(f"codec {self.codec} is unavailable: {reason}")
        return path


def programs_available(programs: tuple[Program, ...], options: dict[str, Any]) -> Availability:
    """Available when every program is found; else the first missing one's reason."""
    for program in programs:
        path, reason = program.locate(options)
        if path is None:
            return Availability(False, reason)
    return Availability(True)


def timeout_option(codec: str, options: dict[str, Any], default_s: float) -> float:
    """The ``timeout`` option in seconds (positive), or ``default_s``."""
    try:
        timeout_s = float(options.get("timeout", default_s))
    except (TypeError, ValueError):
        raise CodecError(f"codec {codec}: option timeout must be a number of seconds, "
                         f"got {options['timeout']!r}") from None
    if not timeout_s > 0:
        raise CodecError(f"codec {codec}: option timeout must be positive, got {timeout_s:g}")
    return timeout_s


def run_program(codec: str, argv: list[str], what: str, timeout_s: float,
                allowed_returncodes: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` (no shell) with a timeout; CodecError with the command line and stderr on failure."""
    command = " ".join(argv)
    try:
        result = subprocess.run(argv, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise CodecError(f"{codec}: {what} timed out after {timeout_s:g} s: {command}") from exc
    except OSError as exc:
        raise CodecError(f"{codec}: {what} could not be started ({exc}): {command}") from exc
    if result.returncode not in allowed_returncodes:
        stderr = (result.stderr or result.stdout).decode(errors="replace").strip() or "(no output)"
        status = (f"was killed by signal {signal.Signals(-result.returncode).name}" if result.returncode < 0
                  else f"failed with exit status {result.returncode}")
        raise CodecError(f"{codec}: {what} {status}: {command}\n{stderr}")
    return result


def read_output(codec: str, path: Path, program: str) -> bytes:
    """The file a program was asked to write; CodecError when it is missing."""
    if not path.is_file():
        raise CodecError(f"{codec}: {program} exited normally but wrote no output file {path.name}")
    return path.read_bytes()
