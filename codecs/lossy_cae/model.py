"""Lossy convolutional autoencoder with stochastic binarization, and nested channel dropout.

Conventions: images are float tensors N×3×H×W in RGB scaled to [-0.5, 0.5]
(``uint8 / 255 - 0.5``); H and W are multiples of ``STRIDE`` (4). The code
is n binary channels at 1/4 resolution, b ∈ {0, 1}, N×n×H/4×W/4: n/16 bits
per pixel before entropy coding (n = ``channels``, 32 by default).

Encoder: conv 5×5 s2 → PReLU → conv 3×3 s2 → PReLU → conv 3×3 → PReLU →
conv 3×3 to n channels → sigmoid: p = P(b = 1). Binarization: training
b ~ Bernoulli(p), gradient passed straight through (db/dp = 1);
inference b = 1 if p > 0.5 else 0 (logit > 0).

Decoder input: d = (2b − 1) on the first k channels, 0 on the others (the
"dropped" channels carry no bits). Decoder: conv 3×3 → PReLU → conv 3×3 →
PReLU → conv 3×3 + depth-to-space ×2 → PReLU → conv 3×3 + depth-to-space ×2
to RGB, no output nonlinearity (the codec clips to 0–255).

Threshold training (option): a network trained with stochastic bits for a
short time leaves many p near ½, and its decoder has learnt the average over
their random bits, not the thresholded ones; a final stage with thresholded
bits (gradient straight through) trains it on the bits inference sends.

Nested channel dropout (training): each crop draws k uniformly from 1…n and
is decoded from its first k channels only, so every prefix of the code is a
usable code and one network serves the rates k/16 bpp, k = 1…n.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

STRIDE = 4


@dataclass(frozen=True)
class LossyCaeConfig:
    """Widths of the 1/2- and 1/4-resolution stages, and n, the binary channels of the code."""

    widths: tuple[int, int] = (32, 64)
    channels: int = 32

    def __post_init__(self) -> None:
        if len(self.widths) != 2 or min(self.widths) < 1:
            raise ValueError(f"lossy_cae needs 2 positive widths, got {self.widths}")
        if not 1 <= self.channels <= 64:
            raise ValueError(f"channels must be 1–64, got {self.channels}")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LossyCaeConfig:
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown lossy_cae hyper-parameter(s): {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def stochastic_binarize(p: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Training bits: b = 1 with probability p else 0 (so E[b] = p), gradient straight through (db/dp = 1)."""
    sample = (torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype) < p).to(p.dtype)
    return p + (sample - p).detach()


def build_network(hparams: dict[str, Any]) -> LossyCaeNet:
    """An untrained network with these hyper-parameters (``LossyCaeConfig.to_dict`` form)."""
    return LossyCaeNet(LossyCaeConfig.from_dict(hparams))


class LossyCaeNet(nn.Module):
    """Encoder (image → logits of n bits at 1/4 resolution) and decoder (first k bits → image)."""

    def __init__(self, config: LossyCaeConfig) -> None:
        super().__init__()
        self.config = config
        w1, w2 = config.widths
        n = config.channels
        self.encoder = nn.Sequential(
            nn.Conv2d(3, w1, 5, 2, 2), nn.PReLU(w1),
            nn.Conv2d(w1, w2, 3, 2, 1), nn.PReLU(w2),
            nn.Conv2d(w2, w2, 3, 1, 1), nn.PReLU(w2),
            nn.Conv2d(w2, n, 3, 1, 1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(n, w2, 3, 1, 1), nn.PReLU(w2),
            nn.Conv2d(w2, w2, 3, 1, 1), nn.PReLU(w2),
            nn.Conv2d(w2, 4 * w1, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(w1),
            nn.Conv2d(w1, 12, 3, 1, 1), nn.PixelShuffle(2),
        )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Encoder output N×n×H/4×W/4; P(b = 1) = sigmoid(logits)."""
        return self.encoder(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Inference code: bool N×n×H/4×W/4, b = 1 where the logit is > 0."""
        return self.logits(x) > 0

    def decode(self, bits: torch.Tensor, kept: int | None = None) -> torch.Tensor:
        """Reconstruction N×3×H×W (unclipped) from bits N×k×h×w ({0, 1}, any dtype); missing channels are 0 input."""
        n = self.config.channels
        kept = bits.shape[1] if kept is None else kept
        dtype = next(self.parameters()).dtype
        signs = bits[:, :kept].to(dtype) * 2 - 1
        if kept < n:
            signs = torch.cat([signs, signs.new_zeros((signs.shape[0], n - kept, *signs.shape[2:]))], dim=1)
        return self.decoder(signs)

    def training_forward(self, x: torch.Tensor, generator: torch.Generator | None, nested: bool = True,
                         stochastic: bool = True) -> torch.Tensor:
        """Bits (straight-through), each crop decoded from its first k ~ U{1…n} channels (all if not ``nested``).

        ``stochastic``: b ~ Bernoulli(p) (the study's training); else the inference threshold b = [p > ½]
        with the gradient passed straight through, which trains the decoder on the bits it will get."""
        p = torch.sigmoid(self.logits(x))
        bits = stochastic_binarize(p, generator) if stochastic else p + ((p > 0.5).to(p.dtype) - p).detach()
        signs = bits * 2 - 1
        if nested:
            n = self.config.channels
            kept = torch.randint(1, n + 1, (x.shape[0], 1, 1, 1), generator=generator, device=x.device)
            signs = signs * (torch.arange(n, device=x.device).view(1, n, 1, 1) < kept).to(signs.dtype)
        return self.decoder(signs)
