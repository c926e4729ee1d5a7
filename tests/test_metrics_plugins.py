"""Metric plugins: the entry-point group, a real plugin package end to end, and plugins that fail to load."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from codecbench import metrics
from codecbench.metrics import builtin

PLUGINS = Path(__file__).parent / "plugins"


def _cli(*args, plugin_paths=(PLUGINS,), cwd=None):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(p) for p in plugin_paths))
    return subprocess.run([sys.executable, "-m", "codecbench", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def test_builtin_metrics_are_entry_points_in_declaration_order():
    from importlib.metadata import entry_points

    registered = {ep.name: ep.value for ep in entry_points(group=metrics.ENTRY_POINT_GROUP)}
    for name in ("psnr_rgb", "psnr_y", "ssim", "ms_ssim", "ms_ssim_db", "lpips", "psnr_hvs", "psnr_hvsm",
                 "ssimulacra2", "ciede2000", "flip", "butteraugli"):
        assert registered[name].startswith("codecbench.metrics.builtin:")
        assert metrics.METRICS[name] is getattr(builtin, registered[name].partition(":")[2])
    assert list(metrics.METRICS)[:8] == ["psnr_rgb", "psnr_y", "ssim", "ms_ssim", "ms_ssim_db", "lpips",
                                         "psnr_hvs", "psnr_hvsm"]
    assert metrics.default_metrics() == ["psnr_rgb", "psnr_y", "ssim", "ms_ssim", "ms_ssim_db", "lpips"]


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name, image in (("a.png", data.astronaut()), ("b.png", data.coffee()), ("c.png", data.chelsea())):
        Image.fromarray(np.ascontiguousarray(image[:48, :64])).save(folder / name)
    return folder


@pytest.mark.slow
def test_a_plugin_metric_reaches_rows_reports_bd_tables_and_check(tmp_path, images):
    results, report = tmp_path / "results", tmp_path / "report"
    listing = _cli("metrics", "--json")
    assert listing.returncode == 0, listing.stderr
    mae = next(entry for entry in json.loads(listing.stdout) if entry["name"] == "mae_rgb")
    assert mae["available"] and mae["better"] == "lower" and not mae["default"]

    run = _cli("run", "--codecs", "posterize,jpeg", "--dataset", images, "--metrics", "psnr_rgb,mae_rgb",
               "--settings", "posterize=2,3,4,5,6", "--settings", "jpeg=10,30,50,70,90", "--output", results,
               "--quiet")
    assert run.returncode == 0, run.stderr
    rows = [json.loads(line) for line in (results / "cells.jsonl").read_text().splitlines()]
    assert len(rows) == 30
    astronaut = np.ascontiguousarray(data.astronaut()[:48, :64]).astype(int)
    for row in (r for r in rows if r["codec"] == "posterize" and r["image"] == "a.png"):
        shift = 8 - int(row["setting"])
        assert row["mae_rgb"] == pytest.approx(np.mean(astronaut - ((astronaut >> shift) << shift)), abs=1e-12)

    made = _cli("report", results, "--anchor", "jpeg", "--metrics", "mae_rgb,psnr_rgb", "-o", report)
    assert made.returncode == 0, made.stderr
    with open(report / "bd_rate.csv") as f:
        bd = [r for r in csv.DictReader(f) if r["metric"] == "mae_rgb" and r["codec"] == "posterize"]
    assert bd and any(r["value"] not in ("", "nan") for r in bd)
    assert "MAE-RGB" in (report / "bd_rate.md").read_text() and "MAE-RGB" in (report / "auc.md").read_text()

    frozen = tmp_path / "baseline.json"
    assert _cli("baseline", results, "-o", frozen).returncode == 0
    checked = _cli("check", results, "--baseline", frozen, "--metrics", "mae_rgb")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "mae_rgb" in checked.stdout
    # without the plugin the stored column is still read, but the metric is unknown to check
    assert _cli("check", results, "--baseline", frozen, "--metrics", "mae_rgb", plugin_paths=()).returncode == 2


def _broken_plugins(folder: Path) -> Path:
    folder.mkdir()
    (folder / "broken_metrics.py").write_text("import numpy_extension_that_is_not_installed\n")
    (folder / "odd_metrics.py").write_text("NOT_A_SPEC = 42\n")
    info = folder / "broken_metrics-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-metrics\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[codecbench.metrics]\nbroken = broken_metrics:SPEC\nodd = odd_metrics:NOT_A_SPEC\n")
    return folder


@pytest.mark.slow
def test_a_plugin_that_fails_to_load_is_listed_with_the_reason_and_breaks_nothing(tmp_path, images):
    broken = _broken_plugins(tmp_path / "broken")
    paths = (PLUGINS, broken)
    listing = _cli("metrics", plugin_paths=paths)
    assert listing.returncode == 0, listing.stderr
    assert "broken: could not be loaded from broken_metrics:SPEC: ModuleNotFoundError" in listing.stdout
    assert "odd: could not be loaded from odd_metrics:NOT_A_SPEC: TypeError" in listing.stdout
    assert "mae_rgb" in listing.stdout and "psnr_rgb" in listing.stdout

    asked = _cli("run", "--codecs", "posterize", "--dataset", images, "--metrics", "psnr_rgb,broken",
                 "--output", tmp_path / "r1", "--quiet", plugin_paths=paths)
    assert asked.returncode == 2 and "broken could not be loaded from broken_metrics:SPEC" in asked.stderr
    fine = _cli("run", "--codecs", "posterize", "--dataset", images, "--metrics", "psnr_rgb,mae_rgb",
                "--settings", "posterize=4", "--output", tmp_path / "r2", "--quiet", plugin_paths=paths)
    assert fine.returncode == 0, fine.stderr


@pytest.mark.slow
def test_a_metric_whose_package_is_missing_is_unavailable_with_the_reason(tmp_path, images):
    shadow = tmp_path / "shadow" / "flip_evaluator"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('libflip.so: cannot open shared object file')\n")
    paths = (PLUGINS, shadow.parent)
    listing = _cli("metrics", plugin_paths=paths)
    assert "flip: the flip-evaluator package is not installed (libflip.so" in listing.stdout
    run = _cli("run", "--codecs", "posterize", "--dataset", images, "--metrics", "psnr_rgb,flip",
               "--settings", "posterize=4", "--output", tmp_path / "r", "--quiet", plugin_paths=paths)
    assert run.returncode == 1 and "flip unavailable, not computed" in run.stderr
    rows = [json.loads(line) for line in (tmp_path / "r" / "cells.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(row["psnr_rgb"] > 20 and row.get("flip") is None for row in rows)
