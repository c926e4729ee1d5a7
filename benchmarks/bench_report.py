"""``codecbench report`` on a large store: 96,000 rows (100 datasets × 4 codecs × 24 images × 10 settings).

The rows are synthetic but shaped like a Kodak sweep (smooth, slightly noisy
RD curves; PSNR-RGB, PSNR-Y, SSIM, MS-SSIM and MS-SSIM-dB filled in), so every
BD table has its per-image values and bootstrap intervals: 2 kinds × 2 metrics
× 3 codecs × 24 images = 288 per-image BD values per dataset, 28,800 in all.
Target: one report ≤ 10 s. ``extra_info`` gives the row count and the seconds
spent reading the store, summarising curves and computing BD values.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from codecbench.analysis.bjontegaard import compare
from codecbench.analysis.curves import summarise
from codecbench.render.report import build_report
from codecbench.store import ResultsStore

CODECS = (("jpeg", 0.0), ("webp", 1.0), ("jpeg2000", 0.6), ("avif", 1.6))  # name, PSNR gain over jpeg (dB)
DATASETS, IMAGES, SETTINGS = 100, 24, 10
METRICS = ["psnr_rgb", "ms_ssim_db"]


def synthetic_rows() -> list[dict]:
    """Rows of a sweep: bpp grows by 1.4× per setting; PSNR rises 3 dB per doubling; MS-SSIM saturates."""
    rng = np.random.default_rng(0)
    rows = []
    for dataset in range(DATASETS):
        for codec, gain in CODECS:
            for image in range(IMAGES):
                for setting in range(SETTINGS):
                    bpp = 0.1 * 1.4**setting * (1 + 0.1 * rng.random())
                    psnr = 25 + gain + 3 * math.log2(bpp / 0.1) + 0.1 * rng.random()
                    ms_ssim = 1 - 0.2 * math.exp(-2 * bpp)
                    rows.append({
                        "dataset": f"set{dataset:03d}", "image": f"img{image:02d}.png",
                        "image_sha256": f"{dataset:04d}{image:060x}", "width": 768, "height": 512,
                        "codec": codec, "codec_version": "1", "setting": float(setting), "target_bpp": None,
                        "bytes": int(bpp * 768 * 512 / 8), "bpp": bpp, "psnr_rgb": psnr, "psnr_y": psnr + 1,
                        "ssim": ms_ssim - 0.05, "ms_ssim": ms_ssim, "ms_ssim_db": -10 * math.log10(1 - ms_ssim),
                        "lpips": None, "encode_s": 0.01, "decode_s": 0.005, "error": None, "extra": None,
                        "run_id": "bench", "finished_at": "2026-01-01T00:00:00+00:00",
                    })
    return rows


@pytest.fixture(scope="module")
def large_store(tmp_path_factory: pytest.TempPathFactory) -> ResultsStore:
    store = ResultsStore(tmp_path_factory.mktemp("report") / "results")
    store.append(synthetic_rows())
    return store


@pytest.mark.benchmark(group="report")
def test_report_of_96000_rows(benchmark, large_store: ResultsStore, tmp_path: Path) -> None:
    stages = {}
    start = time.perf_counter()
    rows = large_store.rows()
    stages["read_s"] = time.perf_counter() - start
    start = time.perf_counter()
    datasets = summarise(rows)
    stages["summarise_s"] = time.perf_counter() - start
    start = time.perf_counter()
    for results in datasets.values():
        compare(results, "jpeg", METRICS, kind="rate")
        compare(results, "jpeg", METRICS, kind="quality")
    stages["bd_s"] = time.perf_counter() - start

    report = benchmark.pedantic(build_report, args=(large_store.root, tmp_path / "report"),
                                kwargs={"metrics": METRICS}, rounds=1, iterations=1)
    benchmark.extra_info.update(rows=len(rows), **{k: round(v, 2) for k, v in stages.items()})
    assert len(report.datasets) == DATASETS and (tmp_path / "report" / "report.html").is_file()
