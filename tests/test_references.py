"""Published reference curves: the carried CompressAI files, names, the report's ``--reference compressai:NAME``,
and the anchors that must reproduce them (bpg and the JPEG 2000 variant on Kodak).

The reproduction tests measure the curve here (per-image PSNR of the decoded RGB image, mean over the 24
Kodak images per setting, as CompressAI averages) and compare with the ``bjontegaard`` package, so neither
the curve nor the BD code under test is involved. They need ``CODECBENCH_SHARED`` (Kodak), and bpg also its
programs (``CODECBENCH_TOOLS`` or ``CODECBENCH_BPGENC``/``CODECBENCH_BPGDEC``); elsewhere they skip.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import bjontegaard
import numpy as np
import pytest
from click.testing import CliRunner

from codecbench.analysis.compressai import named_reference, published_references, reference_folder
from codecbench.cli.references import references as references_cli
from codecbench.data.images import load_rgb
from codecbench.errors import UsageError
from codecbench.registry import discover
from codecbench.render.report import build_report
from codecbench.store import ResultsStore

CARRIED = Path(__file__).resolve().parents[1] / "codecbench" / "data" / "references" / "compressai"


def shared_reference(shared_dir: Path, name: str) -> dict:
    path = shared_dir / "references" / "compressai" / "kodak" / name
    if not path.is_file():
        pytest.skip(f"published curve {path} not found")
    return json.loads(path.read_text())["results"]


def kodak_curve(kodak_dir: Path, codec, settings) -> tuple[np.ndarray, np.ndarray]:
    """Mean bpp and mean per-image PSNR-RGB of ``codec`` over the 24 Kodak images, per setting."""
    bpp, psnr = np.zeros(len(settings)), np.zeros(len(settings))
    paths = sorted(kodak_dir.glob("kodim*.png"))
    assert len(paths) == 24
    for path in paths:
        image = load_rgb(path)
        for i, setting in enumerate(settings):
            data, decoded = codec.round_trip(image, setting)
            bpp[i] += 8 * len(data) / (image.shape[0] * image.shape[1]) / len(paths)
            mse = np.mean((image.astype(np.float64) - decoded.astype(np.float64)) ** 2)
            psnr[i] += 10 * np.log10(255.0**2 / mse) / len(paths)
    return bpp, psnr


def available(spec_name: str, **options):
    codec = discover()[spec_name].codec_class(**options)
    status = codec.availability()
    if not status.ok:
        pytest.skip(f"codec {spec_name} unavailable here: {status.reason}")
    return codec


# ----------------------------------------------------------------------------- the carried files


def test_carried_curves_are_compressais_files_unchanged_with_licence(shared_dir):
    source = shared_dir / "references" / "compressai"
    if not source.is_dir():
        pytest.skip(f"{source} not found")
    assert "InterDigital" in (CARRIED / "LICENSE").read_text()
    assert "BSD 3-Clause Clear" in (CARRIED / "README.md").read_text()
    for folder in ("kodak", "clic2020-professional", "clic2020-mobile"):
        published = sorted(p.name for p in (source / folder).glob("*.json"))
        assert sorted(p.name for p in (CARRIED / folder).glob("*.json")) == published
        for name in published:
            assert (CARRIED / folder / name).read_bytes() == (source / folder / name).read_bytes()


def test_names_cover_the_anchors_and_learned_models_of_every_dataset():
    every = published_references()
    assert set(every) == {"kodak", "clic2020-professional", "clic2020-mobile"}
    for names in every.values():
        for name in ("vtm", "hm", "bpg_444_x265_ycbcr", "av1", "jpeg", "webp", "jpeg2000",
                     "bmshj2018-hyperprior_mse", "bmshj2018-hyperprior_mse_cuda", "cheng2020-attn_ms-ssim"):
            assert f"compressai:{name}" in names
    assert every["kodak"]["compressai:bmshj2018-hyperprior_mse"].name == "compressai-bmshj2018-hyperprior_mse_cpu.json"
    assert "compressai:paper-mbt2018" in every["kodak"]
    assert reference_folder("clic2020-professional-valid") == "clic2020-professional"
    assert reference_folder("kodak") == "kodak" and reference_folder("sample") is None


def test_a_name_picks_the_file_of_the_dataset():
    kodak, clic = named_reference("compressai:vtm", "kodak"), named_reference("compressai:vtm", "clic2020-mobile-valid")
    vtm = json.loads((CARRIED / "kodak" / "vtm.json").read_text())["results"]
    assert kodak.label == "compressai:vtm (published)" and kodak.bpp.tolist() == sorted(vtm["bpp"])
    assert clic.bpp.tolist() != kodak.bpp.tolist()
    assert named_reference("compressai:vtm", "sample") is None
    with pytest.raises(UsageError, match="no published curve named 'compressai:vtn'"):
        named_reference("compressai:vtn", "kodak")


def test_references_command_lists_names_per_dataset():
    result = CliRunner().invoke(references_cli, ["--dataset", "kodak"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("kodak:\n") and "compressai:vtm " in result.output
    assert "clic2020-mobile:" not in result.output and "BSD 3-Clause Clear" in result.output
    assert CliRunner().invoke(references_cli, ["--dataset", "sample"]).exit_code == 2


def store_beside_vtm(root: Path, datasets=("kodak",)) -> ResultsStore:
    """Three images whose mean curve is the published Kodak VTM curve with 10 % fewer bits."""
    vtm = json.loads((CARRIED / "kodak" / "vtm.json").read_text())["results"]
    store, rows = ResultsStore(root), []
    for dataset in datasets:
        for image in range(3):
            for setting, (bpp, psnr) in enumerate(zip(vtm["bpp"], vtm["psnr-rgb"])):
                rows.append({"dataset": dataset, "image": f"im{image}.png", "image_sha256": f"{dataset}{image:062d}",
                             "width": 64, "height": 64, "codec": "ours", "codec_version": "1", "setting": setting,
                             "target_bpp": None, "bytes": 1, "bpp": 0.9 * bpp, "psnr_rgb": psnr, "encode_s": 0.1,
                             "decode_s": 0.1, "error": None})
    store.append(rows)
    return store


def test_report_by_name_compares_each_datasets_curve_as_published(tmp_path):
    store = store_beside_vtm(tmp_path / "results", datasets=("kodak", "sample"))
    report = build_report(store.root, tmp_path / "out", anchor="ours", metrics=("psnr_rgb",),
                          references=["compressai:vtm"])
    with open(report.folder / "bd_rate.csv", newline="") as f:
        published = [row for row in csv.DictReader(f) if row["codec"] == "compressai:vtm (published)"]
    assert [(row["dataset"], row["source"], row["metric"]) for row in published] == [
        ("kodak", "reference", "psnr_rgb")]
    assert float(published[0]["value"]) == pytest.approx(100 / 0.9 - 100, abs=1e-6)  # 1/0.9 the bits
    assert any("reference compressai:vtm: no published curve for dataset sample" in n
               for n in report.datasets["sample"].notes)
    assert "compressai:vtm (published)" in report.html_path.read_text()


def test_report_refuses_a_name_no_dataset_has(tmp_path):
    store = store_beside_vtm(tmp_path / "results", datasets=("sample",))
    with pytest.raises(UsageError, match="--reference compressai:vtm: no published curve for dataset"):
        build_report(store.root, tmp_path / "out", anchor="ours", metrics=("psnr_rgb",), references=["compressai:vtm"])


# ----------------------------------------------------------------------------- reproducing the anchors


@pytest.mark.slow
def test_bpg_reproduces_compressais_bpg_444_curve_on_kodak(shared_dir, kodak_dir):
    """24 images × 8 QPs; |BD-PSNR| ≤ 0.01 dB (measured: below 1e-6 dB)."""
    codec = available("bpg")
    published = shared_reference(shared_dir, "bpg_444_x265_ycbcr.json")
    qps = (47, 42, 37, 32, 27, 22, 17, 12)
    bpp, psnr = kodak_curve(kodak_dir, codec, qps)
    delta = bjontegaard.bd_psnr(published["bpp"], published["psnr-rgb"], bpp, psnr, method="pchip",
                                require_matching_points=False)
    assert abs(delta) <= 0.01, f"BD-PSNR {delta:.4f} dB; bpp {bpp.round(4)}; psnr {psnr.round(3)}"


@pytest.mark.slow
def test_jpeg2000_anchor_variant_reproduces_compressais_jpeg2000_curve_on_kodak(shared_dir, kodak_dir):
    """The alias jpeg2000-compressai at ratio 2·q for 8 of CompressAI's q; |BD-PSNR| ≤ 0.1 dB."""
    from codecbench.registry import create
    from codecbench.variants import load_aliases

    codec = create(load_aliases()["jpeg2000-compressai"])
    published = shared_reference(shared_dir, "jpeg2000.json")
    ratios = tuple(2 * q for q in (5, 10, 15, 20, 30, 45, 60, 95))
    bpp, psnr = kodak_curve(kodak_dir, codec, ratios)
    delta = bjontegaard.bd_psnr(published["bpp"], published["psnr-rgb"], bpp, psnr, method="pchip",
                                require_matching_points=False)
    assert abs(delta) <= 0.1, f"BD-PSNR {delta:.4f} dB; bpp {bpp.round(4)}; psnr {psnr.round(3)}"
