import json
import math

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
    assert json.loads(store.cells_path.read_text())["psnr_rgb"] == "inf"  # valid JSON on disk


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
