"""``codecbench train``: train a learned codec and export its shipped weights file."""

from __future__ import annotations

import json
from pathlib import Path

import click

from codecbench.cli.options import Command, output_option, parse_key_values, verbosity_options


def _json_value(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"VALUE must be JSON (e.g. 8, [32,64,128,128]): {exc}") from None


def _key_values(pairs: tuple[str, ...], option: str) -> dict:
    """``KEY=JSON`` pairs as a dict."""
    return dict(parse_key_values(pairs, option, "KEY=VALUE, e.g. iterations=8", _json_value))


@click.command("train", cls=Command)
@click.argument("model")
@click.option("--data", required=True, help="Training images: a folder, or a patch set bd:SET. Evaluation sets are refused.")
@output_option("Checkpoint file (written every few minutes and at the end).", dest="out", required=True, path_type=Path,
               old_names=("--out",))
@click.option("--steps", type=click.IntRange(min=0), required=True, help="Total optimiser steps (a resumed run continues up to this).")
@click.option("--patch", type=click.IntRange(min=16), default=32, show_default=True, help="Crop size in pixels.")
@click.option("--batch", type=click.IntRange(min=1), default=32, show_default=True, help="Crops per step.")
@click.option("--lr", type=float, default=5e-4, show_default=True, help="Adam learning rate (constant for half the steps, then cosine to lr/10).")
@click.option("--clip", type=float, default=1.0, show_default=True, help="Gradient-norm clipping threshold.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for weights, crops and training noise.")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--hparam", "hparams", multiple=True, help="Network hyper-parameter KEY=JSON, e.g. encoder_widths=[64,256,512,512] (new runs only).")
@click.option("--option", "options", multiple=True, help="Codec training option KEY=JSON, e.g. iterations=16 (a resumed run keeps its checkpoint's unless given).")
@click.option("--lambda", "lmbda", type=float, default=None,
              help="Rate–distortion trade-off λ (shorthand for --option lambda=L; Ballé codecs: loss = bpp + λ·255²·MSE).")
@click.option("--init", "init_weights", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="New runs: start from this weights file (fine-tune) instead of random weights.")
@click.option("--compile", "compile_loss", is_flag=True, help="Run the network through torch.compile (faster steps after a minute of compiling).")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32", show_default=True,
              help="bf16: mixed precision (bfloat16 autocast, channels-last; 2–3× faster steps on CPUs with AMX or AVX-512 BF16 and on GPUs). "
                   "Checkpoints and weights stay float32.")
@click.option("--resume", is_flag=True, help="Continue the checkpoint at -o/--output.")
@click.option("--force", is_flag=True, help="Allow training on a registered evaluation dataset (e.g. kodak).")
@click.option("--stop-at", type=click.IntRange(min=1), default=None, help="Stop (and save) at this step; the lr schedule still follows --steps.")
@click.option("--checkpoint-minutes", type=float, default=5.0, show_default=True, help="Minutes between checkpoint saves.")
@click.option("--export-weights", type=click.Path(path_type=Path), default=None, help="After training, write the shipped fp16 weights file here.")
@verbosity_options
def train(model, data, out, steps, patch, batch, lr, clip, seed, device, threads, hparams, options, lmbda, init_weights, compile_loss, precision, resume, force, stop_at, checkpoint_minutes, export_weights, verbosity):
    """Train learned codec MODEL on random crops of --data; with --export-weights, also write its weights file.

    Example: codecbench train conv_lstm --data photos/ --steps 5000 -o run.ckpt --export-weights codecs/conv_lstm/conv_lstm.pt
    (a checkpoint already at --steps only exports).
    """
    try:
        import torch
    except ImportError:
        from codecbench.errors import UsageError
        from codecbench.learned.codec import LEARNED_INSTALL

        raise UsageError(f"codecbench train needs torch, which is not installed; {LEARNED_INSTALL}") from None

    from codecbench.learned.training import TrainConfig, export_weights as export, load_checkpoint, train as run_training

    if threads is not None:
        torch.set_num_threads(threads)
    config = TrainConfig(
        model=model, data=data, out=out, steps=steps, patch=patch, batch=batch, lr=lr, clip=clip, seed=seed, device=device,
        hparams=_key_values(hparams, "--hparam"),
        options={**_key_values(options, "--option"), **({} if lmbda is None else {"lambda": lmbda})},
        checkpoint_seconds=checkpoint_minutes * 60, stop_at=stop_at, force=force, init_weights=init_weights,
        compile=compile_loss, precision=precision,
    )
    def log(line: str) -> None:
        if not verbosity.quiet:
            click.echo(line)

    verbosity.detail(f"training {config}")

    if resume and hparams:
        raise click.BadParameter("applies to new runs only; a resumed run keeps its checkpoint's hyper-parameters",
                                 param_hint="--hparam")
    if not (resume and load_checkpoint(out)["step"] >= min(steps, stop_at or steps)):
        run_training(config, resume=resume, log=log)
    if export_weights is not None:
        export(out, export_weights, data, force=force, log=log)


if __name__ == "__main__":
    train()
