"""conv_lstm network pieces checked against hand-written formulas, and the shipped weights on Kodak."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from codecbench.learned.entropy import STATES
from codecbench.learned.header import Header
from codecbench.learned.weights import save_weights
from codecbench_codecs.conv_lstm import ConvLstmCodec
from codecbench_codecs.conv_lstm.model import Binarizer, ConvLstmCell, ConvLstmConfig, ConvLstmNet

TINY = ConvLstmConfig((8, 8, 8, 8), (8, 8, 8, 8), 32)
TINY_ADDITIVE = ConvLstmConfig((8, 8, 8, 8), (8, 8, 8, 8), 32, "additive", residual_gain=True)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_conv_lstm_cell_matches_the_lstm_equations():
    torch.manual_seed(0)
    cell = ConvLstmCell(5, 6, kernel=3, stride=2, hidden_kernel=1)
    x, h, c = torch.randn(2, 5, 8, 8), torch.randn(2, 6, 4, 4), torch.randn(2, 6, 4, 4)
    gates = F.conv2d(x, cell.conv_x.weight, cell.conv_x.bias, stride=2, padding=1) + F.conv2d(h, cell.conv_h.weight)
    i, f, o, g = (gates[:, k * 6 : (k + 1) * 6] for k in range(4))
    c_expected = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h_expected = torch.sigmoid(o) * torch.tanh(c_expected)
    out, (h_new, c_new) = cell(x, (h, c))
    torch.testing.assert_close(c_new, c_expected)
    torch.testing.assert_close(h_new, h_expected)
    assert out is h_new


def test_binarizer_is_unbiased_in_training_and_sign_at_inference():
    binarizer = Binarizer(1, 1).double()  # float64: the 100k-term gradient sum below stays exact to 1e-6
    with torch.no_grad():
        binarizer.conv.weight.zero_()
        binarizer.conv.bias.fill_(math.atanh(0.6))  # tanh output 0.6 everywhere
    x = torch.zeros(1, 1, 200, 500, dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    binarizer.train()
    bits = binarizer(x, generator)
    assert set(bits.unique().tolist()) == {-1.0, 1.0}
    assert bits.mean().item() == pytest.approx(0.6, abs=0.01)  # E[b] = x; std of the mean ≈ 0.0016
    bits.sum().backward()  # straight through: d b / d tanh = 1, so d/d bias = n · (1 - 0.6²)
    assert binarizer.conv.bias.grad.item() == pytest.approx(x.numel() * (1 - 0.36), rel=1e-6)
    binarizer.eval()
    assert binarizer(x).unique().tolist() == [1.0]
    with torch.no_grad():
        binarizer.conv.bias.fill_(0.0)  # tanh = 0 exactly → +1
    assert binarizer(x).unique().tolist() == [1.0]
    with torch.no_grad():
        binarizer.conv.bias.fill_(-0.01)
    assert binarizer(x).unique().tolist() == [-1.0]


@pytest.mark.parametrize(
    "config",
    [TINY, TINY_ADDITIVE],
    ids=["one_shot", "additive_gain"],
)
def test_shapes_and_loss_matches_decoding_prefixes(config):
    torch.manual_seed(1)
    network = ConvLstmNet(config).eval()
    if config.residual_gain:
        with torch.no_grad():
            network.log_gain.copy_(torch.linspace(0, 3, 16))  # gains e^0 … e^3, as if trained
    x = torch.rand(2, 3, 32, 48) - 0.5
    codes = network.encode(x, 4)
    assert codes.shape == (4, 2, 32, 2, 3) and codes.dtype == torch.bool  # 32 bits per 16×16 block per iteration
    reconstructions = [network.decode(codes[: t + 1]) for t in range(4)]
    assert reconstructions[0].shape == x.shape and float(reconstructions[0].abs().max()) <= 0.5
    expected = sum((x - r).abs().mean() for r in reconstructions) / 4  # mean over iterations of the L1 residual
    with torch.no_grad():
        torch.testing.assert_close(network.loss(x, 4), expected)


def test_additive_reconstruction_adds_the_decoder_outputs_divided_by_the_gains():
    torch.manual_seed(3)
    network = ConvLstmNet(TINY_ADDITIVE).eval()
    with torch.no_grad():
        network.log_gain.copy_(torch.linspace(0, 1.5, 16))
    codes = network.encode(torch.rand(1, 3, 32, 32) - 0.5, 3)
    states: list = [None] * 4
    with torch.no_grad():
        outputs = [network.decoder(code.float() * 2 - 1, states) for code in codes]
    expected = sum(out / math.exp(g) for out, g in zip(outputs, (0.0, 0.1, 0.2)))
    torch.testing.assert_close(network.decode(codes), expected)


def test_config_rejects_unknown_reconstruction_and_gain_without_additive():
    with pytest.raises(ValueError, match="reconstruction"):
        ConvLstmConfig(reconstruction="progressive")
    with pytest.raises(ValueError, match="additive"):
        ConvLstmConfig(residual_gain=True)


@pytest.mark.parametrize("config", [TINY, TINY_ADDITIVE], ids=["one_shot", "additive_gain"])
def test_sixteen_iterations_run_on_any_size(tmp_path, natural_image, config):
    torch.manual_seed(2)
    path = tmp_path / "tiny.pt"
    save_weights(ConvLstmCodec, ConvLstmNet(config), config.to_dict(), path)
    codec = ConvLstmCodec(weights=str(path))
    assert codec.network.config == config  # widths and reconstruction mode are read back from the weights file
    data, decoded = codec.round_trip(np.ascontiguousarray(natural_image[:33, :50]), 16)
    assert decoded.shape == (33, 50, 3)
    assert Header.unpack(data)[0].setting == 16


# --- the shipped weights ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped():
    codec = ConvLstmCodec()
    if not codec.weights_path.is_file():
        pytest.fail(f"shipped weights missing at {codec.weights_path}")
    return codec


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(255**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def test_shipped_weights_file(shipped):
    data = shipped.weights_path.read_bytes()
    assert len(data) < 25e6
    assert hashlib.sha256(data).hexdigest()[:12] in shipped.version()
    assert shipped.extras["entropy_prior"].shape == (16, 32, STATES)


@pytest.mark.slow
def test_shipped_weights_on_kodak(shipped, kodak_dir):
    from PIL import Image

    image = np.asarray(Image.open(kodak_dir / "kodim23.png").convert("RGB"))
    pixels = image.shape[0] * image.shape[1]
    results = {}
    for iterations in (2, 6):
        data, decoded = shipped.round_trip(image, iterations)
        results[iterations] = (8 * len(data) / pixels, _psnr(image, decoded))
        raw = shipped.bitstream_stats(data, image.shape[1], image.shape[0])["bpp_raw"]
        assert raw == pytest.approx(iterations * 0.125)  # 768×512 is a whole number of 16×16 blocks
        assert results[iterations][0] < raw  # entropy coding saves bits
    assert results[6][1] > results[2][1] + 2  # more iterations, clearly better
    assert results[2][1] > 24  # a trained network, not noise
