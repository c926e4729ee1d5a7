import json
import math
import shutil
from pathlib import Path

import pytest

from codecbench.errors import StoreError
from codecbench.store import COLUMNS, ResultsStore, cell_key, open_existing


def row(image="a", setting=50.0, psnr=30.0, error=None, codec="jpeg", target=None):
    return {
        "dataset": "d", "image": image, "image_sha256": f"sha-{image}", "width": 16, "height": 16,
        "codec": codec, "codec_version": "1", "setting": setting, "target_bpp": target,
        "bytes": 100, "bpp": 3.125, "psnr_rgb": psnr, "error": error,
    }


def test_append_and_read_back_with_all_columns(tmp_path):
    store = ResultsStore(tmp_path)
    store.append(row("a"))
    store.append([row("b"), row("c")])
    rows = store.rows()
    assert [r["image"] for r in rows] == ["a", "b", "c"]
    assert set(COLUMNS) <= set(rows[0])
    assert rows[0]["lpips"] is None


def test_last_row_of_a_cell_wins(tmp_path):
    store = ResultsStore(tmp_path)
    store.append(row("a", psnr=30.0, error="boom"))
    store.append(row("a", psnr=31.5))
    rows = store.rows()
    assert len(rows) == 1 and rows[0]["psnr_rgb"] == 31.5 and rows[0]["error"] is None


def test_infinite_and_nan_values_round_trip(tmp_path):
    store = ResultsStore(tmp_path)
    store.append(dict(row("a"), psnr_rgb=math.inf, lpips=math.nan))
    (stored,) = store.rows()
    assert stored["psnr_rgb"] == math.inf and math.isnan(stored["lpips"])
    on_disk = json.loads(store.cells_path.read_text())  # valid JSON, numeric columns stay numeric (format 2)
    assert on_disk["psnr_rgb"] is None and on_disk["lpips"] is None
    assert on_disk["nonfinite"] == {"psnr_rgb": "inf", "lpips": "nan"}


def test_partial_last_line_is_ignored_and_repaired_on_append(tmp_path):
    store = ResultsStore(tmp_path)
    store.append([row("a"), row("b")])
    with open(store.cells_path, "a") as f:
        f.write('{"dataset": "d", "image": "c", "image_sh')  # a write cut off by a kill
    assert [r["image"] for r in store.rows()] == ["a", "b"]
    store.append(row("d"))
    assert [r["image"] for r in store.rows()] == ["a", "b", "d"]
    assert all(json.loads(line) for line in store.cells_path.read_text().splitlines())


def test_damage_before_the_last_line_is_an_error_naming_the_line(tmp_path):
    store = ResultsStore(tmp_path)
    store.append(row("a"))
    with open(store.cells_path, "a") as f:
        f.write("not json\n")
    store.append(row("b"))
    with pytest.raises(StoreError, match=r"cells.jsonl:2"):
        store.rows()


def test_setting_and_target_cells_are_distinct_keys():
    assert cell_key(row(setting=50)) == cell_key(row(setting=50.0))
    assert cell_key(row(setting=50)) != cell_key(row(setting=51))
    assert cell_key(row(setting=40, target=0.5)) == cell_key(row(setting=60, target=0.5))
    assert cell_key(row(setting=40, target=0.5)) != cell_key(row(setting=40))


def test_manifests_and_crops(tmp_path):
    store = ResultsStore(tmp_path)
    store.write_manifest("r2", {"run_id": "r2", "started_at": "2026-01-02"})
    store.write_manifest("r1", {"run_id": "r1", "started_at": "2026-01-01"})
    assert [m["run_id"] for m in store.manifests()] == ["r1", "r2"]
    label = ResultsStore.crop_label("jpeg", 50.0)
    assert label == "jpeg-50"
    path = store.save_crop("abcdef0123456789", label, b"png")
    assert path == store.crop_path("abcdef0123456789", "jpeg-50") and path.read_bytes() == b"png"
    assert ResultsStore.crop_label("jpeg", 10, 0.25) == "jpeg-t0.25"


def test_open_existing_errors_name_the_directory(tmp_path):
    with pytest.raises(StoreError, match="no such results directory"):
        open_existing(tmp_path / "missing")
    with pytest.raises(StoreError, match="codecbench run"):
        open_existing(tmp_path)


def _damaged_store(tmp_path, where: str) -> ResultsStore:
    """Five rows a..e, with one damaged line put at the start, in the middle or at the end (newline-terminated)."""
    store = ResultsStore(tmp_path / where)
    store.append([row(name) for name in "abcde"])
    lines = store.cells_path.read_bytes().splitlines(keepends=True)
    damage = b'{"dataset": "d", "image": "x", "image_sh\xff\n'  # cut short and not UTF-8
    position = {"start": 0, "middle": 2, "end": len(lines)}[where]
    store.cells_path.write_bytes(b"".join(lines[:position] + [damage] + lines[position:]))
    return store


@pytest.mark.parametrize("where, line", [("start", 1), ("middle", 3), ("end", 6)])
def test_a_damaged_line_anywhere_is_named_and_repair_moves_it_aside(tmp_path, where, line):
    store = _damaged_store(tmp_path, where)
    original = store.cells_path.read_bytes()
    with pytest.raises(StoreError, match=rf"cells.jsonl:{line}: not UTF-8 text .*codecbench store repair"):
        store.rows()
    kept, moved = store.repair()
    assert (kept, moved) == (5, [line])
    assert [r["image"] for r in store.rows()] == list("abcde")
    (side,) = [json.loads(text) for text in (store.root / "cells.damaged.jsonl").read_text().splitlines()]
    assert side["line"] == line
    import base64

    assert base64.b64decode(side["bytes_b64"]) + b"\n" in original  # nothing lost, byte for byte
    assert store.repair() == (5, [])  # a repaired store needs nothing more


def test_valid_json_that_is_not_a_row_is_damage_too(tmp_path):
    store = ResultsStore(tmp_path)
    store.append(row("a"))
    with open(store.cells_path, "a") as f:
        f.write('[1, 2]\n{"image": "no key columns"}\n' + json.dumps(dict(row("z"), setting="fifty")) + "\n")
    store.append(row("b"))
    with pytest.raises(StoreError, match="cells.jsonl:2: not a JSON object but list"):
        store.rows()
    assert store.repair() == (2, [2, 3, 4])
    assert [r["image"] for r in store.rows()] == ["a", "b"]


@pytest.mark.slow
def test_store_repair_command_and_run_on_a_damaged_store(tmp_path):
    import subprocess
    import sys

    store = _damaged_store(tmp_path, "middle")
    cli = [sys.executable, "-m", "codecbench"]
    run = subprocess.run([*cli, "run", "--codecs", "jpeg", "--dataset", "sample", "--settings", "jpeg=50",
                          "--metrics", "psnr_rgb", "--output", str(store.root), "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert f"{store.cells_path}:3: not UTF-8 text" in run.stderr and "codecbench store repair" in run.stderr
    assert not (store.root / "runs").exists()  # stopped before any work
    report = subprocess.run([*cli, "report", str(store.root), "-o", str(tmp_path / "rep")], capture_output=True,
                            text=True, timeout=300)
    assert report.returncode == 1 and "cells.jsonl:3" in report.stderr and "Traceback" not in report.stderr
    repaired = subprocess.run([*cli, "store", "repair", str(store.root)], capture_output=True, text=True, timeout=60)
    assert repaired.returncode == 0, repaired.stderr
    assert "moved 1 unreadable line(s) (3)" in repaired.stdout and "5 rows kept" in repaired.stdout
    exported = subprocess.run([*cli, "export", str(store.root), "--format", "json"], capture_output=True, text=True,
                              timeout=120)
    assert exported.returncode == 0 and len(json.loads(exported.stdout)) == 5


# -- format versions ------------------------------------------------------------

STORE_V1 = Path(__file__).parent / "data" / "store_v1"  # written by codecbench 0.1 (format 1: "inf" strings)


def test_a_format_1_store_is_read_as_it_is_and_migrated_by_the_first_write(tmp_path):
    old = ResultsStore(STORE_V1)
    assert old.format_version() == 1
    before = old.rows()
    assert [r["psnr_rgb"] for r in before if r["codec"] == "png"] == [math.inf]
    shutil.copytree(STORE_V1, tmp_path / "results")
    store = ResultsStore(tmp_path / "results")
    store.append(row("new"))
    assert store.format_version() == 2
    assert json.loads((tmp_path / "results" / "store.json").read_text()) == {"format": "codecbench-results",
                                                                              "format_version": 2}
    after = store.rows()
    assert len(after) == len(before) + 1
    for old_row, new_row in zip(before, after):
        assert json.dumps(old_row, sort_keys=True) == json.dumps(new_row, sort_keys=True)
    lines = [json.loads(line) for line in store.cells_path.read_text().splitlines()]
    assert all(line[column] is None or isinstance(line[column], float)
               for line in lines for column in ("bpp", "psnr_rgb", "psnr_y", "ms_ssim_db") if column in line)
    assert [line["nonfinite"] for line in lines if line["nonfinite"]] == [
        {"psnr_rgb": "inf", "psnr_y": "inf", "ms_ssim_db": "inf"}]


def test_a_store_of_a_newer_format_is_refused(tmp_path):
    store = ResultsStore(tmp_path)
    store.append(row("a"))
    (tmp_path / "store.json").write_text('{"format": "codecbench-results", "format_version": 99}')
    with pytest.raises(StoreError, match="version 99"):
        store.rows()


def test_pandas_polars_and_pyarrow_read_cells_jsonl_directly(tmp_path):
    store = ResultsStore(tmp_path)
    store.append([dict(row("a"), psnr_rgb=math.inf), row("b", psnr=30.0), dict(row("c"), error="boom", psnr_rgb=None)])
    import pandas as pd

    frame = pd.read_json(store.cells_path, lines=True)
    assert frame["psnr_rgb"].dtype == float and frame["psnr_rgb"].isna().tolist() == [True, False, True]
    pyarrow_json = pytest.importorskip("pyarrow.json")
    table = pyarrow_json.read_json(store.cells_path)
    assert str(table.schema.field("psnr_rgb").type) == "double" and table.num_rows == 3
    polars = pytest.importorskip("polars")
    assert polars.read_ndjson(store.cells_path)["psnr_rgb"].to_list() == [None, 30.0, None]
