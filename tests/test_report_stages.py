"""The report's per-stage timing table of learned codecs: means of ``extra.stage_<name>_s`` next to the totals."""

from __future__ import annotations

import csv

import pytest

from codecbench.render.report import build_report
from codecbench.store import ResultsStore
from test_report import synthetic_row

SETTINGS = (10.0, 30.0, 50.0, 70.0, 90.0)


def _stages(image: int, setting: float) -> dict[str, float]:
    """Known per-stage seconds: functions of the image and setting, so their means are known."""
    return {"stage_transfer_to_device_s": 0.001, "stage_analysis_s": 0.1 + 0.01 * image,
            "stage_entropy_encode_s": 0.001 * setting, "stage_entropy_decode_s": 0.002 * setting,
            "stage_synthesis_s": 0.2 + 0.01 * image, "stage_transfer_to_host_s": 0.003, "stage_warmup_s": 0.5}


def _store(root, with_stages: bool) -> ResultsStore:
    store = ResultsStore(root)
    rows = []
    for image in range(3):
        for setting in SETTINGS:
            rows.append(synthetic_row(image, "jpeg", setting))
            extra = {"device": "cpu", **_stages(image, setting)} if with_stages else {"bpp_raw": 1.0}
            rows.append(synthetic_row(image, "conv_lstm", setting, extra=extra, encode_s=0.5 + image, decode_s=0.4))
    store.append(rows)
    return store


def test_stage_table_shows_the_mean_of_each_stage_beside_the_totals(tmp_path):
    store = _store(tmp_path / "results", with_stages=True)
    report = build_report(store.root, tmp_path / "out", metrics=("psnr_rgb",))
    assert {"stages.md", "stages.csv", "stages.tex"} <= {path.name for path in report.files}
    with open(tmp_path / "out" / "stages.csv", newline="") as f:
        records = {(r["codec"], r["stage"]): r for r in csv.DictReader(f)}
    assert {codec for codec, _ in records} == {"conv_lstm"}  # jpeg records no stage: no row
    expected = {"analysis": 0.11, "synthesis": 0.21, "entropy_encode": 0.05, "entropy_decode": 0.1,
                "transfer_to_device": 0.001, "transfer_to_host": 0.003, "warmup": 0.5, "encode": 1.5, "decode": 0.4}
    for stage, seconds in expected.items():
        record = records[("conv_lstm", stage)]
        assert float(record["mean_s"]) == pytest.approx(seconds)
        assert record["n_rows"] == "15" and record["device"] == "cpu"
    markdown = (tmp_path / "out" / "stages.md").read_text()
    header, _, row = markdown.splitlines()[2:5]
    assert header.startswith("| Codec | Device | Encode total | transfer to device | analysis | entropy encode | Decode total")
    assert header.rstrip(" |").endswith("warmup")  # a stage of another name comes last
    assert row.startswith("| conv_lstm | cpu | 1.5000 | 0.0010 | 0.1100 | 0.0500 | 0.4000 | 0.1000 | 0.2100 | 0.0030 | 0.5000")
    page = report.html_path.read_text()
    assert "time per stage of learned codecs" in page and "entropy decode" in page


def test_no_stage_table_without_stage_timings(tmp_path):
    store = _store(tmp_path / "results", with_stages=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "stages.md").write_text("stale")  # left by an earlier report into this folder
    report = build_report(store.root, out, metrics=("psnr_rgb",))
    assert not any(path.name.startswith("stages.") for path in report.files)
    assert not (out / "stages.md").exists()
    assert "time per stage" not in report.html_path.read_text()
