"""The weights file of a learned codec.

``torch.save`` of a dict, read with ``weights_only=True`` (no code runs on
loading): ``format`` = WEIGHTS_FORMAT, ``model_id``, ``hparams`` (layer
widths: the network is rebuilt from them, so full-size weights trained
elsewhere load too), ``state_dict`` (parameters in fp16 or fp32, run in fp32;
buffers as the network holds them: bounds, integer entropy tables, except
that a ``…_quantized_cdf`` table, whose rows the network pads to the longest,
is stored as the used part of each row (``…_cdf_length``) concatenated),
``extras`` (codec data such as entropy-coder priors) and ``training``
(provenance; absolute paths in it are cut to their last part, so a shipped
file names no directory of the machine that trained it). Bitstreams pin the
file by its SHA-256 (see ``header``).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from codecbench.errors import CodecError

WEIGHTS_FORMAT = "codecbench-learned-weights"


def load_weights_file(path: Path) -> Any:
    """The object saved in ``path``, read with ``torch.load(weights_only=True)`` so that no code in it runs.

    CodecError if the file is missing or cannot be read that way (foreign, damaged or unsafe).
    """
    import torch

    if not path.is_file():
        raise CodecError(f"weights file {path} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign, damaged or unsafe files
        raise CodecError(f"cannot read weights {path} safely ({type(exc).__name__}: {exc})") from exc


def check_weights(content: Any, path: Path, model_id: str) -> dict[str, Any]:
    """``content`` (loaded from ``path``) as a weights dict; CodecError unless it is one, for model ``model_id``."""
    if not isinstance(content, dict) or content.get("format") != WEIGHTS_FORMAT:
        raise CodecError(f"{path} is not a codecbench weights file")
    if content.get("model_id") != model_id:
        raise CodecError(f"{path} holds model {content.get('model_id')!r}, not {model_id!r}")
    return content


def read_weights(path: Path, model_id: str) -> dict[str, Any]:
    """The weights file ``path`` as a dict; CodecError unless it is one, for model ``model_id``."""
    return check_weights(load_weights_file(path), path, model_id)


CDF_TABLE = "_quantized_cdf"
CDF_LENGTHS = "_cdf_length"


def _row_lengths(state: dict[str, Any], key: str):
    """The row lengths stored beside the CDF table ``key``, or None when ``key`` is not a CDF table."""
    return state.get(key[: -len(CDF_TABLE)] + CDF_LENGTHS) if key.endswith(CDF_TABLE) else None


def _packed_tables(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with each padded CDF table (C × longest row) replaced by its rows' used parts, concatenated (1-D)."""
    import torch

    packed = dict(state)
    for key, table in state.items():
        lengths = _row_lengths(state, key)
        if lengths is not None and table.dim() == 2 and table.numel() > 0:
            packed[key] = torch.cat([row[:length] for row, length in zip(table, lengths.tolist())])
    return packed


def _padded_tables(state: dict[str, Any]) -> dict[str, Any]:
    """The inverse of ``_packed_tables``: concatenated CDF rows back into a zero-padded C × longest-row table."""
    import torch

    padded = dict(state)
    for key, flat in state.items():
        lengths = _row_lengths(state, key)
        if lengths is not None and flat.dim() == 1 and flat.numel() > 0:
            sizes = lengths.tolist()
            table = torch.zeros((len(sizes), max(sizes)), dtype=flat.dtype)
            for row, part in zip(table, torch.split(flat, sizes)):
                row[: len(part)] = part
            padded[key] = table
    return padded


def float32_state(weights: dict[str, Any]) -> dict[str, Any]:
    """The file's state dict as the network holds it: floating-point tensors in float32 (files may store fp16),
    CDF tables padded again."""
    return {k: v.float() if v.is_floating_point() else v for k, v in _padded_tables(weights["state_dict"]).items()}


def portable_provenance(value: Any) -> Any:
    """``value`` (nested dicts, lists, strings) with every absolute path string cut to its last part."""
    if isinstance(value, dict):
        return {key: portable_provenance(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(portable_provenance(item) for item in value)
    if isinstance(value, str) and Path(value).is_absolute():
        return Path(value).name
    return value


def save_weights(cls: type, network, hparams: dict[str, Any], path: Path, extras: dict[str, Any] | None = None,
                 training: dict[str, Any] | None = None) -> str:
    """Write a weights file of ``network`` (parameters stored as fp16, CDF tables packed) for codec class ``cls``;
    return its SHA-256.

    ``cls.model_id`` is written as the file's model; ``hparams`` must rebuild ``network``.
    """
    import torch

    parameters = {name for name, _ in network.named_parameters()}
    weights = {
        "format": WEIGHTS_FORMAT,
        "model_id": cls.model_id,
        "hparams": hparams,
        "state_dict": _packed_tables(
            {k: v.half() if k in parameters and v.is_floating_point() else v for k, v in network.state_dict().items()}
        ),
        "extras": extras or {},
        "training": portable_provenance(training or {}),
    }
    buffer = io.BytesIO()
    torch.save(weights, buffer)
    payload = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return hashlib.sha256(payload).hexdigest()
