"""VVC (H.266) intra through Fraunhofer's ``vvencapp``/``vvdecapp`` programs: ``vvc``.

Conventions: one frame, all-intra, constant QP (``--qpa 0``: no perceptual QP
adaptation, which would trade PSNR for XPSNR), one thread (``-t 1``: vvenc's
bytes depend on its tiling and wavefront settings, which follow the thread
count), internal bit depth 10 (vvenc's default), no HRD parameters. The
setting is the QP 0–63, LOWER = better quality and more bytes.

Colour: RGB → Y'CbCr with the BT.601 matrix in full range (Y = 0.299 R +
0.587 G + 0.114 B, Cb = 128 + (B − Y)/1.772, Cr = 128 + (R − Y)/1.402, as
CompressAI's VTM anchor converts), computed in float64. vvenc codes 4:2:0 only
(its input formats are yuv420 and yuv400), so the chroma planes are
downsampled by the mean of each 2×2 block (chroma sited at the block centre)
and upsampled on decoding by the matching linear 3/4–1/4 filter (edges
replicated). Samples go to vvenc as 10-bit values (8-bit value × 4, rounded),
the decoded 10-bit samples are converted back to RGB in float and rounded.
CompressAI's VTM curve codes 4:4:4, which this codec cannot.

The stored bytes are vvenc's whole Annex-B bitstream (parameter sets, slice
data), and bpp counts all of it. 4:2:0 needs even sides: an image with an
odd width or height is padded by one replicated column/row and the bytes get a
4-byte prefix ``FF 43 42`` + flags (bit 0: crop a column, bit 1: a row), which
an Annex-B stream (starting ``00 00``) cannot begin with.

Programs (:mod:`codecbench_codecs._programs`): options ``encoder`` /
``decoder``, ``CODECBENCH_VVENCAPP`` / ``CODECBENCH_VVDECAPP``,
``$CODECBENCH_TOOLS``, ``PATH``; option ``timeout`` (seconds, default 600).
Option ``preset`` (``faster``, ``fast``, ``medium``, ``slow``, ``slower``;
default ``medium``, the slowest whose Kodak encode stays under 30 s on one
core) changes the bytes and is part of the label (``vvc:preset=faster``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from codecbench.codec import Codec, SettingSpec
from codecbench.errors import CodecError, check_rgb
from codecbench.plugins import Availability
from codecbench_codecs._programs import Program, programs_available, read_output, run_program, timeout_option
from codecbench_codecs._ycbcr import rgb_to_ycbcr, ycbcr_to_rgb

DEFAULT_TIMEOUT_S = 600.0
DEFAULT_PRESET = "medium"
PRESETS = ("faster", "fast", "medium", "slow", "slower")
ENCODER = Program("vvc", "encoder", "CODECBENCH_VVENCAPP", "vvencapp", "VVenC (github.com/fraunhoferhhi/vvenc)")
DECODER = Program("vvc", "decoder", "CODECBENCH_VVDECAPP", "vvdecapp", "VVdeC (github.com/fraunhoferhhi/vvdec)")
ENCODER_ARGS = ("-c", "yuv420_10", "-f", "1", "--qpa", "0", "-t", "1", "--internal-bitdepth", "10",
                "--hrdparameterspresent", "0", "--stats", "0", "-v", "1")
ODD_PREFIX = b"\xffCB"

def downsample_chroma(plane: np.ndarray) -> np.ndarray:
    """Mean of each 2×2 block (even-sided plane)."""
    return 0.25 * (plane[0::2, 0::2] + plane[1::2, 0::2] + plane[0::2, 1::2] + plane[1::2, 1::2])


def upsample_chroma(plane: np.ndarray) -> np.ndarray:
    """Double both sides with the linear filter of centre-sited chroma: 3/4 nearest + 1/4 next, edges replicated."""
    for axis in (0, 1):
        padded = np.concatenate([np.take(plane, [0], axis), plane, np.take(plane, [-1], axis)], axis)
        n = plane.shape[axis]
        before = 0.75 * plane + 0.25 * np.take(padded, range(0, n), axis)
        after = 0.75 * plane + 0.25 * np.take(padded, range(2, n + 2), axis)
        plane = np.stack([before, after], axis + 1).reshape(
            *plane.shape[:axis], 2 * n, *plane.shape[axis + 1:])
    return plane


def read_y4m_frame(data: bytes, source: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, Cb, Cr of the first frame of a 4:2:0 10-bit Y4M file as float64 in 8-bit scale."""
    header, _, rest = data.partition(b"\n")
    fields = {token[:1]: token[1:] for token in header.split(b" ")[1:]}
    if not header.startswith(b"YUV4MPEG2") or fields.get(b"C") != b"420p10" or not rest.startswith(b"FRAME"):
        raise CodecError(f"vvc: {source} did not write a 4:2:0 10-bit Y4M frame (header {header[:60]!r})")
    width, height = int(fields[b"W"]), int(fields[b"H"])
    payload = rest.partition(b"\n")[2]
    luma, chroma = width * height, (width // 2) * (height // 2)
    samples = np.frombuffer(payload, dtype="<u2", count=min(len(payload) // 2, luma + 2 * chroma))
    if samples.size != luma + 2 * chroma:
        raise CodecError(f"vvc: {source} wrote a truncated {width}×{height} frame")
    y = samples[:luma].reshape(height, width)
    cb, cr = (samples[luma + i * chroma: luma + (i + 1) * chroma].reshape(height // 2, width // 2) for i in (0, 1))
    return tuple(plane.astype(np.float64) / 4.0 for plane in (y, cb, cr))


class VvcCodec(Codec):
    """VVC all-intra (VVenC/VVdeC), 4:2:0 BT.601 full-range Y'CbCr, constant QP."""

    name = "vvc"
    description = "VVC intra (vvencapp/vvdecapp), 4:2:0 Y'CbCr BT.601 full range, 10-bit internal"
    # Measured with vvenc 1.15 (preset faster) on kodim01–04: 1.97 bpp (qp 20) to 0.094 bpp (qp 44).
    setting = SettingSpec("qp", 0, 63, higher_is_better=False,
                          default_sweep=(20, 23, 26, 29, 32, 35, 38, 41, 44))
    option_names = ("encoder", "decoder", "timeout", "preset")
    runtime_options = ("encoder", "decoder", "timeout")
    cell_timeout_s = 1800.0  # medium preset: ~15 s per Kodak image and QP here, minutes on 2K images

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.timeout_s = timeout_option(self.name, options, DEFAULT_TIMEOUT_S)
        self.preset = str(options.get("preset", DEFAULT_PRESET))
        if self.preset not in PRESETS:
            raise CodecError(f"codec vvc: option preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")

    def availability(self) -> Availability:
        return programs_available((ENCODER, DECODER), self.options)

    def version(self) -> str:
        """``VVenC 1.15.0-dev, VVdeC 3.3.0-dev, preset medium`` from both programs' ``--version``."""
        names = []
        for program, label in ((ENCODER, "VVenC"), (DECODER, "VVdeC")):
            result = run_program(self.name, [program.require(self.options), "--version"],
                                 f"{program.default} --version", self.timeout_s)
            words = result.stdout.decode(errors="replace").split()
            if "version" not in words or words.index("version") + 1 >= len(words):
                raise CodecError(f"vvc: {program.default} --version printed no version: {result.stdout[:200]!r}")
            names.append(f"{label} {words[words.index('version') + 1]}")
        return f"{', '.join(names)}, preset {self.preset}"

    def encoder_argv(self, qp: int, width: int, height: int, yuv_path: Path, out_path: Path) -> list[str]:
        """The vvencapp command line for one image (no shell involved)."""
        return [ENCODER.require(self.options), "-i", str(yuv_path), "-s", f"{width}x{height}", *ENCODER_ARGS,
                "--preset", self.preset, "-q", str(qp), "-o", str(out_path)]

    def encode(self, image: np.ndarray, setting: float | int) -> bytes:
        qp = self.setting.validate(setting)
        check_rgb(image, f"{self.name} input", CodecError)
        height, width = image.shape[:2]
        odd = (width % 2) | (height % 2) << 1
        even = np.pad(image, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        y, cb, cr = rgb_to_ycbcr(even)
        planes = [y, downsample_chroma(cb), downsample_chroma(cr)]
        samples = b"".join(np.clip(np.rint(p * 4.0), 0, 1023).astype("<u2").tobytes() for p in planes)
        with tempfile.TemporaryDirectory(prefix="codecbench-vvc-") as tmp:
            yuv_path, out_path = Path(tmp) / "input.yuv", Path(tmp) / "output.266"
            yuv_path.write_bytes(samples)
            run_program(self.name, self.encoder_argv(qp, even.shape[1], even.shape[0], yuv_path, out_path),
                        f"vvencapp at qp {qp}", self.timeout_s)
            stream = read_output(self.name, out_path, "vvencapp")
        return ODD_PREFIX + bytes([odd]) + stream if odd else stream

    def decode(self, data: bytes) -> np.ndarray:
        crop = 0
        if data[:3] == ODD_PREFIX and len(data) > 4:
            crop, data = data[3], data[4:]
        if data[:2] != b"\x00\x00" or crop > 3:
            raise CodecError(f"vvc: data is not a VVC Annex-B bitstream (starts {data[:4].hex()})")
        with tempfile.TemporaryDirectory(prefix="codecbench-vvc-") as tmp:
            in_path, y4m_path = Path(tmp) / "input.266", Path(tmp) / "output.y4m"
            in_path.write_bytes(data)
            result = run_program(self.name, [DECODER.require(self.options), "-b", str(in_path), "-o",
                                             str(y4m_path), "-v", "2"], "vvdecapp", self.timeout_s)
            complaint = result.stderr.decode(errors="replace").strip()
            if complaint:  # vvdecapp reports damaged input as a warning and still exits 0
                raise CodecError(f"vvc: vvdecapp could not decode {len(data)} bytes: {complaint}")
            y, cb, cr = read_y4m_frame(read_output(self.name, y4m_path, "vvdecapp"), "vvdecapp")
        rgb = ycbcr_to_rgb(y, upsample_chroma(cb), upsample_chroma(cr))
        return np.ascontiguousarray(rgb[: rgb.shape[0] - (crop >> 1), : rgb.shape[1] - (crop & 1)])
