"""Reading CompressAI checkpoints of ``bmshj2018-factorized`` / ``bmshj2018-hyperprior`` without CompressAI.

Accepted: ``torch.save`` of a state dict, or of a dict holding one under
``state_dict`` (CompressAI's training script), keys optionally prefixed
``module.`` (DataParallel). Files are read with ``weights_only=True``
(``codecbench.learned.weights.load_weights_file``): no code in an untrusted
checkpoint runs. Widths come from the tensors (N = outputs of
``g_a.0``, M = outputs of ``g_a.6``). Entropy tables (``_quantized_cdf``,
``_offset``, ``_cdf_length``, ``scale_table``) may be missing: the codec then
rebuilds them from the checkpoint's parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from codecbench.errors import CodecError

TABLE_BUFFERS = ("_offset", "_quantized_cdf", "_cdf_length", "scale_table")


def compressai_state_dict(content: Any, path: Path) -> dict[str, Any]:
    """The model state dict inside a CompressAI checkpoint's content, without ``module.`` prefixes."""
    import torch

    state = content.get("state_dict", content) if isinstance(content, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CodecError(f"{path} is neither a codecbench weights file nor a CompressAI state dict")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}


def read_compressai_checkpoint(content: Any, path: Path, build: Callable[[dict[str, Any]], Any], codec: str):
    """(network, hparams) built by ``build`` from a CompressAI checkpoint's content; CodecError if it does not fit."""
    state = compressai_state_dict(content, path)
    try:
        hparams = {"N": int(state["g_a.0.weight"].shape[0]), "M": int(state["g_a.6.weight"].shape[0])}
    except KeyError as exc:
        raise CodecError(f"codec {codec}: {path} has no {exc.args[0]} (not a bmshj2018 model)") from exc
    network = build(hparams)
    try:
        result = network.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=False)
    except RuntimeError as exc:  # shapes that do not match
        reason = str(exc).splitlines()[-1].strip()
        raise CodecError(f"codec {codec}: checkpoint {path} does not fit the network ({reason})") from exc
    missing = [k for k in result.missing_keys if k.rsplit(".", 1)[-1] not in TABLE_BUFFERS]
    if missing or result.unexpected_keys:
        raise CodecError(
            f"codec {codec}: checkpoint {path} does not fit the network "
            f"(missing {missing[:5]}, unexpected {list(result.unexpected_keys)[:5]})"
        )
    return network, hparams
