"""``codecbench check``: compare results against a baseline of RD curves, for CI.

``check`` exits 0 when nothing regressed, 1 on a regression and 2 on unusable
input (missing or unreadable results or baseline, nothing in common, changed
dataset checksums); the Markdown summary goes to stdout. See
``codecbench.regression.check`` for what is compared and ``docs/regression.md``.
"""

from __future__ import annotations

import sys

import click

from codecbench.cli.options import Command, echo_json, json_option, parse_key_values, parse_names
from codecbench.errors import BaselineError, StoreError
from codecbench.files import atomic_write_text
from codecbench.regression.baseline import load_baseline
from codecbench.regression.check import (
    DEFAULT_MAX_BD_RATE,
    DEFAULT_MAX_BPP_DRIFT,
    DEFAULT_MAX_DRIFT,
    DEFAULT_METRICS,
    CheckResult,
    Tolerances,
    compare,
)
from codecbench.render.checks import format_markdown, to_junit
from codecbench.store import open_existing
from codecbench.variants import split_codec_list


def _tolerance(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError("VALUE must be a number ≥ 0")
    return value


def _parse_drifts(pairs: tuple[str, ...]) -> dict[str, float]:
    """The default per-metric drift tolerances, overridden by ``METRIC=VALUE`` pairs (a usage error for unknown metrics)."""
    from codecbench.metrics import METRICS

    given = dict(parse_key_values(pairs, "--max-drift", "psnr_rgb=0.05", _tolerance))
    unknown = [name for name in given if name not in METRICS]
    if unknown:
        raise click.BadParameter(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}",
                                 param_hint="--max-drift")
    return {**DEFAULT_MAX_DRIFT, **given}


def _document(result: CheckResult) -> dict:
    """What ``check --json`` prints: the verdict, the tolerances, every finding and every codec's comparison."""
    from dataclasses import asdict

    codecs = [dict(asdict(c), settings=[dict(asdict(s), verdict=s.verdict, bpp_drift_percent=s.bpp_drift_percent)
                                        for s in c.settings]) for c in result.codecs]
    return {"verdict": {0: "pass", 1: "regression"}.get(result.exit_code, "unusable"), "exit_code": result.exit_code,
            "baseline": result.baseline_label, "results": result.results_label, "metrics": list(result.metrics),
            "tolerances": asdict(result.tolerances), "unusable": result.unusable,
            "findings": [asdict(finding) for finding in result.findings], "codecs": codecs}


EPILOG = ("Exit codes: 0 no regression; 1 a regression; 2 unusable input (bad options, missing or unreadable "
          "results or baseline, nothing in common, changed dataset checksums).")


def _drift_defaults() -> str:
    return ", ".join(f"{metric}={value:g}" for metric, value in DEFAULT_MAX_DRIFT.items())


@click.command(cls=Command, epilog=EPILOG)
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
@json_option
def check(results_dir, baseline_path, max_bd_rate, max_bpp_drift, drift_pairs, metric_list, dataset_list,
          codec_list, junit_path, as_json):
    """Compare RESULTS_DIR against a baseline; exit 0 pass, 1 regression, 2 unusable input.

    Prints a Markdown summary on stdout (for a pull-request comment or $GITHUB_STEP_SUMMARY), or with --json
    the verdict, every finding and every codec's comparison.
    """
    tolerances = Tolerances(max_bd_rate=max_bd_rate, max_bpp_drift=max_bpp_drift,
                            max_drift=_parse_drifts(drift_pairs))
    metrics = parse_names(metric_list) or None
    try:
        frozen = load_baseline(baseline_path)
        store = open_existing(results_dir)
        result = compare(frozen, store.rows(), store.manifests(), tolerances=tolerances, metrics=metrics,
                         datasets=parse_names(dataset_list) or None, codecs=split_codec_list(codec_list or "") or None)
    except (BaselineError, StoreError) as exc:
        result = CheckResult(tolerances=tolerances, metrics=(), unusable=[str(exc)])
    result.baseline_label, result.results_label = str(baseline_path), str(results_dir)
    if junit_path:
        atomic_write_text(junit_path, to_junit(result))
    if as_json:
        echo_json(_document(result))
    else:
        click.echo(format_markdown(result), nl=False)
    for reason in result.unusable:
        click.echo(f"error: {reason}", err=True)
    sys.exit(result.exit_code)
