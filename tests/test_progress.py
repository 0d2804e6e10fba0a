"""Long runs report progress when stderr is not a terminal: rate-limited status lines."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import fluidopt.cli.progress as progress
from fluidopt.cli.progress import StatusLine


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_status_lines_are_rate_limited() -> None:
    clock, out = FakeClock(), io.StringIO()
    status = StatusLine("simulate", "requests", stream=out, clock=clock)
    for t, done in ((1, 10), (9.9, 50)):
        clock.now = 100 + t
        status.update(done, 200)
    assert out.getvalue() == ""  # short runs print nothing
    clock.now = 110
    status(100, 200, 12.5)
    assert out.getvalue() == (
        "fluidopt: simulate: 100 of 200 requests finished, 10 s elapsed, about 10 s left, simulated time 12.5\n"
    )
    clock.now = 139
    status.update(150, 200)
    assert out.getvalue().count("\n") == 1  # at most one line per EVERY_S
    clock.now = 140
    status.update(150, 200)
    assert out.getvalue().count("\n") == 2 and "150 of 200" in out.getvalue().splitlines()[-1]


@pytest.fixture
def eager(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every progress report prints (instead of from 10 s on, every 30 s)."""
    monkeypatch.setattr(progress, "FIRST_S", 0.0)
    monkeypatch.setattr(progress, "EVERY_S", 0.0)


def test_simulate_off_a_terminal_prints_status_lines(cli, eager) -> None:
    res = cli("simulate", "-w", "wait-p512d20", "-d", "llama2-7b-a100", "-p", "sarathi", "-n", "3000", "--json")
    assert res.code == 0
    lines = res.err.splitlines()
    assert lines and all(ln.startswith("fluidopt: simulate: ") and "of 3,000 requests finished" in ln for ln in lines)
    res.json()  # stdout still holds one JSON object


def test_sweep_off_a_terminal_prints_status_lines(cli, eager, tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("workload: kv-synthetic-1\ndeployment: unit\npolicies: [fcfs, mc-sf]\nseeds: 2\n")
    res = cli("sweep", spec, "--workers", "1")
    assert res.code == 0, res.err
    assert "fluidopt: sweep: 4 of 4 cells finished" in res.err
