"""The ``bpg`` codec (bpgenc/bpgdec): how the programs are found, run, timed out and cleaned up, with
stub programs; and a real round trip when ``CODECBENCH_BPGENC``/``CODECBENCH_BPGDEC`` or ``CODECBENCH_TOOLS``
finds libbpg (elsewhere it skips with the reason). The generic codec tests (test_codecs_classical.py) and
the Kodak reproduction of CompressAI's BPG curve (test_references.py) cover the rest.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from codecbench.errors import CodecError, CodecUnavailable
from codecbench.registry import create
from codecbench_codecs.bpg import BpgCodec


@pytest.fixture(scope="module")
def photo(natural_image: np.ndarray) -> np.ndarray:
    """A 192×256 crop of scikit-image's astronaut photograph."""
    return np.ascontiguousarray(natural_image[60:252, 140:396])


def psnr(reference: np.ndarray, decoded: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((reference.astype(float) - decoded.astype(float)) ** 2)))


def write_program(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def no_bpg_on_path(monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("CODECBENCH_BPGENC", raising=False)
    monkeypatch.delenv("CODECBENCH_BPGDEC", raising=False)
    monkeypatch.delenv("CODECBENCH_TOOLS", raising=False)


def test_bpg_availability_explains_how_to_fix_it(no_bpg_on_path, tmp_path, monkeypatch):
    status = BpgCodec().availability()
    assert not status.ok
    assert status.reason == (
        "bpgenc not found on PATH; install libbpg or pass --codec-option bpg.encoder=PATH (or set CODECBENCH_BPGENC)"
    )
    with pytest.raises(CodecUnavailable, match="bpgenc not found on PATH"):
        create("bpg")

    missing = tmp_path / "nowhere" / "bpgenc"
    assert f"'{missing}' (from option bpg.encoder) is not an executable" in BpgCodec(encoder=str(missing)).availability().reason
    monkeypatch.setenv("CODECBENCH_BPGENC", str(missing))
    assert "(from environment variable CODECBENCH_BPGENC)" in BpgCodec().availability().reason

    encoder = write_program(tmp_path / "bpgenc", "exit 0")
    status = BpgCodec(encoder=str(encoder)).availability()
    assert not status.ok and status.reason.startswith("bpgdec not found on PATH")
    assert BpgCodec(encoder=str(encoder), decoder=str(encoder)).availability().ok


def test_bpg_programs_are_found_in_the_tools_folder(no_bpg_on_path, tmp_path, monkeypatch):
    tools = tmp_path / "tools"
    tools.mkdir()
    monkeypatch.setenv("CODECBENCH_TOOLS", str(tools))
    assert BpgCodec().availability().reason.startswith(f"bpgenc not found in $CODECBENCH_TOOLS ({tools}) or on PATH")
    for name in ("bpgenc", "bpgdec"):
        write_program(tools / name, "exit 0")
    assert BpgCodec().availability().ok
    assert BpgCodec().encoder_argv(30, Path("a.png"), Path("b.bpg"))[0] == str(tools / "bpgenc")
    override = write_program(tmp_path / "other-bpgenc", "exit 0")
    monkeypatch.setenv("CODECBENCH_BPGENC", str(override))  # the program's own variable wins over the folder
    assert BpgCodec().encoder_argv(30, Path("a.png"), Path("b.bpg"))[0] == str(override)


def test_bpg_runs_bpgenc_with_the_documented_argv_and_reports_its_stderr(tmp_path, photo):
    encoder = write_program(tmp_path / "bpgenc", 'echo "stub received: $*" >&2\nexit 3')
    codec = BpgCodec(encoder=str(encoder), decoder=str(encoder))
    with pytest.raises(CodecError) as failure:
        codec.encode(photo, 30)
    message = str(failure.value)
    assert "bpgenc at qp 30 failed with exit status 3" in message
    received = message.split("stub received: ")[1].split()
    assert received[:10] == ["-q", "30", "-f", "444", "-c", "ycbcr", "-e", "x265", "-b", "8"]
    assert received[10] == "-o" and received[11].endswith("output.bpg") and received[12].endswith("input.png")
    assert not Path(received[12]).parent.exists(), "the private temporary directory must be removed"


def test_bpg_reports_a_decoder_failure_and_a_missing_output(tmp_path):
    decoder = write_program(tmp_path / "bpgdec", 'echo "Could not decode image" >&2\nexit 1')
    with pytest.raises(CodecError, match=r"(?s)bpgdec failed with exit status 1: .*Could not decode image"):
        BpgCodec(encoder=str(decoder), decoder=str(decoder)).decode(b"BPG\xfb")
    silent = write_program(tmp_path / "silent", "exit 0")
    with pytest.raises(CodecError, match="wrote no output file"):
        BpgCodec(encoder=str(silent), decoder=str(silent)).decode(b"BPG\xfb")


def test_bpg_timeout_stops_a_hung_program(tmp_path, photo):
    hung = write_program(tmp_path / "bpgenc", "exec sleep 30")
    codec = BpgCodec(encoder=str(hung), decoder=str(hung), timeout=0.5)
    with pytest.raises(CodecError, match=r"bpgenc at qp 30 timed out after 0.5 s"):
        codec.encode(photo, 30)
    with pytest.raises(CodecError, match="timeout must be positive"):
        BpgCodec(timeout=0)
    with pytest.raises(CodecError, match="timeout must be a number"):
        BpgCodec(timeout="soon")


def test_bpg_version_is_the_first_line_of_the_help(tmp_path):
    banner = "BPG Image Encoder version 0.9.8\nusage: bpgenc [options] infile.[jpg|png]"
    encoder = write_program(tmp_path / "bpgenc", f'printf "{banner}\\n"\nexit 1')  # bpgenc -h exits 1
    assert BpgCodec(encoder=str(encoder)).version() == "BPG Image Encoder version 0.9.8, encoder x265"


def test_bpg_real_round_trip_is_444(photo):
    codec = BpgCodec()
    if not codec.availability().ok:
        pytest.skip(f"codec bpg unavailable here: {codec.availability().reason}")
    data, decoded = codec.round_trip(photo, 30)
    assert data[:4] == b"BPG\xfb"
    assert data[4] >> 5 == 3, "pixel_format 3 = 4:4:4"  # BPG header: pixel_format(3) alpha1(1) depth-8(4)
    assert data[4] & 0x0F == 0, "8-bit"
    assert psnr(photo, decoded) > 30.0
