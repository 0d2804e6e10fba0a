"""CLI: fluid, fluid-lp, calibrate, plan (JSON fields, tables, exit codes)."""

from __future__ import annotations

import json

import pytest

LIN = ("--d0", "0.5", "--d1", "0.01", "--capacity", "60")


def test_fluid_json_fields_by_hand(cli) -> None:
    """Types 2:2:2 and 4:1:3 on d0 = 0.5, d1 = 0.01, C = 60 (see tests/test_fluid.py)."""
    res = cli("fluid", "--types", "2:2:2,4:1:3", *LIN, "--json")
    assert res.code == 0, res.err
    d = res.json()
    assert d["stable"] is True and d["delta_t"] == pytest.approx(1.0) and d["kv_in_use"] == pytest.approx(50)
    assert d["throughput_tokens_per_s"] == pytest.approx(16) and d["max_stable_scale"] == pytest.approx(12 / 11)
    assert [t["rate"] for t in d["types"]] == [2, 4]
    assert [t["n_per_stage"] for t in d["types"]] == pytest.approx([2, 4])


def test_fluid_table_and_deployment(cli) -> None:
    res = cli("fluid", "--types", "22:512:20", "--deployment", "llama2-7b-a100")
    assert res.code == 0 and "fluid benchmark" in res.out and "p512d20" in res.out


def test_fluid_workload(cli) -> None:
    res = cli("fluid", "--workload", "wait-two-type", "-d", "llama2-7b-a100", "--json")
    assert res.code == 0, res.err
    d = res.json()
    assert [t["label"] for t in d["types"]] == ["d20", "d50"] and d["inputs"]["types_from"] == "binning"


def test_fluid_lp_json(cli) -> None:
    """λ = 10 of 2:2:2 on C = 60 → x = 1/(0.5·7/60 + 0.07) = 7.792."""
    res = cli("fluid-lp", "--types", "10:2:2", *LIN, "--json")
    assert res.code == 0, res.err
    d = res.json()
    assert d["status"] == "optimal" and d["admitted_rates"][0] == pytest.approx(1 / (0.5 * 7 / 60 + 0.07))
    assert d["throughput_tokens_per_s"] == pytest.approx(2 / (0.5 * 7 / 60 + 0.07))
    assert d["duals"]["capacity"] > 0
    res2 = cli("fluid-lp", "--types", "10:2:2,4:1:3", *LIN, "--latency-target", "-,4", "--interface", "cvxpy", "--json")
    assert res2.code == 0 and "latency[1]" in res2.json()["duals"]


def test_calibrate_and_plan(cli, tmp_path) -> None:
    out = tmp_path / "th.json"
    res = cli("calibrate", "-w", "wait-p512d20", "-d", "llama2-7b-a100", "--policy", "wait", "-o", out, "--json")
    assert res.code == 0, res.err
    data = json.loads(out.read_text())
    assert data["schema"] == "fluidopt.thresholds/1" and data["types"][0]["output_range"] == [20, None]
    res = cli("plan", "--types", "40:512:20", "--gpus", "llama2-7b-a100:2.0", "--json")
    assert res.code == 0 and res.json()["total_gpus"] >= 1


@pytest.mark.parametrize(
    "args",
    [
        ("fluid", "--types", "1:2", *LIN),
        ("fluid", "--types", "1:2:2", "--d0", "0.5"),
        ("fluid", "--types", "1:2:2"),
        ("fluid", "--types", "1:2:2", "--workload", "wait-p512d20", *LIN),
        ("fluid-lp", "--types", "1:2:2", *LIN, "--fairness", "2"),
        ("plan", "--types", "100:2:2", "--gpus", "llama2-7b-a100:1:1", "--latency-target", "0.001"),
        ("calibrate", "-w", "wait-p512d20", "-d", "llama2-7b-a100", "--capacity", "100", "-o", "/tmp/x.json"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli, args) -> None:
    res = cli(*args)
    assert res.code == 2, (res.out, res.err)
    assert res.err.count("\n") == 1 and res.err.startswith("fluidopt: error:")


def test_calibrate_outside_region_points_to_lp(cli, tmp_path) -> None:
    out = tmp_path / "th.json"
    res = cli("calibrate", "-w", "wait-p512d20", "-d", "llama2-7b-a100", "-o", out, "--seed", "1")
    assert res.code == 0
    res = cli("calibrate", "-w", "azure-conv", "-d", "llama2-7b-a100", "-o", out)
    assert res.code == 2 and "fluid LP admits rates" in res.err
    # Nested WAIT: the base memory + buffer (80,625 tokens at these rates) does not fit 30,000
    res = cli("calibrate", "-w", "wait-two-type", "-d", "llama2-7b-a100", "--policy", "nested-wait",
              "--capacity", "30000", "-o", out)
    assert res.code == 2 and "buffer" in res.err and "fluid LP admits rates" in res.err


@pytest.mark.parametrize(
    "args",
    [
        ("fluid-lp", "--types", "10:2:2", *LIN, "--interface", "pyomo"),
        ("fluid-lp", "--types", "10:2:2", *LIN, "--interface", "cvxpy"),
        ("solve", "-w", "kv-synthetic-1", "--requests", "4", "--backend", "highs"),
    ],
    ids=["pyomo", "cvxpy", "highspy"],
)
def test_json_stdout_of_a_fresh_process_is_one_object(args) -> None:
    """HiGHS ≥ 1.16 writes a banner to file descriptor 1 at a process's first ``Highs``;
    in a fresh process (not the in-process runner) stdout must still be one JSON object."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "fluidopt", *args, "--json"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "optimal"
