"""Networks of Ballé et al.: factorized prior (ICLR 2017) and scale hyperprior (ICLR 2018).

Layer names, shapes and numerics follow CompressAI's ``FactorizedPrior`` and
``ScaleHyperprior`` (``bmshj2018-factorized`` / ``bmshj2018-hyperprior``), so
their state dicts load as they are. Input: N×3×H×W in [0, 1]; H and W
multiples of 16 (factorized) or 64 (hyperprior).

- ``g_a``: four 5×5 stride-2 convolutions, GDN between them; ``g_s``: the
  transposed mirror with inverse GDN (N channels inside, M latent channels).
- Hyperprior: ``h_a`` (3×3 then two 5×5 stride-2 convolutions, ReLU) on |y|,
  ``h_s`` (two 5×5 stride-2 transposed convolutions, a 3×3 convolution, ReLU)
  predicts each latent's Gaussian scale; z is coded by its own factorized density.

Training loss (CompressAI's convention): ``bpp + λ·255²·MSE`` plus the
entropy bottleneck's auxiliary quantile loss, bpp = −Σ log2 likelihoods / pixels.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codecbench.learned.entropy_models import EntropyBottleneck, GaussianConditional, LowerBound


class NonNegative(nn.Module):
    """Reparametrisation p = max(θ, √(minimum + ε²))² − ε² (ε = 2⁻¹⁸), buffers ``pedestal`` = ε² and ``lower_bound``."""

    def __init__(self, minimum: float = 0.0, offset: float = 2**-18) -> None:
        super().__init__()
        self.register_buffer("pedestal", torch.tensor([offset**2]))
        self.lower_bound = LowerBound((minimum + offset**2) ** 0.5)

    def init(self, x: Tensor) -> Tensor:
        return torch.sqrt(torch.max(x + self.pedestal, self.pedestal))

    def forward(self, x: Tensor) -> Tensor:
        return self.lower_bound(x) ** 2 - self.pedestal


class GDN(nn.Module):
    """Generalized divisive normalization y_i = x_i / √(β_i + Σ_j γ_ij x_j²); inverse: x_i · √(…)."""

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1) -> None:
        super().__init__()
        self.inverse = inverse
        self.beta_reparam = NonNegative(beta_min)
        self.gamma_reparam = NonNegative()
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(channels)))
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(channels)))

    def forward(self, x: Tensor) -> Tensor:
        channels = x.shape[1]
        norm = F.conv2d(x * x, self.gamma_reparam(self.gamma).reshape(channels, channels, 1, 1), self.beta_reparam(self.beta))
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))


def _conv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride, kernel // 2)


def _deconv(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, kernel, stride, kernel // 2, output_padding=stride - 1)


def _transforms(n: int, m: int) -> tuple[nn.Sequential, nn.Sequential]:
    analysis = nn.Sequential(_conv(3, n), GDN(n), _conv(n, n), GDN(n), _conv(n, n), GDN(n), _conv(n, m))
    synthesis = nn.Sequential(
        _deconv(m, n), GDN(n, inverse=True), _deconv(n, n), GDN(n, inverse=True),
        _deconv(n, n), GDN(n, inverse=True), _deconv(n, 3),
    )
    return analysis, synthesis


def _widths(hparams: dict[str, Any]) -> tuple[int, int]:
    unknown = set(hparams) - {"N", "M"}
    if unknown:
        raise ValueError(f"unknown hyper-parameter(s) {sorted(unknown)}; known: N, M")
    return int(hparams["N"]), int(hparams["M"])


def _rescale_transforms(network: nn.Module, scale: float) -> None:
    """g_a's last convolution (weight and bias) times ``scale``, g_s's first (linear in y) divided by it."""
    if not scale > 0:
        raise ValueError(f"latent scale must be positive, got {scale}")
    network.g_a[-1].weight.mul_(scale)
    network.g_a[-1].bias.mul_(scale)
    network.g_s[0].weight.div_(scale)


def bits(likelihoods: Tensor) -> Tensor:
    """−Σ log2 likelihoods."""
    return -torch.log2(likelihoods).sum()


class FactorizedPrior(nn.Module):
    """bmshj2018-factorized: y = g_a(x), ŷ coded by a per-channel factorized density, x̂ = g_s(ŷ)."""

    downsampling = 16

    def __init__(self, N: int, M: int) -> None:
        super().__init__()
        self.N, self.M = N, M
        self.g_a, self.g_s = _transforms(N, M)
        self.entropy_bottleneck = EntropyBottleneck(M)

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Any]:
        y_hat, likelihood = self.entropy_bottleneck(self.g_a(x), generator)
        return {"x_hat": self.g_s(y_hat), "likelihoods": {"y": likelihood}}

    def entropy_models(self) -> list[nn.Module]:
        return [self.entropy_bottleneck]

    @torch.no_grad()
    def rescale_latents(self, scale: float) -> None:
        """y → ``scale``·y with g_s and the density following, so the continuous model is unchanged and the
        quantisation step becomes 1/``scale`` in the old units (> 1: more bits, less distortion)."""
        _rescale_transforms(self, scale)
        self.entropy_bottleneck.rescale_input(scale)

    def update(self) -> None:
        """Rebuild the integer entropy tables from the current parameters."""
        self.entropy_bottleneck.update()


class ScaleHyperprior(nn.Module):
    """bmshj2018-hyperprior: z = h_a(|y|) coded by a factorized density; scales = h_s(ẑ) drive a Gaussian conditional for ŷ."""

    downsampling = 64

    def __init__(self, N: int, M: int) -> None:
        super().__init__()
        self.N, self.M = N, M
        self.g_a, self.g_s = _transforms(N, M)
        self.h_a = nn.Sequential(_conv(M, N, 3, 1), nn.ReLU(inplace=True), _conv(N, N), nn.ReLU(inplace=True), _conv(N, N))
        self.h_s = nn.Sequential(
            _deconv(N, N), nn.ReLU(inplace=True), _deconv(N, N), nn.ReLU(inplace=True), _conv(N, M, 3, 1), nn.ReLU(inplace=True)
        )
        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional()
        self._exact_h_s: list[nn.Sequential] = []  # a float64 CPU copy of h_s, outside the state dict

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> dict[str, Any]:
        y = self.g_a(x)
        z_hat, z_likelihood = self.entropy_bottleneck(self.h_a(torch.abs(y)), generator)
        y_hat, y_likelihood = self.gaussian_conditional(y, self.h_s(z_hat), generator)
        return {"x_hat": self.g_s(y_hat), "likelihoods": {"y": y_likelihood, "z": z_likelihood}}

    def entropy_models(self) -> list[nn.Module]:
        return [self.entropy_bottleneck, self.gaussian_conditional]

    @torch.no_grad()
    def rescale_latents(self, scale: float) -> None:
        """y → ``scale``·y with g_s, h_a (z unchanged) and the predicted scales following, so the continuous model is
        unchanged and the quantisation step becomes 1/``scale`` in the old units (> 1: more bits, less distortion).

        One exception: the Gaussian conditional's lower bound on scales (0.11) stays in the new units, so for
        ``scale`` < 1 the likelihoods of latents whose scaled prediction falls below it change slightly."""
        _rescale_transforms(self, scale)
        self.h_a[0].weight.div_(scale)
        self.h_s[-2].weight.mul_(scale)  # the final ReLU is positive-homogeneous
        self.h_s[-2].bias.mul_(scale)

    def update(self) -> None:
        """Rebuild the integer entropy tables (the scale table is kept if the model has one)."""
        self.entropy_bottleneck.update()
        self.gaussian_conditional.update()

    def scale_indexes(self, z_hat: Tensor):
        """Table index of each latent's scale, from ``h_s`` run in float64 on the CPU.

        Encoder and decoder both compute them from the decoded ẑ; float64 makes
        a thread count or machine that rounds differently in the last bits pick
        another table only if a scale lies within ~1e-15 of a table boundary.
        """
        if not self._exact_h_s:
            import copy

            self._exact_h_s.append(copy.deepcopy(self.h_s).double().cpu())
        return self.gaussian_conditional.indexes(self._exact_h_s[0](z_hat.double().cpu()))

    def _apply(self, fn, *args, **kwargs):  # a moved, retyped or reloaded network rebuilds its float64 copy on next use
        self._exact_h_s.clear()
        return super()._apply(fn, *args, **kwargs)

    def _load_from_state_dict(self, *args, **kwargs):
        self._exact_h_s.clear()
        super()._load_from_state_dict(*args, **kwargs)


@torch.no_grad()
def widen_latents(network: nn.Module, initial: dict[str, Tensor]) -> int:
    """Load ``initial``, the state of the same model with fewer latent channels M (same N), into the wider ``network``.

    The old channels keep their weights and the new ones start unused, so the
    reconstruction, the old channels' likelihoods and (hyperprior) z are
    unchanged: g_s's and h_a's weights on the new channels are zero, g_a's rows
    for them are a tenth of their random initialisation (small latents). Their
    densities start narrow, so they cost little: the factorized model copies the
    old channel whose density is narrowest (quantile spread); the hyperprior
    predicts scale 0.11, the Gaussian conditional's lower bound, with
    ``h_s``'s new rows zero (bias 0.11, so the final ReLU passes gradients).
    Returns the number of old channels.
    """
    old = initial["g_a.6.weight"].shape[0]
    if initial["g_a.0.weight"].shape[0] != network.N or old > network.M:
        raise ValueError(
            f"widening needs the same N and no fewer latent channels: initial N={initial['g_a.0.weight'].shape[0]}, M={old};"
            f" network N={network.N}, M={network.M}"
        )
    state = network.state_dict()
    for name, target in state.items():
        source = initial.get(name)
        if source is None or source.dim() != target.dim():
            continue  # the entropy tables (empty until exported) and names of another model
        if source.shape == target.shape:
            target.copy_(source)
        elif all(s <= t for s, t in zip(source.shape, target.shape)):
            target[tuple(slice(0, s) for s in source.shape)] = source
    state["g_a.6.weight"][old:] *= 0.1
    state["g_a.6.bias"][old:] = 0.0
    state["g_s.0.weight"][old:] = 0.0
    if isinstance(network, ScaleHyperprior):
        state["h_a.0.weight"][:, old:] = 0.0
        state["h_s.4.weight"][old:] = 0.0
        state["h_s.4.bias"][old:] = float(network.gaussian_conditional.scale_bound)
    else:
        quantiles = state["entropy_bottleneck.quantiles"]
        narrowest = int(torch.argmin(quantiles[:old, 0, 2] - quantiles[:old, 0, 0]))
        for name, tensor in state.items():
            if name.startswith("entropy_bottleneck.") and tensor.dim() == 3 and tensor.shape[0] == network.M:
                tensor[old:] = tensor[narrowest]
    network.load_state_dict(state)
    return old


def build_factorized(hparams: dict[str, Any]) -> FactorizedPrior:
    """An untrained FactorizedPrior with widths ``{"N": …, "M": …}``."""
    return FactorizedPrior(*_widths(hparams))


def build_hyperprior(hparams: dict[str, Any]) -> ScaleHyperprior:
    """An untrained ScaleHyperprior with widths ``{"N": …, "M": …}``."""
    return ScaleHyperprior(*_widths(hparams))
