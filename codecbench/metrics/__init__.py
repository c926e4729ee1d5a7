"""The metric vocabulary: every metric declared once, with its direction, unit, convention and averaging.

Metrics are discovered through the entry-point group ``codecbench.metrics``:
each entry point names a :class:`~codecbench.metrics.spec.MetricSpec`.
codecbench's own metrics (:mod:`codecbench.metrics.builtin`) are registered
there exactly as a third-party plugin registers its own, so there is one
discovery path. A plugin that fails to load is listed in :data:`UNLOADABLE`
with the reason and never breaks the other metrics.

This module imports neither torch nor any metric implementation: a metric's
function is named as ``"module:attribute"`` and imported on first use, so
reading results, building reports and checking baselines never load torch.

Everything else reads a metric from here: the runner (which metrics exist and
how to compute them), the store (one column per metric), the RD curves (how a
dataset mean is formed), the reports (label, decimals), the regression check
(drift tolerance) and the CompressAI JSON format (key names).

Averaging over a dataset (:attr:`MetricSpec.mean_of`): a metric is averaged as
the arithmetic mean of its per-image values, except ``ms_ssim_db``, which is
the dB value of the mean MS-SSIM (CompressAI's convention; the mean of
per-image dB values is larger and would not match published curves).

Order of :data:`METRICS` (and so of the store's columns): codecbench's own
metrics first, then plugins by distribution name; within one module, in the
order the declarations appear. Metric functions take the reference and the
distorted image as H×W×3 uint8 RGB arrays of equal shape and return a float.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import Any

import numpy as np

from codecbench.errors import MetricError
from codecbench.metrics.spec import MetricSpec, db_to_ms_ssim, ms_ssim_to_db
from codecbench.plugins import load_target

__all__ = ["METRICS", "UNLOADABLE", "MetricSpec", "compute", "db_to_ms_ssim", "default_metrics", "discover",
           "higher_is_better", "metric", "ms_ssim_to_db"]

ENTRY_POINT_GROUP = "codecbench.metrics"
_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_OWN_DISTRIBUTION = "codecbench"


def _load(entry_point: Any) -> MetricSpec:
    spec = entry_point.load()
    if not isinstance(spec, MetricSpec):
        raise TypeError(f"{entry_point.value} is a {type(spec).__name__}, not a codecbench.metrics.spec.MetricSpec")
    if spec.name != entry_point.name:
        raise ValueError(f"entry point {entry_point.name!r} names the metric {spec.name!r}")
    if not _NAME.match(spec.name):
        raise ValueError(f"metric name {spec.name!r} is not lower-case letters, digits and underscores")
    return spec


def _position(entry_point: Any) -> tuple:
    """Sort key: codecbench first, then by distribution; in one module, by declaration order."""
    distribution = entry_point.dist.name if entry_point.dist is not None else ""
    module_name, _, attribute = entry_point.value.partition(":")
    module = sys.modules.get(module_name)
    declared = list(vars(module)) if module is not None else []
    index = declared.index(attribute) if attribute in declared else len(declared)
    return (distribution != _OWN_DISTRIBUTION, distribution, module_name, index, entry_point.name)


def discover() -> tuple[dict[str, MetricSpec], dict[str, str]]:
    """(metrics by name, reasons by name for entry points that failed to load), from the entry-point group."""
    loaded: list[tuple[Any, MetricSpec]] = []
    failed: dict[str, str] = {}
    seen: set[str] = set()
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name in seen:
            continue  # first registration wins, as for codecs
        seen.add(entry_point.name)
        try:
            loaded.append((entry_point, _load(entry_point)))
        except Exception as exc:  # a broken plugin must not hide the others
            failed[entry_point.name] = f"could not be loaded from {entry_point.value}: {type(exc).__name__}: {exc}"
    loaded.sort(key=lambda pair: _position(pair[0]))
    return {spec.name: spec for _, spec in loaded}, failed


#: Every loadable metric, by name, in the order described above.
METRICS: dict[str, MetricSpec]
#: Metrics whose entry point failed to load: name -> why.
UNLOADABLE: dict[str, str]
METRICS, UNLOADABLE = discover()


def metric(name: str) -> MetricSpec:
    """The declaration of a metric; MetricError naming the known metrics (or why it failed to load) otherwise."""
    if name in METRICS:
        return METRICS[name]
    if name in UNLOADABLE:
        raise MetricError(f"metric {name} {UNLOADABLE[name]}")
    raise MetricError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")


def higher_is_better(name: str) -> bool:
    """Direction of a metric."""
    return metric(name).higher_is_better


def default_metrics() -> list[str]:
    """The metrics ``codecbench run`` computes when none are named (:attr:`MetricSpec.default_run`)."""
    return [name for name, spec in METRICS.items() if spec.default_run]


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
