"""Numbers in and out of files: the one place that decides how non-finite values are written.

A PSNR of a lossless cell is +inf and a missing value may be NaN. JSON has no
such numbers, so every JSON document codecbench writes (results rows, run
manifests, baselines) stores them as the strings ``"inf"``, ``"-inf"`` and
``"nan"`` (:func:`to_json_number`, read back by :func:`from_json_number`).
Renderers (Markdown, LaTeX, HTML, CSV) show a non-finite or missing value
through :func:`format_number` and :func:`csv_number`.
"""

from __future__ import annotations

import math
from typing import Any

NONFINITE_TEXT = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
#: What a table shows for a value that is missing or not finite.
MISSING_TEXT = "n/a"


def to_json_number(value: Any) -> Any:
    """A float for a JSON document: non-finite floats as "inf", "-inf" or "nan"; everything else unchanged."""
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    return value


def from_json_number(value: Any) -> Any:
    """The inverse of :func:`to_json_number`: "inf", "-inf", "nan" back to floats; everything else unchanged."""
    if isinstance(value, str) and value in NONFINITE_TEXT:
        return NONFINITE_TEXT[value]
    return value


def finite_float(value: Any) -> float:
    """A stored value as a float; NaN for None, non-numbers and non-finite numbers (PSNR = inf of a lossless cell)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    value = float(value)
    return value if math.isfinite(value) else math.nan


def format_number(value: float | None, digits: int, *, signed: bool = False, missing: str = MISSING_TEXT) -> str:
    """``value`` with ``digits`` decimals (a sign when ``signed``); ``missing`` for None and non-finite values."""
    if value is None or not math.isfinite(value):
        return missing
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def csv_number(value: Any) -> Any:
    """A CSV cell: an empty cell for None and non-finite floats, the value otherwise."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    return value
