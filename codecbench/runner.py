"""Sweeps: run every (image, codec, setting) cell of a benchmark and store the rows.

The runner only orchestrates: codecs encode and decode (``codecbench.codec``),
metrics measure (``codecbench.metrics``), the store stores
(``codecbench.store``). A cell that fails (codec error, timeout, bad image)
becomes a row with its ``error`` message and the sweep goes on; rows are
appended as cells finish, so a killed run loses only the cells in flight, and
a rerun computes only the cells that are missing (or failed, or lack a
requested metric).

Rate-targeted cells (``target_bpp``): the codec's setting is searched by
bisection, assuming bpp is monotonic in the setting, for the highest-quality
setting whose bpp is **at or below** the target; when even the lowest-quality
setting is above the target, that setting is used and the row's
``extra.target_met`` is false.

Timing: ``encode_s``/``decode_s`` are wall-clock seconds (``time.perf_counter``)
of one ``encode``/``decode`` call of the codec, excluding image loading and
metrics.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any

import numpy as np

from codecbench import __version__
from codecbench.codec import Codec
from codecbench.data.images import pixel_sha256
from codecbench.data.items import Dataset, ImageItem
from codecbench.errors import CodecbenchError, CodecError, ImageError
from codecbench.previews import centre_crop, png_bytes, preview_png
from codecbench.store import ResultsStore, cell_key, machine_info, new_run_id, utc_now

#: Bisection steps for continuous settings in rate-targeted search.
MAX_SEARCH_STEPS = 24


@dataclass(frozen=True)
class Cell:
    """One unit of work; picklable, sent to worker processes."""

    item: ImageItem
    image_sha256: str
    width: int
    height: int
    codec: str
    codec_version: str
    setting: float | None
    target_bpp: float | None
    save_crop: bool

    def key(self) -> tuple:
        return cell_key(self.row_identity())

    def row_identity(self) -> dict[str, Any]:
        return {
            "dataset": self.item.dataset, "image": self.item.name, "image_sha256": self.image_sha256,
            "width": self.width, "height": self.height, "codec": self.codec,
            "codec_version": self.codec_version, "setting": self.setting, "target_bpp": self.target_bpp,
        }


@dataclass
class RunSummary:
    run_id: str
    total_cells: int
    skipped_cells: int = 0
    done_cells: int = 0
    failed_cells: int = 0
    failures: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # run-level: unavailable codecs, unreadable images
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return not self.failed_cells and not self.problems and not self.interrupted


# ---------------------------------------------------------------------------
# Work done in a worker (or in-process with one job)

_worker_codecs: dict[str, Codec] = {}
_worker_image: tuple[tuple[str, int | None], np.ndarray] | None = None
_worker_config: dict[str, Any] = {}


def _init_worker(codec_options: dict[str, dict[str, Any]], metric_names: Sequence[str], torch_threads: int) -> None:
    global _worker_config
    _worker_codecs.clear()
    _worker_config = {"codec_options": codec_options, "metrics": tuple(metric_names)}
    _limit_torch_threads(torch_threads)


def _limit_torch_threads(threads: int) -> None:
    if "torch" not in sys.modules and not threads:
        return
    import torch

    if threads:
        torch.set_num_threads(threads)


def _codec(name: str) -> Codec:
    from codecbench import registry

    if name not in _worker_codecs:
        _worker_codecs[name] = registry.create(name, **_worker_config["codec_options"].get(name, {}))
    return _worker_codecs[name]


def _image(item: ImageItem) -> np.ndarray:
    global _worker_image
    ident = (item.path, item.index)
    if _worker_image is None or _worker_image[0] != ident:
        _worker_image = (ident, item.load())
    return _worker_image[1]


def _timed_round_trip(codec: Codec, image: np.ndarray, setting: float | int) -> tuple[bytes, np.ndarray, float, float]:
    start = time.perf_counter()
    data = codec.encode(image, setting)
    encoded = time.perf_counter()
    decoded = codec.decode(data)
    decode_s = time.perf_counter() - encoded
    if not isinstance(decoded, np.ndarray) or decoded.shape != image.shape or decoded.dtype != np.uint8:
        raise CodecError(
            f"decoded image has shape {getattr(decoded, 'shape', None)} dtype {getattr(decoded, 'dtype', None)}, "
            f"expected {image.shape} uint8"
        )
    return data, decoded, encoded - start, decode_s


def bits_per_pixel(n_bytes: int, width: int, height: int) -> float:
    """bpp = 8 × bytes of the stored bitstream / (width × height of the original image)."""
    return 8.0 * n_bytes / (width * height)


def _search_target(codec: Codec, image: np.ndarray, target: float) -> tuple[float | int, tuple, dict[str, Any]]:
    """Highest-quality setting with bpp ≤ target (bisection); returns (setting, round-trip, info)."""
    spec = codec.setting
    height, width = image.shape[:2]
    tried: dict[float, tuple] = {}

    def trial(value: float | int) -> float:
        value = spec.validate(value)
        if value not in tried:
            tried[value] = _timed_round_trip(codec, image, value)
        return bits_per_pixel(len(tried[value][0]), width, height)

    # q maps "quality position" 0..1 onto the setting, low quality at 0.
    worst, best = (spec.low, spec.high) if spec.higher_is_better else (spec.high, spec.low)
    if trial(worst) > target:
        return spec.validate(worst), tried[spec.validate(worst)], {"target_met": False, "search_steps": len(tried)}
    if trial(best) <= target:
        return spec.validate(best), tried[spec.validate(best)], {"target_met": True, "search_steps": len(tried)}
    ok, bad = worst, best  # bpp(ok) ≤ target < bpp(bad)
    log_scale = not spec.integer and spec.low > 0 and spec.high / spec.low > 10
    for _ in range(MAX_SEARCH_STEPS):
        if spec.integer:
            if abs(bad - ok) <= 1:
                break
            mid = (ok + bad) // 2 if ok < bad else (ok + bad + 1) // 2
        else:
            mid = math.sqrt(ok * bad) if log_scale else (ok + bad) / 2
        if trial(mid) <= target:
            ok = mid
        else:
            bad = mid
    chosen = spec.validate(ok)
    return chosen, tried[chosen], {"target_met": True, "search_steps": len(tried)}


def execute_cell(cell: Cell) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Run one cell: encode, decode, measure. Returns (row, crops as PNG bytes by label)."""
    from codecbench import metrics

    row: dict[str, Any] = cell.row_identity()
    crops: dict[str, bytes] = {}
    try:
        codec = _codec(cell.codec)
        image = _image(cell.item)
        extra: dict[str, Any] = {}
        if cell.target_bpp is not None:
            setting, result, extra = _search_target(codec, image, cell.target_bpp)
            row["setting"] = setting
        else:
            setting = codec.setting.validate(cell.setting)
            result = _timed_round_trip(codec, image, setting)
        data, decoded, encode_s, decode_s = result
        row.update(bytes=len(data), bpp=bits_per_pixel(len(data), cell.width, cell.height),
                   encode_s=encode_s, decode_s=decode_s)
        row.update(metrics.compute(image, decoded, _worker_config["metrics"]))
        extra.update(codec.bitstream_stats(data, cell.width, cell.height))
        row["extra"] = extra or None
        row["error"] = None
        if cell.save_crop:
            from codecbench.store import ResultsStore

            crops[ResultsStore.crop_label(cell.codec, cell.setting, cell.target_bpp)] = preview_png(decoded)
    except Exception as exc:  # a failing cell is recorded, never fatal
        row["error"] = _error_message(exc)
    row["finished_at"] = utc_now()
    return row, crops


def _error_message(exc: BaseException) -> str:
    if isinstance(exc, (CodecbenchError, ValueError)):
        return f"{type(exc).__name__}: {exc}"
    where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    location = f" (at {os.path.basename(where.filename)}:{where.lineno})" if where else ""
    return f"{type(exc).__name__}: {exc}{location}"


# ---------------------------------------------------------------------------
# Orchestration in the main process


@dataclass
class SweepPlan:
    cells: list[Cell]
    image_checksums: dict[str, dict[str, str]]  # dataset -> image name -> pixel sha256
    codec_versions: dict[str, str]
    problems: list[str]
    bad_images: list[dict[str, Any]]  # rows recording unreadable images
    preview_originals: dict[str, np.ndarray]  # pixel sha256 -> centre crop of a preview image


def plan_sweep(
    datasets: Sequence[Dataset],
    codecs: dict[str, Codec],
    settings: dict[str, Sequence[float]],
    target_bpp: Sequence[float] = (),
    preview_images: int = 2,
) -> SweepPlan:
    """Load and identify every image (once), then list the cells of the sweep, image-major."""
    cells: list[Cell] = []
    checksums: dict[str, dict[str, str]] = {}
    bad: list[dict[str, Any]] = []
    problems: list[str] = []
    previews: dict[str, np.ndarray] = {}
    versions = {name: codec.version() for name, codec in codecs.items()}
    for dataset in datasets:
        checksums[dataset.name] = {}
        for index, item in enumerate(dataset.items):
            try:
                image = item.load()
            except ImageError as exc:
                problems.append(str(exc))
                bad.append({"dataset": item.dataset, "image": item.name, "image_sha256": f"unreadable:{item.name}",
                            "codec": None, "codec_version": None, "setting": None, "target_bpp": None,
                            "error": f"ImageError: {exc}", "finished_at": utc_now()})
                continue
            sha = pixel_sha256(image)
            expected = dataset.checksums.get(item.name)
            if expected and expected != sha:
                message = f"{item.path}: pixel checksum {sha[:16]}… differs from the registered {expected[:16]}…"
                problems.append(message)
                bad.append({"dataset": item.dataset, "image": item.name, "image_sha256": f"unreadable:{item.name}",
                            "codec": None, "codec_version": None, "setting": None, "target_bpp": None,
                            "error": f"ChecksumError: {message}", "finished_at": utc_now()})
                continue
            checksums[dataset.name][item.name] = sha
            height, width = image.shape[:2]
            save_crop = index < preview_images
            if save_crop:
                previews[sha] = centre_crop(image)
            for name, codec in codecs.items():
                base = dict(item=item, image_sha256=sha, width=width, height=height, codec=name,
                            codec_version=versions[name], save_crop=save_crop)
                for setting in settings[name]:
                    cells.append(Cell(setting=float(setting), target_bpp=None, **base))
                for target in target_bpp:
                    cells.append(Cell(setting=None, target_bpp=float(target), **base))
    return SweepPlan(cells, checksums, versions, problems, bad, previews)


def cells_to_run(plan: SweepPlan, store: ResultsStore, metric_names: Sequence[str], force: bool) -> list[Cell]:
    """The planned cells without a stored successful row that has every requested metric."""
    if force:
        return list(plan.cells)
    done = {
        cell_key(row)
        for row in store.rows()
        if not row.get("error") and all(row.get(name) is not None for name in metric_names)
    }
    return [cell for cell in plan.cells if cell.key() not in done]


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
    preview_images: int = 2,
    command: Sequence[str] | None = None,
    problems: Sequence[str] = (),
    progress: bool = True,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> RunSummary:
    """Plan, skip what is stored, run the rest (``jobs`` processes), append rows as they finish."""
    from tqdm import tqdm

    codec_options = codec_options or {}
    run_id = new_run_id()
    plan = plan_sweep(datasets, codecs, settings, target_bpp, preview_images)
    todo = cells_to_run(plan, store, metric_names, force)
    summary = RunSummary(run_id, total_cells=len(plan.cells), skipped_cells=len(plan.cells) - len(todo),
                         problems=list(problems) + plan.problems)
    manifest = {
        "run_id": run_id, "command": list(command or sys.argv), "started_at": utc_now(),
        "codecbench_version": __version__, "libraries": _library_versions(), "machine": machine_info(),
        "datasets": plan.image_checksums, "codecs": plan.codec_versions, "codec_options": codec_options,
        "settings": {k: list(v) for k, v in settings.items()}, "target_bpp": list(target_bpp),
        "metrics": list(metric_names), "jobs": jobs, "torch_threads": torch_threads,
        "cells_planned": len(plan.cells), "cells_to_run": len(todo),
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
        store.append(row)
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

    try:
        if jobs <= 1:
            _init_worker(codec_options, metric_names, torch_threads)
            _worker_codecs.update(codecs)  # reuse the instances already created
            for cell in todo:
                record(*execute_cell(cell))
        else:
            _run_parallel(todo, jobs, codec_options, metric_names, torch_threads, record)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        bar.close()
        manifest.update(finished_at=utc_now(), cells_done=summary.done_cells, cells_failed=summary.failed_cells,
                        interrupted=summary.interrupted, problems=summary.problems)
        store.write_manifest(run_id, manifest)
    return summary


def _run_parallel(todo: list[Cell], jobs: int, codec_options: dict, metric_names: Sequence[str],
                  torch_threads: int, record: Callable) -> None:
    """Keep ``jobs`` worker processes busy with a bounded number of cells in flight, in plan order.

    A worker that dies (e.g. a codec library crashes the process) fails only the
    cells in flight; a fresh pool takes over the rest.
    """
    context = get_context("spawn")  # no fork: torch and codec libraries are not fork-safe
    pending = iter(todo)
    while True:
        broken = False
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker,
                                 initargs=(codec_options, tuple(metric_names), torch_threads)) as pool:
            in_flight: dict[Any, Cell] = {}
            try:
                while True:
                    while len(in_flight) < 2 * jobs and not broken:
                        cell = next(pending, None)
                        if cell is None:
                            break
                        try:
                            in_flight[pool.submit(execute_cell, cell)] = cell
                        except BrokenProcessPool:  # a worker died since the last result: resubmit later
                            broken = True
                            pending = itertools.chain([cell], pending)
                    if not in_flight:
                        return
                    finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in finished:
                        cell = in_flight.pop(future)
                        try:
                            record(*future.result())
                        except BrokenProcessPool as exc:
                            broken = True
                            record(_failed_row(cell, f"worker process died ({exc})"), {})
                    if broken and not in_flight:
                        break
            except BaseException:
                for future in in_flight:
                    future.cancel()
                raise


def _failed_row(cell: Cell, message: str) -> dict[str, Any]:
    return dict(cell.row_identity(), error=message, finished_at=utc_now())
