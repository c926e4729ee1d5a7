"""The declarations of codecbench's own metrics, registered in pyproject's ``codecbench.metrics`` entry points.

Each ``MetricSpec`` here is named by one entry point, exactly as a
third-party metric is; metrics of one module are listed in the order they are
declared. The implementations are imported only when a metric is computed.
"""

from __future__ import annotations

from codecbench.metrics.spec import MetricSpec, db_to_ms_ssim, ms_ssim_to_db

_FIDELITY = "codecbench.metrics.fidelity"
_HVS = "codecbench.metrics.hvs"

PSNR_RGB = MetricSpec(
    "psnr_rgb", True, "dB", "PSNR-RGB (dB)", 2, "PSNR, MSE over all pixels and RGB channels, peak 255",
    f"{_FIDELITY}:psnr_rgb", 0.02, ("psnr-rgb", "psnr"), batch=f"{_FIDELITY}:compute", default_run=True)
PSNR_Y = MetricSpec(
    "psnr_y", True, "dB", "PSNR-Y (dB)", 2, "PSNR of BT.601 luma 0.299R+0.587G+0.114B (float, full range), peak 255",
    f"{_FIDELITY}:psnr_y", 0.02, ("psnr-y",), batch=f"{_FIDELITY}:compute", default_run=True)
SSIM = MetricSpec(
    "ssim", True, "", "SSIM", 4, "SSIM, Gaussian σ=1.5 11×11, K=0.01/0.03, range 255, valid region, mean over RGB",
    f"{_FIDELITY}:ssim", 1e-4, ("ssim", "ssim-rgb"), batch=f"{_FIDELITY}:compute", default_run=True)
MS_SSIM = MetricSpec(
    "ms_ssim", True, "", "MS-SSIM", 4, "MS-SSIM, 5 scales (fewer below 161 px), mean over RGB, as pytorch-msssim",
    f"{_FIDELITY}:ms_ssim", 1e-4, ("ms-ssim-rgb", "ms-ssim"), batch=f"{_FIDELITY}:compute", default_run=True)
MS_SSIM_DB = MetricSpec(
    "ms_ssim_db", True, "dB", "MS-SSIM (dB)", 2,
    "−10·log10(1 − MS-SSIM); the dataset mean is the dB value of the mean MS-SSIM",
    f"{_FIDELITY}:ms_ssim_db", 0.02, ("ms-ssim-db",), batch=f"{_FIDELITY}:compute",
    mean_of="ms_ssim", from_linear=ms_ssim_to_db, to_linear=db_to_ms_ssim, default_run=True)
LPIPS = MetricSpec(
    "lpips", False, "", "LPIPS", 4, "LPIPS v0.1 AlexNet, inputs scaled to [−1, 1]",
    "codecbench.metrics.perceptual:lpips", 1e-3, ("lpips",),
    availability_check="codecbench.metrics.perceptual:lpips_availability", default_run=True)
PSNR_HVS = MetricSpec(
    "psnr_hvs", True, "dB", "PSNR-HVS (dB)", 2,
    "PSNR-HVS (Egiazarian 2006) on 8-bit BT.601 studio-range Y, 8×8 DCT blocks, CSF-weighted, peak 255",
    f"{_HVS}:psnr_hvs", 0.02, ("psnr-hvs",), batch=f"{_HVS}:compute")
PSNR_HVSM = MetricSpec(
    "psnr_hvsm", True, "dB", "PSNR-HVS-M (dB)", 2,
    "PSNR-HVS-M (Ponomarenko 2007): PSNR-HVS with contrast masking, same Y and blocks",
    f"{_HVS}:psnr_hvsm", 0.02, ("psnr-hvs-m",), batch=f"{_HVS}:compute")
SSIMULACRA2 = MetricSpec(
    "ssimulacra2", True, "", "SSIMULACRA2", 2,
    "SSIMULACRA 2.1 (libjxl): XYB, 6 scales, recursive Gaussian σ=1.5; 100 = identical",
    "codecbench.metrics.ssimulacra:ssimulacra2", 0.05, ("ssimulacra2",))
CIEDE2000 = MetricSpec(
    "ciede2000", False, "", "CIEDE2000 ΔE", 3,
    "mean ΔE00 over pixels, sRGB → CIELAB (D65, 2° observer), kL=kC=kH=1",
    "codecbench.metrics.colour:ciede2000", 0.005, ("ciede2000",))
FLIP = MetricSpec(
    "flip", False, "", "FLIP", 4,
    "NVIDIA ꟻLIP, LDR, sRGB inputs, 67.02 pixels per degree, mean of the error map",
    "codecbench.metrics.flip_ldr:flip", 1e-3, ("flip",),
    availability_check="codecbench.metrics.flip_ldr:flip_availability")
BUTTERAUGLI = MetricSpec(
    "butteraugli", False, "", "Butteraugli", 3,
    "libjxl butteraugli_main distance (max norm), sRGB inputs, 80 nits intensity target",
    "codecbench.metrics.libjxl:butteraugli", 0.01, ("butteraugli",),
    availability_check="codecbench.metrics.libjxl:butteraugli_availability")
