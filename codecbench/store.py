"""The results store: an append-only, crash-safe table of cells, plus run manifests.

Layout of a results directory::

    results/
      store.json           {"format": "codecbench-results", "format_version": 2}
      cells.jsonl          one JSON object per line, one line per finished cell
      runs/<run_id>.json   manifest of each run (command, versions, machine, datasets)
      crops/<image_sha12>/ small PNG crops of decoded images, for visual comparison

A *cell* is one (dataset, image, codec, codec version, setting) — or, for a
rate-targeted run, one (…, target bpp). Rows are appended with one ``write``
of a whole line followed by ``fsync``, so killing a run at any moment loses at
most the cells in flight; a partially written last line (the only damage a
kill can do) is ignored when reading and cut off before the next append. When
a cell appears more than once (it was recomputed), the last row wins.
Any other unreadable line (not UTF-8, not JSON, not a row with the key
columns) is a :class:`StoreError` naming ``file:line``; ``codecbench store
repair DIR`` (:meth:`ResultsStore.repair`) moves such lines to
``cells.damaged.jsonl`` and never deletes anything.
Non-finite floats (PSNR of a lossless cell) are stored as ``null`` and named
in the row's ``nonfinite`` object, so that pandas, polars and pyarrow read
``cells.jsonl`` directly (:func:`codecbench.values.split_nonfinite`).

Format versions: 2 (``store.json`` present) as above; 1 (no ``store.json``,
written by codecbench before 0.2) stored non-finite values as the strings
"inf", "-inf", "nan". Version-1 stores are read as they are; the first write
migrates them (every line rewritten in format 2, atomically, then
``store.json`` written). A store of a newer format is refused with a StoreError.

The store only stores: it computes nothing and knows no codec or metric.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import platform
import socket
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from codecbench.errors import StoreError
from codecbench.files import atomic_write_bytes
from codecbench.metrics import METRICS
from codecbench.values import from_json_number, join_nonfinite, split_nonfinite

FORMAT = "codecbench-results"
FORMAT_VERSION = 2
FORMAT_FILE = "store.json"
CELLS_FILE = "cells.jsonl"
DAMAGED_FILE = "cells.damaged.jsonl"  # lines moved out of cells.jsonl by `codecbench store repair`
RUNS_DIR = "runs"
CROPS_DIR = "crops"
APPEND_LOCK = ".append.lock"  # flock'd around every append (concurrent runs, codecbench.claims)

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


def _parse_line(line: bytes, version: int = FORMAT_VERSION) -> tuple[dict[str, Any], None] | tuple[None, str]:
    """(row, None) for a readable line of cells.jsonl in format ``version``, else (None, what is wrong with it)."""
    try:
        row = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    except json.JSONDecodeError as exc:
        return None, f"not a JSON row ({exc})"
    if not isinstance(row, dict):
        return None, f"not a JSON object but {type(row).__name__}"
    missing = [column for column in KEY_COLUMNS if column not in row]
    if missing:
        return None, f"a row without {', '.join(missing)}"
    if version == 1:
        row = {key: from_json_number(value) for key, value in row.items()}
    elif not isinstance(row.get("nonfinite") or {}, dict):
        return None, "a row whose nonfinite entry is not an object"
    else:
        row = join_nonfinite(row)
    try:
        cell_key(row)
    except (TypeError, ValueError) as exc:
        return None, f"a row whose setting or target is not a number ({exc})"
    return row, None


def _encode_row(row: dict[str, Any]) -> str:
    return json.dumps(split_nonfinite(row), default=_json_default, separators=(",", ":"), sort_keys=False)


class ResultsStore:
    """One results directory. Writes are append-only; reads return the latest row per cell."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.cells_path = self.root / CELLS_FILE
        self._followed: tuple[int, int, int] = (-1, 0, 0)  # (inode, lines, byte offset) read by rows_after

    # -- format ------------------------------------------------------------
    def format_version(self) -> int | None:
        """The store's format version: from ``store.json``, 1 for an older store without it, None if empty."""
        path = self.root / FORMAT_FILE
        if not path.exists():
            return 1 if self.cells_path.exists() else None
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            version = int(document["format_version"])
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise StoreError(f"{path}: not a codecbench store format file ({exc})") from None
        if document.get("format") != FORMAT or version > FORMAT_VERSION:
            raise StoreError(f"{path}: format {document.get('format')!r} version {version}; this codecbench reads "
                             f"{FORMAT!r} up to version {FORMAT_VERSION} (upgrade codecbench)")
        return version

    def _readable_version(self) -> int:
        return self.format_version() or FORMAT_VERSION

    def _ensure_current_format(self) -> None:
        """Before a write: mark a new store as format 2, or migrate a format-1 store (every row rewritten)."""
        version = self.format_version()
        if version == FORMAT_VERSION:
            return
        if version == 1:
            rows = list(self.iter_raw_rows())  # a damaged line stops the migration with its StoreError
            atomic_write_bytes(self.cells_path, "".join(_encode_row(row) + "\n" for row in rows).encode("utf-8"))
        atomic_write_bytes(self.root / FORMAT_FILE,
                           json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION}).encode() + b"\n")

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
        with open(self.root / APPEND_LOCK, "a") as lock:  # two runs on one directory append in turn
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._repair_tail()
            self._ensure_current_format()
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
    def _lines(self) -> list[bytes]:
        with open(self.cells_path, "rb") as f:
            return f.readlines()

    def iter_raw_rows(self) -> Iterator[dict[str, Any]]:
        """Every stored row in file order; a damaged last line is skipped, damage elsewhere is a StoreError.

        The error names the file and line and points at ``codecbench store repair``.
        """
        if not self.cells_path.exists():
            return
        lines = self._lines()
        version = self._readable_version()
        for number, line in enumerate(lines, 1):
            row, problem = _parse_line(line, version)
            if problem is None:
                yield row
            elif number == len(lines) and not line.endswith(b"\n"):
                return  # a write cut off by a kill: the cell was not finished
            else:
                raise StoreError(f"{self.cells_path}:{number}: {problem}; `codecbench store repair {self.root}` "
                                 f"moves damaged lines to {DAMAGED_FILE}")

    def rows_after(self, line_count: int) -> tuple[list[dict[str, Any]], int]:
        """The rows of the complete lines after the first ``line_count``, and the count of complete lines now.

        For following a store that another run appends to: a line still being written is left for the
        next call. Reads only what was appended since the previous call on this instance, unless the
        file was replaced meanwhile (a format migration, a repair).
        """
        if not self.cells_path.exists():
            return [], 0
        with open(self.cells_path, "rb") as f:
            inode = os.fstat(f.fileno()).st_ino
            seen, offset = (line_count, self._followed[2]) if self._followed[:2] == (inode, line_count) else (0, 0)
            f.seek(offset)
            lines = f.read().split(b"\n")[:-1]  # the piece after the last newline is not a complete line
        version = self._readable_version()
        rows = []
        for number, line in enumerate(lines, seen + 1):
            offset += len(line) + 1
            if number <= line_count:
                continue
            row, problem = _parse_line(line, version)
            if problem is not None:
                raise StoreError(f"{self.cells_path}:{number}: {problem}; `codecbench store repair {self.root}` "
                                 f"moves damaged lines to {DAMAGED_FILE}")
            rows.append(row)
        self._followed = (inode, seen + len(lines), offset)
        return rows, seen + len(lines)

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

    def repair(self) -> tuple[int, list[int]]:
        """Move every unreadable line of ``cells.jsonl`` to ``cells.damaged.jsonl``; (rows kept, moved line numbers).

        Nothing is deleted: each moved line is appended to the side file as
        ``{"line": N, "text": "..."}`` (bytes that are not UTF-8 are replaced
        by U+FFFD in ``text`` and kept exactly, base64, in ``bytes_b64``), and
        fsync'd, before ``cells.jsonl`` is atomically replaced by its readable lines.
        """
        if not self.cells_path.exists():
            raise StoreError(f"{self.root}: no {CELLS_FILE} here")
        kept: list[bytes] = []
        moved: list[dict[str, Any]] = []
        version = self._readable_version()
        for number, line in enumerate(self._lines(), 1):
            _, problem = _parse_line(line, version)
            if problem is None:
                kept.append(line if line.endswith(b"\n") else line + b"\n")
            else:
                body = line.rstrip(b"\n")
                moved.append({"line": number, "problem": problem, "text": body.decode("utf-8", "replace"),
                              "bytes_b64": base64.b64encode(body).decode("ascii"), "moved_at": utc_now()})
        if moved:
            with open(self.root / DAMAGED_FILE, "a", encoding="utf-8") as f:
                f.write("".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in moved))
                f.flush()
                os.fsync(f.fileno())
            atomic_write_bytes(self.cells_path, b"".join(kept))
        return len(kept), [entry["line"] for entry in moved]


def open_existing(root: str | Path) -> ResultsStore:
    """Open a results directory for reading; StoreError if it holds no results."""
    store = ResultsStore(root)
    if not store.root.is_dir():
        raise StoreError(f"{store.root}: no such results directory")
    if not store.exists():
        raise StoreError(f"{store.root}: no {CELLS_FILE} here; run `codecbench run -o {store.root}` first")
    return store


def new_run_id() -> str:
    """A sortable, unique run id: UTC time plus host and pid."""
    now = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
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
    return datetime.now(UTC).isoformat(timespec="seconds")
