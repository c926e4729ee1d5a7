"""Where image files are: the data folder, and THE rule for which files of a folder are images.

The image-folder rule (used for folder datasets, registered datasets without
checksums, BD patch-set sources, and archive members to extract):

- an image file's suffix, lower-cased, is in :data:`codecbench.data.images.IMAGE_SUFFIXES`;
- hidden files (name starting with ``.``) are not images;
- only the folder's own regular files count (no recursion, folders ignored);
- the files are listed sorted by file name (code-point order).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from codecbench.data.images import IMAGE_SUFFIXES


def default_data_dir() -> Path:
    """``$CODECBENCH_DATA`` if set, else ``~/.cache/codecbench`` (a caller's option takes precedence over both)."""
    value = os.environ.get("CODECBENCH_DATA")
    return Path(value).expanduser() if value else Path.home() / ".cache" / "codecbench"


def is_image_name(name: str) -> bool:
    """Whether a file whose base name is ``name`` is an image by the module's rule."""
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES and not name.startswith(".")


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder`` by the module's rule, sorted by file name."""
    return sorted((entry for entry in folder.iterdir() if entry.is_file() and is_image_name(entry.name)),
                  key=lambda entry: entry.name)
