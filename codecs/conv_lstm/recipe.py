"""Training recipe of ``conv_lstm``: default widths, the loss, and the entropy priors exported with the weights."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from codecbench.learned.entropy import ContextCounts
from codecbench.learned.recipe import TrainingRecipe
from codecbench_codecs.conv_lstm import MAX_ITERATIONS, ConvLstmCodec
from codecbench_codecs.conv_lstm.model import ConvLstmConfig

PRIOR_CROP = 512  # pixels; side of the crops the entropy priors are measured on


class ConvLstmRecipe(TrainingRecipe):
    """Options: ``iterations`` per step (default 16), ``ms_ssim_weight`` α of the loss (``ConvLstmNet.loss``)."""

    options: ClassVar[dict[str, Any]] = {"iterations": 16, "ms_ssim_weight": 0.0}

    def default_hparams(self) -> dict[str, Any]:
        return ConvLstmConfig().to_dict()

    def training_loss(self, network, batch, generator, iterations: int = 16, ms_ssim_weight: float = 0.0):
        return network.loss(batch, int(iterations), generator, float(ms_ssim_weight))

    def export_extras(self, network, images: list[np.ndarray]) -> dict[str, Any]:
        """Entropy-coder priors: P(bit = 1) per context, counted on the codes of the central
        ``PRIOR_CROP``×``PRIOR_CROP`` crop of each of ``images`` at 16 iterations (rare contexts
        backed off to coarser ones, see ``ContextCounts.probabilities``)."""
        counts = ContextCounts(MAX_ITERATIONS, network.config.bits)
        for image in images:
            top = max(0, (image.shape[0] - PRIOR_CROP) // 2)
            left = max(0, (image.shape[1] - PRIOR_CROP) // 2)
            crop = image[top : top + PRIOR_CROP, left : left + PRIOR_CROP]
            padded = np.pad(crop, ((0, -crop.shape[0] % 16), (0, -crop.shape[1] % 16), (0, 0)), mode="edge")
            codes = network.encode(ConvLstmCodec.image_to_tensor(padded), MAX_ITERATIONS)[:, 0]
            counts.add(codes.numpy())
        return {"entropy_prior": torch.from_numpy(counts.probabilities()), "entropy_prior_images": len(images)}
