"""What the adversarial suite throws at codecbench: bad image files; and how it runs the command line."""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _bomb_png(width: int, height: int) -> bytes:
    """A valid-looking PNG header announcing width × height gray pixels, with a tiny compressed body."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = zlib.compress(b"\0" * (width + 1) * 16, 9)  # only 16 rows: the size check comes first
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", body) + _png_chunk(b"IEND", b"")


def _saved(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def write_bad_images(folder: Path) -> dict[str, tuple[str, bool]]:
    """Write the bad files into ``folder``; {file name: (what it is, whether codecbench should accept it)}."""
    folder.mkdir(parents=True, exist_ok=True)
    photo = np.ascontiguousarray(data.astronaut()[:64, :96])
    good_png = _saved(Image.fromarray(photo), "PNG")
    frames = [Image.fromarray(photo), Image.fromarray(255 - photo)]
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    rgba[0, 0, 3] = 10
    files: dict[str, tuple[bytes, str, bool]] = {
        "a_good.png": (good_png, "a good 96×64 RGB PNG", True),
        "corrupt.png": (good_png[:60] + bytes(range(256)) * 8, "PNG header then garbage", False),
        "truncated.png": (good_png[: len(good_png) // 2], "PNG cut in half", False),
        "empty.png": (b"", "0-byte file named .png", False),
        "deep16.png": (_saved(Image.fromarray(photo[:, :, 0].astype(np.uint16) * 257), "PNG"), "16-bit gray PNG",
                       False),
        "cmyk.jpg": (_saved(Image.fromarray(photo).convert("CMYK"), "JPEG"), "CMYK JPEG", False),
        "transparent.png": (_saved(Image.fromarray(rgba, "RGBA"), "PNG"), "RGBA PNG with one transparent pixel",
                            False),
        "animated.gif": (_saved(frames[0], "GIF", save_all=True, append_images=frames[1:]), "2-frame GIF", False),
        "tiny.png": (_saved(Image.fromarray(photo[:5, :5]), "PNG"), "5×5 PNG (SSIM needs 11×11)", False),
        "odd_sized.png": (_saved(Image.fromarray(photo[:13, :17]), "PNG"), "17×13 PNG (odd sides)", True),
        "bomb.png": (_bomb_png(40000, 40000), "PNG announcing 40000×40000 (decompression bomb)", False),
        "text.png": (b"this is not an image\n" * 10, "a text file named .png", False),
        "notes.txt": (b"not an image suffix\n", "a .txt file (not an image suffix)", False),
    }
    for name, (content, _, _) in files.items():
        (folder / name).write_bytes(content)
    return {name: (what, accepted) for name, (_, what, accepted) in files.items()}


def codecbench_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codecbench", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def short(error: str | None, limit: int = 110) -> str:
    text = error or "ok"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid``, by walking /proc parent links."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                pass
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found
