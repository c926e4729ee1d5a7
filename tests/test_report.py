"""`codecbench report` on hand-made stores whose RD curves have known answers, and end to end on a real run."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from codecbench.analysis.compressai import to_compressai_json
from codecbench.cli.report import report as report_command
from codecbench.render.report import build_report
from codecbench.store import ResultsStore

#: Rate factor of each synthetic codec against jpeg: at every setting it reaches jpeg's quality
#: with this fraction of jpeg's bits, so its BD-rate against jpeg is (factor − 1) × 100 % exactly,
#: for every metric, interpolation and averaging convention.
RATE_FACTORS = {"jpeg": 1.0, "webp": 0.9, "jpeg2000": 0.8, "avif": 0.7, "jpegxl": 0.75, "conv_lstm": 0.6}
SETTINGS = (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0)


def _quality(setting: float, image: int) -> dict[str, float]:
    """Metrics of the synthetic images: functions of the setting and the image only (not the codec)."""
    ms_ssim = 1 - 0.25 * math.exp(-setting / 30 - 0.05 * image)
    return {"psnr_rgb": 24 + 0.15 * setting + 0.3 * image, "psnr_y": 25 + 0.16 * setting + 0.3 * image,
            "ssim": 1 - 0.3 * math.exp(-setting / 25 - 0.04 * image), "ms_ssim": ms_ssim,
            "ms_ssim_db": -10 * math.log10(1 - ms_ssim), "lpips": 0.6 * math.exp(-setting / 40 - 0.02 * image)}


def _base_bpp(setting: float, image: int) -> float:
    return (0.6 + 0.07 * image) * 0.05 * math.exp(0.04 * setting)


def _png(seed: int, side: int = 64) -> bytes:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 200, side)[None, :, None] + rng.integers(0, 40, (side, side, 3))
    buffer = io.BytesIO()
    Image.fromarray(ramp.clip(0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def synthetic_row(image: int, codec: str, setting: float, *, dataset: str = "kodak", version: str = "1.0",
                  target: float | None = None, **changes) -> dict:
    bpp = RATE_FACTORS[codec] * _base_bpp(setting, image)
    row = {"dataset": dataset, "image": f"kodim{image + 1:02d}.png", "image_sha256": f"{image:04d}" + "5e" * 30,
           "width": 768, "height": 512, "codec": codec, "codec_version": version, "setting": setting,
           "target_bpp": target, "bytes": round(bpp * 768 * 512 / 8), "bpp": bpp, **_quality(setting, image),
           "encode_s": 0.01 * (1 + list(RATE_FACTORS).index(codec)), "decode_s": 0.004, "error": None,
           "extra": {"target_met": True} if target is not None else None, "run_id": "synthetic",
           "finished_at": "2026-01-01T00:00:00+00:00"}
    row.update(changes)
    return row


def synthetic_store(root: Path, *, n_images: int = 24, codecs=tuple(RATE_FACTORS), settings=SETTINGS,
                    crops: int = 2, targets: tuple[float, ...] = ()) -> ResultsStore:
    """A store of Kodak-like size with known curves (see RATE_FACTORS), crops for the first images,
    and rate-targeted cells (the highest setting at or below each target) where asked."""
    store = ResultsStore(root)
    rows = []
    for image in range(n_images):
        sha = synthetic_row(image, "jpeg", 10.0)["image_sha256"]
        if image < crops:
            store.save_crop(sha, "original", _png(image))
        for codec in codecs:
            for setting in settings:
                rows.append(synthetic_row(image, codec, setting))
                if image < crops:
                    seed = 1000 * image + 100 * list(RATE_FACTORS).index(codec) + int(setting)
                    store.save_crop(sha, ResultsStore.crop_label(codec, setting), _png(seed))
            for target in targets:
                fitting = [s for s in settings if RATE_FACTORS[codec] * _base_bpp(s, image) <= target]
                setting = max(fitting) if fitting else min(settings)
                rows.append(synthetic_row(image, codec, setting, target=target,
                                          extra={"target_met": bool(fitting)}))
    store.append(rows)
    store.write_manifest("synthetic", {"run_id": "synthetic", "command": ["codecbench", "run", "--codecs", "…"],
                                       "started_at": "2026-01-01T00:00:00+00:00"})
    return store


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def kodak_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    store = synthetic_store(root / "results", targets=(0.5,))
    return store, build_report(store.root, root / "out", metrics=("psnr_rgb", "ms_ssim", "ms_ssim_db", "lpips"))


def test_report_writes_every_file(kodak_report):
    _, report = kodak_report
    names = {path.name for path in report.files}
    for stem in ("bd_rate", "bd_quality", "rate_matched", "auc"):
        assert {f"{stem}.md", f"{stem}.csv", f"{stem}.tex"} <= names
    assert "report.html" in names and all(path.is_file() for path in report.files)


def test_bd_rate_equals_the_known_rate_factor_in_both_conventions(kodak_report):
    _, report = kodak_report
    records = read_csv(report.folder / "bd_rate.csv")
    assert {r["codec"] for r in records} == set(RATE_FACTORS) - {"jpeg"}
    assert {r["metric"] for r in records} == {"psnr_rgb", "ms_ssim", "ms_ssim_db", "lpips"}
    for r in records:
        expected = (RATE_FACTORS[r["codec"]] - 1) * 100
        assert float(r["value"]) == pytest.approx(expected, abs=1e-9), r
        if r["convention"] == "per_image_mean":
            assert int(r["n_images_used"]) == int(r["n_images"]) == 24
            assert float(r["ci_low"]) == pytest.approx(expected, abs=1e-9)
            assert float(r["ci_high"]) == pytest.approx(expected, abs=1e-9)
        else:
            assert r["convention"] == "mean_curve" and r["ci_low"] == ""
    assert len(records) == 5 * 4 * 2


def test_markdown_and_latex_tables_are_well_formed(kodak_report):
    _, report = kodak_report
    markdown = (report.folder / "bd_rate.md").read_text()
    table_lines = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len({line.count(" | ") for line in table_lines if not line.startswith("|:")}) == 1
    assert "| webp | -10.00 | -10.00 [-10.00, -10.00] |" in markdown
    latex = (report.folder / "bd_rate.tex").read_text()
    body = latex.split("\\midrule")[1].split("\\bottomrule")[0].strip().splitlines()
    header = latex.split("\\toprule")[1].split("\\midrule")[0]
    assert all(line.count("&") == header.count("&") for line in body)
    assert "conv\\_lstm" in latex and "95\\% CI" in latex and "conv_lstm" not in latex


def test_rate_matched_uses_measured_cells_and_interpolates_the_rest(kodak_report):
    store, report = kodak_report
    records = read_csv(report.folder / "rate_matched.csv")
    measured = [r for r in records if r["target_bpp"] == "0.5"]
    assert {r["source"] for r in measured} == {"measured"}
    # the stored rate-targeted jpeg cells, averaged independently of the report
    cells = [row for row in store.rows() if row["codec"] == "jpeg" and row["target_bpp"] == 0.5]
    jpeg = next(r for r in measured if r["codec"] == "jpeg")
    assert float(jpeg["psnr_rgb"]) == pytest.approx(np.mean([c["psnr_rgb"] for c in cells]), rel=1e-12)
    assert float(jpeg["bpp"]) == pytest.approx(np.mean([c["bpp"] for c in cells]), rel=1e-12)
    assert float(jpeg["bpp"]) <= 0.5

    interpolated = [r for r in records if r["target_bpp"] == "0.25"]
    assert {r["source"] for r in interpolated} == {"interpolated"}
    # jpeg's mean curve, computed here from the model: linear in log10(bpp) between the settings around 0.25
    mean_bpp = [np.mean([_base_bpp(s, i) for i in range(24)]) for s in SETTINGS]
    mean_psnr = [np.mean([_quality(s, i)["psnr_rgb"] for i in range(24)]) for s in SETTINGS]
    expected = np.interp(math.log10(0.25), np.log10(mean_bpp), mean_psnr)
    jpeg = next(r for r in interpolated if r["codec"] == "jpeg")
    assert float(jpeg["psnr_rgb"]) == pytest.approx(expected, rel=1e-12)
    below = max(s for s, b in zip(SETTINGS, mean_bpp) if b <= 0.25)
    assert jpeg["setting"] == f"{below:g}–{below + 10:g}"


def test_rate_matched_leaves_targets_outside_a_curve_blank(tmp_path):
    store = synthetic_store(tmp_path / "results", n_images=3, codecs=("jpeg", "webp"), crops=0)
    report = build_report(store.root, tmp_path / "out", targets=(0.01, 0.25))
    records = read_csv(report.folder / "rate_matched.csv")
    outside = [r for r in records if r["target_bpp"] == "0.01"]
    assert len(outside) == 2 and all(r["psnr_rgb"] == "" and r["setting"] == "" for r in outside)
    assert all("outside the curve" in r["note"] for r in outside)


def test_auc_matches_the_trapezoid_rule_on_the_mean_curve(kodak_report):
    _, report = kodak_report
    records = read_csv(report.folder / "auc.csv")
    jpeg = next(r for r in records if r["codec"] == "jpeg" and r["metric"] == "psnr_rgb")
    mean_bpp = np.array([np.mean([_base_bpp(s, i) for i in range(24)]) for s in SETTINGS])
    mean_psnr = np.array([np.mean([_quality(s, i)["psnr_rgb"] for i in range(24)]) for s in SETTINGS])
    assert mean_bpp[0] > 0 and mean_bpp[-1] > 2  # the curve is cut at 2 bpp
    # the piecewise-linear mean curve integrated numerically on a fine grid from its first point to 2 bpp
    grid = np.linspace(mean_bpp[0], 2.0, 400_001)
    assert float(jpeg["area"]) == pytest.approx(np.trapezoid(np.interp(grid, mean_bpp, mean_psnr), grid), rel=1e-9)
    assert float(jpeg["covered_start"]) == pytest.approx(mean_bpp[0], rel=1e-12)
    assert float(jpeg["covered_end"]) == 2.0
    assert float(jpeg["covered_fraction"]) == pytest.approx((2.0 - mean_bpp[0]) / 2, rel=1e-12)


def test_html_is_self_contained(kodak_report):
    _, report = kodak_report
    page = report.html_path.read_text()
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    # plotly.js is embedded (its licence header) and nothing is loaded from elsewhere
    assert "plotly.js v" in page
    assert not re.search(r"<(script|img|link|iframe)[^>]*\s(src|href)\s*=", page, re.IGNORECASE)
    assert "@import" not in page and "url(http" not in page
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page,
                                re.DOTALL).group(1))
    (dataset,) = data["datasets"]
    assert dataset["images"][:2] == ["kodim01.png", "kodim02.png"] and len(dataset["images"]) == 24
    jpeg = next(c for c in dataset["curves"] if c["label"] == "jpeg")
    assert len(jpeg["pts"]["img"]) == 24 * len(SETTINGS) and len(jpeg["mean"]["bpp"]) == len(SETTINGS)
    crops = json.loads(re.search(r'<script type="application/json" id="report-crops">(.*?)</script>', page,
                                 re.DOTALL).group(1))
    images = crops["datasets"]["kodak"]["images"]
    assert [image["name"] for image in images] == ["kodim01.png", "kodim02.png"]
    choice = next(c for c in images[0]["choices"]["0.5"] if c["label"] == "webp")
    # the stored rate-targeted cell has no crop, so the closest sweep cell (in log bpp) is shown
    candidates = {s: RATE_FACTORS["webp"] * _base_bpp(s, 0) for s in SETTINGS}
    closest = min(candidates, key=lambda s: abs(math.log(candidates[s] / 0.5)))
    assert choice["setting"] == closest
    assert crops["blobs"][choice["src"]]  # embedded base64 PNG


def test_failed_cells_missing_images_and_versions_are_handled_and_noted(tmp_path):
    store = ResultsStore(tmp_path / "results")
    rows = [synthetic_row(i, codec, s) for i in range(4) for codec in ("jpeg", "webp") for s in SETTINGS]
    # webp failed on image 3 entirely; jpeg failed at setting 90 on image 0
    rows = [r for r in rows if not (r["codec"] == "webp" and r["image"] == "kodim04.png")]
    rows.append(synthetic_row(3, "webp", 50.0, error="CodecError: boom", bpp=None, psnr_rgb=None))
    rows = [r for r in rows if not (r["codec"] == "jpeg" and r["image"] == "kodim01.png" and r["setting"] == 90.0)]
    rows.append(synthetic_row(0, "jpeg", 90.0, error="CodecError: boom", bpp=None, psnr_rgb=None))
    # a second version of avif
    rows += [synthetic_row(i, "avif", s, version=v) for v in ("1", "2") for i in range(4) for s in SETTINGS]
    store.append(rows)
    report = build_report(store.root, tmp_path / "out", anchor="jpeg")
    results = report.datasets["kodak"]
    assert [image.name for image in results.images] == ["kodim01.png", "kodim02.png", "kodim03.png"]
    assert set(results.codecs) == {"jpeg", "webp", "avif@1", "avif@2"}
    assert list(results.codecs["jpeg"].mean.setting) == list(SETTINGS[:-1])
    notes = "\n".join(results.notes)
    assert "kodim04.png: left out of the comparison (no successful cell for webp)" in notes
    assert "jpeg setting 90: left out of the mean curve (1 of 3 images" in notes
    assert "webp: 1 failed cell(s)" in notes
    records = read_csv(report.folder / "bd_rate.csv")
    avif = [r for r in records if r["codec"] == "avif@2" and r["metric"] == "psnr_rgb"]
    assert all(float(r["value"]) == pytest.approx(-30.0, abs=1e-9) for r in avif)
    with pytest.raises(ValueError, match="several versions"):
        build_report(store.root, tmp_path / "out2", anchor="avif")


def test_each_dataset_gets_its_own_tables_and_one_without_the_anchor_is_noted(tmp_path):
    store = ResultsStore(tmp_path / "results")
    store.append([synthetic_row(i, codec, s, dataset=dataset) for dataset, codecs in
                  (("kodak", ("jpeg", "webp")), ("clic", ("jpeg", "avif")), ("tecnick", ("webp",)))
                  for i in range(3) for codec in codecs for s in SETTINGS])
    report = build_report(store.root, tmp_path / "out")
    records = read_csv(report.folder / "bd_rate.csv")
    assert {(r["dataset"], r["codec"]) for r in records} == {("kodak", "webp"), ("clic", "avif")}
    assert all(float(r["value"]) == pytest.approx(-30.0 if r["codec"] == "avif" else -10.0, abs=1e-9)
               for r in records if r["metric"] == "psnr_rgb")
    assert "no BD tables: dataset tecnick: no results for codec 'jpeg'" in report.datasets["tecnick"].notes[0]
    matched = read_csv(report.folder / "rate_matched.csv")
    assert {r["dataset"] for r in matched} == {"kodak", "clic", "tecnick"}
    markdown = (report.folder / "auc.md").read_text()
    assert all(f"### {name}: area under the mean RD curve" in markdown for name in ("kodak", "clic", "tecnick"))


def test_reference_curves_are_drawn_and_compared(tmp_path, kodak_report):
    store, _ = kodak_report
    exported = to_compressai_json(store, "webp")
    assert exported["results"]["bpp"] == sorted(exported["results"]["bpp"])
    assert {"bpp", "psnr-rgb", "ms-ssim-rgb", "lpips", "encoding_time", "decoding_time"} <= set(exported["results"])
    ours = tmp_path / "webp.json"
    ours.write_text(json.dumps(exported))
    # A published file in CompressAI's older layout ("psnr", "ms-ssim"): JPEG's curve, 1.25× the bits.
    jpeg_curve = to_compressai_json(store, "jpeg")["results"]
    published = tmp_path / "published.json"
    published.write_text(json.dumps({"name": "paper-x", "description": "published", "results": {
        "bpp": [b * 1.25 for b in jpeg_curve["bpp"]], "psnr": jpeg_curve["psnr-rgb"],
        "ms-ssim": jpeg_curve["ms-ssim-rgb"]}}))
    report = build_report(store.root, tmp_path / "out", references=[ours, published],
                          metrics=("psnr_rgb", "ms_ssim", "ms_ssim_db", "lpips"))
    records = [r for r in read_csv(report.folder / "bd_rate.csv") if r["source"] == "reference"]
    assert {r["convention"] for r in records} == {"mean_curve"}
    webp = {r["metric"]: float(r["value"]) for r in records if r["codec"] == "webp (reference)"}
    assert webp == pytest.approx({"psnr_rgb": -10.0, "ms_ssim": -10.0, "ms_ssim_db": -10.0, "lpips": -10.0},
                                 abs=1e-6)
    paper = {r["metric"]: float(r["value"]) for r in records if r["codec"] == "paper-x (reference)"}
    assert paper == pytest.approx({"psnr_rgb": 25.0, "ms_ssim": 25.0, "ms_ssim_db": 25.0}, abs=1e-6)
    assert "paper-x (reference)" in (report.folder / "bd_rate.md").read_text()


def test_to_compressai_json_needs_a_known_codec_and_dataset(tmp_path):
    store = ResultsStore(tmp_path)
    store.append([synthetic_row(0, "jpeg", s, dataset=d) for d in ("kodak", "clic") for s in SETTINGS])
    with pytest.raises(ValueError, match="2 datasets"):
        to_compressai_json(store, "jpeg")
    with pytest.raises(ValueError, match="no results for codec 'webp'"):
        to_compressai_json(store, "webp", "kodak")
    with pytest.raises(ValueError, match="no results for dataset 'tecnick'"):
        to_compressai_json(store, "jpeg", "tecnick")
    curve = to_compressai_json(store.rows(), "jpeg", "clic")
    assert curve["results"]["psnr-rgb"] == [_quality(s, 0)["psnr_rgb"] for s in SETTINGS]


# ---------------------------------------------------------------------------
# The command line


def test_cli_prints_the_bd_table_and_the_page(tmp_path):
    store = synthetic_store(tmp_path / "results", n_images=4, crops=1)
    result = CliRunner().invoke(report_command, [str(store.root), "-o", str(tmp_path / "out"),
                                                 "--bd-method", "cubic", "--bpp-range", "0,1.5"])
    assert result.exit_code == 0, result.output
    assert "BD-rate vs jpeg" in result.output and "MS-SSIM (dB)" in result.output
    assert "| webp | -10.00 | -10.00 [-10.00, -10.00] | -10.00 |" in result.output
    assert result.output.strip().endswith(f"report: {tmp_path / 'out' / 'report.html'}")
    assert "Interpolation cubic" in (tmp_path / "out" / "bd_rate.md").read_text()
    assert "0–1.5 bpp" in (tmp_path / "out" / "auc.md").read_text()


def test_cli_default_folder_is_reports_slash_results_name(tmp_path, monkeypatch):
    store = synthetic_store(tmp_path / "my-run", n_images=4, codecs=("jpeg", "webp"), crops=0)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(report_command, [str(store.root)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "reports" / "my-run" / "report.html").is_file()


@pytest.mark.parametrize("arguments, message", [
    (["--anchor", "bpg"], "no results for codec 'bpg' (codecs with results: jpeg, webp)"),
    (["--bpp-range", "2,1"], "must be START,END with END > START"),
    (["--target-bpp", "0.5,x"], "is not a comma-separated list of numbers"),
    (["--metrics", "psnr_rgb,vmaf"], "unknown metric(s) vmaf"),
    (["--reference", "{bad}"], "not a CompressAI results file"),
])
def test_cli_rejects_bad_options_with_the_reason(tmp_path, arguments, message):
    store = synthetic_store(tmp_path / "results", n_images=2, codecs=("jpeg", "webp"), crops=0)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "x", "results": {"psnr": [30.0]}}))
    arguments = [str(bad) if a == "{bad}" else a for a in arguments]
    result = CliRunner().invoke(report_command, [str(store.root), "-o", str(tmp_path / "out"), *arguments])
    assert result.exit_code != 0
    assert message in result.output


def test_cli_names_a_missing_results_directory(tmp_path):
    result = CliRunner().invoke(report_command, [str(tmp_path / "nowhere")])
    assert result.exit_code == 1 and "nowhere: no such results directory" in result.output


@pytest.mark.slow
def test_end_to_end_run_then_report(tmp_path):
    results, out = tmp_path / "results", tmp_path / "report"
    run = subprocess.run([sys.executable, "-m", "codecbench", "run", "--codecs", "jpeg,webp", "--dataset", "sample",
                          "--output", str(results)], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    made = subprocess.run([sys.executable, "-m", "codecbench", "report", str(results), "-o", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-3000:]
    assert f"report: {out / 'report.html'}" in made.stdout and "| webp |" in made.stdout
    records = read_csv(out / "bd_rate.csv")
    (webp,) = [r for r in records if r["codec"] == "webp" and r["metric"] == "psnr_rgb"
               and r["convention"] == "mean_curve"]
    # WebP needs fewer bits than baseline JPEG for the same PSNR on photographs
    assert webp["value"] and float(webp["value"]) < 0, webp
    page = (out / "report.html").read_text()
    crops = json.loads(re.search(r'id="report-crops">(.*?)</script>', page, re.DOTALL).group(1))
    assert crops["datasets"]["sample"]["images"], "the runner stores crops of the first images"
