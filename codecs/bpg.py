"""BPG (HEVC intra in the BPG container) through Fabrice Bellard's ``bpgenc``/``bpgdec`` programs: ``bpg``.

Conventions: ``bpgenc -q QP -f 444 -c ycbcr -e x265 -b 8`` — 4:4:4 chroma,
full-range BT.601 YCbCr, the x265 encoder, 8 bits per sample, and bpgenc's
default compression level (``-m 8``); metadata is not kept (bpgenc drops it
unless ``-keepmetadata``). The setting is the HEVC quantiser ``qp`` 0–51,
where LOWER means better quality and more bytes. Decoding writes an 8-bit PPM
with ``bpgdec -o OUT.ppm IN.bpg``. The bytes are the whole ``.bpg`` file.

The programs are looked up, in order, from the codec options ``encoder`` /
``decoder``, the environment variables ``CODECBENCH_BPGENC`` /
``CODECBENCH_BPGDEC``, then ``bpgenc`` / ``bpgdec`` on ``PATH``. They run
without a shell (argv lists), each call limited by the ``timeout`` option
(seconds, default 120); a failure raises :class:`CodecError` with the command
line and the program's stderr. Images pass through PNG/PPM files in a private
temporary directory that is removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from codecbench.codec import Codec, SettingSpec
from codecbench.errors import CodecError, CodecUnavailable, check_rgb
from codecbench.plugins import Availability
from codecbench_codecs._pillow_io import decode_with_pillow

DEFAULT_TIMEOUT_S = 120.0
ENCODER_ENV = "CODECBENCH_BPGENC"
DECODER_ENV = "CODECBENCH_BPGDEC"
ENCODER_ARGS = ("-f", "444", "-c", "ycbcr", "-e", "x265", "-b", "8")


class BpgCodec(Codec):
    """BPG 4:4:4 YCbCr, x265, 8-bit, through the bpgenc/bpgdec programs."""

    name = "bpg"
    description = "BPG (bpgenc/bpgdec, x265), 4:4:4 YCbCr, 8-bit"
    # Estimated, not measured with bpgenc: x265 4:4:4 at constant QP through libheif
    # spans 1.97 (qp 22) to about 0.11 (qp 46) bpp on Kodak 1–8.
    setting = SettingSpec("qp", 0, 51, higher_is_better=False, default_sweep=(22, 25, 28, 31, 34, 37, 40, 43, 46))
    option_names = ("encoder", "decoder", "timeout")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        try:
            self.timeout_s = float(options.get("timeout", DEFAULT_TIMEOUT_S))
        except (TypeError, ValueError):
            raise CodecError(f"codec bpg: option timeout must be a number of seconds, got {options['timeout']!r}") from None
        if not self.timeout_s > 0:
            raise CodecError(f"codec bpg: option timeout must be positive, got {self.timeout_s:g}")

    def _program(self, option: str, env: str, default: str) -> tuple[str | None, str]:
        """(resolved executable or None, why it is missing) for one of the two programs."""
        configured = self.options.get(option)
        source = f"option bpg.{option}"
        if not configured and os.environ.get(env):
            configured, source = os.environ[env], f"environment variable {env}"
        if configured:
            found = shutil.which(str(configured))
            return found, f"{default} {str(configured)!r} (from {source}) is not an executable file"
        return shutil.which(default), (
            f"{default} not found on PATH; install libbpg or pass --codec-option bpg.{option}=PATH (or set {env})"
        )

    def _require(self, option: str, env: str, default: str) -> str:
        path, reason = self._program(option, env, default)
        if path is None:
            raise CodecUnavailable(f"codec bpg is unavailable: {reason}")
        return path

    def encoder_path(self) -> str:
        return self._require("encoder", ENCODER_ENV, "bpgenc")

    def decoder_path(self) -> str:
        return self._require("decoder", DECODER_ENV, "bpgdec")

    def availability(self) -> Availability:
        for option, env, default in (("encoder", ENCODER_ENV, "bpgenc"), ("decoder", DECODER_ENV, "bpgdec")):
            path, reason = self._program(option, env, default)
            if path is None:
                return Availability(False, reason)
        return Availability(True)

    def version(self) -> str:
        """First line of ``bpgenc -h`` (e.g. ``BPG Image Encoder version 0.9.8``), which exits with status 1."""
        encoder = self.encoder_path()
        result = self._run([encoder, "-h"], "bpgenc -h", allowed_returncodes=(0, 1))
        lines = [line.strip() for line in result.stdout.decode(errors="replace").splitlines() if line.strip()]
        if not lines or "BPG" not in lines[0]:
            raise CodecError(f"bpg: {encoder} -h did not print the BPG encoder banner: {result.stdout[:200]!r}")
        return f"{lines[0]}, encoder x265"

    def encoder_argv(self, qp: int, png_path: Path, bpg_path: Path) -> list[str]:
        """The bpgenc command line for one image (no shell involved)."""
        return [self.encoder_path(), "-q", str(qp), *ENCODER_ARGS, "-o", str(bpg_path), str(png_path)]

    def decoder_argv(self, bpg_path: Path, ppm_path: Path) -> list[str]:
        """The bpgdec command line for one image (no shell involved)."""
        return [self.decoder_path(), "-o", str(ppm_path), str(bpg_path)]

    def encode(self, image: np.ndarray, setting: float | int) -> bytes:
        qp = self.setting.validate(setting)
        check_rgb(image, f"{self.name} input", CodecError)
        with tempfile.TemporaryDirectory(prefix="codecbench-bpg-") as tmp:
            png_path, bpg_path = Path(tmp) / "input.png", Path(tmp) / "output.bpg"
            Image.fromarray(np.ascontiguousarray(image)).save(png_path, format="PNG")
            self._run(self.encoder_argv(qp, png_path, bpg_path), f"bpgenc at qp {qp}")
            return self._read_output(bpg_path, "bpgenc")

    def decode(self, data: bytes) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="codecbench-bpg-") as tmp:
            bpg_path, ppm_path = Path(tmp) / "input.bpg", Path(tmp) / "output.ppm"
            bpg_path.write_bytes(data)
            self._run(self.decoder_argv(bpg_path, ppm_path), "bpgdec")
            return decode_with_pillow(self._read_output(ppm_path, "bpgdec"), "PPM", self.name)

    def _run(
        self, argv: list[str], what: str, allowed_returncodes: tuple[int, ...] = (0,)
    ) -> subprocess.CompletedProcess[bytes]:
        command = " ".join(argv)
        try:
            result = subprocess.run(argv, capture_output=True, timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise CodecError(f"bpg: {what} timed out after {self.timeout_s:g} s: {command}") from exc
        except OSError as exc:
            raise CodecError(f"bpg: {what} could not be started ({exc}): {command}") from exc
        if result.returncode not in allowed_returncodes:
            stderr = result.stderr.decode(errors="replace").strip() or "(no stderr)"
            raise CodecError(f"bpg: {what} failed with exit status {result.returncode}: {command}\n{stderr}")
        return result

    def _read_output(self, path: Path, program: str) -> bytes:
        if not path.is_file():
            raise CodecError(f"bpg: {program} exited normally but wrote no output file {path.name}")
        return path.read_bytes()
