"""``cae_pca``: convolutional autoencoder + PCA + uniform quantizer after Cheng et al. (2018).

Setting ``quality`` 1–``QUALITY_LEVELS`` (higher = better): an index into the
weights file's table of operating points (B, k) — quantizer precision B and
k kept PCA channels — chosen on the training photos when the weights were
exported (``recipe.choose_settings``) to give a monotone curve from about
0.1 to 1.5 bpp; the shipped table is in MODEL_CARD.md.

Encode: code y = encoder(x) (C×H/8×W/8, in (−1, 1)); PCA coefficients
z = P (y − μ) per position (P: C×C rows = eigenvectors of the training codes'
channel covariance, sorted by decreasing energy; μ: their channel means);
q = round(z · 2^(B−1)) for the first k channels; the k×H/8×W/8 integers are
range coded by ``entropy`` (one adaptive model per kept channel and context,
priors per B from training). Decode: z = q / 2^(B−1), dropped channels zero,
y = Pᵀ z + μ, image = decoder(y). The PCA and quantizer run in float64.
"""

from __future__ import annotations

import numpy as np

from codecbench.codec import SettingSpec
from codecbench.errors import CodecError, EntropyError
from codecbench.learned.codec import LearnedCodec

QUALITY_LEVELS = 10
STRIDE = 8


class CaePcaCodec(LearnedCodec):
    name = "cae_pca"
    description = "Cheng et al. 2018 convolutional autoencoder + PCA + uniform quantizer, adaptive arithmetic coding per PCA channel"
    setting = SettingSpec("quality", 1, QUALITY_LEVELS, True, tuple(range(1, QUALITY_LEVELS + 1)))
    model_id = "cae_pca"
    weights_name = "cae_pca.pt"
    network_factory = "codecbench_codecs.cae_pca.model:build_network"
    recipe = "codecbench_codecs.cae_pca.recipe:CaePcaRecipe"
    pad_multiple = STRIDE

    def operating_point(self, setting: float | int) -> tuple[int, int]:
        """(precision B, kept channels k) of quality index ``setting`` from the weights file's table."""
        table = self.extras.get("settings")
        if table is None or len(table) < QUALITY_LEVELS:
            raise CodecError(f"codec {self.name}: weights {self.weights_path} hold no table of {QUALITY_LEVELS} operating points")
        precision, channels = (int(v) for v in table[int(setting) - 1])
        return precision, channels

    def _pca(self) -> tuple[np.ndarray, np.ndarray]:
        extras = self.extras
        if "pca_components" not in extras:
            raise CodecError(f"codec {self.name}: weights {self.weights_path} hold no PCA (export them with `codecbench train`)")
        return extras["pca_mean"].double().numpy(), extras["pca_components"].double().numpy()

    def _prior(self, precision: int) -> np.ndarray | None:
        prior = self.extras.get("entropy_prior")
        if prior is None:
            return None
        index = [int(b) for b in self.extras["precisions"]].index(precision)
        return prior[index].double().numpy()

    def quantize(self, code, setting: float | int) -> np.ndarray:
        """Integers k×h×w (int64) of a code 1×C×h×w at quality ``setting``."""
        precision, channels = self.operating_point(setting)
        mean, components = self._pca()
        y = code[0].double().cpu().numpy()
        z = np.einsum("kc,chw->khw", components[:channels], y - mean[:, None, None])
        return np.round(z * 2.0 ** (precision - 1)).astype(np.int64)

    def dequantize(self, values: np.ndarray, setting: float | int):
        """The code 1×C×h×w (float32 tensor on the device) that integers ``values`` (k×h×w) stand for."""
        import torch

        precision, _ = self.operating_point(setting)
        mean, components = self._pca()
        z = values.astype(np.float64) / 2.0 ** (precision - 1)
        y = np.einsum("kc,khw->chw", components[: len(values)], z) + mean[:, None, None]
        return torch.from_numpy(y[None].astype(np.float32)).to(self.device)

    def encode_tensor(self, x, setting: float | int) -> bytes:
        from codecbench_codecs.cae_pca.entropy import encode_values

        with self.timed_stage("analysis"):
            values = self.quantize(self.network.encode(x), setting)
        with self.timed_stage("entropy_encode"):
            try:
                return encode_values(values, self._prior(self.operating_point(setting)[0]))
            except EntropyError as exc:
                raise CodecError(f"codec {self.name}: {exc}") from exc

    def decode_values(self, payload: bytes, height: int, width: int, setting: float | int) -> np.ndarray:
        """The integers k×h×w of a payload (exact: no float arithmetic depends on the network)."""
        from codecbench_codecs.cae_pca.entropy import decode_values

        precision, channels = self.operating_point(setting)
        try:
            return decode_values(payload, (channels, height // STRIDE, width // STRIDE), self._prior(precision))
        except EntropyError as exc:
            raise CodecError(f"codec {self.name}: {exc}") from exc

    def decode_tensor(self, payload: bytes, height: int, width: int, setting: float | int):
        with self.timed_stage("entropy_decode"):
            values = self.decode_values(payload, height, width, setting)
        with self.timed_stage("synthesis"):
            return self.network.decode(self.dequantize(values, setting))

    def bitstream_stats(self, data: bytes, width: int, height: int) -> dict[str, float]:
        """``precision`` B and ``channels`` k of the bitstream's setting; ``header_bytes``."""
        header, _ = self.read_header(data)
        precision, channels = self.operating_point(header.setting)
        return {"precision": float(precision), "channels": float(channels), "header_bytes": float(self.header_size())}
