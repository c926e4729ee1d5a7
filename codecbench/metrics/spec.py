"""What a metric is: :class:`MetricSpec`, the declaration every metric (built-in or plugin) makes.

A metric is registered by naming its ``MetricSpec`` in the entry-point group
``codecbench.metrics`` (see :mod:`codecbench.metrics`). This module imports
neither torch nor any metric implementation, so that declarations load fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from codecbench.errors import MetricError, check_rgb
from codecbench.plugins import Availability, load_target


def ms_ssim_to_db(value: float) -> float:
    """−10·log10(1 − MS-SSIM) in dB, +inf for a perfect score."""
    return math.inf if value >= 1.0 else -10.0 * math.log10(1.0 - value)


def db_to_ms_ssim(decibels: float) -> float:
    """The inverse of :func:`ms_ssim_to_db`: 1 − 10^(−dB/10)."""
    return 1.0 - 10.0 ** (-decibels / 10.0)


def check_pair(reference: np.ndarray, distorted: np.ndarray) -> None:
    """MetricError unless both are H×W×3 uint8 RGB arrays of the same shape."""
    check_rgb(reference, "reference", MetricError)
    check_rgb(distorted, "distorted", MetricError)
    if reference.shape != distorted.shape:
        raise MetricError(f"shapes differ: reference {reference.shape}, distorted {distorted.shape}")


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
    ``default_run``: computed by ``codecbench run`` when ``--metrics`` is not
    given (slow or new metrics are asked for by name, so that existing results
    directories do not lack them).
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
    default_run: bool = False

    @property
    def function(self) -> Callable[[np.ndarray, np.ndarray], float]:
        """The metric's function ``(reference, distorted) -> float`` (imports its module)."""
        return load_target(self.implementation)

    def availability(self) -> Availability:
        """Whether the metric can be computed here; the other metrics never depend on it."""
        if not self.availability_check:
            return Availability(True)
        try:
            return load_target(self.availability_check)()
        except Exception as exc:  # a broken check must not break the other metrics
            return Availability(False, f"availability check {self.availability_check} failed: "
                                       f"{type(exc).__name__}: {exc}")
