"""BD patch sets: entropy measure, banding, storage, manifest, specs and CLI.

References are independent of codecbench: luma by exact decimal arithmetic
(round half up), entropy by ``scipy.stats.entropy``, pixels and checksums by
Pillow and hashlib directly.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from click.testing import CliRunner
from PIL import Image

import codecbench
from codecbench.cli.datasets import datasets as datasets_cli
from codecbench.data.bdpatches import SET_NAMES, build_bd, histogram_entropy, luma601, luma601_hist256, resolve_bd
from codecbench.errors import DatasetError

PATCH = 32
HEIGHT, WIDTH = 64, 96  # 2 × 3 = 6 patches per image
SOURCE_NAMES = ["a_gradient.png", "b_flat.png", "c_noise.png", "d_levels.png"]


def _source_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(123)
    y, x = np.mgrid[:HEIGHT, :WIDTH]
    gradient = np.stack([(2 * x + y) % 256, 3 * y, 255 - x], axis=2).astype(np.uint8)
    flat = np.broadcast_to(np.array([90, 140, 200], np.uint8), (HEIGHT, WIDTH, 3))
    noise = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    # patch j (raster order) holds gray noise with 2**(j+1) levels: about j+1 bits
    levels = np.zeros((HEIGHT, WIDTH), np.uint8)
    for j in range(6):
        top, left = j // 3 * PATCH, j % 3 * PATCH
        levels[top : top + PATCH, left : left + PATCH] = rng.integers(0, 2 ** (j + 1), (PATCH, PATCH)) * (256 >> (j + 1))
    return dict(zip(SOURCE_NAMES, [gradient, flat, noise, np.repeat(levels[:, :, None], 3, axis=2)]))


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bd_source")
    for name, image in _source_images().items():
        Image.fromarray(np.ascontiguousarray(image)).save(folder / name)
    (folder / "notes.txt").write_text("not an image; must be ignored")
    return folder


@pytest.fixture(scope="module")
def built(source_dir, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("bd_out")
    return out, build_bd(source_dir, out, patch=PATCH, seed=7, progress=False)


def _reference_luma(rgb: np.ndarray) -> np.ndarray:
    weights = (Decimal("0.299"), Decimal("0.587"), Decimal("0.114"))
    flat = rgb.reshape(-1, 3).tolist()
    values = [int(sum(w * c for w, c in zip(weights, pixel)).quantize(Decimal(1), rounding=ROUND_HALF_UP)) for pixel in flat]
    return np.array(values, dtype=np.int64).reshape(rgb.shape[:-1])


def _reference_entropy(rgb_patch: np.ndarray) -> float:
    return float(scipy.stats.entropy(np.bincount(_reference_luma(rgb_patch).ravel(), minlength=256), base=2))


def _reference_pool(source_dir: Path) -> list[tuple[float, int, int, int, int]]:
    """(entropy rounded to 1e-9, source, patch index, y, x) for every patch, read with Pillow."""
    pool = []
    for source, name in enumerate(SOURCE_NAMES):
        image = np.asarray(Image.open(source_dir / name).convert("RGB"))
        for index in range((HEIGHT // PATCH) * (WIDTH // PATCH)):
            y, x = index // 3 * PATCH, index % 3 * PATCH
            entropy = round(_reference_entropy(image[y : y + PATCH, x : x + PATCH]), 9)
            pool.append((entropy, source, index, y, x))
    return pool


def _positions(index: np.ndarray) -> set[tuple[int, int, int]]:
    return {(int(r["source"]), int(r["y"]), int(r["x"])) for r in index}


# --- entropy measure -------------------------------------------------------------------------


def test_luma_rounds_half_up_exactly():
    # 114 * 250 / 1000 = 28.5 exactly: half up gives 29 (numpy's round-half-even would give 28)
    assert luma601(np.array([[0, 0, 250]], np.uint8))[0] == 29
    rgb = np.random.default_rng(0).integers(0, 256, (2000, 3), dtype=np.uint8)
    assert np.array_equal(luma601(rgb).astype(np.int64), _reference_luma(rgb))
    assert luma601(np.array([[255, 255, 255]], np.uint8))[0] == 255


def test_entropy_of_flat_patch_is_zero():
    patch = np.full((1, PATCH, PATCH, 3), (12, 200, 77), np.uint8)
    assert luma601_hist256(patch)[0] == 0.0
    assert _reference_entropy(patch[0]) == 0.0


def test_entropy_of_256_equiprobable_values_is_8_bits():
    gray = np.arange(256, dtype=np.uint8).reshape(16, 16)
    patch = np.repeat(gray[None, :, :, None], 3, axis=3)
    assert luma601_hist256(patch)[0] == pytest.approx(8.0, abs=1e-12)
    assert _reference_entropy(patch[0]) == pytest.approx(8.0, abs=1e-12)


def test_entropy_matches_scipy_on_random_patches():
    patches = np.random.default_rng(1).integers(0, 256, (5, PATCH, PATCH, 3), dtype=np.uint8)
    patches[1] //= 64  # few levels
    ours = luma601_hist256(patches)
    for patch, value in zip(patches, ours):
        assert value == pytest.approx(_reference_entropy(patch), abs=1e-12)


def test_entropy_ignores_bin_order():
    values = np.array([[0, 0, 0, 1, 2, 2], [9, 9, 9, 200, 5, 5]], np.uint8)
    first, second = histogram_entropy(values)
    assert first == second  # bit-identical: the same count multiset
    assert first == pytest.approx(scipy.stats.entropy([3, 1, 2], base=2), abs=1e-12)


# --- banding ---------------------------------------------------------------------------------


def test_counts_are_a_fifth_of_the_pool_rounded_down(built):
    out, manifest = built
    assert manifest["patches_total"] == manifest["patches_pool"] == 24
    for name in SET_NAMES:
        assert manifest["counts"][name] == 24 // 5 == 4
        array = np.load(out / f"{name}.npy")
        assert array.shape == (4, PATCH, PATCH, 3) and array.dtype == np.uint8
        assert np.load(out / f"{name}_index.npy").shape == (4,)


def test_bands_follow_the_independent_ranking(built, source_dir):
    out, manifest = built
    ranked = sorted(_reference_pool(source_dir))  # (entropy, source, patch index): the documented tie order
    k = 4
    expected = {
        "BD0": ranked[:k],  # includes 4 of the 6 equal-entropy (0 bits) flat patches, the first in patch order
        "BD1": ranked[2 * 24 // 5 : 2 * 24 // 5 + k],
        "BD2": ranked[-k:],
    }
    index = {name: np.load(out / f"{name}_index.npy") for name in SET_NAMES}
    for name, rows in expected.items():
        assert _positions(index[name]) == {(s, y, x) for _, s, _, y, x in rows}, name
    assert index["BD0"]["entropy"].max() <= index["BD1"]["entropy"].min()
    assert index["BD1"]["entropy"].max() <= index["BD2"]["entropy"].min()
    upper_half = {(s, y, x) for _, s, _, y, x in ranked[12:]}
    assert _positions(index["BD4"]) <= upper_half
    everything = {(s, y, x) for _, s, _, y, x in ranked}
    assert _positions(index["BD3"]) <= everything and len(_positions(index["BD3"])) == k
    assert manifest["thresholds"]["bd0_max"] == pytest.approx(ranked[k - 1][0], abs=1e-9)
    assert manifest["thresholds"]["bd2_min"] == pytest.approx(ranked[-k][0], abs=1e-9)
    assert manifest["thresholds"]["upper_half_min"] == pytest.approx(ranked[12][0], abs=1e-9)


def test_sets_hold_the_source_pixels_in_pool_order(built, source_dir):
    out, manifest = built
    for name in SET_NAMES:
        patches, index = np.load(out / f"{name}.npy"), np.load(out / f"{name}_index.npy")
        keys = [(int(r["source"]), int(r["y"]), int(r["x"])) for r in index]
        assert keys == sorted(keys)
        for patch, row in zip(patches, index):
            image = np.asarray(Image.open(source_dir / SOURCE_NAMES[row["source"]]).convert("RGB"))
            y, x = int(row["y"]), int(row["x"])
            assert np.array_equal(patch, image[y : y + PATCH, x : x + PATCH])
            assert row["entropy"] == pytest.approx(_reference_entropy(patch), abs=1e-12)


def test_remainder_is_dropped(tmp_path):
    image = np.random.default_rng(2).integers(0, 256, (70, 100, 3), dtype=np.uint8)  # 2 × 3 full patches
    (tmp_path / "src").mkdir()
    Image.fromarray(image).save(tmp_path / "src" / "odd.png")
    manifest = build_bd(tmp_path / "src", tmp_path / "out", patch=PATCH, progress=False)
    assert manifest["patches_total"] == 6 and manifest["sources"][0]["patches"] == 6
    ys = {int(r["y"]) for name in SET_NAMES for r in np.load(tmp_path / "out" / f"{name}_index.npy")}
    xs = {int(r["x"]) for name in SET_NAMES for r in np.load(tmp_path / "out" / f"{name}_index.npy")}
    assert ys <= {0, 32} and xs <= {0, 32, 64}


def test_max_patches_subsamples_the_pool_before_banding(source_dir, tmp_path):
    manifest = build_bd(source_dir, tmp_path, patch=PATCH, seed=3, max_patches=10, progress=False)
    assert manifest["patches_total"] == 24 and manifest["patches_pool"] == 10 and manifest["max_patches"] == 10
    assert manifest["counts"] == {name: 2 for name in SET_NAMES}
    index = {name: np.load(tmp_path / f"{name}_index.npy") for name in SET_NAMES}
    # banded sets come from a 10-patch pool: BD0's 2 highest ≤ BD1 ≤ BD2
    assert index["BD0"]["entropy"].max() <= index["BD1"]["entropy"].min() <= index["BD2"]["entropy"].min()
    seen = set().union(*(_positions(rows) for rows in index.values()))
    assert len(seen) <= 10


# --- storage and manifest --------------------------------------------------------------------


def test_build_is_deterministic(built, source_dir, tmp_path):
    first, _ = built
    build_bd(source_dir, tmp_path, patch=PATCH, seed=7, progress=False)
    names = sorted(p.name for p in first.iterdir())
    assert names == sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([f"{n}.npy" for n in SET_NAMES] + [f"{n}_index.npy" for n in SET_NAMES] + ["manifest.json"])
    for name in names:
        assert (first / name).read_bytes() == (tmp_path / name).read_bytes(), name


def test_other_seed_changes_only_the_random_sets(built, source_dir, tmp_path):
    first, _ = built
    build_bd(source_dir, tmp_path, patch=PATCH, seed=8, progress=False)
    for name in ("BD0", "BD1", "BD2"):
        assert (first / f"{name}.npy").read_bytes() == (tmp_path / f"{name}.npy").read_bytes()
    assert any((first / f"{n}_index.npy").read_bytes() != (tmp_path / f"{n}_index.npy").read_bytes() for n in ("BD3", "BD4"))


def test_manifest_records_the_build(built, source_dir):
    out, manifest = built
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["source_folder"] == str(source_dir.resolve())
    assert manifest["patch"] == PATCH and manifest["seed"] == 7 and manifest["max_patches"] is None
    assert manifest["codecbench_version"] == codecbench.__version__
    assert manifest["entropy"]["name"] == "luma601_hist256" and "BT.601" in manifest["entropy"]["definition"]
    assert manifest["skipped"] == []
    assert [s["file"] for s in manifest["sources"]] == SOURCE_NAMES  # notes.txt ignored
    for entry in manifest["sources"]:
        path = source_dir / entry["file"]
        assert entry["file_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        pixels = np.asarray(Image.open(path).convert("RGB"))
        assert entry["pixel_sha256"] == hashlib.sha256(pixels.tobytes()).hexdigest()
        assert (entry["width"], entry["height"], entry["patches"]) == (WIDTH, HEIGHT, 6)
    for name in SET_NAMES:
        entry = manifest["sets"][name]
        assert entry["sha256"] == hashlib.sha256((out / f"{name}.npy").read_bytes()).hexdigest()
        assert entry["index_sha256"] == hashlib.sha256((out / f"{name}_index.npy").read_bytes()).hexdigest()
    assert not list(out.glob(".*"))  # no temporary files left


def test_corrupt_image_is_skipped_and_recorded(source_dir, tmp_path):
    source = tmp_path / "src"
    shutil.copytree(source_dir, source)
    (source / "e_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    with pytest.warns(UserWarning, match="e_broken.png"):
        manifest = build_bd(source, tmp_path / "out", patch=PATCH, seed=7, progress=False)
    assert [s["file"] for s in manifest["skipped"]] == ["e_broken.png"]
    assert "e_broken.png" in manifest["skipped"][0]["reason"]
    assert [s["file"] for s in manifest["sources"]] == SOURCE_NAMES and manifest["patches_total"] == 24


def test_bad_inputs_are_rejected(tmp_path, source_dir):
    with pytest.raises(ValueError, match="no image files"):
        build_bd(tmp_path, tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="unknown entropy measure 'sobel'"):
        build_bd(source_dir, tmp_path / "out", entropy="sobel", progress=False)
    with pytest.raises(ValueError, match="only 0 patch"):
        build_bd(source_dir, tmp_path / "out", patch=128, progress=False)


# --- dataset specs ---------------------------------------------------------------------------


def test_resolve_bd_items_load_the_patches(built, source_dir):
    out, _ = built
    dataset = resolve_bd(f"bd:BD2@{out}", None)
    assert dataset.name == f"bd:BD2@{out}"
    assert [item.name for item in dataset.items] == [f"BD2/{i:06d}" for i in range(4)]
    index = np.load(out / "BD2_index.npy")
    for item, row in zip(dataset.items, index):
        assert item.dataset == dataset.name and item.path == str(out / "BD2.npy")
        patch = item.load()
        assert patch.shape == (PATCH, PATCH, 3) and patch.dtype == np.uint8
        image = np.asarray(Image.open(source_dir / SOURCE_NAMES[row["source"]]).convert("RGB"))
        assert np.array_equal(patch, image[row["y"] : row["y"] + PATCH, row["x"] : row["x"] + PATCH])


def test_resolve_bd_default_folder_is_data_dir_bd(built, tmp_path):
    out, _ = built
    shutil.copytree(out, tmp_path / "bd")
    assert len(resolve_bd("bd:BD0", tmp_path).items) == 4


def test_subset_is_seeded_and_in_row_order(built):
    out, _ = built
    first = resolve_bd(f"bd:BD3@{out}?n=3&seed=1", None)
    again = resolve_bd(f"bd:BD3@{out}?n=3&seed=1", None)
    assert [i.name for i in first.items] == [i.name for i in again.items]
    rows = [i.index for i in first.items]
    assert len(rows) == 3 and rows == sorted(set(rows)) and set(rows) <= set(range(4))
    assert [i.index for i in resolve_bd(f"bd:BD3@{out}?n=4", None).items] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("kodak", "starts with 'bd:'"),
        ("bd:BD7", "unknown BD set 'BD7'"),
        ("bd:BD1?size=3", "unknown option 'size=3'"),
        ("bd:BD1?n=x", "n must be a non-negative integer"),
        ("bd:BD1?n=0", "n must be at least 1"),
        ("bd:BD1?seed=2", "seed only applies to a subset"),
        ("bd:BD1?n=2&n=3", "given twice"),
    ],
)
def test_bad_specs_name_the_fault(spec, message, tmp_path):
    with pytest.raises(DatasetError, match=message.replace("?", r"\?")):
        resolve_bd(spec, tmp_path)


def test_subset_larger_than_set_is_rejected(built):
    out, _ = built
    with pytest.raises(DatasetError, match="n=5 exceeds the 4 patches"):
        resolve_bd(f"bd:BD0@{out}?n=5", None)


def test_missing_sets_say_how_to_build_them(tmp_path):
    with pytest.raises(DatasetError, match=r"codecbench datasets build-bd .* -o " + re.escape(str(tmp_path / "bd"))):
        resolve_bd("bd:BD0", tmp_path)


def test_modified_set_file_is_detected(built, tmp_path):
    out, _ = built
    shutil.copytree(out, tmp_path / "bd")
    array = np.load(tmp_path / "bd" / "BD1.npy")
    array[0, 0, 0, 0] ^= 1
    np.save(tmp_path / "bd" / "BD1.npy", array)
    with pytest.raises(DatasetError, match="differs from its manifest"):
        resolve_bd("bd:BD1", tmp_path)


# --- command line ----------------------------------------------------------------------------


def test_cli_build_and_list(source_dir, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        datasets_cli,
        ["--data-dir", str(tmp_path), "build-bd", "--source", str(source_dir), "--patch", "32", "--seed", "7",
         "--output", str(tmp_path / "bd")],
    )
    assert result.exit_code == 0, result.output
    assert "24 patches" in result.output
    for name in SET_NAMES:
        assert f"{name}" in result.output
    manifest = json.loads((tmp_path / "bd" / "manifest.json").read_text())
    assert f"{manifest['thresholds']['bd2_min']:.3f}" in result.output
    listing = runner.invoke(datasets_cli, ["--data-dir", str(tmp_path)])
    assert listing.exit_code == 0, listing.output
    assert "bd:BD2" in listing.output and str(tmp_path / "bd") in listing.output
    assert runner.invoke(datasets_cli, ["--data-dir", str(tmp_path), "list"]).output == listing.output
    set_lines = [line for line in result.output.splitlines() if line.startswith("  bd:")]
    assert len(set_lines) == len(SET_NAMES)
    assert all(line in listing.output.splitlines() for line in set_lines)  # one format in both commands


def test_cli_reports_bad_source(tmp_path):
    result = CliRunner().invoke(datasets_cli, ["build-bd", "--source", str(tmp_path), "--output", str(tmp_path / "o")])
    assert result.exit_code != 0 and "no image files" in result.output


# --- shared photos ---------------------------------------------------------------------------


@pytest.mark.slow
def test_photos_with_capped_pool(shared_dir, tmp_path):
    photos = shared_dir / "datasets" / "photos"
    manifest = build_bd(photos, tmp_path, patch=PATCH, seed=0, max_patches=500, progress=False)
    assert len(manifest["sources"]) == 49 and manifest["skipped"] == []
    assert manifest["patches_total"] == sum((s["width"] // 32) * (s["height"] // 32) for s in manifest["sources"])
    assert manifest["patches_pool"] == 500 and manifest["counts"]["BD2"] == 100
    t = manifest["thresholds"]
    assert 0 <= t["bd0_max"] <= t["bd1_min"] <= t["bd1_max"] <= t["bd2_min"] <= 8
    dataset = resolve_bd(f"bd:BD2@{tmp_path}?n=2", None)
    row = np.load(tmp_path / "BD2_index.npy")[dataset.items[0].index]
    source = np.asarray(Image.open(photos / manifest["sources"][row["source"]]["file"]).convert("RGB"))
    expected = source[row["y"] : row["y"] + PATCH, row["x"] : row["x"] + PATCH]
    assert np.array_equal(dataset.items[0].load(), expected)
