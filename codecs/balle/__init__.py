"""``bmshj2018_factorized`` and ``bmshj2018_hyperprior``: Ballé et al.'s learned codecs, CompressAI-compatible.

Setting ``quality`` 1–6: one network per rate–distortion trade-off λ (MSE),
shipped beside this module as ``<codec>_q<quality>.pt`` (see MODEL_CARD.md).
Option ``weights``: a codecbench weights file or a CompressAI checkpoint
(``torch.save`` of a state dict, or of a dict with ``state_dict``), used for
every quality; a path containing ``{quality}`` names one file per quality.

Pixels: the networks see ``uint8 / 255`` in [0, 1] (CompressAI's range) and
their output is clipped to [0, 1], then ``round(x · 255)``. Images are padded
by edge replication to a multiple of 16 (factorized) or 64 (hyperprior).

Payload: one ANS stream (``codecbench.learned.tables``) of the integer
latents with the model's stored integer tables; the hyperprior pushes ŷ
(tables chosen by each latent's predicted scale) and then ẑ, so the decoder
pops ẑ, predicts the scales, then pops ŷ.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codecbench.codec import SettingSpec
from codecbench.errors import CodecError, EntropyError
from codecbench.learned.codec import LearnedCodec

QUALITIES = (1, 2, 3, 4, 5, 6)


class _BalleCodec(LearnedCodec):
    setting = SettingSpec("quality", 1, len(QUALITIES), True, QUALITIES)
    recipe = "codecbench_codecs.balle.recipe:BalleRecipe"

    @staticmethod
    def image_to_tensor(images: np.ndarray):
        """N×H×W×3 (or H×W×3) uint8 → float32 N×3×H×W in [0, 1] (``uint8 / 255``)."""
        import torch

        array = images[None] if images.ndim == 3 else images
        return torch.from_numpy(np.array(array, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 255.0

    @staticmethod
    def tensor_to_image(tensor) -> np.ndarray:
        """1×3×H×W float in [0, 1] → H×W×3 uint8 by ``round(clip(x, 0, 1) · 255)``."""
        array = (tensor[0].permute(1, 2, 0).float().clamp(0, 1).cpu().numpy() * 255.0).round()
        return array.astype(np.uint8)

    # --- one weights file per quality ---------------------------------------------------------
    def weights_file(self, setting: float | int | None = None) -> Path:
        quality = QUALITIES[-1] if setting is None else int(setting)
        if "weights" in self.options:
            return Path(str(self.options["weights"]).replace("{quality}", str(quality)))
        return self.default_weights_path().parent / self.weights_name.format(quality=quality)

    def weights_files(self) -> list[Path]:
        return list(dict.fromkeys(self.weights_file(q) for q in QUALITIES))

    def read_network(self, path: Path):
        from codecbench.learned.weights import WEIGHTS_FORMAT, check_weights, load_weights_file
        from codecbench_codecs.balle.checkpoints import read_compressai_checkpoint

        content = load_weights_file(path)  # read once: a codecbench weights file or a CompressAI checkpoint
        if isinstance(content, dict) and content.get("format") == WEIGHTS_FORMAT:
            try:
                weights = check_weights(content, path, self.model_id)
            except CodecError as exc:
                raise CodecError(f"codec {self.name}: {exc}") from exc
            network, extras, hparams = self.network_from_weights(weights, path)
        else:
            network, hparams = read_compressai_checkpoint(content, path, self.build_network, self.name)
            extras = {"source": "compressai checkpoint"}
        if not all(model.has_tables() for model in network.entropy_models()):
            network.update()  # a checkpoint saved before CompressAI's update(): tables from its parameters
        return network, extras, hparams

    # --- coding helpers --------------------------------------------------------------------------
    def _coder(self, entropy_model):
        from codecbench.learned.tables import TableCoder

        cache = self.__dict__.setdefault("_coders", {})
        if id(entropy_model) not in cache:
            cache[id(entropy_model)] = TableCoder(*entropy_model.tables())
        return cache[id(entropy_model)]

    @staticmethod
    def _channel_indexes(shape: tuple[int, ...]) -> np.ndarray:
        """Table index = channel, for an N×C×H×W latent in raster order."""
        n, c, h, w = shape
        return np.broadcast_to(np.arange(c).reshape(1, c, 1, 1), (n, c, h, w)).reshape(-1)

    def bitstream_stats(self, data: bytes, width: int, height: int) -> dict[str, float]:
        return {"header_bytes": float(self.header_size())}


class Bmshj2018Factorized(_BalleCodec):
    name = "bmshj2018_factorized"
    description = "Ballé et al. 2017/2018 factorized prior (GDN transforms, non-parametric density), MSE, ANS coding"
    model_id = "bmshj2018_factorized"
    weights_name = "bmshj2018_factorized_q{quality}.pt"
    network_factory = "codecbench_codecs.balle.model:build_factorized"
    pad_multiple = 16

    def encode_tensor(self, x, setting: float | int) -> bytes:
        from codecbench.learned.tables import coder_bytes, new_coder

        network = self.model(setting)
        with self.timed_stage("analysis"):
            y = network.g_a(x)
        with self.timed_stage("entropy_encode"):
            symbols = network.entropy_bottleneck.symbols(y)
            coder = new_coder()
            self._coder(network.entropy_bottleneck).push(coder, symbols.cpu().numpy(), self._channel_indexes(tuple(y.shape)))
            payload = coder_bytes(coder)
        return payload

    def decode_tensor(self, payload: bytes, height: int, width: int, setting: float | int):
        import torch

        from codecbench.learned.tables import check_consumed, coder_from_bytes

        network = self.model(setting)
        shape = (1, network.M, height // 16, width // 16)
        with self.timed_stage("entropy_decode"):
            try:
                coder = coder_from_bytes(payload)
                values = self._coder(network.entropy_bottleneck).pop(coder, self._channel_indexes(shape))
                check_consumed(coder)
            except EntropyError as exc:
                raise CodecError(f"codec {self.name}: {exc}") from exc
            y_hat = network.entropy_bottleneck.dequantize(torch.from_numpy(values.reshape(shape))).to(self.device)
        with self.timed_stage("synthesis"):
            return network.g_s(y_hat)


class Bmshj2018Hyperprior(_BalleCodec):
    name = "bmshj2018_hyperprior"
    description = "Ballé et al. 2018 scale hyperprior (Gaussian scales from side information), MSE, ANS coding"
    model_id = "bmshj2018_hyperprior"
    weights_name = "bmshj2018_hyperprior_q{quality}.pt"
    network_factory = "codecbench_codecs.balle.model:build_hyperprior"
    pad_multiple = 64

    def encode_tensor(self, x, setting: float | int) -> bytes:
        import torch

        from codecbench.learned.tables import coder_bytes, new_coder

        network = self.model(setting)
        bottleneck = network.entropy_bottleneck
        with self.timed_stage("analysis"):  # g_a, h_a, and h_s on ẑ as the decoder will see it
            y = network.g_a(x)
            z = network.h_a(torch.abs(y))
            z_symbols = bottleneck.symbols(z)
            indexes = network.scale_indexes(bottleneck.dequantize(z_symbols))
        with self.timed_stage("entropy_encode"):
            coder = new_coder()
            self._coder(network.gaussian_conditional).push(coder, torch.round(y).long().cpu().numpy(), indexes)
            self._coder(bottleneck).push(coder, z_symbols.cpu().numpy(), self._channel_indexes(tuple(z.shape)))
            payload = coder_bytes(coder)
        return payload

    def decode_tensor(self, payload: bytes, height: int, width: int, setting: float | int):
        import torch

        from codecbench.learned.tables import check_consumed, coder_from_bytes

        network = self.model(setting)
        bottleneck = network.entropy_bottleneck
        z_shape = (1, network.N, height // 64, width // 64)
        try:
            with self.timed_stage("entropy_decode"):
                coder = coder_from_bytes(payload)
                z_values = self._coder(bottleneck).pop(coder, self._channel_indexes(z_shape))
            with self.timed_stage("synthesis"):  # the hyper-synthesis: scales from ẑ
                indexes = network.scale_indexes(bottleneck.dequantize(torch.from_numpy(z_values.reshape(z_shape))))
            with self.timed_stage("entropy_decode"):
                y_values = self._coder(network.gaussian_conditional).pop(coder, indexes)
                check_consumed(coder)
        except EntropyError as exc:
            raise CodecError(f"codec {self.name}: {exc}") from exc
        y_hat = torch.from_numpy(y_values.reshape(1, network.M, height // 16, width // 16)).float().to(self.device)
        with self.timed_stage("synthesis"):
            return network.g_s(y_hat)

