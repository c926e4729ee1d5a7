"""The Python API: what a notebook needs, without the command line.

``import codecbench`` stays light: these functions are imported on first use
(see ``codecbench.__init__``), and none of them imports torch unless a learned
codec or LPIPS is asked for.

- :func:`run` — a sweep, as ``codecbench run``; returns its rows as a DataFrame.
- :func:`load` — the current rows of a results directory as a DataFrame.
- :func:`bd_rate` / :func:`bd_quality` — Bjøntegaard deltas of two curves.
- :func:`report` — the HTML report and tables, as ``codecbench report``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from codecbench.analysis.bjontegaard import bd_quality, bd_rate
from codecbench.errors import CodecbenchError, UsageError
from codecbench.render.report import Report, build_report

if TYPE_CHECKING:
    import pandas

__all__ = ["bd_quality", "bd_rate", "load", "report", "run"]


def run(codecs: Sequence[str], dataset: str, *, results: str | Path = "results",
        settings: Mapping[str, Sequence[float]] | None = None, metrics: Sequence[str] | None = None,
        target_bpp: Sequence[float] = (), codec_options: Mapping[str, Mapping[str, Any]] | None = None,
        jobs: int = 1, data_dir: str | Path | None = None, offline: bool = False, timing_repeats: int = 0,
        force: bool = False, progress: bool = False) -> pandas.DataFrame:
    """Run a sweep exactly as ``codecbench run`` would, and return the rows of its cells.

    ``codecs`` are names, variant specs (``jpeg2000:wavelet=5/3``) or aliases;
    ``dataset`` a registered name, a folder or ``bd:SET``; ``settings`` maps a
    codec to its sweep (default: the codec's own); ``codec_options`` maps a
    codec to its options. The options are checked as the command line checks
    them: a mistake raises :class:`codecbench.errors.UsageError` before any
    work. Cells already stored in ``results`` are not computed again. The rows
    returned are those of this sweep's codecs and datasets (as :func:`load`
    types them), failed cells included (their ``error`` says why).
    """
    from codecbench.cli.run import run as run_command
    from codecbench.store import ResultsStore

    args = ["--codecs", ",".join(codecs), "--dataset", dataset, "--output", str(results), "-j", str(jobs),
            "--timing-repeats", str(timing_repeats)]
    args += [f"--settings={codec}={','.join(map(str, values))}" for codec, values in (settings or {}).items()]
    args += [f"--codec-option={codec}.{key}={value}" for codec, options in (codec_options or {}).items()
             for key, value in options.items()]
    args += ["--metrics", ",".join(metrics)] if metrics else []
    args += ["--target-bpp", ",".join(map(str, target_bpp))] if target_bpp else []
    args += ["--data-dir", str(data_dir)] if data_dir else []
    args += [flag for flag, on in (("--offline", offline), ("--force", force), ("--quiet", not progress)) if on]
    try:
        run_command.main(args, prog_name="codecbench run", standalone_mode=False)
    except SystemExit as exit_:  # 0: done; 1: done, some cells failed (their rows say why)
        if exit_.code not in (0, 1, None):
            raise
    except click.ClickException as exc:  # usage errors and CodecbenchErrors, as the command line reports them
        error = UsageError if exc.exit_code == 2 else CodecbenchError
        raise error(exc.format_message()) from None
    manifest = ResultsStore(results).manifests()[-1]
    frame = load(results)
    return frame[frame["codec"].isin(manifest["codecs"]) & frame["dataset"].isin(manifest["datasets"])
                 ].reset_index(drop=True)


def report(results_dir: str | Path, output_dir: str | Path | None = None, **options: Any) -> Report:
    """The HTML report and tables of a results directory, as ``codecbench report`` writes them.

    ``options`` are :func:`codecbench.render.report.build_report`'s (``anchor``, ``metrics``, ``targets``,
    ``bpp_range``, ``references``, ``bd_method``, ``figures``). ``figures`` needs matplotlib (the ``figures``
    extra): without it, a :class:`codecbench.errors.UsageError` says how to install it, before anything is written.
    """
    if options.get("figures"):
        require_figures()
    return build_report(results_dir, output_dir, **options)


def require_figures() -> None:
    """A usage error naming the ``figures`` extra unless matplotlib can be imported."""
    from codecbench.plugins import require_module

    require_module("matplotlib", 'pip install "codecbench[figures]"', "--figures (static SVG/PDF/PNG figures)")


def load(results_dir: str | Path) -> pandas.DataFrame:
    """The current row of every cell of a results directory (a recomputed cell's last row), as a DataFrame.

    Columns: ``codecbench.store.COLUMNS`` first (identity, ``bytes``, ``bpp``,
    one column per metric, times, ``error``, ``extra``, run id), then any other
    stored field. ``width``, ``height`` and ``bytes`` are nullable integers
    (``Int64``); the other numbers are float64 with NaN where missing, and a
    lossless PSNR is +inf; ``extra`` holds dicts (or None). StoreError when the
    directory holds no results.
    """
    from codecbench.store import COLUMNS, open_existing

    frame = open_existing(results_dir).dataframe()
    text = {"dataset", "image", "image_sha256", "codec", "codec_version", "error", "extra", "run_id", "finished_at"}
    integers = ["width", "height", "bytes"]
    floats = [c for c in COLUMNS if c not in text and c not in integers]
    return frame.astype({**{c: "Int64" for c in integers}, **{c: "float64" for c in floats}})
