"""`fluidopt demo` runs the whole flow and its numbers are consistent."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_demo_json(cli):
    res = cli("demo", "--json", "--requests", "300", "--mip-requests", "5")
    assert res.code == 0, res.err
    d = res.json()
    assert d["workload"]["n_requests"] == 19_366
    # the trace is outside the fluid region of this deployment, so it is rescaled below it
    assert not d["fluid"]["stable"] and 0 < d["fluid"]["max_stable_scale"] < 1
    assert d["executor_rate_per_s"] < d["fluid"]["max_stable_scale"] * d["workload"]["rate_per_s"]
    runs = d["executor"]["runs"]
    assert set(runs) == {"vllm", "sarathi", "mc-sf", "wait"}
    assert all(r["completed"] == 300 for r in runs.values())
    mip = d["mip"]
    assert mip["status"] == "optimal"
    # the hindsight optimum bounds every policy run in the unit-time executor
    assert all(tct >= mip["objective_tct"] for tct in mip["policy_tct"].values())


def test_demo_human_output(cli):
    res = cli("demo", "--requests", "100", "--mip-requests", "3")
    assert res.code == 0, res.err
    for title in ("1. Real trace", "3. Fluid benchmark", "5. Executor", "6. Total completion time"):
        assert title in res.out
