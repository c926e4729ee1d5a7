"""Misbehaving codec plugins for the robustness tests, registered through the entry point like any plugin.

Each is a working lossless PNG codec (setting 1–8, ignored) except for one
misbehaviour, on every setting at or above ``MISBEHAVE_FROM`` (5), so that a
sweep over 2, 5, 8 has one innocent setting per image. The names say what they do.
"""

import ctypes
import io
import os
import subprocess
import sys
import time

import numpy as np
from PIL import Image

from codecbench.codec import Codec, SettingSpec

MISBEHAVE_FROM = 5
#: mis_program writes the pid of the program it starts here (a file path), for the orphan test.
PID_FILE_ENV = "MISBEHAVING_PID_FILE"


class _PngCodec(Codec):
    description = "lossless PNG with one misbehaviour (test plugin)"
    setting = SettingSpec("level", 1, 8, higher_is_better=True, default_sweep=(2, 5, 8))

    def version(self) -> str:
        return "misbehaving 1.0"

    def encode(self, image: np.ndarray, setting) -> bytes:
        if setting >= MISBEHAVE_FROM:
            self.misbehave()
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))

    def misbehave(self) -> None:
        """Nothing by default (the decode-side misbehaviours override decode)."""


class HangCodec(_PngCodec):
    name = "mis_hang"

    def misbehave(self) -> None:
        while True:
            time.sleep(3600)


class SegfaultCodec(_PngCodec):
    name = "mis_segfault"

    def misbehave(self) -> None:
        ctypes.string_at(0)


class ExitCodec(_PngCodec):
    name = "mis_exit"

    def misbehave(self) -> None:
        sys.exit(7)


class InterruptCodec(_PngCodec):
    name = "mis_interrupt"

    def misbehave(self) -> None:
        raise KeyboardInterrupt


class WrongShapeCodec(_PngCodec):
    name = "mis_shape"

    def decode(self, data: bytes) -> np.ndarray:
        return super().decode(data)[:-1]


class WrongDtypeCodec(_PngCodec):
    name = "mis_dtype"

    def decode(self, data: bytes) -> np.ndarray:
        return super().decode(data).astype(np.float32)


class NondeterministicCodec(_PngCodec):
    name = "mis_random"

    def encode(self, image: np.ndarray, setting) -> bytes:
        return super().encode(image, setting) + os.urandom(8)  # trailing bytes PNG readers ignore


class HugeOutputCodec(_PngCodec):
    name = "mis_huge"

    def encode(self, image: np.ndarray, setting) -> bytes:
        return super().encode(image, setting) + bytes(64 << 20)  # 64 MiB of trailing zeros


class VersionRaisesCodec(_PngCodec):
    name = "mis_version"

    def version(self) -> str:
        raise RuntimeError("cannot tell my version")


class SlowProgramCodec(_PngCodec):
    """Runs an external program (``sleep``) that outlives any timeout, as a stuck encoder program would."""

    name = "mis_program"

    def misbehave(self) -> None:
        program = subprocess.Popen(["sleep", "300"])
        if os.environ.get(PID_FILE_ENV):
            with open(os.environ[PID_FILE_ENV], "a") as f:
                f.write(f"{program.pid} {os.getpid()}\n")
        program.wait()
