"""Shared test fixtures.

Data beside the project (Kodak, photos, LPIPS backbone weights) is found
through the environment variable ``CODECBENCH_SHARED`` (CI sets it to
``../shared``); tests that need it skip with the reason when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest


def _shared_dir() -> Path | None:
    value = os.environ.get("CODECBENCH_SHARED")
    return Path(value) if value and Path(value).is_dir() else None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    path = _shared_dir()
    if path is None:
        pytest.skip("set CODECBENCH_SHARED to the shared data folder (Kodak, photos, LPIPS weights) to run this test")
    return path


@pytest.fixture(scope="session")
def kodak_dir(shared_dir: Path) -> Path:
    path = shared_dir / "datasets" / "kodak"
    if not (path / "kodim01.png").is_file():
        pytest.skip(f"Kodak images not found under {path}")
    return path


@pytest.fixture(scope="session")
def lpips_weights(shared_dir: Path) -> Path:
    path = shared_dir / "weights" / "lpips" / "alexnet_features.pth"
    if not path.is_file():
        pytest.skip(f"LPIPS AlexNet backbone weights not found at {path}")
    return path


_BITSTREAM_DAMAGE = {  # learned-codec bitstreams: header (≥ 20 bytes) + payload of 32-bit words
    "truncated-byte": lambda d: d[:-1],
    "truncated-word": lambda d: d[:-4],
    "header-only": lambda d: d[:30],
    "payload-bit": lambda d: d[:-5] + bytes([d[-5] ^ 1]) + d[-4:],
    "header-bit": lambda d: d[:20] + bytes([d[20] ^ 0x80]) + d[21:],
    "trailing-word": lambda d: d + b"\0\0\0\0",
}


@pytest.fixture(params=list(_BITSTREAM_DAMAGE.values()), ids=list(_BITSTREAM_DAMAGE))
def bitstream_damage(request):
    """A function that damages a bitstream: truncation, a flipped bit in header or payload, a trailing word."""
    return request.param


@pytest.fixture
def decode_in_another_process(tmp_path):
    """``decode(codec, data, threads, method=None, *args)``: what a fresh Python process decodes from ``data`` with
    ``codec``'s class and weights file and ``threads`` torch threads. With ``method``, also that codec method's result
    on the stream's payload and ``args`` (e.g. the entropy-decoded values): ``(image, result)``."""
    import subprocess
    import sys

    def decode(codec, data: bytes, threads: int, method: str | None = None, *args):
        (tmp_path / "bits").write_bytes(data)
        cls = type(codec)
        script = (
            "import sys, numpy as np; from codecbench.learned.header import Header\n"
            f"from {cls.__module__} import {cls.__name__} as Codec\n"
            f"codec = Codec(weights=sys.argv[1], threads={threads}); data = open(sys.argv[2], 'rb').read()\n"
            "np.save(sys.argv[3], codec.decode(data))\n"
        )
        if method is not None:
            script += f"np.save(sys.argv[4], codec.{method}(Header.unpack(data)[1], *{args!r}))\n"
        outputs = [tmp_path / "image.npy", tmp_path / "result.npy"]
        subprocess.run([sys.executable, "-c", script, str(codec.weights_path), str(tmp_path / "bits"), *map(str, outputs)],
                       check=True)
        image = np.load(outputs[0])
        return image if method is None else (image, np.load(outputs[1]))

    return decode


@pytest.fixture(scope="session")
def natural_image() -> np.ndarray:
    """A natural colour photograph bundled with scikit-image (512×512 RGB uint8)."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch CPU thread for a module: small convolutions run faster without thread hand-offs."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
