"""RD-curve regression checks: baselines, `codecbench check` outcomes, exit codes, reports.

Results are built with ``ResultsStore.append`` from synthetic but realistic
curves (PSNR rising 20 dB per decade of bpp, MS-SSIM in dB 12 dB per decade;
honest bpp = 8 × bytes / pixels) on the three ``sample`` images and their real
pixel checksums; expected BD-rates are hand-derived or come from the
independent ``bjontegaard`` package.
"""

from __future__ import annotations

import difflib
import json
import math
import re
import statistics
import xml.etree.ElementTree as ET
from pathlib import Path

import bjontegaard
import pytest
from click.testing import CliRunner

from codecbench.cli.baseline import baseline as baseline_command
from codecbench.cli.check import check as check_command
from codecbench.regression.baseline import dumps_baseline, load_baseline, make_baseline, setting_key
from codecbench.regression.check import compare
from codecbench.store import ResultsStore

# name, width, height, pixel SHA-256 (codecbench/data/datasets.yaml), PSNR offset (dB), MS-SSIM offset (dB), size factor
IMAGES = (
    ("astronaut.png", 512, 512, "a8c429c18afa7b0fd5673e598d73a21225d94c864a71bbb3885126fdecb41071", 32.0, 18.4, 1.0),
    ("chelsea.png", 451, 300, "416b729128bfb2c3d1eb69bf9b1734a796293abc17939267b2dc94f8a5784031", 34.0, 19.1, 0.8),
    ("coffee.png", 600, 400, "0ce2b51640b9c95f19617f03eabf40c3f0368589cc1ee1190b70966165ac184f", 31.0, 17.9, 1.2),
)
SETTINGS = tuple(float(q) for q in range(10, 100, 10))
CODECS = {"jpeg": 0.15, "webp": 0.10}  # bpp at setting 0 before the per-image size factor


def cell(codec, setting, image, *, rate=1.0, psnr_shift=0.0, version="1.0", lpips_shift=0.0):
    """One successful sweep row; ``rate`` scales the bitstream size, ``psnr_shift`` moves PSNR (dB)."""
    name, width, height, sha, psnr0, msssim0, size = image
    nominal = CODECS[codec] * size * math.exp(0.035 * setting)
    n_bytes = round(nominal * width * height / 8 * rate)
    bpp = 8 * n_bytes / (width * height)
    ms_ssim_db = msssim0 + 12 * math.log10(nominal)  # quality depends on the setting, not on `rate`
    return {
        "dataset": "sample", "image": name, "image_sha256": sha, "width": width, "height": height,
        "codec": codec, "codec_version": version, "setting": setting, "target_bpp": None,
        "bytes": n_bytes, "bpp": bpp,
        "psnr_rgb": psnr0 + 20 * math.log10(nominal) + psnr_shift, "psnr_y": psnr0 + 1 + 20 * math.log10(nominal),
        "ssim": None, "ms_ssim": 1 - 10 ** (-ms_ssim_db / 10), "ms_ssim_db": ms_ssim_db,
        "lpips": 0.5 / (1 + nominal) + lpips_shift,
        "encode_s": 0.01, "decode_s": 0.005, "error": None, "extra": None,
        "run_id": "run-1", "finished_at": "2025-01-01T00:00:00+00:00",
    }


def rows(codecs=tuple(CODECS), settings=SETTINGS, **shifts):
    return [cell(codec, s, image, **shifts) for codec in codecs for s in settings for image in IMAGES]


def store_with(path: Path, cells) -> Path:
    """A results directory holding ``cells`` and a run manifest that lists their images and codecs."""
    store = ResultsStore(path)
    store.append(cells)
    store.write_manifest("run-1", {
        "run_id": "run-1", "started_at": "2025-01-01T00:00:00+00:00",
        "datasets": {"sample": {c["image"]: c["image_sha256"] for c in cells}},
        "codecs": {c["codec"]: c["codec_version"] for c in cells},
    })
    return path


@pytest.fixture
def baseline_file(tmp_path) -> Path:
    results = store_with(tmp_path / "reference", rows())
    out = tmp_path / "baselines" / "sample.json"
    outcome = CliRunner().invoke(baseline_command, [str(results), "-o", str(out)])
    assert outcome.exit_code == 0, outcome.output
    return out


def run_check(results: Path, baseline: Path, *args: str):
    return CliRunner().invoke(check_command, [str(results), "--baseline", str(baseline), *args])


def mean_curve(cells, codec, metric):
    """Per setting (ascending), mean bpp and mean metric over the images, computed here independently."""
    bpp, quality = [], []
    for setting in SETTINGS:
        chosen = [c for c in cells if c["codec"] == codec and c["setting"] == setting]
        bpp.append(statistics.fmean(c["bpp"] for c in chosen))
        quality.append(statistics.fmean(c[metric] for c in chosen))
    return bpp, quality


# -- baselines -----------------------------------------------------------------


def test_baseline_holds_checksums_means_and_per_image_values(baseline_file):
    frozen = json.loads(baseline_file.read_text())
    part = frozen["datasets"]["sample"]
    assert part["checksums"] == {name: sha for name, _, _, sha, *_ in IMAGES}
    jpeg = part["codecs"]["jpeg"]
    assert jpeg["codec_version"] == "1.0"
    assert sorted(float(k) for k in jpeg["settings"]) == list(SETTINGS)
    setting = jpeg["settings"]["50"]
    expected = [cell("jpeg", 50.0, image) for image in IMAGES]
    assert {name: v["bytes"] for name, v in setting["images"].items()} == {c["image"]: c["bytes"] for c in expected}
    assert setting["mean"]["bpp"] == pytest.approx(statistics.fmean(c["bpp"] for c in expected), rel=1e-11)
    assert setting["mean"]["psnr_rgb"] == pytest.approx(statistics.fmean(c["psnr_rgb"] for c in expected), rel=1e-11)
    assert "ssim" not in setting["mean"]  # not computed in these rows: left out, not null
    text = baseline_file.read_text()
    assert "encode_s" not in text and "decode_s" not in text and "run-1" not in text  # no timing, no run ids


def test_two_baselines_of_the_same_results_are_byte_identical(tmp_path, baseline_file):
    again = tmp_path / "again.json"
    assert CliRunner().invoke(baseline_command, [str(tmp_path / "reference"), "-o", str(again)]).exit_code == 0
    assert again.read_bytes() == baseline_file.read_bytes()


def test_baseline_does_not_depend_on_row_order(tmp_path, baseline_file):
    results = store_with(tmp_path / "reversed", list(reversed(rows())))
    other = tmp_path / "reversed.json"
    assert CliRunner().invoke(baseline_command, [str(results), "-o", str(other)]).exit_code == 0
    assert other.read_bytes() == baseline_file.read_bytes()


def test_one_changed_cell_changes_two_lines_of_the_baseline(tmp_path, baseline_file):
    changed = rows()
    target = next(c for c in changed if c["codec"] == "webp" and c["setting"] == 30.0 and c["image"] == "coffee.png")
    target["psnr_rgb"] += 0.5
    other = tmp_path / "changed.json"
    results = store_with(tmp_path / "changed", changed)
    assert CliRunner().invoke(baseline_command, [str(results), "-o", str(other)]).exit_code == 0
    diff = [line for line in difflib.unified_diff(baseline_file.read_text().splitlines(),
                                                   other.read_text().splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    # the image's line and its setting's mean line, before and after
    assert len(diff) == 4
    assert sum('"coffee.png"' in line for line in diff) == 2 and sum('"mean"' in line for line in diff) == 2


def test_settings_are_in_numeric_order_and_floats_have_at_most_12_digits():
    text = dumps_baseline(make_baseline(rows(("jpeg",), settings=(5.0, 100.0, 10.0, 50.0)), []))
    keys = re.findall(r'^ +"([0-9.]+)": \{$', text, flags=re.MULTILINE)
    assert keys == ["5", "10", "50", "100"]  # not the string order 10, 100, 5, 50
    frozen = json.loads(text)
    for values in frozen["datasets"]["sample"]["codecs"]["jpeg"]["settings"]["100"]["images"].values():
        for value in values.values():
            assert float(value) == float(f"{float(value):.12g}")  # nothing beyond 12 significant digits
    raw = cell("jpeg", 100.0, IMAGES[0])["psnr_rgb"]
    assert raw != float(f"{raw:.12g}")  # (the raw value did have more)


def test_baseline_leaves_failed_cells_and_older_versions_out(tmp_path):
    old = [dict(c, codec_version="0.9", finished_at="2024-01-01T00:00:00+00:00", bytes=1) for c in rows(("jpeg",))]
    failed = dict(cell("jpeg", 20.0, IMAGES[0]), error="CodecError: boom", bytes=None, bpp=None, psnr_rgb=None)
    store = ResultsStore(store_with(tmp_path / "mixed", old + rows(("jpeg",)) + [failed]))  # the failure wins its cell
    notes: list[str] = []
    frozen = make_baseline(store.rows(), store.manifests(), notes=notes)
    jpeg = frozen["datasets"]["sample"]["codecs"]["jpeg"]
    assert jpeg["codec_version"] == "1.0"
    assert "astronaut.png" not in jpeg["settings"]["20"]["images"]
    assert any("0.9" in note for note in notes) and any("boom" in note for note in notes)


def test_baseline_of_missing_results_exits_2(tmp_path):
    outcome = CliRunner().invoke(baseline_command, [str(tmp_path / "nowhere"), "-o", str(tmp_path / "b.json")])
    assert outcome.exit_code == 2 and "no such results directory" in outcome.output
    assert not (tmp_path / "b.json").exists()


# -- check outcomes ------------------------------------------------------------


def test_identical_results_pass(tmp_path, baseline_file):
    outcome = run_check(tmp_path / "reference", baseline_file, "--junit", str(tmp_path / "junit.xml"))
    assert outcome.exit_code == 0, outcome.output
    assert "✅ no regressions" in outcome.stdout
    assert "| 27/27 |" in outcome.stdout  # every bitstream has the baseline's size
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.get("failures") == "0" and suite.get("tests") == "8"  # 2 codecs × coverage, bpp, psnr_rgb, ms_ssim


def test_quality_lowered_by_0_2_db_fails_with_the_bd_rate_of_an_independent_implementation(tmp_path, baseline_file):
    degraded = rows(psnr_shift=-0.2)
    outcome = run_check(store_with(tmp_path / "degraded", degraded), baseline_file,
                        "--junit", str(tmp_path / "junit.xml"))
    assert outcome.exit_code == 1, outcome.output
    result = compare(load_baseline(baseline_file), degraded)
    for codec in CODECS:
        expected = bjontegaard.bd_rate(*mean_curve(rows(), codec, "psnr_rgb"), *mean_curve(degraded, codec, "psnr_rgb"),
                                       method="pchip")
        measured = next(c for c in result.codecs if c.codec == codec).bd_rate["psnr_rgb"]
        # PSNR rises 20 dB per decade of rate: 0.2 dB costs 10^(0.2/20) − 1 = 2.33 % more bits
        assert measured == pytest.approx(expected, abs=1e-6) and measured == pytest.approx(2.33, abs=0.01)
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    failed = {(case.get("classname"), case.get("name")) for case in suite if case.find("failure") is not None}
    assert failed == {("sample.jpeg", "psnr_rgb"), ("sample.webp", "psnr_rgb")}
    assert suite.get("failures") == "2"


def test_rate_raised_by_2_percent_fails_on_bd_rate_and_bpp_drift(tmp_path, baseline_file):
    results = store_with(tmp_path / "bigger", rows(rate=1.02))
    outcome = run_check(results, baseline_file, "--junit", str(tmp_path / "junit.xml"))
    assert outcome.exit_code == 1, outcome.output
    result = compare(load_baseline(baseline_file), rows(rate=1.02))
    for comparison in result.codecs:
        # every point needs 2 % more bits at unchanged quality: BD-rate is +2 % (up to byte rounding)
        assert comparison.bd_rate["psnr_rgb"] == pytest.approx(2.0, abs=0.01)
        assert comparison.bd_rate["ms_ssim"] == pytest.approx(2.0, abs=0.01)
        assert all(s.bpp_drift_percent == pytest.approx(2.0, abs=0.02) for s in comparison.settings)
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.get("failures") == "6"  # per codec: bpp, psnr_rgb and ms_ssim
    assert "❌" in outcome.stdout and "BD-rate (psnr_rgb) +2.0" in outcome.stdout


def test_a_disappeared_codec_fails_and_its_checks_are_skipped(tmp_path, baseline_file):
    outcome = run_check(store_with(tmp_path / "jpeg-only", rows(("jpeg",))), baseline_file,
                        "--junit", str(tmp_path / "junit.xml"))
    assert outcome.exit_code == 1
    assert "codec disappeared" in outcome.stdout
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    webp = {case.get("name"): case for case in suite if case.get("classname") == "sample.webp"}
    assert webp["coverage"].find("failure") is not None
    assert all(webp[name].find("skipped") is not None for name in ("bpp", "psnr_rgb", "ms_ssim"))
    assert suite.get("failures") == "1" and suite.get("skipped") == "3"


def test_a_disappeared_setting_fails(tmp_path, baseline_file):
    fewer = [c for c in rows() if not (c["codec"] == "jpeg" and c["setting"] == 50.0)]
    outcome = run_check(store_with(tmp_path / "fewer", fewer), baseline_file)
    assert outcome.exit_code == 1
    assert "**sample/jpeg**: setting(s) disappeared: 50" in outcome.stdout


def test_a_failed_cell_is_a_missing_cell_with_its_error(tmp_path, baseline_file):
    current = rows()
    broken = next(c for c in current if c["codec"] == "webp" and c["setting"] == 70.0 and c["image"] == "chelsea.png")
    broken.update(error="CodecError: encoder crashed\ntraceback…", bytes=None, bpp=None, psnr_rgb=None, ms_ssim=None)
    outcome = run_check(store_with(tmp_path / "broken", current), baseline_file)
    assert outcome.exit_code == 1
    assert "1 cell(s) missing: chelsea.png at 70 (failed: CodecError: encoder crashed)" in outcome.stdout


def test_an_improvement_is_reported_and_passes(tmp_path, baseline_file):
    outcome = run_check(store_with(tmp_path / "smaller", rows(rate=0.97)), baseline_file)
    assert outcome.exit_code == 0, outcome.output
    assert "🟢 Improvements" in outcome.stdout and "BD-rate (psnr_rgb) -3.0" in outcome.stdout


def test_a_new_codec_and_setting_are_reported_without_failing(tmp_path, baseline_file):
    extra = rows() + [dict(c, codec="jpeg2000") for c in rows(("jpeg",))] + rows(("webp",), settings=(95.0,))
    outcome = run_check(store_with(tmp_path / "extra", extra), baseline_file)
    assert outcome.exit_code == 0, outcome.output
    assert "**sample/jpeg2000**: new codec" in outcome.stdout
    assert "**sample/webp**: new setting(s): 95" in outcome.stdout


def test_moving_along_the_same_curve_is_a_change_not_a_regression(tmp_path, baseline_file):
    # the encoder maps every setting 5 % further up the same RD curve: more bits, proportionally more quality
    further = math.log(1.05) / 0.035  # setting offset that multiplies the nominal rate by 1.05
    moved = [dict(cell(codec, s + further, image), setting=s) for codec in CODECS for s in SETTINGS for image in IMAGES]
    result = compare(load_baseline(baseline_file), moved, metrics=["psnr_rgb"])
    assert result.exit_code == 0, [f.message for f in result.findings]
    assert all(s.verdict == "change" for c in result.codecs for s in c.settings)
    assert all(abs(c.bd_rate["psnr_rgb"]) < 0.01 for c in result.codecs)


def test_lpips_is_lower_is_better(tmp_path, baseline_file):
    frozen = load_baseline(baseline_file)
    worse = compare(frozen, rows(lpips_shift=0.01), metrics=["lpips"])
    better = compare(frozen, rows(lpips_shift=-0.01), metrics=["lpips"])
    assert worse.exit_code == 1 and all(c.bd_rate["lpips"] > 0.1 for c in worse.codecs)
    assert better.exit_code == 0 and all(c.bd_rate["lpips"] < -0.1 for c in better.codecs)


def test_a_changed_codec_version_is_reported_at_the_top_and_still_compared(tmp_path, baseline_file):
    outcome = run_check(store_with(tmp_path / "upgraded", rows(version="2.0", psnr_shift=-0.2)), baseline_file)
    assert outcome.exit_code == 1  # compared: the upgrade lowered quality
    text = outcome.stdout
    assert text.index("Codec versions changed") < text.index("### ❌ Regressions")
    assert "**sample/jpeg**: codec version 1.0 → 2.0" in text


def test_timing_never_fails(tmp_path, baseline_file):
    slow = [dict(c, encode_s=100.0, decode_s=100.0) for c in rows()]
    assert run_check(store_with(tmp_path / "slow", slow), baseline_file).exit_code == 0


def test_tolerances_are_options(tmp_path, baseline_file):
    results = store_with(tmp_path / "bigger", rows(rate=1.02))
    assert run_check(results, baseline_file, "--max-bd-rate", "3", "--max-bpp-drift", "3").exit_code == 0
    lowered = store_with(tmp_path / "lowered", rows(psnr_shift=-0.2))
    assert run_check(lowered, baseline_file, "--metrics", "psnr_rgb", "--max-bd-rate", "3",
                     "--max-drift", "psnr_rgb=0.25").exit_code == 0
    assert run_check(lowered, baseline_file, "--max-drift", "psnr_rgb").exit_code == 2  # click usage error


# -- unusable input (exit 2) -----------------------------------------------------


def test_missing_results_dir_exits_2(tmp_path, baseline_file):
    outcome = run_check(tmp_path / "nowhere", baseline_file, "--junit", str(tmp_path / "junit.xml"))
    assert outcome.exit_code == 2 and "no such results directory" in outcome.stdout
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert suite.get("errors") == "1"


def test_missing_baseline_exits_2(tmp_path):
    outcome = run_check(store_with(tmp_path / "r", rows()), tmp_path / "absent.json")
    assert outcome.exit_code == 2 and "no such baseline file" in outcome.stdout


@pytest.mark.parametrize("content, reason", [
    ("{not json", "not valid JSON (line 1"),
    ('{"format": "something-else"}', '"format" is not "codecbench-baseline"'),
    ('{"format": "codecbench-baseline", "format_version": 99, "datasets": {}}', '"format_version" is 99'),
])
def test_garbled_baseline_exits_2(tmp_path, content, reason):
    path = tmp_path / "garbled.json"
    path.write_text(content)
    outcome = run_check(store_with(tmp_path / "r", rows()), path)
    assert outcome.exit_code == 2 and reason in outcome.stdout


def test_truncated_baseline_values_exit_2(tmp_path, baseline_file):
    frozen = json.loads(baseline_file.read_text())
    del frozen["datasets"]["sample"]["codecs"]["jpeg"]["settings"]["30"]["images"]["coffee.png"]["bytes"]
    baseline_file.write_text(json.dumps(frozen))
    outcome = run_check(store_with(tmp_path / "r", rows()), baseline_file)
    assert outcome.exit_code == 2
    assert "datasets.sample.codecs.jpeg.settings.30.images.coffee.png: needs integer" in outcome.stdout


def test_no_overlapping_codecs_exits_2(tmp_path, baseline_file):
    other = [dict(c, codec="avif") for c in rows(("jpeg",))]
    outcome = run_check(store_with(tmp_path / "avif", other), baseline_file)
    assert outcome.exit_code == 2 and "nothing to compare" in outcome.stdout


def test_changed_dataset_checksum_exits_2(tmp_path, baseline_file):
    changed = [dict(c, image_sha256="f" * 64) if c["image"] == "chelsea.png" else c for c in rows()]
    outcome = run_check(store_with(tmp_path / "changed", changed), baseline_file)
    assert outcome.exit_code == 2
    assert "chelsea.png: 416b729128bf… → ffffffffffff…" in outcome.stdout


def test_unknown_metric_exits_2(tmp_path, baseline_file):
    outcome = run_check(tmp_path / "reference", baseline_file, "--metrics", "vmaf")
    assert outcome.exit_code == 2 and "unknown metric(s) vmaf" in outcome.stdout


def test_lossless_cells_with_infinite_psnr_are_stored_and_compared(tmp_path):
    lossless = rows()
    for c in lossless:
        if c["setting"] == 90.0:
            c["psnr_rgb"] = math.inf
    results = store_with(tmp_path / "lossless", lossless)
    out = tmp_path / "lossless.json"
    assert CliRunner().invoke(baseline_command, [str(results), "-o", str(out)]).exit_code == 0
    assert '"psnr_rgb": "inf"' in out.read_text()
    same = compare(load_baseline(out), lossless)
    assert same.exit_code == 0, [f.message for f in same.findings]
    assert all(c.bd_rate["psnr_rgb"] == 0 for c in same.codecs)  # the finite settings still give a BD-rate
    lossy_again = [dict(c, psnr_rgb=60.0) if c["setting"] == 90.0 else c for c in lossless]
    assert compare(load_baseline(out), lossy_again).exit_code == 1  # inf → 60 dB is worse


def test_a_metric_no_longer_computed_fails(tmp_path, baseline_file):
    current = [dict(c, ms_ssim=math.nan) if c["codec"] == "webp" and c["setting"] == 40.0 else c for c in rows()]
    result = compare(load_baseline(baseline_file), current)
    assert result.exit_code == 1
    assert [f.message for f in result.of("regression")] == [
        "ms_ssim not computed at setting(s) 40 (astronaut.png, chelsea.png, coffee.png)"]


def test_a_disappeared_codec_names_the_run_problem(tmp_path, baseline_file):
    results = store_with(tmp_path / "jpeg-only", rows(("jpeg",)))
    store = ResultsStore(results)
    store.write_manifest("run-1", dict(store.manifests()[0], problems=["webp: codec unavailable: libwebp missing"]))
    outcome = run_check(results, baseline_file)
    assert outcome.exit_code == 1
    assert "codec disappeared: no results (run problem: webp: codec unavailable: libwebp missing)" in outcome.stdout


def test_codecs_and_dataset_options_restrict_the_check(tmp_path, baseline_file):
    results = store_with(tmp_path / "jpeg-only", rows(("jpeg",)))
    assert run_check(results, baseline_file).exit_code == 1  # webp disappeared
    outcome = run_check(results, baseline_file, "--codecs", "jpeg", "--dataset", "sample")
    assert outcome.exit_code == 0 and "webp" not in outcome.stdout
    assert run_check(results, baseline_file, "--dataset", "kodak").exit_code == 2  # not in the baseline


@pytest.mark.slow
def test_a_real_sweep_reproduces_its_baseline_exactly(tmp_path):
    """Two real jpeg/webp sweeps of the sample images: the second matches the first's baseline bit for bit."""
    from codecbench import registry
    from codecbench.data.datasets import resolve_dataset
    from codecbench.runner import run_sweep

    def sweep(folder: Path) -> Path:
        codecs = {name: registry.create(name) for name in ("jpeg", "webp")}
        summary = run_sweep(ResultsStore(folder), [resolve_dataset("sample", tmp_path / "data", progress=False)],
                            codecs, {"jpeg": [10, 30, 50, 70, 90], "webp": [10, 30, 50, 70, 90]},
                            ["psnr_rgb", "ms_ssim"], progress=False, preview_images=0)
        assert summary.ok, summary.failures + summary.problems
        return folder

    first = sweep(tmp_path / "first")
    out = tmp_path / "baseline.json"
    assert CliRunner().invoke(baseline_command, [str(first), "-o", str(out)]).exit_code == 0
    frozen = json.loads(out.read_text())
    assert frozen["datasets"]["sample"]["checksums"]["astronaut.png"].startswith("a8c429c18afa")
    outcome = run_check(sweep(tmp_path / "second"), out)
    assert outcome.exit_code == 0, outcome.stdout
    assert outcome.stdout.count("| 15/15 |") == 2  # deterministic codecs: every bitstream has the same size


def test_with_fewer_than_4_settings_the_drift_still_catches_a_regression():
    three = (20.0, 50.0, 80.0)
    frozen = make_baseline(rows(settings=three), [])
    same = compare(frozen, rows(settings=three))
    assert same.exit_code == 0
    assert all(c.bd_rate["psnr_rgb"] is None for c in same.codecs)
    assert any("BD-rate (psnr_rgb) not computed from 3 common setting(s)" in f.message for f in same.of("change"))
    lowered = compare(frozen, rows(settings=three, psnr_shift=-0.2))
    assert lowered.exit_code == 1
    assert {(f.codec, f.check) for f in lowered.of("regression")} == {("jpeg", "psnr_rgb"), ("webp", "psnr_rgb")}


def test_a_report_curve_and_a_baseline_curve_of_the_same_rows_are_identical():
    """One definition of a mean RD curve: the report's (curves.summarise) is the baseline's and the check's."""
    from codecbench.analysis.curves import summarise

    checked = ("psnr_rgb", "psnr_y", "ms_ssim", "ms_ssim_db", "lpips")
    # values at the baseline's precision, so that freezing them changes nothing
    cells = [dict(c, **{k: float(f"{c[k]:.12g}") for k in ("bpp", *checked)}) for c in rows()]
    (report,) = summarise(cells).values()
    frozen = make_baseline(cells, [])
    check = compare(frozen, cells, metrics=checked)
    assert check.exit_code == 0, [f.message for f in check.findings]
    for comparison in check.codecs:
        curve = report.codecs[comparison.codec].mean
        assert [s.setting for s in comparison.settings] == list(curve.setting) == list(SETTINGS)
        for i, drift in enumerate(comparison.settings):
            assert drift.bpp == (curve.bpp[i], curve.bpp[i])
            assert drift.metrics == {m: (curve.quality[m][i], curve.quality[m][i]) for m in checked}
            setting = frozen["datasets"]["sample"]["codecs"][comparison.codec]["settings"][setting_key(drift.setting)]
            expected = {"bpp": curve.bpp[i], **{m: curve.quality[m][i] for m in checked}}
            assert setting["mean"] == {name: float(f"{value:.12g}") for name, value in expected.items()}
    # ms_ssim_db is the dB value of the mean MS-SSIM, not the mean of the per-image dB values
    chosen = [c for c in cells if c["codec"] == "jpeg" and c["setting"] == 50.0]
    db_of_mean = -10 * math.log10(1 - statistics.fmean(c["ms_ssim"] for c in chosen))
    assert report.codecs["jpeg"].mean.quality["ms_ssim_db"][4] == pytest.approx(db_of_mean, abs=1e-12)
    assert db_of_mean < statistics.fmean(c["ms_ssim_db"] for c in chosen) - 1e-3


@pytest.mark.parametrize("name", ["sample", "kodak"])
def test_committed_baselines_load_and_are_written_back_byte_for_byte(name):
    path = Path(__file__).parent.parent / "results" / "baselines" / f"{name}.json"
    assert dumps_baseline(load_baseline(path)) == path.read_text(encoding="utf-8")
