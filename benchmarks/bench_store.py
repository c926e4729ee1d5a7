"""The results store: appending one finished cell, and reading a results file of 2,000 cells back.

An append is one line write plus ``fsync`` (what the runner does after every
cell), so its time depends on the file system the temporary folder is on.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from codecbench.store import ResultsStore

#: Number of cells in the file that ``rows()`` reads back.
N_ROWS = 2000


def realistic_row(index: int = 0) -> dict:
    """A finished jpeg cell on a Kodak image, with every column the runner writes; ``index`` varies the cell."""
    return {
        "dataset": "kodak", "image": f"kodim{index // 11 % 24 + 1:02d}.png",
        "image_sha256": f"{index // 11:064x}", "width": 768, "height": 512,
        "codec": "jpeg", "codec_version": "libjpeg-turbo 3.0.4 (Pillow 11.0.0)",
        "setting": float(index % 11 * 9 + 5), "target_bpp": None,
        "bytes": 48213, "bpp": 0.980835, "psnr_rgb": 31.8724, "psnr_y": 33.1507, "ssim": 0.912843,
        "ms_ssim": 0.975204, "ms_ssim_db": 16.0472, "lpips": None,
        "encode_s": 0.008412, "decode_s": 0.004203, "error": None, "extra": None,
        "run_id": "20250101T000000.000000Z-benchhost-12345", "finished_at": "2025-01-01T00:00:01+00:00",
    }


@pytest.mark.benchmark(group="store")
def test_append_one_row(benchmark, tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "results")
    row = realistic_row()
    benchmark(store.append, row)
    assert store.rows()[0]["psnr_rgb"] == row["psnr_rgb"]


@pytest.mark.benchmark(group="store")
def test_read_rows(benchmark, tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "results")
    store.append(realistic_row(i) for i in range(N_ROWS))
    rows = benchmark(store.rows)
    benchmark.extra_info["rows"] = N_ROWS
    assert len(rows) == N_ROWS
