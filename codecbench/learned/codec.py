"""Base class of PyTorch codecs, inference only: weights, devices, padding, and a checked bitstream.

A learned codec takes a weights file (option ``weights``; default: the file
``weights_name`` shipped beside the subclass's module) and rebuilds its network
from the file's hyper-parameters with the factory ``network_factory``. How the
network is trained is its ``recipe`` (``codecbench.learned.recipe``), named as a
``"module:attribute"`` string so that importing a codec never imports torch.

Bitstream = ``header.Header`` + payload (the codec's entropy-coded bytes).

Pixels: images are H×W×3 uint8 RGB; networks see float32 N×3×H×W tensors in
the codec's range (``image_to_tensor``, default ``uint8 / 255 - 0.5``) and
their output is mapped back by ``round((x + 0.5) · 255)`` clipped to 0–255.
Images are padded by edge replication to a multiple of ``pad_multiple`` and
the decoded image is cropped back.

Determinism: decoding reads only the payload, so the same bytes give the same
image across runs and processes on one machine with one torch build and thread
count (CPU float convolutions in torch are deterministic there). Across CPU
types, BLAS/oneDNN builds, thread counts or devices (CPU vs CUDA) the float
arithmetic may differ in the last bits and a decoded pixel may then differ by
one level; what the header pins is the model (weights checksum), so bits are
never decoded with other weights.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from codecbench.codec import Codec
from codecbench.errors import CodecError, check_rgb
from codecbench.learned.header import Header, header_size
from codecbench.learned.weights import float32_state, read_weights
from codecbench.plugins import Availability, load_target

#: The packages learned codecs need (the network, the entropy coder) and what installs them.
LEARNED_PACKAGES = ("torch", "constriction")
LEARNED_INSTALL = 'pip install "codecbench[learned]"'


class LearnedCodec(Codec):
    """A codec whose transform is a PyTorch network loaded from a weights file.

    Subclasses set ``model_id``, ``weights_name`` (file in the subclass's
    package folder), ``network_factory`` (``"module:function"``: hparams dict
    → untrained ``torch.nn.Module``), ``recipe`` (``"module:Class"`` of its
    ``TrainingRecipe``; None: not trainable here), ``pad_multiple``, and
    implement ``encode_tensor`` / ``decode_tensor``. Options: ``weights``
    (path to another weights file), ``device`` (``cpu`` default, ``cuda``),
    ``threads`` (torch CPU threads; default: torch's own setting).
    """

    model_id: ClassVar[str]
    weights_name: ClassVar[str]
    network_factory: ClassVar[str]
    recipe: ClassVar[str | None] = None
    pad_multiple: ClassVar[int] = 1
    option_names = ("weights", "device", "threads")
    runtime_options = ("weights", "device", "threads")  # the weights' checksum is in the version
    cell_timeout_s = 3600.0  # a network on a CPU, large images, a rate search: slow

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.device = str(options.get("device", "cpu"))
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise CodecError(f"codec {self.name}: device must be cpu or cuda, got {self.device!r}")
        threads = options.get("threads")
        self.threads = int(threads) if threads is not None else None
        if self.threads is not None and self.threads < 1:
            raise CodecError(f"codec {self.name}: threads must be ≥ 1, got {threads}")
        self.weights_path = Path(options["weights"]) if "weights" in options else self.default_weights_path()
        self._network = None
        self._extras: dict[str, Any] = {}
        self._hparams: dict[str, Any] = {}
        self._weights_sha256: str | None = None

    # --- network and pixels ------------------------------------------------------------------
    @classmethod
    def default_weights_path(cls) -> Path:
        return Path(inspect.getfile(cls)).parent / cls.weights_name

    @classmethod
    def build_network(cls, hparams: dict[str, Any]):
        """An untrained ``torch.nn.Module`` with these hyper-parameters (from ``network_factory``)."""
        return load_target(cls.network_factory)(hparams)

    @staticmethod
    def image_to_tensor(images: np.ndarray):
        """N×H×W×3 (or H×W×3) uint8 → float32 N×3×H×W in [-0.5, 0.5] (``uint8 / 255 - 0.5``)."""
        import torch

        array = images[None] if images.ndim == 3 else images
        return torch.from_numpy(np.array(array, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 255.0 - 0.5  # a writable copy

    @staticmethod
    def tensor_to_image(tensor) -> np.ndarray:
        """1×3×H×W float in [-0.5, 0.5] → H×W×3 uint8 by ``round((x + 0.5) · 255)``, clipped."""
        array = ((tensor[0].permute(1, 2, 0).float().cpu().numpy() + 0.5) * 255.0).round()
        return np.clip(array, 0, 255).astype(np.uint8)

    # --- instance hooks ----------------------------------------------------------------------
    def encode_tensor(self, x, setting: float | int) -> bytes:
        """Payload bytes for the padded image ``x`` (1×3×H×W, H and W multiples of ``pad_multiple``)."""
        raise NotImplementedError

    def decode_tensor(self, payload: bytes, height: int, width: int, setting: float | int):
        """The padded reconstruction 1×3×height×width from ``payload``; CodecError if it is malformed."""
        raise NotImplementedError

    # --- weights -----------------------------------------------------------------------------
    def weights_sha256(self) -> str:
        if self._weights_sha256 is None:
            if not self.weights_path.is_file():
                raise CodecError(f"codec {self.name}: weights file {self.weights_path} not found")
            self._weights_sha256 = hashlib.sha256(self.weights_path.read_bytes()).hexdigest()
        return self._weights_sha256

    def availability(self) -> Availability:
        missing = [name for name in LEARNED_PACKAGES if importlib.util.find_spec(name) is None]
        if missing:
            return Availability(False, f"{', '.join(missing)} not installed; {LEARNED_INSTALL}")
        if not self.weights_path.is_file():
            return Availability(False, f"weights file {self.weights_path} not found; train one with `codecbench train {self.name}`")
        if self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                return Availability(False, "device cuda asked for, but torch sees no CUDA device")
        return Availability(True)

    def version(self) -> str:
        import torch

        return f"{self.model_id} weights {self.weights_sha256()[:12]} torch {torch.__version__}"

    @property
    def network(self):
        """The network in eval mode on ``device``, float32, loaded on first use."""
        if self._network is None:
            self._network, self._extras, self._hparams = self._load()
        return self._network

    @property
    def extras(self) -> dict[str, Any]:
        self.network  # noqa: B018 - loads the weights file
        return self._extras

    @property
    def hparams(self) -> dict[str, Any]:
        """The network's hyper-parameters as stored in the weights file."""
        self.network  # noqa: B018 - loads the weights file
        return self._hparams

    def _load(self):
        digest = self.weights_sha256()
        try:
            weights = read_weights(self.weights_path, self.model_id)
        except CodecError as exc:
            raise CodecError(f"codec {self.name}: {exc}") from exc
        try:
            network = self.build_network(weights["hparams"])
            network.load_state_dict(float32_state(weights))
        except (KeyError, ValueError, RuntimeError) as exc:
            raise CodecError(f"codec {self.name}: weights {self.weights_path} do not fit the network ({exc})") from exc
        self._weights_sha256 = digest
        return network.eval().to(self.device), weights.get("extras", {}), weights["hparams"]

    # --- Codec interface ---------------------------------------------------------------------
    def prepare(self) -> None:
        """Load the network (weights, device) now, outside any timed call."""
        self.network()

    def synchronize(self) -> None:
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)

    def _set_threads(self) -> None:
        if self.threads is not None:
            import torch

            torch.set_num_threads(self.threads)

    def encode(self, image: np.ndarray, setting: float | int) -> bytes:
        import torch

        check_rgb(image, f"{self.name} input", CodecError)
        try:
            setting = self.setting.validate(setting)
        except ValueError as exc:
            raise CodecError(f"codec {self.name}: {exc}") from exc
        height, width = image.shape[:2]
        self._set_threads()
        m = self.pad_multiple
        padded = np.pad(image, ((0, -height % m), (0, -width % m), (0, 0)), mode="edge")
        with torch.inference_mode():
            payload = self.encode_tensor(self.image_to_tensor(padded).to(self.device), setting)
        return Header.for_payload(self.model_id, self.weights_sha256(), width, height, setting, payload).pack() + payload

    def read_header(self, data: bytes) -> tuple[Header, bytes]:
        """Header and payload of ``data``, checked against this codec's model and weights."""
        header, payload = Header.unpack(bytes(data))
        if header.model_id != self.model_id:
            raise CodecError(f"codec {self.name}: bitstream was made by model {header.model_id!r}, not {self.model_id!r}")
        if header.weights_prefix.hex() != self.weights_sha256()[:16]:
            raise CodecError(
                f"codec {self.name}: bitstream was made with weights {header.weights_prefix.hex()}…, "
                f"these are {self.weights_sha256()[:16]}… ({self.weights_path}); decode with the same weights"
            )
        if header.width < 1 or header.height < 1:
            raise CodecError(f"codec {self.name}: header gives an empty image ({header.width}×{header.height})")
        try:
            self.setting.validate(header.setting)
        except ValueError as exc:
            raise CodecError(f"codec {self.name}: header setting invalid ({exc})") from exc
        return header, payload

    def decode(self, data: bytes) -> np.ndarray:
        import torch

        header, payload = self.read_header(data)
        self._set_threads()
        m = self.pad_multiple
        padded_h, padded_w = header.height + (-header.height % m), header.width + (-header.width % m)
        with torch.inference_mode():
            reconstruction = self.decode_tensor(payload, padded_h, padded_w, self.setting.validate(header.setting))
        return self.tensor_to_image(reconstruction[:, :, : header.height, : header.width])

    def header_size(self) -> int:
        return header_size(self.model_id)
