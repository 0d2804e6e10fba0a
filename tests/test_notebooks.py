"""Every reproduction notebook runs top to bottom in quick mode and writes its outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluidopt.errors import InputError
from fluidopt.reproduce import notebook_names, run_notebook


@pytest.mark.slow
@pytest.mark.parametrize("name", notebook_names())
def test_notebook_runs_in_quick_mode(name: str, tmp_path: Path):
    run = run_notebook(name, quick=True, out=tmp_path)
    pngs = [o for o in run["outputs"] if o.endswith(".png")]
    csvs = [o for o in run["outputs"] if o.endswith(".csv")]
    assert pngs and csvs, f"{name} wrote no figure or no table: {run['outputs']}"
    for out in pngs:
        assert (tmp_path / out).read_bytes()[:4] == b"\x89PNG"


def test_unknown_notebook_is_an_input_error(tmp_path: Path):
    with pytest.raises(InputError, match="unknown notebook"):
        run_notebook("no-such-notebook", quick=True, out=tmp_path)


def test_figures_list_and_unknown_name(cli):
    listed = cli("figures", "list", "--json")
    assert listed.code == 0 and listed.json()["notebooks"] == notebook_names()
    bad = cli("figures", "no-such-notebook", "--quick")
    assert bad.code == 2 and "unknown notebook" in bad.err
