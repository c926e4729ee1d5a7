"""A small third-party codec plugin used by the tests, registered through an entry point.

It is a real (if crude) lossy codec: keep the top ``bits`` bits of every
sample and store the result as PNG. Options make chosen settings fail, or
kill the process, to exercise the runner's failure handling.
"""

import io
import os

import numpy as np
from PIL import Image

from codecbench.codec import Codec, SettingSpec
from codecbench.errors import CodecError, check_rgb


class PosterizeCodec(Codec):
    name = "posterize"
    description = "keep the top N bits of each sample, stored as PNG (test plugin)"
    setting = SettingSpec("bits", 1, 8, higher_is_better=True, default_sweep=(1, 2, 3, 4, 5, 6, 7, 8))
    option_names = ("fail_setting", "crash_setting")

    def version(self) -> str:
        return "posterize 1.0"

    def encode(self, image: np.ndarray, setting) -> bytes:
        check_rgb(image, error=CodecError)
        if str(setting) == str(self.options.get("fail_setting")):
            raise CodecError(f"refusing bits={setting} (asked to fail)")
        if str(setting) == str(self.options.get("crash_setting")):
            os._exit(3)
        shift = 8 - int(setting)
        kept = (image >> shift) << shift
        buffer = io.BytesIO()
        Image.fromarray(kept.astype(np.uint8)).save(buffer, format="PNG")
        return buffer.getvalue()

    def decode(self, data: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
