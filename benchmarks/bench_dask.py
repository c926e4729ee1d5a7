"""The Dask executor against the local worker processes (skipped without Dask: pip install -e ".[dask]").

- ``test_dask_sweep_against_local_workers``: a sweep of jpeg, webp and jpeg2000 (4 settings each, the
  CI's Kodak settings) over Kodak (24 images, 288 cells; the sample set's 3 images when
  ``CODECBENCH_SHARED`` is not set), metrics psnr_rgb, psnr_y, ssim, ms_ssim, through
  ``run_sweep`` into a fresh results folder: local workers ``jobs=2`` and a Dask LocalCluster of 2
  workers, alternately, ``ROUNDS`` times each. Wall time includes starting the workers (and the
  cluster). ``extra_info['ratio']`` = best Dask wall time / best local one (target ≤ 1.10); each
  round's wall and CPU seconds and the 1-minute load average before it are listed too.
- ``test_dask_overhead_per_cell``: ``OVERHEAD_CELLS`` cells of the trivial ``probe`` codec (raw
  pixels, tests/plugins) on a 16×16 image, metric psnr_rgb, through the executors directly (no
  store): a warm LocalCluster of one worker against :class:`codecbench.workers.InlineExecutor` in
  this process. ``extra_info['overhead_ms']`` = (Dask − inline) wall time per cell: the scheduler
  round trip and serialisation (target ≤ 5 ms); the local worker pool's is listed for comparison.

- ``test_dask_sweep_survives_worker_kills``: the first sweep on a real ``dask scheduler`` and two
  ``dask worker`` processes (allowed-failures 2, worker-saturation 1.0) while ``KILLS`` SIGKILLs hit
  a random worker process every 1–3 s (its nanny restarts it); the same command is run once more
  without kills (it retries cells recorded as crashed), and the store must equal the local workers'
  (same keys, bytes and metric values; timing columns aside). ``extra_info``: kills, tasks
  interrupted (the scheduler's processing list of the killed worker), crash rows, rows expected/found.

Times are wall-clock seconds (``time.perf_counter``); CPU seconds are this process's and its
children's (``resource.getrusage``). On a busy machine the ratio drifts with the load: compare
rounds taken at similar load averages.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codecbench import registry
from codecbench.data.datasets import resolve_dataset
from codecbench.runner import plan_sweep, run_sweep
from codecbench.store import ResultsStore, cell_key
from codecbench.workers import InlineExecutor, WorkerConfig, WorkerPool

pytest.importorskip("distributed", reason='Dask is not installed: pip install -e ".[dask]"')
from codecbench.dask_executor import DaskCluster, DaskExecutor  # noqa: E402  (after the skip)

PLUGINS = Path(__file__).parent.parent / "tests" / "plugins"
SETTINGS = {"jpeg": (10, 30, 50, 75), "webp": (10, 40, 70, 90), "jpeg2000": (120, 60, 30, 12)}
METRICS = ("psnr_rgb", "psnr_y", "ssim", "ms_ssim")
ROUNDS = 2
KILLS = 20
OVERHEAD_CELLS = 400


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def report(capsys: pytest.CaptureFixture, lines: list[str]) -> None:
    with capsys.disabled():
        print("\n" + "\n".join(f"    {line}" for line in lines))


@pytest.mark.benchmark(group="dask")
def test_dask_sweep_against_local_workers(benchmark, kodak_dir_or_none, tmp_path_factory, capsys) -> None:
    dataset = resolve_dataset(str(kodak_dir_or_none) if kodak_dir_or_none else "sample", progress=False)
    codecs = {name: registry.create(name) for name in SETTINGS}
    timings: dict[str, list[tuple[float, float, float]]] = {"local": [], "dask": []}

    def sweep(kind: str) -> None:
        load, cpu, start = os.getloadavg()[0], cpu_seconds(), time.perf_counter()
        summary = run_sweep(ResultsStore(tmp_path_factory.mktemp(kind)), [dataset], codecs, SETTINGS, METRICS,
                            jobs=2, progress=False, cluster=DaskCluster(local_workers=2) if kind == "dask" else None)
        timings[kind].append((time.perf_counter() - start, cpu_seconds() - cpu, load))
        assert summary.ok and summary.done_cells == len(dataset.items) * 12, summary.failures[:3]

    def rounds() -> None:
        for _ in range(ROUNDS):
            sweep("local")
            sweep("dask")

    benchmark.pedantic(rounds, rounds=1, iterations=1)
    ratio = min(t[0] for t in timings["dask"]) / min(t[0] for t in timings["local"])
    benchmark.extra_info.update(ratio=ratio, cells=len(dataset.items) * 12, timings=timings)
    report(capsys, [f"{len(dataset.items) * 12} cells ({dataset.name}); Dask / local best wall time = {ratio:.3f}"]
           + [f"{kind} round {i + 1}: {wall:.1f} s wall, {cpu:.1f} s CPU, load {load:.1f} before"
              for kind, rows in timings.items() for i, (wall, cpu, load) in enumerate(rows)])


@pytest.fixture
def probe_cells(tmp_path, monkeypatch):
    """OVERHEAD_CELLS cells of the probe codec on one 16×16 image (tests/plugins on the path, here and in workers)."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")])))
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    codecs = {"probe": registry.create("probe")}
    plan = plan_sweep([resolve_dataset(str(tmp_path), progress=False)], codecs,
                      {"probe": tuple(range(1, OVERHEAD_CELLS + 1))}, preview_images=0)
    return codecs, plan.cells


def _timed_run(executor, cells) -> float:
    executor.start()
    try:
        executor.run(cells[:10], lambda row, crops: None)  # warm: codecs made, libraries imported
        start = time.perf_counter()
        executor.run(cells, lambda row, crops: None)
        return time.perf_counter() - start
    finally:
        executor.close()


@pytest.mark.benchmark(group="dask")
def test_dask_overhead_per_cell(benchmark, probe_cells, capsys) -> None:
    codecs, cells = probe_cells
    config = WorkerConfig({"probe": {}}, ("psnr_rgb",), 1)
    seconds: dict[str, float] = {}

    def measure() -> None:
        seconds["inline"] = _timed_run(InlineExecutor(config, codecs), cells)
        seconds["workers"] = _timed_run(WorkerPool(1, config, lambda codec: None), cells)
        seconds["dask"] = _timed_run(DaskExecutor(DaskCluster(local_workers=1), config, codecs), cells)

    benchmark.pedantic(measure, rounds=1, iterations=1)
    per_cell = {kind: 1000 * value / len(cells) for kind, value in seconds.items()}
    overhead = per_cell["dask"] - per_cell["inline"]
    benchmark.extra_info.update(overhead_ms=overhead, per_cell_ms=per_cell, load_average=os.getloadavg()[0])
    report(capsys, [f"{len(cells)} probe cells: " + ", ".join(f"{k} {v:.2f} ms/cell" for k, v in per_cell.items()),
                    f"Dask overhead per cell: {overhead:.2f} ms (local workers: "
                    f"{per_cell['workers'] - per_cell['inline']:.2f} ms); load {os.getloadavg()[0]:.1f}"])


def _comparable(path: Path) -> dict[str, str]:
    timing = ("encode_s", "decode_s", "run_id", "finished_at")
    return {json.dumps(cell_key(row)): json.dumps({k: v for k, v in row.items() if k not in timing}, sort_keys=True)
            for row in ResultsStore(path).rows()}


def _sweep_command(dataset: str, results: Path, *extra: str) -> list[str]:
    settings = [f"--settings={name}={','.join(map(str, values))}" for name, values in SETTINGS.items()]
    return [sys.executable, "-m", "codecbench", "run", "--codecs", ",".join(SETTINGS), "--dataset", dataset,
            *settings, "--metrics", ",".join(METRICS), "--quiet", "--output", str(results), *extra]


@pytest.mark.benchmark(group="dask")
def test_dask_sweep_survives_worker_kills(benchmark, kodak_dir_or_none, tmp_path, capsys) -> None:
    from distributed import Client

    dataset = str(kodak_dir_or_none) if kodak_dir_or_none else "sample"
    reference = subprocess.run(_sweep_command(dataset, tmp_path / "reference", "-j", "2"), capture_output=True)
    assert reference.returncode == 0, reference.stderr
    env = dict(os.environ, DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="2",
               DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION="1.0")
    dask = str(Path(sys.executable).parent / "dask")
    file = tmp_path / "scheduler.json"
    log = open(tmp_path / "cluster.log", "w")
    processes = [subprocess.Popen([dask, "scheduler", "--scheduler-file", str(file), "--port", "0",
                                   "--no-dashboard"], env=env, stdout=log, stderr=log, process_group=0)]
    while not file.exists():
        time.sleep(0.1)
    processes += [subprocess.Popen([dask, "worker", "--scheduler-file", str(file), "--nthreads", "1",
                                    "--no-dashboard"], env=env, stdout=log, stderr=log, process_group=0)
                  for _ in range(2)]
    figures = {"kills": 0, "tasks_interrupted": 0}
    rng = random.Random(20)
    results = tmp_path / "killed"
    try:
        with Client(scheduler_file=str(file), timeout=60) as client:
            client.wait_for_workers(2, timeout=120)

            def sweep_under_fire() -> None:
                driver = subprocess.Popen(_sweep_command(dataset, results, "--executor", "dask", "--scheduler-file",
                                                         str(file)), stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
                while driver.poll() is None and figures["kills"] < KILLS:
                    time.sleep(rng.uniform(1, 3))
                    pids, processing = client.run(os.getpid), client.processing()
                    if driver.poll() is not None or not pids:
                        continue
                    address = rng.choice(sorted(pids))
                    os.kill(pids[address], signal.SIGKILL)
                    figures["kills"] += 1
                    figures["tasks_interrupted"] += len(processing.get(address, ()))
                driver.wait()
                figures["first_exit_code"] = driver.returncode

            benchmark.pedantic(sweep_under_fire, rounds=1, iterations=1)
            figures["crash_rows"] = sum(1 for row in ResultsStore(results).iter_raw_rows()
                                        if (row.get("extra") or {}).get("failure") == "crash")
            client.wait_for_workers(2, timeout=120)
            rerun = subprocess.run(_sweep_command(dataset, results, "--executor", "dask", "--scheduler-file",
                                                  str(file)), capture_output=True, text=True)
            assert rerun.returncode == 0, rerun.stderr
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    expected, found = _comparable(tmp_path / "reference"), _comparable(results)
    figures.update(rows_expected=len(expected), rows_found=len(found), identical=found == expected)
    benchmark.extra_info.update(figures)
    report(capsys, [f"{key}: {value}" for key, value in figures.items()])
    assert figures["kills"] == KILLS and found == expected
