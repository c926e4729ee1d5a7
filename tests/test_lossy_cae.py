"""lossy_cae: binarization, nested channels, SSIM loss, bitstream robustness, cross-process decoding, training, weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from codecbench.errors import CodecError
from codecbench.learned.entropy import STATES
from codecbench.learned.header import Header
from codecbench.learned.losses import ssim
from codecbench.learned.training import TrainConfig, export_weights, train
from codecbench.learned.weights import save_weights
from codecbench.metrics.fidelity import ssim as ssim_metric
from codecbench_codecs.lossy_cae import LossyCaeCodec
from codecbench_codecs.lossy_cae.model import LossyCaeConfig, LossyCaeNet, stochastic_binarize
from codecbench_codecs.lossy_cae.recipe import LossyCaeRecipe

TINY = {"widths": [4, 8], "channels": 12}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_codec(tmp_path_factory, natural_image):
    """A random-weight tiny network (12 channels) with entropy priors measured on two 128×128 photos."""
    torch.manual_seed(0)
    network = LossyCaeCodec.build_network(TINY).eval()
    extras = LossyCaeRecipe().export_extras(network, [natural_image[64:192, 192:320], natural_image[300:428, 256:384]])
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    save_weights(LossyCaeCodec, network, TINY, path, extras)
    return LossyCaeCodec(weights=str(path), threads=1)


@pytest.fixture(scope="module")
def odd_image(natural_image):
    return np.ascontiguousarray(natural_image[100:157, 200:283])  # 83 wide × 57 high


def test_binarization_is_unbiased_in_training_and_a_threshold_at_inference():
    network = LossyCaeNet(LossyCaeConfig((4, 8), 2)).double()
    with torch.no_grad():
        last = network.encoder[-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([np.log(0.3 / 0.7), -1e-3]))  # P(b = 1) = 0.3 and just under 0.5
    x = torch.zeros(1, 3, 400, 400, dtype=torch.float64)
    p = torch.sigmoid(network.logits(x)).detach().requires_grad_(True)
    bits = stochastic_binarize(p, torch.Generator().manual_seed(0))
    assert set(bits.unique().tolist()) == {0.0, 1.0}
    assert bits[0, 0].mean().item() == pytest.approx(0.3, abs=0.01)  # E[b] = p; std of the mean ≈ 0.0011
    bits.sum().backward()
    assert torch.equal(p.grad, torch.ones_like(p))  # straight through
    codes = network.encode(x)
    assert codes.dtype == torch.bool and not codes[0, 0].any() and not codes[0, 1].any()
    with torch.no_grad():
        last.bias.copy_(torch.tensor([1e-3, 0.0]))
    assert network.encode(x)[0, 0].all() and not network.encode(x)[0, 1].any()  # logit 0 (p = ½) → 0


def test_nested_channels_only_the_first_k_reach_the_decoder():
    torch.manual_seed(1)
    network = LossyCaeNet(LossyCaeConfig((4, 8), 6)).eval()
    bits = torch.rand(2, 6, 5, 7) < 0.5
    other = bits.clone()
    other[:, 3:] = ~other[:, 3:]
    with torch.no_grad():
        torch.testing.assert_close(network.decode(bits[:, :3]), network.decode(other, kept=3))
        signs = torch.cat([bits[:, :3].float() * 2 - 1, torch.zeros(2, 3, 5, 7)], dim=1)
        torch.testing.assert_close(network.decode(bits[:, :3]), network.decoder(signs))
        x = torch.rand(2, 3, 20, 28) - 0.5
        full = network.training_forward(x, torch.Generator().manual_seed(0), nested=False, stochastic=False)
        torch.testing.assert_close(full, network.decode(network.encode(x)))  # threshold training = inference


def test_ssim_loss_is_the_ssim_metric():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-30, 30, a.shape), 0, 255).astype(np.uint8)
    as_tensor = lambda im: torch.from_numpy(im).permute(2, 0, 1)[None].double() / 255  # noqa: E731
    assert ssim(as_tensor(a), as_tensor(b)).item() == pytest.approx(ssim_metric(a, b), abs=1e-7)
    with pytest.raises(ValueError, match="at least 11"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_round_trip_rates_and_header(tiny_codec, odd_image):
    data, decoded = tiny_codec.round_trip(odd_image, 5)
    assert decoded.shape == (57, 83, 3) and decoded.dtype == np.uint8
    header, payload = Header.unpack(data)
    assert (header.width, header.height, header.setting) == (83, 57, 5.0)
    assert len(data) == tiny_codec.header_size() + len(payload) and tiny_codec.encode(odd_image, 5) == data
    assert tiny_codec.bitstream_stats(data, 83, 57)["bpp_raw"] == pytest.approx(5 * 15 * 21 / (83 * 57))  # ⌈57/4⌉·⌈83/4⌉
    assert len(tiny_codec.encode(odd_image, 12)) > len(tiny_codec.encode(odd_image, 1))
    extra = tiny_codec.cell_extra()
    assert extra["device"] == "cpu" and all(extra[f"stage_{s}_s"] >= 0 for s in ("analysis", "entropy_encode", "entropy_decode", "synthesis"))
    assert tiny_codec.extras["entropy_prior"].shape == (1, 12, STATES)


def test_prefix_code_decodes_as_the_network_from_the_first_k_channels(tiny_codec, odd_image):
    padded = np.pad(odd_image, ((0, 3), (0, 1), (0, 0)), mode="edge")
    with torch.inference_mode():
        bits = tiny_codec.network.encode(LossyCaeCodec.image_to_tensor(padded))
    data = tiny_codec.encode(odd_image, 4)
    np.testing.assert_array_equal(tiny_codec.decode_bits(Header.unpack(data)[1], 60, 84, 4)[0], bits[0, :4].numpy())


def test_setting_beyond_the_network_channels_is_refused(tiny_codec, odd_image):
    with pytest.raises(CodecError, match="has 12"):
        tiny_codec.encode(odd_image, 13)
    with pytest.raises(CodecError, match="channels=33"):
        tiny_codec.encode(odd_image, 33)


def test_damaged_bitstreams_raise(tiny_codec, odd_image, bitstream_damage):
    data = tiny_codec.encode(odd_image, 8)
    with pytest.raises(CodecError):
        tiny_codec.decode(bitstream_damage(data))


def test_consistent_but_wrong_payloads_raise(tiny_codec, odd_image):
    header, payload = Header.unpack(tiny_codec.encode(odd_image, 8))
    def rewrap(body: bytes) -> bytes:
        return Header.for_payload("lossy_cae", header.weights_prefix.hex() + "0" * 48, 83, 57, 8, body).pack() + body
    with pytest.raises(CodecError, match="32-bit words"):
        tiny_codec.decode(rewrap(payload[:-2]))
    with pytest.raises(CodecError):
        tiny_codec.decode(rewrap(payload + payload))


@pytest.mark.slow  # a subprocess importing torch: a few seconds
def test_cross_process_decoding_with_another_thread_count(tiny_codec, odd_image, decode_in_another_process):
    data = tiny_codec.encode(odd_image, 9)
    decoded = tiny_codec.decode(data)
    bits = tiny_codec.decode_bits(Header.unpack(data)[1], 60, 84, 9)
    other, other_bits = decode_in_another_process(tiny_codec, data, 2, "decode_bits", 60, 84, 9)
    np.testing.assert_array_equal(other_bits, bits)  # the entropy decoding is exact
    assert np.abs(other.astype(int) - decoded).max() <= 1  # float convolutions: at most one level (see LearnedCodec)
    assert (other == decoded).mean() > 0.999


@pytest.mark.slow  # short training runs with both losses and an export: ~5 s
def test_training_with_either_loss_reduces_it_and_exports(tmp_path, natural_image):
    from PIL import Image

    from codecbench.errors import TrainingError

    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(2):
        Image.fromarray(natural_image[k * 128 : k * 128 + 128, 128:256]).save(folder / f"p{k}.png")
    runs = {"ssim": {"loss": "ssim", "nested": False}, "mse": {"loss": "mse", "nested": False},  # less noise in 30 steps
            "mixed-threshold": {"loss": "ssim", "l1_weight": 0.16, "binarize": "threshold"}}
    for name, options in runs.items():
        config = TrainConfig(model="lossy_cae", data=str(folder), out=tmp_path / f"{name}.ckpt", steps=30, patch=32,
                             batch=4, lr=3e-3, seed=5, hparams=TINY, options=options, log_every=1)
        history = [value for _, value, _ in train(config, log=lambda line: None)["history"]]
        assert np.mean(history[-5:]) < 0.9 * np.mean(history[:5]), name  # 1 − SSIM falls slowly from ~0.9
    export_weights(tmp_path / "ssim.ckpt", tmp_path / "w.pt", str(folder), log=lambda line: None)
    codec = LossyCaeCodec(weights=str(tmp_path / "w.pt"))
    assert codec.round_trip(np.ascontiguousarray(natural_image[:40, :48]), 12)[1].shape == (40, 48, 3)
    bad = TrainConfig(model="lossy_cae", data=str(folder), out=tmp_path / "bad.ckpt", steps=1, patch=32, batch=2,
                      hparams=TINY, options={"loss": "l1"})
    with pytest.raises((TrainingError, ValueError), match="loss must be one of"):
        train(bad, log=lambda line: None)


def test_shipped_weights_on_kodak(kodak_dir):
    from codecbench.data.images import load_rgb
    from codecbench.metrics.fidelity import ms_ssim

    codec = LossyCaeCodec()
    image = load_rgb(kodak_dir / "kodim23.png")
    assert codec.weights_path.stat().st_size < 3e6
    points = []
    for kept in (2, 16):
        data, decoded = codec.round_trip(image, kept)
        bpp = 8 * len(data) / image[..., 0].size
        assert bpp < codec.bitstream_stats(data, 768, 512)["bpp_raw"]  # entropy coding saves bits
        points.append((bpp, ms_ssim(image, decoded)))
    assert points[0][0] < points[1][0] and points[1][1] > points[0][1] + 0.05 and points[1][1] > 0.8  # trained, not noise
