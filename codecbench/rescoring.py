"""Re-scoring: add metric columns to stored rows from their kept outputs, without encoding again.

A row can be rescored when its run kept its outputs (``run --keep-decoded``,
:mod:`codecbench.blobs`) and its original image can be found: the row's
dataset is resolved as ``run`` resolves it, and the image is matched by the
SHA-256 of its pixels. The decoded image is read from the kept PNG; if that
file is missing or damaged, the kept bitstream is decoded by the codec, when
the installed codec has the row's version. Cells that cannot be rescored are
listed with the reason; nothing about them changes.

Each rescored cell is appended as a new complete row (the latest row of a
cell wins), fsync'd as it finishes, with ``extra.rescored_by`` naming the
rescore run (its manifest is in ``runs/``). Killing a rescore loses only the
cells in flight; running it again computes only the rows still lacking a
requested metric (``force`` recomputes them all). ``jobs`` > 1 computes in
that many worker processes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from codecbench import blobs
from codecbench.data.items import ImageItem
from codecbench.errors import CodecbenchError, StoreError
from codecbench.store import ResultsStore, machine_info, new_run_id, utc_now


@dataclass(frozen=True)
class RescoreTask:
    """One row to rescore; picklable, sent to worker processes."""

    row: dict[str, Any]
    original: ImageItem
    results_root: str
    metric_names: tuple[str, ...]


@dataclass
class RescoreSummary:
    run_id: str
    rows: int  # successful cells in the store
    complete: int = 0  # already had every requested metric
    rescored: int = 0
    failed: list[str] = field(default_factory=list)  # cells whose rescoring raised, with the error
    cannot: dict[str, list[str]] = field(default_factory=dict)  # reason -> cells
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cannot and not self.interrupted


def describe(row: dict[str, Any]) -> str:
    """``codec setting S on dataset/image`` (or ``target T bpp``)."""
    what = f"setting {row['setting']:g}" if row.get("target_bpp") is None else f"target {row['target_bpp']:g} bpp"
    return f"{row['codec']} {what} on {row['dataset']}/{row['image']}"


def find_originals(specs: Sequence[str], resolve: Callable[[str], Any]) -> tuple[dict, dict[str, str]]:
    """({(dataset, pixel sha256): ImageItem}, {dataset: why it cannot be read}) for the datasets named by rows."""
    from codecbench.data.images import pixel_sha256

    found: dict[tuple[str, str], ImageItem] = {}
    unreadable: dict[str, str] = {}
    for spec in specs:
        try:
            dataset = resolve(spec)
        except CodecbenchError as exc:
            unreadable[spec] = f"dataset {spec} cannot be resolved ({exc})"
            continue
        for item in dataset.items:
            try:
                found.setdefault((spec, pixel_sha256(item.load())), item)
            except CodecbenchError:
                continue  # an unreadable image has no rows to rescore
    return found, unreadable


def plan_rescore(rows: Sequence[dict[str, Any]], metric_names: Sequence[str], results_root: Path,
                 resolve: Callable[[str], Any], force: bool, summary: RescoreSummary) -> list[RescoreTask]:
    """The rows to rescore; rows already complete are counted, rows that cannot be rescored are listed."""
    candidates = [row for row in rows if row.get("codec") and not row.get("error")]
    summary.rows = len(candidates)
    todo = [row for row in candidates if force or any(row.get(name) is None for name in metric_names)]
    summary.complete = len(candidates) - len(todo)
    keeping = [row for row in todo if blobs.kept(row)]
    for row in todo:
        if not blobs.kept(row):
            summary.cannot.setdefault("no kept outputs (the run that computed it had no --keep-decoded)",
                                      []).append(describe(row))
    originals, unreadable = find_originals(sorted({row["dataset"] for row in keeping}), resolve)
    tasks = []
    for row in keeping:
        item = originals.get((row["dataset"], row["image_sha256"]))
        if item is None:
            reason = unreadable.get(row["dataset"]) or (
                f"original image not found in dataset {row['dataset']} (no image with its pixels)")
            summary.cannot.setdefault(reason, []).append(describe(row))
        else:
            tasks.append(RescoreTask(row, item, str(results_root), tuple(metric_names)))
    return tasks


_original: tuple[tuple[str, int | None], np.ndarray] | None = None


def _decoded(task: RescoreTask) -> np.ndarray:
    """The kept decoded image, else the kept bitstream decoded by the installed codec of the same version."""
    from codecbench import registry

    store, kept = blobs.BlobStore(task.results_root), blobs.kept(task.row)
    problem = "no kept decoded image"
    if blobs.DECODED in kept:
        try:
            return store.decoded(kept[blobs.DECODED])
        except StoreError as exc:
            problem = str(exc)
    if blobs.BITSTREAM not in kept:
        raise StoreError(f"{problem}, and no kept bitstream")
    codec = registry.create(task.row["codec"])
    if codec.version() != task.row["codec_version"]:
        raise StoreError(f"{problem}; the kept bitstream was made by {task.row['codec_version']}, "
                         f"the installed codec is {codec.version()}")
    return codec.decode(store.read(blobs.BITSTREAM, kept[blobs.BITSTREAM]))


def rescore_cell(task: RescoreTask) -> tuple[dict[str, Any], dict[str, float] | None, str | None]:
    """(row, metric values, None) or (row, None, error) for one task; never raises."""
    global _original
    from codecbench import metrics
    from codecbench.execution import error_message

    try:
        ident = (task.original.path, task.original.index)
        if _original is None or _original[0] != ident:
            _original = (ident, task.original.load())
        return task.row, metrics.compute(_original[1], _decoded(task), task.metric_names), None
    except Exception as exc:  # one cell's failure never stops the others
        return task.row, None, error_message(exc)


def _results(tasks: list[RescoreTask], jobs: int):
    """(row, values, error) as tasks finish: in this process, or ``jobs`` workers with 2·jobs tasks in flight."""
    if jobs <= 1:
        yield from map(rescore_cell, tasks)
        return
    pending = iter(tasks)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        in_flight = set()
        try:
            while True:
                while len(in_flight) < 2 * jobs and (task := next(pending, None)) is not None:
                    in_flight.add(pool.submit(rescore_cell, task))
                if not in_flight:
                    return
                finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
        except BaseException:
            for future in in_flight:
                future.cancel()
            raise


def rescore(store: ResultsStore, metric_names: Sequence[str], resolve: Callable[[str], Any], *, jobs: int = 1,
            force: bool = False, command: Sequence[str] | None = None, progress: bool = True) -> RescoreSummary:
    """Add ``metric_names`` to the stored rows from their kept outputs (see the module docstring)."""
    from tqdm import tqdm

    summary = RescoreSummary(new_run_id(), rows=0)
    tasks = plan_rescore(store.rows(), metric_names, store.root, resolve, force, summary)
    tasks.sort(key=lambda task: (task.original.path, task.original.index or 0))  # one image load per worker run
    manifest = {"run_id": summary.run_id, "kind": "rescore", "command": list(command or sys.argv),
                "started_at": utc_now(), "machine": machine_info(), "metrics": list(metric_names), "jobs": jobs,
                "cells_to_rescore": len(tasks), "cells_complete": summary.complete,
                "not_rescored": {reason: len(cells) for reason, cells in summary.cannot.items()}}
    store.write_manifest(summary.run_id, manifest)
    bar = tqdm(total=len(tasks), unit="cell", disable=not progress, file=sys.stderr, dynamic_ncols=True,
               desc="rescoring")
    try:
        for row, values, error in _results(tasks, jobs):
            if error:
                summary.failed.append(f"{describe(row)}: {error}")
            else:
                extra = dict(row.get("extra") or {}, rescored_by=summary.run_id)
                store.append(dict(row, **values, extra=extra))
                summary.rescored += 1
            bar.update(1)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
        manifest.update(finished_at=utc_now(), cells_rescored=summary.rescored, cells_failed=len(summary.failed),
                        interrupted=summary.interrupted)
        store.write_manifest(summary.run_id, manifest)
    return summary

