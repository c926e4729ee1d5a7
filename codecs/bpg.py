"""BPG (HEVC intra in the BPG container) through Fabrice Bellard's ``bpgenc``/``bpgdec`` programs: ``bpg``.

Conventions: ``bpgenc -q QP -f 444 -c ycbcr -e x265 -b 8`` — 4:4:4 chroma,
full-range BT.601 YCbCr, the x265 encoder, 8 bits per sample, and bpgenc's
default compression level (``-m 8``); metadata is not kept (bpgenc drops it
unless ``-keepmetadata``). The setting is the HEVC quantiser ``qp`` 0–51,
where LOWER means better quality and more bytes. Decoding writes an 8-bit PPM
with ``bpgdec -o OUT.ppm IN.bpg``. The bytes are the whole ``.bpg`` file.

The programs are found as :mod:`codecbench_codecs._programs` says: the codec
options ``encoder`` / ``decoder``, the environment variables
``CODECBENCH_BPGENC`` / ``CODECBENCH_BPGDEC``, the tools folder
``$CODECBENCH_TOOLS``, then ``bpgenc`` / ``bpgdec`` on ``PATH``. They run
without a shell, each call limited by the ``timeout`` option (seconds, default
120); a failure raises :class:`CodecError` with the command line and the
program's stderr. Images pass through PNG/PPM files in a private temporary
directory that is removed afterwards. The options are paths and a time limit:
none of them changes the bytes, so none is part of the codec's label.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from codecbench.codec import Codec, SettingSpec
from codecbench.errors import CodecError, check_rgb
from codecbench.plugins import Availability
from codecbench_codecs._pillow_io import decode_with_pillow
from codecbench_codecs._programs import Program, programs_available, read_output, run_program, timeout_option

DEFAULT_TIMEOUT_S = 120.0
ENCODER = Program("bpg", "encoder", "CODECBENCH_BPGENC", "bpgenc", "libbpg")
DECODER = Program("bpg", "decoder", "CODECBENCH_BPGDEC", "bpgdec", "libbpg")
ENCODER_ARGS = ("-f", "444", "-c", "ycbcr", "-e", "x265", "-b", "8")
#: bpgenc 0.9.8 with x265 crashes (SIGSEGV) on images narrower than this (measured: 24 px crashes, 25 px works).
MIN_WIDTH = 25


class BpgCodec(Codec):
    """BPG 4:4:4 YCbCr, x265, 8-bit, through the bpgenc/bpgdec programs."""

    name = "bpg"
    description = "BPG (bpgenc/bpgdec, x265), 4:4:4 YCbCr, 8-bit"
    # bpgenc 0.9.8 on the 24 Kodak images: 0.16 bpp at qp 42, 1.93 bpp at qp 22 (CompressAI's BPG curve,
    # which this codec reproduces); qp 46 is about 0.09 bpp.
    setting = SettingSpec("qp", 0, 51, higher_is_better=False, default_sweep=(22, 25, 28, 31, 34, 37, 40, 43, 46))
    option_names = ("encoder", "decoder", "timeout")
    runtime_options = ("encoder", "decoder", "timeout")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.timeout_s = timeout_option(self.name, options, DEFAULT_TIMEOUT_S)

    def availability(self) -> Availability:
        return programs_available((ENCODER, DECODER), self.options)

    def version(self) -> str:
        """First line of ``bpgenc -h`` (e.g. ``BPG Image Encoder version 0.9.8``), which exits with status 1."""
        encoder = ENCODER.require(self.options)
        result = run_program(self.name, [encoder, "-h"], "bpgenc -h", self.timeout_s, allowed_returncodes=(0, 1))
        lines = [line.strip() for line in result.stdout.decode(errors="replace").splitlines() if line.strip()]
        if not lines or "BPG" not in lines[0]:
            raise CodecError(f"bpg: {encoder} -h did not print the BPG encoder banner: {result.stdout[:200]!r}")
        return f"{lines[0]}, encoder x265"

    def encoder_argv(self, qp: int, png_path: Path, bpg_path: Path) -> list[str]:
        """The bpgenc command line for one image (no shell involved)."""
        return [ENCODER.require(self.options), "-q", str(qp), *ENCODER_ARGS, "-o", str(bpg_path), str(png_path)]

    def decoder_argv(self, bpg_path: Path, ppm_path: Path) -> list[str]:
        """The bpgdec command line for one image (no shell involved)."""
        return [DECODER.require(self.options), "-o", str(ppm_path), str(bpg_path)]

    def encode(self, image: np.ndarray, setting: float | int) -> bytes:
        qp = self.setting.validate(setting)
        check_rgb(image, f"{self.name} input", CodecError)
        if image.shape[1] < MIN_WIDTH:
            raise CodecError(f"bpg: bpgenc (x265) crashes on images narrower than {MIN_WIDTH} px; "
                             f"this one is {image.shape[1]} px wide")
        with tempfile.TemporaryDirectory(prefix="codecbench-bpg-") as tmp:
            png_path, bpg_path = Path(tmp) / "input.png", Path(tmp) / "output.bpg"
            Image.fromarray(np.ascontiguousarray(image)).save(png_path, format="PNG")
            run_program(self.name, self.encoder_argv(qp, png_path, bpg_path), f"bpgenc at qp {qp}", self.timeout_s)
            return read_output(self.name, bpg_path, "bpgenc")

    def decode(self, data: bytes) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="codecbench-bpg-") as tmp:
            bpg_path, ppm_path = Path(tmp) / "input.bpg", Path(tmp) / "output.ppm"
            bpg_path.write_bytes(data)
            run_program(self.name, self.decoder_argv(bpg_path, ppm_path), "bpgdec", self.timeout_s)
            return decode_with_pillow(read_output(self.name, ppm_path, "bpgdec"), "PPM", self.name)
