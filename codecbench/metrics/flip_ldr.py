"""NVIDIA ꟻLIP for low-dynamic-range images (Andersson et al. 2020), through the official ``flip-evaluator`` package.

``flip``: the mean over pixels of LDR-ꟻLIP's per-pixel error map (0 =
identical, 1 = largest difference; lower is better), both images given as
sRGB in [0, 1] (8-bit value / 255), default viewing conditions of the tool:
0.7 m from a 0.7 m wide 3840-pixel monitor, 67.02 pixels per degree. The mean
is taken in float64 over the tool's float32 error map.
"""

from __future__ import annotations

import numpy as np

from codecbench.errors import MetricUnavailable
from codecbench.metrics.spec import check_pair
from codecbench.plugins import Availability


def flip_availability() -> Availability:
    """Whether the ``flip-evaluator`` package (NVIDIA's ꟻLIP) can be imported."""
    try:
        import flip_evaluator  # noqa: F401
    except ImportError as exc:
        return Availability(False, f"the flip-evaluator package is not installed ({exc}): pip install flip-evaluator")
    return Availability(True)


def flip_error_map(reference: np.ndarray, distorted: np.ndarray) -> np.ndarray:
    """LDR-ꟻLIP's H×W error map (float32, 0–1) of two 8-bit sRGB images."""
    check_pair(reference, distorted)
    status = flip_availability()
    if not status.ok:
        raise MetricUnavailable(status.reason)
    import flip_evaluator

    error_map, _, _ = flip_evaluator.evaluate(reference.astype(np.float32) / 255, distorted.astype(np.float32) / 255,
                                              "LDR", inputsRGB=True, applyMagma=False, computeMeanError=False)
    return error_map.reshape(reference.shape[:2])


def flip(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Mean LDR-ꟻLIP error over pixels (lower is better)."""
    return float(np.mean(flip_error_map(reference, distorted), dtype=np.float64))
