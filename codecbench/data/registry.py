"""The dataset registry ``codecbench/data/datasets.yaml`` (its header documents the keys), parsed."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from codecbench.errors import DatasetError

REGISTRY_PATH = Path(__file__).with_name("datasets.yaml")


@dataclass(frozen=True)
class RegisteredImage:
    name: str
    width: int
    height: int
    pixel_sha256: str
    file_sha256: str | None  # of the file as published by the source; checked on download


@dataclass(frozen=True)
class Archive:
    url: str
    file_sha256: str | None
    member_dir: str | None  # images are the image files whose folder path ends with this


@dataclass(frozen=True)
class RegisteredDataset:
    """One entry of the registry YAML (its header documents the keys)."""

    name: str
    description: str
    licence: str
    homepage: str
    citation: str
    images: tuple[RegisteredImage, ...]  # empty when checksums are unknown
    n_images: int
    bundled: str | None  # "skimage": the files ship inside scikit-image
    base_url: str | None  # per-image download URL = base_url + name
    archive: Archive | None
    offline_hint: str

    @property
    def verified(self) -> bool:
        return bool(self.images)


def load_registry(path: Path | None = None) -> dict[str, RegisteredDataset]:
    """Parse the dataset registry (default: the packaged ``datasets.yaml``); DatasetError on a malformed entry."""
    path = Path(path) if path is not None else REGISTRY_PATH
    try:
        text = path.read_text(encoding="utf-8")
        document = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"dataset registry {path} cannot be read: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DatasetError(f"dataset registry {path}{where}: not valid YAML ({problem})") from None
    if not isinstance(document, dict) or not isinstance(document.get("datasets"), dict):
        raise DatasetError(f"dataset registry {path}: expected a mapping with a 'datasets' mapping")
    lines = _entry_lines(text)
    return {name: _parse_dataset(f"{path}:{lines.get(str(name), 1)}", str(name), entry)
            for name, entry in document["datasets"].items()}


def _entry_lines(text: str) -> dict[str, int]:
    """Line number (1-based) of each dataset's key under ``datasets:``, for messages."""
    root = yaml.compose(text)
    for key, value in root.value if isinstance(root, yaml.MappingNode) else ():
        if key.value == "datasets" and isinstance(value, yaml.MappingNode):
            return {entry.value: entry.start_mark.line + 1 for entry, _ in value.value}
    return {}


def _parse_dataset(where: str, name: str, entry: object) -> RegisteredDataset:
    """One entry; ``where`` (``file:line`` of its key) is named in every error."""

    def fail(reason: str) -> DatasetError:
        return DatasetError(f"dataset registry {where}: dataset {name!r}: {reason}")

    if not isinstance(entry, dict):
        raise fail("expected a mapping")
    if not _is_plain_name(name):
        raise fail("the name must be a plain folder name")
    for key in ("description", "licence", "homepage", "citation"):
        if not isinstance(entry.get(key), str):
            raise fail(f"missing text field {key!r}")
    sources = [key for key in ("bundled", "base_url", "archive") if key in entry]
    if len(sources) != 1:
        raise fail(f"needs exactly one of bundled, base_url, archive (has {sources or 'none'})")
    if not isinstance(entry.get("base_url", ""), str):
        raise fail("base_url must be a URL")
    if entry.get("bundled", "skimage") != "skimage":
        raise fail(f"unknown bundled source {entry['bundled']!r} (only 'skimage')")
    archive = None
    if "archive" in entry:
        spec = entry["archive"]
        if not isinstance(spec, dict) or not isinstance(spec.get("url"), str):
            raise fail("archive needs a url")
        if not isinstance(spec.get("member_dir", ""), str):
            raise fail("archive member_dir must be a folder path")
        archive = Archive(spec["url"], _sha(spec.get("file_sha256"), fail), spec.get("member_dir"))
    if entry.get("checksums") == "unknown":
        if "images" in entry or not isinstance(entry.get("n_images"), int) or entry["n_images"] < 1:
            raise fail("'checksums: unknown' needs n_images and no images list")
        if archive is None:
            raise fail("'checksums: unknown' is supported for archives only")
        images: tuple[RegisteredImage, ...] = ()
        n_images = entry["n_images"]
    else:
        if not isinstance(entry.get("images"), list) or not entry["images"]:
            raise fail("needs an images list (or 'checksums: unknown' with n_images)")
        images = tuple(_parse_image(item, fail) for item in entry["images"])
        names = [image.name for image in images]
        if names != sorted(set(names)):
            raise fail("image names must be unique and sorted")
        n_images = len(images)
    return RegisteredDataset(
        name=name,
        description=entry["description"],
        licence=entry["licence"],
        homepage=entry["homepage"],
        citation=entry["citation"],
        images=images,
        n_images=n_images,
        bundled=entry.get("bundled"),
        base_url=entry.get("base_url"),
        archive=archive,
        offline_hint=entry.get("offline_hint", ""),
    )


def _parse_image(item: object, fail: Callable[[str], DatasetError]) -> RegisteredImage:
    if not isinstance(item, dict) or not _is_plain_name(str(item.get("name", ""))):
        raise fail(f"image entry {item!r} needs a plain file name")
    for key in ("width", "height"):
        if not isinstance(item.get(key), int) or item[key] < 1:
            raise fail(f"image {item['name']}: {key} must be a positive integer")
    pixel = _sha(item.get("pixel_sha256"), fail)
    if pixel is None:
        raise fail(f"image {item['name']}: missing pixel_sha256")
    return RegisteredImage(item["name"], item["width"], item["height"], pixel, _sha(item.get("file_sha256"), fail))


def _sha(value: object, fail: Callable[[str], DatasetError]) -> str | None:
    if value is None:
        return None
    text = str(value).lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise fail(f"{value!r} is not a hex SHA-256")
    return text


def _is_plain_name(name: str) -> bool:
    return bool(name) and PurePosixPath(name).name == name and "\\" not in name and not name.startswith(".")


def dataset_folder(dataset: RegisteredDataset, data_dir: Path) -> Path:
    """Where a registered dataset's image files are: scikit-image's data folder, or ``<data_dir>/<name>``."""
    if dataset.bundled == "skimage":
        spec = importlib.util.find_spec("skimage")
        if spec is None or spec.origin is None:
            raise DatasetError(f"dataset {dataset.name!r} ships with scikit-image, which is not installed "
                               "(pip install scikit-image)")
        return Path(spec.origin).parent / "data"
    return data_dir / dataset.name

