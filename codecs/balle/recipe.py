"""Training recipe of the Ballé codecs: CompressAI's rate–distortion loss and the tables exported with the weights."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from codecbench.learned.recipe import TrainingRecipe
from codecbench_codecs.balle.model import bits, widen_latents

DEFAULT_WIDTHS = {"N": 64, "M": 96}


class BalleRecipe(TrainingRecipe):
    """Loss = bpp + λ·255²·MSE + aux, CompressAI's convention (``lambda``, default 0.0067: its quality 3).

    ``latent_scale`` S (new runs): the initial network's latents are
    multiplied by S (``rescale_latents``). From ``--init`` weights this starts
    a fine-tune for another λ at about its rate, which the fine-tune would
    otherwise reach only slowly: S ≈ √(λ_new/λ_old), since at high rate
    MSE ∝ step² and the best step ∝ 1/√λ.

    bpp = −Σ log2 likelihoods (y, and z for the hyperprior) / pixels of the
    batch; MSE on [0, 1] pixels; aux = the entropy bottleneck's quantile loss,
    whose gradient reaches only the quantiles, trained by their own optimiser
    (``auxiliary_parameters``, Adam at 1e-3 as in CompressAI).
    """

    options: ClassVar[dict[str, Any]] = {"lambda": 0.0067, "latent_scale": 1.0}

    def default_hparams(self) -> dict[str, Any]:
        return dict(DEFAULT_WIDTHS)

    def training_loss(self, network, batch, generator, **options):
        out = network(batch, generator)
        pixels = batch.shape[0] * batch.shape[2] * batch.shape[3]
        bpp = sum(bits(likelihood) for likelihood in out["likelihoods"].values()) / pixels
        mse = (out["x_hat"] - batch).pow(2).mean()
        aux = network.entropy_bottleneck.aux_loss()
        loss = bpp + float(options["lambda"]) * 255**2 * mse + aux
        return loss, {"bpp": bpp.item(), "psnr": -10 * math.log10(max(mse.item(), 1e-12)), "aux": aux.item()}

    def adapt_initial_weights(self, network, options: dict[str, Any]) -> str | None:
        scale = float(options["latent_scale"])
        if scale == 1.0:
            return None
        network.rescale_latents(scale)
        return f"latents rescaled by {scale:g} (quantisation step 1/{scale:g} of the initial weights')"

    def widen_initial_weights(self, network, initial, initial_hparams) -> str | None:
        """More latent channels M than ``--init`` (``--hparam M=…``): ``widen_latents``; other changes are refused."""
        try:
            old = widen_latents(network, initial)  # checks N and M before it changes anything
        except ValueError:
            return None
        return f"latent channels widened from {old} to {network.M}; the new ones start unused"

    def auxiliary_parameters(self, network) -> list:
        return [network.entropy_bottleneck.quantiles]

    def export_extras(self, network, images: list[np.ndarray]) -> dict[str, Any]:
        """Fit the quantiles exactly (bisection), then rebuild the integer entropy tables from the shipped
        (fp16-rounded) parameters; they are stored as buffers."""
        network.entropy_bottleneck.fit_quantiles()
        network.entropy_bottleneck.quantiles.data = network.entropy_bottleneck.quantiles.data.half().float()  # as shipped
        network.update()
        return {}
