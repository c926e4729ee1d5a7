"""Merging results directories (``codecbench merge``): shards of one sweep, or runs on different machines.

Every row of every input is kept except exact duplicates: two rows of one cell (same key:
dataset, image pixels, codec, codec version, setting or target) are *identical* when every
column but the timing and provenance ones (``encode_s``, ``decode_s``, ``run_id``,
``finished_at``) is equal, and then only the first is written. Two *successful* rows of one cell
that differ elsewhere (other bytes, bpp or metric values: a non-deterministic codec, or another
library build behind the same version string) are a *conflict*: both are written, the conflict is
reported, and the later one (from the later input directory) is the one every command reads. For
each cell, failed rows are written before successful ones, so a result from any input wins over
a failure from another. Run manifests, preview crops, kept blobs and lines moved aside by
``store repair`` are copied too; nothing is deleted or changed in the inputs.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codecbench.errors import UsageError
from codecbench.store import CROPS_DIR, DAMAGED_FILE, RUNS_DIR, ResultsStore, cell_key, open_existing

#: Columns that differ between two computations of the same result (timing, provenance).
TIMING_COLUMNS = ("encode_s", "decode_s", "run_id", "finished_at")
#: Folders copied file by file (a file already in the output with other content is a conflict).
COPIED_FOLDERS = (RUNS_DIR, CROPS_DIR, "blobs")


@dataclass
class MergeSummary:
    rows_read: dict[str, int] = field(default_factory=dict)  # input directory -> rows
    rows_written: int = 0
    cells: int = 0
    identical_dropped: int = 0
    conflicts: list[str] = field(default_factory=list)
    files_copied: int = 0


def result_content(row: dict[str, Any]) -> dict[str, Any]:
    """A row without its timing and provenance columns: what two identical computations share."""
    return {column: value for column, value in row.items() if column not in TIMING_COLUMNS}


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _describe(row: dict[str, Any]) -> str:
    what = (f"target {float(row['target_bpp']):g} bpp" if row.get("target_bpp") is not None
            else f"setting {float(row['setting']):g}")
    return f"{row['codec']} {what} on {row['dataset']}/{row.get('image')}"


def _copy_tree(source: Path, target: Path, summary: MergeSummary) -> None:
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        destination = target / path.relative_to(source)
        if not destination.exists():
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
            summary.files_copied += 1
        elif destination.read_bytes() != path.read_bytes():
            summary.conflicts.append(f"{path} differs from {destination}, copied from an earlier input; "
                                     "the earlier copy is kept")


def merge_results(sources: list[str | Path], target: str | Path) -> MergeSummary:
    """Merge the results directories ``sources`` into the new directory ``target``; see the module docstring."""
    stores = [open_existing(source) for source in sources]
    output = ResultsStore(target)
    if output.exists():
        raise UsageError(f"-o {output.root}: already holds results ({output.cells_path.name}); merge into a new "
                         "directory (name this one among the inputs to include it)")
    summary = MergeSummary()
    histories: dict[tuple, list[tuple[dict[str, Any], Path]]] = {}  # cell key -> distinct (row, its input)
    for store in stores:
        count = 0
        for row in store.iter_raw_rows():
            count += 1
            entries = histories.setdefault(cell_key(row), [])
            if any(_same(result_content(row), result_content(kept)) for kept, _ in entries):
                summary.identical_dropped += 1
                continue
            entries.append((row, store.root))
        summary.rows_read[str(store.root)] = count
    rows: list[dict[str, Any]] = []
    for entries in histories.values():
        failed = [row for row, _ in entries if row.get("error")]
        results = [(row, source) for row, source in entries if not row.get("error")]
        if len(results) > 1:
            first = result_content(results[0][0])
            differing = sorted({column for row, _ in results[1:] for column, value in result_content(row).items()
                                if not _same({"v": value}, {"v": first.get(column)})})
            summary.conflicts.append(f"{_describe(results[0][0])}: {len(results)} different results (columns "
                                     f"{', '.join(differing)}) in {', '.join(str(source) for _, source in results)}"
                                     f"; the one from {results[-1][1]} is read")
        rows.extend(failed + [row for row, _ in results])
    output.append(rows)
    summary.rows_written, summary.cells = len(rows), len(histories)
    for store in stores:
        for folder in COPIED_FOLDERS:
            if (store.root / folder).is_dir():
                _copy_tree(store.root / folder, output.root / folder, summary)
        damaged = store.root / DAMAGED_FILE
        if damaged.is_file():
            with open(output.root / DAMAGED_FILE, "ab") as f:
                f.write(damaged.read_bytes())
    return summary
