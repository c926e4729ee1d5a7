"""Training loop: loss goes down, determinism and resume, evaluation-set refusal, export, CLI."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from codecbench.cli.train import train as train_command
from codecbench.errors import TrainingError
from codecbench.learned.entropy import STATES
from codecbench.learned.training import TrainConfig, export_weights, load_checkpoint, train
from codecbench_codecs.conv_lstm import ConvLstmCodec

TINY = {"encoder_widths": [8, 8, 8, 8], "decoder_widths": [8, 8, 8, 8], "bits": 32}


pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]  # training steps


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory, natural_image):
    folder = tmp_path_factory.mktemp("photos")
    for k in range(3):
        Image.fromarray(natural_image[k * 96 : k * 96 + 64, 100:164]).save(folder / f"crop{k}.png")
    return folder


def _config(folder, out, steps, **overrides) -> TrainConfig:
    values = dict(model="conv_lstm", data=str(folder), out=out, steps=steps, patch=32, batch=4, lr=3e-3, seed=3,
                  hparams=TINY, options={"iterations": 2}, log_every=1)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.mark.parametrize("ms_ssim_weight", [0.0, 0.84])
def test_a_few_steps_reduce_the_loss(photo_folder, tmp_path, ms_ssim_weight):
    steps = 40 if ms_ssim_weight == 0 else 80
    config = _config(photo_folder, tmp_path / "run.ckpt", steps, options={"iterations": 2, "ms_ssim_weight": ms_ssim_weight})
    crops = np.stack([np.asarray(Image.open(path))[16:48, 16:48] for path in sorted(photo_folder.iterdir())])
    batch = ConvLstmCodec.image_to_tensor(crops)
    torch.manual_seed(config.seed)  # the same initial weights as the run
    network = ConvLstmCodec.build_network(TINY).eval()  # eval: deterministic binarizer, so losses compare exactly
    with torch.no_grad():
        before = network.loss(batch, 2, ms_ssim_weight=ms_ssim_weight).item()
    checkpoint = train(config, log=lambda line: None)
    network.load_state_dict(checkpoint["state_dict"])
    with torch.no_grad():
        after = network.loss(batch, 2, ms_ssim_weight=ms_ssim_weight).item()
    assert len(checkpoint["history"]) == steps and checkpoint["step"] == steps
    assert after < 0.93 * before  # eval-mode loss on a fixed batch: no noise, so any clear drop is learning


def test_resume_continues_the_same_run(photo_folder, tmp_path):
    straight = train(_config(photo_folder, tmp_path / "a.ckpt", 6), log=lambda line: None)
    train(_config(photo_folder, tmp_path / "b.ckpt", 6, stop_at=3), log=lambda line: None)  # an interrupted run
    # options not repeated: the checkpoint's (iterations=2), not the codec's default (16)
    resumed = train(_config(photo_folder, tmp_path / "b.ckpt", 6, options={}), resume=True, log=lambda line: None)
    assert resumed["options"] == straight["options"] and resumed["options"]["iterations"] == 2
    for name, tensor in straight["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][name], tensor, rtol=0, atol=0, msg=name)
    with pytest.raises(TrainingError, match="exists"):
        train(_config(photo_folder, tmp_path / "a.ckpt", 6), log=lambda line: None)


def test_refuses_evaluation_sets(photo_folder, tmp_path, kodak_dir):
    with pytest.raises(TrainingError, match="registered evaluation dataset"):
        train(_config("kodak", tmp_path / "k.ckpt", 1), log=lambda line: None)
    mixed = tmp_path / "mixed"
    shutil.copytree(photo_folder, mixed)
    Image.open(kodak_dir / "kodim07.png").save(mixed / "renamed.bmp")  # a lossless copy under another name
    with pytest.raises(TrainingError, match="renamed.bmp.*'kodak'"):
        train(_config(mixed, tmp_path / "m.ckpt", 1), log=lambda line: None)
    assert not (tmp_path / "m.ckpt").exists()


def test_cli_trains_and_exports_loadable_weights(photo_folder, tmp_path, natural_image):
    out, weights = tmp_path / "cli.ckpt", tmp_path / "w.pt"
    args = ["conv_lstm", "--data", str(photo_folder), "--steps", "2", "--out", str(out), "--batch", "2",
            "--option", "iterations=2", "--hparam", "encoder_widths=[8,8,8,8]", "--hparam", "decoder_widths=[8,8,8,8]",
            "--export-weights", str(weights)]
    result = CliRunner().invoke(train_command, args)
    assert result.exit_code == 0, result.output
    assert load_checkpoint(out)["step"] == 2
    codec = ConvLstmCodec(weights=str(weights))
    assert codec.network.config.encoder_widths == (8, 8, 8, 8)
    assert codec.extras["entropy_prior"].shape == (16, 32, STATES)
    assert codec.round_trip(np.ascontiguousarray(natural_image[:40, :40]), 2)[1].shape == (40, 40, 3)
    digest = export_weights(out, tmp_path / "again.pt", log=lambda line: None)
    assert digest[:12] in ConvLstmCodec(weights=str(tmp_path / "again.pt")).version()
    provenance = torch.load(weights, weights_only=True)["training"]
    assert provenance["config"]["out"] == "cli.ckpt"  # no directory of this machine
    assert provenance["config"]["data"] == photo_folder.name
    assert str(tmp_path) not in repr(provenance)
    bad = CliRunner().invoke(train_command, args[:7] + ["--hparam", "widths"])
    assert bad.exit_code != 0 and "KEY=VALUE" in bad.output


def test_fine_tuning_starts_from_a_weights_file(photo_folder, tmp_path):
    base = train(_config(photo_folder, tmp_path / "base.ckpt", 3), log=lambda line: None)
    weights = tmp_path / "base.pt"
    export_weights(tmp_path / "base.ckpt", weights, log=lambda line: None)
    shipped = ConvLstmCodec(weights=str(weights)).network.state_dict()  # fp16-rounded, as shipped
    # hparams come from the weights file, not the (different) defaults; zero steps = the initial state
    tuned = train(_config(photo_folder, tmp_path / "tuned.ckpt", 0, hparams={}, init_weights=weights), log=lambda line: None)
    assert tuned["hparams"] == base["hparams"]
    for name, tensor in shipped.items():
        torch.testing.assert_close(tuned["state_dict"][name], tensor, rtol=0, atol=0, msg=name)
    moved = train(_config(photo_folder, tmp_path / "moved.ckpt", 2, hparams={}, init_weights=weights), log=lambda line: None)
    assert any(not torch.equal(moved["state_dict"][name], tensor) for name, tensor in shipped.items())
    # --hparam may repeat the weights' own values; conv_lstm cannot change widths from --init
    same = train(_config(photo_folder, tmp_path / "same.ckpt", 0, init_weights=weights), log=lambda line: None)
    assert same["hparams"] == base["hparams"]
    with pytest.raises(TrainingError, match="cannot start hyper-parameters"):
        train(_config(photo_folder, tmp_path / "h.ckpt", 1, hparams={"bits": 16}, init_weights=weights), log=lambda line: None)
    (tmp_path / "junk.pt").write_bytes(b"not weights")
    with pytest.raises(TrainingError, match="junk.pt"):
        train(_config(photo_folder, tmp_path / "j.ckpt", 1, hparams={}, init_weights=tmp_path / "junk.pt"), log=lambda line: None)
