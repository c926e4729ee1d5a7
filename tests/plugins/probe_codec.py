"""A trivial codec plugin for the executor tests and benchmarks: raw pixels, and it tells where it ran.

The bitstream is the image's raw bytes (24 bpp, lossless), so a cell's own work is almost nothing
(the per-cell overhead benchmark). Each row's ``extra.pid`` is the pid of the process that encoded it.
Environment variables, read where the codec runs (a Dask worker started with them):

- ``PROBE_VERSION_SUFFIX``: appended to the version (a worker with other versions);
- ``PROBE_SLOW_SETTING``, ``PROBE_SLOW_S``: that setting sleeps that long before encoding;
- ``PROBE_PID_FILE``: before sleeping, the process appends its pid to this file (for the kill tests).
- ``PROBE_PREPARE_S``: ``prepare()`` sleeps that long (a network's weights loading); ``prepared_in`` is the
  pid of the process that prepared the instance (None until then).

The ``device`` option (runtime, never in a cell's key) makes its cells want a GPU when it names cuda.
"""

import os
import time

import numpy as np

from codecbench.codec import Codec, SettingSpec


class ProbeCodec(Codec):
    name = "probe"
    description = "raw pixels; records the pid that encoded (test plugin)"
    setting = SettingSpec("level", 1, 100, higher_is_better=True, default_sweep=(1, 2, 3))
    option_names = ("device",)
    runtime_options = ("device",)

    prepared_in: int | None = None

    def prepare(self) -> None:
        time.sleep(float(os.environ.get("PROBE_PREPARE_S", "0")))
        self.prepared_in = os.getpid()

    def version(self) -> str:
        return "probe 1.0" + os.environ.get("PROBE_VERSION_SUFFIX", "")

    def encode(self, image: np.ndarray, setting) -> bytes:
        if str(setting) == os.environ.get("PROBE_SLOW_SETTING"):
            if os.environ.get("PROBE_PID_FILE"):
                with open(os.environ["PROBE_PID_FILE"], "a") as f:
                    f.write(f"{os.getpid()}\n")
            time.sleep(float(os.environ.get("PROBE_SLOW_S", "5")))
        height, width = image.shape[:2]
        return height.to_bytes(4, "big") + width.to_bytes(4, "big") + image.tobytes()

    def decode(self, data: bytes) -> np.ndarray:
        height, width = int.from_bytes(data[:4], "big"), int.from_bytes(data[4:8], "big")
        return np.frombuffer(data[8:], np.uint8).reshape(height, width, 3).copy()

    def bitstream_stats(self, data: bytes, width: int, height: int) -> dict[str, float]:
        return {"pid": os.getpid()}
