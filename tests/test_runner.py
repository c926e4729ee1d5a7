"""End-to-end behaviour of sweeps: rows, resume, failures, workers, rate targets, kill safety."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from codecbench import registry
from codecbench.data.datasets import resolve_dataset
from codecbench.metrics import psnr_rgb
from codecbench.runner import run_sweep
from codecbench.store import ResultsStore

pytestmark = pytest.mark.slow  # sweeps in worker processes and command-line subprocesses

PLUGINS = Path(__file__).parent / "plugins"
FAST_METRICS = ["psnr_rgb", "psnr_y", "ssim"]


@pytest.fixture(autouse=True)
def plugin_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")])))


def _write_images(folder: Path, size: tuple[int, int]) -> Path:
    folder.mkdir()
    width, height = size
    for name, image in (("a_astronaut.png", data.astronaut()), ("b_coffee.png", data.coffee()),
                        ("c_chelsea.png", data.chelsea())):
        Image.fromarray(np.ascontiguousarray(image[:height, :width])).save(folder / name)
    return folder


@pytest.fixture
def images(tmp_path):
    return _write_images(tmp_path / "images", (64, 48))


def _sweep(store, folder, settings=(2, 5, 8), jobs=1, **options):
    codec = registry.create("posterize", **options)
    return run_sweep(store, [resolve_dataset(str(folder))], {"posterize": codec}, {"posterize": list(settings)},
                     FAST_METRICS, codec_options={"posterize": options}, jobs=jobs, progress=False)


def _cli(*args, cwd=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "codecbench", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300, **kwargs)


def test_a_plugin_registers_through_the_entry_point_group():
    assert "posterize" in registry.discover()
    assert registry.create("posterize").setting.name == "bits"


def test_sweep_writes_one_complete_row_per_cell(tmp_path, images):
    store = ResultsStore(tmp_path / "results")
    summary = _sweep(store, images)
    assert summary.ok and summary.done_cells == 9
    rows = store.rows()
    assert len(rows) == 9
    for row in rows:
        assert row["error"] is None and row["codec_version"] == "posterize 1.0"
        assert row["bpp"] == pytest.approx(8 * row["bytes"] / (64 * 48))
        assert row["encode_s"] > 0 and row["decode_s"] > 0
    # the stored PSNR is the PSNR of what the codec's decoder returns for its own bytes
    astronaut = np.ascontiguousarray(data.astronaut()[:48, :64])
    codec = registry.create("posterize")
    for row in (r for r in rows if r["image"] == "a_astronaut.png"):
        _, decoded = codec.round_trip(astronaut, int(row["setting"]))
        assert row["psnr_rgb"] == pytest.approx(psnr_rgb(astronaut, decoded), abs=1e-9)
    by_setting = sorted((r["setting"], r["psnr_rgb"]) for r in rows if r["image"] == "b_coffee.png")
    assert [p for _, p in by_setting] == sorted(p for _, p in by_setting)
    manifest = store.manifests()[-1]
    assert manifest["codecs"] == {"posterize": "posterize 1.0"}
    assert set(manifest["datasets"][str(images)]) == {"a_astronaut.png", "b_coffee.png", "c_chelsea.png"}


def test_rerun_computes_only_missing_cells_and_force_recomputes(tmp_path, images):
    store = ResultsStore(tmp_path / "results")
    _sweep(store, images, settings=(2, 5))
    again = _sweep(store, images, settings=(2, 5, 8))
    assert again.skipped_cells == 6 and again.done_cells == 3
    codec = registry.create("posterize")
    forced = run_sweep(store, [resolve_dataset(str(images))], {"posterize": codec}, {"posterize": [2]},
                       FAST_METRICS, force=True, progress=False)
    assert forced.done_cells == 3
    # asking for a metric the stored rows lack recomputes those cells
    more = run_sweep(store, [resolve_dataset(str(images))], {"posterize": codec}, {"posterize": [2]},
                     FAST_METRICS + ["ms_ssim"], progress=False)
    assert more.done_cells == 3
    assert all(r["ms_ssim"] is not None for r in store.rows() if r["setting"] == 2)


def test_a_failing_cell_is_recorded_and_the_sweep_goes_on(tmp_path, images):
    store = ResultsStore(tmp_path / "results")
    summary = _sweep(store, images, fail_setting=5)
    assert summary.failed_cells == 3 and summary.done_cells == 9 and not summary.ok
    failed = [r for r in store.rows() if r["error"]]
    assert {r["setting"] for r in failed} == {5.0}
    assert all("asked to fail" in r["error"] and r["psnr_rgb"] is None for r in failed)
    # failures are retried on the next run
    retry = _sweep(store, images)
    assert retry.done_cells == 3 and retry.ok
    assert not any(r["error"] for r in store.rows())


def test_an_unreadable_image_is_a_row_with_its_reason_not_a_crash(tmp_path, images):
    (images / "d_truncated.png").write_bytes((images / "b_coffee.png").read_bytes()[:200])
    result = _cli("run", "--codecs", "posterize", "--dataset", str(images), "--settings", "posterize=4",
                  "--metrics", "psnr_rgb", "--output", str(tmp_path / "r"), "--quiet")
    assert result.returncode == 1
    assert "d_truncated.png" in result.stderr
    rows = ResultsStore(tmp_path / "r").rows()
    bad = [r for r in rows if r["image"] == "d_truncated.png"]
    assert len(bad) == 1 and "ImageError" in bad[0]["error"] and "d_truncated.png" in bad[0]["error"]
    assert sum(1 for r in rows if not r["error"]) == 3


def test_two_workers_give_the_same_rows_and_a_crash_charges_exactly_its_cell(tmp_path, images):
    one = ResultsStore(tmp_path / "one")
    two = ResultsStore(tmp_path / "two")
    _sweep(one, images)
    summary = _sweep(two, images, jobs=2)
    assert summary.ok

    def pick(store):
        return sorted((r["image"], r["setting"], r["bytes"], r["psnr_rgb"], r["ssim"]) for r in store.rows())

    assert pick(one) == pick(two)
    crashed = ResultsStore(tmp_path / "crash")
    summary = _sweep(crashed, images, settings=(2, 5, 8), jobs=2, crash_setting=5)  # os._exit(3) in encode
    rows = crashed.rows()
    assert len(rows) == 9 and summary.failed_cells == 3
    for row in rows:
        if row["setting"] == 5:
            assert row["error"] == (f"WorkerCrash: the worker process exited with code 3 while running posterize "
                                    f"setting 5 on {images}/{row['image']}")
            assert row["extra"] == {"failure": "crash"}
        else:
            assert row["error"] is None  # innocent cells, even those in flight in the other worker


def test_a_crashed_cell_is_retried_once_then_only_with_retry_failed(tmp_path, images):
    store = ResultsStore(tmp_path / "results")
    assert _sweep(store, images, settings=(2, 5), crash_setting=5).failed_cells == 3
    again = _sweep(store, images, settings=(2, 5), crash_setting=5)
    assert again.done_cells == 3 and again.failed_cells == 3  # retried once, crashed again
    third = _sweep(store, images, settings=(2, 5), crash_setting=5)
    assert third.done_cells == 0 and any("--retry-failed" in p for p in third.problems) and not third.ok
    codec = registry.create("posterize")
    forced = run_sweep(store, [resolve_dataset(str(images))], {"posterize": codec}, {"posterize": [2, 5]},
                       FAST_METRICS, retry_failed=True, progress=False)
    assert forced.done_cells == 3 and forced.ok
    assert not any(r["error"] for r in store.rows())


def test_target_bpp_picks_the_highest_quality_setting_at_or_below_the_target(tmp_path, images):
    store = ResultsStore(tmp_path / "results")
    codec = registry.create("posterize")
    dataset = resolve_dataset(str(images))
    run_sweep(store, [dataset], {"posterize": codec}, {"posterize": list(range(1, 9))}, ["psnr_rgb"],
              target_bpp=[6.0, 0.01], progress=False)
    rows = store.rows()
    for image in ("a_astronaut.png", "b_coffee.png"):
        sweep = {r["setting"]: r["bpp"] for r in rows if r["image"] == image and r["target_bpp"] is None}
        (hit,) = [r for r in rows if r["image"] == image and r["target_bpp"] == 6.0]
        assert hit["bpp"] <= 6.0 and hit["extra"]["target_met"]
        assert hit["bpp"] == sweep[hit["setting"]]
        if hit["setting"] < 8:
            assert sweep[hit["setting"] + 1] > 6.0
        (miss,) = [r for r in rows if r["image"] == image and r["target_bpp"] == 0.01]
        assert miss["setting"] == 1 and miss["extra"]["target_met"] is False


def test_killing_a_run_loses_only_cells_in_flight_and_a_rerun_finishes_it(tmp_path):
    folder = _write_images(tmp_path / "big", (384, 256))
    results = tmp_path / "results"
    args = ["run", "--codecs", "posterize", "--dataset", str(folder), "--output", str(results),
            "--metrics", "psnr_rgb,ssim,ms_ssim", "--quiet"]
    process = subprocess.Popen([sys.executable, "-m", "codecbench", *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    cells = results / "cells.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not cells.exists() or cells.read_text().count("\n") < 4):
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stored = ResultsStore(results).rows()
    assert 4 <= len(stored) < 24, "the kill should land mid-run"
    assert all(not r["error"] for r in stored)
    result = _cli(*args)
    assert result.returncode == 0, result.stderr
    assert f"{len(stored)} already stored, {24 - len(stored)} computed" in result.stderr
    final = ResultsStore(results).rows()
    assert len(final) == 24 and all(json.loads(line) for line in cells.read_text().splitlines())


@pytest.mark.parametrize("args, option, message", [
    (["--codecs", "jpg,webp"], "--codecs", "unknown codec(s) jpg (did you mean jpeg?)"),
    (["--codecs", "jpeg", "--metrics", "psnr,ssim"], "--metrics", "unknown metric(s) psnr (did you mean"),
    (["--codecs", "jpeg", "--target-bpp", "-1"], "--target-bpp", "every target must be > 0 bpp"),
    (["--codecs", "jpeg", "--settings", "jpeg=101"], "--settings", "quality=101.0 is outside [1, 100]"),
    (["--codecs", "jpeg", "--cell-timeout", "webp=5"], "--cell-timeout", "webp: not named in --codecs"),
    (["--codecs", "jpeg", "--cell-timeout", "0"], "--cell-timeout", "SECONDS > 0"),
    (["--codecs", "jpeg", "--metrics", "lpips", "--lpips-weights", "/etc/passwd"], "--lpips-weights",
     "the LPIPS weights cannot be used: /etc/passwd: cannot be read as a PyTorch state dict"),
    (["--codecs", "jpeg", "--dataset", "kodakk"], "--dataset", "unknown dataset 'kodakk' (did you mean kodak?)"),
])
def test_usage_errors_exit_2_naming_the_option_before_any_work(tmp_path, args, option, message):
    dataset = [] if "--dataset" in args else ["--dataset", "sample"]
    result = _cli("run", *args, *dataset, "--output", str(tmp_path / "r"), "--quiet")
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and (option in result.stderr or "unknown dataset" in message)
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()


def test_identical_pixels_under_two_names_are_measured_once_with_a_warning(tmp_path, images):
    (images / "d_copy.png").write_bytes((images / "b_coffee.png").read_bytes())
    result = _cli("run", "--codecs", "posterize", "--dataset", str(images), "--settings", "posterize=4",
                  "--metrics", "psnr_rgb", "--output", str(tmp_path / "r"), "--quiet")
    assert result.returncode == 0, result.stderr
    assert f"warning: {images}: b_coffee.png, d_copy.png have identical pixels; measured once, as b_coffee.png" \
        in result.stderr
    assert sorted(r["image"] for r in ResultsStore(tmp_path / "r").rows()) == ["a_astronaut.png", "b_coffee.png",
                                                                               "c_chelsea.png"]
