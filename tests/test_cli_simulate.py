"""`fluidopt simulate`: every policy on azure-conv and on a [KV] synthetic instance."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fluidopt.executor.policy import POLICIES
from fluidopt.threshold_file import Segment, Thresholds, ThresholdType, save_thresholds

import fluidopt.executor.policies  # noqa: F401

REQUIRED = {
    "policy",
    "n_requests",
    "completed",
    "unfinished",
    "mean_latency",
    "p99_latency",
    "mean_ttft",
    "throughput_tokens_per_s",
    "tct",
    "evictions",
    "wasted_tokens",
    "peak_kv",
    "capacity",
}


@pytest.fixture(scope="module")
def threshold_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("thr")
    wait = Thresholds("wait", types=(ThresholdType("all", (1, 1_000_000), 3),))
    nested = Thresholds("nested-wait", segments=(Segment(1, 50, 4), Segment(51, 100_000, 2)))
    paths = {"wait": d / "wait.json", "nested-wait": d / "nested.json"}
    save_thresholds(wait, paths["wait"])
    save_thresholds(nested, paths["nested-wait"])
    return paths


def extra_args(name: str, files: dict[str, Path]) -> list[str]:
    if name in files:
        return ["--thresholds", str(files[name])]
    if name in ("amax", "amin"):
        return ["--interval-alpha", "0.5"]
    return []


#: Replay tools rather than scheduling policies: they need a schedule, given in Python.
NOT_FROM_CLI = {"fixed-schedule"}
CLI_POLICIES = sorted(set(POLICIES) - NOT_FROM_CLI)


@pytest.mark.parametrize("name", CLI_POLICIES)
def test_every_policy_on_azure_conv(cli, name: str, threshold_files: dict[str, Path]) -> None:
    res = cli(
        "simulate", "--json", "-w", "azure-conv", "-d", "llama2-7b-a100", "-p", name, "-n", "150",
        *extra_args(name, threshold_files),
    )
    assert res.code == 0, res.err
    data = res.json()
    assert REQUIRED <= set(data)
    assert data["policy"] == name and data["n_requests"] == 150
    assert data["completed"] + data["unfinished"] == 150
    assert data["peak_kv"] <= data["capacity"] == 118_784
    assert data["workload_digest"] and data["deployment"] == "llama2-7b-a100"


@pytest.mark.parametrize("name", CLI_POLICIES)
def test_every_policy_on_kv_synthetic(cli, name: str, threshold_files: dict[str, Path]) -> None:
    """[KV] synthetic instance in the unit model; C comes from the instance (47 tokens)."""
    res = cli("simulate", "--json", "-w", "kv-synthetic-1", "-d", "unit", "-p", name, *extra_args(name, threshold_files))
    assert res.code == 0, res.err
    data = res.json()
    assert REQUIRED <= set(data)
    assert data["capacity"] == 47 and data["peak_kv"] <= 47
    assert data["seed"] == 0


def test_unit_tct_is_sum_of_start_plus_output(cli, tmp_path: Path) -> None:
    """No evictions and no pauses under MC-SF with true lengths → c_i = start_i + o_i,
    so tct = Σ (start + o) read back from the records file."""
    out = tmp_path / "rec.parquet"
    res = cli("simulate", "--json", "-w", "kv-synthetic-1", "-d", "unit", "-p", "h-sf", "-o", str(out))
    assert res.code == 0, res.err
    rec = pd.read_parquet(out)
    assert len(rec) == res.json()["n_requests"]
    assert (rec["evictions"] == 0).all()
    assert res.json()["tct"] == float((rec["start"] + rec["output"]).sum())
    assert {"ttft", "latency", "tpot"} <= set(rec.columns)


def test_csv_workload_records_events_and_params(cli, tmp_path: Path) -> None:
    wl = tmp_path / "w.csv"
    wl.write_text("arrival,prompt,output\n0,2,3\n0,3,2\n1,2,2\n")
    rec, ev = tmp_path / "r.csv", tmp_path / "e.parquet"
    res = cli(
        "simulate", "--json", "-w", str(wl), "-d", "unit", "--capacity", "10", "-p", "vllm",
        "--param", "watermark=0.1", "-o", str(rec), "--events", str(ev),
    )
    assert res.code == 0, res.err
    data = res.json()
    assert data["params"]["watermark"] == 0.1
    # the vLLM hand example of test_baselines: completions 4, 2, 4
    assert pd.read_csv(rec)["completion"].tolist() == [4.0, 2.0, 4.0]
    assert pd.read_parquet(ev)["kv"].tolist() == [7, 9, 7, 9]
    assert data["tct"] == 10.0


def test_table_output(cli, tmp_path: Path) -> None:
    wl = tmp_path / "w.csv"
    wl.write_text("arrival,prompt,output\n0,2,3\n")
    res = cli("simulate", "-w", str(wl), "-d", "unit", "--capacity", "10", "-p", "fcfs")
    assert res.code == 0 and "mean_latency" in res.out and "fcfs" in res.out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-p", "no-such-policy", "--capacity", "10"], "unknown policy"),
        (["-p", "fcfs"], "capacity"),
        (["-p", "fcfs", "--capacity", "3"], "--capacity 3 is too small for"),
        (["-p", "fcfs", "--capacity", "10", "-o", "x.txt"], ".parquet or .csv"),
        (["-p", "fcfs", "--capacity", "10", "--param", "oops"], "KEY=VALUE"),
        (["-p", "vllm", "--capacity", "10", "--param", "watermark=2"], "watermark"),
        # parameters in the user's terms: the valid ones listed with their types, exit 2
        (["-p", "wait", "--capacity", "10"], "-p wait needs --thresholds FILE"),
        (["-p", "nested-wait", "--capacity", "10"], "-p nested-wait needs --thresholds FILE"),
        (["-p", "sarathi", "--capacity", "10", "--param", "chunksize=256"],
         "policy 'sarathi' has no parameter 'chunksize' (did you mean chunk_size?)"),
        (["-p", "sarathi", "--capacity", "10", "--param", "chunk_size=abc"],
         "parameter chunk_size must be an integer (got 'abc')"),
        (["-p", "sarathi", "--capacity", "10", "--param", "chunk_size=abc"], "watermark (a number, default 0.01)"),
        (["-p", "mc-sf", "--capacity", "10", "--param", "alpha=0.1"], "parameters of policy 'mc-sf': first_fit (true or false, default false)"),
        (["-p", "vllm", "--capacity", "10", "--param", "max_batch=true"], "max_batch must be an integer"),
        (["-p", "nested-wait", "--capacity", "10", "--param", "segments=[[8,2],[19"], "not a valid JSON list"),
    ],
)
def test_errors_are_one_line_exit_2(cli, tmp_path: Path, args: list[str], message: str) -> None:
    wl = tmp_path / "w.csv"
    wl.write_text("arrival,prompt,output\n0,2,3\n")
    res = cli("simulate", "-w", str(wl), "-d", "unit", *args)
    assert res.code == 2, res.err
    assert message in res.err and res.err.count("\n") == 1


def test_failed_run_leaves_no_output_file(cli, tmp_path: Path) -> None:
    wl = tmp_path / "w.csv"
    wl.write_text("arrival,prompt,output\n0,2,3\n")
    out = tmp_path / "r.parquet"
    res = cli("simulate", "-w", str(wl), "-d", "unit", "--capacity", "4", "-p", "fcfs", "-o", str(out))
    assert res.code == 2 and not out.exists()
    assert list(tmp_path.iterdir()) == [wl]


def test_json_parameters(cli, tmp_path: Path) -> None:
    """List and mapping parameters on the command line: Nested WAIT segments, WAIT thresholds."""
    wl = tmp_path / "w.csv"
    wl.write_text("arrival,prompt,output\n0,2,3\n0,2,3\n")
    res = cli("simulate", "-w", str(wl), "-d", "unit", "--capacity", "20", "-p", "nested-wait",
              "--param", "segments=[[2,2],[9,1]]", "--json")
    assert res.code == 0, res.err
    assert res.json()["params"]["segments"] == [[2, 2], [9, 1]]
    typed = tmp_path / "t.csv"
    typed.write_text("arrival,prompt,output,type\n0,2,3,a\n0,2,3,a\n")
    res = cli("simulate", "-w", str(typed), "-d", "unit", "--capacity", "20", "-p", "wait",
              "--param", 'thresholds={"a": 2}', "--json")
    assert res.code == 0, res.err
    assert res.json()["completed"] == 2


@pytest.mark.parametrize(
    ("args", "blamed"),
    [
        (["-w", "wait-p512d20", "-n", "200", "--rate", "-5"], "Invalid value for '--rate'"),
        (["-w", "wait-p512d20", "-n", "200", "--capacity", "100"], "--capacity 100 is too small"),
        (["-w", "mooncake-conversation"], "the capacity of deployment llama2-7b-a100 118,784 is too small"),
    ],
)
def test_errors_blame_the_option_typed(cli, args: list[str], blamed: str) -> None:
    """Not the workload file's "row 1, field output"."""
    res = cli("simulate", "-d", "llama2-7b-a100", "-p", "sarathi", *args)
    assert res.code == 2 and res.err.count("\n") == 1, res.err
    assert blamed in res.err and ": row " not in res.err
