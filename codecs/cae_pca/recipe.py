"""Training recipe of ``cae_pca``: rate-free MSE training with noise, then PCA, priors and the setting table.

Training (``training_loss``): mean squared error in the [-0.5, 0.5] pixel
range between the crop and the decoder's output from the code plus uniform
noise of a random precision B ~ U[``b_min``, ``b_max``] (``CaePcaNet.noisy_forward``);
with ``pca_dropout``, from the noisy first k PCA coefficients of the batch's
codes (``CaePcaNet.pca_dropout_forward``).

Export (``export_extras``), with the weights as shipped (fp16-rounded), from
the central crops of the training images:

- ``pca_mean`` (C), ``pca_components`` (C×C, rows sorted by decreasing
  energy, each with its largest entry positive), ``pca_energy`` (C): the
  eigen-decomposition (float64) of the channel covariance of every code
  position of the ``PCA_CROP`` crops;
- ``precisions`` (B = 1…8) and ``entropy_prior`` (B × C × contexts ×
  symbols): symbol frequencies per precision, PCA channel and context
  (``entropy.count_symbols``) on the same crops, plus ``PRIOR_SMOOTHING``;
- ``settings`` (``QUALITY_LEVELS``×2 of (B, k)), ``settings_bpp`` and
  ``settings_psnr``: from every (B, k) pair's mean bpp (ideal code length
  with these priors) and mean PSNR-RGB on the ``SETTINGS_CROP`` crops of
  ``SETTINGS_IMAGES`` of the images, the
  pairs on the upper envelope (no pair with fewer bits is better) closest in
  log bpp to ``TARGET_BPP`` — a monotone ladder of operating points.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from codecbench.learned.recipe import TrainingRecipe
from codecbench_codecs.cae_pca import QUALITY_LEVELS, STRIDE
from codecbench_codecs.cae_pca.entropy import count_symbols, ideal_bits
from codecbench_codecs.cae_pca.model import CaePcaConfig

PRECISIONS = tuple(range(1, 9))
PCA_CROP = 512  # pixels; side of the central crops for PCA and priors
SETTINGS_CROP = 256  # pixels; side of the central crops for the setting search
PRIOR_SMOOTHING = 0.05  # added to every symbol count of a prior
TARGET_BPP = tuple(np.geomspace(0.1, 1.5, QUALITY_LEVELS))
SETTINGS_IMAGES = 16  # images (evenly spaced over the training set) of the setting search
KEPT_CANDIDATES = (1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32)


def central_crop(image: np.ndarray, side: int) -> np.ndarray:
    """The central side×side crop (smaller images: whole), cut to a multiple of ``STRIDE``."""
    top, left = max(0, (image.shape[0] - side) // 2), max(0, (image.shape[1] - side) // 2)
    crop = image[top : top + side, left : left + side]
    return crop[: crop.shape[0] // STRIDE * STRIDE, : crop.shape[1] // STRIDE * STRIDE]


def compute_pca(codes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean C, components C×C sorted by decreasing energy, energies C) of codes (each C×h×w), float64."""
    vectors = np.concatenate([c.reshape(c.shape[0], -1) for c in codes], axis=1)
    mean = vectors.mean(axis=1)
    energy, vectors_ = np.linalg.eigh(np.cov(vectors - mean[:, None]))
    order = np.argsort(energy)[::-1]
    components = vectors_[:, order].T
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    return mean, components * signs[:, None], energy[order]


def upper_envelope(points: list[tuple[float, float, Any]]) -> list[tuple[float, float, Any]]:
    """Points (bpp, quality, key) that no point with fewer or equal bits beats, by increasing bpp."""
    front: list[tuple[float, float, Any]] = []
    for point in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or point[1] > front[-1][1]:
            front.append(point)
    return front


def choose_settings(front: list[tuple[float, float, Any]], targets=TARGET_BPP) -> list[tuple[float, float, Any]]:
    """For each target bpp in order, the envelope point closest in log bpp after the previous choice.

    Each choice leaves a point for every later target; an envelope with fewer points than targets
    (a barely trained network) repeats its last point."""
    chosen, start = [], 0
    for k, target in enumerate(targets):
        start = min(start, len(front) - 1)
        last = min(len(front) - 1, max(start, len(front) - (len(targets) - k)))
        best = min(range(start, last + 1), key=lambda i: abs(np.log(front[i][0] / target)))
        chosen.append(front[best])
        start = best + 1
    return chosen


class CaePcaRecipe(TrainingRecipe):
    """Options: ``b_min``, ``b_max``: range of the precision B of the training noise (width 2^−(B−1));
    ``pca_dropout``: drop trailing PCA coefficients per crop (``CaePcaNet.pca_dropout_forward``)."""

    options: ClassVar[dict[str, Any]] = {"b_min": 2.0, "b_max": 7.0, "pca_dropout": False}

    def default_hparams(self) -> dict[str, Any]:
        return CaePcaConfig().to_dict()

    def training_loss(self, network, batch, generator, b_min: float = 2.0, b_max: float = 7.0, pca_dropout: bool = False):
        forward = network.pca_dropout_forward if pca_dropout else network.noisy_forward
        reconstruction = forward(batch, generator, float(b_min), float(b_max))
        return ((reconstruction - batch) ** 2).mean()

    def export_extras(self, network, images: list[np.ndarray], log=None) -> dict[str, Any]:
        from codecbench_codecs.cae_pca import CaePcaCodec

        if not images:
            return {}
        with torch.inference_mode():
            codes = [network.encode(CaePcaCodec.image_to_tensor(central_crop(im, PCA_CROP)))[0].double().numpy() for im in images]
            mean, components, energy = compute_pca(codes)
            pca = [np.einsum("kc,chw->khw", components, c - mean[:, None, None]) for c in codes]
            prior = np.stack([sum(count_symbols(np.round(z * 2.0 ** (b - 1)).astype(np.int64)) for z in pca) for b in PRECISIONS])
            prior = (prior + PRIOR_SMOOTHING) / (prior + PRIOR_SMOOTHING).sum(axis=-1, keepdims=True)
            points = self._operating_points(network, images, mean, components, prior)
        front = upper_envelope(points)
        chosen = choose_settings(front)
        return {
            "pca_mean": torch.from_numpy(mean).float(), "pca_components": torch.from_numpy(components).float(),
            "pca_energy": torch.from_numpy(energy).float(), "precisions": torch.tensor(PRECISIONS),
            "entropy_prior": torch.from_numpy(prior).float(),
            "settings": torch.tensor([list(key) for _, _, key in chosen]),
            "settings_bpp": torch.tensor([bpp for bpp, _, _ in chosen]),
            "settings_psnr": torch.tensor([psnr for _, psnr, _ in chosen]),
            "prior_images": len(images),
        }

    @staticmethod
    def _operating_points(network, images, mean, components, prior) -> list[tuple[float, float, tuple[int, int]]]:
        """(mean bpp, mean PSNR-RGB, (B, k)) of every precision and ``KEPT_CANDIDATES`` count on the central crops.

        The PCA matrix is rounded to float32 first, as the codec reads it from the weights file."""
        from codecbench_codecs.cae_pca import CaePcaCodec

        mean, components = mean.astype(np.float32).astype(np.float64), components.astype(np.float32).astype(np.float64)
        chosen = np.unique(np.linspace(0, len(images) - 1, min(SETTINGS_IMAGES, len(images))).round().astype(int))
        crops = [central_crop(images[i], SETTINGS_CROP) for i in chosen]
        batch = CaePcaCodec.image_to_tensor(np.stack(crops)) if len({c.shape for c in crops}) == 1 else None
        if batch is None:
            raise ValueError(f"training images must be at least {SETTINGS_CROP}×{SETTINGS_CROP} for the setting search")
        pixels = crops[0].shape[0] * crops[0].shape[1]
        original = np.stack(crops).astype(np.float64)
        z = np.einsum("kc,nchw->nkhw", components, network.encode(batch).double().numpy() - mean[:, None, None])
        channels = components.shape[0]
        points = []
        for index, precision in enumerate(PRECISIONS):
            q = np.round(z * 2.0 ** (precision - 1))
            bits = np.stack([np.cumsum(ideal_bits(v.astype(np.int64), prior[index])) for v in q])  # N×C
            for kept in [k for k in KEPT_CANDIDATES if k <= channels]:
                zq = np.zeros_like(q)
                zq[:, :kept] = q[:, :kept] / 2.0 ** (precision - 1)
                y = np.einsum("kc,nkhw->nchw", components, zq) + mean[:, None, None]
                out = network.decode(torch.from_numpy(y.astype(np.float32))).permute(0, 2, 3, 1).double().numpy()
                decoded = np.clip(np.round((out + 0.5) * 255), 0, 255)
                mse = ((decoded - original) ** 2).mean(axis=(1, 2, 3))
                psnr = float(np.mean(10 * np.log10(255.0**2 / np.maximum(mse, 1e-10))))
                points.append((float(np.mean(bits[:, kept - 1]) / pixels), psnr, (precision, kept)))
        return points
