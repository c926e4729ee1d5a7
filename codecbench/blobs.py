"""Kept cell outputs: each cell's bitstream and decoded image, content-addressed in the results directory.

Layout (``codecbench run --keep-decoded``)::

    results/blobs/bitstreams/ab/<sha256 of the bytes>.bin   the codec's complete stored bytes
    results/blobs/decoded/cd/<sha256 of the file>.png      the decoded image, lossless RGB PNG

A file's name is the SHA-256 of its content, so identical outputs are stored
once (two settings that decode to the same image share a file) and a damaged
file is detected on reading. Files are written atomically by the driver
process only. A row that kept its outputs names them in ``extra.kept``
(``{"bitstream": sha, "decoded": sha}``); ``codecbench rescore`` reads them.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np

from codecbench.errors import StoreError
from codecbench.files import atomic_write_bytes

BLOBS_DIR = "blobs"
BITSTREAM, DECODED = "bitstream", "decoded"
_FOLDERS = {BITSTREAM: ("bitstreams", ".bin"), DECODED: ("decoded", ".png")}
#: Key of a computed row under which a worker hands the outputs to keep to the driver (never stored).
OUTPUTS_KEY = "_kept_outputs"


def lossless_png(image: np.ndarray) -> bytes:
    """An H×W×3 uint8 image as RGB PNG bytes (lossless; fast zlib level 1; deterministic)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image, "RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def cell_outputs(bitstream: bytes, decoded: np.ndarray) -> dict[str, bytes]:
    """What a worker sends back for a cell whose outputs are kept."""
    return {BITSTREAM: bytes(bitstream), DECODED: lossless_png(decoded)}


class BlobStore:
    """The content-addressed files under ``<results>/blobs``."""

    def __init__(self, results_root: str | Path) -> None:
        self.root = Path(results_root) / BLOBS_DIR

    def path(self, kind: str, sha256: str) -> Path:
        folder, suffix = _FOLDERS[kind]
        return self.root / folder / sha256[:2] / f"{sha256}{suffix}"

    def put(self, kind: str, data: bytes) -> str:
        """Store ``data`` (once) and return its SHA-256."""
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.path(kind, sha256)
        if not path.exists():
            atomic_write_bytes(path, data)
        return sha256

    def keep(self, outputs: dict[str, bytes]) -> dict[str, str]:
        """Store a cell's outputs; the ``extra.kept`` entry naming them."""
        return {kind: self.put(kind, data) for kind, data in outputs.items()}

    def read(self, kind: str, sha256: str) -> bytes:
        """The stored content; StoreError if it is missing or does not match its name."""
        path = self.path(kind, sha256)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise StoreError(f"{path}: kept {kind} cannot be read ({exc.strerror or exc})") from exc
        if hashlib.sha256(data).hexdigest() != sha256:
            raise StoreError(f"{path}: content does not match its SHA-256 name (damaged)")
        return data

    def decoded(self, sha256: str) -> np.ndarray:
        """A kept decoded image as H×W×3 uint8."""
        from PIL import Image

        with Image.open(io.BytesIO(self.read(DECODED, sha256))) as image:
            return np.asarray(image.convert("RGB"))


def kept(row: dict[str, Any]) -> dict[str, str]:
    """The kept outputs a row names (empty if none)."""
    extra = row.get("extra")
    return dict(extra.get("kept") or {}) if isinstance(extra, dict) else {}
