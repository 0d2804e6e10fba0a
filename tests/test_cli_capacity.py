"""CLI: `capacity`, `simulate --slo` and `plan --capacities` (JSON fields, tables, exit codes)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

SMALL = ("-w", "wait-p512d20", "-d", "llama2-7b-a100", "-n", "300")
FAST = ("--replications", "1", "--precision", "0.05", "--workers", "1")


@pytest.mark.parametrize(
    ("slo", "message"),
    [
        ("p95_ttft<=2", "unknown metric 'p95_ttft'"),
        ("p99_ttft", "no comparator"),
        ("p99_ttft<=-1", "finite number ≥ 0"),
    ],
)
@pytest.mark.parametrize("command", ["capacity", "simulate"])
def test_bad_slo_is_one_line_and_exit_2(cli, command, slo, message) -> None:
    res = cli(command, *SMALL, "-p", "sarathi", "--slo", slo)
    assert res.code == 2 and res.out == ""
    assert res.err.count("\n") == 1 and res.err.startswith("fluidopt: error: SLO") and message in res.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-p", "nosuch"), "unknown policy"),
        (("-p", "sarathi", "--param", "token_budget=3"), "POLICY.KEY"),
        (("-p", "sarathi", "--precision", "0"), "precision"),
        (("-p", "sarathi", "--replications", "0"), "replications"),
        (("-p", "sarathi", "-o", "out.txt"), ".json, .csv or .parquet"),
    ],
)
def test_bad_capacity_arguments(cli, args, message) -> None:
    res = cli("capacity", *SMALL, "--slo", "p99_ttft<=1", *args)
    assert res.code == 2 and res.err.count("\n") == 1 and message in res.err


def test_unit_deployment_and_trace_windows_are_explained(cli) -> None:
    res = cli("capacity", "-w", "wait-p512d20", "-d", "unit", "-p", "sarathi", "--slo", "p99_ttft<=1")
    assert res.code == 2 and "not unit time" in res.err
    res = cli("capacity", "-w", "azure-code", "-d", "llama2-7b-a100", "-p", "sarathi", "-n", "5000",
              "--replications", "2", "--slo", "p99_ttft<=1")
    assert res.code == 2 and "consecutive windows" in res.err


def test_capacity_json_table_and_output_file(cli, tmp_path) -> None:
    out = tmp_path / "cap.csv"
    res = cli("capacity", *SMALL, "-p", "sarathi", "--slo", "p99_ttft<=0.5,p99_tpot<=0.05", *FAST, "-o", out,
              "--json")
    assert res.code == 0, res.err
    d = res.json()
    for key in ("max_rate", "slo", "fluid_limit", "evaluations", "policies", "probes"):
        assert key in d
    pol = d["policies"][0]
    assert d["max_rate"] == {"sarathi": pol["max_rate"]} and d["slo"] == "p99_ttft<=0.5,p99_tpot<=0.05"
    assert pol["metrics"]["slo_met"] is True and pol["metrics"]["p99_ttft"] <= 0.5
    assert pol["metrics"]["goodput_requests_per_s"] > 0 and 0.99 <= pol["metrics"]["slo_attainment"] <= 1
    assert d["evaluations"] == len(d["probes"]) == pol["evaluations"] > 2
    assert d["deadlines"] == {"ttft": ["p99_ttft<=0.5"], "tpot": ["p99_tpot<=0.05"]}
    table = pd.read_csv(out)
    assert list(table["policy"]) == ["sarathi"] and table["max_rate"][0] == pol["max_rate"]
    saved = tmp_path / "cap.json"
    text = cli("capacity", *SMALL, "-p", "sarathi", "--slo", "p99_ttft<=0.5,p99_tpot<=0.05", *FAST, "-o", saved)
    assert text.code == 0 and "fluid limit" in text.out and "check sarathi: fluidopt simulate" in text.out
    assert json.loads(saved.read_text())["max_rate"] == d["max_rate"]


def test_simulate_slo_summary_and_records(cli, tmp_path) -> None:
    rec = tmp_path / "rec.csv"
    res = cli("simulate", *SMALL, "-p", "sarathi", "--rate", "10", "--slo", "p99_ttft<=0.5,p99_tpot<=0.05",
              "-o", rec, "--json")
    assert res.code == 0, res.err
    d = res.json()
    frame = pd.read_csv(rec)
    assert d["slo_attainment"] == pytest.approx(frame["meets_slo"].mean())
    assert d["goodput_tokens_per_s"] <= d["throughput_tokens_per_s"] + 1e-9
    assert [t["term"] for t in d["slo_terms"]] == ["p99_ttft<=0.5", "p99_tpot<=0.05"]
    table = cli("simulate", *SMALL, "-p", "sarathi", "--rate", "10", "--slo", "p99_ttft<=0.001")
    assert table.code == 0 and "violated" in table.out


def _capacity_file(path, *, workload="azure-conv", deployment="llama2-7b-a100", capacity=118_784, fractions=(0.5,)):
    """A capacity-search result with the fields plan reads: sarathi sustains the given
    fractions of its fluid limit (10/s) on each replication, vllm half as much."""
    reps = lambda scale: [{"max_rate": 10 * f * scale, "fluid_limit": 10.0} for f in fractions]  # noqa: E731
    data = {"workload": workload, "deployment": deployment, "capacity": capacity, "slo": "p99_ttft<=2",
            "fluid_limit": 10.0, "requests": 1000, "replications": len(fractions),
            "policies": [{"policy": "sarathi", "name": "sarathi", "replications": reps(1.0)},
                         {"policy": "vllm", "name": "vllm", "replications": reps(0.5)}]}
    path.write_text(json.dumps(data))
    return path


def test_plan_with_simulated_capacities(cli, tmp_path) -> None:
    """Fluid: azure-conv needs 2 GPUs (load 0.51 each). Derated to the smallest sustained
    fraction 0.4 (replications 0.5 and 0.4) one GPU carries 0.4 of its fluid limit,
    so ⌈(1/0.89)/0.4⌉ = 3 GPUs (the whole trace runs at 1.12× one GPU's fluid limit)."""
    fluid = cli("plan", "-w", "azure-conv", "--gpus", "llama2-7b-a100:2.0", "--json")
    assert fluid.code == 0 and fluid.json()["capacity_source"] == "fluid" and fluid.json()["total_gpus"] == 2
    cap = _capacity_file(tmp_path / "cap.json", fractions=(0.5, 0.4))
    res = cli("plan", "-w", "azure-conv", "--gpus", "llama2-7b-a100:2.0", "--capacities", cap, "--json")
    assert res.code == 0, res.err
    d = res.json()
    assert d["capacity_source"] == "simulated" and d["total_gpus"] == 3
    used = d["simulated_capacities"][0]
    assert used["policy"] == "sarathi" and used["derate"] == pytest.approx(0.4) and d["gpus"][0]["derate"] == 0.4
    named = cli("plan", "-w", "azure-conv", "--gpus", "llama2-7b-a100:2.0", "--capacities", cap,
                "--capacity-policy", "vllm", "--json")
    assert named.json()["simulated_capacities"][0]["derate"] == pytest.approx(0.2) and named.json()["total_gpus"] == 6


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        (dict(workload="azure-code"), (), "capacity search on 'azure-code'"),
        (dict(capacity=1000), (), "searched with C = 1,000"),
        (dict(deployment="llama2-70b-2xa100"), (), "no capacity search for GPU kind"),
        ({}, ("--capacity-policy", "wait"), "no policy 'wait'"),
    ],
)
def test_plan_capacities_errors(cli, tmp_path, make, args, message) -> None:
    cap = _capacity_file(tmp_path / "cap.json", **make)
    res = cli("plan", "-w", "azure-conv", "--gpus", "llama2-7b-a100:2.0", "--capacities", cap, *args)
    assert res.code == 2 and res.err.count("\n") == 1 and message in res.err


def test_plan_capacities_need_a_workload(cli, tmp_path) -> None:
    cap = _capacity_file(tmp_path / "cap.json")
    res = cli("plan", "--types", "1:512:20", "--gpus", "llama2-7b-a100:2.0", "--capacities", cap)
    assert res.code == 2 and "needs --workload" in res.err
    res = cli("plan", "-w", "azure-conv", "--gpus", "llama2-7b-a100:2.0", "--capacity-policy", "vllm")
    assert res.code == 2 and "needs --capacities" in res.err
    other = _capacity_file(tmp_path / "70b.json", deployment="llama2-70b-2xa100", capacity=16_492)
    data = json.loads(other.read_text())
    other.write_text(json.dumps({**data, "slo": "p99_ttft<=5"}))
    res = cli("plan", "-w", "azure-conv", "--gpus", "llama2-7b-a100:2.0,llama2-70b-2xa100:5", "--capacities",
              f"{cap},{other}")
    assert res.code == 2 and "different SLOs" in res.err
    other.write_text(json.dumps(data))
    res = cli("plan", "-w", "azure-conv", "--gpus", "llama2-7b-a100:2.0,llama2-70b-2xa100:5", "--capacities",
              f"{cap},{other}", "--json")
    assert res.code == 0 and [u["kind"] for u in res.json()["simulated_capacities"]] == [
        "llama2-7b-a100", "llama2-70b-2xa100"]
    (tmp_path / "bad.json").write_text("{")
    res = cli("plan", "-w", "azure-conv", "--gpus", "llama2-7b-a100:2.0", "--capacities", tmp_path / "bad.json")
    assert res.code == 2 and "not JSON" in res.err
