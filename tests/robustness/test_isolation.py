"""No orphans: killing the driver, or a cell timing out, leaves no worker and no program it started."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from adversity import alive, codecbench_cli, descendants, write_bad_images

from codecbench.store import ResultsStore


def _one_image_folder(tmp_path: Path) -> Path:
    write_bad_images(tmp_path / "all")
    folder = tmp_path / "images"
    folder.mkdir()
    for name in ("a_good.png", "odd_sized.png"):
        (folder / name).write_bytes((tmp_path / "all" / name).read_bytes())
    return folder


def test_killing_the_driver_leaves_nothing_running_after_5_s(tmp_path, plugin_env, record_outcome):
    folder = _one_image_folder(tmp_path)
    pid_file = tmp_path / "pids"
    env = dict(plugin_env, MISBEHAVING_PID_FILE=str(pid_file))
    driver = subprocess.Popen([sys.executable, "-m", "codecbench", "run", "--codecs", "mis_program", "--dataset",
                               str(folder), "--settings", "mis_program=5", "--metrics", "psnr_rgb", "-j", "2",
                               "--output", str(tmp_path / "r"), "--quiet"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not pid_file.exists() or pid_file.read_text().count("\n") < 2):
        time.sleep(0.1)
    programs = [int(line.split()[0]) for line in pid_file.read_text().splitlines()]
    family = descendants(driver.pid)
    assert len(programs) == 2 and set(programs) <= family and len(family) >= 5  # 2 workers, 2 programs, reaper
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    time.sleep(5)
    survivors = [pid for pid in family if alive(pid)]
    assert survivors == [], f"still running 5 s after the driver was killed: {survivors}"
    record_outcome("isolation", "SIGKILL of the driver (-j 2, both workers running a program)",
                   f"all {len(family)} descendants gone after 5 s")


def test_a_timed_out_cell_kills_the_program_its_worker_started(tmp_path, plugin_env, record_outcome):
    folder = _one_image_folder(tmp_path)
    pid_file = tmp_path / "pids"
    env = dict(plugin_env, MISBEHAVING_PID_FILE=str(pid_file))
    start = time.time()
    result = codecbench_cli("run", "--codecs", "mis_program", "--dataset", str(folder), "--settings",
                            "mis_program=2,5", "--metrics", "psnr_rgb", "--cell-timeout", "mis_program=3",
                            "--output", str(tmp_path / "r"), "--quiet", env=env)
    assert result.returncode == 1, result.stderr
    rows = ResultsStore(tmp_path / "r").rows()
    assert sorted((r["setting"], (r["error"] or "")[:36]) for r in rows) == [
        (2.0, ""), (2.0, ""), (5.0, "CellTimeout: timed out after 3 s run"), (5.0, "CellTimeout: timed out after 3 s run")]
    assert time.time() - start < 100
    programs = [int(line.split()[0]) for line in pid_file.read_text().splitlines()]
    assert len(programs) == 2 and not any(alive(pid) for pid in programs)
    record_outcome("isolation", "encoder program running past --cell-timeout 3",
                   "error row 'timed out after 3 s', program killed with its worker")
