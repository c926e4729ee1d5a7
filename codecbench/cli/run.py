"""``codecbench run``: a sweep of codecs × settings over datasets, stored as one row per cell."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from codecbench.cli.options import Command, parse_codec_options, parse_key_values, parse_names, parse_values


@click.command(cls=Command)
@click.option("--codecs", "codec_list", required=True, help="Comma-separated codec names (see `codecbench codecs`).")
@click.option("--dataset", "dataset_list", required=True,
              help="Registered dataset name(s), a folder of images, or bd:SET; comma-separated.")
@click.option("--settings", "settings_opts", multiple=True, metavar="CODEC=VALUES",
              help="Override a codec's sweep: jpeg=10,20,30 or jpeg=10:90:10 (inclusive). Repeatable.")
@click.option("--metrics", "metric_list", default=None,
              help="Comma-separated metrics (default: all; lpips is skipped with a warning when unavailable).")
@click.option("--target-bpp", "target_list", default=None,
              help="Comma-separated target rates; per image the setting closest at or below each target is searched.")
@click.option("--no-sweep", is_flag=True, help="With --target-bpp: run only the rate-targeted cells.")
@click.option("-j", "--jobs", default=1, show_default=True, type=click.IntRange(1), help="Worker processes.")
@click.option("--results", "results_dir", default="results", show_default=True, type=click.Path(file_okay=False))
@click.option("--force", is_flag=True, help="Recompute cells that are already stored.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where datasets are looked up and cached (default: $CODECBENCH_DATA or ~/.cache/codecbench).")
@click.option("--codec-option", "codec_option_pairs", multiple=True, metavar="CODEC.KEY=VALUE",
              help="Pass an option to a codec, e.g. bpg.encoder=/opt/bin/bpgenc. Repeatable.")
@click.option("--device", default=None, help="Device for learned codecs (cpu, cuda, cuda:1).")
@click.option("--torch-threads", default=1, show_default=True, type=click.IntRange(0),
              help="torch threads per worker (0: leave torch's default).")
@click.option("--lpips-weights", type=click.Path(dir_okay=False, exists=True), default=None,
              help="AlexNet backbone state dict for LPIPS (else $CODECBENCH_LPIPS_WEIGHTS or torchvision's cache).")
@click.option("--preview-images", default=2, show_default=True, type=click.IntRange(0),
              help="Store centre crops of decoded images for the first N images of each dataset (report visuals).")
@click.option("--offline", is_flag=True, help="Never download; fail if a dataset is not cached.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def run(codec_list, dataset_list, settings_opts, metric_list, target_list, no_sweep, jobs, results_dir, force,
        data_dir, codec_option_pairs, device, torch_threads, lpips_weights, preview_images, offline, quiet):
    """Run a sweep of codecs × settings over datasets, storing one row per cell (resumable)."""
    from codecbench import metrics, registry
    from codecbench.data.datasets import resolve_dataset
    from codecbench.errors import CodecError
    from codecbench.runner import run_sweep
    from codecbench.store import ResultsStore

    codec_names = parse_names(codec_list)
    if not codec_names:
        raise click.BadParameter("name at least one codec", param_hint="--codecs")
    if lpips_weights:  # through the environment, so that worker processes see it too
        from codecbench.metrics.perceptual import LPIPS_WEIGHTS_ENV

        os.environ[LPIPS_WEIGHTS_ENV] = str(Path(lpips_weights).resolve())

    metric_names = parse_names(metric_list) if metric_list else list(metrics.METRICS)
    unknown = [m for m in metric_names if m not in metrics.METRICS]
    if unknown:
        raise click.BadParameter(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(metrics.METRICS)}",
                                 param_hint="--metrics")
    problems: list[str] = []
    for name in list(metric_names):
        status = metrics.METRICS[name].availability()
        if not status.ok:
            metric_names.remove(name)
            message = f"{name} unavailable, not computed: {status.reason}"
            click.echo(f"warning: {message}", err=True)
            if metric_list:  # asked for explicitly: the run is incomplete
                problems.append(message)

    options = parse_codec_options(codec_option_pairs, device, codec_names)
    codecs = {}
    for name in codec_names:
        try:
            codecs[name] = registry.create(name, **options.get(name, {}))
        except CodecError as exc:
            problems.append(str(exc))
            click.echo(f"error: {exc}", err=True)

    chunks = [chunk for item in settings_opts for chunk in item.split(";")]
    overrides = dict(parse_key_values(chunks, "--settings", "jpeg=10,20,30",
                                      lambda values: parse_values(values, "--settings")))
    strangers = [name for name in overrides if name not in codec_names]
    if strangers:
        raise click.BadParameter(f"{', '.join(strangers)}: not named in --codecs", param_hint="--settings")
    settings: dict[str, list[float]] = {}
    for name, codec in codecs.items():
        values = [] if no_sweep else overrides.get(name, list(codec.setting.default_sweep))
        try:
            settings[name] = [float(codec.setting.validate(v)) for v in values]
        except ValueError as exc:
            raise click.BadParameter(f"{name}: {exc}", param_hint="--settings") from None
    targets = parse_values(target_list, "--target-bpp") if target_list else []
    if no_sweep and not targets:
        raise click.BadParameter("--no-sweep needs --target-bpp")

    datasets = []
    for spec in parse_names(dataset_list):
        datasets.append(resolve_dataset(spec, Path(data_dir) if data_dir else None,
                                        download=not offline, progress=not quiet))

    store = ResultsStore(results_dir)
    summary = run_sweep(
        store, datasets, codecs, settings, metric_names, target_bpp=targets, codec_options=options, jobs=jobs,
        torch_threads=torch_threads, force=force, preview_images=preview_images, command=sys.argv,
        problems=problems, progress=not quiet,
    )
    click.echo(
        f"{summary.total_cells} cells: {summary.skipped_cells} already stored, {summary.done_cells} computed, "
        f"{summary.failed_cells} failed → {store.cells_path}",
        err=True,
    )
    if summary.interrupted:
        click.echo("interrupted: finished cells are stored; run the same command again to continue", err=True)
    for line in summary.problems:
        click.echo(f"problem: {line}", err=True)
    for line in summary.failures[:20]:
        click.echo(f"failed: {line}", err=True)
    if len(summary.failures) > 20:
        click.echo(f"… and {len(summary.failures) - 20} more failures (see the error column)", err=True)
    sys.exit(0 if summary.ok else (130 if summary.interrupted else 1))
