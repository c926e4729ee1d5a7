"""Random SIGKILLs of the driver and of single workers during a sweep; resuming ends in exactly the uninterrupted store."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from adversity import codecbench_cli, descendants

from codecbench.store import ResultsStore, cell_key

TIMING_COLUMNS = ("encode_s", "decode_s", "run_id", "finished_at")
KILLS = 11  # at least 10 (the floor), landing at random points


def _rows_on_disk(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _workers(driver: int) -> list[int]:
    found = []
    for pid in descendants(driver):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"codecbench.workers" in f.read():
                    found.append(pid)
        except OSError:
            pass
    return found


def _comparable(store: ResultsStore) -> dict[str, str]:
    """Latest row of every cell, timing columns removed, as canonical JSON keyed by the cell key."""
    return {json.dumps(key): json.dumps({k: v for k, v in row.items() if k not in TIMING_COLUMNS}, sort_keys=True)
            for key, row in ((cell_key(row), row) for row in store.rows())}


def test_random_kills_then_resume_equal_an_uninterrupted_run(tmp_path, record_outcome):
    kodak = os.environ.get("CODECBENCH_SHARED") and Path(os.environ["CODECBENCH_SHARED"], "datasets", "kodak")
    if kodak and (kodak / "kodim01.png").is_file():
        dataset, settings, label = str(kodak), "jpeg=10,30,50,70,90", "Kodak, jpeg × 5 settings (120 cells)"
    else:
        dataset, settings, label = "sample", "jpeg=5:95:5", "sample, jpeg × 19 settings (57 cells)"
    common = ["--codecs", "jpeg", "--dataset", dataset, "--settings", settings, "--metrics", "psnr_rgb,ssim",
              "-j", "2", "--quiet", "--preview-images", "0"]
    reference = codecbench_cli("run", *common, "--output", str(tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr
    expected = _comparable(ResultsStore(tmp_path / "reference"))

    results = tmp_path / "killed"
    cells = results / "cells.jsonl"
    rng = random.Random(12)
    kills = {"driver": 0, "worker": 0}
    while sum(kills.values()) < KILLS and _rows_on_disk(cells) < len(expected):
        driver = subprocess.Popen([sys.executable, "-m", "codecbench", "run", *common, "--output", str(results)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for victim in ("worker", "driver") if rng.random() < 0.8 else ("driver",):
            target = _rows_on_disk(cells) + rng.randint(1, 6)
            deadline = time.time() + 120
            while driver.poll() is None and _rows_on_disk(cells) < target and time.time() < deadline:
                time.sleep(0.01)
            if driver.poll() is not None:
                break
            workers = _workers(driver.pid)
            if victim == "worker" and workers:
                os.kill(rng.choice(workers), signal.SIGKILL)
            else:
                driver.send_signal(signal.SIGKILL)
            kills[victim] += 1
        driver.kill()
        driver.wait()
    assert sum(kills.values()) >= 10, kills
    final = codecbench_cli("run", *common, "--output", str(results), "--retry-failed")
    assert final.returncode == 0, final.stderr
    store = ResultsStore(results)
    got = _comparable(store)
    lost, extra = expected.keys() - got.keys(), got.keys() - expected.keys()
    changed = [key for key in expected.keys() & got.keys() if expected[key] != got[key]]
    successes: dict[str, int] = {}
    for row in store.iter_raw_rows():
        if not row.get("error"):
            key = json.dumps(cell_key(row))
            successes[key] = successes.get(key, 0) + 1
    duplicated = [key for key, count in successes.items() if count > 1]
    crash_rows = sum(1 for row in store.iter_raw_rows() if row.get("error"))
    assert not lost and not extra and not changed and not duplicated, (lost, extra, changed[:3], duplicated[:3])
    record_outcome("kill and resume", f"{label}, {kills['driver']} driver + {kills['worker']} worker SIGKILLs",
                   f"{len(got)}/{len(expected)} cells equal to the uninterrupted run (timings aside); 0 lost, "
                   f"0 duplicated, 0 changed; {crash_rows} WorkerCrash rows, each recomputed")
