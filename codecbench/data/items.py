"""A resolved dataset: its items, each one test image (a file, or a row of a patch-set array)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codecbench.data.images import check_size, load_rgb
from codecbench.errors import ImageError


@dataclass(frozen=True)
class ImageItem:
    """One test image; picklable, so it can be sent to worker processes.

    ``path`` is an image file (``index`` None) or a ``.npy`` array of shape
    N×H×W×3 uint8 whose row ``index`` is the image (patch sets).
    """

    dataset: str  # the dataset spec as the user gave it
    name: str  # stable name within the dataset
    path: str
    index: int | None = None

    def load(self) -> np.ndarray:
        """The image as H×W×3 uint8 RGB (``images.load_rgb`` rules); raises ImageError naming the item."""
        if self.index is None:
            return load_rgb(self.path)
        label = f"{self.path} row {self.index} ({self.dataset}/{self.name})"
        try:
            rows = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ImageError(f"{label}: cannot be read ({type(exc).__name__}: {exc})") from exc
        if rows.ndim != 4 or rows.shape[3] != 3 or rows.dtype != np.uint8:
            raise ImageError(f"{label}: the array is {rows.shape} {rows.dtype}, expected N×H×W×3 uint8")
        if not 0 <= self.index < rows.shape[0]:
            raise ImageError(f"{label}: the array has only {rows.shape[0]} rows")
        image = np.array(rows[self.index])  # a copy, detached from the memory map
        check_size(image, label)
        return image


@dataclass
class Dataset:
    name: str
    description: str
    items: list[ImageItem]
    checksums: dict[str, str]  # image name -> expected pixel SHA-256 (hex); {} when none are registered
    warnings: list[str] = field(default_factory=list)  # e.g. symlinks that lead out of a folder dataset

