"""Symmetric convolutional autoencoder of Cheng, Sun, Takeuchi and Katto (2018), widths configurable.

Conventions: images are float tensors N×3×H×W in RGB scaled to [-0.5, 0.5]
(``uint8 / 255 - 0.5``); H and W are multiples of ``STRIDE`` (8). The code is
N×C×H/8×W/8 (C = ``code_channels``, 32 by default: one 32-value code per 8×8
block, as the study's 16×16×32 code of a 128×128 block), bounded to (-1, 1)
by a tanh so that the precision-B quantizer ``round(y · 2^(B−1))`` of the
codec has a fixed meaning.

Encoder: conv 5×5 s2 → PReLU → conv 3×3 s2 → PReLU → conv 3×3 s2 → PReLU →
``res_blocks`` residual blocks (conv 3×3, PReLU, conv 3×3, + input) → conv
3×3 to C channels → tanh. Decoder (mirror, sub-pixel convolutions as in the
study): conv 3×3 C → w3, PReLU, residual blocks, then three stages of conv
3×3 + depth-to-space ×2 (to w2, w1, RGB), PReLU after the first two; no
output nonlinearity (the codec clips to 0–255).

Training (``noisy_forward``): additive uniform noise of width Δ = 2^−(B−1)
on the code in place of quantization, B drawn per crop uniformly in
[``b_min``, ``b_max``] (continuous), loss = MSE, no rate term. Optional
fine-tuning stage (``pca_dropout_forward``): the same noise on the batch's
PCA coefficients, and each crop keeps only its first k of them, so that
the network learns to work with dropped PCA channels and to put what
matters into the first ones (still MSE only, no rate term).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

STRIDE = 8  # total down-sampling of the encoder (three stride-2 stages)


@dataclass(frozen=True)
class CaePcaConfig:
    """Widths of the three encoder stages (decoder mirrored), code channels, residual blocks at 1/8 resolution."""

    widths: tuple[int, int, int] = (32, 64, 96)
    code_channels: int = 32
    res_blocks: int = 1

    def __post_init__(self) -> None:
        if len(self.widths) != 3 or min(self.widths) < 1:
            raise ValueError(f"cae_pca needs 3 positive widths, got {self.widths}")
        if not 1 <= self.code_channels <= 256:
            raise ValueError(f"code_channels must be 1–256, got {self.code_channels}")
        if self.res_blocks < 0:
            raise ValueError(f"res_blocks must be ≥ 0, got {self.res_blocks}")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CaePcaConfig:
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown cae_pca hyper-parameter(s): {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def build_network(hparams: dict[str, Any]) -> CaePcaNet:
    """An untrained network with these hyper-parameters (``CaePcaConfig.to_dict`` form)."""
    return CaePcaNet(CaePcaConfig.from_dict(hparams))


class ResBlock(nn.Module):
    """x + conv3×3(PReLU(conv3×3(x)))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1), nn.PReLU(channels), nn.Conv2d(channels, channels, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class CaePcaNet(nn.Module):
    """Encoder (image → tanh code at 1/8 resolution) and decoder (code → image)."""

    def __init__(self, config: CaePcaConfig) -> None:
        super().__init__()
        self.config = config
        w1, w2, w3 = config.widths
        c = config.code_channels
        self.encoder = nn.Sequential(
            nn.Conv2d(3, w1, 5, 2, 2), nn.PReLU(w1),
            nn.Conv2d(w1, w2, 3, 2, 1), nn.PReLU(w2),
            nn.Conv2d(w2, w3, 3, 2, 1), nn.PReLU(w3),
            *[ResBlock(w3) for _ in range(config.res_blocks)],
            nn.Conv2d(w3, c, 3, 1, 1), nn.Tanh(),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(c, w3, 3, 1, 1), nn.PReLU(w3),
            *[ResBlock(w3) for _ in range(config.res_blocks)],
            nn.Conv2d(w3, 4 * w2, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(w2),
            nn.Conv2d(w2, 4 * w1, 3, 1, 1), nn.PixelShuffle(2), nn.PReLU(w1),
            nn.Conv2d(w1, 12, 3, 1, 1), nn.PixelShuffle(2),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Code N×C×H/8×W/8 in (-1, 1)."""
        return self.encoder(x)

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """Reconstruction N×3×H×W (unclipped) from a code N×C×h×w."""
        return self.decoder(code)

    def noisy_forward(self, x: torch.Tensor, generator: torch.Generator | None, b_min: float, b_max: float) -> torch.Tensor:
        """Training pass: code + U(−Δ/2, Δ/2) noise, Δ = 2^−(B−1) with B ~ U[b_min, b_max] per crop; returns x̂."""
        code = self.encode(x)
        bits = b_min + (b_max - b_min) * torch.rand((x.shape[0], 1, 1, 1), generator=generator, device=x.device)
        step = torch.pow(2.0, 1.0 - bits)
        noise = (torch.rand(code.shape, generator=generator, device=x.device) - 0.5) * step
        return self.decode(code + noise)

    def pca_dropout_forward(self, x: torch.Tensor, generator: torch.Generator | None, b_min: float, b_max: float) -> torch.Tensor:
        """Training pass with PCA-channel dropout (``pca_dropout`` option): returns x̂.

        The batch's codes are rotated by their own PCA (eigenvectors of the channel covariance over all
        positions of the batch, sorted by decreasing energy, no gradient through it); each crop keeps its
        first k ~ U{1…C} coefficients, with U(−Δ/2, Δ/2) noise, Δ = 2^−(B−1), B ~ U[b_min, b_max];
        the others are zeroed (as the codec drops them) before rotating back and decoding.
        """
        code = self.encode(x)
        n, c = code.shape[:2]
        with torch.no_grad():
            vectors = code.detach().transpose(0, 1).reshape(c, -1).double()
            mean = vectors.mean(dim=1)
            energy, eigenvectors = torch.linalg.eigh(torch.cov(vectors).reshape(c, c))
            basis = eigenvectors.flip(1).T.to(code.dtype)  # rows sorted by decreasing energy
        z = torch.einsum("kc,nchw->nkhw", basis, code - mean.to(code.dtype).view(1, c, 1, 1))
        bits = b_min + (b_max - b_min) * torch.rand((n, 1, 1, 1), generator=generator, device=x.device)
        z = z + (torch.rand(z.shape, generator=generator, device=x.device) - 0.5) * torch.pow(2.0, 1.0 - bits)
        kept = torch.randint(1, c + 1, (n, 1, 1, 1), generator=generator, device=x.device)
        z = z * (torch.arange(c, device=x.device).view(1, c, 1, 1) < kept).to(z.dtype)
        return self.decode(torch.einsum("kc,nkhw->nchw", basis, z) + mean.to(code.dtype).view(1, c, 1, 1))
