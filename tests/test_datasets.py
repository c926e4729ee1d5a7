"""Datasets: registry, downloads (from a local HTTP server only), verification, folders.

Every download in this file goes to a server on 127.0.0.1 started by the test,
with a temporary registry; the real registry is used only with
``download=False``. Expected checksums are computed here with hashlib over the
test's own arrays, independently of codecbench.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import re
import socket
import tarfile
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from codecbench.data.datasets import list_datasets, resolve_dataset
from codecbench.data.folders import default_data_dir
from codecbench.data.items import ImageItem
from codecbench.data.registry import load_registry
from codecbench.errors import DatasetError, ImageError

# --- a local HTTP server ------------------------------------------------------------


@dataclass
class ServerState:
    """What the server serves and how it misbehaves; ``log`` records (path, Range header, status)."""

    files: dict[str, bytes] = field(default_factory=dict)
    ignore_range: bool = False
    cuts: dict[str, list[int]] = field(default_factory=dict)  # path -> [bytes per response, responses to cut]
    log: list[tuple[str, str | None, int]] = field(default_factory=list)


class RangeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        state: ServerState = self.server.state
        data = state.files.get(self.path)
        requested = self.headers.get("Range")
        if data is None:
            state.log.append((self.path, requested, 404))
            self.send_error(404)
            return
        start, status = 0, 200
        if requested is not None and not state.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", requested).group(1))
            if start >= len(data):
                state.log.append((self.path, requested, 416))
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            status = 206
        body = data[start:]
        state.log.append((self.path, requested, status))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "none" if state.ignore_range else "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        cut = state.cuts.get(self.path)
        if cut is not None and cut[1] > 0:  # send part of the body, then drop the connection
            cut[1] -= 1
            self.wfile.write(body[: cut[0]])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    state = ServerState()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    httpd.state = state
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- a tiny dataset -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_images(natural_image) -> dict[str, np.ndarray]:
    """Three crops of a natural photograph, odd sizes, a few kB each as PNG."""
    return {
        "a.png": np.ascontiguousarray(natural_image[0:61, 0:83]),
        "b.png": np.ascontiguousarray(natural_image[200:259, 150:221]),
        "c.png": np.ascontiguousarray(natural_image[300:347, 300:377]),
    }


def png_bytes(image: np.ndarray, **options) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format="PNG", **options)
    return out.getvalue()


def image_entry(name: str, image: np.ndarray, file_bytes: bytes | None = None) -> dict:
    entry = {"name": name, "width": image.shape[1], "height": image.shape[0],
             "pixel_sha256": hashlib.sha256(image.tobytes()).hexdigest()}
    if file_bytes is not None:
        entry["file_sha256"] = hashlib.sha256(file_bytes).hexdigest()
    return entry


def write_registry(path: Path, datasets: dict[str, dict]) -> Path:
    common = {"description": "test set", "licence": "test licence", "homepage": "http://127.0.0.1/", "citation": "none"}
    path.write_text(yaml.safe_dump({"datasets": {name: {**common, **entry} for name, entry in datasets.items()}}))
    return path


@pytest.fixture
def tiny(tmp_path, server, tiny_images):
    """Serve the tiny images per file and register them as dataset 'tiny' (pixel + file checksums)."""
    for name, image in tiny_images.items():
        server.files[f"/img/{name}"] = png_bytes(image)
    entries = [image_entry(name, image, server.files[f"/img/{name}"]) for name, image in tiny_images.items()]
    registry = write_registry(tmp_path / "registry.yaml", {"tiny": {"base_url": f"{server.url}/img/", "images": entries}})
    return registry, tmp_path / "data"


def requests_for(server: ServerState, path: str) -> list[tuple[str | None, int]]:
    return [(requested, status) for logged, requested, status in server.log if logged == path]


# --- per-file downloads ---------------------------------------------------------------


def test_download_verifies_and_then_works_without_network(tiny, server, tiny_images):
    registry, data_dir = tiny
    dataset = resolve_dataset("tiny", data_dir, registry=registry, progress=False)
    assert [item.name for item in dataset.items] == ["a.png", "b.png", "c.png"]
    assert dataset.checksums == {n: hashlib.sha256(im.tobytes()).hexdigest() for n, im in tiny_images.items()}
    for item in dataset.items:
        assert Path(item.path) == data_dir / "tiny" / item.name
        np.testing.assert_array_equal(item.load(), tiny_images[item.name])
    assert sorted(p.name for p in (data_dir / "tiny").iterdir()) == [".verified.json", "a.png", "b.png", "c.png"]
    cached = json.loads((data_dir / "tiny" / ".verified.json").read_text())["images"]
    assert cached["b.png"]["pixel_sha256"] == dataset.checksums["b.png"]

    requests_before = len(server.log)
    again = resolve_dataset("tiny", data_dir, registry=registry, download=False)
    assert [item.name for item in again.items] == ["a.png", "b.png", "c.png"]
    assert len(server.log) == requests_before


def test_file_checksum_mismatch_leaves_no_file(tiny, server, tiny_images):
    registry, data_dir = tiny
    served = png_bytes(tiny_images["b.png"], compress_level=1)  # same pixels, other bytes than registered
    server.files["/img/b.png"] = served
    with pytest.raises(DatasetError) as info:
        resolve_dataset("tiny", data_dir, registry=registry, progress=False)
    message = str(info.value)
    assert "b.png" in message
    assert hashlib.sha256(served).hexdigest() in message
    assert load_registry(registry)["tiny"].images[1].file_sha256 in message
    assert not (data_dir / "tiny" / "b.png").exists()
    assert not (data_dir / "tiny" / "b.png.part").exists()


def test_corrupted_pixels_from_server_are_rejected(tmp_path, server, tiny_images):
    image = tiny_images["a.png"]
    changed = image.copy()
    changed[10, 10, 0] ^= 0x10
    server.files["/img/a.png"] = png_bytes(changed)
    registry = write_registry(tmp_path / "r.yaml", {"tiny": {"base_url": f"{server.url}/img/",
                                                            "images": [image_entry("a.png", image)]}})
    with pytest.raises(DatasetError) as info:
        resolve_dataset("tiny", tmp_path / "data", registry=registry, progress=False)
    message = str(info.value)
    assert f"{server.url}/img/a.png" in message
    assert hashlib.sha256(changed.tobytes()).hexdigest() in message
    assert hashlib.sha256(image.tobytes()).hexdigest() in message
    assert list((tmp_path / "data" / "tiny").iterdir()) == []


def test_interrupted_transfer_is_resumed_with_range(tiny, server):
    registry, data_dir = tiny
    server.cuts["/img/a.png"] = [1000, 1]
    resolve_dataset("tiny", data_dir, registry=registry, progress=False)
    assert requests_for(server, "/img/a.png") == [(None, 200), ("bytes=1000-", 206)]
    assert (data_dir / "tiny" / "a.png").read_bytes() == server.files["/img/a.png"]


def test_part_file_from_an_earlier_run_is_resumed(tiny, server):
    registry, data_dir = tiny
    (data_dir / "tiny").mkdir(parents=True)
    (data_dir / "tiny" / "c.png.part").write_bytes(server.files["/img/c.png"][:700])
    resolve_dataset("tiny", data_dir, registry=registry, progress=False)
    assert requests_for(server, "/img/c.png") == [("bytes=700-", 206)]
    assert (data_dir / "tiny" / "c.png").read_bytes() == server.files["/img/c.png"]
    assert not (data_dir / "tiny" / "c.png.part").exists()


def test_repeated_interruptions_keep_the_part_for_a_later_run(tiny, server):
    registry, data_dir = tiny
    server.cuts["/img/a.png"] = [500, 3]  # each of the 3 attempts gets 500 more bytes
    with pytest.raises(DatasetError) as info:
        resolve_dataset("tiny", data_dir, registry=registry, progress=False)
    assert "run again to resume" in str(info.value)
    assert (data_dir / "tiny" / "a.png.part").stat().st_size == 1500
    assert not (data_dir / "tiny" / "a.png").exists()

    resolve_dataset("tiny", data_dir, registry=registry, progress=False)
    assert [r for r, _ in requests_for(server, "/img/a.png")] == [None, "bytes=500-", "bytes=1000-", "bytes=1500-"]
    assert (data_dir / "tiny" / "a.png").read_bytes() == server.files["/img/a.png"]


def test_server_ignoring_range_restarts_from_zero(tiny, server):
    registry, data_dir = tiny
    server.ignore_range = True
    (data_dir / "tiny").mkdir(parents=True)
    (data_dir / "tiny" / "b.png.part").write_bytes(b"stale bytes from another file")
    resolve_dataset("tiny", data_dir, registry=registry, progress=False)
    assert requests_for(server, "/img/b.png") == [("bytes=29-", 200)]
    assert (data_dir / "tiny" / "b.png").read_bytes() == server.files["/img/b.png"]


def test_complete_part_file_is_not_downloaded_again(tiny, server):
    registry, data_dir = tiny
    (data_dir / "tiny").mkdir(parents=True)
    (data_dir / "tiny" / "a.png.part").write_bytes(server.files["/img/a.png"])
    resolve_dataset("tiny", data_dir, registry=registry, progress=False)
    assert requests_for(server, "/img/a.png") == [(f"bytes={len(server.files['/img/a.png'])}-", 416)]
    assert (data_dir / "tiny" / "a.png").read_bytes() == server.files["/img/a.png"]


def test_http_error_names_url_and_status(tiny, server):
    registry, data_dir = tiny
    del server.files["/img/c.png"]
    with pytest.raises(DatasetError, match=r"c\.png: HTTP 404"):
        resolve_dataset("tiny", data_dir, registry=registry, progress=False)


def test_offline_and_not_cached_gives_one_clear_error(tmp_path, closed_port_url, tiny_images):
    entries = [image_entry(name, image) for name, image in tiny_images.items()]
    registry = write_registry(tmp_path / "r.yaml", {"tiny": {"base_url": f"{closed_port_url}/img/", "images": entries,
                                                            "offline_hint": "copy lossless PNGs there"}})
    data_dir = tmp_path / "data"
    with pytest.raises(DatasetError) as info:
        resolve_dataset("tiny", data_dir, registry=registry, progress=False)
    message = str(info.value)
    assert "dataset 'tiny' is not available" in message
    assert "3 of 3 images missing" in message
    assert f"Put the image files in {data_dir / 'tiny'}/" in message
    assert f"{closed_port_url}/img/a.png" in message
    assert "copy lossless PNGs there" in message
    assert "cannot connect" in message


def test_download_disabled_gives_the_same_error_without_requests(tiny, server):
    registry, data_dir = tiny
    with pytest.raises(DatasetError, match="downloads are disabled"):
        resolve_dataset("tiny", data_dir, registry=registry, download=False)
    assert server.log == []


# --- local copies ---------------------------------------------------------------------


def write_local_copy(data_dir: Path, images: dict[str, np.ndarray], **png_options) -> Path:
    """Save ``images`` as PNG files in the new folder ``data_dir / "tiny"``, as a user would; return the folder."""
    folder = data_dir / "tiny"
    folder.mkdir(parents=True)
    for name, image in images.items():
        Image.fromarray(image).save(folder / name, **png_options)
    return folder


def test_lossless_copy_is_accepted_without_network(tiny, server, tiny_images):
    registry, data_dir = tiny
    folder = write_local_copy(data_dir, tiny_images, compress_level=9, optimize=True)  # byte-different re-encoding
    for name in tiny_images:
        assert (folder / name).read_bytes() != server.files[f"/img/{name}"]
    dataset = resolve_dataset("tiny", data_dir, registry=registry, progress=False)
    assert len(dataset.items) == 3
    assert server.log == []


def test_changed_pixel_in_local_copy_is_rejected_and_kept(tiny, server, tiny_images):
    registry, data_dir = tiny
    folder = write_local_copy(data_dir, tiny_images)
    changed = tiny_images["c.png"].copy()
    changed[-1, -1, 2] ^= 1
    Image.fromarray(changed).save(folder / "c.png")
    with pytest.raises(DatasetError) as info:
        resolve_dataset("tiny", data_dir, registry=registry, progress=False)
    message = str(info.value)
    assert str(folder / "c.png") in message
    assert hashlib.sha256(changed.tobytes()).hexdigest() in message
    assert hashlib.sha256(tiny_images["c.png"].tobytes()).hexdigest() in message
    assert (folder / "c.png").exists()  # the user's file is never deleted
    assert server.log == []


def test_file_changed_after_verification_is_checked_again(tiny, tiny_images):
    registry, data_dir = tiny
    resolve_dataset("tiny", data_dir, registry=registry, progress=False)
    changed = tiny_images["a.png"].copy()
    changed[0, 0] = 255 - changed[0, 0]
    Image.fromarray(changed).save(data_dir / "tiny" / "a.png")
    with pytest.raises(DatasetError, match="pixel SHA-256"):
        resolve_dataset("tiny", data_dir, registry=registry, download=False)


def test_wrong_size_is_named(tiny, tiny_images):
    registry, data_dir = tiny
    folder = write_local_copy(data_dir, tiny_images)
    Image.fromarray(tiny_images["a.png"][:, :-1]).save(folder / "a.png")
    with pytest.raises(DatasetError, match=r"a\.png is 82×61 px, expected 83×61"):
        resolve_dataset("tiny", data_dir, registry=registry, download=False)


# --- archives -----------------------------------------------------------------------


def zip_bytes(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    return out.getvalue()


def tar_bytes(members: list[tarfile.TarInfo | tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                archive.addfile(info, io.BytesIO(member[1]))
    return out.getvalue()


def archive_registry(tmp_path: Path, url: str, entry: dict) -> Path:
    return write_registry(tmp_path / "r.yaml", {"packed": {"archive": {"url": url, "member_dir": "set"}, **entry}})


def test_zip_archive_extracts_only_the_member_folder(tmp_path, server, tiny_images):
    members = {f"pack/set/{name}": png_bytes(image) for name, image in tiny_images.items()}
    members["pack/other/x.png"] = png_bytes(tiny_images["a.png"])
    members["__MACOSX/pack/set/._a.png"] = b"resource fork"
    members["pack/set/readme.txt"] = b"not an image"
    server.files["/packed.zip"] = zip_bytes(members)
    entries = [image_entry(name, image) for name, image in tiny_images.items()]
    registry = archive_registry(tmp_path, f"{server.url}/packed.zip", {"images": entries})
    data_dir = tmp_path / "data"
    dataset = resolve_dataset("packed", data_dir, registry=registry, progress=False)
    assert [item.name for item in dataset.items] == ["a.png", "b.png", "c.png"]
    assert sorted(p.name for p in (data_dir / "packed").iterdir()) == [".verified.json", "a.png", "b.png", "c.png"]


def test_tar_archive_without_checksums_is_unverified(tmp_path, server, tiny_images):
    server.files["/packed.tar.gz"] = tar_bytes([(f"top/set/{n}", png_bytes(im)) for n, im in tiny_images.items()])
    registry = archive_registry(tmp_path, f"{server.url}/packed.tar.gz", {"checksums": "unknown", "n_images": 3})
    dataset = resolve_dataset("packed", tmp_path / "data", registry=registry, progress=False)
    assert [item.name for item in dataset.items] == ["a.png", "b.png", "c.png"]
    assert dataset.checksums == {}
    np.testing.assert_array_equal(dataset.items[1].load(), tiny_images["b.png"])


def test_archive_with_wrong_image_count_is_an_error(tmp_path, server, tiny_images):
    server.files["/packed.zip"] = zip_bytes({f"set/{n}": png_bytes(im) for n, im in tiny_images.items()})
    registry = archive_registry(tmp_path, f"{server.url}/packed.zip", {"checksums": "unknown", "n_images": 4})
    with pytest.raises(DatasetError, match="holds 3 image files, expected 4"):
        resolve_dataset("packed", tmp_path / "data", registry=registry, progress=False)


def test_unverified_archive_with_corrupt_image_is_an_error(tmp_path, server, tiny_images):
    server.files["/packed.zip"] = zip_bytes({"set/a.png": png_bytes(tiny_images["a.png"]), "set/b.png": b"garbage"})
    registry = archive_registry(tmp_path, f"{server.url}/packed.zip", {"checksums": "unknown", "n_images": 2})
    with pytest.raises(DatasetError, match=r"b\.png: cannot be decoded"):
        resolve_dataset("packed", tmp_path / "data", registry=registry, progress=False)


def _symlink(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


@pytest.mark.parametrize(
    ("suffix", "build", "culprit"),
    [
        ("zip", lambda png: zip_bytes({"set/a.png": png, "../evil.txt": b"x"}), "../evil.txt"),
        ("zip", lambda png: zip_bytes({"set/a.png": png, "set/../../evil.txt": b"x"}), "set/../../evil.txt"),
        ("zip", lambda png: zip_bytes({"set/a.png": png, "/tmp/evil.txt": b"x"}), "/tmp/evil.txt"),
        ("tar.gz", lambda png: tar_bytes([("set/a.png", png), ("../evil.txt", b"x")]), "../evil.txt"),
        ("tar.gz", lambda png: tar_bytes([("set/a.png", png), ("/tmp/evil.txt", b"x")]), "/tmp/evil.txt"),
        ("tar.gz", lambda png: tar_bytes([("set/a.png", png), _symlink("set/link", "../../outside")]), "set/link"),
        ("tar.gz", lambda png: tar_bytes([("set/a.png", png), _symlink("set/abs", "/etc/passwd")]), "set/abs"),
        ("tar.gz", lambda png: tar_bytes([("set/a.png", png), _symlink("hard", "../x", tarfile.LNKTYPE)]), "hard"),
    ],
)
def test_archive_member_escaping_the_folder_is_refused(tmp_path, server, tiny_images, suffix, build, culprit):
    server.files[f"/evil.{suffix}"] = build(png_bytes(tiny_images["a.png"]))
    registry = archive_registry(tmp_path, f"{server.url}/evil.{suffix}", {"images": [image_entry("a.png", tiny_images["a.png"])]})
    data_dir = tmp_path / "data"
    with pytest.raises(DatasetError) as info:
        resolve_dataset("packed", data_dir, registry=registry, progress=False)
    message = str(info.value)
    assert repr(culprit) in message and "outside the target folder" in message
    assert sorted(p.name for p in (data_dir / "packed").iterdir()) == []  # nothing extracted, archive deleted
    assert not (tmp_path / "evil.txt").exists() and not (data_dir / "evil.txt").exists()


def test_symlink_inside_the_folder_is_allowed_but_not_extracted(tmp_path, server, tiny_images):
    png = png_bytes(tiny_images["a.png"])
    server.files["/ok.tar.gz"] = tar_bytes([("set/a.png", png), _symlink("set/alias.png", "a.png")])
    registry = archive_registry(tmp_path, f"{server.url}/ok.tar.gz", {"images": [image_entry("a.png", tiny_images["a.png"])]})
    resolve_dataset("packed", tmp_path / "data", registry=registry, progress=False)
    assert not (tmp_path / "data" / "packed" / "alias.png").exists()


def test_html_page_instead_of_archive_is_a_clear_error(tmp_path, server):
    server.files["/page.zip"] = b"<!DOCTYPE html><html>mirror list</html>"
    registry = archive_registry(tmp_path, f"{server.url}/page.zip", {"checksums": "unknown", "n_images": 1})
    with pytest.raises(DatasetError, match="neither a zip nor a tar archive.*DOCTYPE"):
        resolve_dataset("packed", tmp_path / "data", registry=registry, progress=False)


def test_offline_archive_dataset_names_folder_and_url(tmp_path, closed_port_url):
    url = f"{closed_port_url}/set.zip"
    registry = archive_registry(tmp_path, url, {"checksums": "unknown", "n_images": 5})
    with pytest.raises(DatasetError) as info:
        resolve_dataset("packed", tmp_path / "data", registry=registry, progress=False)
    message = str(info.value)
    assert "0 of 5 images found" in message
    assert f"download {url} and extract its image files from its folder 'set'" in message
    assert str(tmp_path / "data" / "packed") in message


# --- folders -------------------------------------------------------------------------


def test_folder_dataset_lists_images_sorted_and_fails_late_on_a_corrupt_one(tmp_path, tiny_images):
    folder = tmp_path / "mine"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(tiny_images["a.png"]).save(folder / "b.png")
    Image.fromarray(tiny_images["b.png"]).save(folder / "a.jpg")
    Image.fromarray(tiny_images["c.png"]).save(folder / "C.PNG")
    Image.fromarray(tiny_images["c.png"]).save(folder / "sub" / "deeper.png")
    Image.fromarray(tiny_images["c.png"]).save(folder / ".hidden.png")
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    dataset = resolve_dataset(str(folder), tmp_path / "data")
    assert [item.name for item in dataset.items] == ["C.PNG", "a.jpg", "b.png", "broken.png"]
    assert {item.dataset for item in dataset.items} == {str(folder)}
    assert dataset.checksums == {}
    np.testing.assert_array_equal(dataset.items[2].load(), tiny_images["a.png"])
    with pytest.raises(ImageError, match=re.escape(str(folder / "broken.png"))):
        dataset.items[3].load()


def test_empty_folder_and_unknown_spec_are_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(DatasetError, match="holds no image files"):
        resolve_dataset(str(tmp_path / "empty"), tmp_path)
    with pytest.raises(DatasetError, match="unknown dataset 'no-such-set'.*kodak"):
        resolve_dataset("no-such-set", tmp_path)


# --- registered datasets ---------------------------------------------------------------


def test_sample_resolves_without_network_and_matches_independent_checksums(tmp_path):
    from skimage.data._registry import registry as skimage_file_checksums

    dataset = resolve_dataset("sample", tmp_path / "data", download=False)
    assert [item.name for item in dataset.items] == ["astronaut.png", "chelsea.png", "coffee.png"]
    for item in dataset.items:
        with Image.open(item.path) as image:
            pixels = np.asarray(image.convert("RGB"))
        assert hashlib.sha256(pixels.tobytes()).hexdigest() == dataset.checksums[item.name]
    for image in load_registry()["sample"].images:
        assert image.file_sha256 == skimage_file_checksums[f"data/{image.name}"]
    assert not (tmp_path / "data").exists()  # nothing written


def test_kodak_from_shared_data_dir_is_verified(shared_dir, monkeypatch):
    data_dir = shared_dir / "datasets"
    before = sorted(p.name for p in (data_dir / "kodak").iterdir())
    monkeypatch.setenv("CODECBENCH_DATA", str(data_dir))
    dataset = resolve_dataset("kodak", download=False)  # the data dir comes from CODECBENCH_DATA
    assert [item.name for item in dataset.items] == [f"kodim{i:02d}.png" for i in range(1, 25)]
    assert len(set(dataset.checksums.values())) == 24
    portrait = {4, 9, 10, 17, 18, 19}  # per the Kodak README: 6 portrait 512×768, 18 landscape 768×512
    for i, image in enumerate(load_registry()["kodak"].images, start=1):
        assert (image.width, image.height) == ((512, 768) if i in portrait else (768, 512))
    with Image.open(dataset.items[6].path) as kodim07:
        assert hashlib.sha256(np.asarray(kodim07.convert("RGB")).tobytes()).hexdigest() == dataset.checksums["kodim07.png"]
    assert sorted(p.name for p in (data_dir / "kodak").iterdir()) == before  # read-only data left untouched


def test_list_datasets_shows_present_and_absent(tiny, tmp_path):
    registry, data_dir = tiny
    (before,) = list_datasets(data_dir, registry=registry)
    assert (before.name, before.n_images, before.present, before.where) == ("tiny", 3, False, data_dir / "tiny")
    assert "0 of 3 images present" in before.note
    resolve_dataset("tiny", data_dir, registry=registry, progress=False)
    (after,) = list_datasets(data_dir, registry=registry)
    assert after.present and after.note == "present, pixel checksums verified"

    statuses = {status.name: status for status in list_datasets(tmp_path / "empty")}
    assert set(statuses) == {"sample", "kodak", "clic2020-professional-valid", "clic2020-mobile-valid", "tecnick"}
    assert statuses["sample"].present and statuses["sample"].n_images == 3
    assert not statuses["kodak"].present and statuses["kodak"].where == tmp_path / "empty" / "kodak"
    assert statuses["tecnick"].n_images == 100 and not statuses["tecnick"].present


def test_default_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CODECBENCH_DATA", str(tmp_path / "custom"))
    assert default_data_dir() == tmp_path / "custom"
    monkeypatch.delenv("CODECBENCH_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / ".cache" / "codecbench"


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"base_url": "http://127.0.0.1/", "images": [{"name": "../a.png", "width": 1, "height": 1,
                                                        "pixel_sha256": "0" * 64}]}, "plain file name"),
        ({"base_url": "http://127.0.0.1/", "images": [{"name": "a.png", "width": 1, "height": 1,
                                                        "pixel_sha256": "xyz"}]}, "not a hex SHA-256"),
        ({"images": []}, "exactly one of bundled, base_url, archive"),
        ({"archive": {"url": "http://127.0.0.1/a.zip"}, "checksums": "unknown"}, "needs n_images"),
    ],
)
def test_malformed_registry_is_named(tmp_path, entry, reason):
    registry = write_registry(tmp_path / "bad.yaml", {"broken": entry})
    with pytest.raises(DatasetError, match=re.escape(str(registry)) + ".*" + re.escape(reason)):
        load_registry(registry)


def test_registry_symlink_at_repository_root_is_the_packaged_registry():
    root = Path(__file__).resolve().parents[1]
    assert (root / "datasets.yaml").resolve() == (root / "codecbench" / "data" / "datasets.yaml").resolve()


# --- items ------------------------------------------------------------------------------


def test_array_row_items_load_and_pickle(tmp_path, tiny_images):
    patches = np.stack([tiny_images["a.png"][:32, :32], tiny_images["b.png"][:32, :32]])
    path = tmp_path / "patches.npy"
    np.save(path, patches)
    item = ImageItem("bd:test", "000001", str(path), index=1)
    assert pickle.loads(pickle.dumps(item)) == item
    np.testing.assert_array_equal(item.load(), patches[1])
    with pytest.raises(ImageError, match="only 2 rows"):
        ImageItem("bd:test", "000002", str(path), index=2).load()
    np.save(path, patches[:, :, :, 0])
    with pytest.raises(ImageError, match=r"expected N×H×W×3 uint8"):
        item.load()


def test_a_broken_registry_is_a_one_line_error_naming_the_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from codecbench.cli.datasets import datasets as datasets_cli
    from codecbench.data import registry

    broken = tmp_path / "datasets.yaml"
    broken.write_text("datasets:\n  sample:\n    description: x\n      licence: indented too far\n")
    monkeypatch.setattr(registry, "REGISTRY_PATH", broken)
    result = CliRunner().invoke(datasets_cli, ["--data-dir", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1] == (f"Error: dataset registry {broken}:4: not valid YAML "
                                                      "(mapping values are not allowed here)")
    broken.write_text("datasets:\n  mine:\n    description: x\n")  # valid YAML, not a valid entry
    result = CliRunner().invoke(datasets_cli, ["--data-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith(
        f"Error: dataset registry {broken}:2: dataset 'mine': missing text field")


def test_unknown_dataset_is_a_usage_error_with_a_suggestion(tmp_path):
    from codecbench.errors import UnknownDatasetError

    with pytest.raises(UnknownDatasetError, match=r"unknown dataset 'kodac' \(did you mean kodak\?\)") as caught:
        resolve_dataset("kodac", tmp_path)
    assert caught.value.exit_code == 2 and isinstance(caught.value, DatasetError)


def test_a_symlink_leading_out_of_a_folder_is_followed_with_a_warning(tmp_path):
    outside = tmp_path / "elsewhere.png"
    Image.fromarray(np.full((16, 16, 3), 7, np.uint8)).save(outside)
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(np.full((16, 16, 3), 9, np.uint8)).save(folder / "a.png")
    (folder / "b.png").symlink_to(outside)
    (folder / "c.png").symlink_to(folder / "a.png")  # inside: no warning
    dataset = resolve_dataset(str(folder))
    assert [item.name for item in dataset.items] == ["a.png", "b.png", "c.png"]
    assert dataset.items[1].load()[0, 0, 0] == 7
    assert dataset.warnings == [f"folder {folder}: followed symlink(s) that lead outside it: "
                                f"{folder / 'b.png'} -> {outside}"]
