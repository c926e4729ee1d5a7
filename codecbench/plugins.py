"""What plugins of every kind share: availability, and loading a ``module:attribute`` target lazily."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Availability:
    """Whether a codec or metric can run here; ``reason`` says why not (and what to do)."""

    ok: bool
    reason: str = ""


def require_module(module: str, install: str, purpose: str) -> None:
    """A usage error unless ``module`` can be imported: ``purpose`` needs it and ``install`` adds it."""
    from codecbench.errors import UsageError

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise UsageError(f"{purpose} needs {module}, which is not installed ({exc}): {install}") from None


def load_target(target: str) -> Any:
    """The object named by ``"package.module:attribute"`` (imported on first use)."""
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)
