"""Run diagnostics: a thrashing run is reported, not left to the summary numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

# 30 requests (arrival s, prompt, output tokens) on which Nested WAIT with segments
# [(8, 2), (19, 2)] and C = 172 thrashes on llama2-7b-a100: residents paused at the
# boundary hold 146 tokens, so a re-admitted request of 25 + 9 tokens is evicted after
# two iterations, over and over until the arrivals end; FCFS runs it without evictions.
THRASH = (
    "arrival,prompt,output\n"
    "2.9496,15,12\n" "3.7439,13,14\n" "4.9149,29,18\n" "6.8037,14,4\n" "7.9229,13,1\n" "9.2874,2,1\n"
    "12.8802,38,9\n" "15.6333,33,2\n" "16.1529,29,11\n" "17.3551,23,3\n" "17.7109,18,6\n" "18.2820,17,7\n"
    "21.7922,9,19\n" "22.7017,25,9\n" "25.1347,1,12\n" "25.2741,6,5\n" "26.6115,31,9\n" "27.4973,11,5\n"
    "30.8221,10,3\n" "34.8521,16,16\n" "37.2625,1,5\n" "39.5437,17,4\n" "41.9069,14,15\n" "42.1179,25,13\n"
    "47.3956,7,10\n" "47.5003,13,12\n" "54.1928,2,13\n" "54.5647,24,13\n" "56.4544,10,14\n" "58.3895,20,6\n"
)
ARGS = ("-d", "llama2-7b-a100", "--capacity", "172")
NESTED = ("-p", "nested-wait", "--param", "segments=[[8,2],[19,2]]")


@pytest.fixture
def workload(tmp_path: Path) -> Path:
    path = tmp_path / "thrash.csv"
    path.write_text(THRASH)
    return path


def test_thrash_is_reported(cli, workload: Path) -> None:
    res = cli("simulate", "-w", workload, *ARGS, *NESTED, "--json")
    assert res.code == 0, res.err
    data = res.json()
    assert data["evictions"] > 1000  # the pathology itself
    warning = res.err.strip()
    assert re.match(r"fluidopt: warning: nested-wait thrashed: request \d+ was evicted [\d,]+ times", warning)
    assert "paused at segment boundaries" in warning and warning.count("\n") == 0
    assert data["warnings"] == [warning.removeprefix("fluidopt: warning: ")]


def test_a_run_without_thrash_has_no_warning(cli, workload: Path) -> None:
    res = cli("simulate", "-w", workload, *ARGS, "-p", "fcfs", "--json")
    assert res.code == 0 and res.err == ""
    assert res.json()["evictions"] == 0 and res.json()["warnings"] == []


def test_sweep_rows_carry_the_warning(cli, workload: Path, tmp_path: Path) -> None:
    import pandas as pd

    spec = tmp_path / "s.yaml"
    spec.write_text(
        f"workload: {workload}\ndeployment: llama2-7b-a100\ncapacity: 172\n"
        "policies: [fcfs, {name: nested-wait, params: {segments: [[[8, 2], [19, 2]]]}}]\n"
    )
    res = cli("sweep", spec, "--workers", "1")
    assert res.code == 0, res.err
    rows = pd.read_parquet(tmp_path / "s.parquet").set_index("policy")
    assert rows.loc["fcfs", "warning"] == ""
    assert rows.loc["nested-wait", "warning"].startswith("nested-wait thrashed")
    assert "1 of 2 cells thrashed" in res.err
