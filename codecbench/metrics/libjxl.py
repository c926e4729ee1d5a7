"""Butteraugli (Alakuijala et al.), computed by libjxl's ``butteraugli_main`` program in a subprocess.

``butteraugli``: the max-norm Butteraugli distance that ``butteraugli_main
REFERENCE DISTORTED`` prints (the first line of its output), both images
passed as binary PPM files of the 8-bit values, which the tool reads as
nonlinear sRGB; its default intensity target of 80 nits. 0 for identical
images, about 1 at the threshold of visibility; lower is better.

The program comes with libjxl's developer tools (Debian: ``apt-get install
libjxl-devtools``); ``$CODECBENCH_BUTTERAUGLI`` names another one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from codecbench.errors import MetricError, MetricUnavailable
from codecbench.metrics.spec import check_pair
from codecbench.plugins import Availability

PROGRAM_ENV = "CODECBENCH_BUTTERAUGLI"
PROGRAM = "butteraugli_main"
TIMEOUT_S = 600


def butteraugli_program() -> str | None:
    """Path of the butteraugli_main program: $CODECBENCH_BUTTERAUGLI, else the one on PATH, else None."""
    explicit = os.environ.get(PROGRAM_ENV)
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which(PROGRAM)


def butteraugli_availability() -> Availability:
    """Whether libjxl's butteraugli_main can be run here, and if not what to install."""
    if butteraugli_program() is None:
        where = os.environ.get(PROGRAM_ENV)
        if where:
            return Availability(False, f"${PROGRAM_ENV}={where} is not an executable file")
        return Availability(False, f"{PROGRAM} (libjxl developer tools) is not on PATH: apt-get install "
                                   f"libjxl-devtools, or set ${PROGRAM_ENV}")
    return Availability(True)


def _write_ppm(path: Path, image: np.ndarray) -> None:
    height, width = image.shape[:2]
    path.write_bytes(f"P6\n{width} {height}\n255\n".encode() + np.ascontiguousarray(image).tobytes())


def butteraugli(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Max-norm Butteraugli distance from libjxl's butteraugli_main (lower is better)."""
    check_pair(reference, distorted)
    program = butteraugli_program()
    if program is None:
        raise MetricUnavailable(butteraugli_availability().reason)
    with tempfile.TemporaryDirectory(prefix="codecbench-butteraugli-") as folder:
        paths = [Path(folder) / "reference.ppm", Path(folder) / "distorted.ppm"]
        for path, image in zip(paths, (reference, distorted)):
            _write_ppm(path, image)
        try:
            result = subprocess.run([program, *map(str, paths)], capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise MetricError(f"{program} took longer than {TIMEOUT_S} s") from None
    lines = result.stdout.split()
    if result.returncode != 0 or not lines:
        raise MetricError(f"{program} failed (exit {result.returncode}): {result.stderr.strip()[-300:]}")
    try:
        return float(lines[0])
    except ValueError:
        raise MetricError(f"{program} printed {result.stdout[:100]!r}, not a distance") from None
