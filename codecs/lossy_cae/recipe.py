"""Training recipe of ``lossy_cae``: (1 − SSIM) or MSE loss, nested channel dropout, entropy priors at export.

Loss (option ``loss``): ``"ssim"`` (the study's): mean over crops of
(1 − w)·(1 − SSIM(x, x̂)) + w·mean |x − x̂|, SSIM = ``codecbench.learned.losses.ssim``
(the ``ssim`` metric's convention, data range 1), w = option ``l1_weight``
(default 0: the study's pure 1 − SSIM; SSIM alone hardly sees a channel's
local mean, so a pure-SSIM network may lose colour); ``"mse"``: mean squared
error in the [-0.5, 0.5] pixel range. Option ``nested`` (default true): nested
channel dropout (``LossyCaeNet.training_forward``). Option ``binarize``:
``"stochastic"`` (default, the study's) or ``"threshold"`` (the inference
bits, gradient straight through; for a final stage).

Export: ``entropy_prior`` P(bit = 1) per (channel, context) of the adaptive
binary coder, counted on the codes of the central ``PRIOR_CROP`` crops of the
training images (``codecbench.learned.entropy.ContextCounts``).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from codecbench.learned.entropy import ContextCounts
from codecbench.learned.losses import ssim
from codecbench.learned.recipe import TrainingRecipe
from codecbench_codecs.lossy_cae.model import STRIDE, LossyCaeConfig

PRIOR_CROP = 512  # pixels; side of the crops the entropy priors are measured on
LOSSES = ("ssim", "mse")


class LossyCaeRecipe(TrainingRecipe):
    """Options: ``loss`` (``"ssim"``/``"mse"``), ``l1_weight`` (w of the SSIM loss), ``nested``, ``binarize``."""

    options: ClassVar[dict[str, Any]] = {"loss": "ssim", "l1_weight": 0.0, "nested": True, "binarize": "stochastic"}

    def default_hparams(self) -> dict[str, Any]:
        return LossyCaeConfig().to_dict()

    def training_loss(self, network, batch, generator, loss: str = "ssim", l1_weight: float = 0.0, nested: bool = True,
                      binarize: str = "stochastic"):
        if loss not in LOSSES:
            raise ValueError(f"lossy_cae loss must be one of {LOSSES}, not {loss!r}")
        if binarize not in ("stochastic", "threshold"):
            raise ValueError(f"lossy_cae binarize must be 'stochastic' or 'threshold', not {binarize!r}")
        reconstruction = network.training_forward(batch, generator, bool(nested), binarize == "stochastic")
        if loss == "mse":
            return ((reconstruction - batch) ** 2).mean()
        structural = 1 - ssim(batch + 0.5, reconstruction + 0.5).mean()
        if not l1_weight:
            return structural
        return (1 - l1_weight) * structural + l1_weight * (reconstruction - batch).abs().mean()

    def export_extras(self, network, images: list[np.ndarray]) -> dict[str, Any]:
        from codecbench_codecs.lossy_cae import LossyCaeCodec

        counts = ContextCounts(1, network.config.channels)
        for image in images:
            top = max(0, (image.shape[0] - PRIOR_CROP) // 2)
            left = max(0, (image.shape[1] - PRIOR_CROP) // 2)
            crop = image[top : top + PRIOR_CROP, left : left + PRIOR_CROP]
            crop = crop[: crop.shape[0] // STRIDE * STRIDE, : crop.shape[1] // STRIDE * STRIDE]
            with torch.inference_mode():
                codes = network.encode(LossyCaeCodec.image_to_tensor(crop))
            counts.add(codes.numpy())  # 1×n×h×w: one "iteration"
        return {"entropy_prior": torch.from_numpy(counts.probabilities()), "entropy_prior_images": len(images)}
