"""``lossy_cae``: lossy convolutional autoencoder with stochastic binarization, entropy-coded bits.

Setting ``channels`` k (1–``MAX_CHANNELS``): the first k of the network's n
binary code channels at 1/4 resolution are sent, k/16 bits per pixel before
entropy coding (counted on the image padded to a multiple of 4); the
decoder sees 0 for the others. One network serves every k: it was trained
with nested channel dropout (``model``). The bits are coded with the
project's adaptive binary range coder (``codecbench.learned.entropy``, as
one "iteration" of k channels; contexts: the three previous channels and
the block above), counts initialised from priors measured on the training
photos (``recipe``). See MODEL_CARD.md.
"""

from __future__ import annotations

import numpy as np

from codecbench.codec import SettingSpec
from codecbench.errors import CodecError, EntropyError
from codecbench.learned.codec import LearnedCodec

MAX_CHANNELS = 32
STRIDE = 4


class LossyCaeCodec(LearnedCodec):
    name = "lossy_cae"
    description = "lossy convolutional autoencoder, stochastic binarization to {0,1} at 1/4 resolution, nested channels, adaptive binary entropy coding"
    setting = SettingSpec("channels", 1, MAX_CHANNELS, True, (1, 2, 3, 4, 6, 8, 12, 16, 24, 32))
    model_id = "lossy_cae"
    weights_name = "lossy_cae.pt"
    network_factory = "codecbench_codecs.lossy_cae.model:build_network"
    recipe = "codecbench_codecs.lossy_cae.recipe:LossyCaeRecipe"
    pad_multiple = STRIDE

    def _kept(self, setting: float | int) -> int:
        kept, available = int(setting), self.network.config.channels
        if kept > available:
            raise CodecError(f"codec {self.name}: channels={kept}, but the network of {self.weights_path} has {available}")
        return kept

    def _prior(self, kept: int) -> np.ndarray | None:
        prior = self.extras.get("entropy_prior")
        return None if prior is None else prior[:, :kept].double().numpy()

    def encode_tensor(self, x, setting: float | int) -> bytes:
        from codecbench.learned.entropy import encode_bits

        kept = self._kept(setting)
        with self.timed_stage("analysis"):
            codes = self.network.encode(x)[:, :kept].cpu().numpy()  # 1×k×h×w bool: one "iteration" of k channels
        with self.timed_stage("entropy_encode"):
            return encode_bits(codes, self._prior(kept))

    def decode_bits(self, payload: bytes, height: int, width: int, setting: float | int) -> np.ndarray:
        """The bits 1×k×h×w (bool) of a payload (exact: no float arithmetic depends on the network)."""
        from codecbench.learned.entropy import decode_bits

        kept = self._kept(setting)
        try:
            return decode_bits(payload, (1, kept, height // STRIDE, width // STRIDE), self._prior(kept))
        except EntropyError as exc:
            raise CodecError(f"codec {self.name}: {exc}") from exc

    def decode_tensor(self, payload: bytes, height: int, width: int, setting: float | int):
        import torch

        with self.timed_stage("entropy_decode"):
            codes = self.decode_bits(payload, height, width, setting)
        with self.timed_stage("synthesis"):
            return self.network.decode(torch.from_numpy(codes).to(self.device))

    def bitstream_stats(self, data: bytes, width: int, height: int) -> dict[str, float]:
        """``bpp_raw``: code bits before entropy coding / pixels (padding counted); ``header_bytes``."""
        header, _ = self.read_header(data)
        positions = -(-header.height // STRIDE) * -(-header.width // STRIDE)
        return {"bpp_raw": int(header.setting) * positions / (width * height), "header_bytes": float(self.header_size())}
