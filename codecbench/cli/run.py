"""``codecbench run``, ``codecbench codecs`` and ``codecbench export``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click


def parse_values(text: str) -> list[float]:
    """Parse ``10,20,30`` or an inclusive range ``10:90:10`` (or a mix: ``1,2,5:50:5``)."""
    values: list[float] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if ":" in part:
            pieces = part.split(":")
            if len(pieces) != 3:
                raise click.BadParameter(f"range {part!r} must be START:STOP:STEP")
            start, stop, step = (float(p) for p in pieces)
            if step <= 0 or stop < start:
                raise click.BadParameter(f"range {part!r} needs STEP > 0 and STOP ≥ START")
            count = int(round((stop - start) / step)) + 1
            values.extend(round(start + i * step, 10) for i in range(count) if start + i * step <= stop + 1e-9)
        else:
            try:
                values.append(float(part))
            except ValueError:
                raise click.BadParameter(f"{part!r} is not a number") from None
    if not values:
        raise click.BadParameter(f"no values in {text!r}")
    return values


def parse_names(text: str | None) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def parse_codec_options(pairs: tuple[str, ...], device: str | None = None,
                        codec_names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``CODEC.KEY=VALUE`` pairs (and ``--device``) into {codec: {key: value}}."""
    from codecbench import registry

    options: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        name_key, sep, value = pair.partition("=")
        codec, dot, key = name_key.partition(".")
        if not sep or not dot or not codec or not key:
            raise click.BadParameter(f"{pair!r} must look like CODEC.KEY=VALUE, e.g. bpg.encoder=/usr/local/bin/bpgenc")
        options.setdefault(codec, {})[key] = value
    if device:
        for name, registered in registry.discover().items():
            cls = registered.codec_class
            if cls is not None and "device" in cls.option_names and (codec_names is None or name in codec_names):
                options.setdefault(name, {}).setdefault("device", device)
    return options


@click.command()
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
    from codecbench.codec import CodecError
    from codecbench.datasets import DatasetError, resolve_dataset
    from codecbench.runner import run_sweep
    from codecbench.store import ResultsStore

    codec_names = parse_names(codec_list)
    if not codec_names:
        raise click.BadParameter("name at least one codec", param_hint="--codecs")
    if lpips_weights:  # through the environment, so that worker processes see it too
        os.environ[metrics.LPIPS_WEIGHTS_ENV] = str(Path(lpips_weights).resolve())

    metric_names = parse_names(metric_list) if metric_list else list(metrics.METRICS)
    unknown = [m for m in metric_names if m not in metrics.METRICS]
    if unknown:
        raise click.BadParameter(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(metrics.METRICS)}",
                                 param_hint="--metrics")
    problems: list[str] = []
    if "lpips" in metric_names:
        status = metrics.lpips_availability()
        if not status.ok:
            metric_names.remove("lpips")
            message = f"lpips unavailable, not computed: {status.reason}"
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

    overrides: dict[str, list[float]] = {}
    for item in settings_opts:
        for chunk in item.split(";"):
            name, sep, values = chunk.partition("=")
            name = name.strip()
            if not sep or name not in codec_names:
                raise click.BadParameter(f"{chunk!r}: expected CODEC=VALUES for a codec named in --codecs",
                                         param_hint="--settings")
            overrides[name] = parse_values(values)
    settings: dict[str, list[float]] = {}
    for name, codec in codecs.items():
        values = [] if no_sweep else overrides.get(name, list(codec.setting.default_sweep))
        try:
            settings[name] = [float(codec.setting.validate(v)) for v in values]
        except ValueError as exc:
            raise click.BadParameter(f"{name}: {exc}", param_hint="--settings") from None
    targets = parse_values(target_list) if target_list else []
    if no_sweep and not targets:
        raise click.BadParameter("--no-sweep needs --target-bpp")

    datasets = []
    for spec in parse_names(dataset_list):
        try:
            datasets.append(resolve_dataset(spec, Path(data_dir) if data_dir else None,
                                            download=not offline, progress=not quiet))
        except DatasetError as exc:
            raise click.ClickException(str(exc)) from None

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


@click.command()
@click.option("--codec-option", "codec_option_pairs", multiple=True, metavar="CODEC.KEY=VALUE")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def codecs(codec_option_pairs, as_json):
    """List every registered codec: version, setting range and availability."""
    from dataclasses import asdict

    from codecbench import registry

    infos = registry.describe_all(parse_codec_options(codec_option_pairs))
    if as_json:
        click.echo(json.dumps([asdict(info) for info in infos], indent=2))
        return
    rows = [("codec", "available", "version", "setting", "description")]
    for info in infos:
        rows.append((info.name, "yes" if info.available else "no", info.version, info.setting, info.description))
    widths = [max(len(str(r[i])) for r in rows) for i in range(4)]
    for row in rows:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row[:4], widths)) + "  " + row[4])
    for info in infos:
        if not info.available:
            click.echo(f"\n{info.name}: {info.reason}")


@click.command()
@click.argument("results_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "json", "compressai"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default="-", show_default=True)
@click.option("--codec", default=None, help="With --format compressai: the codec to export.")
@click.option("--dataset", default=None, help="With --format compressai: the dataset (default: the only one).")
def export(results_dir, fmt, output, codec, dataset):
    """Write the results table as CSV or JSON, or one codec's mean curve in CompressAI's JSON layout."""
    from codecbench.store import StoreError, open_existing

    try:
        store = open_existing(results_dir)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    if fmt == "compressai":
        from codecbench.analysis import to_compressai_json

        if not codec:
            raise click.BadParameter("--format compressai needs --codec NAME", param_hint="--codec")
        try:
            text = json.dumps(to_compressai_json(store.rows(), codec, dataset), indent=2)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
    elif fmt == "json":
        frame = store.dataframe()
        text = frame.to_json(orient="records", indent=2)
    else:
        frame = store.dataframe()
        frame["extra"] = frame["extra"].map(lambda v: json.dumps(v) if v is not None else "")
        text = frame.to_csv(index=False)
    if output == "-":
        click.echo(text)
    else:
        from codecbench.files import atomic_write_text

        atomic_write_text(output, text)
        click.echo(f"wrote {output}", err=True)
