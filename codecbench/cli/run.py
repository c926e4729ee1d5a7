"""``codecbench run``: a sweep of codecs × settings over datasets, stored as one row per cell."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from codecbench.cli.options import (
    Command,
    output_option,
    parse_codec_options,
    parse_key_values,
    parse_names,
    parse_values,
    verbosity_options,
)
from codecbench.cli.sweep_checks import check_codec_names, check_lpips_weights, create_codecs, did_you_mean, parse_timeouts
from codecbench.variants import codec_name, load_aliases, split_codec_list


@click.command(cls=Command)
@click.option("--codecs", "codec_list", required=True,
              help="Comma-separated codecs (see `codecbench codecs`): NAME, NAME:KEY=VALUE,... or an alias.")
@click.option("--variants", "variants_file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="YAML file of codec aliases (alias: NAME:KEY=VALUE,...) added to the built-in ones.")
@click.option("--dataset", "dataset_list", required=True,
              help="Registered dataset name(s), a folder of images, or bd:SET; comma-separated.")
@click.option("--settings", "settings_opts", multiple=True, metavar="CODEC=VALUES",
              help="Override a codec's sweep: jpeg=10,20,30 or jpeg=10:90:10 (inclusive). Repeatable.")
@click.option("--metrics", "metric_list", default=None,
              help="Comma-separated metrics (default: those marked default in `codecbench metrics`; "
                   "lpips is skipped with a warning when unavailable).")
@click.option("--target-bpp", "target_list", default=None,
              help="Comma-separated target rates; per image the setting closest at or below each target is searched.")
@click.option("--no-sweep", is_flag=True, help="With --target-bpp: run only the rate-targeted cells.")
@click.option("-j", "--jobs", default=1, show_default=True, type=click.IntRange(1), help="Worker processes.")
@output_option("Results directory to write (created; a rerun resumes it).", dest="results_dir", folder=True,
               default="results", show_default=True, old_names=("--results",))
@click.option("--force", is_flag=True, help="Recompute cells that are already stored.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where datasets are looked up and cached (default: $CODECBENCH_DATA or ~/.cache/codecbench).")
@click.option("--codec-option", "codec_option_pairs", multiple=True, metavar="CODEC.KEY=VALUE",
              help="Pass an option to a codec, e.g. bpg.encoder=/opt/bin/bpgenc. Repeatable.")
@click.option("--device", default=None, help="Device for learned codecs (cpu, cuda, cuda:1).")
@click.option("--torch-threads", default=1, show_default=True, type=click.IntRange(0),
              help="torch and BLAS threads per worker (0: leave the libraries' defaults); an OMP_NUM_THREADS, "
                   "OPENBLAS_NUM_THREADS or MKL_NUM_THREADS already set wins.")
@click.option("--lpips-weights", type=click.Path(dir_okay=False, exists=True), default=None,
              help="AlexNet backbone state dict for LPIPS (else $CODECBENCH_LPIPS_WEIGHTS or torchvision's cache).")
@click.option("--preview-images", default=2, show_default=True, type=click.IntRange(0),
              help="Store centre crops of decoded images for the first N images of each dataset (report visuals).")
@click.option("--offline", is_flag=True, help="Never download; fail if a dataset is not cached.")
@verbosity_options
@click.option("--cell-timeout", "timeout_opts", multiple=True, metavar="SECONDS|CODEC=SECONDS",
              help="Wall-clock limit of one cell: for every codec (60) or one (conv_lstm=600). Repeatable. "
                   "Default: the codec's own (300 s; learned codecs 3600 s).")
@click.option("--retry-failed", is_flag=True,
              help="Also recompute cells whose worker crashed or timed out twice (normally left alone).")
@click.option("--in-process", is_flag=True,
              help="Compute cells in this process: no isolation, no timeouts (for debugging a plugin).")
@click.option("--executor", type=click.Choice(["local", "dask"]), default="local", show_default=True,
              help="Where cells are computed: local worker processes (-j N) or a Dask cluster (README: Scaling out).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="With --executor dask: an existing scheduler, tcp://HOST:8786 (default: a LocalCluster of -j workers).")
@click.option("--scheduler-file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="With --executor dask: the scheduler file written by `dask scheduler --scheduler-file` or dask-jobqueue.")
@click.option("--shard", "shard_text", default=None, metavar="i/N",
              help="Compute only shard i of N (1 ≤ i ≤ N) of the cells, split by a hash of the cell key; "
                   "`codecbench merge` joins the shards' results directories.")
@click.option("--timing-repeats", default=0, show_default=True, type=click.IntRange(0), metavar="R",
              help="Time each cell's encode and decode R times after a warm-up call: the medians are stored, "
                   "min and max in extra (0: one timed call).")
@click.option("--keep-decoded", is_flag=True,
              help="Keep each computed cell's bitstream and decoded image (lossless, deduplicated) under "
                   "RESULTS/blobs, so that `codecbench rescore` can add metrics without encoding again.")
def run(codec_list, dataset_list, settings_opts, metric_list, target_list, no_sweep, jobs, results_dir, force,
        data_dir, codec_option_pairs, device, torch_threads, lpips_weights, preview_images, offline, verbosity,
        timeout_opts, retry_failed, in_process, variants_file, keep_decoded, timing_repeats, executor, scheduler,
        scheduler_file, shard_text):
    """Run a sweep of codecs × settings over datasets, storing one row per cell (resumable)."""
    from codecbench import metrics, registry
    from codecbench.claims import Shard
    from codecbench.dask_executor import cluster_from_options

    cluster = cluster_from_options(executor, scheduler, scheduler_file, jobs, in_process, bool(timeout_opts))
    shard = Shard.parse(shard_text) if shard_text else None
    from codecbench.data.datasets import resolve_dataset
    from codecbench.runner import cell_timeouts, run_sweep
    from codecbench.store import ResultsStore

    aliases = load_aliases(variants_file)
    codec_specs = split_codec_list(codec_list)
    codec_names = [codec_name(spec, aliases) for spec in codec_specs]
    if not codec_names:
        raise click.BadParameter("name at least one codec", param_hint="--codecs")
    check_codec_names(codec_names)
    if lpips_weights:  # through the environment, so that worker processes see it too
        from codecbench.metrics.perceptual import LPIPS_WEIGHTS_ENV

        os.environ[LPIPS_WEIGHTS_ENV] = str(Path(lpips_weights).resolve())

    metric_names = parse_names(metric_list) if metric_list else metrics.default_metrics()
    unknown = [m for m in metric_names if m not in metrics.METRICS]
    if unknown:
        unloadable = "".join(f"; {m} {metrics.UNLOADABLE[m]}" for m in unknown if m in metrics.UNLOADABLE)
        raise click.BadParameter(f"unknown metric(s) {', '.join(unknown)}{did_you_mean(unknown, metrics.METRICS)}; "
                                 f"known: {', '.join(metrics.METRICS)}{unloadable}", param_hint="--metrics")
    problems: list[str] = []
    for name in list(metric_names):
        status = metrics.METRICS[name].availability()
        if not status.ok:
            metric_names.remove(name)
            message = f"{name} unavailable, not computed: {status.reason}"
            click.echo(f"warning: {message}", err=True)
            if metric_list:  # asked for explicitly: the run is incomplete
                problems.append(message)
    if "lpips" in metric_names:
        check_lpips_weights(lpips_weights)

    options = parse_codec_options(codec_option_pairs, device, codec_names)
    variants = registry.resolve_variants(codec_specs, aliases, options)  # by label: name + identity options
    options = {label: variant.options for label, variant in variants.items()}
    codecs = create_codecs(list(variants), options, problems)

    chunks = [chunk for item in settings_opts for chunk in item.split(";")]
    overrides = dict(parse_key_values(chunks, "--settings", "jpeg=10,20,30",
                                      lambda values: parse_values(values, "--settings")))
    strangers = [key for key in overrides if not any(v.picks(key) for v in variants.values())]
    if strangers:
        raise click.BadParameter(f"{', '.join(strangers)}: not named in --codecs", param_hint="--settings")
    settings: dict[str, list[float]] = {}
    for name, codec in codecs.items():
        picked = variants[name].pick(overrides)
        values = [] if no_sweep else (picked if picked is not None else list(codec.setting.default_sweep))
        try:
            settings[name] = [float(codec.setting.validate(v)) for v in values]
        except ValueError as exc:
            raise click.BadParameter(f"{name}: {exc}", param_hint="--settings") from None
    targets = parse_values(target_list, "--target-bpp") if target_list else []
    if any(not target > 0 for target in targets):
        raise click.BadParameter(f"{target_list!r}: every target must be > 0 bpp", param_hint="--target-bpp")
    if no_sweep and not targets:
        raise click.BadParameter("--no-sweep needs --target-bpp")
    default_timeout, per_codec_timeouts = parse_timeouts(timeout_opts, codec_names)
    timeouts = cell_timeouts(codecs, default_timeout, {label: per_codec_timeouts[variant.name] for label, variant
                                                       in variants.items() if variant.name in per_codec_timeouts})

    datasets = []
    for spec in parse_names(dataset_list):
        datasets.append(resolve_dataset(spec, Path(data_dir) if data_dir else None,
                                        download=not offline, progress=not verbosity.quiet))
    for name, values in settings.items():
        limit = f"; cell timeout {timeouts[name]:g} s" if timeouts.get(name) else ""
        verbosity.detail(f"{name}: settings {', '.join(f'{v:g}' for v in values) or '-'}{limit}")
    verbosity.detail(f"metrics: {', '.join(metric_names)}; datasets: {', '.join(d.name for d in datasets)}; "
                     f"results: {results_dir}")

    store = ResultsStore(results_dir)
    summary = run_sweep(
        store, datasets, codecs, settings, metric_names, target_bpp=targets, codec_options=options, jobs=jobs,
        torch_threads=torch_threads, force=force, retry_failed=retry_failed, timeouts=timeouts,
        in_process=in_process, cluster=cluster, shard=shard, keep_decoded=keep_decoded, timing_repeats=timing_repeats,
        preview_images=preview_images, command=sys.argv,
        problems=problems, progress=not verbosity.quiet,
    )
    click.echo(f"{summary.total_cells} cells: {summary.skipped_cells} already stored, {summary.done_cells} computed, "
               f"{summary.failed_cells} failed → {store.cells_path}", err=True)
    if summary.interrupted:
        click.echo("interrupted: finished cells are stored; run the same command again to continue", err=True)
    for line in summary.warnings:
        click.echo(f"warning: {line}", err=True)
    for line in summary.problems:
        click.echo(f"problem: {line}", err=True)
    for line in verbosity.some([f"failed: {line}" for line in summary.failures]):
        click.echo(line, err=True)
    sys.exit(0 if summary.ok else (130 if summary.interrupted else 1))
