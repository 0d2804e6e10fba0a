"""Long runs report progress when stderr is not a terminal: rate-limited status lines."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import fluidopt.cli.progress as progress
from fluidopt.cli.progress import LiveLine, StatusLine, solve_status


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


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_line_rewrites_in_place_on_a_terminal_and_erases_itself() -> None:
    stream, clock = _Tty(), FakeClock()
    with LiveLine("solve", stream=stream, clock=clock) as line:
        line.update("first")
        clock.now += 0.1
        line.update("second")  # within 0.2 s of the first: skipped
        clock.now += 0.4
        line.update("third!")
    text = stream.getvalue()
    assert text.startswith("\rfirst") and "second" not in text and "\rthird!" in text
    assert text.endswith("\r" + " " * len("third!") + "\r")
    assert "\n" not in text


def test_live_line_prints_whole_lines_from_10_s_every_30_s_elsewhere() -> None:
    stream, clock = io.StringIO(), FakeClock()
    line = LiveLine("solve", stream=stream, clock=clock)
    for t, text in [(1.0, "a"), (10.0, "b"), (20.0, "c"), (40.0, "d")]:
        clock.now = 100.0 + t
        line.update(text)
    line.close()
    assert stream.getvalue() == "fluidopt: solve: b\nfluidopt: solve: d\n"


def test_solve_status_text() -> None:
    assert solve_status("search", 12.34, 1000.0, 900.0) == "  12.3 s · search · best Σc 1,000 · bound 900 · gap 10.00%"
    assert solve_status("prepare", 0.0, None, None) == "   0.0 s · prepare"
