"""Sweeps: plan every (image, codec, setting) cell of a benchmark, compute the missing ones, store the rows.

The runner only orchestrates: cells are computed by an executor
(:mod:`codecbench.workers`: worker processes at every ``-j``, or inline with
``--in-process``) running :func:`codecbench.execution.execute_cell`; the driver
alone writes the store (:mod:`codecbench.store`). A cell that fails (codec
error, crash, timeout, bad image) becomes a row with its ``error`` message and
the sweep goes on; rows are appended as cells finish, so a killed run loses
only the cells in flight, and a rerun computes only the cells that are
missing, or failed, or lack a requested metric.

Retries: a cell that failed with an exception is computed again on every
run. A cell whose worker crashed or timed out (``extra.failure``) is retried
once, on the next run; after two such failures in a row it is left alone and
listed as a problem until ``retry_failed`` (``--retry-failed``) forces it.

Identical pixels: an image is identified by the SHA-256 of its pixels, so two
files of one dataset with identical pixels are one image. It is measured
once, under the first name (sorted), and the run warns with every name.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from codecbench import __version__
from codecbench.blobs import OUTPUTS_KEY, BlobStore
from codecbench.claims import CellClaims, ClaimedCells, Shard
from codecbench.codec import Codec
from codecbench.dask_executor import DaskCluster, DaskExecutor
from codecbench.data.images import pixel_sha256
from codecbench.data.items import Dataset
from codecbench.errors import ImageError
from codecbench.execution import Cell
from codecbench.previews import centre_crop, png_bytes
from codecbench.store import ResultsStore, cell_key, machine_info, new_run_id, utc_now
from codecbench.workers import InlineExecutor, WorkerConfig, WorkerPool

#: Failures (``extra.failure``) of a worker rather than of the codec's code: retried once, not forever.
WORKER_FAILURES = ("crash", "timeout")


@dataclass
class RunSummary:
    run_id: str
    total_cells: int
    skipped_cells: int = 0
    done_cells: int = 0
    failed_cells: int = 0
    failures: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # run-level: unavailable codecs, unreadable images
    warnings: list[str] = field(default_factory=list)  # run-level, not failures: merged duplicate images
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed_cells and not self.problems and not self.interrupted


@dataclass
class SweepPlan:
    cells: list[Cell]
    image_checksums: dict[str, dict[str, str]]  # dataset -> image name -> pixel sha256
    codec_versions: dict[str, str]
    problems: list[str]
    warnings: list[str]
    bad_images: list[dict[str, Any]]  # rows recording unreadable images
    preview_originals: dict[str, np.ndarray]  # pixel sha256 -> centre crop of a preview image


def _image_row(item, error: str) -> dict[str, Any]:
    return {"dataset": item.dataset, "image": item.name, "image_sha256": f"unreadable:{item.name}",
            "codec": None, "codec_version": None, "setting": None, "target_bpp": None,
            "error": error, "finished_at": utc_now()}


def plan_sweep(
    datasets: Sequence[Dataset],
    codecs: dict[str, Codec],
    settings: dict[str, Sequence[float]],
    target_bpp: Sequence[float] = (),
    preview_images: int = 2,
    codec_versions: dict[str, str] | None = None,
) -> SweepPlan:
    """Load and identify every image (once), then list the cells of the sweep, image-major.

    ``codec_versions`` (codec name -> version) defaults to each codec's ``version()``.
    """
    cells: list[Cell] = []
    checksums: dict[str, dict[str, str]] = {}
    bad: list[dict[str, Any]] = []
    problems: list[str] = []
    warnings: list[str] = []
    previews: dict[str, np.ndarray] = {}
    versions = codec_versions if codec_versions is not None else {n: c.version() for n, c in codecs.items()}
    for dataset in datasets:
        warnings.extend(dataset.warnings)
        checksums[dataset.name] = {}
        names_by_sha: dict[str, list[str]] = {}
        for index, item in enumerate(dataset.items):
            try:
                image = item.load()
            except ImageError as exc:
                problems.append(str(exc))
                bad.append(_image_row(item, f"ImageError: {exc}"))
                continue
            sha = pixel_sha256(image)
            expected = dataset.checksums.get(item.name)
            if expected and expected != sha:
                message = f"{item.path}: pixel checksum {sha[:16]}… differs from the registered {expected[:16]}…"
                problems.append(message)
                bad.append(_image_row(item, f"ChecksumError: {message}"))
                continue
            names_by_sha.setdefault(sha, []).append(item.name)
            if len(names_by_sha[sha]) > 1:
                continue  # identical pixels: one image (see the module docstring)
            checksums[dataset.name][item.name] = sha
            height, width = image.shape[:2]
            save_crop = index < preview_images
            if save_crop:
                previews[sha] = centre_crop(image)
            for name in codecs:
                base = dict(item=item, image_sha256=sha, width=width, height=height, codec=name,
                            codec_version=versions[name], save_crop=save_crop)
                for setting in settings[name]:
                    cells.append(Cell(setting=float(setting), target_bpp=None, **base))
                for target in target_bpp:
                    cells.append(Cell(setting=None, target_bpp=float(target), **base))
        for names in names_by_sha.values():
            if len(names) > 1:
                warnings.append(f"{dataset.name}: {', '.join(names)} have identical pixels; measured once, "
                                f"as {names[0]}")
    return SweepPlan(cells, checksums, versions, problems, warnings, bad, previews)


def cells_to_run(plan: SweepPlan, stored: Sequence[dict[str, Any]], metric_names: Sequence[str], force: bool,
                 retry_failed: bool = False) -> tuple[list[Cell], list[str]]:
    """The planned cells to compute, and problems about the cells left alone.

    ``stored`` is every stored row in file order (:meth:`ResultsStore.iter_raw_rows`).
    A cell is computed unless its latest row succeeded with every requested
    metric, or its latest two rows are worker failures (crash or timeout) and
    ``retry_failed`` is off (see the module docstring).
    """
    if force:
        return list(plan.cells), []
    latest: dict[tuple, dict[str, Any]] = {}
    worker_failures: dict[tuple, int] = {}  # consecutive worker failures at the end of each cell's history
    for row in stored:
        key = cell_key(row)
        latest[key] = row
        failed = (row.get("extra") or {}).get("failure") in WORKER_FAILURES if row.get("error") else False
        worker_failures[key] = worker_failures.get(key, 0) + 1 if failed else 0
    todo: list[Cell] = []
    left: list[str] = []
    for cell in plan.cells:
        row = latest.get(cell.key())
        if row is not None and not row.get("error") and all(row.get(name) is not None for name in metric_names):
            continue
        if worker_failures.get(cell.key(), 0) >= 2 and not retry_failed:
            left.append(f"not retried, its worker failed twice: {cell.describe()}: {row['error']}")
            continue
        todo.append(cell)
    problems = left[:10] + ([f"… and {len(left) - 10} more not retried"] if len(left) > 10 else [])
    if left:
        problems.append(f"{len(left)} cell(s) crashed or timed out twice and were not retried; "
                        "--retry-failed runs them again")
    return todo, problems


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"codecbench": __version__}
    for package in ("numpy", "scipy", "pillow", "scikit-image", "torch", "torchvision", "pytorch-msssim", "lpips",
                    "glymur", "pillow-avif-plugin", "pillow-heif", "pillow-jxl-plugin", "constriction"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            pass
    return out


def cell_timeouts(codecs: dict[str, Codec], default_s: float | None = None,
                  per_codec: dict[str, float] | None = None) -> dict[str, float]:
    """Seconds allowed per cell of each codec (by its key in ``codecs``, a name or a variant label).

    ``per_codec`` (by key, or by the codec's registered name for all its variants), else ``default_s``,
    else the codec's ``cell_timeout_s``.
    """
    per_codec = per_codec or {}
    fallback = {key: default_s if default_s is not None else codec.cell_timeout_s for key, codec in codecs.items()}
    return {key: per_codec.get(key, per_codec.get(codec.name, fallback[key])) for key, codec in codecs.items()}


#: Environment variables that set the thread counts of numerical libraries, recorded in every manifest.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE")


def run_sweep(
    store: ResultsStore,
    datasets: Sequence[Dataset],
    codecs: dict[str, Codec],
    settings: dict[str, Sequence[float]],
    metric_names: Sequence[str],
    *,
    target_bpp: Sequence[float] = (),
    codec_options: dict[str, dict[str, Any]] | None = None,
    jobs: int = 1,
    torch_threads: int = 1,
    force: bool = False,
    retry_failed: bool = False,
    timeouts: dict[str, float] | None = None,
    in_process: bool = False,
    cluster: DaskCluster | None = None,
    shard: Shard | None = None,
    keep_decoded: bool = False,
    timing_repeats: int = 0,
    preview_images: int = 2,
    command: Sequence[str] | None = None,
    problems: Sequence[str] = (),
    progress: bool = True,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> RunSummary:
    """Plan, skip what is stored, compute the rest, append rows as they finish.

    Cells run in ``jobs`` worker processes (:class:`codecbench.workers.WorkerPool`),
    each cell limited to ``timeouts[codec]`` seconds (default: :func:`cell_timeouts`);
    ``in_process`` computes them in this process instead, without isolation or
    timeouts; ``cluster`` sends them to Dask (:mod:`codecbench.dask_executor`).
    ``shard`` keeps a deterministic part of the cells, and every cell is claimed
    before it is computed, so that concurrent runs on one directory split the
    work (:mod:`codecbench.claims`). ``timing_repeats`` R > 0 times each cell's
    round trip R more times after a warm-up (:mod:`codecbench.execution`).
    Reads the store first: a damaged store stops the run (StoreError) before any work.
    """
    from tqdm import tqdm

    codec_options = codec_options or {}
    limits = timeouts if timeouts is not None else cell_timeouts(codecs)
    config = WorkerConfig(codec_options, tuple(metric_names), torch_threads)
    stored, stored_lines = store.rows_after(0)  # the line count: rows other runs append later are seen
    versions = {name: codec.version() for name, codec in codecs.items()}
    if cluster is not None:
        executor = DaskExecutor(cluster, config, codecs)
    else:
        executor = InlineExecutor(config, codecs) if in_process else WorkerPool(jobs, config, limits.get)
    executor.start()  # workers import their libraries while the images are read
    try:
        run_id = new_run_id()
        plan = plan_sweep(datasets, codecs, settings, target_bpp, preview_images, versions)
        if shard is not None:
            plan.cells = [cell for cell in plan.cells if shard.picks(cell.key())]
        todo, not_retried = cells_to_run(plan, stored, metric_names, force, retry_failed)
        if keep_decoded:  # the computed cells' bitstreams and decoded images go to blobs/ (codecbench.blobs)
            todo = [replace(cell, keep_outputs=True) for cell in todo]
        if timing_repeats:
            todo = [replace(cell, timing_repeats=timing_repeats) for cell in todo]
        summary = RunSummary(run_id, total_cells=len(plan.cells), skipped_cells=len(plan.cells) - len(todo),
                             problems=list(problems) + plan.problems + not_retried, warnings=plan.warnings)
        manifest = {
            "run_id": run_id, "command": list(command or sys.argv), "started_at": utc_now(),
            "codecbench_version": __version__, "libraries": _library_versions(), "machine": machine_info(),
            "datasets": plan.image_checksums, "codecs": plan.codec_versions, "codec_options": codec_options,
            "settings": {k: list(v) for k, v in settings.items()}, "target_bpp": list(target_bpp),
            "metrics": list(metric_names), "jobs": jobs, "torch_threads": torch_threads,
            "thread_environment": {name: os.environ.get(name) for name in THREAD_VARIABLES},
            "timing_repeats": timing_repeats, "codec_load_s": {},
            "executor": cluster.describe() if cluster else "in-process" if in_process else "workers",
            "cell_timeouts": None if cluster else limits, "shard": str(shard) if shard else None,
            "cells_planned": len(plan.cells), "cells_to_run": len(todo), "keep_decoded": keep_decoded,
        }
        store.write_manifest(run_id, manifest)
        if plan.bad_images:
            store.append([dict(row, run_id=run_id) for row in plan.bad_images])
        for sha, crop in plan.preview_originals.items():
            if not store.crop_path(sha, "original").exists():
                store.save_crop(sha, "original", png_bytes(crop))

        bar = tqdm(total=len(todo), unit="cell", disable=not progress, file=sys.stderr, dynamic_ncols=True,
                   desc=f"{len(plan.cells)} cells, {summary.skipped_cells} stored")

        def record(row: dict[str, Any], crops: dict[str, bytes]) -> None:
            row["run_id"] = run_id
            outputs = row.pop(OUTPUTS_KEY, None)
            if outputs:
                row["extra"] = dict(row.get("extra") or {}, kept=BlobStore(store.root).keep(outputs))
            store.append(row)
            claimed.finished(cell_key(row))
            for label, png in crops.items():
                store.save_crop(row["image_sha256"], label, png)
            summary.done_cells += 1
            if row.get("error"):
                summary.failed_cells += 1
                setting = row["setting"] if row.get("target_bpp") is None else f"target {row['target_bpp']} bpp"
                summary.failures.append(f"{row['codec']} {setting} on {row['image']}: {row['error']}")
            bar.update(1)
            bar.set_postfix(failed=summary.failed_cells, refresh=False)
            if on_row:
                on_row(row)

        claimed = ClaimedCells(store, CellClaims(store.root, run_id), todo, stored_lines)
        try:
            executor.run(claimed, record)
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            claimed.claims.close()
            summary.warnings.extend(claimed.warnings())
            bar.close()
            manifest.update(codec_load_s=dict(executor.load_s),  # prepare() seconds, measured where codecs ran
                            finished_at=utc_now(), cells_done=summary.done_cells, cells_failed=summary.failed_cells,
                            interrupted=summary.interrupted, problems=summary.problems, warnings=summary.warnings)
            store.write_manifest(run_id, manifest)
    finally:
        executor.close()
    return summary
