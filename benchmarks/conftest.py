"""Shared set-up of the benchmark suite (pytest-benchmark).

Run apart from the tests: ``.venv/bin/pytest benchmarks/ --benchmark-only``
(``testpaths = ["tests"]`` keeps a plain ``pytest`` out of here). Benchmark
files are named ``bench_*.py``; the hook below collects them without changing
the project's ``python_files`` setting. Data beside the project (Kodak) is
found through ``CODECBENCH_SHARED``, as in the tests; without it the
benchmarks fall back to a scikit-image photograph of the same size.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import numpy as np
import pytest

#: Width × height of a landscape Kodak image, the size every per-image benchmark uses.
KODAK_WIDTH, KODAK_HEIGHT = 768, 512


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """Collect ``bench_*.py`` as test modules, unless pytest's own collector already takes the file."""
    if file_path.suffix != ".py" or not file_path.name.startswith("bench_"):
        return None
    own_patterns = parent.config.getini("python_files")
    if parent.session.isinitpath(file_path) or any(fnmatch.fnmatch(file_path.name, p) for p in own_patterns):
        return None
    return pytest.Module.from_parent(parent, path=file_path)


@pytest.fixture(scope="session")
def kodak_dir_or_none() -> Path | None:
    """``$CODECBENCH_SHARED/datasets/kodak`` when it holds the Kodak images, else None (benchmarks fall back)."""
    shared = os.environ.get("CODECBENCH_SHARED")
    folder = Path(shared, "datasets", "kodak") if shared else None
    return folder if folder is not None and (folder / "kodim01.png").is_file() else None


@pytest.fixture(scope="session")
def kodak_sized_image(kodak_dir_or_none: Path | None) -> tuple[str, np.ndarray]:
    """(source name, 512×768×3 uint8 RGB image): kodim01 when shared data is set, else the scikit-image
    astronaut (512×512) tiled side by side and cropped to 768 columns."""
    from codecbench.data.images import load_rgb

    if kodak_dir_or_none is not None:
        return "kodim01", load_rgb(kodak_dir_or_none / "kodim01.png")
    from skimage import data

    tiled = np.tile(data.astronaut(), (1, 2, 1))
    return "astronaut tiled to 768×512", np.ascontiguousarray(tiled[:KODAK_HEIGHT, :KODAK_WIDTH])
