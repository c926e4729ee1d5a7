"""Learned entropy models of Ballé et al.: the factorized density ("entropy bottleneck") and the Gaussian conditional.

Parameter and buffer names, shapes and numerics follow CompressAI's
``EntropyBottleneck`` and ``GaussianConditional`` (version 1.2), so that a
CompressAI state dict loads as it is (old ``_matrix0``-style names are
renamed on loading; tables of any size replace the empty ones).

- Training: additive uniform noise U(−½, ½) drawn from a ``torch.Generator``.
- Inference: rounding, ``ŷ = round(y − μ) + μ`` (μ: the factorized density's
  median per channel; 0 for the Gaussian conditional).
- Likelihoods are bounded below by 1e-9; Gaussian scales by 0.11.
- ``update()`` builds the integer CDF tables the coder uses
  (``codecbench.learned.tables``); they are buffers, stored with the weights,
  so encoder and decoder never recompute them from floats.
- Under ``torch.autocast`` (mixed-precision training) the likelihoods are still
  computed in float32: each is a difference of two nearly equal cumulatives,
  which bfloat16's 8-bit mantissa would lose.
"""

from __future__ import annotations

import functools
import math
from statistics import NormalDist

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from codecbench.learned.tables import quantized_cdf

LIKELIHOOD_BOUND = 1e-9
TAIL_MASS = 1e-9
SCALE_BOUND = 0.11


def default_scale_table(low: float = 0.11, high: float = 256.0, levels: int = 64) -> Tensor:
    """CompressAI's scale table: ``levels`` scales spaced evenly in log between ``low`` and ``high``."""
    return torch.exp(torch.linspace(math.log(low), math.log(high), levels))


class _LowerBoundFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bound):
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx, grad):
        x, bound = ctx.saved_tensors
        return grad * ((x >= bound) | (grad < 0)), None


class LowerBound(nn.Module):
    """``max(x, bound)``; the gradient passes where x ≥ bound or where it pushes x up (buffer ``bound``)."""

    def __init__(self, bound: float) -> None:
        super().__init__()
        self.register_buffer("bound", torch.tensor([float(bound)]))

    def forward(self, x: Tensor) -> Tensor:
        return _LowerBoundFunction.apply(x, self.bound.to(x.dtype))


class _TableBuffers(nn.Module):
    """The integer tables ``_offset``, ``_quantized_cdf``, ``_cdf_length``, resized by any state dict that carries them."""

    _TABLES = ("_offset", "_quantized_cdf", "_cdf_length")
    _RESIZED: tuple[str, ...] = _TABLES

    def __init__(self) -> None:
        super().__init__()
        for name in self._TABLES:
            self.register_buffer(name, torch.zeros(0, dtype=torch.int32))
        self.likelihood_lower_bound = LowerBound(LIKELIHOOD_BOUND)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in self._RESIZED:
            if prefix + name in state_dict:
                self._buffers[name] = torch.empty_like(state_dict[prefix + name])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def has_tables(self) -> bool:
        return self._quantized_cdf.numel() > 0

    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cdfs, cdf lengths, offsets) as NumPy arrays for ``tables.TableCoder``."""
        if not self.has_tables():
            raise ValueError("entropy tables missing: run update()")
        return self._quantized_cdf.cpu().numpy(), self._cdf_length.cpu().numpy(), self._offset.cpu().numpy()

    def _set_tables(self, pmfs: list[np.ndarray], offsets: np.ndarray) -> None:
        cdfs = [quantized_cdf(pmf) for pmf in pmfs]
        table = np.zeros((len(cdfs), max(len(c) for c in cdfs)), dtype=np.int32)
        for row, cdf in enumerate(cdfs):
            table[row, : len(cdf)] = cdf
        device = self.likelihood_lower_bound.bound.device
        self._quantized_cdf = torch.from_numpy(table).to(device)
        self._cdf_length = torch.tensor([len(c) for c in cdfs], dtype=torch.int32, device=device)
        self._offset = torch.from_numpy(np.asarray(offsets, dtype=np.int32)).to(device)


def _in_float32(method):
    """Run an entropy model's ``method`` with autocast off and its float16/bfloat16 tensor arguments in float32
    (float32 and float64 arguments are passed as they are)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        args = [a.float() if isinstance(a, Tensor) and a.dtype in (torch.float16, torch.bfloat16) else a for a in args]
        with torch.autocast(self.likelihood_lower_bound.bound.device.type, enabled=False):
            return method(self, *args, **kwargs)

    return wrapper


def _uniform_noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    return x + torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) - 0.5


class EntropyBottleneck(_TableBuffers):
    """Non-parametric factorized density per channel (Ballé et al. 2018, appendix 6.1), filters (3, 3, 3, 3)."""

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3, 3), init_scale: float = 10.0) -> None:
        super().__init__()
        self.channels = int(channels)
        self.filters = tuple(filters)
        widths = (1, *self.filters, 1)
        scale = init_scale ** (1 / (len(self.filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(self.filters) + 1):
            start = math.log(math.expm1(1 / scale / widths[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, widths[i + 1], widths[i]), start)))
            self.biases.append(nn.Parameter(torch.rand(channels, widths[i + 1], 1) - 0.5))
            if i < len(self.filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, widths[i + 1], 1)))
        self.quantiles = nn.Parameter(torch.tensor([-init_scale, 0.0, init_scale]).repeat(channels, 1, 1))
        target = math.log(2 / TAIL_MASS - 1)
        self.register_buffer("target", torch.tensor([-target, 0.0, target]))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        old_names = {"_matrix": "matrices.", "_bias": "biases.", "_factor": "factors."}  # CompressAI < 1.2
        for key in [k for k in state_dict if k.startswith(prefix)]:
            for old, new in old_names.items():
                rest = key[len(prefix) :]
                if rest.startswith(old) and rest[len(old) :].isdigit():
                    state_dict[prefix + new + rest[len(old) :]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def logits_cumulative(self, x: Tensor, stop_gradient: bool = False) -> Tensor:
        """The cumulative's logits at ``x`` (C×1×K): the density network of the paper, in ``x``'s dtype and device
        (the tables and quantiles are computed with float64 CPU inputs)."""
        logits = x
        for i, matrix in enumerate(self.matrices):
            bias = self.biases[i]
            if stop_gradient:
                matrix, bias = matrix.detach(), bias.detach()
            logits = torch.matmul(F.softplus(matrix.to(x)), logits) + bias.to(x)
            if i < len(self.factors):
                factor = self.factors[i].detach() if stop_gradient else self.factors[i]
                logits = logits + torch.tanh(factor.to(x)) * torch.tanh(logits)
        return logits

    @torch.no_grad()
    def rescale_input(self, scale: float) -> None:
        """Become the density of ``scale``·v: the first layer's matrix is divided by ``scale``, the quantiles multiplied
        (the tables are stale until ``update()``)."""
        matrix = F.softplus(self.matrices[0].double()) / scale
        self.matrices[0].copy_(torch.log(torch.expm1(matrix)))
        self.quantiles.mul_(scale)

    def _likelihood(self, values: Tensor, stop_gradient: bool = False) -> tuple[Tensor, Tensor, Tensor]:
        lower = self.logits_cumulative(values - 0.5, stop_gradient)
        upper = self.logits_cumulative(values + 0.5, stop_gradient)
        return torch.sigmoid(upper) - torch.sigmoid(lower), lower, upper

    def medians(self) -> Tensor:
        """The density's median per channel (C,)."""
        return self.quantiles[:, 0, 1].detach()

    @_in_float32
    def forward(self, y: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(ŷ, likelihoods) of N×C×H×W latents: noisy in training, rounded about the medians otherwise."""
        if self.training:
            y_hat = _uniform_noise(y, generator)
        else:
            medians = self.medians().view(1, -1, 1, 1)
            y_hat = torch.round(y - medians) + medians
        values = y_hat.transpose(0, 1).reshape(self.channels, 1, -1)
        likelihood = self.likelihood_lower_bound(self._likelihood(values)[0])
        return y_hat, likelihood.reshape(y_hat.transpose(0, 1).shape).transpose(0, 1)

    @_in_float32
    def aux_loss(self) -> Tensor:
        """Σ |logits(quantiles) − target|: fits the quantiles (tails, median) to the density; gradient to ``quantiles`` only."""
        return torch.abs(self.logits_cumulative(self.quantiles, stop_gradient=True) - self.target).sum()

    def symbols(self, y: Tensor) -> Tensor:
        """Integers ``round(y − median)`` (int64, N×C×H×W)."""
        return torch.round(y - self.medians().view(1, -1, 1, 1).to(y.dtype)).long()

    def dequantize(self, symbols: Tensor) -> Tensor:
        return symbols.float() + self.medians().view(1, -1, 1, 1)

    @torch.no_grad()
    def fit_quantiles(self, radius: float = 1e4, iterations: int = 64) -> None:
        """Set ``quantiles`` to where the cumulative's logits reach ``target`` (the tails and the median), by bisection
        in float64: exact where the auxiliary loss has not converged (short training)."""
        for k, target in enumerate(self.target.double().tolist()):
            low = torch.full((self.channels, 1, 1), -radius, dtype=torch.float64)
            high = torch.full((self.channels, 1, 1), radius, dtype=torch.float64)
            for _ in range(iterations):  # the logits increase monotonically with x
                middle = (low + high) / 2
                below = self.logits_cumulative(middle, stop_gradient=True) < target
                low, high = torch.where(below, middle, low), torch.where(below, high, middle)
            self.quantiles[:, :, k] = ((low + high) / 2)[:, :, 0].to(self.quantiles.dtype)

    @torch.no_grad()
    def update(self) -> None:
        """Build the integer tables: per channel, the integers around the median between the tail quantiles."""
        q = self.quantiles.detach().double().cpu()
        medians = q[:, 0, 1]
        minima = torch.clamp(torch.ceil(medians - q[:, 0, 0]), min=0).long()
        maxima = torch.clamp(torch.ceil(q[:, 0, 2] - medians), min=0).long()
        lengths = (minima + maxima + 1).tolist()
        samples = (medians - minima).view(-1, 1, 1) + torch.arange(max(lengths), dtype=torch.float64).view(1, 1, -1)
        pmf, lower, upper = self._likelihood(samples, stop_gradient=True)  # C×1×K, float64
        pmfs = []
        for c, length in enumerate(lengths):
            tail = torch.sigmoid(lower[c, 0, 0]) + torch.sigmoid(-upper[c, 0, length - 1])
            pmfs.append(np.append(pmf[c, 0, :length].numpy(), tail.item()))
        self._set_tables(pmfs, (-minima).numpy())


class GaussianConditional(_TableBuffers):
    """Zero-mean Gaussian convolved with U(−½, ½), one scale per latent; scales index a fixed table."""

    _RESIZED = (*_TableBuffers._TABLES, "scale_table")

    def __init__(self, scale_bound: float = SCALE_BOUND) -> None:
        super().__init__()
        self.lower_bound_scale = LowerBound(scale_bound)
        self.register_buffer("scale_table", torch.zeros(0))
        self.register_buffer("scale_bound", torch.tensor([float(scale_bound)]))

    @staticmethod
    def _cumulative(x: Tensor) -> Tensor:
        return 0.5 * torch.erfc(-(2**-0.5) * x)

    def likelihood(self, y_hat: Tensor, scales: Tensor) -> Tensor:
        scales = self.lower_bound_scale(scales)
        values = torch.abs(y_hat)
        return self._cumulative((0.5 - values) / scales) - self._cumulative((-0.5 - values) / scales)

    @_in_float32
    def forward(self, y: Tensor, scales: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        y_hat = _uniform_noise(y, generator) if self.training else torch.round(y)
        return y_hat, self.likelihood_lower_bound(self.likelihood(y_hat, scales))

    def indexes(self, scales: Tensor) -> np.ndarray:
        """Table index per scale: the first table scale ≥ max(scale, bound), the last one beyond it (int64)."""
        table = self.scale_table.double().cpu().numpy()
        bounded = np.maximum(scales.detach().double().cpu().numpy(), float(self.lower_bound_scale.bound))
        return np.minimum(np.searchsorted(table, bounded, side="left"), len(table) - 1)

    @torch.no_grad()
    def update(self, scale_table: Tensor | None = None) -> None:
        """Build one integer table per scale of ``scale_table`` (default: CompressAI's 64 scales, 0.11–256)."""
        if scale_table is not None or self.scale_table.numel() == 0:
            table = default_scale_table() if scale_table is None else scale_table
            self.scale_table = table.float().to(self.scale_bound.device)
        scales = self.scale_table.double().cpu()
        multiplier = -NormalDist().inv_cdf(TAIL_MASS / 2)
        centers = torch.ceil(scales * multiplier).long()
        pmfs = []
        for scale, center in zip(scales.tolist(), centers.tolist()):
            samples = torch.abs(torch.arange(2 * center + 1, dtype=torch.float64) - center)
            upper = self._cumulative((0.5 - samples) / scale)
            lower = self._cumulative((-0.5 - samples) / scale)
            pmfs.append(np.append((upper - lower).numpy(), 2 * lower[0].item()))
        self._set_tables(pmfs, (-centers).numpy())
