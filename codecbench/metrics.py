"""Image quality metrics with the conventions of the learned-compression literature.

Every function takes the reference and the distorted image as H×W×3 uint8 RGB
arrays of equal shape and returns a Python float. The dataset value of a
metric is the mean over images (CompressAI's convention); that averaging is
done by the report, not here.

- ``psnr_rgb``: 10·log10(255² / MSE), MSE over all pixels and all three RGB
  channels, in float64. Identical images give +inf.
- ``psnr_y``: the same on BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B,
  computed in float64 from the 8-bit values (full range, not rounded), peak 255.
- ``ssim``: Wang et al. 2004. Gaussian window σ = 1.5 truncated to 11×11
  normalised taps, K1 = 0.01, K2 = 0.03, data range 255, population
  (not sample) covariance, computed over the valid region only (no padding:
  the 5-pixel border is not a window centre), mean of the SSIM map per RGB
  channel, then mean over the three channels. Equals scikit-image's
  ``structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255, channel_axis=2)``.
- ``ms_ssim``: Wang et al. 2003. 5 scales with weights 0.0448, 0.2856,
  0.3001, 0.2363, 0.1333, the same window and constants, per RGB channel,
  2×2 average pooling between scales (an odd side is zero-padded by one pixel
  on both sides, padding counted in the average), contrast–structure terms and
  the last-scale SSIM clamped at 0, product over scales, mean over channels:
  pytorch-msssim's ``ms_ssim(X, Y, data_range=255)``. Images whose smaller side
  is ≤ 160 px cannot have 5 scales of at least 11 px: they use the largest
  number of scales S whose smallest scale is still ≥ 11 px, with the first S
  weights renormalised to sum to 1 (S = 1 is SSIM). With 5 scales the
  published weights are used as they are (they sum to 1.0001).
- ``ms_ssim_db``: −10·log10(1 − MS-SSIM); +inf when MS-SSIM = 1.
- ``lpips``: LPIPS v0.1 with the AlexNet backbone (Zhang et al. 2018), inputs
  scaled to [−1, 1]; lower is better. The backbone weights are never
  downloaded: see :func:`lpips_availability`.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import correlate1d

from codecbench.codec import Availability

PEAK = 255.0
SSIM_SIGMA = 1.5
SSIM_RADIUS = 5  # 11 taps: scikit-image's truncate=3.5 and pytorch-msssim's win_size=11
SSIM_K1, SSIM_K2 = 0.01, 0.03
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
LUMA_BT601 = np.array([0.299, 0.587, 0.114])

_taps = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
GAUSSIAN_WINDOW = np.exp(-(_taps**2) / (2 * SSIM_SIGMA**2))
GAUSSIAN_WINDOW /= GAUSSIAN_WINDOW.sum()
WINDOW_SIDE = GAUSSIAN_WINDOW.size


def _check_pair(reference: np.ndarray, distorted: np.ndarray) -> None:
    for what, image in (("reference", reference), ("distorted", distorted)):
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"{what} must be an H×W×3 uint8 RGB array, got {getattr(image, 'shape', None)} "
                             f"{getattr(image, 'dtype', type(image).__name__)}")
    if reference.shape != distorted.shape:
        raise ValueError(f"shapes differ: reference {reference.shape}, distorted {distorted.shape}")


def _psnr_from_mse(mse: float) -> float:
    return math.inf if mse == 0 else 10.0 * math.log10(PEAK**2 / mse)


def psnr_rgb(reference: np.ndarray, distorted: np.ndarray) -> float:
    """PSNR in dB over all pixels and RGB channels, peak 255 (+inf if identical)."""
    _check_pair(reference, distorted)
    diff = reference.astype(np.float64) - distorted.astype(np.float64)
    return _psnr_from_mse(float(np.mean(diff * diff)))


def psnr_y(reference: np.ndarray, distorted: np.ndarray) -> float:
    """PSNR in dB of BT.601 luma (0.299 R + 0.587 G + 0.114 B, float64, unrounded), peak 255."""
    _check_pair(reference, distorted)
    diff = (reference.astype(np.float64) - distorted.astype(np.float64)) @ LUMA_BT601
    return _psnr_from_mse(float(np.mean(diff * diff)))


def _filter_valid(planes: np.ndarray) -> np.ndarray:
    """Separable 11×11 Gaussian over axes 0 and 1 of an H×W×K array, valid region only."""
    r = SSIM_RADIUS
    out = correlate1d(planes, GAUSSIAN_WINDOW, axis=0, mode="constant")[r:-r]
    return correlate1d(out, GAUSSIAN_WINDOW, axis=1, mode="constant")[:, r:-r]


def _ssim_and_cs(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean SSIM and mean contrast–structure term of float64 H×W×C images."""
    channels = x.shape[2]
    stats = _filter_valid(np.concatenate([x, y, x * x, y * y, x * y], axis=2))
    mu_x, mu_y, e_xx, e_yy, e_xy = (stats[:, :, i * channels:(i + 1) * channels] for i in range(5))
    c1, c2 = (SSIM_K1 * PEAK) ** 2, (SSIM_K2 * PEAK) ** 2
    mu_xy = mu_x * mu_y
    mu_xx, mu_yy = mu_x * mu_x, mu_y * mu_y
    cs_map = (2 * (e_xy - mu_xy) + c2) / ((e_xx - mu_xx) + (e_yy - mu_yy) + c2)
    ssim_map = (2 * mu_xy + c1) / (mu_xx + mu_yy + c1) * cs_map
    return ssim_map.mean(axis=(0, 1)), cs_map.mean(axis=(0, 1))


def _require_window(shape: tuple[int, ...]) -> None:
    if min(shape[:2]) < WINDOW_SIDE:
        raise ValueError(f"image {shape[1]}×{shape[0]} is smaller than the {WINDOW_SIDE}×{WINDOW_SIDE} SSIM window")


def ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Mean SSIM (Gaussian σ 1.5, 11 taps, valid region), averaged over RGB channels."""
    _check_pair(reference, distorted)
    _require_window(reference.shape)
    values, _ = _ssim_and_cs(reference.astype(np.float64), distorted.astype(np.float64))
    return float(values.mean())


def _pool2(image: np.ndarray) -> np.ndarray:
    """2×2 average pooling; an odd side is zero-padded by one on both sides (pytorch's avg_pool2d)."""
    height, width = image.shape[:2]
    if height % 2 or width % 2:
        image = np.pad(image, ((height % 2,) * 2, (width % 2,) * 2, (0, 0)))
    out_h, out_w = (height + 1) // 2, (width + 1) // 2
    image = image[: 2 * out_h, : 2 * out_w]
    return 0.25 * (image[0::2, 0::2] + image[1::2, 0::2] + image[0::2, 1::2] + image[1::2, 1::2])


def ms_ssim_scales(height: int, width: int) -> int:
    """Number of MS-SSIM scales used: at most 5, each scale's smaller side ≥ 11 px."""
    side, scales = min(height, width), 0
    while scales < len(MS_SSIM_WEIGHTS) and side >= WINDOW_SIDE:
        scales += 1
        side = (side + 1) // 2
    return scales


def _ms_ssim(x: np.ndarray, y: np.ndarray, first_scale: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    scales = ms_ssim_scales(*x.shape[:2])
    if scales == 0:
        raise ValueError(f"image {x.shape[1]}×{x.shape[0]} is smaller than the {WINDOW_SIDE}×{WINDOW_SIDE} window")
    weights = np.array(MS_SSIM_WEIGHTS[:scales])
    if scales < len(MS_SSIM_WEIGHTS):  # the published five sum to 1.0001 and are used as published
        weights /= weights.sum()
    factors = []
    for level in range(scales):
        if level == 0 and first_scale is not None:
            ssim_c, cs_c = first_scale
        else:
            ssim_c, cs_c = _ssim_and_cs(x, y)
        if level < scales - 1:
            factors.append(np.maximum(cs_c, 0.0))
            x, y = _pool2(x), _pool2(y)
        else:
            factors.append(np.maximum(ssim_c, 0.0))
    per_channel = np.prod(np.stack(factors) ** weights[:, None], axis=0)
    return float(per_channel.mean())


def ms_ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """MS-SSIM (5 scales, fewer for small images; see module docstring), averaged over RGB channels."""
    _check_pair(reference, distorted)
    return _ms_ssim(reference.astype(np.float64), distorted.astype(np.float64))


def ms_ssim_to_db(value: float) -> float:
    """−10·log10(1 − MS-SSIM), +inf for a perfect score."""
    return math.inf if value >= 1.0 else -10.0 * math.log10(1.0 - value)


def ms_ssim_db(reference: np.ndarray, distorted: np.ndarray) -> float:
    """MS-SSIM in dB: −10·log10(1 − MS-SSIM)."""
    return ms_ssim_to_db(ms_ssim(reference, distorted))


# -- LPIPS ------------------------------------------------------------------

LPIPS_WEIGHTS_ENV = "CODECBENCH_LPIPS_WEIGHTS"
TORCHVISION_ALEXNET_FILE = "alexnet-owt-7be5be79.pth"
_lpips_weights_path: Path | None = None
_lpips_model = None


def set_lpips_weights(path: str | Path | None) -> None:
    """Use this AlexNet ``features`` state dict as the LPIPS backbone (overrides the environment)."""
    global _lpips_weights_path, _lpips_model
    _lpips_weights_path = Path(path) if path else None
    _lpips_model = None


def _lpips_backbone_source() -> tuple[str, Path] | tuple[None, str]:
    """("state_dict", path) or ("torchvision_cache", path), or (None, reason)."""
    explicit = _lpips_weights_path or (Path(os.environ[LPIPS_WEIGHTS_ENV]) if os.environ.get(LPIPS_WEIGHTS_ENV) else None)
    if explicit is not None:
        if explicit.is_file():
            return "state_dict", explicit
        return None, f"LPIPS backbone weights file {explicit} does not exist"
    try:
        import torch
    except ImportError as exc:
        return None, f"torch is not installed ({exc})"
    cached = Path(torch.hub.get_dir()) / "checkpoints" / TORCHVISION_ALEXNET_FILE
    if cached.is_file():
        return "torchvision_cache", cached
    return None, (
        f"no AlexNet backbone weights: pass --lpips-weights FILE or set {LPIPS_WEIGHTS_ENV} "
        f"(a state dict for torchvision.models.alexnet().features), or put torchvision's {TORCHVISION_ALEXNET_FILE} "
        f"in {cached.parent}; codecbench never downloads them"
    )


def lpips_availability() -> Availability:
    """Whether LPIPS can be computed here, and if not why (the other metrics never depend on it)."""
    kind, detail = _lpips_backbone_source()
    if kind is None:
        return Availability(False, str(detail))
    try:
        import lpips  # noqa: F401
    except ImportError as exc:
        return Availability(False, f"the lpips package is not installed ({exc})")
    return Availability(True)


def _load_lpips():
    global _lpips_model
    if _lpips_model is not None:
        return _lpips_model
    import lpips as lpips_package
    import torch

    kind, path = _lpips_backbone_source()
    if kind is None:
        raise RuntimeError(f"lpips unavailable: {path}")
    with warnings.catch_warnings():  # lpips uses torchvision's deprecated `pretrained=` argument
        warnings.simplefilter("ignore", UserWarning)
        # torchvision finds its own cache; otherwise start from random weights and load the state dict
        model = lpips_package.LPIPS(net="alex", version="0.1", pnet_rand=kind != "torchvision_cache", verbose=False)
    if kind == "state_dict":
        state = torch.load(path, map_location="cpu", weights_only=True)
        slices = [getattr(model.net, f"slice{i}") for i in range(1, 6)]
        with torch.no_grad():
            for key, tensor in state.items():
                index, name = key.split(".")
                layer = next((s._modules[index] for s in slices if index in s._modules), None)
                if layer is None:
                    raise RuntimeError(f"{path}: unexpected key {key} for AlexNet features")
                getattr(layer, name).copy_(tensor)
    _lpips_model = model.eval()
    return _lpips_model


def lpips(reference: np.ndarray, distorted: np.ndarray) -> float:
    """LPIPS v0.1 AlexNet distance (lower is better); inputs scaled to [−1, 1]."""
    _check_pair(reference, distorted)
    import torch

    model = _load_lpips()

    def tensor(image: np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(image).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1.0

    with torch.no_grad():
        return float(model(tensor(reference), tensor(distorted)).item())


# -- registry ---------------------------------------------------------------


@dataclass(frozen=True)
class MetricSpec:
    name: str
    function: Callable[[np.ndarray, np.ndarray], float]
    higher_is_better: bool
    unit: str
    description: str


METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("psnr_rgb", psnr_rgb, True, "dB", "PSNR over RGB, MSE over all pixels and channels, peak 255"),
        MetricSpec("psnr_y", psnr_y, True, "dB", "PSNR of BT.601 luma (float, full range), peak 255"),
        MetricSpec("ssim", ssim, True, "", "SSIM, Gaussian σ=1.5 11×11, valid region, mean over RGB"),
        MetricSpec("ms_ssim", ms_ssim, True, "", "MS-SSIM, 5 scales, mean over RGB (pytorch-msssim)"),
        MetricSpec("ms_ssim_db", ms_ssim_db, True, "dB", "−10·log10(1 − MS-SSIM)"),
        MetricSpec("lpips", lpips, False, "", "LPIPS v0.1 AlexNet, inputs in [−1, 1]"),
    )
}


def compute(reference: np.ndarray, distorted: np.ndarray, names: Sequence[str]) -> dict[str, float]:
    """The requested metrics of one image pair; SSIM and MS-SSIM share the first scale's statistics."""
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    _check_pair(reference, distorted)
    wanted = set(names)
    out: dict[str, float] = {}
    x = reference.astype(np.float64)
    y = distorted.astype(np.float64)
    if wanted & {"psnr_rgb", "psnr_y"}:
        diff = x - y
        if "psnr_rgb" in wanted:
            out["psnr_rgb"] = _psnr_from_mse(float(np.mean(diff * diff)))
        if "psnr_y" in wanted:
            luma = diff @ LUMA_BT601
            out["psnr_y"] = _psnr_from_mse(float(np.mean(luma * luma)))
    if wanted & {"ssim", "ms_ssim", "ms_ssim_db"}:
        _require_window(reference.shape)
        first = _ssim_and_cs(x, y)
        if "ssim" in wanted:
            out["ssim"] = float(first[0].mean())
        if wanted & {"ms_ssim", "ms_ssim_db"}:
            value = _ms_ssim(x, y, first)
            if "ms_ssim" in wanted:
                out["ms_ssim"] = value
            if "ms_ssim_db" in wanted:
                out["ms_ssim_db"] = ms_ssim_to_db(value)
    if "lpips" in wanted:
        out["lpips"] = lpips(reference, distorted)
    return {name: out[name] for name in names}
