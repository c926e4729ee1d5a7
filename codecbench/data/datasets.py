"""Test image sets: registered datasets, folders of images, and patch sets.

A dataset spec is one of

- a registered name (``codecbench/data/datasets.yaml``): ``sample`` (bundled with
  scikit-image), ``kodak``, ``clic2020-professional-valid``, ... A registered
  name wins over a folder of the same name (write ``./kodak`` for the folder);
- a folder path: its image files by the image-folder rule of
  :mod:`codecbench.data.folders` (suffixes in ``images.IMAGE_SUFFIXES``, any
  case, no hidden files, no recursion), sorted by file name (code-point order);
  a symlink that leads outside the folder is followed, and the dataset carries
  a warning naming it (``Dataset.warnings``; ``codecbench run`` prints it);
- ``bd:SET...``: a patch set, resolved by ``codecbench.data.bdpatches.resolve_bd``.

Registered datasets live in ``<data_dir>/<name>/`` with their image files by
name; ``data_dir`` is the caller's option, else ``$CODECBENCH_DATA``, else
``~/.cache/codecbench``. An image is identified by the SHA-256 of its decoded
8-bit RGB pixels (``images.pixel_sha256``) plus width and height, so any
lossless copy is accepted and a changed pixel is not; a source file checksum,
where registered, is checked on download. Verified files are remembered in
``<data_dir>/<name>/.verified.json`` keyed by file size and mtime (best effort:
a read-only folder, or one whose mode has no write bit even when running as
root, is never written to and is simply re-verified on each use). Datasets registered with
``checksums: unknown`` are checked only by image count and decodability: their
``Dataset.checksums`` is empty and reports should call them unverified.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path

from codecbench.data.bdpatches import SPEC_PREFIX, resolve_bd
from codecbench.data.download import extract_images, fetch
from codecbench.data.folders import default_data_dir, image_files
from codecbench.data.images import IMAGE_SUFFIXES, load_rgb, pixel_sha256
from codecbench.data.items import Dataset, ImageItem
from codecbench.data.registry import RegisteredDataset, RegisteredImage, dataset_folder, load_registry
from codecbench.errors import ArchiveError, ChecksumError, DatasetError, DownloadError, ImageError, UnknownDatasetError
from codecbench.files import atomic_write_text

VERIFIED_CACHE = ".verified.json"


@dataclass(frozen=True)
class DatasetStatus:
    """One row of ``codecbench datasets``."""

    name: str
    description: str
    licence: str
    n_images: int
    present: bool  # every image file is in ``where`` (checksums are checked on first use)
    where: Path
    note: str


# --- resolving ----------------------------------------------------------------


def resolve_dataset(
    spec: str,
    data_dir: Path | None = None,
    *,
    download: bool = True,
    progress: bool = True,
    registry: Path | None = None,
) -> Dataset:
    """The images of ``spec`` (see the module docstring), downloaded and verified where registered.

    ``registry`` replaces the packaged registry YAML (tests). Raises DatasetError.
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    if spec.startswith(SPEC_PREFIX):
        return resolve_bd(spec, data_dir)
    registered = load_registry(registry)
    if spec in registered:
        return _resolve_registered(registered[spec], data_dir, download, progress)
    folder = Path(spec).expanduser()
    if folder.is_dir():
        return _folder_dataset(spec, folder)
    close = difflib.get_close_matches(spec, list(registered), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise UnknownDatasetError(
        f"unknown dataset {spec!r}{hint}: not a registered dataset ({', '.join(registered)}), "
        f"not an existing folder, and not a patch set (bd:SET)"
    )


def _folder_dataset(spec: str, folder: Path) -> Dataset:
    """A folder's images; symlinks that lead outside the folder are followed, with a warning naming each."""
    names = _image_names(folder)
    if not names:
        raise DatasetError(f"folder {folder} holds no image files ({', '.join(IMAGE_SUFFIXES)})")
    items = [ImageItem(spec, name, str(folder / name)) for name in names]
    inside = folder.resolve()
    outside = [f"{folder / name} -> {(folder / name).resolve()}" for name in names
               if (folder / name).is_symlink() and inside not in (folder / name).resolve().parents]
    warnings = [f"folder {folder}: followed symlink(s) that lead outside it: {', '.join(outside)}"] if outside else []
    return Dataset(spec, f"images in folder {folder}", items, {}, warnings)


def _image_names(folder: Path) -> list[str]:
    """Names of the image files directly in ``folder`` (the image-folder rule), sorted."""
    return [path.name for path in image_files(folder)]


def _resolve_registered(dataset: RegisteredDataset, data_dir: Path, download: bool, progress: bool) -> Dataset:
    folder = dataset_folder(dataset, data_dir)
    if dataset.verified:
        missing = [image.name for image in dataset.images if not (folder / image.name).is_file()]
        if missing and dataset.bundled:
            raise DatasetError(
                f"dataset {dataset.name!r}: {', '.join(missing)} missing from scikit-image's data folder {folder}; "
                "reinstall scikit-image"
            )
        if missing:
            _download(dataset, folder, missing, download, progress)
        _verify(dataset, folder)
        names = [image.name for image in dataset.images]
    else:
        names = _image_names(folder) if folder.is_dir() else []
        if len(names) < dataset.n_images:
            _download(dataset, folder, [], download, progress)
            names = _image_names(folder)
        if len(names) != dataset.n_images:
            inside = f" under {dataset.archive.member_dir!r}" if dataset.archive.member_dir else ""
            raise DatasetError(
                f"dataset {dataset.name!r}: {folder} holds {len(names)} image files, expected {dataset.n_images}: "
                f"exactly the image files{inside} in {dataset.archive.url}"
            )
        _verify(dataset, folder, names)
    items = [ImageItem(dataset.name, name, str(folder / name)) for name in names]
    checksums = {image.name: image.pixel_sha256 for image in dataset.images}
    return Dataset(dataset.name, dataset.description, items, checksums)


def _download(dataset: RegisteredDataset, folder: Path, missing: list[str], download: bool, progress: bool) -> None:
    """Fetch the ``missing`` images (all of an archive's when checksums are unknown) into ``folder``.

    Raises DatasetError: the one 'dataset missing' message when the files cannot
    be fetched, or the checksum / archive problem.
    """
    if not download:
        raise _missing_error(dataset, folder, missing, "downloads are disabled")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _missing_error(dataset, folder, missing, f"cannot create the folder ({exc})") from exc
    expected = {image.name: image for image in dataset.images}
    try:
        if dataset.base_url is not None:
            for name in missing:
                url = dataset.base_url + name
                fetch(
                    url, folder / name, sha256=expected[name].file_sha256, progress=progress,
                    check=lambda part, image=expected[name], url=url: _check_image(
                        dataset.name, image, part, f"{url} (downloaded to {part}, now deleted)"
                    ),
                )
        else:
            # the archive is kept only while incomplete (.part, resumable), never after extraction or refusal
            archive = folder / ".download" / "archive"
            fetch(dataset.archive.url, archive, sha256=dataset.archive.file_sha256, progress=progress)

            def check(name: str, part: Path) -> None:
                if name in expected:
                    _check_image(dataset.name, expected[name], part, f"{name} from {dataset.archive.url} (now deleted)")

            try:
                extract_images(archive, folder, member_dir=dataset.archive.member_dir, check=check)
            finally:
                archive.unlink()
                archive.parent.rmdir()
    except DownloadError as exc:
        raise _missing_error(dataset, folder, missing, str(exc)) from exc
    except (ChecksumError, ArchiveError) as exc:
        raise DatasetError(f"dataset {dataset.name!r}: {exc}") from exc


def _missing_error(dataset: RegisteredDataset, folder: Path, missing: list[str], reason: str) -> DatasetError:
    if dataset.verified:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        what = f"{len(missing)} of {dataset.n_images} images missing ({shown})"
    else:
        found = len(_image_names(folder)) if folder.is_dir() else 0
        what = f"{found} of {dataset.n_images} images found"
    if dataset.base_url is not None:
        source = f"download each from {dataset.base_url}<name> (e.g. {dataset.base_url}{dataset.images[0].name})"
    else:
        inside = f" from its folder {dataset.archive.member_dir!r}" if dataset.archive.member_dir else ""
        source = f"download {dataset.archive.url} and extract its image files{inside} flat into that folder"
    hint = f"; {dataset.offline_hint}" if dataset.offline_hint else ""
    return DatasetError(
        f"dataset {dataset.name!r} is not available: {what} in {folder} and it could not be downloaded ({reason}). "
        f"Put the image files in {folder}/: {source}{hint}. "
        f"Or point --data-dir / CODECBENCH_DATA at a folder that holds {dataset.name}/."
    )


# --- verification ---------------------------------------------------------------


def _check_image(dataset: str, image: RegisteredImage, path: Path, label: str) -> str:
    """Decode ``path`` and compare size and pixel SHA-256 with the registry; return the checksum."""
    try:
        rgb = load_rgb(path)
    except ImageError as exc:
        raise DatasetError(f"dataset {dataset!r}: {label}: {exc}") from exc
    height, width = rgb.shape[:2]
    if (width, height) != (image.width, image.height):
        raise DatasetError(f"dataset {dataset!r}: {label} is {width}×{height} px, expected {image.width}×{image.height}")
    actual = pixel_sha256(rgb)
    if actual != image.pixel_sha256:
        raise DatasetError(
            f"dataset {dataset!r}: {label}: pixel SHA-256 is {actual}, expected {image.pixel_sha256} "
            "(its pixels differ from the registered image; replace the file with a lossless copy, "
            "or delete it to download it again)"
        )
    return actual


def _verify(dataset: RegisteredDataset, folder: Path, names: list[str] | None = None) -> None:
    """Check every image (pixels against the registry, or decodability when checksums are unknown), with the cache."""
    cache = _VerifiedCache(folder / VERIFIED_CACHE, enabled=dataset.bundled is None)
    targets = [(image.name, image) for image in dataset.images] if dataset.verified else [(n, None) for n in names]
    for name, image in targets:
        path = folder / name
        cached = cache.lookup(name, path)
        if cached is not None and (image is None or cached == image.pixel_sha256):
            continue
        if image is not None:
            checksum = _check_image(dataset.name, image, path, str(path))
        else:
            try:
                checksum = pixel_sha256(load_rgb(path))
            except ImageError as exc:
                raise DatasetError(f"dataset {dataset.name!r}: {exc}") from exc
        cache.record(name, path, checksum)
    cache.save()


class _VerifiedCache:
    """``.verified.json``: image name -> {size, mtime_ns, pixel_sha256} of files that passed verification."""

    def __init__(self, path: Path, enabled: bool):
        self.path = path
        # a folder whose mode has no write bit is never written to, even by root (shared read-only data)
        self.enabled = enabled and path.parent.is_dir() and bool(path.parent.stat().st_mode & 0o222)
        self.changed = False
        self.entries: dict[str, dict] = {}
        if enabled and path.is_file():
            try:
                self.entries = json.loads(path.read_text(encoding="utf-8")).get("images", {})
            except (OSError, ValueError, AttributeError):
                self.entries = {}  # an unreadable cache only costs a re-verification

    def lookup(self, name: str, path: Path) -> str | None:
        """The cached pixel checksum if the file still has the size and mtime it had when verified."""
        entry = self.entries.get(name)
        if not isinstance(entry, dict):
            return None
        st = path.stat()
        if entry.get("size") == st.st_size and entry.get("mtime_ns") == st.st_mtime_ns:
            return entry.get("pixel_sha256")
        return None

    def record(self, name: str, path: Path, checksum: str) -> None:
        st = path.stat()
        self.entries[name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "pixel_sha256": checksum}
        self.changed = True

    def save(self) -> None:
        """Write the cache atomically; skipped silently where the folder is read-only."""
        if not (self.enabled and self.changed):
            return
        try:
            atomic_write_text(self.path, json.dumps({"images": self.entries}, indent=1, sort_keys=True))
        except OSError:  # a read-only folder: verification is simply repeated next time
            pass


# --- listing ----------------------------------------------------------------------


def list_datasets(data_dir: Path | None = None, *, registry: Path | None = None) -> list[DatasetStatus]:
    """Status of every registered dataset, without network and without decoding images."""
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    statuses = []
    for dataset in load_registry(registry).values():
        folder = dataset_folder(dataset, data_dir)
        if dataset.verified:
            names = [image.name for image in dataset.images if (folder / image.name).is_file()]
        else:
            names = _image_names(folder) if folder.is_dir() else []
        present = len(names) == dataset.n_images
        statuses.append(
            DatasetStatus(dataset.name, dataset.description, dataset.licence, dataset.n_images, present, folder,
                          _status_note(dataset, folder, names, present))
        )
    return statuses


def _status_note(dataset: RegisteredDataset, folder: Path, names: list[str], present: bool) -> str:
    source = "bundled with scikit-image" if dataset.bundled else (dataset.base_url or dataset.archive.url)
    if not present:
        return f"{len(names)} of {dataset.n_images} images present; source: {source}"
    if not dataset.verified:
        return "present, unverified (no published checksums: checked by count and decodability only)"
    if dataset.bundled:
        return "bundled with scikit-image; pixel checksums checked on each use"
    cache = _VerifiedCache(folder / VERIFIED_CACHE, enabled=dataset.bundled is None)
    expected = {image.name: image.pixel_sha256 for image in dataset.images}
    if all(cache.lookup(name, folder / name) == expected[name] for name in names):
        return "present, pixel checksums verified"
    return "present, pixel checksums checked when used"
