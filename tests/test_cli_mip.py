"""`fluidopt solve` and `fluidopt score` on instances small enough to close in a second."""

from __future__ import annotations

import pandas as pd
import pytest

@pytest.mark.parametrize("backend", ["cpsat", "highs"])
def test_solve_json_reports_optimum_and_starts(cli, small, backend) -> None:
    res = cli("solve", "--workload", small, "--capacity", 5, "--backend", backend, "--json")
    assert res.code == 0, res.err
    out = res.json()
    assert out["backend"] == backend
    assert out["status"] == "optimal"
    assert out["objective_tct"] == 9 and out["best_bound"] == 9 and out["gap"] == 0
    assert out["n_requests"] == 3
    assert sorted(out["starts"].values()) == [0, 1, 2]
    assert set(out["starts"]) == {"10", "11", "12"}
    assert out["check"]["accepted"] and out["check"]["tct_executor"] == 9
    assert out["seconds"] >= 0


def test_solve_table_export_and_schedule(cli, small, tmp_path) -> None:
    mps, sched = tmp_path / "m.mps", tmp_path / "s.csv"
    res = cli("solve", "-w", small, "-C", 5, "--export", mps, "--schedule", sched, "--builder", "pyomo",
              "--backend", "highs")
    assert res.code == 0, res.err
    assert "optimal" in res.out and "accepted" in res.out
    assert mps.read_text().startswith("*") or "ROWS" in mps.read_text()
    frame = pd.read_csv(sched)
    assert (frame["completion"] - frame["start"] == frame["output"]).all()
    assert frame["completion"].sum() == 9


@pytest.mark.parametrize("backend", ["cpsat", "highs"])
def test_solve_time_limit_is_not_an_error(cli, backend) -> None:
    res = cli("solve", "-w", "kv-synthetic-1", "-n", "10", "--time-limit", "1", "--backend", backend, "--json")
    assert res.code == 0, res.err
    out = res.json()
    assert out["status"] == "time_limit"
    assert out["best_bound"] < out["objective_tct"] and out["gap"] > 0
    assert out["check"]["accepted"]


@pytest.mark.parametrize(
    "args,needle",
    [
        (("-w", "no-such-workload", "-C", "5"), "unknown workload"),
        (("-C", "2"), "more than the capacity 2"),
        (("-C", "5", "--export", "model.txt"), ".mps or .lp"),
    ],
)
def test_solve_bad_input_is_one_line_exit_2(cli, small, args, needle) -> None:
    if "-w" not in args:
        args = ("-w", small, *args)
    res = cli("solve", *args)
    assert res.code == 2
    assert needle in res.err
    assert len(res.err.strip().splitlines()) == 1


def test_score_reports_ratios_to_the_optimum(cli, small) -> None:
    res = cli("score", "-w", small, "-C", 6, "--policies", "mc-sf,h-sf,sorted-f,fcfs,amax,amin", "--json")
    assert res.code == 0, res.err
    out = res.json()
    assert out["reference_kind"] == "optimum"
    assert out["intervals_added"] == {"alpha": 0.5, "seed": 0}
    for name, row in out["policies"].items():
        if row["tct"] is not None:
            assert row["ratio"] == row["tct"] / out["objective_tct"] >= 1.0, name
    assert out["policies"]["h-sf"]["tct"] is not None


def test_score_table_and_unknown_policy(cli, small) -> None:
    res = cli("score", "-w", small, "-C", 5, "--policies", "mc-sf")
    assert res.code == 0 and "optimum proven" in res.out and "× OPT ≥" in res.out
    bad = cli("score", "-w", small, "-C", 5, "--policies", "nope")
    assert bad.code == 2 and "unknown policy" in bad.err


def test_gaps_benchmark_quick_mode(tmp_path) -> None:
    """The certified-gaps script in quick mode: both variants on every instance, every
    schedule replayed, gaps in [0, 1] and the bound below the schedule."""
    import subprocess
    import sys

    from conftest import REPO

    out = tmp_path / "gaps.csv"
    script = REPO / "benchmarks" / "kv_synthetic" / "gaps.py"
    proc = subprocess.run([sys.executable, str(script), "--quick", "--out", str(out)], capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "| n | variant |" in proc.stdout
    frame = pd.read_csv(out)
    assert len(frame) == 8 and set(frame["variant"]) == {"current", "previous"}
    assert frame["replay_accepted"].all()
    assert (frame["best_bound"] <= frame["objective_tct"]).all()
    assert frame["gap_latency"].between(0, 1).all()
    # the same instances in both variants
    pairs = {v: sorted(zip(g["arrival_model"], g["seed"])) for v, g in frame.groupby("variant")}
    assert pairs["current"] == pairs["previous"]


def test_kv_benchmark_quick_mode(tmp_path) -> None:
    """The [KV] table script in quick mode: every instance scored, none dropped."""
    import subprocess
    import sys

    from conftest import REPO

    out = tmp_path / "quick.csv"
    script = REPO / "benchmarks" / "kv_synthetic" / "run.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--out", str(out)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "| arrival model |" in proc.stdout
    frame = pd.read_csv(out)
    assert len(frame) == 4 and set(frame["arrival_model"]) == {1, 2}
    assert frame["replay_accepted"].all()
    assert (frame["ratio"] >= 1.0).all()
    assert (frame["best_bound"] <= frame["objective_tct"]).all()


def test_solve_with_a_loose_gap_stops_early_and_says_so(cli) -> None:
    res = cli("solve", "-w", "kv-synthetic-1", "-n", "8", "--gap", "0.5", "--time-limit", "30", "--json")
    assert res.code == 0, res.err
    out = res.json()
    assert out["status"] in ("gap_limit", "optimal")
    if out["status"] == "gap_limit":
        assert 0 < out["gap"] <= 0.5


def test_bounds_never_exceed_the_optimum(cli, small) -> None:
    optimum = cli("solve", "-w", small, "-C", "5", "--json").json()["objective_tct"]
    assert optimum == 9  # hand-worked above
    res = cli("bounds", "-w", small, "-C", "5", "--json")
    assert res.code == 0, res.err
    b = res.json()
    assert b["best"] == max(b["trivial"], b["volume"], b["lp"], b["paths"])
    for name in ("trivial", "volume", "lp", "paths"):
        assert b[name] <= optimum + 1e-9, name


def test_bounds_without_capacity_is_one_line(cli, small) -> None:
    res = cli("bounds", "-w", small)
    assert res.code == 2 and res.err.count("\n") == 1 and "capacity" in res.err


def test_score_bracket_when_the_optimum_is_proven(cli, small) -> None:
    """C = 5: optimum Σ c = 9, arrivals 0, so the best latency is 9 and both ends of
    every bracket are the policy's latency over 9."""
    res = cli("score", "-w", small, "-C", 5, "--policies", "mc-sf,fcfs", "--json")
    out = res.json()
    assert out["reference_kind"] == "optimum" and out["best_latency"] == 9 and out["bound_latency"] == 9
    for row in out["policies"].values():
        assert row["ratio_to_best"] == row["ratio_to_bound"] == row["latency"] / 9


def test_score_bracket_when_the_optimum_is_open(cli) -> None:
    """A 1 s budget on 14 Poisson requests: the bracket is [policy/best, policy/bound] on
    latency, the best schedule is at most every policy's, and the bound below it."""
    res = cli("score", "-w", "kv-synthetic-2", "-n", "14", "--seed", "3", "--time-limit", "1",
              "--policies", "mc-sf,sorted-f,fcfs", "--json")
    assert res.code == 0, res.err
    out = res.json()
    assert out["bound_latency"] <= out["best_latency"]
    arrivals = out["best_tct"] - out["best_latency"]
    assert arrivals > 0  # Poisson arrivals: latency and Σ c differ by Σ a
    for name, row in out["policies"].items():
        assert row["tct"] >= out["best_tct"], name
        assert row["latency"] == row["tct"] - arrivals
        assert 1.0 <= row["ratio_to_best"] <= row["ratio_to_bound"], name
        assert row["ratio_to_bound"] == row["latency"] / out["bound_latency"]
    if out["reference_kind"] == "bound":
        assert out["gap_latency"] == (out["best_latency"] - out["bound_latency"]) / out["best_latency"]


@pytest.mark.parametrize("option", ["--time-limit", "--gap"])
@pytest.mark.parametrize("value", ["-1", "0"])
def test_time_limit_and_gap_must_be_positive(cli, small, option, value) -> None:
    for command in ("solve", "score"):
        res = cli(command, "-w", small, "-C", 5, option, value)
        assert res.code == 2, (command, res.err)
        assert option in res.err and len(res.err.strip().splitlines()) <= 2


def test_solve_and_score_state_their_default_time_limit(cli) -> None:
    from fluidopt.cli.mip import DEFAULT_TIME_LIMIT

    for command in ("solve", "score"):
        res = cli(command, "--help")
        assert res.code == 0
        assert f"default: {DEFAULT_TIME_LIMIT:g}" in " ".join(res.out.split()), command


def test_solve_reports_the_gap_on_total_latency(cli) -> None:
    res = cli("solve", "-w", "kv-synthetic-2", "-n", "12", "--seed", "5", "--time-limit", "1", "--json")
    out = res.json()
    arrivals = out["objective_tct"] - out["objective_latency"]
    assert arrivals > 0 and out["bound_latency"] == out["best_bound"] - arrivals
    assert out["gap_latency"] >= out["gap"]  # the same absolute gap on a smaller total


def test_no_paths_skips_the_path_bound(cli) -> None:
    on = cli("solve", "-w", "kv-synthetic-1", "-n", "12", "--time-limit", "4", "--json")
    off = cli("solve", "-w", "kv-synthetic-1", "-n", "12", "--time-limit", "4", "--no-paths", "--json")
    assert on.code == 0 and off.code == 0, (on.err, off.err)
    assert on.json()["path_bound_status"] != "skipped" and on.json()["path_bound"] is not None
    assert off.json()["path_bound_status"] == "skipped" and off.json()["path_bound"] is None
    score = cli("score", "-w", "kv-synthetic-1", "-n", "8", "--time-limit", "3", "--no-paths", "-p", "mc-sf", "--json")
    assert score.code == 0, score.err


def test_bound_share_reaches_the_bound_stage(cli, monkeypatch) -> None:
    import fluidopt.completion.solve as solve

    shares = []
    real = solve.bound_stage

    def spy(*args, **kw):
        shares.append(kw["share"])
        return real(*args, **kw)

    monkeypatch.setattr(solve, "bound_stage", spy)
    for command in ("solve", "score"):
        res = cli(command, "-w", "kv-synthetic-1", "-n", "6", "--time-limit", "2", "--bound-share", "0.75", "--json")
        assert res.code == 0, res.err
    assert cli("solve", "-w", "kv-synthetic-1", "-n", "6", "--time-limit", "2", "--json").code == 0
    assert shares == [0.75, 0.75, solve.BOUND_SHARE]  # the command line's default is the library's
    bad = cli("solve", "-w", "kv-synthetic-1", "-n", "6", "--bound-share", "1")
    assert bad.code == 2 and "--bound-share" in bad.err
