"""conv_lstm speed on the CPU: decoding a Kodak image (768×512) at 16 iterations must stay under 10 s.

Run: CODECBENCH_SHARED=../shared .venv/bin/pytest benchmarks/ --benchmark-only -k conv_lstm
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from codecbench.data.images import load_rgb
from codecbench_codecs.conv_lstm import ConvLstmCodec

DECODE_BUDGET_S = 10.0


@pytest.fixture(scope="module")
def kodak_image():
    shared = os.environ.get("CODECBENCH_SHARED")
    path = Path(shared or "", "datasets", "kodak", "kodim01.png")
    if not shared or not path.is_file():
        pytest.skip("set CODECBENCH_SHARED to the shared data folder (Kodak)")
    return load_rgb(path)


@pytest.mark.parametrize("operation", ["encode", "decode"])
def test_kodak_16_iterations(benchmark, kodak_image, operation):
    codec = ConvLstmCodec()
    data = codec.encode(kodak_image, 16)
    if operation == "encode":
        benchmark.pedantic(codec.encode, args=(kodak_image, 16), rounds=2, iterations=1)
    else:
        benchmark.pedantic(codec.decode, args=(data,), rounds=2, iterations=1)
        assert benchmark.stats.stats.median < DECODE_BUDGET_S
