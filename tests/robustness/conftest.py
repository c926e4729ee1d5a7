"""Shared pieces of the adversarial suite: the plugin path, a CLI runner, and the summary table (input → outcome).

Every test of this folder is marked ``slow`` and records what happened to each
input it tried; the table is printed at the end of the session.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PLUGINS = Path(__file__).parent.parent / "plugins"
OUTCOMES: list[tuple[str, str, str]] = []  # (group, input, outcome)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.slow)


def pytest_terminal_summary(terminalreporter) -> None:
    if not OUTCOMES:
        return
    terminalreporter.write_sep("=", "robustness: input → outcome")
    width = max(len(entry) for _, entry, _ in OUTCOMES)
    group = None
    for name, entry, outcome in OUTCOMES:
        if name != group:
            terminalreporter.write_line(f"[{name}]")
            group = name
        terminalreporter.write_line(f"  {entry:<{width}}  →  {outcome}")


@pytest.fixture
def record_outcome():
    """record_outcome(group, input, outcome): add a line to the summary table."""
    return lambda group, entry, outcome: OUTCOMES.append((group, entry, outcome))


@pytest.fixture
def plugin_env(monkeypatch) -> dict[str, str]:
    """An environment in which the test plugins (tests/plugins) are registered codecs, here and in subprocesses."""
    monkeypatch.syspath_prepend(str(PLUGINS))
    path = os.pathsep.join(filter(None, [str(PLUGINS), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    return dict(os.environ, PYTHONPATH=path)
