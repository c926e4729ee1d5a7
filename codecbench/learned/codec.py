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

Weights per setting: a codec with one model per rate point (one file per
quality index) overrides ``weights_file(setting)``; each file is loaded once
and the header pins the file of the bitstream's setting.

Per-stage timing: ``encode``/``decode`` time their stages with
``timed_stage(name)`` (CUDA synchronised before each clock read):
``transfer_to_device`` and ``transfer_to_host`` here, ``analysis``,
``entropy_encode``, ``entropy_decode``, ``synthesis`` in the subclasses.
``cell_extra`` hands them to the runner as ``stage_<name>_s`` (seconds, the
last encode and decode) together with the ``device``.

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
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from codecbench.codec import Codec
from codecbench.errors import CodecError, check_rgb
from codecbench.learned.header import Header, header_size
from codecbench.learned.weights import float32_state, read_weights
from codecbench.plugins import Availability, load_target

#: Stages timed by ``decode`` (the others belong to ``encode``).
_DECODE_STAGES = frozenset({"entropy_decode", "synthesis", "transfer_to_host"})

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
        self._models: dict[Path, tuple[Any, dict[str, Any], dict[str, Any]]] = {}  # path → (network, extras, hparams)
        self._digests: dict[Path, str] = {}
        self._stage_seconds: dict[str, float] = {}

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
    def weights_file(self, setting: float | int | None = None) -> Path:
        """The weights file that codes ``setting`` (None: the codec's default file); one file unless overridden."""
        return self.weights_path

    def weights_files(self) -> list[Path]:
        """Every weights file the codec's settings use (loaded by ``prepare``)."""
        return [self.weights_path]

    def weights_sha256(self, setting: float | int | None = None) -> str:
        """SHA-256 (hex) of the weights file of ``setting``."""
        return self._digest_of(self.weights_file(setting))

    def availability(self) -> Availability:
        missing = [name for name in LEARNED_PACKAGES if importlib.util.find_spec(name) is None]
        if missing:
            return Availability(False, f"{', '.join(missing)} not installed; {LEARNED_INSTALL}")
        absent = [path for path in self.weights_files() if not path.is_file()]
        if absent:
            return Availability(False, f"weights file {absent[0]} not found; train one with `codecbench train {self.name}`")
        if self.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                return Availability(False, "device cuda asked for, but torch sees no CUDA device")
        return Availability(True)

    def version(self) -> str:
        import torch

        files = self.weights_files()
        if len(files) == 1:
            digest = self._digest_of(files[0])
        else:  # one digest over the files' digests, in setting order
            digest = hashlib.sha256("".join(self._digest_of(path) for path in files).encode()).hexdigest()
        return f"{self.model_id} weights {digest[:12]} torch {torch.__version__}"

    def _digest_of(self, path: Path) -> str:
        if path not in self._digests:
            if not path.is_file():
                raise CodecError(f"codec {self.name}: weights file {path} not found")
            self._digests[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        return self._digests[path]

    def model(self, setting: float | int | None = None):
        """The network of ``setting`` in eval mode on ``device``, float32, loaded on first use."""
        path = self.weights_file(setting)
        if path not in self._models:
            self._models[path] = self._load(path)
        return self._models[path][0]

    @property
    def network(self):
        """The network of the default weights file (codecs with one file for every setting)."""
        return self.model(None)

    def model_extras(self, setting: float | int | None = None) -> dict[str, Any]:
        """Codec data stored with the weights of ``setting`` (e.g. entropy-coder priors)."""
        self.model(setting)
        return self._models[self.weights_file(setting)][1]

    @property
    def extras(self) -> dict[str, Any]:
        return self.model_extras(None)

    @property
    def hparams(self) -> dict[str, Any]:
        """The network's hyper-parameters as stored in the (default) weights file."""
        self.model(None)
        return self._models[self.weights_file(None)][2]

    def read_network(self, path: Path):
        """(network, extras, hparams) from the weights file ``path``; CodecError if it does not fit."""
        try:
            weights = read_weights(path, self.model_id)
        except CodecError as exc:
            raise CodecError(f"codec {self.name}: {exc}") from exc
        return self.network_from_weights(weights, path)

    def network_from_weights(self, weights: dict[str, Any], path: Path):
        """(network, extras, hparams) from a weights dict read from ``path``; CodecError if it does not fit."""
        try:
            network = self.build_network(weights["hparams"])
            network.load_state_dict(float32_state(weights))
        except (KeyError, ValueError, RuntimeError) as exc:
            raise CodecError(f"codec {self.name}: weights {path} do not fit the network ({exc})") from exc
        return network, weights.get("extras", {}), weights["hparams"]

    def _load(self, path: Path):
        self._digest_of(path)
        network, extras, hparams = self.read_network(path)
        return network.eval().to(self.device), extras, hparams

    def parameter_count(self) -> int:
        """Parameters of the (default) network."""
        return sum(p.numel() for p in self.network.parameters())

    def weights_bytes(self) -> int:
        """Bytes of all the codec's weights files together."""
        return sum(path.stat().st_size for path in self.weights_files() if path.is_file())

    def model_size(self) -> dict[str, int]:
        return {"parameters": self.parameter_count(), "weights_bytes": self.weights_bytes()}

    # --- per-stage timing --------------------------------------------------------------------
    @contextmanager
    def timed_stage(self, name: str):
        """Add the seconds the block takes to stage ``name`` (device synchronised before both clock reads)."""
        self.synchronize()
        start = time.perf_counter()
        try:
            yield
        finally:
            self.synchronize()
            self._stage_seconds[name] = self._stage_seconds.get(name, 0.0) + time.perf_counter() - start

    def cell_extra(self) -> dict[str, Any]:
        """``device`` and ``stage_<name>_s`` of the last encode and decode."""
        return {"device": self.device, **{f"stage_{name}_s": seconds for name, seconds in self._stage_seconds.items()}}

    # --- Codec interface ---------------------------------------------------------------------
    def prepare(self) -> None:
        """Load every network (weights, device) now, outside any timed call."""
        for path in self.weights_files():
            if path not in self._models:
                self._models[path] = self._load(path)

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
        self._stage_seconds = {name: s for name, s in self._stage_seconds.items() if name in _DECODE_STAGES}
        m = self.pad_multiple
        padded = np.pad(image, ((0, -height % m), (0, -width % m), (0, 0)), mode="edge")
        self.model(setting)  # loaded outside inference mode, so the network also works with autograd afterwards
        with torch.inference_mode():
            with self.timed_stage("transfer_to_device"):
                x = self.image_to_tensor(padded).to(self.device)
            payload = self.encode_tensor(x, setting)
        return Header.for_payload(self.model_id, self.weights_sha256(setting), width, height, setting, payload).pack() + payload

    def read_header(self, data: bytes) -> tuple[Header, bytes]:
        """Header and payload of ``data``, checked against this codec's model and weights."""
        header, payload = Header.unpack(bytes(data))
        if header.model_id != self.model_id:
            raise CodecError(f"codec {self.name}: bitstream was made by model {header.model_id!r}, not {self.model_id!r}")
        if header.width < 1 or header.height < 1:
            raise CodecError(f"codec {self.name}: header gives an empty image ({header.width}×{header.height})")
        try:
            setting = self.setting.validate(header.setting)
        except ValueError as exc:
            raise CodecError(f"codec {self.name}: header setting invalid ({exc})") from exc
        if header.weights_prefix.hex() != self.weights_sha256(setting)[:16]:
            raise CodecError(
                f"codec {self.name}: bitstream was made with weights {header.weights_prefix.hex()}…, "
                f"these are {self.weights_sha256(setting)[:16]}… ({self.weights_file(setting)}); decode with the same weights"
            )
        return header, payload

    def decode(self, data: bytes) -> np.ndarray:
        import torch

        header, payload = self.read_header(data)
        self._set_threads()
        self._stage_seconds = {name: s for name, s in self._stage_seconds.items() if name not in _DECODE_STAGES}
        m = self.pad_multiple
        padded_h, padded_w = header.height + (-header.height % m), header.width + (-header.width % m)
        self.model(header.setting)  # loaded outside inference mode (see encode)
        with torch.inference_mode():
            reconstruction = self.decode_tensor(payload, padded_h, padded_w, self.setting.validate(header.setting))
            with self.timed_stage("transfer_to_host"):
                image = self.tensor_to_image(reconstruction[:, :, : header.height, : header.width])
        return image

    def header_size(self) -> int:
        return header_size(self.model_id)
