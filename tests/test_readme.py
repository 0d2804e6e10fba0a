"""The README tells the truth: its tour runs, and .ci/run runs its test command."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from conftest import REPO

README = (REPO / "README.md").read_text()


def tour_commands() -> list[list[str]]:
    block = README.split("### From the command line", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("fluidopt "):
            commands.append(shlex.split(line)[1:])
    return commands


def test_tour_has_commands():
    assert len(tour_commands()) >= 15


@pytest.mark.slow
def test_every_tour_command_runs(cli, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(REPO / "examples")
    for args in tour_commands():
        if args[0] == "sweep":
            args = [*args, "--workers", "1"]
        res = cli(*args)
        assert res.code == 0, f"fluidopt {' '.join(args)} failed: {res.err}"
        if "--json" in args:
            res.json()  # one JSON object on stdout


def test_ci_runs_the_readme_test_command():
    setup = README.split("Run the test suite", 1)[1].split("```bash", 1)[1].split("```", 1)[0].strip()
    ci = (REPO / ".ci" / "run").read_text()
    assert setup in ci


def test_readme_quotes_the_shipped_azure_conv_numbers(cli):
    stats = cli("instances", "show", "azure-conv", "--json").json()
    quoted = re.search(r"([\d,]+) requests, prompt mean ([\d,]+), output mean (\d+)", README)
    assert quoted is not None
    n, prompt, output = (int(g.replace(",", "")) for g in quoted.groups())
    assert n == stats["n_requests"]
    assert prompt == round(stats["prompt_mean"]) and output == round(stats["output_mean"])


def test_readme_shows_every_committed_figure():
    """Every image the README embeds exists, and every notebook figure is embedded."""
    shown = set(re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", README))
    assert shown, "the README embeds no figure"
    missing = sorted(p for p in shown if not (REPO / p).is_file())
    assert not missing, f"README embeds figures that do not exist: {missing}"
    committed = {p.relative_to(REPO).as_posix() for p in (REPO / "notebooks" / "figures").glob("*.png")}
    assert committed <= shown, f"figures not shown in the README: {sorted(committed - shown)}"
