"""Ballé codecs on the CPU with 2 torch threads: encode and decode of a Kodak-sized image (768×512) at each quality.

Target (issue 14): ≤ 1.0 s each at the shipped widths. The benchmark records the
median and fails if it is over the budget; the per-stage split of the last call
is written to ``extra_info`` (network, entropy coding, transfers).

Run: CODECBENCH_SHARED=../shared .venv/bin/pytest benchmarks/ --benchmark-only -k balle
"""

from __future__ import annotations

import pytest
import torch

from codecbench_codecs.balle import Bmshj2018Factorized, Bmshj2018Hyperprior

BUDGET_S = 1.0
THREADS = 2


@pytest.mark.parametrize("quality", [1, 6])
@pytest.mark.parametrize("operation", ["encode", "decode"])
@pytest.mark.parametrize("cls", [Bmshj2018Factorized, Bmshj2018Hyperprior], ids=lambda cls: cls.name)
def test_kodak_sized_image(benchmark, kodak_sized_image, cls, operation, quality):
    source, image = kodak_sized_image
    threads = torch.get_num_threads()
    codec = cls(threads=THREADS)
    codec.prepare()
    data = codec.encode(image, quality)
    try:
        if operation == "encode":
            benchmark.pedantic(codec.encode, args=(image, quality), rounds=3, iterations=1, warmup_rounds=1)
        else:
            benchmark.pedantic(codec.decode, args=(data,), rounds=3, iterations=1, warmup_rounds=1)
    finally:
        torch.set_num_threads(threads)
    benchmark.extra_info.update(image=source, bpp=8 * len(data) / image.shape[0] / image.shape[1], **codec.cell_extra())
    assert benchmark.stats.stats.median <= BUDGET_S
