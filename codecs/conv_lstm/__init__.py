"""``conv_lstm``: recurrent convolutional codec after Toderici et al. (ICLR 2016).

Setting ``iterations`` (1–16): each iteration adds 32 bits per 16×16 block
(0.125 bpp before entropy coding, counted on the image padded to a multiple of
16). The bits are entropy coded by ``codecbench.learned.entropy`` with adaptive
context models whose priors ship in the weights file. Network: ``model``;
training: ``recipe``. See MODEL_CARD.md.
"""

from __future__ import annotations

import numpy as np

from codecbench.codec import SettingSpec
from codecbench.errors import CodecError, EntropyError
from codecbench.learned.codec import LearnedCodec

MAX_ITERATIONS = 16


class ConvLstmCodec(LearnedCodec):
    name = "conv_lstm"
    description = "Toderici et al. 2016 conv/deconv LSTM residual coder, 32 bits per 16×16 block per iteration, adaptive binary entropy coding"
    setting = SettingSpec("iterations", 1, MAX_ITERATIONS, True, (1, 2, 3, 4, 5, 6, 8, 10, 12, 16))
    model_id = "conv_lstm"
    weights_name = "conv_lstm.pt"
    network_factory = "codecbench_codecs.conv_lstm.model:build_network"
    recipe = "codecbench_codecs.conv_lstm.recipe:ConvLstmRecipe"
    pad_multiple = 16

    def _prior(self) -> np.ndarray | None:
        prior = self.extras.get("entropy_prior")
        return None if prior is None else prior.double().numpy()

    def encode_tensor(self, x, setting: float | int) -> bytes:
        from codecbench.learned.entropy import encode_bits

        with self.timed_stage("analysis"):  # the recurrent encoder runs the decoder too, for each residual
            codes = self.network.encode(x, int(setting))[:, 0].cpu().numpy()  # T×bits×h×w bool
        with self.timed_stage("entropy_encode"):
            return encode_bits(codes, self._prior())

    def decode_tensor(self, payload: bytes, height: int, width: int, setting: float | int):
        import torch

        from codecbench.learned.entropy import decode_bits

        shape = (int(setting), self.network.config.bits, height // 16, width // 16)
        try:
            with self.timed_stage("entropy_decode"):
                codes = decode_bits(payload, shape, self._prior())
        except EntropyError as exc:
            raise CodecError(f"codec {self.name}: {exc}") from exc
        with self.timed_stage("synthesis"):
            return self.network.decode(torch.from_numpy(codes)[:, None].to(self.device))

    def bitstream_stats(self, data: bytes, width: int, height: int) -> dict[str, float]:
        """``bpp_raw``: code bits before entropy coding / pixels (padded blocks counted); ``header_bytes``."""
        header, _ = self.read_header(data)
        blocks = -(-header.height // 16) * -(-header.width // 16)
        return {
            "bpp_raw": header.setting * self.network.config.bits * blocks / (width * height),
            "header_bytes": float(self.header_size()),
        }
