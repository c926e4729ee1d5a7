"""Built-in classical codecs (``codecs/`` → ``codecbench_codecs``).

Each codec is checked through the real library underneath; where another
decoder is available (torchvision's libjpeg-turbo and libwebp, Pillow's own
OpenJPEG and native AVIF plugin) the decoded pixels must equal it exactly, and
the bitstream headers are parsed by hand against the standards (JPEG Annex K
tables, J2K COD segment, AV1/HEVC configuration boxes). A codec whose library
is missing is skipped with the reason its ``availability()`` gives.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile

import glymur
import numpy as np
import pytest
import torch
import torchvision.io
from PIL import Image, JpegImagePlugin

from codecbench.codec import Codec
from codecbench.data.images import load_rgb
from codecbench.errors import CodecError
from codecbench.registry import create, discover
from codecbench_codecs._pillow_io import pillow_to_rgb
from codecbench_codecs.bpg import BpgCodec
from codecbench_codecs.jpeg2000 import decomposition_levels

BUILTIN = {
    "jpeg": "JpegCodec",
    "jpeg444": "Jpeg444Codec",
    "webp": "WebpCodec",
    "jpeg2000": "Jpeg2000Codec",
    "avif": "AvifCodec",
    "bpg": "BpgCodec",
    "heic": "HeicCodec",
    "jpegxl": "JpegXlCodec",
    "vvc": "VvcCodec",
}
NAMES = sorted(BUILTIN)
# torchvision 0.29 deprecates its image decoders (still libjpeg-turbo and libwebp underneath).
TORCHVISION_DEPRECATION = "ignore:The image decoding and encoding capabilities of TorchVision:DeprecationWarning"


def load_codec(name: str, **options) -> Codec:
    """The registered codec, or skip the test with the reason it cannot run here."""
    registered = discover()[name]
    if registered.codec_class is None:
        pytest.skip(f"codec {name} failed to load: {registered.load_error}")
    codec = registered.codec_class(**options)
    status = codec.availability()
    if not status.ok:
        pytest.skip(f"codec {name} unavailable here: {status.reason}")
    return codec


@pytest.fixture(params=[pytest.param(name, marks=pytest.mark.slow) if name == "vvc" else name for name in NAMES])
def codec(request) -> Codec:  # vvc: vvencapp takes seconds per image
    return load_codec(request.param)


@pytest.fixture(scope="module")
def photo(natural_image: np.ndarray) -> np.ndarray:
    """A 192×256 crop (face, helmet, flag) of scikit-image's astronaut photograph."""
    return np.ascontiguousarray(natural_image[60:252, 140:396])


def psnr(reference: np.ndarray, decoded: np.ndarray) -> float:
    mse = np.mean((reference.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def by_quality(codec: Codec, settings) -> list:
    """``settings`` ordered from worst to best quality."""
    return sorted(settings, reverse=not codec.setting.higher_is_better)


def middle_setting(codec: Codec):
    sweep = by_quality(codec, codec.setting.default_sweep)
    return sweep[len(sweep) // 2]


def boxes(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, tuple[int, int]]:
    """ISOBMFF boxes at one level: type -> (payload start, payload end)."""
    end = len(data) if end is None else end
    found, offset = {}, start
    while offset + 8 <= end:
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if size < 8:
            break
        found[kind] = (offset + 8, offset + size)
        offset += size
    return found


def find_box(data: bytes, kind: bytes) -> bytes:
    """Payload of the first box of ``kind`` (searched by its four-character code)."""
    at = data.find(kind)
    assert at >= 4, f"no {kind!r} box"
    (size,) = struct.unpack(">I", data[at - 4 : at])
    return data[at + 4 : at - 4 + size]


def nclx(data: bytes) -> tuple[int, int, int, bool]:
    """(colour primaries, transfer, matrix, full range) from the ``colr``/``nclx`` box."""
    payload = find_box(data, b"colr")
    assert payload[:4] == b"nclx"
    primaries, transfer, matrix, flags = struct.unpack(">HHHB", payload[4:11])
    return primaries, transfer, matrix, bool(flags & 0x80)


def jpeg_segments(data: bytes) -> list[tuple[int, bytes]]:
    """(marker, payload) for every JPEG segment before the first scan."""
    assert data[:2] == b"\xff\xd8"
    segments, offset = [], 2
    while True:
        marker = data[offset + 1]
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        segments.append((marker, data[offset + 4 : offset + 2 + length]))
        if marker == 0xDA:  # SOS
            return segments
        offset += 2 + length


# ----------------------------------------------------------------------------- registry


def test_discover_finds_every_builtin_codec():
    found = discover()
    for name, class_name in BUILTIN.items():
        assert name in found, f"{name} not registered in the codecbench.codecs entry-point group"
        registered = found[name]
        assert registered.codec_class is not None, registered.load_error
        assert registered.target == f"codecbench_codecs.{registered.codec_class.__module__.split('.')[-1]}:{class_name}"
        assert registered.codec_class.name == name


def test_create_jpeg_through_the_registry():
    codec = create("jpeg")
    assert type(codec).__name__ == "JpegCodec"
    data = codec.encode(np.zeros((16, 16, 3), np.uint8), 75)
    assert data[:2] == b"\xff\xd8"


def test_unknown_options_are_rejected():
    with pytest.raises(CodecError, match="unknown option"):
        create("jpeg", encoder="/usr/bin/cjpeg")
    with pytest.raises(CodecError, match=r"known: encoder, decoder, timeout"):
        BpgCodec(speed=3)


# ----------------------------------------------------------------------------- every codec


def test_default_sweep_has_at_least_eight_settings(codec):
    assert len(set(codec.setting.default_sweep)) >= 8


def test_version_names_the_library(codec):
    version = codec.version()
    expected = {
        "jpeg": "libjpeg",
        "jpeg444": "libjpeg",
        "webp": "libwebp",
        "jpeg2000": f"OpenJPEG {glymur.version.openjpeg_version}",
        "avif": "aom",
        "heic": "x265",
        "jpegxl": "libjxl",
        "bpg": "BPG Image Encoder",
        "vvc": "VVenC",
    }[codec.name]
    assert expected in version


def test_round_trip_shape_dtype_and_fidelity(codec, photo):
    data, decoded = codec.round_trip(photo, middle_setting(codec))
    assert isinstance(data, bytes) and len(data) > 200
    assert decoded.shape == photo.shape and decoded.dtype == np.uint8
    assert psnr(photo, decoded) > 27.0  # mid-sweep settings sit at 0.5–1 bpp, 29–35 dB on photographs


def test_more_quality_gives_more_bytes_and_higher_psnr(codec, photo):
    sweep = by_quality(codec, codec.setting.default_sweep)
    settings = [sweep[0], sweep[len(sweep) // 2], sweep[-1]]
    sizes, psnrs = [], []
    for setting in settings:
        data, decoded = codec.round_trip(photo, setting)
        sizes.append(len(data))
        psnrs.append(psnr(photo, decoded))
    assert sizes == sorted(sizes) and len(set(sizes)) == 3, f"{settings}: sizes {sizes}"
    assert psnrs[0] + 1.0 < psnrs[1] and psnrs[1] + 1.0 < psnrs[2], f"{settings}: PSNR {psnrs}"


def test_same_input_and_setting_give_identical_bytes(codec, photo):
    setting = middle_setting(codec)
    first = codec.encode(photo, setting)
    assert codec.encode(photo.copy(), setting) == first
    assert np.array_equal(codec.decode(first), codec.decode(first))


@pytest.mark.parametrize("height, width", [(45, 67), (11, 11), (12, 31)])
def test_odd_and_small_sizes(codec, photo, height, width):
    image = np.ascontiguousarray(photo[40 : 40 + height, 60 : 60 + width])
    best = codec.setting.high if codec.setting.higher_is_better else codec.setting.low
    if codec.name == "bpg" and width < 25:
        with pytest.raises(CodecError, match="bpgenc \\(x265\\) crashes on images narrower than 25 px"):
            codec.encode(image, best)
        return
    data, decoded = codec.round_trip(image, best)
    assert decoded.shape == (height, width, 3)
    # A transposed, shifted or padded decode scores far lower. The bound is loose for
    # JPEG 2000, whose ~170 header bytes leave 11×11 at about 25 dB even at ratio 2.
    assert psnr(image, decoded) > 22.0


def test_invalid_input_is_rejected(codec):
    setting = middle_setting(codec)
    with pytest.raises(CodecError, match="H×W×3 uint8"):
        codec.encode(np.zeros((16, 16, 3), np.float32), setting)
    with pytest.raises(CodecError, match="H×W×3 uint8"):
        codec.encode(np.zeros((16, 16), np.uint8), setting)
    with pytest.raises(ValueError, match="outside"):
        codec.encode(np.zeros((16, 16, 3), np.uint8), codec.setting.high + 1)


def test_garbage_bytes_raise_codec_error(codec):
    with pytest.raises(CodecError, match=codec.name):
        codec.decode(b"this is not an image at all" * 4)


# ----------------------------------------------------------------------------- JPEG

# ITU-T T.81 Annex K: luminance quantisation table (K.1) and the code-length
# counts of the typical luminance DC (K.3) and AC (K.5) Huffman tables.
ANNEX_K_LUMA_QUANT = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]  # fmt: skip
ANNEX_K_DC_LUMA_BITS = bytes([0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0])
ANNEX_K_AC_LUMA_BITS = bytes([0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7D])


@pytest.mark.filterwarnings(TORCHVISION_DEPRECATION)
@pytest.mark.parametrize("name, sampling", [("jpeg", 2), ("jpeg444", 0)])
def test_jpeg_matches_an_independent_decoder_and_the_standard(photo, name, sampling):
    codec = load_codec(name)
    data = codec.encode(photo, 50)
    with Image.open(io.BytesIO(data)) as im:
        assert JpegImagePlugin.get_sampling(im) == sampling  # Pillow's code: 2 = 4:2:0, 0 = 4:4:4
        assert sorted(im.quantization[0]) == sorted(ANNEX_K_LUMA_QUANT)  # quality 50 = Annex K unscaled

    reference = torchvision.io.decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    assert np.array_equal(codec.decode(data), reference.permute(1, 2, 0).numpy())

    segments = jpeg_segments(data)
    markers = [marker for marker, _ in segments]
    assert 0xC0 in markers, "expected a baseline sequential frame (SOF0)"
    assert not {0xC2, 0xE1, 0xE2, 0xFE} & set(markers), "no progressive frame, EXIF, ICC or comment"
    assert [m for m in markers if 0xE0 <= m <= 0xEF] == [0xE0]  # just the JFIF APP0 libjpeg writes
    huffman = b"".join(payload for marker, payload in segments if marker == 0xC4)
    assert b"\x00" + ANNEX_K_DC_LUMA_BITS in huffman  # class 0 (DC), table 0
    assert b"\x10" + ANNEX_K_AC_LUMA_BITS in huffman  # class 1 (AC), table 0


# ----------------------------------------------------------------------------- WebP


@pytest.mark.filterwarnings(TORCHVISION_DEPRECATION)
def test_webp_matches_libwebp_through_torchvision_and_is_a_bare_lossy_file(photo):
    codec = load_codec("webp")
    data = codec.encode(photo, 75)
    assert data[:4] == b"RIFF" and data[8:16] == b"WEBPVP8 "  # simple lossy format: no VP8X, no metadata
    assert struct.unpack("<I", data[4:8])[0] + 8 == len(data)
    reference = torchvision.io.decode_webp(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    assert np.array_equal(codec.decode(data), reference.permute(1, 2, 0).numpy())


def test_decoding_refuses_transparent_pixels_but_accepts_opaque_rgba(photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    assert np.array_equal(pillow_to_rgb(Image.fromarray(rgba), "test"), photo)
    rgba[5, 7, 3] = 0
    buffer = io.BytesIO()
    Image.fromarray(rgba).save(buffer, format="WEBP", quality=90)
    with pytest.raises(CodecError, match="1 non-opaque pixel"):
        load_codec("webp").decode(buffer.getvalue())


# ----------------------------------------------------------------------------- JPEG 2000


def test_jpeg2000_codestream_configuration_and_independent_decoder(photo, tmp_path):
    codec = load_codec("jpeg2000")
    data = codec.encode(photo, 48)
    assert data[:4] == b"\xff\x4f\xff\x51"  # SOC then SIZ: a bare J2K codestream, no JP2 boxes
    assert data[-2:] == b"\xff\xd9"  # EOC
    bpp = len(data) * 8 / (photo.shape[0] * photo.shape[1])
    assert bpp == pytest.approx(24 / 48, rel=0.05)

    path = tmp_path / "image.j2k"
    path.write_bytes(data)
    segments = glymur.Jp2k(str(path)).get_codestream(header_only=True).segment
    cod = next(s for s in segments if s.marker_id == "COD")
    assert cod.xform == glymur.core.WAVELET_XFORM_9X7_IRREVERSIBLE
    assert cod.mct == 1  # multiple-component transform on (the ICT with the 9/7 wavelet)
    assert cod.layers == 1
    assert cod.num_res == 5  # decomposition levels

    with Image.open(io.BytesIO(data), formats=["JPEG2000"]) as im:  # Pillow's own OpenJPEG build
        assert np.array_equal(codec.decode(data), np.asarray(im.convert("RGB")))


@pytest.mark.parametrize("side, levels", [(11, 3), (16, 4), (31, 4), (32, 5), (4000, 5)])
def test_jpeg2000_decomposition_levels_fit_the_image(side, levels):
    assert decomposition_levels(side, side + 100) == levels


def test_jpeg2000_refuses_data_without_soc_marker():
    with pytest.raises(CodecError, match="SOC marker FF4F"):
        load_codec("jpeg2000").decode(b"\x00\x00\x00\x0cjP  \r\n\x87\n")


# ----------------------------------------------------------------------------- AVIF


def test_avif_is_420_8bit_full_range_and_matches_pillows_native_decoder(photo):
    codec = load_codec("avif")
    data = codec.encode(photo, 60)
    assert data[4:12] == b"ftypavif"
    av1c = find_box(data, b"av1C")
    flags = av1c[2]  # tier, high_bitdepth, twelve_bit, monochrome, subsampling_x, subsampling_y, position(2)
    assert (flags >> 6) & 1 == 0, "8-bit"
    assert ((flags >> 3) & 1, (flags >> 2) & 1) == (1, 1), "4:2:0"
    assert nclx(data)[2:] == (6, True)  # BT.601 matrix, full range

    pytest.importorskip("PIL.AvifImagePlugin", reason="this Pillow has no native AVIF plugin to compare with")
    from PIL import AvifImagePlugin

    if not AvifImagePlugin.SUPPORTED:
        pytest.skip("Pillow's native AVIF plugin was built without libavif")
    native = AvifImagePlugin.AvifImageFile(io.BytesIO(data))
    assert np.array_equal(codec.decode(data), np.asarray(native.convert("RGB")))


# ----------------------------------------------------------------------------- HEIC


def test_heic_is_420_8bit_hevc_in_full_range_bt601(photo):
    data = load_codec("heic").encode(photo, 50)
    assert data[4:12] == b"ftypheic"
    hvcc = find_box(data, b"hvcC")  # ISO/IEC 14496-15 HEVCDecoderConfigurationRecord
    assert hvcc[16] & 0b11 == 1, "chroma_format_idc 1 = 4:2:0"
    assert hvcc[17] & 0b111 == 0 and hvcc[18] & 0b111 == 0, "8-bit luma and chroma"
    assert nclx(data)[2:] == (6, True)
    assert b"Exif" not in data and b"mime" not in data  # no EXIF or XMP items


# ----------------------------------------------------------------------------- JPEG XL


def test_jpegxl_is_a_bare_codestream_and_quality_follows_distance(photo):
    codec = load_codec("jpegxl")
    assert codec.setting.high == 99  # quality 100 (distance 0) is lossless-only in libjxl
    sizes = [len(codec.encode(photo, q)) for q in (30, 90)]  # distance 6.4 and 1.0
    data = codec.encode(photo, 90)
    assert data[:2] == b"\xff\x0a"  # naked codestream signature, no ISOBMFF container
    assert sizes[0] < sizes[1]
    assert psnr(photo, codec.decode(data)) > 35.0  # distance 1 is "visually lossless"


# ----------------------------------------------------------------------------- temporary files


def test_no_temporary_files_are_left_behind(photo, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    codec = load_codec("jpeg2000")
    codec.decode(codec.encode(photo, 48))
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- default sweeps


@pytest.mark.slow
def test_default_sweep_spans_about_0_1_to_2_bpp_on_kodak(codec, kodak_dir):
    """The extreme settings of the sweep, averaged over kodim01–04 (the sweeps were set on kodim01–08)."""
    images = [load_rgb(kodak_dir / f"kodim{i:02d}.png") for i in range(1, 5)]
    sweep = by_quality(codec, codec.setting.default_sweep)
    lowest, highest = (
        np.mean([len(codec.encode(image, setting)) * 8 / (image.shape[0] * image.shape[1]) for image in images])
        for setting in (sweep[0], sweep[-1])
    )
    assert 0.05 < lowest < 0.4, f"{codec.name} {sweep[0]}: {lowest:.3f} bpp"
    assert 1.5 < highest < 3.0, f"{codec.name} {sweep[-1]}: {highest:.3f} bpp"
