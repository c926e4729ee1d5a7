"""Timing of cells: warm-up and repeats (--timing-repeats), one-off preparation outside the clock."""

import glob
import json
import time

import numpy as np
import pytest

from codecbench import registry
from codecbench.codec import Codec, SettingSpec
from codecbench.data.datasets import resolve_dataset
from codecbench.runner import run_sweep
from codecbench.store import ResultsStore

pytestmark = pytest.mark.slow  # sweeps

PREPARE_S = 0.3


class SlowToLoadCodec(Codec):
    """Lossless, instant round trips, but 0.3 s of one-off preparation (like loading a network's weights)."""

    name = "slow_to_load"
    description = "identity codec with a slow prepare (test)"
    setting = SettingSpec("unused", 1, 2, higher_is_better=True, default_sweep=(1,))

    def __init__(self, **options):
        super().__init__(**options)
        self.prepared = False

    def version(self) -> str:
        return "1"

    def prepare(self) -> None:
        time.sleep(PREPARE_S)
        self.prepared = True

    def encode(self, image: np.ndarray, setting) -> bytes:
        assert self.prepared, "encode before prepare"
        return image.tobytes() + np.array(image.shape, "<u4").tobytes()

    def decode(self, data: bytes) -> np.ndarray:
        shape = tuple(np.frombuffer(data[-12:], "<u4"))
        return np.frombuffer(data[:-12], np.uint8).reshape(shape).copy()


@pytest.fixture(scope="module")
def sample():
    return resolve_dataset("sample", None, download=False, progress=False)


def test_preparation_stays_out_of_the_cells_and_is_recorded_once(tmp_path, sample):
    store = ResultsStore(tmp_path)
    run_sweep(store, [sample], {"slow_to_load": SlowToLoadCodec()}, {"slow_to_load": [1.0]}, ["psnr_rgb"],
              in_process=True, progress=False)
    rows = store.rows()
    assert len(rows) == 3 and all(r["error"] is None for r in rows)
    assert max(r["encode_s"] + r["decode_s"] for r in rows) < PREPARE_S
    (manifest,) = [json.loads(open(p).read()) for p in glob.glob(str(tmp_path / "runs" / "*.json"))]
    assert manifest["codec_load_s"]["slow_to_load"] >= PREPARE_S
    assert manifest["torch_threads"] == 1 and "OMP_NUM_THREADS" in manifest["thread_environment"]


def test_repeats_store_the_median_with_min_and_max(tmp_path, sample):
    store = ResultsStore(tmp_path)
    jpeg = registry.create("jpeg")
    summary = run_sweep(store, [sample], {"jpeg": jpeg}, {"jpeg": [50.0]}, ["psnr_rgb"], timing_repeats=4,
                        progress=False)
    assert summary.ok
    for row in store.rows():
        extra = row["extra"]
        assert extra["timing_repeats"] == 4
        assert extra["encode_s_min"] <= row["encode_s"] <= extra["encode_s_max"]
        assert extra["decode_s_min"] <= row["decode_s"] <= extra["decode_s_max"]


def test_the_report_carries_the_spread_of_repeated_timings(tmp_path, sample):
    from codecbench.analysis.curves import summarise
    from codecbench.render.html import curve_colors, plot_data

    store = ResultsStore(tmp_path)
    run_sweep(store, [sample], {"jpeg": registry.create("jpeg")}, {"jpeg": [20.0, 60.0]}, ["psnr_rgb"],
              timing_repeats=3, progress=False)
    results = summarise(store.rows())["sample"]
    mean = results.codecs["jpeg"].mean
    rows = [r for r in store.rows() if r["setting"] == mean.setting[0]]
    assert mean.timing_spread["encode_s_min"][0] == pytest.approx(np.mean([r["extra"]["encode_s_min"] for r in rows]))
    (curve,) = plot_data(results, [], curve_colors(["jpeg"]))["curves"]
    assert len(curve["mean"]["decode_s_max"]) == 2 and len(curve["pts"]["encode_s_min"]) == 6
