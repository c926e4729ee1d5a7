"""A small third-party metric plugin used by the tests, registered through an entry point.

The whole plugin is this declaration and its function: the metric then
appears in ``codecbench metrics``, ``run --metrics``, the store's columns,
reports, BD tables and ``check`` with no change to codecbench.
"""

import numpy as np

from codecbench.metrics.spec import MetricSpec, check_pair


def mae_rgb(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Mean absolute difference over all pixels and RGB channels, in 8-bit levels."""
    check_pair(reference, distorted)
    return float(np.mean(np.abs(reference.astype(np.int16) - distorted.astype(np.int16))))


MAE_RGB = MetricSpec("mae_rgb", False, "", "MAE-RGB", 3, "mean |difference| over pixels and RGB channels, 8-bit levels",
                     "mae_metric:mae_rgb", 0.01)
