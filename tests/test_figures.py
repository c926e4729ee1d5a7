"""Static paper figures (codecbench.render.figures): valid SVG, PDF and PNG files of the right size."""

import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from codecbench.analysis.bjontegaard import compare
from codecbench.analysis.curves import summarise
from codecbench.errors import UsageError
from codecbench.render.figures import FIGURE_SIZE_IN, write_figures
from codecbench.render.html import curve_colors
from test_report import synthetic_store

pytestmark = pytest.mark.slow  # matplotlib renders every figure


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("figures")
    results = summarise(synthetic_store(root / "results", n_images=4, crops=0).rows())["kodak"]
    comparisons = compare(results, "jpeg", ["psnr_rgb"], kind="rate")
    files = write_figures(root, results, [], ["psnr_rgb", "ms_ssim_db"], comparisons,
                          curve_colors(sorted(results.codecs)), ["svg", "pdf", "png"])
    return {path.name: path for path in files}


def test_one_file_per_metric_and_format_plus_the_speed_plot(written):
    assert sorted(written) == sorted(f"fig_kodak_{what}.{fmt}" for what in ("psnr_rgb", "ms_ssim_db", "speed")
                                     for fmt in ("svg", "pdf", "png"))


def test_svg_is_xml_with_the_labels_as_text(written):
    root = ET.parse(written["fig_kodak_psnr_rgb.svg"]).getroot()
    assert root.tag.endswith("svg")
    texts = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
    assert "bpp" in texts and "PSNR-RGB (dB)" in texts


def test_pdf_embeds_truetype_fonts(written):
    data = written["fig_kodak_speed.pdf"].read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert b"/FontFile2" in data  # TrueType (Type 42) embedded, as publishers ask; Type 3 would have none


def test_png_is_one_column_wide_at_300_dpi(written):
    with Image.open(written["fig_kodak_psnr_rgb.png"]) as image:
        assert image.size == (round(FIGURE_SIZE_IN[0] * 300), round(FIGURE_SIZE_IN[1] * 300))


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(UsageError, match="tiff"):
        write_figures(tmp_path, summarise([]).get("x"), [], [], [], {}, ["tiff"])


def test_report_command_writes_the_figures(tmp_path):
    from click.testing import CliRunner

    from codecbench.cli.report import report

    store = synthetic_store(tmp_path / "results", n_images=3, crops=0)
    result = CliRunner().invoke(report, [str(store.root), "-o", str(tmp_path / "out"), "--figures", "pdf,png"])
    assert result.exit_code == 0, result.output
    assert {p.name for p in (tmp_path / "out").glob("fig_*")} >= {"fig_kodak_psnr_rgb.pdf", "fig_kodak_speed.png"}
    bad = CliRunner().invoke(report, [str(store.root), "-o", str(tmp_path / "bad"), "--figures", "gif"])
    assert bad.exit_code == 2 and "unknown figure format(s) gif" in bad.output
