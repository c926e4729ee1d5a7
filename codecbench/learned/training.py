"""The trainer: runs a codec's ``TrainingRecipe`` on its network, with checkpoints and weights export.

``codecbench train MODEL`` finds the registered ``LearnedCodec`` ``MODEL``,
its network factory (``build_network``) and its recipe (the codec's ``recipe``
target). Data: random crops from ``training_data`` (never an evaluation set
unless ``force``), converted by the codec's ``image_to_tensor``.
Optimiser: Adam, learning rate constant for the first half of the steps, then
cosine decay to ``lr / 10``; gradient norm clipped to ``clip``. A recipe's
``auxiliary_parameters`` (an entropy model's quantiles) get their own Adam at
``recipe.auxiliary_lr``, unclipped, as in CompressAI. With ``compile`` the
network's forward pass runs through ``torch.compile``; parameters, checkpoints
and weights are those of the uncompiled network. With ``precision="bf16"`` the
loss runs under ``torch.autocast`` in bfloat16 (convolutions and matrix
products; a model keeps what needs float32, e.g. the Ballé entropy models'
likelihoods) and the network and batches use the channels-last memory format;
parameters, gradients and optimiser states stay float32. On CPUs with AMX or
AVX-512 BF16 this makes steps 2–3× faster. The log shows the loss mean
every ``log_every`` steps and the means of any parts the recipe reports.

Deterministic given the seed on one machine and torch build: the seed fixes the
initial weights (``torch.manual_seed``), the crop sequence (NumPy PCG64) and
the recipe's training noise (a ``torch.Generator``). Checkpoints hold the
network, optimiser, step, all three random states and the loss history, so a
resumed run continues the same sequence. A new run may start from a weights
file (``init_weights``, fine-tuning) instead of random weights; it takes that
file's hyper-parameters and a fresh optimiser. A new run's initial network,
random or loaded, may be adapted by the recipe to the run's options
(``adapt_initial_weights``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from codecbench.errors import CodecError, TrainingError
from codecbench.files import atomic_write
from codecbench.learned.codec import LearnedCodec
from codecbench.learned.recipe import TrainingRecipe
from codecbench.learned.training_data import CropSampler, load_training_images
from codecbench.learned.weights import save_weights
from codecbench.plugins import load_target

CHECKPOINT_FORMAT = "codecbench-learned-checkpoint"
PRECISIONS = ("fp32", "bf16")


@dataclass
class TrainConfig:
    """One training run. ``options`` are the recipe's training options (e.g. conv_lstm ``iterations``)."""

    model: str
    data: str
    out: Path
    steps: int
    patch: int = 32
    batch: int = 32
    lr: float = 5e-4
    clip: float = 1.0
    seed: int = 0
    device: str = "cpu"
    hparams: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    checkpoint_seconds: float = 300.0
    stop_at: int | None = None  # stop (and save) at this step; the lr schedule still follows ``steps``
    log_every: int = 50
    force: bool = False
    init_weights: Path | None = None  # new runs: start from this weights file (fine-tuning) instead of random weights
    compile: bool = False  # run the network through torch.compile (≈1.5× faster CPU steps; same checkpoints and weights)
    precision: str = "fp32"  # "bf16": mixed precision (autocast, channels-last); checkpoints and weights stay float32


def codec_class(model: str) -> type[LearnedCodec]:
    """The registered codec class ``model``; it must be a LearnedCodec."""
    from codecbench.registry import discover

    registered = discover().get(model)
    if registered is None:
        raise TrainingError(f"unknown codec {model!r}")
    if registered.codec_class is None:
        raise TrainingError(f"codec {model} could not be loaded: {registered.load_error}")
    if not issubclass(registered.codec_class, LearnedCodec):
        raise TrainingError(f"codec {model} is not a learned codec (codecbench.learned.codec.LearnedCodec); nothing to train")
    return registered.codec_class


def training_recipe(cls: type[LearnedCodec]) -> TrainingRecipe:
    """The recipe the codec class names in ``recipe``."""
    if cls.recipe is None:
        raise TrainingError(f"codec {cls.name} names no training recipe; nothing to train")
    return load_target(cls.recipe)()


def learning_rate(step: int, steps: int, lr: float) -> float:
    """``lr`` for the first half of ``steps``, then cosine decay to ``lr / 10`` at the last step."""
    half = steps / 2
    if step < half:
        return lr
    progress = min(1.0, (step - half) / max(1.0, steps - half))
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _save_atomic(obj: Any, path: Path) -> None:
    atomic_write(path, lambda temporary: torch.save(obj, temporary))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by :func:`train`; raises TrainingError if it is not one."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise TrainingError(f"checkpoint {path}: cannot be read ({type(exc).__name__}: {exc})") from exc
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise TrainingError(f"checkpoint {path}: not a codecbench training checkpoint")
    return checkpoint


def _read_initial_weights(cls: type[LearnedCodec], path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], bool]:
    """(state dict in float32, hyper-parameters, partial) of the weights file ``path`` to start codec ``cls`` from.

    A weights file of another learned codec is accepted when its
    hyper-parameters also build this codec's network (``partial`` is then
    True): the tensors whose name and shape match are copied, e.g. the
    transforms of ``bmshj2018_hyperprior`` into ``bmshj2018_factorized``.
    """
    from codecbench.learned.weights import WEIGHTS_FORMAT, float32_state

    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign or damaged files
        raise TrainingError(f"initial weights {path}: cannot be read ({type(exc).__name__}: {exc})") from exc
    if isinstance(content, dict) and content.get("format") == WEIGHTS_FORMAT and content.get("model_id") != cls.model_id:
        return float32_state(content), content["hparams"], True
    codec = cls(weights=str(path))
    try:
        network = codec.network
    except CodecError as exc:
        raise TrainingError(f"initial weights: {exc}") from exc
    return {k: v.detach().clone() for k, v in network.state_dict().items()}, codec.hparams, False


def train(config: TrainConfig, resume: bool = False, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train (or resume) up to ``config.steps`` steps; return the final checkpoint dict (also saved to ``config.out``)."""
    cls = codec_class(config.model)
    recipe = training_recipe(cls)
    unknown = set(config.options) - set(recipe.options)
    if unknown:
        known = sorted(recipe.options)
        raise TrainingError(f"codec {config.model}: unknown training option(s) {sorted(unknown)} (known: {known})")
    device = torch.device(config.device)
    if config.precision not in PRECISIONS:
        raise TrainingError(f"precision {config.precision!r}: choose one of {', '.join(PRECISIONS)}")
    mixed = config.precision == "bf16"
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError("--device cuda asked for, but torch sees no CUDA device")

    checkpoint = None
    if resume:
        if not config.out.is_file():
            raise TrainingError(f"--resume: no checkpoint at {config.out}")
        checkpoint = load_checkpoint(config.out)
        if checkpoint["model"] != config.model:
            raise TrainingError(f"checkpoint {config.out} is for model {checkpoint['model']}, not {config.model}")
        hparams = checkpoint["hparams"]
        options = {**checkpoint["options"], **config.options}  # a resumed run keeps its options unless given
    else:
        if config.out.exists():
            raise TrainingError(f"{config.out} exists; pass --resume to continue it or choose another --out")
        hparams = {**recipe.default_hparams(), **config.hparams}
        options = {**recipe.options, **config.options}
    initial = None
    if config.init_weights is not None:
        if checkpoint is not None:
            raise TrainingError("initial weights apply to new runs only")
        initial, initial_hparams, partial = _read_initial_weights(cls, config.init_weights)
        hparams = {**initial_hparams, **config.hparams}  # --hparam widens the initial network where the recipe can

    images = load_training_images(config.data, config.patch, config.force)
    torch.manual_seed(config.seed)
    network = cls.build_network(hparams).to(device, memory_format=torch.channels_last if mixed else torch.contiguous_format)
    network.train()
    auxiliary = recipe.auxiliary_parameters(network)
    auxiliary_ids = {id(p) for p in auxiliary}
    main_parameters = [p for p in network.parameters() if id(p) not in auxiliary_ids]
    optimizer = torch.optim.Adam(main_parameters, lr=config.lr)
    auxiliary_optimizer = torch.optim.Adam(auxiliary, lr=recipe.auxiliary_lr) if auxiliary else None
    sampler = CropSampler(images, config.patch, config.seed)
    generator = torch.Generator(device=device)
    generator.manual_seed(config.seed)
    step, wall, history = 0, 0.0, []
    forward = torch.compile(network) if config.compile else network  # shares the parameters; state dicts stay uncompiled
    if initial is not None:
        if hparams != initial_hparams:
            widened = recipe.widen_initial_weights(network, initial, initial_hparams)
            if widened is None:
                raise TrainingError(
                    f"codec {config.model}: cannot start hyper-parameters {hparams} from --init weights with {initial_hparams}"
                )
            log(widened)
        elif partial:
            own = network.state_dict()
            initial = {k: v for k, v in initial.items() if k in own and own[k].shape == v.shape}
            network.load_state_dict({**own, **initial})
            log(f"copied {len(initial)} of {len(own)} tensors (same name and shape) from {config.init_weights}")
        else:
            network.load_state_dict(initial)
        log(f"starting from weights {config.init_weights}")
    if checkpoint is None:
        adapted = recipe.adapt_initial_weights(network, options)
        if adapted:
            log(adapted)
    else:
        network.load_state_dict(checkpoint["state_dict"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if auxiliary_optimizer is not None:
            auxiliary_optimizer.load_state_dict(checkpoint["auxiliary_optimizer"])
        sampler.rng.bit_generator.state = checkpoint["crop_rng"]
        generator.set_state(checkpoint["noise_rng"])
        step, wall, history = checkpoint["step"], checkpoint["wall_seconds"], checkpoint["history"]
        log(f"resumed {config.out} at step {step} ({wall / 3600:.2f} h trained)")
    log(
        f"training {config.model} {hparams} options {options}: {len(images)} images from {config.data}, "
        f"{config.patch}×{config.patch} crops, batch {config.batch}, lr {config.lr}, clip {config.clip}, seed {config.seed}, "
        f"precision {config.precision}, "
        f"{sum(p.numel() for p in network.parameters())} parameters, torch threads {torch.get_num_threads()}"
    )

    def snapshot() -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "model": config.model,
            "hparams": hparams,
            "options": options,
            "state_dict": network.state_dict(),
            "optimizer": optimizer.state_dict(),
            "auxiliary_optimizer": None if auxiliary_optimizer is None else auxiliary_optimizer.state_dict(),
            "crop_rng": sampler.rng.bit_generator.state,
            "noise_rng": generator.get_state(),
            "step": step,
            "wall_seconds": wall,
            "history": history,
            "config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(config).items()},
        }

    last_save = time.monotonic()
    window: list[float] = []
    part_windows: dict[str, list[float]] = {}
    window_start = time.monotonic()
    end = config.steps if config.stop_at is None else min(config.steps, config.stop_at)
    while step < end:
        started = time.monotonic()
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config.steps, config.lr)
        batch = cls.image_to_tensor(sampler.batch(config.batch)).to(device)
        if mixed and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mixed):
            loss = recipe.training_loss(forward, batch, generator, **options)
        loss, parts = loss if isinstance(loss, tuple) else (loss, {})
        if not torch.isfinite(loss):
            raise TrainingError(f"loss became {loss.item()} at step {step}; lower --lr or --clip")
        optimizer.zero_grad(set_to_none=True)
        if auxiliary_optimizer is not None:
            auxiliary_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(main_parameters, config.clip)
        optimizer.step()
        if auxiliary_optimizer is not None:
            auxiliary_optimizer.step()
        step += 1
        wall += time.monotonic() - started
        window.append(loss.item())
        for name, value in parts.items():
            part_windows.setdefault(name, []).append(float(value))
        if step % config.log_every == 0 or step == end:
            mean = float(np.mean(window))
            rate = len(window) / (time.monotonic() - window_start)
            history.append((step, mean, wall))
            shown = "".join(f" {name} {np.mean(values):.5g}" for name, values in part_windows.items())
            log(
                f"step {step}/{config.steps} loss {mean:.5f}{shown} lr {optimizer.param_groups[0]['lr']:.2e} "
                f"{rate:.3f} steps/s wall {wall / 60:.1f} min"
            )
            window, part_windows, window_start = [], {}, time.monotonic()
        if time.monotonic() - last_save > config.checkpoint_seconds:
            _save_atomic(snapshot(), config.out)
            last_save = time.monotonic()
    final = snapshot()
    _save_atomic(final, config.out)
    log(f"saved {config.out} at step {step}")
    return final


def export_weights(checkpoint_path: Path, weights_path: Path, data: str | None = None, *, force: bool = False, log: Callable[[str], None] = print) -> str:
    """Write the shipped weights file (fp16) from a checkpoint; return its SHA-256.

    ``data`` (folder or ``bd:SET``, never an evaluation set) feeds the recipe's
    ``export_extras`` (conv_lstm: entropy-coder priors measured on those images).
    """
    checkpoint = load_checkpoint(checkpoint_path)
    cls = codec_class(checkpoint["model"])
    network = cls.build_network(checkpoint["hparams"])
    network.load_state_dict(checkpoint["state_dict"])
    with torch.no_grad():  # measure extras with the parameters as shipped (fp16)
        for parameter in network.parameters():
            parameter.copy_(parameter.half().float())
    network.eval()
    images = load_training_images(data, 16, force) if data is not None else []
    extras = training_recipe(cls).export_extras(network, images)
    training = {
        "steps": checkpoint["step"],
        "wall_seconds": checkpoint["wall_seconds"],
        "options": checkpoint["options"],
        "config": checkpoint["config"],
        "final_loss": checkpoint["history"][-1][1] if checkpoint["history"] else None,
    }
    digest = save_weights(cls, network, checkpoint["hparams"], weights_path, extras, training)
    size = weights_path.stat().st_size
    log(f"exported {weights_path} ({size / 1e6:.2f} MB, sha256 {digest[:12]}) from step {checkpoint['step']}")
    return digest
