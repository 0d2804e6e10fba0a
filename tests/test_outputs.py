"""Output files: checked before the work, written all together or not at all, and with
the mode an ordinary new file gets (the umask decides, not the temporary file's 0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from fluidopt.io import atomic_paths

SIM = ("simulate", "-w", "wait-p512d20", "-d", "llama2-7b-a100", "-p", "sarathi", "-n", "50")
SPEC = "workload: wait-p512d20\nworkload_params: {requests: 50}\ndeployment: llama2-7b-a100\npolicies: [fcfs]\n"


@pytest.fixture
def umask():
    """Set the umask for one test and restore it."""
    saved = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(saved)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_simulate_writes_no_records_when_the_events_path_is_bad(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = cli(*SIM, "-o", "out.parquet", "--events", str(tmp_path / "missing" / "ev.parquet"))
    assert res.code == 2 and "does not exist" in res.err
    assert list(tmp_path.iterdir()) == []


def test_all_outputs_or_none(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    with pytest.raises(KeyboardInterrupt):
        with atomic_paths(a, b) as (ta, tb):
            ta.write_text("x\n")
            raise KeyboardInterrupt  # e.g. Ctrl-C while the second file is written
    assert list(tmp_path.iterdir()) == []
    with atomic_paths(a, b) as (ta, tb):
        ta.write_text("a\n")
        tb.write_text("b\n")
    assert a.read_text() == "a\n" and b.read_text() == "b\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv"]  # no temporary left


@pytest.mark.parametrize("command", ["simulate", "calibrate", "sweep"])
def test_missing_output_folder_fails_before_the_work(cli, tmp_path, monkeypatch, command):
    """The executor and the calibration are never reached."""
    import fluidopt.calibrate
    import fluidopt.executor.engine

    def must_not_run(*args, **kwargs):
        raise AssertionError("the work ran before the output path was checked")

    monkeypatch.setattr(fluidopt.executor.engine, "simulate", must_not_run)
    monkeypatch.setattr(fluidopt.calibrate, "calibrate", must_not_run)
    out = tmp_path / "missing" / "out"
    if command == "simulate":
        res = cli(*SIM, "-o", f"{out}.parquet")
    elif command == "calibrate":
        res = cli("calibrate", "-w", "wait-p512d20", "-d", "llama2-7b-a100", "-o", f"{out}.json")
    else:
        spec = tmp_path / "s.yaml"
        spec.write_text(SPEC)
        res = cli("sweep", str(spec), "-o", f"{out}.parquet", "--workers", "1")
    assert res.code == 2, res.err
    assert "does not exist" in res.err and "Traceback" not in res.err


def outputs_of(cli, tmp_path: Path) -> list[Path]:
    """Run every kind of output-writing command once; return the files written."""
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    out.mkdir()
    for args in (
        ("instances", "generate", "kv-synthetic-1", "-o", out / "kv.parquet"),
        (*SIM, "-o", out / "records.csv", "--events", out / "events.parquet"),
        ("calibrate", "-w", "wait-p512d20", "-d", "llama2-7b-a100", "-o", out / "thresholds.json"),
        ("sweep", spec, "-o", out / "sweep.parquet", "--workers", "1"),
    ):
        res = cli(*args)
        assert res.code == 0, res.err
    from fluidopt.reproduce import NotebookEnv

    env = NotebookEnv("nb", quick=True, out=out, workers=None)
    env.save_table(pd.DataFrame({"x": [1]}), "table")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    env.save_figure(plt.figure(), "figure")
    return sorted(out.iterdir())


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_respect_the_umask(cli, tmp_path, umask, mask, expected):
    umask(mask)
    files = outputs_of(cli, tmp_path)
    assert [p.name for p in files] == ["events.parquet", "kv.parquet", "nb_figure.png", "nb_table.csv",
                                       "records.csv", "sweep.parquet", "thresholds.json"]
    assert {p.name: oct(mode(p)) for p in files} == {p.name: oct(expected) for p in files}
