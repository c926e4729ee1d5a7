"""codecbench merge: identical rows once, conflicts reported and kept, results win over failures, shards join."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from codecbench.merging import merge_results
from codecbench.store import ResultsStore, cell_key

SHA = "cd" * 32


def _row(setting: float, run: str, bytes_: int = 1000, error: str | None = None, **extra) -> dict:
    row = {"dataset": "sample", "image": "astronaut", "image_sha256": SHA, "width": 10, "height": 10,
           "codec": "jpeg", "codec_version": "libjpeg-turbo 3", "setting": setting, "target_bpp": None,
           "bytes": None if error else bytes_, "bpp": None if error else bytes_ * 8 / 100,
           "psnr_rgb": None if error else 30.0 + setting / 10, "encode_s": 0.01, "decode_s": 0.02,
           "error": error, "extra": None, "run_id": run, "finished_at": f"2026-01-01T00:00:0{len(run) % 10}"}
    row.update(extra)
    return row


def _store(path: Path, rows: list[dict]) -> Path:
    ResultsStore(path).append(rows)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codecbench", *args], capture_output=True, text=True)


def test_identical_cells_are_written_once_and_every_other_row_is_kept(tmp_path):
    a = _store(tmp_path / "a", [_row(10, "run-a"), _row(50, "run-a")])
    b = _store(tmp_path / "b", [_row(50, "run-b-later", encode_s=9.0), _row(90, "run-b")])  # 50: same result
    summary = merge_results([a, b], tmp_path / "out")
    written = list(ResultsStore(tmp_path / "out").iter_raw_rows())
    assert (summary.rows_written, summary.cells, summary.identical_dropped, summary.conflicts) == (3, 3, 1, [])
    assert [(row["setting"], row["run_id"]) for row in written] == [(10, "run-a"), (50, "run-a"), (90, "run-b")]


@pytest.mark.slow
def test_conflicting_duplicates_are_reported_and_both_kept(tmp_path):
    a = _store(tmp_path / "a", [_row(50, "run-a", bytes_=1000)])
    b = _store(tmp_path / "b", [_row(50, "run-b", bytes_=1004)])
    result = _cli("merge", str(a), str(b), "-o", str(tmp_path / "out"))
    assert result.returncode == 1, result.stderr
    assert (f"conflict: jpeg setting 50 on sample/astronaut: 2 different results (columns bpp, bytes) in {a}, {b}; "
            f"the one from {b} is read") in result.stderr
    store = ResultsStore(tmp_path / "out")
    assert [row["bytes"] for row in store.iter_raw_rows()] == [1000, 1004]
    assert [row["bytes"] for row in store.rows()] == [1004]  # the later input is the one read


def test_a_result_wins_over_a_failure_whatever_the_order(tmp_path):
    failed = _store(tmp_path / "failed", [_row(50, "run-f", error="WorkerCrash: killed", extra={"failure": "crash"})])
    ok = _store(tmp_path / "ok", [_row(50, "run-ok")])
    for order, out in (([ok, failed], "out1"), ([failed, ok], "out2")):
        summary = merge_results(order, tmp_path / out)
        store = ResultsStore(tmp_path / out)
        assert summary.rows_written == 2 and len(list(store.iter_raw_rows())) == 2  # the failure is kept too
        assert [row["error"] for row in store.rows()] == [None]


@pytest.mark.slow
def test_merge_refuses_an_output_that_already_holds_results(tmp_path):
    a = _store(tmp_path / "a", [_row(10, "run-a")])
    result = _cli("merge", str(a), "-o", str(a))
    assert result.returncode == 2 and "already holds results" in result.stderr
    assert len(list(ResultsStore(a).iter_raw_rows())) == 1


def _comparable(path: Path) -> dict[str, str]:
    timing = ("encode_s", "decode_s", "run_id", "finished_at")
    return {json.dumps(cell_key(row)): json.dumps({k: v for k, v in row.items() if k not in timing}, sort_keys=True)
            for row in ResultsStore(path).rows()}


@pytest.mark.slow
def test_shards_are_disjoint_and_merge_into_the_whole_sweep(tmp_path):
    common = ["run", "--codecs", "jpeg", "--dataset", "sample", "--settings", "jpeg=10:90:10", "--metrics",
              "psnr_rgb,ssim", "--quiet"]
    shards = [tmp_path / f"shard{i}" for i in (1, 2, 3)]
    for i, folder in enumerate(shards, 1):
        assert _cli(*common, "--output", str(folder), "--shard", f"{i}/3").returncode == 0
    assert _cli(*common, "--output", str(tmp_path / "whole")).returncode == 0
    parts = [set(_comparable(folder)) for folder in shards]
    assert all(parts) and sum(map(len, parts)) == len(set().union(*parts)) == 27  # disjoint, complete
    merged = _cli("merge", *map(str, shards), "-o", str(tmp_path / "merged"))
    assert merged.returncode == 0, merged.stderr
    assert _comparable(tmp_path / "merged") == _comparable(tmp_path / "whole")
    assert len(list((tmp_path / "merged" / "runs").glob("*.json"))) == 3
