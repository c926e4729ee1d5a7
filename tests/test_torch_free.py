"""The light install: PSNR, SSIM and MS-SSIM, availability checks and a classical sweep never load torch.

CI's light job (a fresh venv without extras, `.ci/run`) proves the same without torch installed;
these tests run in the full environment and look at what a fresh interpreter imported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # fresh interpreters in subprocesses

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_fidelity_metrics_do_not_import_torch():
    out = run_python(
        "import sys\n"
        "import numpy as np\n"
        "from codecbench import metrics\n"
        "rng = np.random.default_rng(0)\n"
        "a = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)\n"
        "b = np.clip(a.astype(int) + rng.integers(-9, 10, a.shape), 0, 255).astype(np.uint8)\n"
        "values = metrics.compute(a, b, ['psnr_rgb', 'psnr_y', 'ssim', 'ms_ssim', 'ms_ssim_db'])\n"
        "print(sorted(name for name in sys.modules if name == 'torch' or name.startswith('torch.')))\n"
        "print(all(np.isfinite(list(values.values()))), 0.5 < values['ssim'] < 1)\n"
    )
    assert out.splitlines() == ["[]", "True True"]


def test_listing_the_codecs_does_not_import_torch():
    out = run_python(
        "import sys\n"
        "from codecbench import registry\n"
        "print(registry.discover()['conv_lstm'].codec_class().availability().ok, 'torch' in sys.modules)\n"
    )
    assert out.strip() == "True False"


def test_without_the_extras_the_pip_line_is_named():
    """torch, torchvision, lpips and constriction made unimportable, as in an install without extras."""
    out = run_python(
        "import sys\n"
        "for name in ('torch', 'torchvision', 'lpips', 'constriction'):\n"
        "    sys.modules[name] = None\n"
        "from codecbench import metrics, registry\n"
        "print(metrics.METRICS['lpips'].availability().reason)\n"
        "print(registry.discover()['conv_lstm'].codec_class().availability().reason)\n"
    )
    lpips_reason, learned_reason = out.splitlines()
    assert lpips_reason == 'torch, torchvision, lpips not installed; pip install "codecbench[lpips]"'
    assert learned_reason == 'torch, constriction not installed; pip install "codecbench[learned]"'


@pytest.mark.slow
def test_classical_sweep_report_and_check_do_not_import_torch(tmp_path):
    """`run` (in one process; workers call the same thread set-up), `report`, `baseline` and `check`, each in a
    fresh interpreter that then says which modules it loaded."""
    results = tmp_path / "results"
    commands = [
        ["run", "--codecs", "jpeg", "--dataset", "sample", "--metrics", "psnr_rgb,ssim,ms_ssim",
         "--settings", "jpeg=30,70", "--output", str(results), "--in-process", "--quiet"],
        ["report", str(results), "-o", str(tmp_path / "report")],
        ["baseline", str(results), "-o", str(tmp_path / "baseline.json")],
        ["check", str(results), "--baseline", str(tmp_path / "baseline.json")],
    ]
    for command in commands:
        out = run_python(
            "import os, runpy, sys\n"
            f"sys.argv = ['codecbench', *{command!r}]\n"
            "try:\n"
            "    runpy.run_module('codecbench', run_name='__main__')\n"
            "except SystemExit as exit:\n"
            "    assert not exit.code, exit.code\n"
            "loaded = [name for name in ('torch', 'codecbench.metrics.fidelity') if name in sys.modules]\n"
            "os.write(1, ('loaded ' + ' '.join(loaded) + '\\n').encode())\n"
        )
        loaded = out.splitlines()[-1].split()[1:]
        assert loaded == (["codecbench.metrics.fidelity"] if command[0] == "run" else []), command[0]
