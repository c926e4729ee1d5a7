"""The ``vvc`` codec (vvencapp/vvdecapp) and the Y'CbCr conversions of ``vvc`` and the JPEG 2000 anchor.

Tests that need the programs skip with the codec's availability reason unless
``CODECBENCH_VVENCAPP``/``CODECBENCH_VVDECAPP`` or ``CODECBENCH_TOOLS`` (CI:
``../shared/tools/codecs/bin``) finds them. They use the ``faster`` preset
(the generic codec tests in test_codecs_classical.py run the default one).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.color import rgb2ycbcr

from codecbench.errors import CodecError, CodecUnavailable
from codecbench.registry import create
from codecbench_codecs._ycbcr import rgb_to_ycbcr, ycbcr_to_rgb
from codecbench_codecs.jpeg2000 import limited_yuv_to_rgb, rgb_to_limited_yuv
from codecbench_codecs.vvc import VvcCodec, downsample_chroma, upsample_chroma


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    with np.errstate(divide="ignore"):  # identical images: inf
        return float(10 * np.log10(255.0**2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


@pytest.fixture(scope="module")
def photo(natural_image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(natural_image[60:252, 140:396])


@pytest.fixture(scope="module")
def vvc() -> VvcCodec:
    codec = VvcCodec(preset="faster")
    status = codec.availability()
    if not status.ok:
        pytest.skip(f"codec vvc unavailable here: {status.reason}")
    return codec


def write_program(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


# ----------------------------------------------------------------------------- colour conversions


def test_full_range_ycbcr_matches_pillow_and_inverts(photo):
    ours = rgb_to_ycbcr(photo)
    pillow = np.asarray(Image.fromarray(photo).convert("YCbCr")).astype(float)  # JFIF BT.601 full range
    assert np.abs(np.moveaxis(ours, 0, -1) - pillow).max() < 1.01  # Pillow: 16-bit fixed point, truncated
    assert np.array_equal(ycbcr_to_rgb(*ours), photo)


def test_limited_range_yuv_matches_scikit_image_and_round_trips_within_a_level(photo):
    ours = rgb_to_limited_yuv(photo).astype(float)
    assert np.abs(ours - rgb2ycbcr(photo)).max() <= 0.5 + 1e-9  # Y 16–235, Cb/Cr 16–240, before rounding
    assert np.abs(limited_yuv_to_rgb(rgb_to_limited_yuv(photo)).astype(int) - photo).max() <= 2


def test_chroma_resampling_keeps_flat_and_linear_planes():
    flat = np.full((6, 8), 77.0)
    assert np.array_equal(downsample_chroma(flat), np.full((3, 4), 77.0))
    assert np.allclose(upsample_chroma(np.full((3, 4), 77.0)), flat)
    ramp = np.add.outer(np.arange(8.0), np.arange(12.0))  # linear: the 2×2 mean sits at the block centre
    restored = upsample_chroma(downsample_chroma(ramp))
    assert np.allclose(restored[1:-1, 1:-1], ramp[1:-1, 1:-1])


# ----------------------------------------------------------------------------- programs


def test_missing_programs_explain_how_to_fix_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    for name in ("CODECBENCH_VVENCAPP", "CODECBENCH_VVDECAPP", "CODECBENCH_TOOLS"):
        monkeypatch.delenv(name, raising=False)
    assert VvcCodec().availability().reason == (
        "vvencapp not found on PATH; install VVenC (github.com/fraunhoferhhi/vvenc) or pass "
        "--codec-option vvc.encoder=PATH (or set CODECBENCH_VVENCAPP)")
    with pytest.raises(CodecUnavailable, match="vvencapp not found"):
        create("vvc")
    monkeypatch.setenv("CODECBENCH_TOOLS", str(tmp_path / "tools"))
    assert f"not found in $CODECBENCH_TOOLS ({tmp_path / 'tools'}) or on PATH" in VvcCodec().availability().reason
    (tmp_path / "tools").mkdir()
    write_program(tmp_path / "tools" / "vvencapp", "exit 0")
    write_program(tmp_path / "tools" / "vvdecapp", "exit 0")
    assert VvcCodec().availability().ok, "programs in $CODECBENCH_TOOLS are found"


def test_encoder_argv_stderr_timeout_and_cleanup(tmp_path, photo, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)
    stub = write_program(tmp_path / "vvencapp", 'echo "stub received: $*" >&2\nexit 3')
    with pytest.raises(CodecError) as failure:
        VvcCodec(encoder=str(stub), decoder=str(stub), preset="slow").encode(photo, 30)
    message = str(failure.value)
    assert "vvencapp at qp 30 failed with exit status 3" in message
    received = message.split("stub received: ")[1].split()
    assert received[:4] == ["-i", received[1], "-s", "256x192"] and received[1].endswith("input.yuv")
    for flag, value in (("-c", "yuv420_10"), ("-f", "1"), ("--qpa", "0"), ("-t", "1"), ("--preset", "slow"),
                        ("-q", "30")):
        assert received[received.index(flag) + 1] == value
    hung = write_program(tmp_path / "hung", "exec sleep 30")
    with pytest.raises(CodecError, match=r"vvencapp at qp 30 timed out after 0.5 s"):
        VvcCodec(encoder=str(hung), decoder=str(hung), timeout=0.5).encode(photo, 30)
    assert os.listdir(tmp_path / "tmp") == [], "private temporary directories are removed"
    with pytest.raises(CodecError, match="preset must be one of"):
        VvcCodec(preset="placebo")


def test_real_round_trip_is_420_and_counts_the_whole_stream(vvc, photo):
    data, decoded = vvc.round_trip(photo, 27)
    assert data[:4] == b"\x00\x00\x00\x01", "a bare Annex-B VVC bitstream"
    assert psnr(photo, decoded) > 33.0
    # One-pixel chroma detail at constant luma does not survive 4:2:0; one-pixel luma detail does.
    base = np.full((64, 64, 3), 128, np.uint8)
    chroma = base.copy()
    chroma[:, ::2] = (150, 117, 128)  # luma 128.0 in both colours, Cb/Cr alternate
    luma = base.copy()
    luma[:, ::2] = 160
    assert psnr(chroma, vvc.round_trip(chroma, 0)[1]) < 35.0 < psnr(luma, vvc.round_trip(luma, 0)[1])


def test_odd_sides_are_padded_and_cropped(vvc, photo):
    image = np.ascontiguousarray(photo[:45, :67])
    data, decoded = vvc.round_trip(image, 20)
    assert data[:4] == b"\xffCB\x03" and decoded.shape == image.shape
    assert psnr(image, decoded) > 35.0


def test_damaged_streams_raise_codec_errors(vvc, photo):
    data = vvc.encode(photo, 30)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    for damaged in (data[: len(data) // 2], data[:-10], data[:40], bytes(flipped), b"\xffCB\x09" + data):
        with pytest.raises(CodecError, match="vvc"):
            vvc.decode(damaged)


def test_preset_and_version_name_the_programs(vvc):
    version = vvc.version()
    assert version.startswith("VVenC ") and ", VVdeC " in version and version.endswith("preset faster")
