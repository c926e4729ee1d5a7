"""RD-curve regression checks: freeze a run's curves into a baseline (:mod:`.baseline`), then compare
later runs with it (:mod:`.check`).

Markdown and JUnit renderings of a check are in :mod:`codecbench.render.checks`.
"""
