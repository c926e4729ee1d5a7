"""``codecbench baseline`` and ``codecbench check``: RD-curve regression checks for CI.

``check`` exits 0 when nothing regressed, 1 on a regression and 2 on unusable
input (missing or unreadable results or baseline, nothing in common, changed
dataset checksums); the Markdown summary goes to stdout. See
``codecbench.regression`` for what is compared and ``docs/regression.md``.
"""

from __future__ import annotations

import math
import sys

import click

from codecbench.cli.run import parse_names
from codecbench.regression import (
    DEFAULT_MAX_BD_RATE, DEFAULT_MAX_BPP_DRIFT, DEFAULT_MAX_DRIFT, DEFAULT_METRICS, CheckResult, RegressionInputError,
    Tolerances, compare, format_markdown, load_baseline, make_baseline, to_junit, write_baseline,
)
from codecbench.files import atomic_write_text
from codecbench.store import StoreError, open_existing

#: Exit code for input the check cannot use.
UNUSABLE = 2


def _parse_drifts(pairs: tuple[str, ...]) -> dict[str, float]:
    """The default per-metric drift tolerances, overridden by ``METRIC=VALUE`` pairs."""
    drifts = dict(DEFAULT_MAX_DRIFT)
    for pair in pairs:
        metric, sep, value = pair.partition("=")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not sep or not metric.strip() or not number >= 0:
            raise click.BadParameter(f"{pair!r} must look like METRIC=VALUE with VALUE ≥ 0, e.g. psnr_rgb=0.05",
                                     param_hint="--max-drift")
        drifts[metric.strip()] = number
    return drifts


def _drift_defaults() -> str:
    return ", ".join(f"{metric}={value:g}" for metric, value in DEFAULT_MAX_DRIFT.items())


@click.command()
@click.argument("results_dir", type=click.Path(file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Baseline file to write, e.g. results/baselines/sample.json.")
@click.option("--dataset", "dataset_list", default=None, help="Only these datasets (comma-separated).")
@click.option("--codecs", "codec_list", default=None, help="Only these codecs (comma-separated).")
def baseline(results_dir, output, dataset_list, codec_list):
    """Freeze the RD curves of RESULTS_DIR into a small, diff-friendly baseline JSON for `codecbench check`."""
    notes: list[str] = []
    try:
        store = open_existing(results_dir)
        frozen = make_baseline(store.rows(), store.manifests(), datasets=parse_names(dataset_list) or None,
                               codecs=parse_names(codec_list) or None, notes=notes)
    except StoreError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(UNUSABLE)
    except RegressionInputError as exc:
        click.echo(f"error: {results_dir}: {exc}", err=True)
        sys.exit(UNUSABLE)
    for note in notes:
        click.echo(f"note: {note}", err=True)
    write_baseline(frozen, output)
    summary = ", ".join(f"{name}: {', '.join(sorted(part['codecs']))}" for name, part in sorted(frozen["datasets"].items()))
    click.echo(f"wrote {output} ({summary})", err=True)


@click.command()
@click.argument("results_dir", type=click.Path(file_okay=False))
@click.option("--baseline", "baseline_path", required=True, type=click.Path(dir_okay=False),
              help="Baseline JSON written by `codecbench baseline`.")
@click.option("--max-bd-rate", default=DEFAULT_MAX_BD_RATE, show_default=True, type=click.FloatRange(min=0),
              metavar="PERCENT", help="Largest acceptable BD-rate of current vs baseline, percent.")
@click.option("--max-bpp-drift", default=DEFAULT_MAX_BPP_DRIFT, show_default=True, type=click.FloatRange(min=0),
              metavar="PERCENT", help="Largest acceptable increase of a setting's mean bpp, percent of the baseline's.")
@click.option("--max-drift", "drift_pairs", multiple=True, metavar="METRIC=VALUE",
              help=f"Largest acceptable change of a setting's mean metric, in the metric's unit (dB for PSNR); "
                   f"repeatable. Defaults: {_drift_defaults()}.")
@click.option("--metrics", "metric_list", default=None,
              help=f"Metrics to check (BD-rate and drift), comma-separated. Default: those of "
                   f"{','.join(DEFAULT_METRICS)} that the baseline holds.")
@click.option("--dataset", "dataset_list", default=None, help="Check only these datasets of the baseline.")
@click.option("--codecs", "codec_list", default=None, help="Check only these codecs of the baseline.")
@click.option("--junit", "junit_path", default=None, type=click.Path(dir_okay=False),
              help="Also write JUnit XML here (one testcase per codec × check).")
def check(results_dir, baseline_path, max_bd_rate, max_bpp_drift, drift_pairs, metric_list, dataset_list,
          codec_list, junit_path):
    """Compare RESULTS_DIR against a baseline; exit 0 pass, 1 regression, 2 unusable input.

    Prints a Markdown summary on stdout (for a pull-request comment or $GITHUB_STEP_SUMMARY).
    """
    tolerances = Tolerances(max_bd_rate=max_bd_rate, max_bpp_drift=max_bpp_drift,
                            max_drift=_parse_drifts(drift_pairs))
    metrics = parse_names(metric_list) or None
    try:
        frozen = load_baseline(baseline_path)
        store = open_existing(results_dir)
        result = compare(frozen, store.rows(), store.manifests(), tolerances=tolerances, metrics=metrics,
                         datasets=parse_names(dataset_list) or None, codecs=parse_names(codec_list) or None)
    except (RegressionInputError, StoreError) as exc:
        result = CheckResult(tolerances=tolerances, metrics=(), unusable=[str(exc)])
    result.baseline_label, result.results_label = str(baseline_path), str(results_dir)
    if junit_path:
        atomic_write_text(junit_path, to_junit(result))
    click.echo(format_markdown(result), nl=False)
    for reason in result.unusable:
        click.echo(f"error: {reason}", err=True)
    sys.exit(result.exit_code)
