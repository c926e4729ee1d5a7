"""Whole sweeps through ``codecbench.runner.run_sweep``, and what the harness costs on top of the work.

- ``test_small_sweep``: jpeg + webp, each at the first, middle and last setting of its
  default sweep, over the ``sample`` dataset (3 images, 18 cells), metrics psnr_rgb,
  psnr_y, ssim, ms_ssim, into a fresh results folder each round.
- ``test_sweep_one_worker``: a bigger sweep (the 24 Kodak images with the jpeg + webp
  default sweeps, 504 cells, when ``CODECBENCH_SHARED`` is set; else the sample set
  at every integer quality, 603 cells) on one worker. ``extra_info['overhead']``
  is its wall time divided by the summed raw work of the same cells — encode +
  decode + ``metrics.compute`` timed in a plain loop, image loading excluded — so
  1.0 means the harness costs nothing (target ≤ 1.10).
- ``test_sweep_two_workers``: the same sweep with ``jobs=2``;
  ``extra_info['speedup']`` is the one-worker wall time over the two-worker one,
  worker start-up included (target ≥ 1.8).
- ``test_isolation_cost``: the -j 1 JPEG sweep through the command line, worker process against
  ``--in-process``; ``extra_info['ratio']`` (target ≤ 1.05).

Both report ``cpu_s`` (user + system CPU seconds of this process and its workers)
and ``cores_used`` (``cpu_s`` per wall-clock second). A two-worker sweep can only
approach a 2× speed-up when it gets close to 2 cores; ``load_average`` (1-minute,
taken before the sweep) shows how busy the machine already was. Because CPU
seconds hardly depend on how busy the machine is, the two-worker benchmark also
reports ``idle_speedup_bound`` = 2 · cpu_s(1 worker) / cpu_s(2 workers): the best
wall-clock speed-up an otherwise idle 2-core machine could give, i.e. what the
extra work of the parallel path (spawning workers, importing libraries in each,
pickling cells) leaves of the ideal 2×.

LPIPS is left out of every sweep: it needs AlexNet weights that are not always
present, and it would dominate the time. Times are wall-clock seconds
(``time.perf_counter``). ``run_sweep`` (default ``torch_threads=1``) limits torch
to one thread in each process it computes in; the raw loop does the same, and
torch is already imported in this process when sweeps are timed, whereas each
spawned worker of the two-worker sweep imports it (part of its start-up).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from codecbench import metrics, registry
from codecbench.codec import Codec
from codecbench.data.datasets import resolve_dataset
from codecbench.data.items import Dataset
from codecbench.runner import run_sweep
from codecbench.store import ResultsStore

SWEEP_CODECS = ("jpeg", "webp")
SWEEP_METRICS = ("psnr_rgb", "psnr_y", "ssim", "ms_ssim")

#: Settings of the overhead sweep on the sample set (no Kodak): every quality, making up for fewer, smaller images.
SAMPLE_LADDERS = {"jpeg": tuple(range(1, 101)), "webp": tuple(range(0, 101))}


@dataclass(frozen=True)
class Sweep:
    """What one benchmark sweeps: images, and settings per codec (the codecs are SWEEP_CODECS)."""

    label: str
    datasets: tuple[Dataset, ...]
    settings: dict[str, tuple[float, ...]]

    @property
    def n_cells(self) -> int:
        n_images = sum(len(dataset.items) for dataset in self.datasets)
        return n_images * sum(len(values) for values in self.settings.values())


@dataclass(frozen=True)
class Timing:
    """One timed sweep: wall-clock seconds, CPU seconds of this process and its workers, 1-minute load before."""

    wall_s: float
    cpu_s: float
    load_average: float

    @property
    def cores_used(self) -> float:
        return self.cpu_s / self.wall_s


def sweep_codecs() -> dict[str, Codec]:
    return {name: registry.create(name) for name in SWEEP_CODECS}


def default_settings() -> dict[str, tuple[float, ...]]:
    return {name: codec.setting.default_sweep for name, codec in sweep_codecs().items()}


def cpu_seconds() -> float:
    """User + system CPU time (s) of this process and of its children that have exited."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """run_sweep sets torch's thread count for the process it runs in; give other benchmarks theirs back."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def small_sweep() -> Sweep:
    ends_and_middle = {name: (sweep[0], sweep[len(sweep) // 2], sweep[-1])
                       for name, sweep in default_settings().items()}
    return Sweep("sample (3 images), first/middle/last default setting", (resolve_dataset("sample", progress=False),),
                 ends_and_middle)


@pytest.fixture(scope="module")
def overhead_sweep(kodak_dir_or_none: Path | None) -> Sweep:
    """Big enough that starting the workers (~2 CPU-seconds each: Python, torch, SciPy, codecs) is a small share."""
    if kodak_dir_or_none is None:
        return Sweep("sample (3 images), every integer quality", (resolve_dataset("sample", progress=False),),
                     SAMPLE_LADDERS)
    kodak = resolve_dataset(str(kodak_dir_or_none), progress=False)
    return Sweep(f"Kodak ({len(kodak.items)} images), default sweeps", (kodak,), default_settings())


def timed_sweep(sweep: Sweep, jobs: int, timings: list[Timing]) -> Callable[[Path], None]:
    """A function running ``sweep`` with ``jobs`` workers into a results folder, appending its Timing to ``timings``."""

    def run(results: Path) -> None:
        codecs = sweep_codecs()
        load = os.getloadavg()[0]
        cpu_start, start = cpu_seconds(), time.perf_counter()
        summary = run_sweep(ResultsStore(results), sweep.datasets, codecs, sweep.settings, SWEEP_METRICS,
                            jobs=jobs, progress=False, command=["benchmarks/bench_sweep.py"])
        timings.append(Timing(time.perf_counter() - start, cpu_seconds() - cpu_start, load))
        assert summary.ok and summary.done_cells == sweep.n_cells, summary.failures[:3] or summary.problems

    return run


def fresh_folder(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], tuple[tuple[Path], dict]]:
    """pytest-benchmark ``setup``: a new, empty results folder for each round (nothing is skipped as stored)."""
    return lambda: ((tmp_path_factory.mktemp("results"),), {})


def raw_work_seconds(sweep: Sweep) -> float:
    """Summed encode + decode + metrics.compute time (s) of every cell of ``sweep``, in a plain loop.

    One untimed cell per codec first loads the libraries, which the sweep it is
    compared with finds loaded too. Torch gets one thread, as under run_sweep.
    """
    import torch

    torch.set_num_threads(1)
    codecs = sweep_codecs()
    total = 0.0
    for index, item in enumerate(item for dataset in sweep.datasets for item in dataset.items):
        image = item.load()
        if index == 0:
            for name, codec in codecs.items():
                first = codec.setting.validate(sweep.settings[name][0])
                metrics.compute(image, codec.decode(codec.encode(image, first)), SWEEP_METRICS)
        for name, codec in codecs.items():
            for setting in sweep.settings[name]:
                start = time.perf_counter()
                decoded = codec.decode(codec.encode(image, codec.setting.validate(setting)))
                metrics.compute(image, decoded, SWEEP_METRICS)
                total += time.perf_counter() - start
    return total


@pytest.fixture(scope="module")
def raw_seconds(overhead_sweep: Sweep) -> float:
    return raw_work_seconds(overhead_sweep)


@pytest.fixture(scope="module")
def one_worker_timings() -> list[Timing]:
    """Timings of the one-worker overhead sweep, shared with the two-worker benchmark."""
    return []


def report(capsys: pytest.CaptureFixture, lines: Sequence[str]) -> None:
    with capsys.disabled():
        print("\n" + "\n".join(f"    {line}" for line in lines))


def describe(timing: Timing) -> str:
    return (f"{timing.wall_s:.2f} s wall, {timing.cpu_s:.2f} s CPU ({timing.cores_used:.2f} cores used), "
            f"load average {timing.load_average:.2f} before")


@pytest.mark.benchmark(group="sweep")
def test_small_sweep(benchmark, small_sweep: Sweep, tmp_path_factory: pytest.TempPathFactory) -> None:
    timings: list[Timing] = []
    benchmark.pedantic(timed_sweep(small_sweep, 1, timings), setup=fresh_folder(tmp_path_factory), rounds=3,
                       iterations=1)
    benchmark.extra_info.update(sweep=small_sweep.label, cells=small_sweep.n_cells, metrics=list(SWEEP_METRICS))
    assert timings  # every round finished with all cells done (checked in timed_sweep)


@pytest.mark.benchmark(group="sweep")
def test_sweep_one_worker(benchmark, overhead_sweep: Sweep, raw_seconds: float, one_worker_timings: list[Timing],
                          tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture) -> None:
    benchmark.pedantic(timed_sweep(overhead_sweep, 1, one_worker_timings), setup=fresh_folder(tmp_path_factory),
                       rounds=1, iterations=1)
    timing = one_worker_timings[-1]
    overhead = timing.wall_s / raw_seconds
    benchmark.extra_info.update(sweep=overhead_sweep.label, cells=overhead_sweep.n_cells,
                                raw_work_s=round(raw_seconds, 3), wall_s=round(timing.wall_s, 3),
                                cpu_s=round(timing.cpu_s, 3), cores_used=round(timing.cores_used, 3),
                                load_average=timing.load_average,
                                overhead=round(overhead, 4), overhead_target="<= 1.10")
    report(capsys, [f"sweep: {overhead_sweep.label}, {overhead_sweep.n_cells} cells",
                    f"raw encode+decode+metrics: {raw_seconds:.2f} s",
                    f"run_sweep jobs=1: {describe(timing)}",
                    f"harness overhead (jobs=1): {overhead:.3f} (target <= 1.10)"])
    assert overhead > 0


@pytest.mark.benchmark(group="sweep")
def test_sweep_two_workers(benchmark, overhead_sweep: Sweep, one_worker_timings: list[Timing],
                           tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture) -> None:
    if not one_worker_timings:  # run on its own: time one worker first
        timed_sweep(overhead_sweep, 1, one_worker_timings)(tmp_path_factory.mktemp("results"))
    two_worker_timings: list[Timing] = []
    benchmark.pedantic(timed_sweep(overhead_sweep, 2, two_worker_timings), setup=fresh_folder(tmp_path_factory),
                       rounds=1, iterations=1)
    one, two = one_worker_timings[-1], two_worker_timings[-1]
    speedup = one.wall_s / two.wall_s
    idle_bound = 2 * one.cpu_s / two.cpu_s
    benchmark.extra_info.update(sweep=overhead_sweep.label, cells=overhead_sweep.n_cells,
                                one_worker_wall_s=round(one.wall_s, 3), one_worker_cpu_s=round(one.cpu_s, 3),
                                wall_s=round(two.wall_s, 3), cpu_s=round(two.cpu_s, 3),
                                cores_used=round(two.cores_used, 3), load_average=two.load_average,
                                speedup=round(speedup, 4), speedup_target=">= 1.8",
                                idle_speedup_bound=round(idle_bound, 4))
    report(capsys, [f"run_sweep jobs=1: {describe(one)}",
                    f"run_sweep jobs=2: {describe(two)}",
                    f"two-worker speed-up: {speedup:.3f} (target >= 1.8); "
                    f"bound on an idle 2-core machine from CPU times: {idle_bound:.3f}"])
    assert speedup > 0 and idle_bound > 0


#: Rounds of each path in the isolation-cost benchmark (alternated, so that both see the same machine load).
ISOLATION_ROUNDS = 3


def cli_sweep_seconds(dataset: str, results: Path, in_process: bool) -> Timing:
    """Wall-clock and CPU seconds (the command and its workers) of one `codecbench run` of the -j 1 JPEG
    default sweep, from process start to exit."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "codecbench", "run", "--codecs", "jpeg", "--dataset", dataset, "--metrics",
               ",".join(SWEEP_METRICS), "-j", "1", "--quiet", "--output", str(results), "--offline"]
    load = os.getloadavg()[0]
    cpu_start, start = cpu_seconds(), time.perf_counter()
    subprocess.run(command + (["--in-process"] if in_process else []), check=True, capture_output=True)
    return Timing(time.perf_counter() - start, cpu_seconds() - cpu_start, load)


@pytest.mark.benchmark(group="sweep")
def test_isolation_cost(benchmark, kodak_dir_or_none: Path | None, tmp_path_factory: pytest.TempPathFactory,
                        capsys: pytest.CaptureFixture) -> None:
    """Cost of computing cells in a worker process: the -j 1 JPEG default sweep (Kodak: 264 cells; else the
    sample set, 33 cells) run by the command line with workers and with ``--in-process``, alternately,
    ISOLATION_ROUNDS times each, each into a fresh results folder. Both paths start a fresh process, as a user
    runs them (the in-process driver imports torch for the metrics itself; with a worker, the worker does
    while the driver reads the images). ``ratio`` = median worker wall time / median in-process wall time
    (target ≤ 1.05). ``cpu_ratio`` is the same for CPU seconds of the command and its workers, which a
    busy machine disturbs much less than wall time."""
    dataset = str(kodak_dir_or_none) if kodak_dir_or_none is not None else "sample"
    times: dict[bool, list[Timing]] = {True: [], False: []}

    def alternate() -> None:
        for _ in range(ISOLATION_ROUNDS):
            for in_process in (True, False):
                times[in_process].append(cli_sweep_seconds(dataset, tmp_path_factory.mktemp("results"), in_process))

    def median(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    benchmark.pedantic(alternate, rounds=1, iterations=1)
    inline, isolated = times[True], times[False]
    ratio = median([t.wall_s for t in isolated]) / median([t.wall_s for t in inline])
    cpu_ratio = median([t.cpu_s for t in isolated]) / median([t.cpu_s for t in inline])
    benchmark.extra_info.update(dataset=dataset, in_process_s=[round(t.wall_s, 2) for t in inline],
                                workers_s=[round(t.wall_s, 2) for t in isolated],
                                in_process_cpu_s=[round(t.cpu_s, 2) for t in inline],
                                workers_cpu_s=[round(t.cpu_s, 2) for t in isolated], ratio=round(ratio, 4),
                                cpu_ratio=round(cpu_ratio, 4), ratio_target="<= 1.05",
                                load_average=[t.load_average for t in inline + isolated])
    report(capsys, [f"-j 1 jpeg sweep of {dataset} through the command line, {ISOLATION_ROUNDS} rounds each",
                    *(f"{label}: " + "; ".join(describe(t) for t in runs)
                      for label, runs in (("--in-process", inline), ("worker", isolated))),
                    f"isolation cost (median wall ratio): {ratio:.3f} (target <= 1.05); "
                    f"median CPU ratio {cpu_ratio:.3f}"])
    assert ratio > 0
