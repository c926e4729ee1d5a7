"""cae_pca and lossy_cae speed on the CPU: encode and decode of a Kodak image (768×512) must each stay ≤ 1 s.

At the shipped widths and each codec's highest rate (cae_pca quality 10, lossy_cae 32 channels: the most
symbols to entropy code), with torch's default thread count. Falls back to a scikit-image photograph of
the same size without ``CODECBENCH_SHARED`` (see conftest).

Run: CODECBENCH_SHARED=../shared .venv/bin/pytest benchmarks/bench_cae.py --benchmark-only
"""

from __future__ import annotations

import pytest

from codecbench_codecs.cae_pca import QUALITY_LEVELS, CaePcaCodec
from codecbench_codecs.lossy_cae import MAX_CHANNELS, LossyCaeCodec

BUDGET_S = 1.0
CASES = {"cae_pca": (CaePcaCodec, QUALITY_LEVELS), "lossy_cae": (LossyCaeCodec, MAX_CHANNELS)}


@pytest.mark.parametrize("operation", ["encode", "decode"])
@pytest.mark.parametrize("codec_name", list(CASES))
def test_kodak_highest_rate(benchmark, kodak_sized_image, codec_name, operation):
    source, image = kodak_sized_image
    cls, setting = CASES[codec_name]
    codec = cls()
    codec.prepare()
    data = codec.encode(image, setting)  # warm-up: first calls pay one-off costs (imports, allocator)
    codec.decode(data)
    benchmark.extra_info.update(image=source, setting=setting, bytes=len(data))
    if operation == "encode":
        benchmark.pedantic(codec.encode, args=(image, setting), rounds=5, iterations=1)
    else:
        benchmark.pedantic(codec.decode, args=(data,), rounds=5, iterations=1)
    benchmark.extra_info.update(codec.cell_extra())
    assert benchmark.stats.stats.median <= BUDGET_S
