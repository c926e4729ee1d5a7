"""cae_pca: PCA quantizer, entropy coder, bitstream robustness, cross-process decoding, training, shipped weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from codecbench.errors import CodecError, EntropyError
from codecbench.learned.header import Header
from codecbench.learned.training import TrainConfig, export_weights, train
from codecbench.learned.weights import save_weights
from codecbench_codecs.cae_pca import QUALITY_LEVELS, CaePcaCodec
from codecbench_codecs.cae_pca.entropy import ALPHABET, RADIUS, decode_values, encode_values, ideal_bits, to_symbols
from codecbench_codecs.cae_pca.recipe import CaePcaRecipe, choose_settings, compute_pca, upper_envelope

TINY = {"widths": [4, 4, 8], "code_channels": 8, "res_blocks": 1}
WEIGHTS_BUDGET_BYTES = 40e6  # every learned codec's shipped weights together (issue 15)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_codec(tmp_path_factory, natural_image):
    """A random-weight tiny network with PCA, priors and a setting table exported from two 128×128 photos."""
    torch.manual_seed(0)
    network = CaePcaCodec.build_network(TINY).eval()
    images = [natural_image[64:192, 192:320], natural_image[300:428, 256:384]]
    extras = CaePcaRecipe().export_extras(network, images)
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    save_weights(CaePcaCodec, network, TINY, path, extras)
    return CaePcaCodec(weights=str(path), threads=1)


@pytest.fixture(scope="module")
def odd_image(natural_image):
    return np.ascontiguousarray(natural_image[100:157, 200:283])  # 83 wide × 57 high


def test_pca_is_orthonormal_sorted_and_sign_fixed():
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(4, 4))
    codes = [np.einsum("kc,chw->khw", mixing, rng.normal(size=(4, 9, 11)) * np.array([3, 1, 0.5, 0.1])[:, None, None]) + 0.2]
    mean, components, energy = compute_pca(codes)
    np.testing.assert_allclose(components @ components.T, np.eye(4), atol=1e-12)
    assert list(energy) == sorted(energy, reverse=True)
    z = np.einsum("kc,cn->kn", components, codes[0].reshape(4, -1) - mean[:, None])
    np.testing.assert_allclose(z.var(axis=1, ddof=1), energy, rtol=1e-9)  # the coefficients' variances are the energies
    assert all(row[np.abs(row).argmax()] > 0 for row in components)


def test_quantizer_keeps_the_first_channels_at_precision_b(tiny_codec):
    code = torch.rand(1, 8, 3, 5) * 2 - 1
    extras = tiny_codec.extras
    mean, components = extras["pca_mean"].double().numpy(), extras["pca_components"].double().numpy()
    for quality in (1, QUALITY_LEVELS):
        precision, kept = tiny_codec.operating_point(quality)
        values = tiny_codec.quantize(code, quality)
        z = np.einsum("kc,chw->khw", components, code[0].double().numpy() - mean[:, None, None])
        np.testing.assert_array_equal(values, np.round(z[:kept] * 2.0 ** (precision - 1)))
        expected = np.einsum("kc,khw->chw", components[:kept], values / 2.0 ** (precision - 1)) + mean[:, None, None]
        torch.testing.assert_close(tiny_codec.dequantize(values, quality)[0], torch.from_numpy(expected).float())  # dropped = 0


def test_setting_table_is_a_monotone_ladder(tiny_codec):
    table = tiny_codec.extras["settings"].tolist()
    bpp = tiny_codec.extras["settings_bpp"].tolist()
    assert len(table) == QUALITY_LEVELS and bpp == sorted(bpp)
    front = upper_envelope([(0.1, 20.0, "a"), (0.2, 19.0, "worse"), (0.3, 25.0, "b"), (0.3, 24.0, "c"), (1.0, 30.0, "d")])
    assert [key for _, _, key in front] == ["a", "b", "d"]
    points = [(b, float(i), i) for i, b in enumerate(np.geomspace(0.05, 3, 40))]
    chosen = choose_settings(points, targets=(0.1, 0.5, 1.5))
    step = (3 / 0.05) ** (1 / 39)  # ratio of neighbouring points
    assert all(abs(np.log(b / t)) <= np.log(step) / 2 + 1e-12 for (b, _, _), t in zip(chosen, (0.1, 0.5, 1.5)))
    assert [k for *_, k in chosen] == sorted({k for *_, k in chosen})  # strictly increasing
    assert [k for *_, k in choose_settings(points[:2], targets=(0.1, 0.5, 1.5))] == [0, 1, 1]  # short envelope: repeats


def test_pca_dropout_pass_rotates_back_exactly_when_everything_is_kept():
    torch.manual_seed(4)
    network = CaePcaCodec.build_network({**TINY, "code_channels": 1}).eval()  # one channel: k is always 1
    x = torch.rand(3, 3, 16, 24) - 0.5
    with torch.no_grad():  # B = 60: noise of width 2^-59, below float32 resolution of the code
        out = network.pca_dropout_forward(x, torch.Generator().manual_seed(0), 60.0, 60.0)
        torch.testing.assert_close(out, network.decode(network.encode(x)), rtol=1e-5, atol=1e-6)
    torch.manual_seed(4)
    network = CaePcaCodec.build_network(TINY)
    loss = CaePcaRecipe().training_loss(network, x, torch.Generator().manual_seed(0), pca_dropout=True)
    loss.backward()
    assert loss.item() > 0 and network.encoder[0].weight.grad.abs().sum() > 0  # gradients reach the encoder


# --- entropy coder ---------------------------------------------------------------------------

def test_symbols_cover_small_values_and_escape_classes():
    values = np.array([0, 3, -RADIUS, RADIUS + 1, -(RADIUS + 1), RADIUS + 2, RADIUS + 2**15, -(RADIUS + 2**16 - 1)])
    symbols, sizes, offsets = to_symbols(values)
    assert list(symbols[:3]) == [RADIUS, RADIUS + 3, 0]
    assert (symbols < ALPHABET).all() and list(sizes) == [1, 1, 2, 2**15, 2**16 // 2]
    assert (offsets >= 0).all() and (offsets < sizes).all()
    with pytest.raises(EntropyError, match="too large"):
        to_symbols(np.array([RADIUS + 2**16]))


@pytest.mark.parametrize("scale", [0.3, 5.0, 300.0])
def test_entropy_coder_round_trip_and_ideal_length(scale):
    rng = np.random.default_rng(1)
    values = np.round(rng.laplace(0, scale, (5, 9, 13)) * np.geomspace(1, 0.1, 5)[:, None, None]).astype(np.int64)
    payload = encode_values(values)
    np.testing.assert_array_equal(decode_values(payload, values.shape), values)
    ideal = ideal_bits(values).sum()
    assert ideal <= 8 * len(payload) <= ideal + 64  # range coder: within two 32-bit words of the ideal length


def test_prior_and_contexts_save_bits():
    rng = np.random.default_rng(2)
    active = np.repeat(rng.random((1, 6, 32)) < 0.3, 4, axis=1)  # busy places: the same in every channel, 4 rows high
    values = (np.round(rng.laplace(0, 2, (6, 24, 32))) * active).astype(np.int64)
    counts = np.stack([np.ones((3, ALPHABET))] * 6)
    counts[:, :, RADIUS] += 50
    assert len(encode_values(values, counts)) < len(encode_values(values))
    np.testing.assert_array_equal(decode_values(encode_values(values, counts), values.shape, counts), values)
    shuffled = rng.permuted(values.reshape(-1)).reshape(values.shape)  # the same symbols, their contexts destroyed
    assert ideal_bits(values).sum() < 0.93 * ideal_bits(shuffled).sum()


def test_entropy_decoder_rejects_bad_payloads():
    values = np.round(np.random.default_rng(3).laplace(0, 4, (3, 8, 8))).astype(np.int64)
    payload = encode_values(values)
    with pytest.raises(EntropyError, match="32-bit words"):
        decode_values(payload[:-1], values.shape)
    with pytest.raises(EntropyError):
        decode_values(payload + payload, values.shape)


# --- the codec -------------------------------------------------------------------------------

def test_round_trip_pads_crops_and_repeats(tiny_codec, odd_image):
    data, decoded = tiny_codec.round_trip(odd_image, 4)
    assert decoded.shape == (57, 83, 3) and decoded.dtype == np.uint8
    header, payload = Header.unpack(data)
    assert (header.width, header.height, header.setting) == (83, 57, 4.0)
    assert len(data) == tiny_codec.header_size() + len(payload)
    assert tiny_codec.encode(odd_image, 4) == data
    stats = tiny_codec.bitstream_stats(data, 83, 57)
    assert (stats["precision"], stats["channels"]) == tuple(float(v) for v in tiny_codec.operating_point(4))
    extra = tiny_codec.cell_extra()
    assert extra["device"] == "cpu"
    for stage in ("analysis", "entropy_encode", "entropy_decode", "synthesis"):
        assert extra[f"stage_{stage}_s"] >= 0


def test_highest_quality_costs_more_bits_than_the_lowest(tiny_codec, natural_image):
    image = np.ascontiguousarray(natural_image[:128, :128])
    assert len(tiny_codec.encode(image, QUALITY_LEVELS)) > len(tiny_codec.encode(image, 1))


def test_damaged_bitstreams_raise(tiny_codec, odd_image, bitstream_damage):
    data = tiny_codec.encode(odd_image, 6)
    with pytest.raises(CodecError):
        tiny_codec.decode(bitstream_damage(data))


def test_consistent_but_wrong_payloads_raise_or_are_caught(tiny_codec, odd_image):
    """Payload damage behind a recomputed CRC (a writer bug, not line noise): cut or extended payloads are errors."""
    header, payload = Header.unpack(tiny_codec.encode(odd_image, QUALITY_LEVELS))
    def rewrap(body: bytes) -> bytes:
        return Header.for_payload("cae_pca", header.weights_prefix.hex() + "0" * 48, 83, 57, header.setting, body).pack() + body
    with pytest.raises(CodecError, match="32-bit words"):
        tiny_codec.decode(rewrap(payload[:-2]))
    with pytest.raises(CodecError):
        tiny_codec.decode(rewrap(payload + payload))


@pytest.mark.slow  # a subprocess importing torch: a few seconds
def test_cross_process_decoding_with_another_thread_count(tiny_codec, odd_image, decode_in_another_process):
    data = tiny_codec.encode(odd_image, 7)
    decoded = tiny_codec.decode(data)
    values = tiny_codec.decode_values(Header.unpack(data)[1], 64, 88, 7)
    other, other_values = decode_in_another_process(tiny_codec, data, 2, "decode_values", 64, 88, 7)
    np.testing.assert_array_equal(other_values, values)  # the entropy decoding is exact
    assert np.abs(other.astype(int) - decoded).max() <= 1  # float convolutions: at most one level (see LearnedCodec)
    assert (other == decoded).mean() > 0.999


def test_bad_settings_and_tables(tiny_codec, odd_image, tmp_path):
    with pytest.raises(CodecError, match="quality=11"):
        tiny_codec.encode(odd_image, QUALITY_LEVELS + 1)
    path = tmp_path / "bare.pt"
    save_weights(CaePcaCodec, CaePcaCodec.build_network(TINY), TINY, path)  # no PCA, no table
    with pytest.raises(CodecError, match="operating points"):
        CaePcaCodec(weights=str(path)).encode(odd_image, 1)


# --- training --------------------------------------------------------------------------------

@pytest.mark.slow  # three short training runs and an export: ~5 s
def test_training_reduces_the_loss_resumes_exactly_and_exports(tmp_path, natural_image):
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(2):
        Image.fromarray(natural_image[k * 256 : k * 256 + 256, 128:384]).save(folder / f"p{k}.png")
    def config(out, steps, **changes):
        values = dict(model="cae_pca", data=str(folder), out=out, steps=steps, patch=32, batch=4, lr=3e-3, seed=5,
                      hparams=TINY, options={"b_min": 3.0, "b_max": 6.0}, log_every=1)
        return TrainConfig(**{**values, **changes})
    straight = train(config(tmp_path / "a.ckpt", 30), log=lambda line: None)
    history = [loss for _, loss, _ in straight["history"]]
    assert np.mean(history[-5:]) < 0.8 * np.mean(history[:5])
    train(config(tmp_path / "b.ckpt", 30, stop_at=12), log=lambda line: None)
    resumed = train(config(tmp_path / "b.ckpt", 30, options={}), resume=True, log=lambda line: None)
    for name, tensor in straight["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][name], tensor, rtol=0, atol=0, msg=name)
    export_weights(tmp_path / "a.ckpt", tmp_path / "w.pt", str(folder), log=lambda line: None)
    codec = CaePcaCodec(weights=str(tmp_path / "w.pt"))
    assert codec.extras["pca_components"].shape == (8, 8) and len(codec.extras["settings"]) == QUALITY_LEVELS
    assert codec.round_trip(np.ascontiguousarray(natural_image[:40, :48]), 5)[1].shape == (40, 48, 3)


# --- shipped weights -------------------------------------------------------------------------

def test_all_shipped_learned_weights_fit_the_budget():
    codecs = Path(CaePcaCodec.default_weights_path()).parent.parent
    total = sum(path.stat().st_size for path in codecs.rglob("*.pt"))
    assert total <= WEIGHTS_BUDGET_BYTES, f"{total / 1e6:.1f} MB of weights under {codecs}"


def test_shipped_weights_on_kodak(kodak_dir):
    from codecbench.data.images import load_rgb

    codec = CaePcaCodec()
    image = load_rgb(kodak_dir / "kodim23.png")
    points = []
    for quality in (1, QUALITY_LEVELS):
        data, decoded = codec.round_trip(image, quality)
        mse = np.mean((decoded.astype(np.float64) - image) ** 2)
        points.append((8 * len(data) / image[..., 0].size, 10 * np.log10(255**2 / mse)))
    assert 0.03 < points[0][0] < points[1][0] < 3
    assert points[1][1] > points[0][1] + 3 and points[0][1] > 24
