"""The Python API: codecbench.run, load, bd_rate, bd_quality, report."""

import math
import subprocess
import sys

import pytest

import codecbench
from codecbench.errors import UsageError


def test_import_is_light_and_lists_the_api():
    code = "import sys, codecbench; print(sorted(dir(codecbench))); print('pandas' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == [str(["__version__", "bd_quality", "bd_rate", "load", "report", "run"]), "False False"]


@pytest.mark.slow
def test_run_load_bd_and_report(tmp_path):
    frame = codecbench.run(["jpeg", "webp"], "sample", results=tmp_path / "r", metrics=["psnr_rgb"],
                           settings={"jpeg": [10, 30, 50, 70, 90], "webp": [10, 30, 50, 70, 90]})
    assert len(frame) == 2 * 5 * 3 and frame["error"].isna().all()
    assert str(frame["bytes"].dtype) == "Int64" and frame["psnr_rgb"].dtype == float
    again = codecbench.run(["jpeg"], "sample", results=tmp_path / "r", metrics=["psnr_rgb"],
                           settings={"jpeg": [10, 30, 50, 70, 90]})  # all stored: nothing computed, same rows
    assert again.equals(frame[frame["codec"] == "jpeg"].reset_index(drop=True))
    stored = codecbench.load(tmp_path / "r")
    assert len(stored) == 30
    means = stored.groupby(["codec", "setting"])[["bpp", "psnr_rgb"]].mean()
    bd = codecbench.bd_rate(means.loc["jpeg"]["bpp"], means.loc["jpeg"]["psnr_rgb"],
                            means.loc["webp"]["bpp"], means.loc["webp"]["psnr_rgb"])
    assert bd.ok and bd.value < 0  # WebP needs fewer bits than JPEG for the same PSNR
    assert math.isfinite(codecbench.bd_quality(means.loc["jpeg"]["bpp"], means.loc["jpeg"]["psnr_rgb"],
                                               means.loc["webp"]["bpp"], means.loc["webp"]["psnr_rgb"]).value)
    report = codecbench.report(tmp_path / "r", tmp_path / "report", metrics=["psnr_rgb"])
    assert report.html_path.is_file()


def test_run_raises_usage_errors_before_any_work(tmp_path):
    with pytest.raises(UsageError, match="did you mean jpeg"):
        codecbench.run(["jpg"], "sample", results=tmp_path / "r")
    assert not (tmp_path / "r").exists()
