"""Conv/deconv LSTM network of Toderici et al. (ICLR 2016), widths configurable.

Conventions: images are float tensors N×3×H×W in RGB scaled to [-0.5, 0.5]
(``uint8 / 255 - 0.5``); H and W are multiples of 16. Codes are ±1 tensors
N×bits×H/16×W/16 (one ``bits``-bit code per 16×16 block per iteration,
32 bits by default = 0.125 bpp before entropy coding).

One iteration t encodes the residual r_{t-1} = x - x̂_{t-1} (r_0 = x) into a
code b_t and decodes b_t into a full reconstruction x̂_t ("one-shot", the
paper's and the shipped weights' choice); the LSTM states of encoder and
decoder persist across iterations.

Variant (Toderici et al. CVPR 2017, ``reconstruction="additive"``): the
decoder output is a correction, x̂_t = x̂_{t-1} + D(b_t) / g_t, optionally
with "residual scaling": learned per-iteration gains g_t (``residual_gain``)
multiply the encoder input r_{t-1} and divide the decoder output, so every
iteration codes a residual of similar magnitude.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from codecbench.learned.losses import ms_ssim

STRIDE = 16  # total down-sampling of the encoder (four stride-2 stages)
MAX_ITERATIONS = 16


@dataclass(frozen=True)
class ConvLstmConfig:
    """Layer widths (paper: encoder (64, 256, 512, 512), decoder (512, 512, 256, 128), bits 32) and the
    reconstruction mode: ``one_shot`` (paper) or ``additive`` (with ``residual_gain``: learned gains)."""

    encoder_widths: tuple[int, int, int, int] = (32, 64, 128, 128)
    decoder_widths: tuple[int, int, int, int] = (128, 128, 64, 32)
    bits: int = 32
    reconstruction: str = "one_shot"
    residual_gain: bool = False

    def __post_init__(self) -> None:
        if self.reconstruction not in ("one_shot", "additive"):
            raise ValueError(f"reconstruction must be 'one_shot' or 'additive', not {self.reconstruction!r}")
        if self.residual_gain and self.reconstruction != "additive":
            raise ValueError("residual_gain needs additive reconstruction")
        if len(self.encoder_widths) != 4 or len(self.decoder_widths) != 4:
            raise ValueError("conv_lstm needs 4 encoder and 4 decoder widths")
        if any(w % 4 for w in self.decoder_widths):
            raise ValueError(f"decoder widths must be multiples of 4 (depth-to-space ×2): {self.decoder_widths}")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ConvLstmConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown conv_lstm hyper-parameter(s): {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def build_network(hparams: dict[str, Any]) -> ConvLstmNet:
    """An untrained network with these hyper-parameters (``ConvLstmConfig.to_dict`` form)."""
    return ConvLstmNet(ConvLstmConfig.from_dict(hparams))


class ConvLstmCell(nn.Module):
    """ConvLSTM: gates i, f, o, g = conv_x(x) + conv_h(h); c' = f·c + i·g; h' = o·tanh(c')."""

    def __init__(self, in_ch: int, hidden: int, kernel: int = 3, stride: int = 1, hidden_kernel: int = 1) -> None:
        super().__init__()
        self.hidden = hidden
        self.conv_x = nn.Conv2d(in_ch, 4 * hidden, kernel, stride, kernel // 2)
        self.conv_h = nn.Conv2d(hidden, 4 * hidden, hidden_kernel, 1, hidden_kernel // 2, bias=False)
        with torch.no_grad():  # forget-gate bias 1: remember by default at the start of training
            self.conv_x.bias.zero_()
            self.conv_x.bias[hidden : 2 * hidden] = 1.0

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        gates = self.conv_x(x)
        if state is not None:
            gates = gates + self.conv_h(state[0])
        i, f, o, g = gates.chunk(4, dim=1)
        i, f, o, g = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o), torch.tanh(g)
        c = i * g if state is None else f * state[1] + i * g
        h = o * torch.tanh(c)
        return h, (h, c)


class Encoder(nn.Module):
    """Conv s2 → three ConvLSTM s2 stages: N×3×H×W → N×w4×H/16×W/16."""

    def __init__(self, widths: tuple[int, int, int, int]) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.conv = nn.Conv2d(3, w1, 3, 2, 1)
        self.rnn = nn.ModuleList([ConvLstmCell(w1, w2, stride=2), ConvLstmCell(w2, w3, stride=2), ConvLstmCell(w3, w4, stride=2)])

    def forward(self, x: torch.Tensor, states: list) -> torch.Tensor:
        x = self.conv(x)
        for k, cell in enumerate(self.rnn):
            x, states[k] = cell(x, states[k])
        return x


class Binarizer(nn.Module):
    """1×1 conv to ``bits`` channels, tanh, then ±1.

    Training: unbiased stochastic b = +1 with probability (1+x)/2 else -1, gradient straight
    through (db/dx = 1). Inference: b = -1 if x < 0 else +1.
    """

    def __init__(self, in_ch: int, bits: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, bits, 1)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = torch.tanh(self.conv(x))
        if self.training:
            u = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
            sample = torch.where(u < (1 + x) / 2, 1.0, -1.0)
            return x + (sample - x).detach()
        return torch.where(x < 0, -1.0, 1.0)


class Decoder(nn.Module):
    """1×1 conv → four (ConvLSTM, depth-to-space ×2) stages → 1×1 conv, 0.5·tanh: codes → N×3×H×W."""

    def __init__(self, widths: tuple[int, int, int, int], bits: int) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        self.conv_in = nn.Conv2d(bits, w1, 1)
        self.rnn = nn.ModuleList(
            [ConvLstmCell(w1, w1), ConvLstmCell(w1 // 4, w2), ConvLstmCell(w2 // 4, w3), ConvLstmCell(w3 // 4, w4)]
        )
        self.conv_out = nn.Conv2d(w4 // 4, 3, 1)

    def forward(self, code: torch.Tensor, states: list) -> torch.Tensor:
        x = self.conv_in(code)
        for k, cell in enumerate(self.rnn):
            x, states[k] = cell(x, states[k])
            x = F.pixel_shuffle(x, 2)
        return 0.5 * torch.tanh(self.conv_out(x))


class ConvLstmNet(nn.Module):
    """Encoder + binarizer + decoder, run iteratively on residuals."""

    def __init__(self, config: ConvLstmConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config.encoder_widths)
        self.binarizer = Binarizer(config.encoder_widths[3], config.bits)
        self.decoder = Decoder(config.decoder_widths, config.bits)
        if config.residual_gain:
            self.log_gain = nn.Parameter(torch.zeros(MAX_ITERATIONS))

    def _gain(self, t: int) -> float | torch.Tensor:
        return self.log_gain[min(t, MAX_ITERATIONS - 1)].exp() if self.config.residual_gain else 1.0

    def _reconstruct(self, previous: torch.Tensor | None, output: torch.Tensor, t: int) -> torch.Tensor:
        if self.config.reconstruction == "one_shot":
            return output
        scaled = output / self._gain(t)
        return scaled if previous is None else previous + scaled

    def loss(
        self, x: torch.Tensor, iterations: int, generator: torch.Generator | None = None, ms_ssim_weight: float = 0.0
    ) -> torch.Tensor:
        """Training loss: mean over iterations t of α·(1 − MS-SSIM(x, x̂_t)) + (1 − α)·mean |x − x̂_t|.

        α = ``ms_ssim_weight`` (0: the paper's L1 loss; Zhao et al. 2017 mix with α = 0.84). L1 is in
        units of the [0, 1] pixel range; MS-SSIM is ``codecbench.learned.losses.ms_ssim`` with data range 1.
        """
        enc_states: list = [None] * 3
        dec_states: list = [None] * 4
        residual, reconstruction = x, None
        total = x.new_zeros(())
        for t in range(iterations):
            code = self.binarizer(self.encoder(residual * self._gain(t), enc_states), generator)
            reconstruction = self._reconstruct(reconstruction, self.decoder(code, dec_states), t)
            residual = x - reconstruction
            total = total + (1 - ms_ssim_weight) * residual.abs().mean()
            if ms_ssim_weight:
                total = total + ms_ssim_weight * (1 - ms_ssim(x + 0.5, reconstruction + 0.5).mean())
        return total / iterations

    @torch.inference_mode()
    def encode(self, x: torch.Tensor, iterations: int) -> torch.Tensor:
        """Codes as a bool tensor T×N×bits×H/16×W/16 (True = +1); needs eval mode."""
        if self.training:
            raise RuntimeError("encode() needs the model in eval mode (deterministic binarizer)")
        enc_states: list = [None] * 3
        dec_states: list = [None] * 4
        residual, reconstruction = x, None
        codes = []
        for t in range(iterations):
            code = self.binarizer(self.encoder(residual * self._gain(t), enc_states))
            codes.append(code > 0)
            reconstruction = self._reconstruct(reconstruction, self.decoder(code, dec_states), t)
            residual = x - reconstruction
        return torch.stack(codes)

    @torch.inference_mode()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Reconstruction N×3×H×W in [-0.5, 0.5] from bool codes T×N×bits×h×w."""
        dec_states: list = [None] * 4
        reconstruction = None
        dtype = next(self.parameters()).dtype
        for t, code in enumerate(codes):
            reconstruction = self._reconstruct(reconstruction, self.decoder(code.to(dtype) * 2 - 1, dec_states), t)
        return reconstruction
