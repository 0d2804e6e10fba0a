"""The README tells the truth: its set-up line leaves `fluidopt` on the PATH, its tour runs
line by line in a shell, and .ci/run runs its test command."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

README = (REPO / "README.md").read_text()


def bash_block(after: str) -> str:
    return README.split(after, 1)[1].split("```bash", 1)[1].split("```", 1)[0].strip()


def tour_lines() -> list[str]:
    """The tour's shell lines, as a reader pastes them (comments and blanks left out)."""
    block = bash_block("### From the command line")
    return [ln for ln in block.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def test_tour_has_commands():
    lines = tour_lines()
    assert len(lines) >= 15
    assert all(ln.startswith("fluidopt ") for ln in lines)


def test_setup_line_puts_fluidopt_on_the_path():
    """The tour says bare `fluidopt`: the demo line must activate the venv it creates
    before it runs pip or fluidopt (which then resolve to .venv/bin)."""
    steps = [s.strip() for s in bash_block("Run the demo").split("&&")]
    assert steps[0] == "python3 -m venv .venv"
    activate = next((i for i, s in enumerate(steps) if s in (". .venv/bin/activate", "source .venv/bin/activate")),
                    None)
    assert activate is not None, f"the set-up line does not activate .venv: {steps}"
    bare = [i for i, s in enumerate(steps) if s.split()[0] in ("pip", "fluidopt", "python")]
    assert bare and min(bare) > activate
    assert steps[-1] == "fluidopt demo"


@pytest.mark.slow
def test_every_tour_line_runs_in_a_shell(tmp_path: Path):
    """Each line through bash in a copy of the checkout's layout, with the PATH an active
    venv gives (this interpreter's bin folder, where pip put `fluidopt`)."""
    (tmp_path / "examples").symlink_to(REPO / "examples")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for line in tour_lines():
        res = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert res.returncode == 0, f"{line!r} failed: {res.stderr}"
        if "--json" in line:
            json.loads(res.stdout)  # one JSON object on stdout


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


def test_cited_documents_are_in_the_repository():
    """Every .md file the README names exists in the checkout (no `system-model.md` that
    lives only outside it)."""
    cited = set(re.findall(r"[`(]((?:[\w.-]+/)*[\w.-]+\.md)[`)]", README))
    assert cited
    missing = sorted(c for c in cited if not (REPO / c).is_file())
    assert not missing, f"the README cites {missing}, which are not in the repository"
