"""The Dask executor (--executor dask) against real processes: a LocalCluster, and `dask scheduler` +
`dask worker` processes started here and killed by PID (workers, scheduler). Skipped without Dask.

Rows computed on Dask must equal the local workers' rows (all columns but timing); GPU cells go only
to the worker that declares the GPU resource; mismatched workers are refused; a worker killed
mid-cell has its cell retried and then recorded as a crash; a lost scheduler stops the driver with a
clear error and a rerun resumes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from codecbench.store import ResultsStore, cell_key

pytestmark = pytest.mark.slow  # Dask schedulers and workers in subprocesses

distributed = pytest.importorskip("distributed", reason='Dask is not installed: pip install -e ".[dask]"')

PLUGINS = Path(__file__).parent / "plugins"
DASK = str(Path(sys.executable).parent / "dask")
TIMING = ("encode_s", "decode_s", "run_id", "finished_at")
JPEG_SWEEP = ["--codecs", "jpeg", "--dataset", "sample", "--settings", "jpeg=10:90:10", "--metrics", "psnr_rgb,ssim",
              "--quiet", "--preview-images", "0"]


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codecbench", *args], capture_output=True, text=True,
                          env=env or _env(), timeout=timeout)


def _comparable(path: Path, drop: tuple[str, ...] = ()) -> dict[str, str]:
    return {json.dumps(cell_key(row)): json.dumps({k: v for k, v in row.items() if k not in TIMING + drop},
                                                  sort_keys=True) for row in ResultsStore(path).rows()}


class Cluster:
    """A `dask scheduler` process and `dask worker` processes, each in its own process group."""

    def __init__(self, folder: Path, **env: str) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.file = folder / "scheduler.json"
        self.env = _env(DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="1",
                        DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION="1.0", **env)
        self.scheduler = self._start(DASK, "scheduler", "--scheduler-file", str(self.file), "--port", "0",
                                     "--no-dashboard")
        self.workers: list[subprocess.Popen] = []

    def _start(self, *command: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.folder / f"{command[1]}-{time.monotonic_ns()}.log", "w")
        return subprocess.Popen(command, env=env or self.env, stdout=log, stderr=log, process_group=0)

    def add_worker(self, *options: str, **env: str) -> subprocess.Popen:
        deadline = time.time() + 60
        while not self.file.exists() and time.time() < deadline:
            time.sleep(0.1)
        worker = self._start(DASK, "worker", "--scheduler-file", str(self.file), "--nthreads", "1",
                             "--no-dashboard", *options, env=dict(self.env, **env))
        self.workers.append(worker)
        return worker

    def client(self):
        return distributed.Client(scheduler_file=str(self.file), timeout=60)

    def wait_for(self, workers: int) -> dict[str, int]:
        """Wait until exactly ``workers`` are connected; their address -> pid of the worker process."""
        with self.client() as client:
            deadline = time.time() + 90
            while len(client.scheduler_info()["workers"]) != workers and time.time() < deadline:
                time.sleep(0.2)
            return client.run(os.getpid)

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()

    def close(self) -> None:
        for process in [*self.workers, self.scheduler]:
            self.kill(process)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Scheduler + two worker processes standing in for two machines; the first declares GPU=1."""
    folder = tmp_path_factory.mktemp("cluster")
    cluster = Cluster(folder, PROBE_SLOW_SETTING="50", PROBE_SLOW_S="4", PROBE_PID_FILE=str(folder / "pids"))
    cluster.gpu_worker = cluster.add_worker("--resources", "GPU=1")
    cluster.add_worker()
    cluster.wait_for(2)
    yield cluster
    cluster.close()


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory) -> Path:
    results = tmp_path_factory.mktemp("local") / "results"
    done = _cli("run", *JPEG_SWEEP, "-j", "2", "--output", str(results))
    assert done.returncode == 0, done.stderr
    return results


def test_a_local_cluster_gives_the_rows_of_local_workers(tmp_path, local_reference):
    done = _cli("run", *JPEG_SWEEP, "-j", "2", "--executor", "dask", "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert _comparable(tmp_path) == _comparable(local_reference)
    manifest = ResultsStore(tmp_path).manifests()[0]
    assert manifest["executor"] == "Dask LocalCluster of 2 worker(s)"


def test_without_dask_the_executor_says_how_to_install_it(tmp_path):
    (tmp_path / "distributed.py").write_text("raise ImportError('No module named distributed')\n")
    env = _env(PYTHONPATH=os.pathsep.join([str(tmp_path), str(PLUGINS)]))
    done = _cli("run", *JPEG_SWEEP, "--executor", "dask", "--output", str(tmp_path / "r"), env=env)
    assert done.returncode == 2 and 'pip install -e ".[dask]"' in done.stderr, done.stderr
    clash = _cli("run", *JPEG_SWEEP, "--executor", "dask", "--cell-timeout", "60", "--output", str(tmp_path / "r"))
    assert clash.returncode == 2 and "--cell-timeout is not enforced on Dask workers" in clash.stderr
    stray = _cli("run", *JPEG_SWEEP, "--scheduler", "tcp://127.0.0.1:1", "--output", str(tmp_path / "r"))
    assert stray.returncode == 2 and "need --executor dask" in stray.stderr
    assert not (tmp_path / "r" / "cells.jsonl").exists()


def test_two_worker_processes_by_hand_compute_the_sweep_and_gpu_cells_go_to_the_gpu_worker(
        tmp_path, cluster, local_reference):
    pids = cluster.wait_for(2)
    with cluster.client() as client:
        gpu_address = next(a for a, w in client.scheduler_info()["workers"].items() if w["resources"].get("GPU"))
    done = _cli("run", *JPEG_SWEEP, "--codecs", "jpeg,probe", "--settings", "probe=1,2,3",
                "--codec-option", "probe.device=cuda", "--executor", "dask", "--scheduler-file", str(cluster.file),
                "--output", str(tmp_path))
    assert done.returncode == 0, done.stderr
    rows = ResultsStore(tmp_path).rows()
    probe_pids = {row["extra"]["pid"] for row in rows if row["codec"] == "probe"}
    assert len([row for row in rows if row["codec"] == "probe"]) == 9 and probe_pids == {pids[gpu_address]}
    jpeg = {key: row for key, row in _comparable(tmp_path).items() if '"jpeg"' in key}
    assert jpeg == _comparable(local_reference)


def test_gpu_cells_without_a_gpu_worker_and_mismatched_workers_are_refused(tmp_path, cluster):
    no_gpu = Cluster(tmp_path / "no-gpu")
    try:
        no_gpu.add_worker()
        no_gpu.wait_for(1)
        done = _cli("run", *JPEG_SWEEP, "--codecs", "jpeg,probe", "--codec-option", "probe.device=cuda",
                    "--executor", "dask", "--scheduler-file", str(no_gpu.file), "--output", str(tmp_path / "a"))
        assert done.returncode == 1 and "no Dask worker declares the GPU resource" in done.stderr, done.stderr
    finally:
        no_gpu.close()
    stranger = cluster.add_worker(PROBE_VERSION_SUFFIX="-other")
    try:
        cluster.wait_for(3)
        done = _cli("run", *JPEG_SWEEP, "--codecs", "jpeg,probe", "--executor", "dask", "--scheduler-file",
                    str(cluster.file), "--output", str(tmp_path / "b"))
        assert done.returncode == 1, done.stderr
        assert "refusing Dask workers whose versions differ" in done.stderr
        assert "probe probe 1.0-other (driver: probe 1.0)" in done.stderr
        assert not (tmp_path / "b" / "cells.jsonl").exists()  # no work was sent
    finally:
        cluster.kill(stranger)
        cluster.workers.remove(stranger)
        cluster.wait_for(2)


def _one_image_dataset(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(folder / "noise.png")
    return folder


def test_a_worker_killed_mid_cell_is_retried_then_recorded_and_the_sweep_finishes(tmp_path, cluster):
    pid_file = cluster.folder / "pids"
    pid_file.unlink(missing_ok=True)
    dataset = _one_image_dataset(tmp_path / "images")
    args = ["run", "--codecs", "probe", "--settings", "probe=1,2,3,50", "--dataset", str(dataset), "--metrics",
            "psnr_rgb", "--quiet", "--executor", "dask", "--scheduler-file", str(cluster.file),
            "--output", str(tmp_path / "r")]
    driver = subprocess.Popen([sys.executable, "-m", "codecbench", *args], env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    killed: list[int] = []
    while driver.poll() is None:
        for pid in map(int, pid_file.read_text().split() if pid_file.exists() else []):
            if pid not in killed:
                os.kill(pid, signal.SIGKILL)  # the worker process running the slow cell
                killed.append(pid)
        time.sleep(0.05)
    err = driver.stderr.read()
    assert driver.returncode == 1, err
    assert len(killed) == 2  # allowed-failures 1: a second try elsewhere, then no more
    rows = {row["setting"]: row for row in ResultsStore(tmp_path / "r").rows()}
    assert rows[50.0]["error"].startswith("WorkerCrash: Dask workers died while running probe setting 50")
    assert rows[50.0]["extra"] == {"failure": "crash"}
    assert [rows[s]["error"] for s in (1.0, 2.0, 3.0)] == [None] * 3
    cluster.wait_for(2)  # the nannies restarted both workers
    again = _cli(*args)  # a crashed cell is retried by the next run
    assert again.returncode == 0, again.stderr
    assert ResultsStore(tmp_path / "r").rows()[-1]["error"] is None


def test_a_lost_scheduler_stops_the_driver_and_a_rerun_resumes(tmp_path):
    args = ["run", *JPEG_SWEEP, "--settings", "jpeg=2:98:4", "--executor", "dask", "--output", str(tmp_path / "r")]
    first = Cluster(tmp_path / "one")
    try:
        first.add_worker()
        first.wait_for(1)
        driver = subprocess.Popen([sys.executable, "-m", "codecbench", *args, "--scheduler-file", str(first.file)],
                                  env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        cells = tmp_path / "r" / "cells.jsonl"
        deadline = time.time() + 120
        while (not cells.exists() or cells.read_bytes().count(b"\n") < 5) and time.time() < deadline:
            time.sleep(0.02)
        first.kill(first.scheduler)
        _, err = driver.communicate(timeout=120)
    finally:
        first.close()
    assert driver.returncode == 1 and "lost the Dask scheduler" in err and "rerun the same command" in err, err
    stored = Counter(cell_key(row) for row in ResultsStore(tmp_path / "r").iter_raw_rows())
    assert 5 <= len(stored) < 75
    second = Cluster(tmp_path / "two")
    try:
        second.add_worker()
        second.wait_for(1)
        again = _cli(*args, "--scheduler-file", str(second.file))
    finally:
        second.close()
    assert again.returncode == 0, again.stderr
    rows = list(ResultsStore(tmp_path / "r").iter_raw_rows())
    per_cell = Counter(cell_key(row) for row in rows)
    assert len(per_cell) == 75 and set(per_cell.values()) == {1}  # resumed: nothing computed twice
    assert all(row["error"] is None for row in rows)


def test_the_slurm_recipe_cluster_runs_its_job_command_and_serves_codecbench(tmp_path):
    """README's SLURM recipe without SLURM: the job script is checked, and its worker command runs here."""
    jobqueue = pytest.importorskip("dask_jobqueue", reason='dask-jobqueue is not installed: pip install -e ".[dask]"')
    scheduler_file = tmp_path / "scheduler.json"
    cluster = jobqueue.SLURMCluster(queue="cpu", cores=1, processes=1, memory="4GB", walltime="04:00:00",
                                    scheduler_options={"scheduler_file": str(scheduler_file),
                                                       "dashboard_address": None})
    job = None
    try:
        script = cluster.job_script()
        for line in ("#SBATCH -p cpu", "#SBATCH --cpus-per-task=1", "#SBATCH --mem=4G", "#SBATCH -t 04:00:00"):
            assert line in script
        command = script.strip().splitlines()[-1].replace("dummy-name", "slurm-job-1")
        assert "distributed.cli.dask_worker" in command and "--nthreads 1" in command
        assert scheduler_file.exists()
        job = subprocess.Popen(command.split(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               process_group=0)  # what the SLURM job would run
        done = _cli("run", *JPEG_SWEEP, "--settings", "jpeg=20,80", "--executor", "dask", "--scheduler-file",
                    str(scheduler_file), "--output", str(tmp_path / "r"))
        assert done.returncode == 0, done.stderr
        assert len(ResultsStore(tmp_path / "r").rows()) == 6
    finally:
        if job is not None:
            Cluster.kill(job)
        cluster.close()
