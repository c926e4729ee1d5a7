"""``codecbench export``: the results table as CSV, JSON and Parquet."""

import math

import pandas as pd
import pytest
from click.testing import CliRunner

from codecbench.cli.export import export
from codecbench.store import ResultsStore


@pytest.fixture
def store(tmp_path):
    store = ResultsStore(tmp_path / "results")
    base = {"dataset": "d", "width": 16, "height": 16, "codec": "jpeg", "codec_version": "1", "target_bpp": None,
            "bytes": 100, "bpp": 3.125, "error": None}
    store.append([dict(base, image="a", image_sha256="sha-a", setting=50.0, psnr_rgb=math.inf, extra={"k": 1}),
                  dict(base, image="b", image_sha256="sha-b", setting=50.0, psnr_rgb=31.25, extra=None)])
    return store


def test_parquet_keeps_types_and_infinities(store, tmp_path):
    pytest.importorskip("pyarrow")
    out = tmp_path / "results.parquet"
    result = CliRunner().invoke(export, [str(store.root), "--format", "parquet", "-o", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert frame["psnr_rgb"].tolist() == [math.inf, 31.25] and frame["bpp"].dtype == float
    assert frame["extra"].tolist() == ['{"k": 1}', ""]


def test_parquet_needs_a_file(store):
    result = CliRunner().invoke(export, [str(store.root), "--format", "parquet"])
    assert result.exit_code == 2 and "name a file" in result.output


def test_csv_has_one_row_per_cell(store, tmp_path):
    out = tmp_path / "results.csv"
    assert CliRunner().invoke(export, [str(store.root), "-o", str(out)]).exit_code == 0
    frame = pd.read_csv(out)
    assert frame["image"].tolist() == ["a", "b"] and frame["psnr_rgb"].tolist() == [math.inf, 31.25]
