"""Ballé codecs: integer tables, entropy models against CompressAI's own outputs, real bitstreams, checkpoints."""

from __future__ import annotations

import io
import lzma
from pathlib import Path

import numpy as np
import pytest
import torch

from codecbench.errors import CodecError, EntropyError
from codecbench.learned.tables import TableCoder, check_consumed, coder_bytes, coder_from_bytes, new_coder, quantized_cdf
from codecbench.learned.weights import save_weights
from codecbench_codecs.balle import QUALITIES, Bmshj2018Factorized, Bmshj2018Hyperprior
from codecbench_codecs.balle.model import bits, build_factorized, build_hyperprior, widen_latents

FIXTURES = Path(__file__).parent / "fixtures" / "compressai"
CODECS = {
    "bmshj2018_factorized": (Bmshj2018Factorized, build_factorized),
    "bmshj2018_hyperprior": (Bmshj2018Hyperprior, build_hyperprior),
}
TABLES = ("_offset", "_quantized_cdf", "_cdf_length")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- integer tables and the table coder ---------------------------------------------------------
def test_quantized_cdf_is_a_valid_table_close_to_the_pmf():
    rng = np.random.default_rng(0)
    for size in (2, 17, 700):
        pmf = rng.dirichlet(np.full(size, 0.3))
        pmf[rng.integers(size)] = 0.0  # a symbol with no mass still gets frequency 1
        cdf = quantized_cdf(pmf)
        freq = np.diff(cdf)
        assert cdf[0] == 0 and cdf[-1] == 1 << 16 and len(cdf) == size + 1
        assert freq.min() >= 1
        cross_entropy = -(pmf * np.log2(freq / 65536.0)).sum()
        entropy = -(pmf[pmf > 0] * np.log2(pmf[pmf > 0])).sum()
        assert cross_entropy - entropy < 0.01 + size * 2e-4  # rounding costs little


def _laplace_tables(scales=(0.5, 2.0, 8.0)):
    cdfs, lengths, offsets = [], [], []
    for scale in scales:
        half = int(np.ceil(scale * 8))
        values = np.arange(-half, half + 1)
        pmf = np.exp(-np.abs(values) / scale)
        pmf = np.append(pmf / pmf.sum() * (1 - 1e-6), 1e-6)
        cdfs.append(quantized_cdf(pmf))
        lengths.append(len(pmf) + 1)
        offsets.append(-half)
    table = np.zeros((len(cdfs), max(lengths)), dtype=np.int32)
    for row, cdf in enumerate(cdfs):
        table[row, : len(cdf)] = cdf
    return TableCoder(table, np.array(lengths), np.array(offsets))


def test_table_coder_round_trips_values_far_outside_the_tables():
    coder_tables = _laplace_tables()
    rng = np.random.default_rng(1)
    indexes = rng.integers(0, 3, size=5000)
    values = np.round(rng.laplace(0, np.array([0.5, 2.0, 8.0])[indexes])).astype(np.int64)
    values[[3, 99, 4000]] = [-(2**40), 2**40 + 7, 1000]  # escapes, coded beyond the tables' ranges
    coder = new_coder()
    coder_tables.push(coder, values, indexes)
    payload = coder_bytes(coder)
    reader = coder_from_bytes(payload)
    np.testing.assert_array_equal(coder_tables.pop(reader, indexes), values)
    check_consumed(reader)
    # ANS costs about the tables' information content: within 1 % + a few words of it
    information = 0.0
    for table in range(3):
        cdf = coder_tables.cdfs[table, : coder_tables.cdf_lengths[table]]
        raw = values[indexes == table] - coder_tables.offsets[table]
        inside = raw[(raw >= 0) & (raw < len(cdf) - 2)]
        information += -np.log2(np.diff(cdf)[inside] / 65536.0).sum()
    assert 8 * len(payload) < 1.01 * information + 64 + 3 * 100


def test_table_coder_reports_leftover_data_and_bad_indexes():
    coder_tables = _laplace_tables()
    coder = new_coder()
    coder_tables.push(coder, np.arange(10) % 3, np.zeros(10, dtype=np.int64))
    reader = coder_from_bytes(coder_bytes(coder) + b"\x01\x02\x03\x04")
    coder_tables.pop(reader, np.zeros(10, dtype=np.int64))
    with pytest.raises(EntropyError, match="beyond"):
        check_consumed(reader)
    with pytest.raises(EntropyError, match="index out of range"):
        coder_tables.push(new_coder(), np.zeros(2), np.array([0, 3]))
    with pytest.raises(EntropyError, match="32-bit"):
        coder_from_bytes(b"abc")


# --- compatibility with CompressAI (fixture made by CompressAI itself, see make_fixture.py) -------
@pytest.fixture(scope="module", params=sorted(CODECS))
def compressai_fixture(request):
    path = FIXTURES / f"{request.param}.pt.xz"
    return request.param, torch.load(io.BytesIO(lzma.decompress(path.read_bytes())), weights_only=True)


def _image_tensor(fixture) -> torch.Tensor:
    return fixture["image"].permute(2, 0, 1)[None].float() / 255.0


def test_networks_reproduce_compressai_outputs(compressai_fixture):
    name, fixture = compressai_fixture
    network = CODECS[name][1]({"N": fixture["N"], "M": fixture["M"]}).eval()
    network.load_state_dict(fixture["state_dict"])
    with torch.no_grad():
        out = network(_image_tensor(fixture))
    assert (out["x_hat"] - fixture["x_hat"]).abs().max().item() <= 1e-5
    for key, expected in fixture["likelihoods"].items():
        ours, theirs = bits(out["likelihoods"][key]).item(), bits(expected).item()
        assert abs(ours - theirs) <= 1e-4 * theirs, (key, ours, theirs)


def _checkpoint(tmp_path: Path, state: dict, form: str) -> Path:
    path = tmp_path / f"{form}.pth.tar"
    if form == "training-script":  # CompressAI's examples/train.py, trained with DataParallel
        torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in state.items()}}, path)
    elif form == "legacy-names":  # CompressAI < 1.2 named the density's parameters _matrix0, _bias0, _factor0
        renamed = {}
        for key, value in state.items():
            for new, old in (("matrices.", "_matrix"), ("biases.", "_bias"), ("factors.", "_factor")):
                key = key.replace(f"entropy_bottleneck.{new}", f"entropy_bottleneck.{old}")
            renamed[key] = value
        torch.save(renamed, path)
    elif form == "no-tables":  # saved before update(): the codec rebuilds the tables
        torch.save({k: v for k, v in state.items() if k.rsplit(".", 1)[-1] not in TABLES}, path)
    else:
        torch.save(state, path)
    return path


@pytest.mark.parametrize("form", ["state-dict", "training-script", "legacy-names", "no-tables"])
def test_compressai_checkpoints_load_and_code_like_compressai(compressai_fixture, tmp_path, form):
    name, fixture = compressai_fixture
    codec = CODECS[name][0](weights=str(_checkpoint(tmp_path, fixture["state_dict"], form)), threads=1)
    image = fixture["image"].numpy()
    data = codec.encode(image, 1)
    payload = len(data) - codec.header_size()
    theirs = sum(fixture["stream_bytes"].values())
    assert abs(payload - theirs) <= 0.02 * theirs + 4, (payload, theirs)  # + one ANS word
    decoded = codec.decode(data)
    expected = (fixture["x_hat"][0].permute(1, 2, 0).clamp(0, 1).numpy() * 255).round()
    assert np.abs(decoded.astype(float) - expected).max() <= 1  # the decoder reads only the bytes
    assert codec.hparams == {"N": fixture["N"], "M": fixture["M"]}


def test_a_checkpoint_of_another_model_is_refused(compressai_fixture, tmp_path):
    name, fixture = compressai_fixture
    other = "bmshj2018_hyperprior" if name == "bmshj2018_factorized" else "bmshj2018_factorized"
    codec = CODECS[other][0](weights=str(_checkpoint(tmp_path, fixture["state_dict"], "state-dict")))
    with pytest.raises(CodecError, match="does not fit"):
        codec.encode(fixture["image"].numpy(), 1)


def test_unsafe_checkpoints_are_not_run(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"g_a.0.weight": torch.zeros(1)}, "payload": Path("x")}, path)  # a pickled class
    with pytest.raises(CodecError, match="safely"):
        Bmshj2018Factorized(weights=str(path)).encode(np.zeros((16, 16, 3), np.uint8), 1)


# --- real bitstreams with small random networks --------------------------------------------------
@pytest.fixture(scope="module", params=sorted(CODECS))
def tiny_codec(request, tmp_path_factory):
    cls, build = CODECS[request.param]
    torch.manual_seed(0)
    network = build({"N": 8, "M": 12}).eval()
    network.update()
    path = tmp_path_factory.mktemp("balle") / f"{request.param}.pt"
    save_weights(cls, network, {"N": 8, "M": 12}, path)
    return cls(weights=str(path), threads=1)


def test_weights_files_store_the_cdf_tables_unpadded(tiny_codec):
    stored = torch.load(tiny_codec.weights_file(1), weights_only=True)["state_dict"]
    for model in tiny_codec.network.entropy_models():
        prefix = "entropy_bottleneck." if model is tiny_codec.network.entropy_bottleneck else "gaussian_conditional."
        padded, lengths = model._quantized_cdf, model._cdf_length
        flat = stored[prefix + "_quantized_cdf"]
        assert flat.dim() == 1 and flat.numel() == int(lengths.sum()) <= padded.numel()
        if prefix == "gaussian_conditional.":  # rows of 64 scales from 0.11 to 256: mostly padding
            assert flat.numel() < padded.numel() / 4
        rows = torch.split(flat, lengths.tolist())
        for row, used, length in zip(padded, rows, lengths.tolist()):  # loaded back: the same rows, zero padding
            assert torch.equal(row[:length], used) and not row[length:].any()


def test_round_trip_records_stages_and_device(tiny_codec, natural_image):
    image = natural_image[:70, :90]  # not a multiple of 16 or 64: padded, then cropped back
    data = tiny_codec.encode(image, 2)
    decoded = tiny_codec.decode(data)
    assert decoded.shape == image.shape and decoded.dtype == np.uint8
    extra = tiny_codec.cell_extra()
    assert extra["device"] == "cpu"
    for stage in ("transfer_to_device", "analysis", "entropy_encode", "entropy_decode", "synthesis", "transfer_to_host"):
        assert extra[f"stage_{stage}_s"] >= 0


def test_damaged_and_truncated_streams_raise(tiny_codec, natural_image):
    data = bytearray(tiny_codec.encode(natural_image[:64, :64], 3))
    with pytest.raises(CodecError, match="truncated"):
        tiny_codec.decode(bytes(data[:-5]))
    for position in (len(data) - 1, tiny_codec.header_size() + 1, 8):
        damaged = bytearray(data)
        damaged[position] ^= 0x10
        with pytest.raises(CodecError):
            tiny_codec.decode(bytes(damaged))


@pytest.mark.slow
def test_decoding_in_another_process_with_other_threads(tiny_codec, natural_image, decode_in_another_process):
    torch.set_num_threads(2)
    data = tiny_codec.encode(natural_image[100:228, 100:292], 1)
    torch.set_num_threads(1)
    there = decode_in_another_process(tiny_codec, data, 1)
    here = tiny_codec.decode(data)
    assert np.abs(here.astype(int) - there.astype(int)).max() <= 1  # same latents; synthesis floats may round apart


def test_scale_indexes_do_not_depend_on_threads():
    torch.manual_seed(1)
    network = build_hyperprior({"N": 8, "M": 12}).eval()
    network.update()
    z_hat = torch.round(torch.randn(1, 8, 6, 7) * 3)
    torch.set_num_threads(2)
    two = network.scale_indexes(z_hat)
    torch.set_num_threads(1)
    network.to("cpu")  # rebuilds the float64 copy
    np.testing.assert_array_equal(network.scale_indexes(z_hat), two)


# --- the shipped models -------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CODECS))
def test_shipped_models_give_a_monotone_curve(name, natural_image):
    codec = CODECS[name][0](threads=1)
    missing = [p for p in codec.weights_files() if not p.is_file()]
    if missing:
        pytest.fail(f"shipped weights missing: {missing}")
    image = natural_image[128:256, 128:320]
    sizes, errors = [], []
    for quality in QUALITIES:
        data, decoded = codec.round_trip(image, quality)
        sizes.append(len(data))
        errors.append(np.mean((decoded.astype(float) - image) ** 2))
    assert sizes == sorted(sizes) and errors == sorted(errors, reverse=True), (sizes, errors)
    assert 10 * np.log10(255**2 / errors[-1]) > 25  # the best quality is a real codec, not noise
    assert codec.weights_bytes() < 25e6 and codec.hparams["N"] >= 32  # all learned weights ≤ 40 MB: test_cae_pca


# --- training ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory, natural_image):
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    for k in range(2):
        Image.fromarray(natural_image[k * 128 : k * 128 + 128, 64:192]).save(folder / f"crop{k}.png")
    return folder


def _train_config(folder, out, model="bmshj2018_hyperprior", **overrides):
    from codecbench.learned.training import TrainConfig

    values = dict(model=model, data=str(folder), out=out, steps=4, patch=64, batch=2, lr=1e-3, seed=5,
                  hparams={"N": 8, "M": 12}, options={"lambda": 0.01}, log_every=1)
    values.update(overrides)
    return TrainConfig(**values)


@pytest.mark.slow
def test_training_resumes_exactly_and_exports_a_working_codec(photo_folder, tmp_path, natural_image):
    from codecbench.learned.training import export_weights, train

    straight = train(_train_config(photo_folder, tmp_path / "a.ckpt"), log=lambda line: None)
    train(_train_config(photo_folder, tmp_path / "b.ckpt", stop_at=2), log=lambda line: None)
    resumed = train(_train_config(photo_folder, tmp_path / "b.ckpt"), resume=True, log=lambda line: None)
    for key, value in straight["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key  # aux optimiser state is resumed too
    assert straight["auxiliary_optimizer"] is not None
    weights = tmp_path / "q.pt"
    export_weights(tmp_path / "a.ckpt", weights, log=lambda line: None)
    codec = Bmshj2018Hyperprior(weights=str(weights))
    median = codec.network.entropy_bottleneck.quantiles[:, 0, 1]
    logits = codec.network.entropy_bottleneck.logits_cumulative(codec.network.entropy_bottleneck.quantiles.detach())
    assert torch.allclose(logits[:, 0, 1], torch.zeros_like(median), atol=0.05)  # quantiles fitted exactly at export
    assert codec.decode(codec.encode(natural_image[:64, :64], 1)).shape == (64, 64, 3)


@pytest.mark.slow
def test_init_from_another_model_copies_the_matching_transforms(photo_folder, tmp_path):
    from codecbench.learned.training import export_weights, train

    train(_train_config(photo_folder, tmp_path / "h.ckpt", steps=1), log=lambda line: None)
    export_weights(tmp_path / "h.ckpt", tmp_path / "h.pt", log=lambda line: None)
    lines: list[str] = []
    run = train(_train_config(photo_folder, tmp_path / "f.ckpt", model="bmshj2018_factorized", steps=0, hparams={},
                              init_weights=tmp_path / "h.pt"), log=lines.append)
    hyper = torch.load(tmp_path / "h.pt", weights_only=True)["state_dict"]
    assert torch.equal(run["state_dict"]["g_a.0.weight"], hyper["g_a.0.weight"].float())
    assert torch.equal(run["state_dict"]["g_s.6.weight"], hyper["g_s.6.weight"].float())
    assert any("copied" in line for line in lines)
    rescaled = train(_train_config(photo_folder, tmp_path / "r.ckpt", steps=0, hparams={}, init_weights=tmp_path / "h.pt",
                                   options={"lambda": 0.02, "latent_scale": 2.0}), log=lines.append)
    assert torch.allclose(rescaled["state_dict"]["g_a.6.weight"], 2 * hyper["g_a.6.weight"].float())
    assert any("latents rescaled by 2" in line for line in lines)


def test_latent_scale_applies_to_a_random_start_too(photo_folder, tmp_path):
    from codecbench.learned.training import train

    plain = train(_train_config(photo_folder, tmp_path / "p.ckpt", steps=0), log=lambda line: None)
    scaled = train(_train_config(photo_folder, tmp_path / "s.ckpt", steps=0, options={"lambda": 0.01, "latent_scale": 2.0}),
                   log=lambda line: None)
    assert torch.allclose(scaled["state_dict"]["g_a.6.weight"], 2 * plain["state_dict"]["g_a.6.weight"])


@pytest.mark.parametrize("name", sorted(CODECS))
def test_rescaled_latents_leave_the_continuous_model_unchanged(name, natural_image):
    torch.manual_seed(3)
    network = CODECS[name][1]({"N": 8, "M": 12}).eval()
    x = torch.from_numpy(natural_image[:64, :64].astype(np.float32) / 255).permute(2, 0, 1)[None]
    probe = torch.linspace(-3, 3, 7).repeat(network.entropy_bottleneck.channels, 1, 1)
    with torch.no_grad():
        y = network.g_a(x)
        x_hat = network.g_s(y)
        side = network.h_a(torch.abs(y)) if hasattr(network, "h_a") else None
        scales = network.h_s(side) if side is not None else None
        logits = network.entropy_bottleneck.logits_cumulative(probe)
        quantiles = network.entropy_bottleneck.quantiles.clone()
        network.rescale_latents(1.5)
        assert torch.allclose(network.g_a(x), 1.5 * y, atol=1e-5)
        assert torch.allclose(network.g_s(1.5 * y), x_hat, atol=1e-5)
        if side is None:  # the density of 1.5·y at 1.5·v is that of y at v
            assert torch.allclose(network.entropy_bottleneck.logits_cumulative(1.5 * probe), logits, atol=1e-5)
            assert torch.allclose(network.entropy_bottleneck.quantiles, 1.5 * quantiles)
        else:  # z unchanged, the predicted scales follow y
            assert torch.allclose(network.h_a(torch.abs(1.5 * y)), side, atol=1e-5)
            assert torch.allclose(network.h_s(side), 1.5 * scales, atol=1e-5)
    with pytest.raises(ValueError, match="positive"):
        network.rescale_latents(0.0)


@pytest.mark.parametrize("name", sorted(CODECS))
def test_widened_latents_leave_the_reconstruction_and_the_old_rates_unchanged(name, natural_image):
    torch.manual_seed(4)
    narrow = CODECS[name][1]({"N": 8, "M": 12}).eval()
    wide = CODECS[name][1]({"N": 8, "M": 20}).eval()
    with torch.no_grad():
        narrow.entropy_bottleneck.quantiles[5, 0] = torch.tensor([-0.3, 0.1, 0.5])  # the narrowest density
    assert widen_latents(wide, narrow.state_dict()) == 12
    x = torch.from_numpy(natural_image[:64, :64].astype(np.float32) / 255).permute(2, 0, 1)[None]
    with torch.no_grad():
        before, after = narrow(x), wide(x)
    assert torch.equal(wide.g_a(x)[:, :12], narrow.g_a(x))
    assert torch.allclose(after["x_hat"], before["x_hat"], atol=1e-6)
    assert torch.allclose(after["likelihoods"]["y"][:, :12], before["likelihoods"]["y"], atol=1e-6)
    if "z" in before["likelihoods"]:  # side information unchanged, the new channels get the smallest scale
        assert torch.allclose(after["likelihoods"]["z"], before["likelihoods"]["z"], atol=1e-6)
        assert torch.equal(wide.h_s[-2].bias[12:], torch.full((8,), 0.11))
    else:  # the new channels' density is a copy of the narrowest old one
        assert torch.equal(wide.entropy_bottleneck.quantiles[12:], narrow.entropy_bottleneck.quantiles[5].expand(8, 1, 3))
    assert 0 < wide.g_a[-1].weight[12:].abs().max() < narrow.g_a[-1].weight.abs().max()
    with pytest.raises(ValueError, match="same N"):
        widen_latents(CODECS[name][1]({"N": 10, "M": 20}), narrow.state_dict())


def test_training_widens_the_latents_of_initial_weights(photo_folder, tmp_path):
    from codecbench.errors import TrainingError
    from codecbench.learned.training import export_weights, train

    train(_train_config(photo_folder, tmp_path / "h.ckpt", steps=0), log=lambda line: None)
    export_weights(tmp_path / "h.ckpt", tmp_path / "h.pt", log=lambda line: None)
    lines: list[str] = []
    wide = train(_train_config(photo_folder, tmp_path / "w.ckpt", steps=1, hparams={"M": 16}, init_weights=tmp_path / "h.pt"),
                 log=lines.append)
    assert wide["hparams"] == {"N": 8, "M": 16} and wide["state_dict"]["g_s.0.weight"].shape[0] == 16
    assert any("widened from 12 to 16" in line for line in lines)
    with pytest.raises(TrainingError, match="cannot start hyper-parameters"):
        train(_train_config(photo_folder, tmp_path / "n.ckpt", steps=0, hparams={"N": 16}, init_weights=tmp_path / "h.pt"),
              log=lambda line: None)


def test_codecs_listing_shows_the_model_size():
    from codecbench.registry import describe_all

    info = {i.name: i for i in describe_all()}["bmshj2018_hyperprior"]
    assert info.available and info.parameters > 1e6
    assert info.weights_bytes == sum(p.stat().st_size for p in Bmshj2018Hyperprior().weights_files())


def test_a_network_first_loaded_by_encode_still_trains(tiny_codec, natural_image):
    codec = type(tiny_codec)(weights=str(tiny_codec.weights_path))
    codec.encode(natural_image[:64, :64], 1)  # loads the network inside the codec's inference mode
    out = codec.network(codec.image_to_tensor(natural_image[:64, :64]))
    out["x_hat"].mean().backward()  # inference tensors would refuse autograd
    assert codec.network.g_a[0].weight.grad is not None


@pytest.mark.slow
def test_compiled_training_matches_eager_training_and_logs_the_loss_parts(photo_folder, tmp_path):
    from codecbench.learned.training import train

    eager_lines: list[str] = []
    eager = train(_train_config(photo_folder, tmp_path / "e.ckpt", steps=2), log=eager_lines.append)
    compiled = train(_train_config(photo_folder, tmp_path / "c.ckpt", steps=2, compile=True), log=lambda line: None)
    assert set(compiled["state_dict"]) == set(eager["state_dict"])  # saved from the uncompiled network
    for (_, eager_loss, _), (_, compiled_loss, _) in zip(eager["history"], compiled["history"], strict=True):
        assert compiled_loss == pytest.approx(eager_loss, rel=1e-4)
    assert any(" bpp " in line and " psnr " in line and " aux " in line for line in eager_lines)


@pytest.mark.parametrize("name", sorted(CODECS))
def test_mixed_precision_keeps_the_rate_terms_in_float32(name, natural_image):
    """Under bf16 autocast the convolutions lose precision but the likelihoods and the auxiliary loss must not:
    each likelihood is a difference of nearly equal cumulatives (bf16 alone: rate off by ~4 %, aux by 20×)."""
    from codecbench_codecs.balle.recipe import BalleRecipe

    network = CODECS[name][0]().model(1)  # shipped quality-1 weights: the smallest likelihoods
    network.train()
    batch = torch.from_numpy(natural_image[:128, :128].astype(np.float32) / 255).permute(2, 0, 1)[None]
    results = {}
    for mixed in (False, True):
        generator = torch.Generator().manual_seed(0)
        network.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed):
            loss, parts = BalleRecipe().training_loss(network, batch, generator, **{"lambda": 0.0018, "latent_scale": 1.0})
        loss.backward()
        gradient = torch.cat([p.grad.flatten() for p in network.parameters() if p.grad is not None])
        results[mixed] = (parts, gradient)
    (full, full_gradient), (mixed, mixed_gradient) = results[False], results[True]
    assert mixed["bpp"] == pytest.approx(full["bpp"], rel=5e-3)
    assert mixed["aux"] == pytest.approx(full["aux"], rel=1e-3)
    assert mixed["psnr"] == pytest.approx(full["psnr"], abs=0.1)
    assert torch.nn.functional.cosine_similarity(mixed_gradient, full_gradient, dim=0) > 0.99


@pytest.mark.slow
def test_bf16_training_follows_fp32_training_and_keeps_float32_state(photo_folder, tmp_path, natural_image):
    from codecbench.errors import TrainingError
    from codecbench.learned.training import export_weights, train

    full = train(_train_config(photo_folder, tmp_path / "f.ckpt", steps=3), log=lambda line: None)
    lines: list[str] = []
    mixed = train(_train_config(photo_folder, tmp_path / "m.ckpt", steps=3, precision="bf16"), log=lines.append)
    for (_, full_loss, _), (_, mixed_loss, _) in zip(full["history"], mixed["history"], strict=True):
        assert mixed_loss == pytest.approx(full_loss, rel=0.02)
    assert all(value.dtype == torch.float32 for value in mixed["state_dict"].values() if value.is_floating_point())
    assert any("precision bf16" in line for line in lines)
    train(_train_config(photo_folder, tmp_path / "m.ckpt", steps=4, precision="bf16"), resume=True, log=lambda line: None)
    export_weights(tmp_path / "m.ckpt", tmp_path / "m.pt", log=lambda line: None)
    codec = Bmshj2018Hyperprior(weights=str(tmp_path / "m.pt"))
    assert codec.decode(codec.encode(natural_image[:64, :64], 1)).shape == (64, 64, 3)
    with pytest.raises(TrainingError, match="precision 'fp16'"):
        train(_train_config(photo_folder, tmp_path / "x.ckpt", precision="fp16"), log=lambda line: None)
