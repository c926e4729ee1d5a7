"""Bad image files and misbehaving plugin codecs: every one ends in an error row naming it, and the sweep finishes."""

from __future__ import annotations

import json
import shutil

from adversity import codecbench_cli, short, write_bad_images

from codecbench.store import ResultsStore


def test_every_bad_image_is_one_error_row_and_the_good_ones_are_measured(tmp_path, plugin_env, record_outcome):
    folder = tmp_path / "bad"
    expected = write_bad_images(folder)
    result = codecbench_cli("run", "--codecs", "posterize", "--dataset", str(folder), "--settings", "posterize=4",
                            "--metrics", "psnr_rgb,ssim", "--output", str(tmp_path / "r"), "--quiet", env=plugin_env)
    assert result.returncode == 1, result.stderr  # finished, with failed inputs
    assert "Traceback" not in result.stderr
    rows = {row["image"]: row for row in ResultsStore(tmp_path / "r").rows()}
    for name, (what, accepted) in expected.items():
        row = rows.get(name)
        if name.endswith(".txt"):
            assert row is None
            record_outcome("bad images", f"{name}: {what}", "not listed (not an image suffix)")
        elif accepted:
            assert row["error"] is None and row["psnr_rgb"] > 0
            record_outcome("bad images", f"{name}: {what}", f"measured ({row['width']}×{row['height']})")
        else:
            assert row["error"].startswith("ImageError: ") and name in row["error"], row
            assert f"problem: {folder / name}" in result.stderr
            reason = row["error"].split(name, 1)[1].lstrip(": ").replace(f"{folder}/", "")
            record_outcome("bad images", f"{name}: {what}", short(reason))


def test_misbehaving_codecs_charge_only_their_own_cells(tmp_path, plugin_env, record_outcome):
    write_bad_images(tmp_path / "all")
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(tmp_path / "all" / "a_good.png", folder)
    codecs = ["mis_hang", "mis_segfault", "mis_exit", "mis_interrupt", "mis_shape", "mis_dtype", "mis_random",
              "mis_huge", "mis_version"]
    settings = [f"--settings={name}=2,5" for name in codecs]
    result = codecbench_cli("run", "--codecs", ",".join(codecs), "--dataset", str(folder), "--metrics", "psnr_rgb",
                            "--output", str(tmp_path / "r"), "--quiet", "-j", "2", "--cell-timeout", "4",
                            *settings, env=plugin_env)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    rows = {(row["codec"], row["setting"]): row for row in ResultsStore(tmp_path / "r").rows()}
    expected = {
        "mis_hang": "CellTimeout: timed out after 4 s running mis_hang setting 5",
        "mis_segfault": "WorkerCrash: the worker process was killed by SIGSEGV while running mis_segfault setting 5",
        "mis_exit": "WorkerCrash: the codec raised SystemExit(7) while running mis_exit setting 5",
        "mis_interrupt": "WorkerCrash: the codec raised KeyboardInterrupt() while running mis_interrupt setting 5",
        "mis_shape": "CodecError: decoded image has shape (63, 96, 3) dtype uint8, expected (64, 96, 3) uint8",
        "mis_dtype": "CodecError: decoded image has shape (64, 96, 3) dtype float32, expected (64, 96, 3) uint8",
        "mis_random": "CodecError: codec mis_random declares deterministic = True but two encodes",
    }
    for codec, error in expected.items():
        guilty = rows[(codec, 5.0)]
        assert guilty["error"].startswith(error), guilty["error"]
        record_outcome("misbehaving codecs", f"{codec} (setting 5)", short(guilty["error"].split(" on /")[0]))
        innocent = rows[(codec, 2.0)]
        if codec in ("mis_shape", "mis_dtype", "mis_random"):  # wrong on every setting
            assert innocent["error"] is not None
        else:
            assert innocent["error"] is None and innocent["psnr_rgb"] == float("inf")
    huge = rows[("mis_huge", 5.0)]
    assert huge["error"] is None and huge["bytes"] > 64 << 20  # measured where it ran; never sent to the driver
    record_outcome("misbehaving codecs", "mis_huge (64 MiB bitstream)", f"stored honestly: {huge['bpp']:.0f} bpp")
    assert not any(codec == "mis_version" for codec, _ in rows)
    assert "problem: codec mis_version: version() failed (RuntimeError: cannot tell my version); not run" in \
        result.stderr
    record_outcome("misbehaving codecs", "mis_version (version() raises)", "left out before the sweep, problem listed")
    manifest = ResultsStore(tmp_path / "r").manifests()[-1]
    assert manifest["cells_done"] == 16 and json.dumps(manifest)
