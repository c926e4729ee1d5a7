"""``conv_lstm``: recurrent convolutional codec after Toderici et al. (ICLR 2016).

Setting ``iterations`` (1–16): each iteration adds 32 bits per 16×16 block
(0.125 bpp before entropy coding, counted on the image padded to a multiple of
16). The bits are entropy coded by ``codecbench.entropy`` with adaptive
context models whose priors ship in the weights file. See MODEL_CARD.md.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from codecbench.codec import CodecError, SettingSpec
from codecbench.learned import LearnedCodec

MAX_ITERATIONS = 16
PRIOR_CROP = 512  # pixels; side of the crops the entropy priors are measured on


class ConvLstmCodec(LearnedCodec):
    name = "conv_lstm"
    description = "Toderici et al. 2016 conv/deconv LSTM residual coder, 32 bits per 16×16 block per iteration, adaptive binary entropy coding"
    setting = SettingSpec("iterations", 1, MAX_ITERATIONS, True, (1, 2, 3, 4, 5, 6, 8, 10, 12, 16))
    model_id = "conv_lstm"
    weights_name = "conv_lstm.pt"
    pad_multiple = 16
    training_defaults: ClassVar[dict[str, Any]] = {"iterations": 16, "ms_ssim_weight": 0.0}

    @classmethod
    def default_hparams(cls) -> dict[str, Any]:
        from codecbench_codecs.conv_lstm.model import ConvLstmConfig

        return ConvLstmConfig().to_dict()

    @classmethod
    def build_network(cls, hparams: dict[str, Any]):
        from codecbench_codecs.conv_lstm.model import ConvLstmConfig, ConvLstmNet

        return ConvLstmNet(ConvLstmConfig.from_dict(hparams))

    @classmethod
    def training_loss(cls, network, batch, generator, iterations: int = 16, ms_ssim_weight: float = 0.0):
        return network.loss(batch, int(iterations), generator, float(ms_ssim_weight))

    @classmethod
    def export_extras(cls, network, images: list[np.ndarray]) -> dict[str, Any]:
        """Entropy-coder priors: P(bit = 1) per context, counted on the codes of the central
        ``PRIOR_CROP``×``PRIOR_CROP`` crop of each of ``images`` at 16 iterations (rare contexts
        backed off to coarser ones, see ``ContextCounts.probabilities``)."""
        import torch

        from codecbench.entropy import ContextCounts

        counts = ContextCounts(MAX_ITERATIONS, network.config.bits)
        for image in images:
            top = max(0, (image.shape[0] - PRIOR_CROP) // 2)
            left = max(0, (image.shape[1] - PRIOR_CROP) // 2)
            crop = image[top : top + PRIOR_CROP, left : left + PRIOR_CROP]
            padded = np.pad(crop, ((0, -crop.shape[0] % 16), (0, -crop.shape[1] % 16), (0, 0)), mode="edge")
            codes = network.encode(cls.image_to_tensor(padded), MAX_ITERATIONS)[:, 0]
            counts.add(codes.numpy())
        return {"entropy_prior": torch.from_numpy(counts.probabilities()), "entropy_prior_images": len(images)}

    def _prior(self) -> np.ndarray | None:
        prior = self.extras.get("entropy_prior")
        return None if prior is None else prior.double().numpy()

    def encode_tensor(self, x, setting: float | int) -> bytes:
        from codecbench.entropy import encode_bits

        codes = self.network.encode(x, int(setting))[:, 0]  # T×bits×h×w bool
        return encode_bits(codes.cpu().numpy(), self._prior())

    def decode_tensor(self, payload: bytes, height: int, width: int, setting: float | int):
        import torch

        from codecbench.entropy import EntropyError, decode_bits

        shape = (int(setting), self.network.config.bits, height // 16, width // 16)
        try:
            codes = decode_bits(payload, shape, self._prior())
        except EntropyError as exc:
            raise CodecError(f"codec {self.name}: {exc}") from exc
        return self.network.decode(torch.from_numpy(codes)[:, None].to(self.device))

    def bitstream_stats(self, data: bytes, width: int, height: int) -> dict[str, float]:
        """``bpp_raw``: code bits before entropy coding / pixels (padded blocks counted); ``header_bytes``."""
        header, _ = self.read_header(data)
        blocks = -(-header.height // 16) * -(-header.width // 16)
        return {
            "bpp_raw": header.setting * self.network.config.bits * blocks / (width * height),
            "header_bytes": float(self.header_size()),
        }
