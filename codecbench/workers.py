"""Executors: where cells are computed. Worker processes (the default, at every ``-j``) or inline.

**Worker processes** (:class:`WorkerPool`). Each worker is a fresh Python
process (``python -m codecbench.workers``), reused across cells, that computes
one cell at a time (:func:`codecbench.execution.execute_cell`) and sends back
the row; only the driver writes the store. Images travel as paths (a worker
loads each image once and keeps the current one), rows and preview crops
come back pickled over a pipe. Because a worker holds exactly one cell:

- a worker that dies (segfault, ``os._exit``, an out-of-memory kill) charges
  exactly its cell: an error row ``WorkerCrash: …`` naming the signal or exit
  code, the codec, the setting and the image, and the last line the worker
  wrote to stderr, with ``extra.failure = "crash"``;
- a codec that raises ``SystemExit`` or ``KeyboardInterrupt`` gets the same
  kind of row; its worker is replaced;
- a cell still running after its timeout has its worker killed (with the
  worker's process group, so programs it started, such as ``bpgenc``, die
  too) and gets ``CellTimeout: timed out after N s …`` with
  ``extra.failure = "timeout"``;
- the other workers' cells are never touched. A replacement worker starts at once.

Workers that die before they are ready (an import error, a metric that cannot
load), three in a row, stop the run with their exit status and the end of their
stderr. A worker's stderr is passed on to the driver's as it comes (codec
warnings stay visible); its last lines are kept for these messages.

**Load times.** Each process that computes cells times every codec's one-off
``prepare()`` (weights loading) when it first makes the codec
(:class:`TimedContext`) and reports it; the executor keeps the first report of
each codec in ``load_s``, which the run manifest records as ``codec_load_s``.

**No orphans.** Each worker leads its own process group. It asks Linux for
``SIGKILL`` when the driver dies (``prctl(PR_SET_PDEATHSIG)``; elsewhere a
thread watches the parent pid), and a tiny reaper process, which holds only a
pipe from the driver, kills every worker's whole process group when that
pipe closes, i.e. when the driver exits or is killed. Ctrl-C reaches the
driver only; it stops the workers.

**Inline** (:class:`InlineExecutor`, ``codecbench run --in-process``): cells
run in the driver, no isolation and no timeouts (for debugging a plugin with
a debugger, and as the reference of the isolation-cost benchmark).
"""

from __future__ import annotations

import collections
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from codecbench.codec import Codec
from codecbench.errors import CodecError
from codecbench.execution import Cell, CellContext, create_codec, execute_cell, failed_row, limit_torch_threads

#: record(row, crops): the driver's callback for a finished cell.
Record = Callable[[dict[str, Any], dict[str, bytes]], None]

#: Longest wait (s) between checks that busy workers are alive.
POLL_S = 1.0
#: Seconds a new worker may take to import its libraries and make its codecs.
STARTUP_TIMEOUT_S = 120.0
#: Workers that die or hang before they are ready, in a row, before the run gives up.
MAX_FAILED_STARTS = 3
#: Seconds a worker whose pipe closed may take to exit by itself (its real exit status) before it is killed.
EXIT_GRACE_S = 2.0
#: Lines of each worker's stderr kept for the message about its death.
STDERR_TAIL_LINES = 20
#: The module a worker process runs (``python -m``).
WORKER_MODULE = "codecbench.workers"

_REAPER = """
import os, signal, sys
groups = set()
for line in sys.stdin:
    sign, pgid = line[0], int(line[1:])
    (groups.add if sign == "+" else groups.discard)(pgid)
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


@dataclass
class WorkerConfig:
    """What every worker needs to compute cells (picklable)."""

    codec_options: dict[str, dict[str, Any]]
    metric_names: tuple[str, ...]
    torch_threads: int


@dataclass
class TimedContext(CellContext):
    """A cell context that times each codec's one-off ``prepare()`` where it runs: ``load_s`` (codec -> s)."""

    load_s: dict[str, float] = field(default_factory=dict)

    def codec(self, name: str) -> Codec:
        if name not in self.codecs:
            self.add_codec(name, create_codec(name, self.codec_options.get(name, {})))
        return self.codecs[name]

    def add_codec(self, name: str, codec: Codec) -> None:
        """Prepare ``codec`` (timed) and keep it under ``name``."""
        start = time.perf_counter()
        codec.prepare()  # weights loading never lands inside a cell's clock
        self.load_s[name] = round(time.perf_counter() - start, 6)
        self.codecs[name] = codec


class InlineExecutor:
    """Cells computed in the calling process, one after another: no isolation, no timeouts."""

    def __init__(self, config: WorkerConfig, codecs: dict[str, Any]) -> None:
        self.context = TimedContext(config.codec_options, config.metric_names)
        self.codecs = codecs  # the instances already created are reused (prepared by start())
        self.torch_threads = config.torch_threads
        self.load_s = self.context.load_s

    def start(self) -> None:
        limit_torch_threads(self.torch_threads)
        for name, codec in self.codecs.items():
            self.context.add_codec(name, codec)

    def run(self, cells: Iterable[Cell], record: Record) -> None:
        for cell in cells:
            record(*execute_cell(self.context, cell))

    def close(self) -> None:
        """Nothing to stop."""


@dataclass
class _Worker:
    process: subprocess.Popen
    to_worker: Connection
    from_worker: Connection
    deadline: float | None  # of its start-up until it is ready, then of its cell (None: no limit)
    stderr: collections.deque  # its last lines, filled by a thread that passes them on to the driver's stderr
    stderr_thread: threading.Thread
    ready: bool = False
    cell: Cell | None = None
    stopped: bool = False

    def stderr_tail(self) -> str:
        """The last non-empty line the worker wrote to stderr, or empty."""
        self.stderr_thread.join(timeout=1.0)  # the pipe closes when the worker's process group is gone
        lines = [line.strip() for line in self.stderr if line.strip()]
        return lines[-1] if lines else ""


def _pass_on(pipe, tail: collections.deque) -> None:
    """Copy a worker's stderr to ours line by line, keeping the last lines in ``tail``."""
    with pipe:
        for raw in iter(pipe.readline, b""):
            line = raw.decode("utf-8", "replace")
            tail.append(line[:500])
            try:
                sys.stderr.write(line)
                sys.stderr.flush()
            except (OSError, ValueError):  # our stderr is closed: keep the tail only
                pass


class WorkerPool:
    """``jobs`` worker processes computing one cell each at a time; see the module docstring."""

    def __init__(self, jobs: int, config: WorkerConfig, timeout_s: Callable[[str], float | None]) -> None:
        self.jobs = jobs
        self.config = config
        self.timeout_s = timeout_s  # codec name -> seconds (None: no limit)
        self.workers: list[_Worker] = []
        self.reaper: subprocess.Popen | None = None
        self.failed_starts = 0
        self.load_s: dict[str, float] = {}  # codec -> seconds of prepare(), as the first worker reported it

    def start(self) -> None:
        """Start the reaper and the workers (they import their libraries while the driver plans)."""
        self.reaper = subprocess.Popen([sys.executable, "-S", "-c", _REAPER], stdin=subprocess.PIPE,
                                       stdout=subprocess.DEVNULL, text=True, process_group=0)
        self.workers = [self._spawn() for _ in range(self.jobs)]

    def _spawn(self) -> _Worker:
        to_read, to_write = os.pipe()
        from_read, from_write = os.pipe()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        if self.config.torch_threads:  # numerical libraries read these when they load, before any cell
            for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
                env.setdefault(variable, str(self.config.torch_threads))
        process = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE, str(to_read), str(from_write), str(os.getpid())],
            pass_fds=(to_read, from_write), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
            process_group=0,
        )
        os.close(to_read)
        os.close(from_write)
        self.reaper.stdin.write(f"+{process.pid}\n")
        self.reaper.stdin.flush()
        tail: collections.deque = collections.deque(maxlen=STDERR_TAIL_LINES)
        thread = threading.Thread(target=_pass_on, args=(process.stderr, tail), daemon=True,
                                  name=f"codecbench-worker-{process.pid}-stderr")
        thread.start()
        worker = _Worker(process, Connection(to_write, readable=False), Connection(from_read, writable=False),
                         deadline=time.monotonic() + STARTUP_TIMEOUT_S, stderr=tail, stderr_thread=thread)
        worker.to_worker.send(self.config)
        return worker

    def _stop(self, worker: _Worker, grace_s: float = 0.0) -> int:
        """Kill the worker's process group (the worker and any program it started); its exit status.

        ``grace_s``: first let a worker that is already leaving (its pipe closed) exit by itself, so
        that its own exit status, not our kill, is reported.
        """
        if worker.stopped:
            return worker.process.returncode
        worker.stopped = True
        if grace_s:
            try:
                worker.process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(worker.process.pid, signal.SIGKILL)
        except OSError:
            pass
        status = worker.process.wait()
        worker.to_worker.close()
        worker.from_worker.close()
        if self.reaper is not None and self.reaper.poll() is None:
            self.reaper.stdin.write(f"-{worker.process.pid}\n")
            self.reaper.stdin.flush()
        return status

    def _replace(self, worker: _Worker) -> _Worker:
        """Stop ``worker`` and start a fresh one in its place; the fresh one."""
        self._stop(worker)
        index = self.workers.index(worker)
        self.workers[index] = self._spawn()
        return self.workers[index]

    def run(self, cells: Iterable[Cell], record: Record) -> None:
        """Compute ``cells`` in plan order, ``jobs`` at a time; ``record`` every row as it comes.

        ``cells`` is pulled one cell ahead of the workers (it may claim each cell as it is pulled).
        """
        pending = iter(cells)
        upcoming = next(pending, None)
        while True:
            for worker in self.workers:
                if worker.ready and worker.cell is None and upcoming is not None:
                    self._assign(worker, upcoming)
                    upcoming = next(pending, None)
            if upcoming is None and all(worker.cell is None for worker in self.workers):
                return
            waiting = [worker for worker in self.workers if worker.cell is not None or not worker.ready]
            now = time.monotonic()
            deadlines = [w.deadline - now for w in waiting if w.deadline is not None]
            ready = wait([w.from_worker for w in waiting], timeout=max(0.0, min([POLL_S, *deadlines])))
            for worker in waiting:
                if worker.from_worker in ready:
                    self._receive(worker, record)
                elif worker.process.poll() is not None:
                    self._crashed(worker, record)
                elif worker.deadline is not None and time.monotonic() >= worker.deadline:
                    self._timed_out(worker, record)

    def _assign(self, worker: _Worker, cell: Cell) -> None:
        try:
            worker.to_worker.send(cell)
        except OSError:  # the worker died while idle (killed from outside): not this cell's fault
            self._assign(self._replace(worker), cell)
            return
        limit = self.timeout_s(cell.codec)
        worker.cell, worker.deadline = cell, (time.monotonic() + limit if limit else None)

    def _receive(self, worker: _Worker, record: Record) -> None:
        try:
            kind, row, crops = worker.from_worker.recv()
        except (EOFError, OSError):
            self._crashed(worker, record)
            return
        if kind == "loaded":  # prepare() times of codecs the worker just made; its next message follows
            for name, seconds in row.items():
                self.load_s.setdefault(name, seconds)
            return
        if kind == "ready":
            worker.ready, worker.deadline = True, None
            self.failed_starts = 0
            return
        worker.cell = worker.deadline = None
        record(row, crops)
        if kind == "exit":  # the codec raised SystemExit or KeyboardInterrupt; the worker is leaving
            self._replace(worker)

    def _failed_start(self, worker: _Worker, why: str, said: str = "") -> None:
        self.failed_starts += 1
        if self.failed_starts >= MAX_FAILED_STARTS:
            raise CodecError(f"worker processes do not start: the last one {why} before it was ready "
                             f"({MAX_FAILED_STARTS} in a row){said}; run with --in-process to see the whole error")
        self._replace(worker)

    def _crashed(self, worker: _Worker, record: Record) -> None:
        cell = worker.cell
        status = self._stop(worker, grace_s=EXIT_GRACE_S)
        if status < 0:
            name = signal.Signals(-status).name if -status in signal.valid_signals() else f"signal {-status}"
            how = f"was killed by {name}" + (" (out of memory, or killed from outside)" if -status == signal.SIGKILL
                                               else "")
        else:
            how = f"exited with code {status}"
        last_words = worker.stderr_tail()
        said = f"; its stderr ends: {last_words}" if last_words else ""
        if cell is None:
            self._failed_start(worker, how, said)
            return
        record(failed_row(cell, f"WorkerCrash: the worker process {how} while running {cell.describe()}{said}",
                          {"failure": "crash"}), {})
        self._replace(worker)

    def _timed_out(self, worker: _Worker, record: Record) -> None:
        cell = worker.cell
        if cell is None:
            self._failed_start(worker, f"took more than {STARTUP_TIMEOUT_S:g} s")
            return
        record(failed_row(cell, f"CellTimeout: timed out after {self.timeout_s(cell.codec):g} s running "
                                f"{cell.describe()} (worker killed; see --cell-timeout)", {"failure": "timeout"}), {})
        self._replace(worker)

    def close(self) -> None:
        """Stop every worker (and its programs) and the reaper."""
        for worker in self.workers:
            self._stop(worker)
        self.workers = []
        if self.reaper is not None:
            self.reaper.stdin.close()
            self.reaper.wait()
            self.reaper = None


# ---------------------------------------------------------------------------
# The worker process


def _die_with(parent_pid: int) -> None:
    """SIGKILL this process when ``parent_pid`` (the driver) dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: watch the parent pid instead

        def watch() -> None:
            while os.getppid() == parent_pid:
                time.sleep(0.5)
            os.killpg(0, signal.SIGKILL)

        threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent_pid:  # the driver died before the request took effect
        os._exit(1)


def _warm_up(config: WorkerConfig, context: TimedContext) -> None:
    """Import the metric implementations and make the codecs now, while the driver is still planning."""
    from codecbench import metrics

    for name in config.metric_names:
        _ = metrics.METRICS[name].function  # imported now rather than in the first cell
    for name in config.codec_options:
        try:
            context.codec(name)
        except Exception:  # reported by the first cell that needs the codec
            pass


def worker_main(read_fd: int, write_fd: int, parent_pid: int) -> None:
    """Compute cells received on ``read_fd`` until it closes; send (kind, row, crops) on ``write_fd``."""
    _die_with(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    inbox, outbox = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    config: WorkerConfig = inbox.recv()
    limit_torch_threads(config.torch_threads)
    context = TimedContext(config.codec_options, config.metric_names)
    _warm_up(config, context)
    reported: set[str] = set()

    def report_load_times() -> None:
        new = {name: seconds for name, seconds in context.load_s.items() if name not in reported}
        if new:
            outbox.send(("loaded", new, None))
            reported.update(new)

    report_load_times()
    outbox.send(("ready", None, None))
    while True:
        try:
            cell: Cell = inbox.recv()
        except EOFError:
            return
        try:
            row, crops = execute_cell(context, cell)
            report_load_times()
        except BaseException as exc:  # SystemExit, KeyboardInterrupt... raised by a codec: report, then leave
            what = f"{type(exc).__name__}({', '.join(map(repr, exc.args))})"
            outbox.send(("exit", failed_row(cell, f"WorkerCrash: the codec raised {what} while running "
                                                  f"{cell.describe()}", {"failure": "crash"}), {}))
            os._exit(0)
        try:
            outbox.send(("row", row, crops))
        except Exception as exc:  # e.g. a codec's bitstream_stats that cannot be pickled
            outbox.send(("row", failed_row(cell, f"CodecError: the result cannot be sent back ({exc})"), {}))


if __name__ == "__main__":
    worker_main(*(int(arg) for arg in sys.argv[1:4]))
