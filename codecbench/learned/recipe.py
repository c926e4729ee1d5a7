"""How a learned codec's network is trained: the interface the trainer runs.

A ``LearnedCodec`` subclass names its recipe as ``recipe = "module:Class"``;
``codecbench train MODEL`` loads it from there (``codecbench.learned.training``).
The network itself comes from the codec's ``build_network(hparams)``, the same
factory the codec uses to load weights, so trained weights always fit the codec.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np


class TrainingRecipe:
    """Defaults, loss and exported extras of one codec's training.

    ``options``: the training options (``--option KEY=VALUE``) and their defaults;
    they reach ``training_loss`` as keyword arguments.
    """

    options: ClassVar[dict[str, Any]] = {}
    auxiliary_lr: ClassVar[float] = 1e-3  # Adam learning rate of ``auxiliary_parameters`` (constant, not clipped)

    def default_hparams(self) -> dict[str, Any]:
        """Hyper-parameters (widths) of a freshly trained network."""
        raise NotImplementedError

    def training_loss(self, network, batch, generator, **options):
        """Scalar loss of ``network`` (train mode) on ``batch`` (from the codec's ``image_to_tensor``), or
        ``(loss, parts)`` where ``parts`` maps names to floats the trainer logs beside it (e.g. bpp, mse).

        ``generator`` (a ``torch.Generator``) drives any training noise, so runs repeat exactly.
        """
        raise NotImplementedError

    def adapt_initial_weights(self, network, options: dict[str, Any]) -> str | None:
        """Adjust a new run's initial network (random, or loaded from ``--init``) for this run's ``options``;
        return a line for the log, or None when nothing changed. Not called on resumed runs. Default: nothing."""
        return None

    def widen_initial_weights(self, network, initial: dict, initial_hparams: dict[str, Any]) -> str | None:
        """Load ``initial``, a state dict for the hyper-parameters ``initial_hparams``, into ``network``, built wider
        (``--init`` with ``--hparam``), keeping the function it computes; return a line for the log, or None when this
        codec cannot change widths (the trainer then refuses the run). Default: None."""
        return None

    def auxiliary_parameters(self, network) -> list:
        """Parameters trained by their own optimiser (e.g. an entropy model's quantiles, CompressAI's "aux" loss);
        they are left out of the main optimiser and of gradient clipping. Default: none."""
        return []

    def export_extras(self, network, images: list[np.ndarray]) -> dict[str, Any]:
        """Codec data stored with the weights (e.g. entropy priors measured on ``images``); ``network`` is in eval mode."""
        return {}
