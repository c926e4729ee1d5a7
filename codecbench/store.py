"""The results store: an append-only, crash-safe table of cells, plus run manifests.

Layout of a results directory::

    results/
      cells.jsonl          one JSON object per line, one line per finished cell
      runs/<run_id>.json   manifest of each run (command, versions, machine, datasets)
      crops/<image_sha12>/ small PNG crops of decoded images, for visual comparison

A *cell* is one (dataset, image, codec, codec version, setting) — or, for a
rate-targeted run, one (…, target bpp). Rows are appended with one ``write``
of a whole line followed by ``fsync``, so killing a run at any moment loses at
most the cells in flight; a partially written last line (the only damage a
kill can do) is ignored when reading and cut off before the next append. When
a cell appears more than once (it was recomputed), the last row wins.
Non-finite floats (PSNR of a lossless cell) are stored as the strings
"inf", "-inf" and "nan" (:mod:`codecbench.values`).

The store only stores: it computes nothing and knows no codec or metric.
"""

from __future__ import annotations

import json
import os
import platform
import socket
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from codecbench.errors import StoreError
from codecbench.files import atomic_write_bytes
from codecbench.metrics import METRICS
from codecbench.values import from_json_number, to_json_number

CELLS_FILE = "cells.jsonl"
RUNS_DIR = "runs"
CROPS_DIR = "crops"

#: Columns every row has, in this order (``None`` where not applicable).
COLUMNS = (
    "dataset", "image", "image_sha256", "width", "height",
    "codec", "codec_version", "setting", "target_bpp",
    "bytes", "bpp",
    *METRICS,  # one column per declared metric, in the vocabulary's order
    "encode_s", "decode_s", "error", "extra", "run_id", "finished_at",
)

#: The columns that identify a cell.
KEY_COLUMNS = ("dataset", "image_sha256", "codec", "codec_version", "setting", "target_bpp")


def cell_key(row: dict[str, Any]) -> tuple:
    """The identity of a cell (see KEY_COLUMNS); settings compare as floats."""
    setting = row.get("setting")
    target = row.get("target_bpp")
    return (
        row["dataset"], row["image_sha256"], row["codec"], row["codec_version"],
        None if setting is None or target is not None else float(setting),
        None if target is None else float(target),
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a results row")


def _encode_row(row: dict[str, Any]) -> str:
    clean = {key: to_json_number(value) for key, value in row.items()}
    return json.dumps(clean, default=_json_default, separators=(",", ":"), sort_keys=False)


class ResultsStore:
    """One results directory. Writes are append-only; reads return the latest row per cell."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.cells_path = self.root / CELLS_FILE

    # -- writing -----------------------------------------------------------
    def _repair_tail(self) -> None:
        """Cut a partial last line left by a killed writer, so the next append starts clean."""
        if not self.cells_path.exists():
            return
        with open(self.cells_path, "rb+") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size == 0:
                return
            f.seek(size - 1)
            if f.read(1) == b"\n":
                return
            # walk back to the last newline
            pos = size - 1
            while pos > 0:
                step = min(65536, pos)
                f.seek(pos - step)
                block = f.read(step)
                idx = block.rfind(b"\n")
                if idx >= 0:
                    pos = pos - step + idx + 1
                    break
                pos -= step
            f.truncate(max(pos, 0))

    def append(self, rows: dict[str, Any] | Iterable[dict[str, Any]]) -> None:
        """Append finished cells durably (one line each, fsync'd)."""
        if isinstance(rows, dict):
            rows = [rows]
        lines = "".join(_encode_row(row) + "\n" for row in rows)
        if not lines:
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        with open(self.cells_path, "a", encoding="utf-8") as f:
            f.write(lines)
            f.flush()
            os.fsync(f.fileno())

    def write_manifest(self, run_id: str, manifest: dict[str, Any]) -> Path:
        """Write (or rewrite, atomically) the manifest of one run."""
        path = self.root / RUNS_DIR / f"{run_id}.json"
        atomic_write_bytes(path, json.dumps(manifest, indent=2, default=_json_default).encode())
        return path

    @staticmethod
    def crop_label(codec: str | None, setting: float | None = None, target_bpp: float | None = None) -> str:
        """Label of a stored crop: ``original``, ``<codec>-<setting>`` or ``<codec>-t<target bpp>``."""
        if codec is None:
            return "original"
        if target_bpp is not None:
            return f"{codec}-t{float(target_bpp):g}"
        return f"{codec}-{float(setting):g}"

    def crop_path(self, image_sha256: str, label: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in label)
        return self.root / CROPS_DIR / image_sha256[:12] / f"{safe}.png"

    def save_crop(self, image_sha256: str, label: str, png_bytes: bytes) -> Path:
        path = self.crop_path(image_sha256, label)
        atomic_write_bytes(path, png_bytes)
        return path

    # -- reading -----------------------------------------------------------
    def iter_raw_rows(self) -> Iterator[dict[str, Any]]:
        """Every stored row in file order; a damaged last line is skipped, damage elsewhere is an error."""
        if not self.cells_path.exists():
            return
        with open(self.cells_path, encoding="utf-8") as f:
            lines = f.readlines()
        for number, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                if number == len(lines) and not line.endswith("\n"):
                    return  # a write cut off by a kill: the cell was not finished
                raise StoreError(f"{self.cells_path}:{number}: not a JSON row ({exc})") from exc
            yield {key: from_json_number(value) for key, value in row.items()}

    def rows(self) -> list[dict[str, Any]]:
        """The latest row of every cell, in first-seen order, with every column present."""
        latest: dict[tuple, dict[str, Any]] = {}
        for row in self.iter_raw_rows():
            full = {column: row.get(column) for column in COLUMNS}
            full.update({k: v for k, v in row.items() if k not in full})
            latest[cell_key(full)] = full
        return list(latest.values())

    def dataframe(self):
        """The latest rows as a pandas DataFrame with the COLUMNS first."""
        import pandas as pd

        rows = self.rows()
        frame = pd.DataFrame(rows, columns=list(COLUMNS) if not rows else None)
        ordered = [c for c in COLUMNS if c in frame.columns] + [c for c in frame.columns if c not in COLUMNS]
        return frame[ordered]

    def manifests(self) -> list[dict[str, Any]]:
        """All run manifests, oldest first."""
        folder = self.root / RUNS_DIR
        if not folder.is_dir():
            return []
        out = []
        for path in sorted(folder.glob("*.json")):
            try:
                out.append(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError) as exc:
                raise StoreError(f"{path}: unreadable run manifest ({exc})") from exc
        return sorted(out, key=lambda m: m.get("started_at", ""))

    def exists(self) -> bool:
        return self.cells_path.exists()


def open_existing(root: str | Path) -> ResultsStore:
    """Open a results directory for reading; StoreError if it holds no results."""
    store = ResultsStore(root)
    if not store.root.is_dir():
        raise StoreError(f"{store.root}: no such results directory")
    if not store.exists():
        raise StoreError(f"{store.root}: no {CELLS_FILE} here; run `codecbench run --results {store.root}` first")
    return store


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus host and pid."""
    now = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{now}-{socket.gethostname()[:16]}-{os.getpid()}"


def machine_info() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
    }


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
