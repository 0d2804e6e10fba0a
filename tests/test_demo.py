"""`fluidopt demo` runs the whole flow and its numbers are consistent."""

from __future__ import annotations

import re

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
    """Each section says what it shows, the fluid terms and the dashes are explained, every
    column has its unit, and a conclusion ends it."""
    res = cli("demo", "--requests", "100", "--mip-requests", "3")
    assert res.code == 0, res.err
    out = " ".join(res.out.split())  # explanations are wrapped
    titles = ("1. The instance", "2. The server", "3. The bound", "4. Calibrate", "5. Execute", "6. Score")
    positions = [out.index(t) for t in titles]
    assert positions == sorted(positions)
    for title, nxt in zip(titles, (*titles[1:], "In short:")):
        section = out[out.index(title):out.index(nxt)]
        assert section.count(". ") >= 2, f"{title}: no explanation after its table"
    assert "load is the fraction of the GPU's time" in out and "× the fluid limit" in out
    if re.search(r"│\s*–\s*│", res.out):  # a value that does not exist
        assert "(shown as –)" in out
    assert "every threshold is 1, the smallest allowed" in out
    header = next(ln for ln in res.out.splitlines() if ln.startswith("policy "))
    columns = [c.strip() for c in header.split("┃")[1:]]
    assert all("(" in c or c == "evictions" for c in columns), columns
    assert out.rstrip().split("In short:", 1)[1].strip()
