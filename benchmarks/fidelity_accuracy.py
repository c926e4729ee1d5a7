"""Largest difference of codecbench's SSIM and MS-SSIM from the float64 references on distorted Kodak images.

The check behind the ≤ 1e-7 claim of :mod:`codecbench.metrics.fidelity`: the 24
Kodak images, each distorted 11 ways (Pillow JPEG quality 5/30/90, Gaussian
noise σ 2 and 20 rounded and clipped, +40 offset, inversion, a vertical flip,
flat grey/black/white replacements), against scikit-image's SSIM and
pytorch-msssim's MS-SSIM given the same float64 window, both in float64. The
PyTorch implementation that codecbench used before (``torch_fidelity_reference.py``)
is measured beside it. About ten minutes on one core (the float64 references
are slow)::

    CODECBENCH_SHARED=../shared .venv/bin/python benchmarks/fidelity_accuracy.py
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from pytorch_msssim import ms_ssim as reference_ms_ssim
from skimage.metrics import structural_similarity

from codecbench.data.images import load_rgb
from codecbench.metrics import fidelity

sys.path.insert(0, str(Path(__file__).parent))
from torch_fidelity_reference import compute as torch_compute  # noqa: E402


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("RGB"))


def distortions(image: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def noisy(sigma: float) -> np.ndarray:
        return np.clip(np.rint(image + rng.normal(0, sigma, image.shape)), 0, 255).astype(np.uint8)

    return {"jpeg5": jpeg(image, 5), "jpeg30": jpeg(image, 30), "jpeg90": jpeg(image, 90), "noise2": noisy(2),
            "noise20": noisy(20), "offset40": np.clip(image.astype(int) + 40, 0, 255).astype(np.uint8),
            "inverted": 255 - image, "vflip": np.ascontiguousarray(image[::-1]), "grey": np.full_like(image, 128),
            "black": np.zeros_like(image), "white": np.full_like(image, 255)}


def main() -> None:
    torch.set_num_threads(1)
    kodak = Path(os.environ.get("CODECBENCH_SHARED", "../shared"), "datasets", "kodak")
    window = torch.from_numpy(fidelity.GAUSSIAN_WINDOW).view(1, 1, 11).repeat(3, 1, 1, 1)
    worst = {(impl, metric): (0.0, "") for impl in ("numpy", "torch") for metric in ("ssim", "ms_ssim")}
    for index in range(1, 25):
        reference = load_rgb(kodak / f"kodim{index:02d}.png")
        for name, distorted in distortions(reference, index).items():
            x, y = (torch.from_numpy(image.copy()).permute(2, 0, 1)[None].double() for image in (reference, distorted))
            expected = {"ssim": structural_similarity(reference, distorted, gaussian_weights=True, sigma=1.5,
                                                      use_sample_covariance=False, data_range=255, channel_axis=2),
                        "ms_ssim": float(reference_ms_ssim(x, y, data_range=255, win=window))}
            for impl, compute in (("numpy", fidelity.compute), ("torch", torch_compute)):
                values = compute(reference, distorted, ["ssim", "ms_ssim"])
                for metric, value in values.items():
                    error = abs(value - expected[metric])
                    if error > worst[impl, metric][0]:
                        worst[impl, metric] = (error, f"kodim{index:02d} {name}")
        print(f"kodim{index:02d} done", flush=True)
    for (impl, metric), (error, where) in worst.items():
        print(f"{impl:5} {metric:7} largest difference {error:.2e} ({where})")


if __name__ == "__main__":
    main()
