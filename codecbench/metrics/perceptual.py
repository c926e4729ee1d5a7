"""LPIPS (Zhang et al. 2018), computed offline.

``lpips``: LPIPS v0.1 with the AlexNet backbone, inputs scaled to [−1, 1],
CPU, no gradients; lower is better. The backbone weights are never
downloaded: see :func:`lpips_availability`. It needs the ``lpips`` extra
(torch, torchvision, lpips); this module imports torch only when LPIPS is
computed, so that checking availability works without it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from codecbench.errors import MetricUnavailable
from codecbench.metrics.spec import check_pair
from codecbench.plugins import Availability

if TYPE_CHECKING:
    import torch

LPIPS_WEIGHTS_ENV = "CODECBENCH_LPIPS_WEIGHTS"
TORCHVISION_ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
#: What installs the packages LPIPS needs.
LPIPS_INSTALL = 'pip install "codecbench[lpips]"'
_LPIPS_PACKAGES = ("torch", "torchvision", "lpips")
_lpips_weights_path: Path | None = None
_lpips_cache: tuple[Path, torch.nn.Module] | None = None


@contextlib.contextmanager
def ieee_float32_matmul() -> Iterator[None]:
    """Full float32 products even if the process allowed bfloat16 ones (set_float32_matmul_precision)."""
    import torch

    previous = torch.get_float32_matmul_precision()
    if previous == "highest":
        yield
        return
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def set_lpips_weights(path: str | Path | None) -> None:
    """Use this AlexNet ``features`` state dict as the LPIPS backbone (overrides the environment); None clears it."""
    global _lpips_weights_path
    _lpips_weights_path = Path(path) if path else None


def _lpips_backbone() -> tuple[Path | None, str]:
    """(weights file, "") or (None, why LPIPS cannot run). Order: set_lpips_weights, the environment, torchvision's cache."""
    explicit = _lpips_weights_path
    if explicit is None and os.environ.get(LPIPS_WEIGHTS_ENV):
        explicit = Path(os.environ[LPIPS_WEIGHTS_ENV])
    if explicit is not None:
        return (explicit, "") if explicit.is_file() else (None, f"LPIPS backbone weights file {explicit} does not exist")
    import torch

    cached = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_ALEXNET_FILE
    if cached.is_file():
        return cached, ""
    return None, (
        f"no AlexNet backbone weights: pass --lpips-weights FILE or set {LPIPS_WEIGHTS_ENV} "
        f"(a state dict for torchvision.models.alexnet().features), or put torchvision's {TORCHVISION_ALEXNET_FILE} "
        f"in {cached.parent}; codecbench never downloads them"
    )


def lpips_availability() -> Availability:
    """Whether LPIPS can be computed here, and if not why (the other metrics never depend on it)."""
    missing = [name for name in _LPIPS_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        return Availability(False, f"{', '.join(missing)} not installed; {LPIPS_INSTALL}")
    path, reason = _lpips_backbone()
    if path is None:
        return Availability(False, reason)
    return Availability(True)


def _lpips_model() -> torch.nn.Module:
    """LPIPS-alex v0.1 with the backbone from :func:`_lpips_backbone`, built once per process and weights file."""
    global _lpips_cache
    status = lpips_availability()
    if not status.ok:
        raise MetricUnavailable(f"lpips unavailable: {status.reason}")
    path, _ = _lpips_backbone()
    if _lpips_cache is not None and _lpips_cache[0] == path:
        return _lpips_cache[1]
    import lpips as lpips_package
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for unreadable or unsafe files
        raise MetricUnavailable(f"{path}: cannot be read as a PyTorch state dict ({type(exc).__name__}: {exc})") from exc
    if not isinstance(state, dict):
        raise MetricUnavailable(f"{path}: not an AlexNet features state dict (a {type(state).__name__})")
    if any(key.startswith("features.") for key in state):  # torchvision's whole-AlexNet checkpoint
        state = {key.removeprefix("features."): value for key, value in state.items() if key.startswith("features.")}
    with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained=` argument
        warnings.simplefilter("ignore", UserWarning)
        # pnet_rand=True: torchvision builds AlexNet without fetching weights; the linear heads ship with lpips
        model = lpips_package.LPIPS(net="alex", version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    # the backbone's features.N layers live in model.net.sliceK as module N
    location = {index: f"slice{k}.{index}" for k in range(1, 6) for index in getattr(model.net, f"slice{k}")._modules}
    try:
        renamed = {f"{location[key.split('.')[0]]}.{key.split('.', 1)[1]}": value for key, value in state.items()}
        model.net.load_state_dict(renamed, strict=True)
    except (AttributeError, KeyError, IndexError, RuntimeError) as exc:
        raise MetricUnavailable(f"{path}: not an AlexNet features state dict ({type(exc).__name__}: {exc})") from exc
    _lpips_cache = (path, model.eval())
    return model


def lpips(reference: np.ndarray, distorted: np.ndarray) -> float:
    """LPIPS v0.1 AlexNet distance (lower is better), inputs scaled to [−1, 1], CPU, no gradients."""
    check_pair(reference, distorted)
    model = _lpips_model()
    import torch

    def scaled(image: np.ndarray) -> torch.Tensor:  # 1×3×H×W in [−1, 1]
        return torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1)[None] / 127.5 - 1.0

    with torch.no_grad(), ieee_float32_matmul():
        return float(model(scaled(reference), scaled(distorted)).item())
