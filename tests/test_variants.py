"""Codec variants: specs, aliases, labels, and their place in a cell's identity."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from codecbench.cli.run import run as run_cli
from codecbench.errors import CodecError, UsageError
from codecbench.registry import create, discover, resolve_variants
from codecbench.variants import load_aliases, parse_spec, split_codec_list, variant_label


def classes() -> dict:
    return {name: registered.codec_class for name, registered in discover().items()}


@pytest.mark.parametrize("text, specs", [
    ("jpeg,webp", ["jpeg", "webp"]),
    ("jpeg, jpeg2000:colorspace=yuv,wavelet=5/3 ,webp", ["jpeg", "jpeg2000:colorspace=yuv,wavelet=5/3", "webp"]),
    ("vvc:preset=faster,bpg,jpeg2000-compressai", ["vvc:preset=faster", "bpg", "jpeg2000-compressai"]),
    ("jpeg,,webp,", ["jpeg", "webp"]),
])
def test_codec_lists_split_at_commas_that_start_a_codec(text, specs):
    assert split_codec_list(text) == specs


def test_specs_parse_and_bad_ones_name_the_problem():
    assert parse_spec("jpeg2000:wavelet=5/3, colorspace=yuv") == ("jpeg2000", {"wavelet": "5/3", "colorspace": "yuv"})
    assert parse_spec("jpeg") == ("jpeg", {})
    for bad, reason in (("jpeg2000:wavelet", "must look like KEY=VALUE"), (":a=1", "must look like NAME"),
                        ("vvc:preset=fast,preset=slow", "given twice"), ("vvc:preset=", "KEY=VALUE")):
        with pytest.raises(UsageError, match=reason):
            parse_spec(bad)


def test_labels_hold_identity_options_sorted_and_never_paths():
    bpg, j2k, vvc = (discover()[name].codec_class for name in ("bpg", "jpeg2000", "vvc"))
    assert variant_label("bpg", bpg, {"encoder": "/opt/bpgenc", "timeout": "5"}) == "bpg"
    assert variant_label("jpeg2000", j2k, {"wavelet": "5/3", "colorspace": "yuv"}) == \
        "jpeg2000:colorspace=yuv,wavelet=5/3"
    assert variant_label("vvc", vvc, {"preset": "faster", "encoder": "x", "decoder": "y"}) == "vvc:preset=faster"
    conv_lstm = discover()["conv_lstm"].codec_class
    assert variant_label("conv_lstm", conv_lstm, {"weights": "my.pt", "device": "cuda"}) == "conv_lstm"


def test_codec_options_join_the_label_and_may_not_contradict_the_spec():
    aliases = load_aliases()
    variants = resolve_variants(["jpeg2000", "jpeg2000-compressai"], aliases, {"jpeg2000": {"colorspace": "yuv"}})
    assert list(variants) == ["jpeg2000:colorspace=yuv", "jpeg2000:colorspace=yuv,wavelet=5/3"]
    assert variants["jpeg2000:colorspace=yuv,wavelet=5/3"].spec == "jpeg2000-compressai"
    with pytest.raises(UsageError, match="contradicts wavelet=5/3"):
        resolve_variants(["jpeg2000-compressai"], aliases, {"jpeg2000": {"wavelet": "9/7"}})
    with pytest.raises(UsageError, match="names jpeg2000:colorspace=yuv,wavelet=5/3 twice"):
        resolve_variants(["jpeg2000-compressai", "jpeg2000:wavelet=5/3,colorspace=yuv"], aliases, {})
    with pytest.raises(CodecError, match="unknown codec 'jpg'"):
        resolve_variants(["jpg:quality=3"], aliases, {})


def test_a_variant_codes_other_bytes_and_bad_values_are_refused(natural_image):
    image = np.ascontiguousarray(natural_image[:64, :96])
    plain, anchor = create("jpeg2000"), create("jpeg2000:colorspace=yuv,wavelet=5/3")
    assert (anchor.wavelet, anchor.colorspace) == ("5/3", "yuv")
    assert plain.encode(image, 20) != anchor.encode(image, 20)
    with pytest.raises(CodecError, match="option wavelet must be one of 9/7, 5/3"):
        create("jpeg2000:wavelet=haar")


def test_alias_files_add_names_and_cannot_redefine_builtin_ones(tmp_path):
    assert load_aliases()["jpeg2000-compressai"] == "jpeg2000:colorspace=yuv,wavelet=5/3"
    mine = tmp_path / "variants.yaml"
    mine.write_text("j2k-53: 'jpeg2000:wavelet=5/3'\n")
    assert load_aliases(mine)["j2k-53"] == "jpeg2000:wavelet=5/3"
    mine.write_text("vvc-faster: 'vvc:preset=fast'\n")
    with pytest.raises(UsageError, match="vvc-faster already defined by codecbench"):
        load_aliases(mine)
    for text, reason in (("- a\n- b\n", "mapping of alias to spec"), ("'a:b': jpeg\n", "may not contain"),
                         ("x: 'jpeg2000:wavelet'\n", "KEY=VALUE")):
        mine.write_text(text)
        with pytest.raises(UsageError, match=reason):
            load_aliases(mine)


@pytest.fixture
def folder(tmp_path, natural_image) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.ascontiguousarray(natural_image[100:164, 200:296])).save(images / "a.png")
    return images


def run(folder: Path, results: Path, *extra: str):
    result = CliRunner().invoke(run_cli, ["--codecs", "jpeg2000", "--dataset", str(folder), "--metrics", "psnr_rgb",
                                          "--settings", "jpeg2000=20", "--output", str(results), "--quiet",
                                          "--in-process", *extra])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in (results / "cells.jsonl").read_text().splitlines()]


def test_a_resumed_run_with_a_byte_changing_option_computes_new_cells(folder, tmp_path):
    """The defect of issue 13: --codec-option values were not in the cell key, so old cells were reused."""
    results = tmp_path / "results"
    first = run(folder, results)
    second = run(folder, results, "--codec-option", "jpeg2000.wavelet=5/3")
    assert [row["codec"] for row in second] == ["jpeg2000", "jpeg2000:wavelet=5/3"]
    assert second[1]["bytes"] != first[0]["bytes"] and second[1]["psnr_rgb"] != first[0]["psnr_rgb"]
    assert len(run(folder, results, "--codec-option", "jpeg2000.wavelet=5/3")) == 2, "a rerun reuses its own cells"


def test_settings_pick_a_variant_by_alias_before_its_codec_name(folder, tmp_path):
    rows = run(folder, tmp_path / "results", "--codecs", "jpeg2000,jpeg2000-compressai",
               "--settings", "jpeg2000-compressai=40")
    assert [(row["codec"], row["setting"]) for row in rows] == [
        ("jpeg2000", 20.0), ("jpeg2000:colorspace=yuv,wavelet=5/3", 40.0)]
