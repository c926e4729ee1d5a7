"""Claims and shards (codecbench.claims): concurrent runs on one directory, crashed claim holders, --shard."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from codecbench.claims import LEASE_S, CellClaims, Shard, claim_name
from codecbench.errors import UsageError
from codecbench.store import ResultsStore, cell_key

pytestmark = pytest.mark.slow  # two `codecbench run` processes on one directory

KEY = ("kodak", "ab" * 32, "jpeg", "9.9", 50.0, None)

_CLAIM_THEN_HANG = """
import sys, time
from codecbench.claims import CellClaims
claims = CellClaims(sys.argv[1], "holder")
assert claims.acquire(tuple(__import__("json").loads(sys.argv[2]))) is None
print("claimed", flush=True)
time.sleep(600)
"""


def test_a_claim_held_by_a_live_run_is_refused_until_released(tmp_path):
    first, second = CellClaims(tmp_path, "run-1"), CellClaims(tmp_path, "run-2")
    assert first.acquire(KEY, "jpeg 50 on kodim01") is None
    holder = second.acquire(KEY)
    assert holder["run_id"] == "run-1" and holder["pid"] == os.getpid() and holder["cell"] == "jpeg 50 on kodim01"
    first.release(KEY)
    assert second.acquire(KEY) is None
    second.close()
    assert not (tmp_path / "claims" / claim_name(KEY)).exists()


def test_the_claim_of_a_killed_process_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", _CLAIM_THEN_HANG, str(tmp_path), json.dumps(list(KEY))],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "claimed"
    claims = CellClaims(tmp_path, "me")
    assert claims.acquire(KEY)["pid"] == holder.pid  # alive: refused
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert claims.acquire(KEY) is None  # dead: taken over at once (same host)
    claims.close()


def test_a_reused_pid_does_not_keep_a_claim_alive(tmp_path):
    path = tmp_path / "claims" / claim_name(KEY)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"run_id": "old", "host": socket.gethostname(), "pid": os.getpid(),
                                "process_start": "1"}))  # this pid, but a process started at another time
    assert CellClaims(tmp_path, "me").acquire(KEY) is None


def test_claims_of_another_host_expire_after_the_lease(tmp_path):
    path = tmp_path / "claims" / claim_name(KEY)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"run_id": "far", "host": "another-host", "pid": 1}))
    claims = CellClaims(tmp_path, "me")
    assert claims.acquire(KEY)["host"] == "another-host"  # refreshed recently: its run is alive
    old = time.time() - LEASE_S - 5
    os.utime(path, (old, old))
    assert claims.acquire(KEY) is None


def test_a_new_run_sweeps_away_stale_claims(tmp_path):
    folder = tmp_path / "claims"
    folder.mkdir()
    stale = folder / claim_name(KEY)
    stale.write_text(json.dumps({"run_id": "dead", "host": socket.gethostname(), "pid": 2 ** 22 + 7}))
    CellClaims(tmp_path, "me").close()
    assert not stale.exists()


def test_shards_split_the_cells_by_a_sha256_of_the_key():
    keys = [("sample", f"{i:064x}", codec, "1", float(s), None) for i in range(40) for codec in ("jpeg", "webp")
            for s in (10, 50, 90)]
    shards = [Shard.parse(f"{i}/3") for i in (1, 2, 3)]
    owners = [[shard for shard in shards if shard.picks(key)] for key in keys]
    assert all(len(o) == 1 for o in owners)  # every cell in exactly one shard
    sizes = Counter(str(o[0]) for o in owners)
    assert all(60 <= n <= 100 for n in sizes.values()), sizes  # 240 cells: about 80 each
    # the documented rule, computed independently: SHA-256 of the key as JSON, modulo N, 1-based
    digest = int(hashlib.sha256(json.dumps(list(KEY)).encode()).hexdigest(), 16)
    assert Shard.parse(f"{digest % 5 + 1}/5").picks(KEY)


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_bad_shards_name_the_option(text):
    with pytest.raises(UsageError, match="--shard"):
        Shard.parse(text)


def _run(results: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "codecbench", "run", "--codecs", "jpeg,webp", "--dataset", "sample",
         "--settings", "jpeg=10:90:10", "--settings", "webp=10:90:20", "--metrics", "psnr_rgb", "--quiet",
         "--preview-images", "0", "--output", str(results), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_concurrent_runs_compute_each_cell_exactly_once(tmp_path):
    runs = [_run(tmp_path), _run(tmp_path)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    rows = list(ResultsStore(tmp_path).iter_raw_rows())  # every line readable: no corruption
    per_cell = Counter(cell_key(row) for row in rows)
    assert len(per_cell) == 3 * (9 + 5) and set(per_cell.values()) == {1}, per_cell.most_common(3)
    computed = Counter(row["run_id"] for row in rows)
    assert len(computed) == 2, computed  # both runs did part of the work
    assert not list((tmp_path / "claims").glob("*.claim"))


def test_a_killed_run_leaves_no_claim_that_blocks(tmp_path):
    run = _run(tmp_path, "-j", "1")
    cells = tmp_path / "cells.jsonl"
    deadline = time.time() + 120
    while (not cells.exists() or cells.read_bytes().count(b"\n") < 3) and time.time() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.communicate()
    assert list((tmp_path / "claims").glob("*.claim")), "the killed run held claims"
    again = _run(tmp_path)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    per_cell = Counter(cell_key(row) for row in ResultsStore(tmp_path).iter_raw_rows())
    assert len(per_cell) == 42 and set(per_cell.values()) == {1}
