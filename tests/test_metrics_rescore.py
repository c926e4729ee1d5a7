"""``run --keep-decoded`` and ``codecbench rescore``: kept outputs, deduplication, rescoring without encoding."""

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

pytestmark = pytest.mark.slow  # command-line subprocesses

PLUGINS = Path(__file__).parent / "plugins"
CROP = (slice(0, 72), slice(0, 96))


def _cli(*args):
    env = dict(os.environ, PYTHONPATH=str(PLUGINS))
    return subprocess.run([sys.executable, "-m", "codecbench", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=600)


def _rows(results: Path) -> list[dict]:
    latest = {}
    for line in (results / "cells.jsonl").read_text().splitlines():
        row = json.loads(line)
        latest[(row["image"], row["codec"], row["setting"])] = row
    return list(latest.values())


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for name, image in (("a.png", data.astronaut()), ("b.png", data.coffee())):
        Image.fromarray(np.ascontiguousarray(image[CROP])).save(folder / name)
    return folder


def _run(images, results, *extra):
    return _cli("run", "--codecs", "posterize,jpeg", "--dataset", images, "--settings", "posterize=3,8",
                "--settings", "jpeg=20,60", "--metrics", "psnr_rgb", "--output", results, "--quiet", *extra)


def test_kept_outputs_are_lossless_content_addressed_and_deduplicated(tmp_path, images):
    results = tmp_path / "results"
    assert _run(images, results, "--keep-decoded").returncode == 0
    rows = _rows(results)
    blobs = sorted((results / "blobs").rglob("*.*"))
    assert len(rows) == 8 and len(blobs) == 16
    for path in blobs:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.stem
    originals = {name: np.asarray(Image.open(images / name)).astype(np.uint8) for name in ("a.png", "b.png")}
    for row in rows:
        kept = row["extra"]["kept"]
        bitstream = (results / "blobs" / "bitstreams" / kept["bitstream"][:2] / f"{kept['bitstream']}.bin").read_bytes()
        decoded = np.asarray(Image.open(results / "blobs" / "decoded" / kept["decoded"][:2] / f"{kept['decoded']}.png"))
        assert len(bitstream) == row["bytes"]
        assert np.array_equal(decoded, np.asarray(Image.open(io.BytesIO(bitstream)).convert("RGB")))
        if row["codec"] == "posterize":
            shift = 8 - int(row["setting"])
            assert np.array_equal(decoded, (originals[row["image"]] >> shift) << shift)

    assert _run(images, results, "--keep-decoded", "--force").returncode == 0  # the same outputs again
    assert sorted((results / "blobs").rglob("*.*")) == blobs
    assert [r["extra"]["kept"] for r in _rows(results)] == [r["extra"]["kept"] for r in rows]


def test_rescore_adds_metrics_equal_to_a_full_run_and_resumes(tmp_path, images):
    kept, full = tmp_path / "kept", tmp_path / "full"
    assert _run(images, kept, "--keep-decoded").returncode == 0
    assert _cli("run", "--codecs", "posterize,jpeg", "--dataset", images, "--settings", "posterize=3,8",
                "--settings", "jpeg=20,60", "--metrics", "psnr_rgb,psnr_hvsm,ciede2000", "--output", full,
                "--quiet").returncode == 0
    # a damaged decoded image is replaced by decoding the kept bitstream
    damaged = next((kept / "blobs" / "decoded").rglob("*.png"))
    damaged.write_bytes(damaged.read_bytes()[:-10])

    first = _cli("rescore", kept, "--metrics", "psnr_hvsm,ciede2000", "-j", "2", "--quiet")
    assert first.returncode == 0, first.stderr
    assert "0 already had psnr_hvsm, ciede2000, 8 rescored, 0 failed, 0 cannot be rescored" in first.stderr
    expected = {(r["image"], r["codec"], r["setting"]): r for r in _rows(full)}
    for row in _rows(kept):
        reference = expected[(row["image"], row["codec"], row["setting"])]
        assert row["bytes"] == reference["bytes"] and row["psnr_rgb"] == reference["psnr_rgb"]
        for name in ("psnr_hvsm", "ciede2000"):
            assert row[name] == reference[name]
        assert row["extra"]["rescored_by"] and row["extra"]["kept"]

    again = _cli("rescore", kept, "--metrics", "psnr_hvsm,ciede2000", "--quiet")
    assert again.returncode == 0 and "8 already had psnr_hvsm, ciede2000, 0 rescored" in again.stderr
    assert len(_rows(kept)) == 8


def test_rescore_without_kept_outputs_says_which_cells_and_why(tmp_path, images):
    results = tmp_path / "results"
    assert _run(images, results).returncode == 0
    result = _cli("rescore", results, "--metrics", "psnr_hvs", "--quiet")
    assert result.returncode == 1
    assert "cannot rescore 8 cell(s): no kept outputs (the run that computed it had no --keep-decoded)" in result.stderr
    assert "posterize setting 3 on" in result.stderr and "a.png" in result.stderr
    assert all(row.get("psnr_hvs") is None for row in _rows(results))
    moved = tmp_path / "elsewhere"
    assert _run(images, moved, "--keep-decoded").returncode == 0
    images.rename(tmp_path / "gone")
    lost = _cli("rescore", moved, "--metrics", "psnr_hvs", "--quiet", "--offline")
    assert lost.returncode == 1 and f"dataset {images} cannot be resolved" in lost.stderr
    assert _cli("rescore", moved, "--metrics", "no_such_metric").returncode == 2
