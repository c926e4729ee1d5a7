"""Time of the quality metrics on one Kodak-sized pair (768×512 RGB, reference vs Pillow JPEG quality 30).

Each metric alone and the runner's usual set together (PSNR-RGB + PSNR-Y + SSIM +
MS-SSIM, target ≤ 50 ms on one core), PSNR-HVS + PSNR-HVS-M together (target
≤ 50 ms), next to the implementations they are checked against (scikit-image,
pytorch-msssim, the psnr-hvsm package, py-ssimulacra2). ``extra_info`` records
the value and, for the references, the absolute difference from codecbench's
value. One-core numbers (torch then runs one thread)::

    taskset -c 0 .venv/bin/pytest benchmarks/bench_metrics.py --benchmark-only

``test_numpy_against_torch`` times codecbench's numpy PSNR-RGB + PSNR-Y + SSIM +
MS-SSIM against the PyTorch implementation it replaced
(``torch_fidelity_reference.py``) in the same run, alternating the two, one
BLAS and one torch thread each; it prints and records the ratio of their
fastest rounds (target ≤ 0.6) and the largest difference of their values.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_msssim import ms_ssim as pytorch_ms_ssim
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from codecbench import metrics
from codecbench.metrics import fidelity, perceptual
from torch_fidelity_reference import compute as torch_compute

USUAL_SET = ["psnr_rgb", "psnr_y", "ssim", "ms_ssim"]
ROUNDS_SIDE_BY_SIDE = 20


@pytest.fixture(scope="module")
def pair(kodak_sized_image) -> tuple[str, np.ndarray, np.ndarray]:
    """(source name, reference, Pillow JPEG quality-30 round trip of it)."""
    source, image = kodak_sized_image
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=30)
    return source, image, np.asarray(Image.open(buffer).convert("RGB"))


@pytest.mark.parametrize("name", ["psnr_rgb", "psnr_y", "ssim", "ms_ssim", "ms_ssim_db", "psnr_hvs", "psnr_hvsm",
                                  "ssimulacra2", "ciede2000", "flip", "butteraugli"])
@pytest.mark.benchmark(group="metric alone", min_rounds=5)
def test_metric_alone(benchmark, pair, name: str) -> None:
    status = metrics.METRICS[name].availability()
    if not status.ok:
        pytest.skip(f"{name} unavailable: {status.reason}")
    source, reference, distorted = pair
    values = benchmark(metrics.compute, reference, distorted, [name])
    benchmark.extra_info.update(image=source, value=values[name])


@pytest.mark.benchmark(group="metrics together", min_rounds=5)
def test_psnr_hvs_and_psnr_hvsm_together(benchmark, pair) -> None:
    source, reference, distorted = pair
    values = benchmark(metrics.compute, reference, distorted, ["psnr_hvs", "psnr_hvsm"])
    benchmark.extra_info.update(image=source, **values)


@pytest.mark.benchmark(group="metrics together", min_rounds=5)
def test_usual_set_together(benchmark, pair) -> None:
    source, reference, distorted = pair
    values = benchmark(metrics.compute, reference, distorted, USUAL_SET)
    benchmark.extra_info.update(image=source, **values)


@pytest.fixture
def one_thread_each():
    """One BLAS thread (numpy) and one torch thread, restored afterwards."""
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(limits=1):
        yield
    torch.set_num_threads(threads)


@pytest.mark.benchmark(group="numpy vs torch", min_rounds=5)
def test_numpy_against_torch(benchmark, pair, one_thread_each, capsys) -> None:
    """The usual set by the numpy module and by the torch implementation it replaced, alternated in one run."""
    source, reference, distorted = pair
    rounds = {"numpy": [], "torch": []}
    for _ in range(ROUNDS_SIDE_BY_SIDE):
        for name, compute in (("numpy", fidelity.compute), ("torch", torch_compute)):
            start = time.perf_counter()
            compute(reference, distorted, USUAL_SET)
            rounds[name].append(time.perf_counter() - start)
    ours, theirs = fidelity.compute(reference, distorted, USUAL_SET), torch_compute(reference, distorted, USUAL_SET)
    ratio = min(rounds["numpy"]) / min(rounds["torch"])
    difference = max(abs(ours[name] - theirs[name]) for name in USUAL_SET)
    benchmark(fidelity.compute, reference, distorted, USUAL_SET)
    benchmark.extra_info.update(image=source, numpy_ms=1e3 * min(rounds["numpy"]), torch_ms=1e3 * min(rounds["torch"]),
                                ratio=ratio, median_ratio=float(np.median(np.divide(rounds["numpy"], rounds["torch"]))),
                                max_abs_difference=difference)
    with capsys.disabled():
        print(f"\n    {source}: numpy {1e3 * min(rounds['numpy']):.1f} ms, torch {1e3 * min(rounds['torch']):.1f} ms "
              f"(fastest of {ROUNDS_SIDE_BY_SIDE} alternated rounds): ratio {ratio:.2f}; "
              f"largest difference {difference:.1e}")
    assert difference < 1e-7


@pytest.mark.benchmark(group="metric alone", min_rounds=3)
def test_lpips(benchmark, pair) -> None:
    shared = os.environ.get("CODECBENCH_SHARED")
    weights = Path(shared, "weights", "lpips", "alexnet_features.pth") if shared else None
    if weights is not None and weights.is_file():
        perceptual.set_lpips_weights(weights)
    status = perceptual.lpips_availability()
    if not status.ok:
        pytest.skip(f"lpips unavailable: {status.reason}")
    source, reference, distorted = pair
    metrics.lpips(reference, distorted)  # builds and caches the model outside the timing
    value = benchmark(metrics.lpips, reference, distorted)
    benchmark.extra_info.update(image=source, value=value, torch_threads=torch.get_num_threads())


@pytest.mark.benchmark(group="references", min_rounds=3)
def test_reference_scikit_image_psnr(benchmark, pair) -> None:
    source, reference, distorted = pair
    value = benchmark(peak_signal_noise_ratio, reference, distorted, data_range=255)
    benchmark.extra_info.update(image=source, value=value, abs_diff=abs(value - metrics.psnr_rgb(reference, distorted)))


@pytest.mark.benchmark(group="references", min_rounds=3)
def test_reference_scikit_image_ssim(benchmark, pair) -> None:
    source, reference, distorted = pair
    value = benchmark(structural_similarity, reference, distorted, gaussian_weights=True, sigma=1.5,
                      use_sample_covariance=False, data_range=255, channel_axis=2)
    benchmark.extra_info.update(image=source, value=value, abs_diff=abs(value - metrics.ssim(reference, distorted)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.benchmark(group="references", min_rounds=3)
def test_reference_pytorch_msssim(benchmark, pair, dtype: torch.dtype) -> None:
    """pytorch-msssim as usually called (its own float32 window), on float32 or float64 tensors."""
    source, reference, distorted = pair
    x, y = (torch.from_numpy(image.copy()).permute(2, 0, 1)[None].to(dtype) for image in (reference, distorted))
    value = float(benchmark(pytorch_ms_ssim, x, y, data_range=255))
    benchmark.extra_info.update(image=source, value=value, abs_diff=abs(value - metrics.ms_ssim(reference, distorted)))


@pytest.mark.benchmark(group="references", min_rounds=3)
def test_reference_psnr_hvsm_package(benchmark, pair) -> None:
    """The psnr-hvsm package's numpy backend on its own BT.601 Y (the conversion is not timed)."""
    with contextlib.redirect_stdout(io.StringIO()):  # it prints a note about its optional torch backend
        psnr_hvsm = pytest.importorskip("psnr_hvsm")
    backend = psnr_hvsm.BACKENDS["numpy"]
    source, reference, distorted = pair
    (y_ref, _, _), (y_dist, _, _) = backend["bt601ycbcr"](reference), backend["bt601ycbcr"](distorted)
    with np.errstate(invalid="ignore"):
        hvs, hvsm = (float(v) for v in benchmark(backend["psnr_hvs_hvsm"], y_ref, y_dist))
    ours = metrics.compute(reference, distorted, ["psnr_hvs", "psnr_hvsm"])
    benchmark.extra_info.update(image=source, value=hvsm, abs_diff=max(abs(hvs - ours["psnr_hvs"]),
                                                                         abs(hvsm - ours["psnr_hvsm"])))


@pytest.mark.benchmark(group="references", min_rounds=3)
def test_reference_scikit_image_ciede2000(benchmark, pair) -> None:
    source, reference, distorted = pair
    value = benchmark(lambda: float(np.mean(deltaE_ciede2000(rgb2lab(reference), rgb2lab(distorted)))))
    benchmark.extra_info.update(image=source, value=value,
                                abs_diff=abs(value - metrics.ciede2000(reference, distorted)))


@pytest.mark.benchmark(group="references", min_rounds=3)
def test_reference_py_ssimulacra2(benchmark, pair, tmp_path) -> None:
    """py-ssimulacra2 (scipy Gaussian blur; reads PNG files, which is part of its time)."""
    package = pytest.importorskip("ssimulacra2")
    source, reference, distorted = pair
    Image.fromarray(reference).save(tmp_path / "reference.png")
    Image.fromarray(distorted).save(tmp_path / "distorted.png")
    value = benchmark(package.compute_ssimulacra2, str(tmp_path / "reference.png"), str(tmp_path / "distorted.png"))
    benchmark.extra_info.update(image=source, value=value,
                                abs_diff=abs(value - metrics.ssimulacra2(reference, distorted)))
