"""The command line's shared conventions: -o/--output, -q/--quiet, -v/--verbose, --json, exit codes, usage errors."""

import json
import sys

import click
import pytest
from click.testing import CliRunner

from codecbench.cli import COMMANDS, cli
from codecbench.cli.options import EXIT_CODES
from codecbench.plugins import load_target
from test_regression import rows, store_with

#: Commands that write files or folders: all take -o/--output (and the old spelling, unlisted).
WRITERS = {"run": "--results", "report": None, "export": None, "baseline": None, "merge": None, "train": "--out",
           "datasets build-bd": "--out"}
#: Commands that print progress or notes: all take -q/--quiet and -v/--verbose.
TALKERS = ("run", "rescore", "report", "baseline", "train", "datasets build-bd")
#: Listings, and check: all take --json.
LISTINGS = ("codecs", "metrics", "datasets", "datasets list", "references", "check")


def command(path: str) -> click.Command:
    name, _, sub = path.partition(" ")
    found = load_target(COMMANDS[name])
    return found.commands[sub] if sub else found


def every_command() -> list[str]:
    paths = []
    for name in COMMANDS:
        found = command(name)
        paths.append(name)
        if isinstance(found, click.Group):
            paths += [f"{name} {sub}" for sub in found.commands]
    return paths


def help_text(path: str) -> str:
    outcome = CliRunner().invoke(cli, [*path.split(), "--help"], terminal_width=200)
    assert outcome.exit_code == 0, outcome.output
    return " ".join(outcome.output.split())


def option_names(path: str) -> set[str]:
    return {name for param in command(path).params for name in getattr(param, "opts", [])}


@pytest.mark.parametrize("path", [""] + every_command())
def test_every_help_ends_with_the_exit_codes(path):
    text = help_text(path)
    if path == "check":
        assert "Exit codes: 0 no regression; 1 a regression; 2 unusable input" in text
    else:
        assert " ".join(EXIT_CODES.split()) in text


def test_the_common_options_are_where_they_belong():
    for path, old in WRITERS.items():
        assert {"-o", "--output"} <= option_names(path), path
        shown = help_text(path)
        assert "-o, --output" in shown
        if old:
            assert old in option_names(path) and f"{old} " not in shown, path  # still works, not listed
    for path in TALKERS:
        assert {"-q", "--quiet", "-v", "--verbose"} <= option_names(path), path
    for path in LISTINGS:
        assert "--json" in option_names(path), path


def test_old_spellings_still_work():
    run = command("run")
    assert run.make_context("run", ["--codecs", "jpeg", "--dataset", "sample", "--results", "old"]).params[
        "results_dir"] == "old"
    assert run.make_context("run", ["--codecs", "jpeg", "--dataset", "sample", "-o", "new"]).params[
        "results_dir"] == "new"
    build = command("datasets build-bd")
    assert build.make_context("build-bd", ["--source", ".", "--out", "bd"]).params["out"] == "bd"


def test_quiet_and_verbose_exclude_each_other(tmp_path):
    outcome = CliRunner().invoke(cli, ["run", "--codecs", "jpeg", "--dataset", "sample", "-o", str(tmp_path / "r"),
                                       "-q", "-v"])
    assert outcome.exit_code == 2 and "exclude each other" in outcome.output
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, option", [
    (["--codecs", "jpg"], "--codecs"),
    (["--codecs", "jpeg", "--metrics", "psnr_rgbb"], "--metrics"),
    (["--codecs", "jpeg", "--settings", "jpeg=500"], "--settings"),
    (["--codecs", "jpeg", "--settings", "webp=50"], "--settings"),
    (["--codecs", "jpeg", "--codec-option", "jpeg.nope=1"], "--codec-option"),
])
def test_run_refuses_bad_usage_before_creating_anything(tmp_path, args, option):
    results = tmp_path / "results"
    outcome = CliRunner().invoke(cli, ["run", "--dataset", "sample", "-o", str(results), *args])
    assert outcome.exit_code == 2 and option in outcome.output, outcome.output
    assert not results.exists()


def test_run_refuses_an_unknown_dataset_before_creating_anything(tmp_path):
    results = tmp_path / "results"
    outcome = CliRunner().invoke(cli, ["run", "--codecs", "jpeg", "--metrics", "psnr_rgb", "--dataset", "nosuch",
                                       "-o", str(results)])
    assert outcome.exit_code == 2 and "unknown dataset 'nosuch'" in outcome.output
    assert not results.exists()


@pytest.mark.parametrize("args, message", [
    (["--codecs", "jpg"], "the baseline holds nothing (codecs jpg)"),
    (["--metrics", "psnr_rgbb"], "unknown metric(s) psnr_rgbb"),
    (["--dataset", "nosuch"], "the baseline has no dataset nosuch"),
    (["--max-drift", "psnr_rgbb=1"], "unknown metric(s) psnr_rgbb"),
])
def test_check_refuses_bad_usage_with_exit_2(tmp_path, args, message):
    results = store_with(tmp_path / "results", rows())
    assert CliRunner().invoke(cli, ["baseline", str(results), "-o", str(tmp_path / "b.json"), "-q"]).exit_code == 0
    outcome = CliRunner().invoke(cli, ["check", str(results), "--baseline", str(tmp_path / "b.json"), *args])
    assert outcome.exit_code == 2 and message in outcome.output, outcome.output


def test_check_json_has_the_verdict_and_the_findings(tmp_path):
    results = store_with(tmp_path / "results", rows())
    assert CliRunner().invoke(cli, ["baseline", str(results), "-o", str(tmp_path / "b.json"), "-q"]).exit_code == 0
    current = store_with(tmp_path / "current", rows(rate=1.05))
    outcome = CliRunner().invoke(cli, ["check", str(current), "--baseline", str(tmp_path / "b.json"), "--json"])
    document = json.loads(outcome.stdout)
    assert outcome.exit_code == 1 and document["verdict"] == "regression" and document["exit_code"] == 1
    assert {c["codec"] for c in document["codecs"]} == {"jpeg", "webp"}
    assert any(f["severity"] == "regression" and f["check"] == "psnr_rgb" for f in document["findings"])
    assert document["codecs"][0]["settings"][0]["verdict"] == "regression"
    unusable = CliRunner().invoke(cli, ["check", str(tmp_path / "nowhere"), "--baseline", str(tmp_path / "b.json"),
                                        "--json"])
    assert unusable.exit_code == 2 and json.loads(unusable.stdout)["verdict"] == "unusable"


@pytest.mark.parametrize("args", [["metrics"], ["datasets"], ["datasets", "list"], ["references"],
                                  ["references", "--dataset", "kodak"]])
def test_listings_print_json(tmp_path, args):
    outcome = CliRunner().invoke(cli, [*args, "--json"], env={"CODECBENCH_DATA": str(tmp_path)})
    assert outcome.exit_code == 0, outcome.output
    document = json.loads(outcome.stdout)
    if args[0] == "datasets":
        assert document["data_dir"] == str(tmp_path) and "sample" in {d["name"] for d in document["datasets"]}
    elif args[0] == "references":
        assert document and all({"dataset", "name", "points", "description"} <= set(e) for e in document)
    else:
        assert "psnr_rgb" in {entry["name"] for entry in document}


def test_datasets_json_also_works_on_the_group_before_list(tmp_path):
    outcome = CliRunner().invoke(cli, ["datasets", "--json", "list"], env={"CODECBENCH_DATA": str(tmp_path)})
    assert outcome.exit_code == 0 and json.loads(outcome.stdout)["data_dir"] == str(tmp_path)


def test_figures_without_matplotlib_are_a_usage_error_naming_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    results = store_with(tmp_path / "results", rows())
    outcome = CliRunner().invoke(cli, ["report", str(results), "-o", str(tmp_path / "report"), "--figures", "svg"])
    assert outcome.exit_code == 2, outcome.output
    assert 'pip install "codecbench[figures]"' in outcome.output
    assert not (tmp_path / "report").exists()
    from codecbench import api
    from codecbench.errors import UsageError

    with pytest.raises(UsageError, match=r'codecbench\[figures\]'):
        api.report(results, tmp_path / "report", figures=["svg"])
    assert not (tmp_path / "report").exists()


@pytest.mark.slow
def test_quiet_run_prints_its_summary_but_no_progress_and_verbose_its_plan(tmp_path):
    args = ["run", "--codecs", "jpeg", "--dataset", "sample", "--metrics", "psnr_rgb", "--settings", "jpeg=50",
            "--in-process", "--preview-images", "0"]
    quiet = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "q"), "-q"])
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr.startswith("3 cells: 0 already stored, 3 computed, 0 failed") and "cell/s" not in quiet.stderr
    verbose = CliRunner().invoke(cli, [*args, "-o", str(tmp_path / "v"), "-v"])
    assert verbose.exit_code == 0 and "jpeg: settings 50" in verbose.stderr and "metrics: psnr_rgb" in verbose.stderr


def test_report_lists_the_files_it_wrote_with_verbose(tmp_path):
    results = store_with(tmp_path / "results", rows())
    verbose = CliRunner().invoke(cli, ["report", str(results), "-o", str(tmp_path / "v"), "-v",
                                       "--metrics", "psnr_rgb"])
    assert verbose.exit_code == 0 and f"wrote {tmp_path / 'v' / 'bd_rate.csv'}" in verbose.output
    assert f"report: {tmp_path / 'v' / 'report.html'}" in verbose.output
