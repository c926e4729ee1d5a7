"""The image loading rules of codecbench.data.images, one test per rule.

References are independent of the code under test: arrays written by the test
itself, numpy palette look-ups, hashlib over raw bytes, and hand-built PNG and
PPM files.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from codecbench.data.images import MIN_SIDE, file_sha256, load_rgb, pixel_sha256
from codecbench.errors import ImageError


@pytest.fixture(scope="module")
def photo(natural_image: np.ndarray) -> np.ndarray:
    """A 37×53 crop of a natural photograph (odd sizes on purpose)."""
    return np.ascontiguousarray(natural_image[100:137, 200:253])


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_rgb16(image: np.ndarray) -> bytes:
    """A 16-bit RGB PNG written by hand (Pillow cannot write one)."""
    height, width, _ = image.shape
    rows = b"".join(b"\x00" + image[y].astype(">u2").tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows))
            + _png_chunk(b"IEND", b""))


def _assert_error_names(path: Path, *fragments: str) -> None:
    with pytest.raises(ImageError) as info:
        load_rgb(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


# --- accepted forms -------------------------------------------------------------


def test_rgb_is_used_as_stored_at_odd_sizes(tmp_path, photo):
    path = tmp_path / "odd.png"
    Image.fromarray(photo).save(path)
    loaded = load_rgb(path)
    assert loaded.dtype == np.uint8 and loaded.shape == (37, 53, 3)
    np.testing.assert_array_equal(loaded, photo)


def test_grayscale_is_replicated_to_three_channels(tmp_path, photo):
    gray = photo[:, :, 1].copy()
    path = tmp_path / "gray.png"
    Image.fromarray(gray, mode="L").save(path)
    loaded = load_rgb(path)
    for channel in range(3):
        np.testing.assert_array_equal(loaded[:, :, channel], gray)


def test_bilevel_is_replicated_as_0_and_255(tmp_path, photo):
    bits = photo[:, :, 0] > 128
    path = tmp_path / "bilevel.png"
    Image.fromarray(bits).save(path)
    assert Image.open(path).mode == "1"
    expected = np.where(bits, 255, 0).astype(np.uint8)
    loaded = load_rgb(path)
    for channel in range(3):
        np.testing.assert_array_equal(loaded[:, :, channel], expected)


def test_palette_is_expanded_through_its_palette(tmp_path):
    rng = np.random.default_rng(1)
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    indices = rng.integers(0, 256, (20, 31), dtype=np.uint8)
    image = Image.fromarray(indices, mode="P")
    image.putpalette(palette.tobytes())
    path = tmp_path / "palette.png"
    image.save(path)
    np.testing.assert_array_equal(load_rgb(path), palette[indices])


def test_palette_with_unused_transparent_entry_is_accepted(tmp_path):
    rng = np.random.default_rng(2)
    palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
    indices = rng.integers(1, 256, (20, 31), dtype=np.uint8)  # index 0 (transparent) never used
    image = Image.fromarray(indices, mode="P")
    image.putpalette(palette.tobytes())
    path = tmp_path / "palette_trns_unused.png"
    image.save(path, transparency=0)
    np.testing.assert_array_equal(load_rgb(path), palette[indices])


def test_fully_opaque_rgba_drops_alpha(tmp_path, photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    path = tmp_path / "opaque.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    np.testing.assert_array_equal(load_rgb(path), photo)


def test_fully_opaque_gray_alpha_is_replicated(tmp_path, photo):
    gray = photo[:, :, 2].copy()
    path = tmp_path / "la.png"
    Image.fromarray(np.dstack([gray, np.full_like(gray, 255)]), mode="LA").save(path)
    np.testing.assert_array_equal(load_rgb(path), np.repeat(gray[:, :, None], 3, axis=2))


def test_jpeg_pixels_are_the_decoders(tmp_path, photo):
    path = tmp_path / "photo.jpg"
    Image.fromarray(photo).save(path, quality=80)
    with Image.open(path) as reference:
        np.testing.assert_array_equal(load_rgb(path), np.asarray(reference.convert("RGB")))


def test_exif_orientation_is_ignored(tmp_path, photo):
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    path = tmp_path / "rotated.jpg"
    Image.fromarray(photo).save(path, exif=exif, quality=95)
    loaded = load_rgb(path)
    assert loaded.shape == photo.shape  # stored orientation (37 rows), not the displayed one


def test_minimum_size_is_accepted(tmp_path, photo):
    path = tmp_path / "min.png"
    Image.fromarray(photo[:MIN_SIDE, :MIN_SIDE]).save(path)
    assert load_rgb(path).shape == (11, 11, 3)


# --- refused forms ---------------------------------------------------------------


def test_transparent_rgba_pixel_is_an_error(tmp_path, photo):
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    rgba[5, 7, 3] = 254
    path = tmp_path / "alpha.png"
    Image.fromarray(rgba, mode="RGBA").save(path)
    _assert_error_names(path, "1 pixel(s) are not fully opaque")


def test_palette_with_used_transparent_entry_is_an_error(tmp_path):
    indices = np.tile(np.arange(31, dtype=np.uint8), (20, 1))  # index 0 used in every row
    image = Image.fromarray(indices, mode="P")
    image.putpalette(bytes(range(256)) * 3)
    path = tmp_path / "palette_trns.png"
    image.save(path, transparency=0)
    _assert_error_names(path, "20 pixel(s) are not fully opaque")


def test_rgb_with_transparent_colour_is_an_error(tmp_path, photo):
    image = photo.copy()
    colour = tuple(int(v) for v in image[3, 4])
    matches = int(np.all(image == np.array(colour, np.uint8), axis=2).sum())
    path = tmp_path / "rgb_trns.png"
    Image.fromarray(image).save(path, transparency=colour)
    _assert_error_names(path, f"{matches} pixel(s) are not fully opaque")


def test_gray_with_transparent_level_is_an_error(tmp_path, photo):
    gray = photo[:, :, 0].copy()
    level = int(gray[0, 0])
    path = tmp_path / "gray_trns.png"
    Image.fromarray(gray, mode="L").save(path, transparency=level)
    _assert_error_names(path, f"{int((gray == level).sum())} pixel(s) are not fully opaque")


def test_16_bit_gray_png_is_an_error(tmp_path, photo):
    path = tmp_path / "gray16.png"
    Image.fromarray(photo[:, :, 0].astype(np.uint16) * 257).save(path)
    assert Image.open(path).mode == "I;16"
    _assert_error_names(path, "16-bit")


def test_16_bit_rgb_png_is_an_error(tmp_path, photo):
    path = tmp_path / "rgb16.png"
    path.write_bytes(_png_rgb16(photo.astype(np.uint16) * 257))
    _assert_error_names(path, "16-bit")


def test_16_bit_rgb_tiff_is_an_error(tmp_path, photo):
    path = tmp_path / "rgb16.tif"
    tifffile.imwrite(path, photo.astype(np.uint16) * 257)
    _assert_error_names(path, "16-bit")


def test_16_bit_ppm_is_an_error(tmp_path, photo):
    path = tmp_path / "rgb16.ppm"
    height, width, _ = photo.shape
    path.write_bytes(f"P6\n{width} {height}\n65535\n".encode() + (photo.astype(">u2") * 257).tobytes())
    _assert_error_names(path, "16-bit")


def test_cmyk_is_an_error(tmp_path, photo):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(photo).convert("CMYK").save(path)
    _assert_error_names(path, "CMYK")


def test_animated_gif_is_an_error(tmp_path, photo):
    path = tmp_path / "anim.gif"
    frames = [Image.fromarray(photo), Image.fromarray(255 - photo)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    _assert_error_names(path, "2 frames")


def test_multipage_tiff_is_an_error(tmp_path, photo):
    path = tmp_path / "pages.tif"
    tifffile.imwrite(path, np.stack([photo, photo]), photometric="rgb")
    _assert_error_names(path, "2 frames")


@pytest.mark.parametrize("size", [(10, 40), (40, 10), (5, 5)])
def test_smaller_than_minimum_is_an_error(tmp_path, natural_image, size):
    height, width = size
    path = tmp_path / "small.png"
    Image.fromarray(np.ascontiguousarray(natural_image[:height, :width])).save(path)
    _assert_error_names(path, f"{width}×{height} px is smaller than the 11×11 minimum")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_file_is_an_error(tmp_path, natural_image, suffix):
    whole = tmp_path / f"whole{suffix}"
    Image.fromarray(natural_image).save(whole)
    data = whole.read_bytes()
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: len(data) // 2])
    _assert_error_names(path, "cannot be decoded")


def test_garbage_bytes_are_an_error(tmp_path):
    path = tmp_path / "noise.png"
    path.write_bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _assert_error_names(path, "cannot be decoded")


def test_missing_file_is_an_error(tmp_path):
    _assert_error_names(tmp_path / "absent.png", "no such file")


# --- checksums -----------------------------------------------------------------------


def test_pixel_sha256_is_sha256_of_row_major_rgb_bytes(photo):
    assert pixel_sha256(photo) == hashlib.sha256(photo.tobytes()).hexdigest()
    transposed = np.asfortranarray(photo)  # same pixels, other memory order
    assert pixel_sha256(transposed) == hashlib.sha256(photo.tobytes()).hexdigest()


def test_pixel_sha256_is_the_same_for_lossless_copies(tmp_path, photo):
    encodings = {
        "fast.png": {"compress_level": 0},
        "small.png": {"compress_level": 9, "optimize": True},
        "copy.ppm": {},
        "copy.bmp": {},
        "copy.tif": {"compression": "tiff_lzw"},
        "copy.webp": {"lossless": True},
    }
    checksums = set()
    for name, options in encodings.items():
        Image.fromarray(photo).save(tmp_path / name, **options)
        checksums.add(pixel_sha256(load_rgb(tmp_path / name)))
    assert checksums == {hashlib.sha256(photo.tobytes()).hexdigest()}
    assert len({file_sha256(tmp_path / name) for name in encodings}) == len(encodings)


def test_pixel_sha256_changes_with_one_pixel(tmp_path, photo):
    changed = photo.copy()
    changed[20, 30, 1] ^= 1
    Image.fromarray(photo).save(tmp_path / "a.png")
    Image.fromarray(changed).save(tmp_path / "b.png")
    assert pixel_sha256(load_rgb(tmp_path / "a.png")) != pixel_sha256(load_rgb(tmp_path / "b.png"))


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.uint8), np.zeros((4, 4, 4), np.uint8), np.zeros((4, 4, 3), np.uint16)])
def test_pixel_sha256_refuses_non_rgb8(bad):
    with pytest.raises(ValueError, match="H×W×3 uint8"):
        pixel_sha256(bad)


def test_file_sha256_matches_hashlib(tmp_path):
    path = tmp_path / "blob.bin"
    data = bytes(range(256)) * 5000  # spans several read chunks
    path.write_bytes(data)
    assert file_sha256(path, chunk=4096) == hashlib.sha256(data).hexdigest()
