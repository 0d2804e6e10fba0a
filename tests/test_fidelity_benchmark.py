"""The fidelity benchmark's quick mode runs and writes its rows (the full run is not a test)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_fidelity_benchmark_quick_mode(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("fidelity_run", REPO / "benchmarks" / "fidelity" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fidelity_run"] = module
    spec.loader.exec_module(module)
    out = tmp_path / "rows.json"
    ref = REPO / "benchmarks" / "fidelity" / "vidur_reference.json"
    assert module.main(["--quick", "--vidur", str(ref), "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["policy"], r["configuration"]) for r in rows] == [("vllm", "preset"), ("sarathi", "preset")]
    for r in rows:
        assert r["unfinished"] == 0 and r["mean_e2e"] > r["mean_ttft"] > 0
        assert r["mean_e2e_ratio"] == r["mean_e2e"] / json.loads(ref.read_text())["runs"]["4"][r["policy"]]["mean_e2e"]
