"""Training steps of the Ballé hyperprior (default widths N = 64, M = 96), one CPU thread: fp32 against bf16 mixed precision.

Each round trains 5 steps of 4 crops of 256×256 px through ``codecbench.learned.training.train``
(eager, no ``--compile``); ``extra_info`` gets the seconds per step. bf16 pays off on CPUs with AMX or
AVX-512 BF16 (this project's: ≈ 3× faster); elsewhere it may be slower than fp32.

Run: CODECBENCH_SHARED=../shared .venv/bin/pytest benchmarks/ --benchmark-only -k training
"""

from __future__ import annotations

import itertools

import pytest
import torch
from PIL import Image

from codecbench.learned.training import TrainConfig, train

STEPS = 5


@pytest.fixture(scope="module")
def crop_folder(tmp_path_factory, kodak_sized_image):
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(kodak_sized_image[1]).save(folder / "image.png")
    return folder


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_hyperprior_training_step(benchmark, crop_folder, tmp_path, precision):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    runs = itertools.count()

    def run():
        config = TrainConfig(model="bmshj2018_hyperprior", data=str(crop_folder), out=tmp_path / f"{next(runs)}.ckpt",
                             steps=STEPS, patch=256, batch=4, lr=1e-4, precision=precision, log_every=STEPS,
                             force=True)  # kodim01 only feeds the timing; no weights come out of it
        return train(config, log=lambda line: None)

    try:
        checkpoint = benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    finally:
        torch.set_num_threads(threads)
    benchmark.extra_info.update(precision=precision, seconds_per_step=checkpoint["wall_seconds"] / STEPS)
    assert checkpoint["step"] == STEPS
