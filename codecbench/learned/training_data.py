"""Training images and random crops; evaluation sets are refused.

Data: a folder of images or a patch set ``bd:SET``. Training on an evaluation
set is refused unless ``force``: any registered dataset name (``kodak``,
``clic2020-*``, ...) and any folder holding an image whose pixel checksum is
one of a registered dataset's images. Crops: ``patch``×``patch``, position
uniform over all valid positions of all images (so larger images give
proportionally more crops), flipped left-right with probability 1/2, drawn
with NumPy PCG64 from a seed.
"""

from __future__ import annotations

import numpy as np

from codecbench.data.datasets import resolve_dataset
from codecbench.data.images import pixel_sha256
from codecbench.data.registry import load_registry
from codecbench.errors import DatasetError, TrainingError


def evaluation_checksums() -> dict[str, str]:
    """Pixel SHA-256 → dataset name, for every image of every registered (evaluation) dataset."""
    return {image.pixel_sha256: name for name, dataset in load_registry().items() for image in dataset.images}


def load_training_images(spec: str, patch: int, force: bool = False) -> list[np.ndarray]:
    """All images of ``spec`` (folder or ``bd:SET``) as H×W×3 uint8, refusing evaluation sets unless ``force``."""
    if spec in load_registry() and not force:
        raise TrainingError(f"refusing to train on {spec!r}: it is a registered evaluation dataset (use --force to override)")
    try:
        dataset = resolve_dataset(spec, download=False, progress=False)
    except DatasetError as exc:
        raise TrainingError(f"training data {spec!r}: {exc}") from exc
    evaluation = {} if force else evaluation_checksums()
    images = []
    for item in dataset.items:
        image = item.load()
        if image.shape[0] < patch or image.shape[1] < patch:
            raise TrainingError(f"training image {item.path} ({item.name}) is {image.shape[1]}×{image.shape[0]}, smaller than the {patch}×{patch} crop")
        source = evaluation.get(pixel_sha256(image))
        if source is not None:
            raise TrainingError(
                f"refusing to train on {item.path}: its pixels match an image of the evaluation dataset {source!r} (use --force to override)"
            )
        images.append(image)
    if not images:
        raise TrainingError(f"training data {spec!r} holds no images")
    return images


class CropSampler:
    """Random crops, uniform over all (image, position) pairs, flipped left-right with probability 1/2."""

    def __init__(self, images: list[np.ndarray], patch: int, seed: int) -> None:
        self.images = images
        self.patch = patch
        positions = np.array([(im.shape[0] - patch + 1) * (im.shape[1] - patch + 1) for im in images], dtype=np.float64)
        self.weights = positions / positions.sum()
        self.rng = np.random.Generator(np.random.PCG64(seed))

    def batch(self, size: int) -> np.ndarray:
        """N×patch×patch×3 uint8."""
        p = self.patch
        out = np.empty((size, p, p, 3), dtype=np.uint8)
        for k, index in enumerate(self.rng.choice(len(self.images), size=size, p=self.weights)):
            image = self.images[index]
            top = self.rng.integers(0, image.shape[0] - p + 1)
            left = self.rng.integers(0, image.shape[1] - p + 1)
            crop = image[top : top + p, left : left + p]
            out[k] = crop[:, ::-1] if self.rng.random() < 0.5 else crop
        return out
