"""``codecbench datasets``: list datasets and built BD patch sets; ``datasets build-bd`` builds BD sets."""

from __future__ import annotations

from pathlib import Path

import click

from codecbench.cli.options import Group, echo_json, json_option, output_option, verbosity_options

DATA_DIR_HELP = "Where datasets are looked up and cached (default: $CODECBENCH_DATA or ~/.cache/codecbench)."


def _data_dir(ctx: click.Context) -> Path:
    """The ``--data-dir`` given to the ``datasets`` group, else the default data folder."""
    from codecbench.data.folders import default_data_dir

    group = ctx if ctx.command is datasets else ctx.parent
    chosen = group.params.get("data_dir") if group is not None else None
    return Path(chosen) if chosen else default_data_dir()


def _bd_builds(bd_dir: Path) -> list[tuple[Path, dict]]:
    """(folder, manifest) of every BD build in ``bd_dir`` itself or one of its direct subfolders."""
    from codecbench.data.bdpatches import MANIFEST_NAME, read_manifest

    folders = [bd_dir] + (sorted(p for p in bd_dir.iterdir() if p.is_dir()) if bd_dir.is_dir() else [])
    return [(folder, read_manifest(folder)) for folder in folders if (folder / MANIFEST_NAME).is_file()]


def _print_listing(data_dir: Path, as_json: bool = False) -> None:
    from codecbench.data.bdpatches import SET_NAMES, default_bd_dir
    from codecbench.data.datasets import list_datasets

    rows = list_datasets(data_dir)
    if as_json:
        echo_json(_listing_document(data_dir, rows))
        return
    click.echo(f"Data folder: {data_dir}")
    width = max([len(row.name) for row in rows] + [len("dataset")])
    click.echo(f"{'dataset':<{width}}  {'images':>6}  {'status':<7}  folder / note")
    for row in rows:
        status = "present" if row.present else "missing"
        click.echo(f"{row.name:<{width}}  {row.n_images:>6}  {status:<7}  {row.where}")
        click.echo(f"{'':<{width}}  {'':>6}  {'':<7}  {row.note}")

    bd_dir = default_bd_dir(data_dir)
    builds = _bd_builds(bd_dir)
    if not builds:
        click.echo(f"\nNo BD patch sets under {bd_dir} (build them with `codecbench datasets build-bd`).")
        return
    for folder, manifest in builds:
        suffix = "" if folder == bd_dir else f"@{folder}"
        patch = manifest["patch"]
        click.echo(f"\nBD patch sets in {folder}: {patch}×{patch} patches of {manifest['source_folder']}, "
                   f"seed {manifest['seed']}, pool {manifest['patches_pool']} of {manifest['patches_total']}")
        for name in SET_NAMES:
            click.echo(_set_line(f"bd:{name}{suffix}", manifest["sets"][name]))


def _listing_document(data_dir: Path, rows: list) -> dict:
    """What `datasets --json` prints: the data folder, every registered dataset, every BD build."""
    from dataclasses import asdict

    from codecbench.data.bdpatches import default_bd_dir

    bd_dir = default_bd_dir(data_dir)
    builds = [{"folder": str(folder),
               "spec_suffix": "" if folder == bd_dir else f"@{folder}",
               **{key: manifest.get(key) for key in ("patch", "source_folder", "seed", "patches_pool", "patches_total")},
               "sets": manifest["sets"]} for folder, manifest in _bd_builds(bd_dir)]
    return {"data_dir": str(data_dir), "datasets": [dict(asdict(row), where=str(row.where)) for row in rows],
            "bd_sets": builds}


def _set_line(spec: str, entry: dict) -> str:
    """One BD patch set as listed by both `datasets` and `datasets build-bd`."""
    return (f"  {spec}  {entry['count']:>8} patches  entropy {entry['entropy_min']:.3f}–{entry['entropy_max']:.3f} "
            f"bits (mean {entry['entropy_mean']:.3f})  {entry['definition']}")


@click.group(cls=Group, invoke_without_command=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help=DATA_DIR_HELP)
@json_option
@click.pass_context
def datasets(ctx: click.Context, data_dir: str | None, as_json: bool) -> None:
    """List registered datasets (present or missing) and built BD patch sets; subcommands build them."""
    if ctx.invoked_subcommand is None:
        _print_listing(_data_dir(ctx), as_json)


@datasets.command("list")
@json_option
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """List registered datasets (present or missing) and built BD patch sets."""
    _print_listing(_data_dir(ctx), as_json or bool(ctx.parent and ctx.parent.params.get("as_json")))


@datasets.command("build-bd")
@click.option("--source", required=True, type=click.Path(file_okay=False, exists=True),
              help="Folder of images to cut into patches (not recursive; sorted by name).")
@click.option("--patch", default=32, show_default=True, type=click.IntRange(1), help="Patch side in pixels.")
@output_option("Output folder (default: <data dir>/bd, where `bd:SET` specs look).", dest="out", folder=True,
               old_names=("--out",))
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0), help="Seed of the random draws.")
@click.option("--max-patches", default=None, type=click.IntRange(5),
              help="Cap the pool with a seeded uniform subsample before banding.")
@verbosity_options
@click.pass_context
def build_bd_command(ctx: click.Context, source: str, patch: int, out: str | None, seed: int,
                     max_patches: int | None, verbosity) -> None:
    """Cut SOURCE's images into patches and write the entropy-banded sets BD0–BD4 (a summary on stdout)."""
    from codecbench.data.bdpatches import SET_NAMES, build_bd, default_bd_dir

    out_dir = Path(out) if out else default_bd_dir(_data_dir(ctx))
    manifest = build_bd(source, out_dir, patch=patch, seed=seed, max_patches=max_patches,
                        progress=not verbosity.quiet)
    for skipped in manifest["skipped"]:
        click.echo(f"skipped {skipped['file']}: {skipped['reason']}", err=True)
    click.echo(f"{len(manifest['sources'])} images, {manifest['patches_total']} patches of {patch}×{patch}; "
               f"pool {manifest['patches_pool']} patches; entropy: {manifest['entropy']['name']} (bits)")
    t = manifest["thresholds"]
    click.echo(f"thresholds: BD0 ≤ {t['bd0_max']:.3f}, BD1 {t['bd1_min']:.3f}–{t['bd1_max']:.3f}, "
               f"BD2 ≥ {t['bd2_min']:.3f}, upper half (BD4) ≥ {t['upper_half_min']:.3f}")
    suffix = "" if out_dir == default_bd_dir(_data_dir(ctx)) else f"@{out_dir}"
    for name in SET_NAMES:
        click.echo(_set_line(f"bd:{name}{suffix}", manifest["sets"][name]))
    click.echo(f"written to {out_dir}")
    verbosity.detail(f"manifest: {out_dir / 'manifest.json'}")
