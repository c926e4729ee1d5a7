"""The Dask executor: a sweep's cells computed on a ``dask.distributed`` cluster (``--executor dask``).

Same interface as :mod:`codecbench.workers` (``start()``, ``run(cells, record)``, ``close()``): Dask
workers only compute cells (:func:`codecbench.execution.execute_cell`), their rows stream back to the
driver as they finish, and the driver alone writes the store. The cluster is an existing scheduler
(``--scheduler tcp://HOST:8786``, or ``--scheduler-file FILE`` as written by ``dask scheduler`` and
``dask-jobqueue``), else a ``LocalCluster`` of ``-j`` single-threaded worker processes.

- **Images** are read from the dataset's files by *one* worker (a task per image, which checks the
  pixels' SHA-256 against the driver's) and passed by Dask to every other worker that computes cells
  of that image: once per worker, not once per cell. So every worker must see the data directory at
  the driver's path (a shared file system, as on any SLURM cluster, or the same download on each
  machine); a worker that sees other pixels records ``ImageError`` for the image's cells.
- **Versions**: before any cell is sent, every worker reports its ``codecbench`` version and the
  version of each codec of the sweep (making each codec there, which also warms the worker up); if
  any differs from the driver's the run stops with an :class:`ExecutorError` naming the worker and
  the versions. A worker that joins later is checked by its first cell (an error row, never a row
  with the wrong version).
- **GPUs**: cells of codecs that want a GPU (:meth:`codecbench.codec.Codec.wants_gpu`) need the
  worker resource ``GPU`` (``dask worker ... --resources GPU=1``); other cells go anywhere.
- **Tasks**: one cell each, or several short cells of one image and codec (``TASK_S`` of work), so
  that the scheduler's round trip stays small beside the work.
- **Faults**: a worker that dies mid-cell has its task retried by Dask on another worker, up to the
  scheduler's ``distributed.scheduler.allowed-failures`` (LocalCluster: ``MAX_TRIES - 1``); then the
  task's cells are recorded as ``WorkerCrash`` (``extra.failure = "crash"``, retried by the next run
  as with local workers). A lost scheduler stops the run with an :class:`ExecutorError`; the finished cells
  are stored and a rerun resumes. ``--cell-timeout`` is not enforced on Dask workers.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from codecbench import __version__
from codecbench.codec import Codec
from codecbench.errors import ExecutorError, ImageError, UsageError
from codecbench.execution import Cell, error_message, execute_cell, failed_row, limit_torch_threads
from codecbench.workers import Record, TimedContext, WorkerConfig

INSTALL_HINT = 'pip install -e ".[dask]" (or pip install "dask[distributed]")'
#: Resource name a worker declares to receive the cells of codecs that want a GPU.
GPU_RESOURCE = "GPU"
#: Tries of a cell whose worker dies, on a LocalCluster (an existing scheduler has its own setting).
MAX_TRIES = 3
#: Scheduler settings of a LocalCluster: bounded tries, and a worker holds only the cell it runs (with the
#: default saturation of 1.1 it also holds a queued one, which its death would charge too).
LOCAL_SCHEDULER_CONFIG = {"distributed.scheduler.allowed-failures": MAX_TRIES - 1,
                          "distributed.scheduler.worker-saturation": 1.0}
#: Tasks in flight per worker thread: enough to hide the scheduler round trip, few claims held.
IN_FLIGHT_PER_THREAD = 4
#: Seconds of work a task aims at: short cells are grouped up to MAX_CELLS_PER_TASK per task.
TASK_S = 0.1
MAX_CELLS_PER_TASK = 32
#: Seconds to reach a scheduler, and for its first worker to appear.
CONNECT_TIMEOUT_S = 30.0


def require_distributed():
    """The ``distributed`` module, or a UsageError saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise UsageError(f"--executor dask needs Dask's distributed scheduler, which is not installed: "
                         f"{INSTALL_HINT}") from None
    return distributed


@dataclass(frozen=True)
class DaskCluster:
    """Where the cells go: a scheduler address, a scheduler file, or a LocalCluster of ``local_workers``."""

    scheduler: str | None = None
    scheduler_file: str | None = None
    local_workers: int = 2

    def describe(self) -> str:
        if self.scheduler:
            return f"Dask scheduler {self.scheduler}"
        if self.scheduler_file:
            return f"Dask scheduler of {self.scheduler_file}"
        return f"Dask LocalCluster of {self.local_workers} worker(s)"


def cluster_from_options(executor: str, scheduler: str | None, scheduler_file: str | None, jobs: int,
                         in_process: bool, cell_timeouts_given: bool) -> DaskCluster | None:
    """The cluster of ``codecbench run``'s options (None: local workers); UsageError for options that clash."""
    if executor != "dask":
        if scheduler or scheduler_file:
            raise UsageError("--scheduler and --scheduler-file need --executor dask")
        return None
    if scheduler and scheduler_file:
        raise UsageError("give --scheduler or --scheduler-file, not both")
    if in_process:
        raise UsageError("--in-process computes cells in this process; it cannot be combined with --executor dask")
    if cell_timeouts_given:
        raise UsageError("--cell-timeout is not enforced on Dask workers (a cell cannot be stopped there); "
                         "leave it out, or use the local workers (-j N)")
    require_distributed()
    return DaskCluster(scheduler, scheduler_file, jobs)


# ---------------------------------------------------------------------------
# On the workers

#: Run token -> the worker's cell context of that run (codecs made once per worker and run).
_CONTEXTS: dict[str, TimedContext] = {}
#: Run token -> why this worker must not compute the run's cells (versions differ), or None.
_MISMATCH: dict[str, str | None] = {}


def stop_profiler(worker) -> None:
    """Stop a Dask worker's statistical profiler: sampling the stack every 10 ms slowed cells by a third
    when measured (a Kodak sweep) and would inflate their ``encode_s``/``decode_s``."""
    for name in ("profile", "profile-cycle"):
        if name in worker.periodic_callbacks:
            worker.loop.add_callback(worker.periodic_callbacks[name].stop)


def worker_versions(codec_options: dict[str, dict[str, Any]], metric_names: tuple[str, ...],
                    torch_threads: int, dask_worker=None) -> dict[str, Any]:
    """This worker's codecbench version and each codec's version (or why it cannot be made).

    Also readies the worker (``dask_worker``, given by ``Client.run``, else the one running this task):
    profiler stopped, torch threads limited, metric implementations imported.
    """
    from distributed import get_worker

    from codecbench import metrics
    from codecbench.execution import create_codec

    stop_profiler(dask_worker or get_worker())
    limit_torch_threads(torch_threads)
    for name in metric_names:
        _ = metrics.METRICS[name].function  # imported now rather than in the first cell
    codecs = {}
    for label, options in codec_options.items():
        try:
            codecs[label] = create_codec(label, options).version()
        except Exception as exc:
            codecs[label] = f"unavailable ({error_message(exc)})"
    return {"codecbench": __version__, "codecs": codecs, "host": socket.gethostname(), "pid": os.getpid()}


def version_differences(found: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """What differs between a worker's versions and the driver's, as ``what worker-value (driver: value)``."""
    out = []
    if found["codecbench"] != expected["codecbench"]:
        out.append(f"codecbench {found['codecbench']} (driver: {expected['codecbench']})")
    for label, version in expected["codecs"].items():
        if found["codecs"].get(label) != version:
            out.append(f"{label} {found['codecs'].get(label)} (driver: {version})")
    return out


def load_image(item, image_sha256: str) -> np.ndarray:
    """Read one image on a worker; ImageError if its pixels are not the ones the driver planned with."""
    from codecbench.data.images import pixel_sha256

    image = item.load()
    if pixel_sha256(image) != image_sha256:
        raise ImageError(f"{item.path} on host {socket.gethostname()}: its pixels differ from the driver's "
                         f"(SHA-256 {pixel_sha256(image)[:16]}… vs {image_sha256[:16]}…); every worker must see "
                         "the same data directory")
    return image


def compute_cells(cells: list[Cell], image: np.ndarray, token: str, config: WorkerConfig,
                  expected: dict[str, Any]) -> tuple[list[tuple[dict[str, Any], dict[str, bytes]]], float,
                                                     dict[str, float]]:
    """Run cells of one image on a worker: ([(row, crops)], seconds, prepare() seconds of the codecs this worker
    made for this run); error rows if this worker's versions differ."""
    start = time.perf_counter()
    if token not in _CONTEXTS:
        found = worker_versions(config.codec_options, config.metric_names, config.torch_threads)
        differences = version_differences(found, expected)
        _MISMATCH[token] = (f"ExecutorError: Dask worker on {found['host']} (pid {found['pid']}) has "
                            f"{'; '.join(differences)}") if differences else None
        _CONTEXTS[token] = TimedContext(config.codec_options, config.metric_names)
    if _MISMATCH[token]:
        return [(failed_row(cell, _MISMATCH[token]), {}) for cell in cells], 0.0, {}
    context = _CONTEXTS[token]
    results = []
    for cell in cells:
        context.use_image(cell.item, image)
        results.append(execute_cell(context, cell))
    return results, time.perf_counter() - start, dict(context.load_s)


def forget_run(token: str) -> None:
    """Drop a finished run's codecs from this worker."""
    _CONTEXTS.pop(token, None)
    _MISMATCH.pop(token, None)


# ---------------------------------------------------------------------------
# On the driver


class DaskExecutor:
    """Cells computed on a Dask cluster; see the module docstring."""

    def __init__(self, cluster: DaskCluster, config: WorkerConfig, codecs: dict[str, Codec]) -> None:
        self.spec = cluster
        self.config = replace(config, codec_options={label: config.codec_options.get(label, {}) for label in codecs})
        self.gpu_codecs = {label for label, codec in codecs.items() if codec.wants_gpu()}
        self.expected = {"codecbench": __version__, "codecs": {label: codec.version() for label, codec in
                                                               codecs.items()}}
        self.token = uuid.uuid4().hex[:12]
        self.client = None
        self.local_cluster = None
        self.images: OrderedDict[str, Any] = OrderedDict()  # image sha -> future of its pixels on the cluster
        self.window = IN_FLIGHT_PER_THREAD  # tasks in flight; set from the cluster's threads by run()
        self.cell_seconds: dict[str, float] = {}  # codec -> seconds per cell of its latest task
        self.load_s: dict[str, float] = {}  # codec -> seconds of prepare(), as the first worker reported it
        self.starting: Future | None = None  # start()'s connection, until run() or close() waits for it

    def start(self) -> None:
        """Connect (or start a LocalCluster) and check the workers, in a thread: the driver plans meanwhile."""
        require_distributed()
        self.starting = ThreadPoolExecutor(1, thread_name_prefix="codecbench-dask").submit(self._connect)

    def _ready(self) -> None:
        """Wait for :meth:`start`'s thread; its ExecutorError, if any, is raised here."""
        if self.starting is not None:
            starting, self.starting = self.starting, None
            starting.result()

    def _connect(self) -> None:
        """Connect (or start a LocalCluster), then check every worker's versions and GPU resources."""
        distributed = require_distributed()
        logging.getLogger("distributed.client").setLevel(logging.CRITICAL)  # a lost scheduler: our message says it
        try:
            if self.spec.scheduler or self.spec.scheduler_file:
                self.client = distributed.Client(self.spec.scheduler, scheduler_file=self.spec.scheduler_file,
                                                 timeout=CONNECT_TIMEOUT_S)
            else:
                import dask

                with dask.config.set(LOCAL_SCHEDULER_CONFIG):
                    self.local_cluster = distributed.LocalCluster(
                        n_workers=self.spec.local_workers, threads_per_worker=1, processes=True,
                        dashboard_address=None, silence_logs=logging.ERROR,
                        resources={GPU_RESOURCE: 1} if self.gpu_codecs else None)
                self.client = distributed.Client(self.local_cluster)
            self.client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError, RuntimeError) as exc:
            self._disconnect()
            raise ExecutorError(f"cannot use the {self.spec.describe()}: {type(exc).__name__}: {exc}") from None
        self._check_workers()

    def _check_workers(self) -> None:
        found = self.client.run(worker_versions, self.config.codec_options, self.config.metric_names,
                                self.config.torch_threads)
        refused = [f"{address} ({info['host']}): {'; '.join(version_differences(info, self.expected))}"
                   for address, info in found.items() if version_differences(info, self.expected)]
        if refused:
            self._disconnect()
            raise ExecutorError("refusing Dask workers whose versions differ from this driver's (every row is "
                                "keyed by the versions that computed it; install the same versions there):\n  "
                                + "\n  ".join(refused))
        if self.gpu_codecs:
            workers = self.client.scheduler_info()["workers"].values()
            if not any(worker.get("resources", {}).get(GPU_RESOURCE) for worker in workers):
                self._disconnect()
                raise ExecutorError(f"{', '.join(sorted(self.gpu_codecs))} want(s) a GPU, but no Dask worker "
                                    f"declares the {GPU_RESOURCE} resource; start GPU workers with "
                                    f"`dask worker SCHEDULER --resources {GPU_RESOURCE}=1`")

    def _image(self, cell: Cell):
        """The future of a cell's image on the cluster (one load task per image; the latest few are kept)."""
        sha = cell.image_sha256
        if sha not in self.images:
            self.images[sha] = self.client.submit(load_image, cell.item, sha, pure=False,
                                                  key=f"codecbench-image-{sha[:16]}-{uuid.uuid4().hex[:8]}")
            while len(self.images) > max(4, self.window):
                self.images.popitem(last=False)
        return self.images[sha]

    def run(self, cells: Iterable[Cell], record: Record) -> None:
        """Send ``cells`` (pulled as the cluster has room), record each row as it comes back.

        Cells go in tasks of one cell, or of several cells of one image and codec when that codec's
        cells are short (``TASK_S`` of work per task), so that the scheduler's round trip stays small
        beside the work. A task whose workers die is retried by Dask; after the last try its cells
        are recorded as ``WorkerCrash``.
        """
        from concurrent.futures import CancelledError

        from distributed import KilledWorker, as_completed
        from distributed.comm import CommClosedError

        self._ready()
        pending = iter(cells)
        upcoming = [next(pending, None)]
        in_flight: dict[Any, list[Cell]] = {}
        finished = as_completed()
        self.window = IN_FLIGHT_PER_THREAD * max(1, sum(self.client.nthreads().values()))

        def next_task() -> list[Cell]:
            task: list[Cell] = []
            while upcoming[0] is not None and (not task or len(task) < self._cells_per_task(task[0].codec)
                                               and (upcoming[0].codec, upcoming[0].image_sha256)
                                               == (task[0].codec, task[0].image_sha256)):
                task.append(replace(upcoming[0], item=replace(upcoming[0].item,
                                                              path=str(Path(upcoming[0].item.path).resolve()))))
                upcoming[0] = next(pending, None)
            return task

        def send(count: int) -> None:
            for task in filter(None, (next_task() for _ in range(count))):
                future = self.client.submit(
                    compute_cells, task, self._image(task[0]), self.token, self.config, self.expected, pure=False,
                    key=f"codecbench-cells-{task[0].codec}-{uuid.uuid4().hex[:12]}",
                    resources={GPU_RESOURCE: 1} if task[0].codec in self.gpu_codecs else None)
                in_flight[future] = task
                finished.add(future)

        send(self.window)
        for batch in finished.batches():
            for future in batch:
                task = in_flight.pop(future)
                try:
                    results, seconds, load_s = future.result()
                except KilledWorker as exc:
                    for cell in task:
                        record(failed_row(cell, f"WorkerCrash: Dask workers died while running {cell.describe()} "
                                                f"(every try; {exc})", {"failure": "crash"}), {})
                except (CancelledError, CommClosedError) as exc:  # cancelled with the scheduler's connection
                    self._lost(error_message(exc).splitlines()[0])
                except Exception as exc:
                    if self.client.status != "running":
                        self._lost(error_message(exc).splitlines()[0])
                    for cell in task:  # e.g. the image cannot be read on that worker
                        record(failed_row(cell, error_message(exc)), {})
                else:
                    self.cell_seconds[task[0].codec] = seconds / len(task)
                    for name, load_seconds in load_s.items():
                        self.load_s.setdefault(name, load_seconds)
                    for row, crops in results:
                        record(row, crops)
            send(len(batch))

    def _cells_per_task(self, codec: str) -> int:
        seconds = self.cell_seconds.get(codec)
        return 1 if not seconds else max(1, min(MAX_CELLS_PER_TASK, int(TASK_S / seconds)))

    def _lost(self, why: str) -> None:
        raise ExecutorError(f"lost the {self.spec.describe()} ({why}); every finished cell is stored: start "
                            "the cluster again and rerun the same command to resume")

    def close(self) -> None:
        """Forget this run on the workers, disconnect, and stop the LocalCluster if this run started it."""
        if self.starting is not None:
            wait([self.starting])  # connecting still: let it finish (or fail), then undo it
            self.starting = None
        self._disconnect()

    def _disconnect(self) -> None:
        if self.client is not None:
            self.images.clear()
            if self.client.status == "running" and self.local_cluster is None:  # a cluster that outlives the run
                try:
                    self.client.run(forget_run, self.token)
                except Exception:  # workers gone: nothing to forget
                    pass
            self.client.close(timeout=10)
            self.client = None
        if self.local_cluster is not None:
            self.local_cluster.close(timeout=10)
            self.local_cluster = None
