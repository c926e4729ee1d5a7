""""BD" patch sets: image patches banded by entropy (design note ``bd_patch_sets.md``).

Building (:func:`build_bd`)
    Every image of a source folder (the image-folder rule of
    :mod:`codecbench.data.folders`: suffix in
    :data:`codecbench.data.images.IMAGE_SUFFIXES`, case-insensitive, not
    recursive, no hidden files, sorted by file name; other files such as
    READMEs are ignored) is read with
    :func:`codecbench.data.images.load_rgb` and cut into non-overlapping
    ``patch``×``patch`` patches on a grid aligned with the top-left corner; the
    right and bottom remainders (width mod patch, height mod patch) are
    dropped. An image that cannot be read is reported (``UserWarning``),
    skipped and listed in the manifest. The pool is every patch, in *pool
    order* (source index, then raster patch index). With ``max_patches`` the
    pool is first reduced to a seeded uniform random subsample of that size
    (without replacement, kept in pool order); banding happens after that.

Entropy (measure ``luma601_hist256``)
    Luma is BT.601 ``Y = 0.299 R + 0.587 G + 0.114 B`` on 8-bit values, rounded
    half up to an integer in 0..255, computed exactly in integers as
    ``Y = (299 R + 587 G + 114 B + 500) // 1000``. The entropy is the Shannon
    entropy in bits of the patch's 256-bin histogram of Y,
    ``H = -Σ p log₂ p`` with ``0 log 0 = 0`` (0 for a flat patch, at most
    8 bits). It is summed over the *sorted* bin counts, so two patches with the
    same count multiset get bit-identical entropies.

Banding
    With N patches in the pool, every set has ``k = N // 5`` patches (20 %,
    rounded down). Patches are ranked by (entropy, source index, patch index)
    ascending, a strict order that settles ties at the boundaries:

    - BD0: ranks ``[0, k)``, the lowest 20 %;
    - BD1: ranks ``[2N // 5, 2N // 5 + k)``, the 40th–60th percentiles;
    - BD2: ranks ``[N - k, N)``, the highest 20 %;
    - BD3: ``k`` patches drawn uniformly without replacement from the pool;
    - BD4: ``k`` patches drawn uniformly without replacement from the upper
      half, ranks ``[N - N // 2, N)``.

    The random draws (subsample, BD3, BD4) use independent NumPy PCG64
    streams seeded with ``[seed, 0]``, ``[seed, 1]`` and ``[seed, 2]``. Inside
    each set, patches are stored in pool order, not by rank. The same inputs,
    seed and NumPy version give byte-identical output files.

Output folder
    ``BDn.npy`` (k×patch×patch×3 uint8 RGB), ``BDn_index.npy`` (k records
    ``source`` (uint32, position in the manifest's ``sources``), ``y``, ``x``
    (uint32, top-left pixel of the patch in its source), ``entropy`` (float64,
    bits)) and ``manifest.json``, written last; each file is written to a
    temporary name and renamed into place.

Dataset specs (:func:`resolve_bd`)
    ``bd:SET[@DIR][?n=COUNT[&seed=SEED]]`` — SET is BD0…BD4; DIR is the folder
    holding the built sets (default ``<data dir>/bd``); ``n`` picks a seeded
    uniform random subset of ``COUNT`` patches (``seed`` defaults to 0), listed
    in row order; DIR must not contain ``?``. Item names are ``SET/{row:06d}``
    (the row in ``SET.npy``), the same with or without ``n``. Examples:
    ``bd:BD2``, ``bd:BD0@/data/bd_clic``,
    ``bd:BD3?n=500&seed=1``.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

import codecbench
from codecbench.data.folders import default_data_dir, image_files
from codecbench.data.images import IMAGE_SUFFIXES, file_sha256, load_rgb, pixel_sha256
from codecbench.data.items import Dataset, ImageItem
from codecbench.errors import DatasetError, ImageError, UsageError
from codecbench.files import atomic_write, atomic_write_text

SET_NAMES = ("BD0", "BD1", "BD2", "BD3", "BD4")
SET_DEFINITIONS = {
    "BD0": "lowest 20% by entropy: ranks [0, k)",
    "BD1": "40th-60th entropy percentiles: ranks [2N//5, 2N//5 + k)",
    "BD2": "highest 20% by entropy: ranks [N - k, N)",
    "BD3": "k patches drawn uniformly at random from the whole pool",
    "BD4": "k patches drawn uniformly at random from the upper half by entropy: ranks [N - N//2, N)",
}
INDEX_DTYPE = np.dtype([("source", "<u4"), ("y", "<u4"), ("x", "<u4"), ("entropy", "<f8")])
MANIFEST_NAME = "manifest.json"
SPEC_PREFIX = "bd:"

# Independent random streams: default_rng([seed, stream]).
_STREAM_SUBSAMPLE, _STREAM_BD3, _STREAM_BD4 = 0, 1, 2


def luma601(patches: np.ndarray) -> np.ndarray:
    """BT.601 luma of uint8 RGB (…×3), rounded half up, as uint8: ``(299R + 587G + 114B + 500) // 1000``."""
    rgb = patches.astype(np.uint32)
    return ((299 * rgb[..., 0] + 587 * rgb[..., 1] + 114 * rgb[..., 2] + 500) // 1000).astype(np.uint8)


def histogram_entropy(values: np.ndarray) -> np.ndarray:
    """Shannon entropy in bits of the 256-bin histogram of each row of ``values`` (n×m uint8).

    ``H = -Σ p log₂ p`` over non-empty bins, summed over the sorted counts.
    """
    if values.dtype != np.uint8 or values.ndim != 2:
        raise ValueError(f"expected an n×m uint8 array, got {values.shape} {values.dtype}")
    rows, size = values.shape
    offsets = (np.arange(rows, dtype=np.int64) * 256)[:, None]
    counts = np.bincount((values + offsets).ravel(), minlength=rows * 256).reshape(rows, 256)
    counts.sort(axis=1)
    p = counts / size
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(counts > 0, p * np.log2(p), 0.0)
    return -terms.sum(axis=1) + 0.0  # + 0.0 turns -0.0 (flat patches) into 0.0


def luma601_hist256(patches: np.ndarray) -> np.ndarray:
    """Entropy (bits) of the 256-bin BT.601 luma histogram of each patch of n×P×P×3 uint8 RGB."""
    count, height, width = patches.shape[:3]
    return histogram_entropy(luma601(patches).reshape(count, height * width))


ENTROPY_MEASURES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], str]] = {
    "luma601_hist256": (
        luma601_hist256,
        "Shannon entropy in bits, H = -sum p*log2(p), of the 256-bin histogram of the patch's 8-bit "
        "BT.601 luma Y = (299*R + 587*G + 114*B + 500) // 1000 (0.299R+0.587G+0.114B rounded half up)",
    ),
}


def cut_patches(image: np.ndarray, patch: int) -> np.ndarray:
    """Non-overlapping patch×patch tiles of an H×W×3 image in raster order (top-left grid, remainder dropped)."""
    rows, cols = image.shape[0] // patch, image.shape[1] // patch
    tiles = image[: rows * patch, : cols * patch].reshape(rows, patch, cols, patch, 3)
    return tiles.transpose(0, 2, 1, 3, 4).reshape(rows * cols, patch, patch, 3)


@dataclass
class _Source:
    file: str
    width: int
    height: int
    file_sha256: str
    pixel_sha256: str
    patches: int


def _source_files(source: Path) -> list[Path]:
    """The image files of a BD source folder (the image-folder rule); UsageError if there are none."""
    if not source.is_dir():
        raise UsageError(f"BD source {source}: not a folder")
    files = image_files(source)
    if not files:
        raise UsageError(f"BD source {source}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _temp_path(path: Path) -> Path:
    """A hidden sibling of ``path`` to write into before renaming it over ``path``."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _save_npy(path: Path, array: np.ndarray) -> None:
    def write(temp: Path) -> None:
        with open(temp, "wb") as f:
            np.save(f, array, allow_pickle=False)

    atomic_write(path, write)


def _draw(seed: int, stream: int, population: int, count: int) -> np.ndarray:
    """``count`` distinct positions in ``range(population)``, uniformly at random, ascending."""
    return np.sort(np.random.default_rng([seed, stream]).choice(population, size=count, replace=False))


def build_bd(
    source: Path | str,
    out: Path,
    *,
    patch: int = 32,
    seed: int = 0,
    max_patches: int | None = None,
    entropy: str = "luma601_hist256",
    progress: bool = True,
) -> dict:
    """Build BD0–BD4 from the images in ``source`` into ``out`` and return the manifest (module docstring)."""
    source, out = Path(source).resolve(), Path(out)
    if patch < 1:
        raise UsageError(f"patch size must be at least 1 pixel, got {patch}")
    if seed < 0:
        raise UsageError(f"seed must be a non-negative integer, got {seed}")
    if max_patches is not None and max_patches < 5:
        raise UsageError(f"max_patches must be at least 5 (one patch per set), got {max_patches}")
    if entropy not in ENTROPY_MEASURES:
        raise UsageError(f"unknown entropy measure {entropy!r}; known: {', '.join(ENTROPY_MEASURES)}")
    measure, measure_definition = ENTROPY_MEASURES[entropy]
    files = _source_files(source)

    # Pass 1: entropy of every patch; only the index is kept in memory.
    sources: list[_Source] = []
    source_paths: list[Path] = []
    skipped: list[dict] = []
    pool_source, pool_y, pool_x, pool_entropy = [], [], [], []
    for path in tqdm(files, desc="BD: measuring patches", unit="image", disable=not progress):
        try:
            image = load_rgb(path)
        except ImageError as exc:
            warnings.warn(f"BD build: skipping {exc}", stacklevel=2)
            skipped.append({"file": path.name, "reason": str(exc)})
            continue
        height, width = image.shape[:2]
        patches = cut_patches(image, patch)
        grid_row, grid_col = np.unravel_index(np.arange(len(patches)), (height // patch, width // patch))
        pool_source.append(np.full(len(patches), len(sources), dtype=np.uint32))
        pool_y.append((grid_row * patch).astype(np.uint32))
        pool_x.append((grid_col * patch).astype(np.uint32))
        pool_entropy.append(measure(patches))
        sources.append(_Source(path.name, width, height, file_sha256(path), pixel_sha256(image), len(patches)))
        source_paths.append(path)

    pool = np.empty(sum(len(a) for a in pool_entropy), dtype=INDEX_DTYPE)
    for field, parts in (("source", pool_source), ("y", pool_y), ("x", pool_x), ("entropy", pool_entropy)):
        pool[field] = np.concatenate(parts) if parts else []
    total = len(pool)
    if max_patches is not None and total > max_patches:
        pool = pool[_draw(seed, _STREAM_SUBSAMPLE, total, max_patches)]
    n = len(pool)
    if n < 5:
        raise UsageError(f"BD source {source}: only {n} patch(es) of {patch}×{patch} px; need at least 5 (one per set)")

    # Banding: rank by (entropy, source, position); pool order is (source, position).
    by_rank = np.lexsort((np.arange(n), pool["entropy"]))
    k, bd1_start, upper_start = n // 5, 2 * n // 5, n - n // 2
    members = {
        "BD0": by_rank[:k],
        "BD1": by_rank[bd1_start : bd1_start + k],
        "BD2": by_rank[n - k :],
        "BD3": _draw(seed, _STREAM_BD3, n, k),
        "BD4": by_rank[upper_start:][_draw(seed, _STREAM_BD4, n - upper_start, k)],
    }
    indexes = {name: pool[np.sort(rows)] for name, rows in members.items()}
    ranked = pool["entropy"][by_rank]

    # Pass 2: copy the chosen patches into memory-mapped temporary set files, then rename them into place.
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST_NAME).unlink(missing_ok=True)  # no manifest while the folder is inconsistent
    temps = {name: _temp_path(out / f"{name}.npy") for name in SET_NAMES}
    try:
        arrays = {
            name: np.lib.format.open_memmap(temps[name], mode="w+", dtype=np.uint8, shape=(k, patch, patch, 3))
            for name in SET_NAMES
        }
        bounds = {name: np.searchsorted(index["source"], np.arange(len(sources) + 1)) for name, index in indexes.items()}
        for source_id, path in enumerate(tqdm(source_paths, desc="BD: copying patches", unit="image", disable=not progress)):
            image = load_rgb(path)
            if pixel_sha256(image) != sources[source_id].pixel_sha256:
                raise DatasetError(f"{path}: changed while the BD sets were being built; run the build again")
            cols = image.shape[1] // patch
            patches = cut_patches(image, patch)
            for name, index in indexes.items():
                start, stop = bounds[name][source_id], bounds[name][source_id + 1]
                rows = index[start:stop]
                arrays[name][start:stop] = patches[rows["y"].astype(np.int64) // patch * cols + rows["x"] // patch]
        for name in SET_NAMES:
            arrays[name].flush()
            del arrays[name]
            os.replace(temps[name], out / f"{name}.npy")
    finally:
        for temp in temps.values():
            temp.unlink(missing_ok=True)

    sets = {}
    for name in SET_NAMES:
        _save_npy(out / f"{name}_index.npy", indexes[name])
        entropies = indexes[name]["entropy"]
        sets[name] = {
            "file": f"{name}.npy",
            "index_file": f"{name}_index.npy",
            "definition": SET_DEFINITIONS[name],
            "count": k,
            "entropy_min": float(entropies.min()),
            "entropy_max": float(entropies.max()),
            "entropy_mean": float(entropies.mean()),
            "sha256": file_sha256(out / f"{name}.npy"),
            "index_sha256": file_sha256(out / f"{name}_index.npy"),
        }

    manifest = {
        "kind": "codecbench BD patch sets",
        "codecbench_version": codecbench.__version__,
        "numpy_version": np.__version__,
        "source_folder": str(source),
        "sources": [vars(s) for s in sources],
        "skipped": skipped,
        "patch": patch,
        "grid": "non-overlapping patch x patch tiles aligned with the top-left corner; right/bottom remainders dropped",
        "seed": seed,
        "random_streams": "numpy default_rng([seed, s]) with s = 0 subsample, 1 BD3, 2 BD4",
        "entropy": {"name": entropy, "definition": measure_definition, "unit": "bits"},
        "ranking": "ascending (entropy, source index, patch index)",
        "set_size": "k = N // 5 (20% of the pool, rounded down)",
        "row_order": "each set lists its patches in pool order: source index, then y, then x",
        "max_patches": max_patches,
        "patches_total": total,
        "patches_pool": n,
        "thresholds": {
            "bd0_max": float(ranked[k - 1]),
            "bd1_min": float(ranked[bd1_start]),
            "bd1_max": float(ranked[bd1_start + k - 1]),
            "bd2_min": float(ranked[n - k]),
            "upper_half_min": float(ranked[upper_start]),
        },
        "counts": {name: k for name in SET_NAMES},
        "sets": sets,
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    atomic_write_text(out / MANIFEST_NAME, text)
    return manifest


def default_bd_dir(data_dir: Path | None = None) -> Path:
    """Where built BD sets live unless a spec names a folder: ``<data dir>/bd``."""
    return Path(data_dir if data_dir is not None else default_data_dir()) / "bd"


@dataclass(frozen=True)
class BdSpec:
    """A parsed ``bd:SET[@DIR][?n=COUNT[&seed=SEED]]`` spec."""

    set_name: str
    directory: Path | None
    subset: int | None
    subset_seed: int


def parse_bd_spec(spec: str) -> BdSpec:
    """Parse a BD dataset spec (syntax in the module docstring); raise DatasetError naming the fault."""
    if not spec.startswith(SPEC_PREFIX):
        raise DatasetError(f"{spec!r}: a BD spec starts with {SPEC_PREFIX!r}, e.g. 'bd:BD2' or 'bd:BD3?n=500&seed=1'")
    body, _, query = spec[len(SPEC_PREFIX) :].partition("?")
    set_name, at, directory = body.partition("@")
    if set_name not in SET_NAMES:
        raise DatasetError(f"{spec!r}: unknown BD set {set_name!r}; choose one of {', '.join(SET_NAMES)}")
    if at and not directory:
        raise DatasetError(f"{spec!r}: empty folder after '@'")
    options: dict[str, int] = {}
    for part in query.split("&") if query else []:
        key, eq, value = part.partition("=")
        if key not in ("n", "seed") or not eq:
            raise DatasetError(f"{spec!r}: unknown option {part!r}; options are n=COUNT and seed=SEED")
        if key in options:
            raise DatasetError(f"{spec!r}: option {key!r} given twice")
        if not value.isdigit():
            raise DatasetError(f"{spec!r}: {key} must be a non-negative integer, got {value!r}")
        options[key] = int(value)
    if "seed" in options and "n" not in options:
        raise DatasetError(f"{spec!r}: seed only applies to a subset; add n=COUNT")
    if options.get("n") == 0:
        raise DatasetError(f"{spec!r}: n must be at least 1")
    return BdSpec(set_name, Path(directory) if directory else None, options.get("n"), options.get("seed", 0))


def _build_hint(directory: Path) -> str:
    return f"build them with: codecbench datasets build-bd --source <folder of photos> --patch 32 -o {directory}"


def read_manifest(directory: Path) -> dict:
    """The manifest of the BD sets built in ``directory``; DatasetError (with the build command) if absent."""
    path = Path(directory) / MANIFEST_NAME
    if not path.is_file():
        raise DatasetError(f"no BD patch sets in {directory} ({MANIFEST_NAME} missing); {_build_hint(directory)}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: unreadable BD manifest ({exc}); {_build_hint(directory)}") from exc


def resolve_bd(spec: str, data_dir: Path | None) -> Dataset:
    """The Dataset for a ``bd:`` spec; items are rows of ``SET.npy`` named ``SET/{row:06d}``.

    The set file is checked against the SHA-256 in its manifest; per-item checksums are left
    empty (the build is identified by the manifest's source file and pixel checksums).
    """
    parsed = parse_bd_spec(spec)
    directory = parsed.directory if parsed.directory is not None else default_bd_dir(data_dir)
    manifest = read_manifest(directory)
    entry = manifest.get("sets", {}).get(parsed.set_name)
    array_path = directory / f"{parsed.set_name}.npy"
    if entry is None or not array_path.is_file():
        raise DatasetError(f"BD set {parsed.set_name} missing from {directory}; {_build_hint(directory)}")
    try:
        rows = np.load(array_path, mmap_mode="r").shape[0]
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{array_path}: unreadable ({exc}); {_build_hint(directory)}") from exc
    if rows != entry["count"] or file_sha256(array_path) != entry["sha256"]:
        raise DatasetError(f"{array_path}: differs from its manifest (changed after the build); {_build_hint(directory)}")
    if parsed.subset is None:
        chosen = range(rows)
    elif parsed.subset > rows:
        raise DatasetError(f"{spec!r}: n={parsed.subset} exceeds the {rows} patches of {parsed.set_name}")
    else:
        chosen = _draw(parsed.subset_seed, 0, rows, parsed.subset).tolist()
    items = [ImageItem(dataset=spec, name=f"{parsed.set_name}/{i:06d}", path=str(array_path), index=i) for i in chosen]
    patch = manifest["patch"]
    description = (
        f"{parsed.set_name} ({entry['definition']}): {len(items)} of {rows} {patch}×{patch} patches "
        f"from {manifest['source_folder']}, seed {manifest['seed']}"
    )
    return Dataset(name=spec, description=description, items=items, checksums={})
