"""Renderings of a regression check (:class:`codecbench.regression.check.CheckResult`).

:func:`format_markdown`: a summary for a pull-request comment or
``$GITHUB_STEP_SUMMARY``; :func:`to_junit`: JUnit XML, one testcase per
dataset/codec × check. Missing values are shown by
:func:`codecbench.values.format_number`.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from codecbench.regression.baseline import setting_key
from codecbench.regression.check import (
    CHANGE,
    IMPROVEMENT,
    INFO,
    REGRESSION,
    CheckResult,
    CodecComparison,
    Finding,
    delta_text,
)
from codecbench.values import format_number

_ICON = {REGRESSION: "❌", IMPROVEMENT: "🟢", CHANGE: "⚠️", INFO: "ℹ️"}


def format_markdown(result: CheckResult) -> str:
    """A Markdown summary for a pull-request comment or ``$GITHUB_STEP_SUMMARY``."""
    lines = [f"## codecbench check: {_headline(result)}", ""]
    lines.append(f"Baseline `{result.baseline_label}`, results `{result.results_label}`.")
    if result.unusable:
        lines += ["", "### ⛔ Unusable input", ""] + [f"- {reason}" for reason in result.unusable]
        return "\n".join(lines) + "\n"
    tol = result.tolerances
    drifts = ", ".join(f"{m} ±{tol.max_drift[m]:g}" for m in result.metrics)
    lines.append(f"Tolerances: BD-rate ≤ {tol.max_bd_rate:g} % (pchip; {', '.join(result.metrics)}), "
                 f"per-setting mean bpp ±{tol.max_bpp_drift:g} %, {drifts}. Timing is not checked.")
    versions = [f for f in result.findings if f.check == "version" and f.severity == CHANGE]
    if versions:
        lines += ["", "### ⚠️ Codec versions changed (curves still compared)", ""]
        lines += [f"- **{f.dataset}/{f.codec}**: {f.message}" for f in versions]
    for severity, title in ((REGRESSION, "Regressions"), (IMPROVEMENT, "Improvements"),
                            (CHANGE, "Changes"), (INFO, "Notes")):
        found = [f for f in result.of(severity) if f not in versions]
        if found:
            lines += ["", f"### {_ICON[severity]} {title}", ""]
            lines += [f"- {_where(f)}{f.message}" for f in found]
    for dataset in sorted({c.dataset for c in result.codecs}):
        lines += ["", f"### {dataset}", ""] + _codec_table(result, [c for c in result.codecs if c.dataset == dataset])
    for comparison in result.codecs:
        if any(f.dataset == comparison.dataset and f.codec == comparison.codec and f.severity != INFO
               and f.check != "version" for f in result.findings) and comparison.settings:
            lines += [""] + _setting_table(result, comparison)
    return "\n".join(lines) + "\n"


def _headline(result: CheckResult) -> str:
    if result.unusable:
        return "⛔ unusable input"
    regressions = result.of(REGRESSION)
    if regressions:
        return f"❌ {len(regressions)} regression(s)"
    improvements = result.of(IMPROVEMENT)
    return "✅ no regressions" + (f", {len(improvements)} improvement(s)" if improvements else "")


def _where(finding: Finding) -> str:
    parts = [p for p in (finding.dataset, finding.codec) if p]
    return f"**{'/'.join(parts)}**: " if parts else ""


def _status(result: CheckResult, comparison: CodecComparison) -> str:
    severities = {f.severity for f in result.findings
                  if f.dataset == comparison.dataset and f.codec == comparison.codec and f.check != "version"}
    for severity, label in ((REGRESSION, "❌ regression"), (CHANGE, "⚠️ changed"), (IMPROVEMENT, "🟢 improved")):
        if severity in severities:
            return label
    return "✅ pass"


def _codec_table(result: CheckResult, comparisons: Sequence[CodecComparison]) -> list[str]:
    header = ["codec", "version", *(f"BD-rate {m}" for m in result.metrics), "max Δbpp",
              *(f"max Δ{m}" for m in result.metrics), "same bytes", "result"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for c in comparisons:
        version = c.baseline_version if c.current_version in (None, c.baseline_version) \
            else f"{c.baseline_version} → {c.current_version}"
        if c.current_version is None:
            cells = ["—"] * (2 * len(result.metrics) + 2)
        else:
            bd = [_percent(c.bd_rate.get(m), 3) for m in result.metrics]
            bpp = _largest([s.bpp_drift_percent for s in c.settings])
            deltas = [_largest([s.metrics[m][1] - s.metrics[m][0] for s in c.settings if m in s.metrics])
                      for m in result.metrics]
            cells = [*bd, _percent(bpp, 2, missing="—"),
                     *("—" if d is None else delta_text(d) for d in deltas), f"{c.same_bytes}/{c.common_cells}"]
        lines.append("| " + " | ".join([c.codec, f"`{version}`", *cells, _status(result, c)]) + " |")
    return lines


def _percent(value: float | None, digits: int, missing: str = "n/a") -> str:
    """A signed percentage with ``digits`` decimals; ``missing`` for None and non-finite values."""
    text = format_number(value, digits, signed=True, missing=missing)
    return text if text == missing else f"{text} %"


def _largest(values: Sequence[float]) -> float | None:
    finite = [v for v in values if not math.isnan(v)]
    return max(finite, key=abs) if finite else None


def _setting_table(result: CheckResult, c: CodecComparison) -> list[str]:
    header = ["setting", "images", "bpp", "Δbpp", *(f"{m}" for m in result.metrics), *(f"Δ{m}" for m in result.metrics),
              "verdict"]
    lines = [f"<details><summary>{c.dataset}/{c.codec}: per-setting means (baseline → current)</summary>", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for s in c.settings:
        values = [f"{s.metrics[m][0]:.6g} → {s.metrics[m][1]:.6g}" if m in s.metrics else "—" for m in result.metrics]
        deltas = [delta_text(s.metrics[m][1] - s.metrics[m][0]) if m in s.metrics else "—" for m in result.metrics]
        lines.append("| " + " | ".join([setting_key(s.setting), str(s.n_images), f"{s.bpp[0]:.6g} → {s.bpp[1]:.6g}",
                                        _percent(s.bpp_drift_percent, 2), *values, *deltas, s.verdict]) + " |")
    return lines + ["", "</details>"]


def to_junit(result: CheckResult) -> str:
    """JUnit XML: one testcase per dataset/codec × check (coverage, bpp, each metric); regressions are failures.

    Unusable input is one testcase with an ``<error>``; the checks of a codec
    without results are skipped.
    """
    suite = ET.Element("testsuite", name="codecbench check")
    cases: list[ET.Element] = []
    if result.unusable:
        case = ET.Element("testcase", classname="codecbench", name="input")
        ET.SubElement(case, "error", message="unusable input").text = "\n".join(result.unusable)
        cases.append(case)
    for c in result.codecs:
        for check in ("coverage", "bpp", *result.metrics):
            case = ET.Element("testcase", classname=f"{c.dataset}.{c.codec}", name=check)
            failures = [f.message for f in result.of(REGRESSION)
                        if (f.dataset, f.codec, f.check) == (c.dataset, c.codec, check)]
            if failures:
                ET.SubElement(case, "failure", message=failures[0]).text = "\n".join(failures)
            elif c.current_version is None and check != "coverage":
                ET.SubElement(case, "skipped", message="codec has no results")
            cases.append(case)
    suite.extend(cases)
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(case.find("failure") is not None for case in cases)))
    suite.set("errors", str(sum(case.find("error") is not None for case in cases)))
    suite.set("skipped", str(sum(case.find("skipped") is not None for case in cases)))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
