"""Fidelity against Vidur: fluidopt's executor with each engine setting, on Vidur's workload.

Workload: the ``vidur-conv`` spec (Vidur's synthetic generator on the Azure-conv lengths,
max_tokens 4096, Poisson qps 4 with gaps capped at 3/qps, 10,000 requests, seed 42; the
same requests Vidur generates). For the ``vllm`` and ``sarathi`` policies, fluidopt runs:

- ``preset``: ``llama2-7b-a100-vidur`` as shipped (every mechanic on, profile time model);
- ``preset − X``: the preset with one mechanic back at fluidopt's default (one change at a
  time), which shows what X contributes;
- ``llama2-7b-a100``: the fitted deployment with fluidopt's defaults (the starting point).

Each row reports mean and p99 end-to-end latency, mean and p99 TTFT (s), evictions, and,
when a reference is given, the ratio to it. The reference is read from ``--vidur`` (a JSON
file with the same four metrics per rate and scheduler, e.g. ``vidur_reference.json`` next
to this script, measured as its README says).

Usage::

    python benchmarks/fidelity/run.py --vidur benchmarks/fidelity/vidur_reference.json [--rate 4] [--json out.json]
    python benchmarks/fidelity/run.py --quick     # 1,000 requests, the preset rows only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

PRESET = "llama2-7b-a100-vidur"
METRICS = ("mean_e2e", "p99_e2e", "mean_ttft", "p99_ttft")
#: One mechanic back at fluidopt's default: (label, changes to the preset).
ABLATIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("preset", {}),
    ("preset − profile time (affine compute fit)", {"iteration_time": "affine"}),
    ("preset − blocks (exact tokens)", {"block_size": 1}),
    ("preset − recompute (restart)", {"preemption": "restart"}),
    ("preset − latest-arrival victim (policy's)", {"victim": "policy"}),
    ("preset − padded budget (plain sum)", {"token_budget": "sum"}),
    ("preset − batch cap 128", {"max_batch": None}),
    ("preset − 4,096-token cap", {"max_tokens": None}),
    ("preset + CPU overhead", {"cpu_overhead": True}),
)


def metrics(result: Any) -> dict[str, float]:
    """The four compared metrics of a run (s), plus evictions and unfinished requests."""
    rec = result.records
    fin = rec["finished"].to_numpy()
    e2e = (rec["completion"] - rec["arrival"]).to_numpy()[fin]
    ttft = (rec["first_token"] - rec["arrival"]).to_numpy()[fin]
    return {
        "mean_e2e": float(np.mean(e2e)),
        "p99_e2e": float(np.quantile(e2e, 0.99)),
        "mean_ttft": float(np.mean(ttft)),
        "p99_ttft": float(np.quantile(ttft, 0.99)),
        "evictions": int(rec["evictions"].sum()),
        "unfinished": int((~fin).sum()),
    }


def configurations(quick: bool) -> list[tuple[str, Any]]:
    from fluidopt.deployment import load_deployment

    preset = load_deployment(PRESET)
    out = []
    for label, changes in ABLATIONS[:1] if quick else ABLATIONS:
        changes = dict(changes)
        dep = preset
        if changes.pop("cpu_overhead", False):
            dep = dep.with_cpu_overhead(True)
        out.append((label, dep.with_settings(**changes) if changes else dep))
    if not quick:
        out.append(("llama2-7b-a100 (fluidopt defaults)", load_deployment("llama2-7b-a100")))
    return out


def run(quick: bool, reference: dict[str, Any] | None, rate: float = 4.0) -> list[dict[str, Any]]:
    from fluidopt.executor.engine import simulate
    from fluidopt.traces import load_workload

    w = load_workload("vidur-conv", rate=rate, requests=1000 if quick else None)
    rows = []
    for policy in ("vllm", "sarathi"):
        for label, dep in configurations(quick):
            t = time.process_time()
            m = metrics(simulate(w, dep, policy))
            row = {"rate": rate, "policy": policy, "configuration": label, **m, "cpu_s": time.process_time() - t}
            ref = (reference or {}).get(policy)
            if ref:
                row.update({f"{k}_ratio": m[k] / ref[k] for k in METRICS})
            rows.append(row)
            print(_line(row), file=sys.stderr, flush=True)
    return rows


def _line(r: dict[str, Any]) -> str:
    vals = " ".join(f"{r[k]:8.3f}" for k in METRICS)
    ratios = " ".join(f"{r[k + '_ratio']:5.2f}" for k in METRICS) if "mean_e2e_ratio" in r else ""
    return f"{r['policy']:8} {r['configuration']:45} {vals}  ev {r['evictions']:5}  {ratios}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1,000 requests, the preset only")
    ap.add_argument("--vidur", type=Path, help="reference metrics (JSON: runs → rate → policy → metrics)")
    ap.add_argument("--rate", type=float, default=4.0, help="Poisson rate (Vidur's qps), requests/s")
    ap.add_argument("--json", type=Path, help="write the rows here")
    args = ap.parse_args(argv)
    reference = json.loads(args.vidur.read_text())["runs"].get(f"{args.rate:g}") if args.vidur else None
    rows = run(args.quick, reference, args.rate)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
