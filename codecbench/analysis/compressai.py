"""CompressAI's results-JSON layout: published curves in (:func:`load_reference`, by name with
:func:`named_reference`), mean curves out (:func:`to_compressai_json`).

codecbench carries CompressAI's published result curves for Kodak and CLIC 2020
(``codecbench/data/references/compressai/``, BSD 3-Clause Clear, © InterDigital;
see the README there). They are named ``compressai:NAME``, NAME being the file
name without ``.json``, without the ``compressai-`` prefix of CompressAI's own
models and without their ``_cpu`` suffix (CPU and CUDA runs give the same
curve; the ``_cuda`` files keep theirs): ``compressai:vtm``,
``compressai:bpg_444_x265_ycbcr``, ``compressai:bmshj2018-hyperprior_mse``,
``compressai:paper-mbt2018``. A results dataset picks the folder whose name
it starts with (``clic2020-professional-valid`` → ``clic2020-professional``).

``{"name": …, "description": …, "results": {"bpp": [...], "psnr-rgb": [...], ...}}``:
one list per quantity, one value per point. A metric's keys are its
:attr:`codecbench.metrics.MetricSpec.compressai_keys` (the first is written on
export; every one is read).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from codecbench.analysis.curves import RDCurve, summarise
from codecbench.errors import ReferenceCurveError, UsageError
from codecbench.metrics import METRICS

REFERENCES_DIR = Path(__file__).resolve().parents[1] / "data" / "references"
REFERENCE_PREFIX = "compressai:"

#: CompressAI key → metric, in reading order (a later key of the same metric wins).
_KEYS = {key: name for name, spec in METRICS.items() for key in spec.compressai_keys}


def load_reference(path: str | Path, label: str | None = None) -> RDCurve:
    """Read a published curve in CompressAI's results-JSON layout; ReferenceCurveError names what is wrong.

    Keys that name no metric are ignored. A metric derived from another one
    (``ms_ssim_db`` from MS-SSIM, :attr:`~codecbench.metrics.MetricSpec.mean_of`)
    is computed when only the other is given.
    """
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReferenceCurveError(f"{path}: cannot read reference curve ({exc})") from exc
    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, dict) or "bpp" not in results:
        raise ReferenceCurveError(f"{path}: not a CompressAI results file (needs an object with results.bpp)")

    def array(key: str) -> np.ndarray:
        try:
            values = np.asarray(results[key], dtype=float)
        except (TypeError, ValueError) as exc:
            raise ReferenceCurveError(f"{path}: results.{key} is not a list of numbers") from exc
        if values.ndim != 1:
            raise ReferenceCurveError(f"{path}: results.{key} is not a list of numbers")
        return values

    bpp = array("bpp")
    if len(bpp) == 0 or not np.all(np.isfinite(bpp) & (bpp > 0)):
        raise ReferenceCurveError(f"{path}: results.bpp must be a non-empty list of positive numbers")
    quality = {name: array(key) for key, name in _KEYS.items() if key in results}
    for key in (k for k in _KEYS if k in results):
        if len(results[key]) != len(bpp):
            raise ReferenceCurveError(f"{path}: results.{key} has {len(results[key])} values "
                                      f"but results.bpp has {len(bpp)}")
    if not quality:
        raise ReferenceCurveError(f"{path}: no known metric in results (expected one of {', '.join(_KEYS)})")
    for name, spec in METRICS.items():
        if spec.mean_of in quality and name not in quality:
            quality[name] = np.array([spec.from_linear(v) for v in quality[spec.mean_of]])
    order = np.argsort(bpp, kind="stable")
    nan = np.full(len(bpp), math.nan)
    name = str(document.get("name") or path.stem)
    return RDCurve(label=label or f"{name} (reference)", source="reference", bpp=bpp[order],
                   quality={m: v[order] for m, v in quality.items()}, setting=nan, encode_s=nan, decode_s=nan,
                   n_images=0, description=str(document.get("description") or ""))


def reference_name(path: Path) -> str:
    """``compressai-mbt2018_mse_cpu.json`` → ``mbt2018_mse``; ``vtm.json`` → ``vtm``."""
    stem = path.stem.removeprefix("compressai-")
    return stem.removesuffix("_cpu") if path.stem.startswith("compressai-") else stem


def published_references() -> dict[str, dict[str, Path]]:
    """Every carried published curve: {CompressAI dataset folder: {``compressai:NAME``: file}}."""
    root = REFERENCES_DIR / "compressai"
    return {folder.name: {REFERENCE_PREFIX + reference_name(path): path for path in sorted(folder.glob("*.json"))}
            for folder in sorted(root.iterdir()) if folder.is_dir()}


def reference_folder(dataset: str) -> str | None:
    """The CompressAI folder a results dataset's name starts with (the longest), or None."""
    matches = [folder for folder in published_references() if dataset == folder or dataset.startswith(folder + "-")]
    return max(matches, key=len) if matches else None


def named_reference(name: str, dataset: str) -> RDCurve | None:
    """The published curve ``name`` (``compressai:vtm``) for ``dataset``; None when that dataset has none.

    UsageError when no dataset has a curve of that name (the message lists the names).
    """
    every = published_references()
    known = sorted({key for curves in every.values() for key in curves})
    if name not in known:
        raise UsageError(f"no published curve named {name!r}; `codecbench references` lists them: {', '.join(known)}")
    folder = reference_folder(dataset)
    path = every.get(folder, {}).get(name) if folder else None
    return load_reference(path, label=f"{name} (published)") if path else None


def to_compressai_json(store_or_rows, codec: str, dataset: str | None = None) -> dict[str, Any]:
    """One codec's mean curve on one dataset in CompressAI's results-JSON layout.

    ``store_or_rows`` is a :class:`~codecbench.store.ResultsStore` or its
    rows; ``codec`` a codec name (or ``name@version``); ``dataset`` may be
    omitted when the store holds one. Points are the mean curve's (see
    :mod:`codecbench.analysis.curves`), sorted by bpp; a metric is written only
    when every point has a finite value. Times are mean seconds per image.
    ValueError names what is missing.
    """
    rows = store_or_rows.rows() if hasattr(store_or_rows, "rows") else list(store_or_rows)
    summaries = summarise(rows)
    if dataset is None:
        if len(summaries) != 1:
            raise UsageError(f"the results hold {len(summaries)} datasets ({', '.join(map(str, summaries))}); "
                             "name one")
        dataset = next(iter(summaries))
    if dataset not in summaries:
        raise UsageError(f"no results for dataset {dataset!r} (datasets: {', '.join(map(str, summaries))})")
    results = summaries[dataset]
    label = results.resolve(codec)
    curve = results.codecs[label].mean
    keep = np.isfinite(curve.bpp)
    if not keep.any():
        raise UsageError(f"{label} on {dataset}: no complete point on the mean curve")
    out: dict[str, list[float]] = {"bpp": curve.bpp[keep].tolist()}
    for metric in results.metrics:
        values = curve.quality[metric][keep]
        if np.all(np.isfinite(values)):
            out[METRICS[metric].compressai_keys[0]] = values.tolist()
    for key, values in (("encoding_time", curve.encode_s[keep]), ("decoding_time", curve.decode_s[keep])):
        if np.all(np.isfinite(values)):
            out[key] = values.tolist()
    out["setting"] = curve.setting[keep].tolist()
    version = results.codecs[label].version
    return {
        "name": label,
        "description": f"codecbench: {results.codecs[label].codec} {version} on {dataset}, mean over "
                       f"{len(results.images)} images per setting (mean bpp and mean metric)",
        "results": out,
    }
