"""``codecbench store repair DIR``: move unreadable lines of a results store aside, deleting nothing."""

from __future__ import annotations

import click

from codecbench.cli.options import Command, Group


@click.group(cls=Group)
def store() -> None:
    """Maintain a results directory."""


@store.command("repair", cls=Command)
@click.argument("results_dir", type=click.Path(file_okay=False))
def repair(results_dir: str) -> None:
    """Move every unreadable line of RESULTS_DIR/cells.jsonl to cells.damaged.jsonl (nothing is deleted)."""
    from codecbench.store import DAMAGED_FILE, open_existing

    results = open_existing(results_dir)
    kept, moved = results.repair()
    if not moved:
        click.echo(f"{results.cells_path}: all {kept} lines are readable; nothing to repair")
        return
    lines = ", ".join(map(str, moved[:20])) + (f" and {len(moved) - 20} more" if len(moved) > 20 else "")
    click.echo(f"{results.cells_path}: moved {len(moved)} unreadable line(s) ({lines}) to "
               f"{results.root / DAMAGED_FILE}; {kept} rows kept. Run the sweep again to recompute the lost cells.")
