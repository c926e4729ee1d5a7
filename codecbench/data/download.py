"""Fetching files over HTTP(S) with urllib, and extracting image archives safely.

Conventions:

- A download goes to ``<dest>.part``, is resumed from that file's size with an
  HTTP ``Range: bytes=N-`` request (a server that ignores Range and answers 200
  makes it start again from byte 0), is verified (file SHA-256 and/or a caller's
  check), and only then renamed atomically to ``<dest>``: a half-written or
  unverified file never carries the final name.
- An interrupted transfer that made progress is resumed up to ``attempts``
  times in the same call; after that the ``.part`` is kept so a later call
  resumes it. A failed verification deletes the ``.part``.
- Archives (zip, tar, tar.gz/bz2/xz) are checked member by member before
  anything is written: a member whose path would resolve outside the target
  folder (absolute path, ``..``, a symlink or hardlink pointing outside) makes
  the whole archive refused. Only regular image files (the image-folder rule
  of :mod:`codecbench.data.folders`, outside macOS ``__MACOSX/`` folders) are
  extracted, flat (folder names dropped), each through ``.part`` + check + rename.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import stat
import sys
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen

from tqdm import tqdm

from codecbench import __version__
from codecbench.data.folders import is_image_name
from codecbench.data.images import file_sha256
from codecbench.errors import ArchiveError, ChecksumError, DownloadError

USER_AGENT = f"codecbench/{__version__} (urllib)"
CHUNK_BYTES = 1 << 16
TIMEOUT_S = 30.0  # connect and per-read socket timeout, seconds

Check = Callable[[Path], None]  # raises if the file at the path is not acceptable


def part_path(dest: Path) -> Path:
    """Where :func:`fetch` keeps the incomplete download of ``dest``."""
    return dest.with_name(dest.name + ".part")


def fetch(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    check: Check | None = None,
    progress: bool = True,
    timeout: float = TIMEOUT_S,
    attempts: int = 3,
) -> None:
    """Download ``url`` to ``dest`` (resumable, verified, atomic; see the module docstring).

    ``sha256`` is the expected hex SHA-256 of the file's bytes; ``check`` is called
    on the complete ``.part`` file and raises to reject it. Raises
    :class:`DownloadError` (network, HTTP), :class:`ChecksumError`, or whatever
    ``check`` raises; in the last two cases the ``.part`` is deleted.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    for attempt in range(1, attempts + 1):
        size_before = _size(part)
        interruption = _transfer(url, part, dest.name, progress, timeout)
        if interruption is None:
            break
        size_after = _size(part)
        if size_after <= size_before or attempt == attempts:
            raise DownloadError(
                f"{url}: transfer interrupted ({interruption}); {size_after} bytes kept in {part}, run again to resume"
            )
    try:
        if sha256 is not None:
            actual = file_sha256(part)
            if actual != sha256.lower():
                raise ChecksumError(
                    f"{dest.name} from {url}: file SHA-256 is {actual}, expected {sha256.lower()}; the download was deleted"
                )
        if check is not None:
            check(part)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _transfer(url: str, part: Path, label: str, progress: bool, timeout: float) -> str | None:
    """One HTTP request appending to (or restarting) ``part``; returns why a short transfer stopped, None when complete."""
    offset = _size(part)
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as exc:
        if exc.code == 416 and offset:  # Range not satisfiable: the .part is complete, or stale
            total = _content_range(exc.headers.get("Content-Range", ""))[2]
            if total == offset:
                return None
            part.unlink()
            return _transfer(url, part, label, progress, timeout)
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (URLError, OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, URLError) else exc
        raise DownloadError(f"{url}: cannot connect ({reason})") from None
    with response:
        if response.status == 206:
            start, _, total = _content_range(response.headers.get("Content-Range", ""))
            if start != offset:  # the server sent another range than asked: start again cleanly
                response.close()
                part.unlink()
                return _transfer(url, part, label, progress, timeout)
            mode = "ab"
        else:  # 200: the server ignored Range (or none was sent) and sends the whole file
            offset, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None and length.isdigit() else None
        with open(part, mode) as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=label, file=sys.stderr, disable=not progress, leave=False,
        ) as bar:
            while True:
                try:
                    block = response.read(CHUNK_BYTES)
                except (OSError, http.client.HTTPException) as exc:
                    return f"{type(exc).__name__}: {exc}"
                if not block:
                    break
                out.write(block)
                bar.update(len(block))
    received = _size(part)
    if total is not None and received != total:
        return f"received {received} of {total} bytes"
    return None


def _content_range(value: str) -> tuple[int | None, int | None, int | None]:
    """``bytes START-END/TOTAL`` or ``bytes */TOTAL`` → (start, end, total); None where absent or ``*``."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*", value)
    if match is None:
        return None, None, None
    start, end, total = (int(g) if g is not None and g != "*" else None for g in match.groups())
    return start, end, total


# --- archives -----------------------------------------------------------------


def _escapes(name: str) -> bool:
    """Whether an archive path, resolved lexically under the target folder, would leave it."""
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).drive or name.startswith("\\"):
        return True
    depth = 0
    for piece in name.replace("\\", "/").split("/"):
        if piece == "..":
            depth -= 1
            if depth < 0:
                return True
        elif piece not in ("", "."):
            depth += 1
    return False


def _link_escapes(member: str, target: str, *, relative_to_member: bool) -> bool:
    """Whether a link's target resolves outside the folder (symlinks: relative to the link's folder)."""
    if PurePosixPath(target).is_absolute() or PureWindowsPath(target).drive:
        return True
    base = str(PurePosixPath(member.replace("\\", "/")).parent) if relative_to_member else ""
    return _escapes(f"{base}/{target}" if base not in ("", ".") else target)


class _Member:
    """A regular file in an archive: its path and how to open it."""

    def __init__(self, name: str, opener: Callable[[], IO[bytes]]):
        self.name = name
        self.open = opener


def _zip_members(archive: Path, zf: zipfile.ZipFile) -> Iterator[_Member]:
    for info in zf.infolist():
        if _escapes(info.filename):
            raise ArchiveError(f"{archive}: member {info.filename!r} would be written outside the target folder; "
                               "archive refused")
        if stat.S_ISLNK(info.external_attr >> 16):
            target = zf.read(info).decode("utf-8", "replace")
            if _link_escapes(info.filename, target, relative_to_member=True):
                raise ArchiveError(f"{archive}: symlink {info.filename!r} -> {target!r} points outside the target "
                                   "folder; archive refused")
            continue
        if not info.is_dir():
            yield _Member(info.filename, lambda info=info: zf.open(info))


def _tar_members(archive: Path, tf: tarfile.TarFile) -> Iterator[_Member]:
    for info in tf.getmembers():
        if _escapes(info.name):
            raise ArchiveError(f"{archive}: member {info.name!r} would be written outside the target folder; archive refused")
        if info.issym() or info.islnk():
            kind = "symlink" if info.issym() else "hardlink"
            if _link_escapes(info.name, info.linkname, relative_to_member=info.issym()):
                raise ArchiveError(f"{archive}: {kind} {info.name!r} -> {info.linkname!r} points outside the target "
                                   "folder; archive refused")
            continue
        if info.isfile():
            yield _Member(info.name, lambda info=info: tf.extractfile(info))


def _is_image_member(name: str, member_dir: str | None) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    if not is_image_name(path.name) or "__MACOSX" in path.parts:
        return False  # not an image, or macOS resource-fork debris (._name, __MACOSX/)
    if member_dir is None:
        return True
    wanted = PurePosixPath(member_dir).parts
    folder = path.parent.parts
    return len(folder) >= len(wanted) and folder[len(folder) - len(wanted):] == wanted


def extract_images(
    archive: Path,
    dest: Path,
    *,
    member_dir: str | None,
    check: Callable[[str, Path], None] | None = None,
) -> list[str]:
    """Extract the archive's image files flat into ``dest``; return the names written.

    Image files are regular members that are images by the image-folder rule
    and, when ``member_dir`` is given, whose folder path ends with
    ``member_dir``. Files already in ``dest`` are left as they are.
    ``check(name, part_path)`` may reject an extracted file (its ``.part`` is then deleted).
    Raises :class:`ArchiveError` for unreadable, non-archive or unsafe archives.
    """
    if zipfile.is_zipfile(archive):
        opener, members = zipfile.ZipFile, _zip_members
    elif _is_tar(archive):
        opener, members = tarfile.open, _tar_members
    else:
        with open(archive, "rb") as f:
            head = f.read(32)
        raise ArchiveError(f"{archive}: neither a zip nor a tar archive (it starts with {head!r})")
    try:
        with opener(archive) as handle:
            all_members = list(members(archive, handle))  # every member is checked before anything is written
            chosen = [m for m in all_members if _is_image_member(m.name, member_dir)]
            names = [PurePosixPath(m.name.replace("\\", "/")).name for m in chosen]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ArchiveError(f"{archive}: several members are named {', '.join(duplicates)}; cannot extract "
                                   "them into one folder")
            written = []
            for member, name in zip(chosen, names):
                target = dest / name
                if target.exists():
                    continue
                part = part_path(target)
                with member.open() as source, open(part, "wb") as out:
                    shutil.copyfileobj(source, out, CHUNK_BYTES)
                try:
                    if check is not None:
                        check(name, part)
                except BaseException:
                    part.unlink(missing_ok=True)
                    raise
                os.replace(part, target)
                written.append(name)
    except (zipfile.BadZipFile, zlib.error, tarfile.TarError, EOFError, OSError) as exc:  # corrupt members, disk errors
        raise ArchiveError(f"{archive}: extraction into {dest} failed ({type(exc).__name__}: {exc})") from exc
    return written


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False
