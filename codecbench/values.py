"""Numbers in and out of files: the one place that decides how non-finite values are written.

A PSNR of a lossless cell is +inf and a missing value may be NaN. JSON has no
such numbers, so codecbench writes them in one of two documented ways:

- **results rows** (``cells.jsonl``, store format 2): the value is ``null``
  and the row's ``nonfinite`` object names it, e.g. ``"psnr_rgb": null, …,
  "nonfinite": {"psnr_rgb": "inf"}`` (:func:`split_nonfinite`, read back by
  :func:`join_nonfinite`). Every numeric column stays numeric, so pandas,
  polars and ``pyarrow.json`` read the file as it is (a lossless PSNR is then
  null/NaN there; ``codecbench.load`` restores +inf).
- **documents** (baselines, run manifests, and results rows of store format 1):
  the strings ``"inf"``, ``"-inf"`` and ``"nan"`` (:func:`to_json_number`,
  read back by :func:`from_json_number`).

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


def split_nonfinite(row: dict[str, Any]) -> dict[str, Any]:
    """A results row for writing: non-finite floats become ``None``, named in the row's ``nonfinite`` object.

    ``nonfinite`` is always present (``None`` when the row has no such value), so every line has the same keys.
    """
    nonfinite = {key: to_json_number(value) for key, value in row.items()
                 if isinstance(value, float) and not math.isfinite(value)}
    clean = {key: None if key in nonfinite else value for key, value in row.items()}
    clean["nonfinite"] = nonfinite or None
    return clean


def join_nonfinite(row: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`split_nonfinite`: the ``nonfinite`` values put back, the ``nonfinite`` key removed."""
    nonfinite = row.pop("nonfinite", None) or {}
    row.update({key: from_json_number(text) for key, text in nonfinite.items()})
    return row


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
