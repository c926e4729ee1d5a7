"""The metric vocabulary: every metric declared once, with its direction, unit, convention and averaging.

This module imports neither torch nor any metric implementation: a metric's
function is named as ``"module:attribute"`` and imported on first use, so
reading results, building reports and checking baselines never load torch.

Everything else reads a metric from here: the runner (which metrics exist and
how to compute them), the RD curves (how a dataset mean is formed), the
reports (label, decimals), the regression check (drift tolerance) and the
CompressAI JSON format (key names).

Averaging over a dataset (:attr:`MetricSpec.mean_of`): a metric is averaged as
the arithmetic mean of its per-image values, except ``ms_ssim_db``, which is
the dB value of the mean MS-SSIM (CompressAI's convention; the mean of
per-image dB values is larger and would not match published curves).

The implementations and their exact conventions: :mod:`codecbench.metrics.fidelity`
(PSNR, SSIM, MS-SSIM) and :mod:`codecbench.metrics.perceptual` (LPIPS).
Metric functions take the reference and the distorted image as H×W×3 uint8
RGB arrays of equal shape and return a Python float.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from codecbench.errors import MetricError
from codecbench.plugins import Availability, load_target


def ms_ssim_to_db(value: float) -> float:
    """−10·log10(1 − MS-SSIM) in dB, +inf for a perfect score."""
    return math.inf if value >= 1.0 else -10.0 * math.log10(1.0 - value)


def db_to_ms_ssim(decibels: float) -> float:
    """The inverse of :func:`ms_ssim_to_db`: 1 − 10^(−dB/10)."""
    return 1.0 - 10.0 ** (-decibels / 10.0)


@dataclass(frozen=True)
class MetricSpec:
    """Everything codecbench knows about one metric.

    ``implementation`` and ``batch`` are ``"module:attribute"`` targets:
    ``implementation`` names the function that computes the metric of one pair
    (:attr:`function` imports it); ``batch``, when given, computes several of
    the metrics that share it in one call, sharing intermediate work
    (``batch(reference, distorted, names) -> {name: value}``). ``mean_of``
    names the metric whose arithmetic mean over images is converted by
    ``from_linear`` to give this metric's dataset mean (``to_linear`` recovers
    that metric from a stored value of this one); None means the plain mean.
    """

    name: str
    higher_is_better: bool
    unit: str  # "dB", or "" for unitless
    label: str  # column and axis label
    digits: int  # decimals shown for values; BD-quality values get one more
    description: str  # the convention in one line
    implementation: str
    drift_tolerance: float  # largest acceptable change of a setting's mean in a regression check, metric units
    compressai_keys: tuple[str, ...] = ()  # keys in CompressAI's results JSON; the first is written on export
    batch: str | None = None
    availability_check: str | None = None  # "module:attribute" of () -> Availability
    mean_of: str | None = None
    from_linear: Callable[[float], float] | None = None
    to_linear: Callable[[float], float] | None = None

    @property
    def function(self) -> Callable[[np.ndarray, np.ndarray], float]:
        """The metric's function ``(reference, distorted) -> float`` (imports its module)."""
        return load_target(self.implementation)

    def availability(self) -> Availability:
        """Whether the metric can be computed here; the other metrics never depend on it."""
        return load_target(self.availability_check)() if self.availability_check else Availability(True)


_FIDELITY = "codecbench.metrics.fidelity"

METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("psnr_rgb", True, "dB", "PSNR-RGB (dB)", 2,
                   "PSNR, MSE over all pixels and RGB channels, peak 255",
                   f"{_FIDELITY}:psnr_rgb", 0.02, ("psnr-rgb", "psnr"), batch=f"{_FIDELITY}:compute"),
        MetricSpec("psnr_y", True, "dB", "PSNR-Y (dB)", 2,
                   "PSNR of BT.601 luma 0.299R+0.587G+0.114B (float, full range), peak 255",
                   f"{_FIDELITY}:psnr_y", 0.02, ("psnr-y",), batch=f"{_FIDELITY}:compute"),
        MetricSpec("ssim", True, "", "SSIM", 4,
                   "SSIM, Gaussian σ=1.5 11×11, K=0.01/0.03, range 255, valid region, mean over RGB",
                   f"{_FIDELITY}:ssim", 1e-4, ("ssim", "ssim-rgb"), batch=f"{_FIDELITY}:compute"),
        MetricSpec("ms_ssim", True, "", "MS-SSIM", 4,
                   "MS-SSIM, 5 scales (fewer below 161 px), mean over RGB, as pytorch-msssim",
                   f"{_FIDELITY}:ms_ssim", 1e-4, ("ms-ssim-rgb", "ms-ssim"), batch=f"{_FIDELITY}:compute"),
        MetricSpec("ms_ssim_db", True, "dB", "MS-SSIM (dB)", 2,
                   "−10·log10(1 − MS-SSIM); the dataset mean is the dB value of the mean MS-SSIM",
                   f"{_FIDELITY}:ms_ssim_db", 0.02, ("ms-ssim-db",), batch=f"{_FIDELITY}:compute",
                   mean_of="ms_ssim", from_linear=ms_ssim_to_db, to_linear=db_to_ms_ssim),
        MetricSpec("lpips", False, "", "LPIPS", 4,
                   "LPIPS v0.1 AlexNet, inputs scaled to [−1, 1]",
                   "codecbench.metrics.perceptual:lpips", 1e-3, ("lpips",),
                   availability_check="codecbench.metrics.perceptual:lpips_availability"),
    )
}


def metric(name: str) -> MetricSpec:
    """The declaration of a metric; MetricError naming the known metrics otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise MetricError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None


def higher_is_better(name: str) -> bool:
    """Direction of a metric."""
    return metric(name).higher_is_better


def compute(reference: np.ndarray, distorted: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """The named metrics of one pair, in the order asked; metrics with the same ``batch`` share one call."""
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise MetricError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    batches: dict[str | None, list[str]] = {}
    for name in names:
        batches.setdefault(METRICS[name].batch, []).append(name)
    values: dict[str, float] = {}
    for batch, group in batches.items():
        if batch is None:
            values.update({name: METRICS[name].function(reference, distorted) for name in group})
        else:
            values.update(load_target(batch)(reference, distorted, group))
    return {name: values[name] for name in names}


def __getattr__(name: str) -> Any:
    """``codecbench.metrics.psnr_rgb`` etc.: the metric functions, imported on first use."""
    if name in METRICS:
        return METRICS[name].function
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
