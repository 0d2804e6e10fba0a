"""Capacity search run time: a 5,000-request, 3-policy search against simple baselines.

Setting: azure-conv on ``llama2-7b-a100``, the first 5,000 requests (``-n 5000``),
policies sarathi, vllm and calibrated WAIT (authors' rule, recalibrated at every probe),
SLO ``p99_ttft<=2,p99_tpot<=0.12``, precision 2%. Measured in one run:

- ``search``: ``fluidopt capacity`` as shipped (3 trace windows, 2 worker processes);
- ``search_1rep_1worker``: the same search on the first window only, in one process;
- ``linear_scan``: the simple baseline for the same question, in one process: rates
  2%, 4%, 6%, … of the fluid limit on the first window, up to the first SLO failure
  (the grid a user would sweep by hand, at the search's precision);
- ``single_simulate``: one probe per policy (one simulation, with WAIT's calibration)
  at the policy's max rate: the unit cost.

Times are wall clock and CPU (this process and its worker processes, from
``getrusage``); on a shared machine the ratios within one run are the fair comparison.
The load average is recorded before and after.

Usage::

    python benchmarks/capacity/run.py --json benchmarks/capacity/results.json
    python benchmarks/capacity/run.py --quick      # 1,000 requests, a few seconds
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

WORKLOAD, DEPLOYMENT = "azure-conv", "llama2-7b-a100"
POLICIES, PARAMS = "sarathi,vllm,wait", [("wait.advance_resident", True)]
SLO, PRECISION = "p99_ttft<=2,p99_tpot<=0.12", 0.02


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children, s."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    wall, cpu = time.perf_counter(), cpu_seconds()
    out = fn()
    return out, {"wall_s": time.perf_counter() - wall, "cpu_s": cpu_seconds() - cpu}


def machine() -> dict[str, Any]:
    import numpy as np

    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
            "date": dt.datetime.now().isoformat(timespec="seconds")}


def linear_scan(policy: Any, requests: int, top: float) -> dict[str, Any]:
    """Rates k·2%·F (k = 1, 2, …) on the first window until the SLO fails."""
    from fluidopt.capacity import Probe, Replica, run_probe

    last_ok, probes, k = None, 0, 1
    while k * PRECISION <= 1.0 + 1e-9:
        rate = float(f"{k * PRECISION * top:.4g}")
        res = run_probe(Probe(WORKLOAD, DEPLOYMENT, None, policy, rate, requests, Replica(0, None), SLO))
        probes += 1
        if not res["ok"]:
            return {"max_rate": last_ok, "fail_rate": rate, "simulations": probes}
        last_ok, k = rate, k + 1
    return {"max_rate": last_ok, "fail_rate": None, "simulations": probes}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1,000 requests instead of 5,000")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    from fluidopt.capacity import Probe, Replica, parse_policies, run_probe, search_capacity

    requests = 1_000 if args.quick else 5_000
    specs = parse_policies(POLICIES, PARAMS)
    out: dict[str, Any] = {"machine": machine(), "load_before": os.getloadavg(), "requests": requests,
                           "workload": WORKLOAD, "deployment": DEPLOYMENT, "slo": SLO, "precision": PRECISION}
    common = dict(requests=requests, precision=PRECISION)
    search, t = timed(lambda: search_capacity(WORKLOAD, DEPLOYMENT, specs, SLO, workers=2, **common))
    out["search"] = {**t, "simulations": len(search.probes), "replications": len(search.replicas),
                     "fluid_limit": search.fluid_limit,
                     "max_rate": {p.policy.label: p.max_rate for p in search.policies},
                     "all_replications_rate": {p.policy.label: p.all_replications_rate for p in search.policies}}
    print(f"search: {t['wall_s']:.1f} s wall, {t['cpu_s']:.1f} s CPU, {len(search.probes)} simulations", flush=True)
    one, t = timed(lambda: search_capacity(WORKLOAD, DEPLOYMENT, specs, SLO, workers=1, replications=1, **common))
    out["search_1rep_1worker"] = {**t, "simulations": len(one.probes),
                                  "max_rate": {p.policy.label: p.max_rate for p in one.policies}}
    print(f"search, 1 replication, 1 worker: {t['wall_s']:.1f} s, {len(one.probes)} simulations", flush=True)
    out["linear_scan"], out["single_simulate"] = {}, {}
    for spec, pc in zip(specs, one.policies):
        res, t = timed(lambda: linear_scan(spec, requests, one.fluid_limit))
        out["linear_scan"][spec.label] = {**t, **res, "search_max_rate": pc.max_rate, "search_fail_rate": pc.fail_rate}
        print(f"linear scan {spec.label}: {t['wall_s']:.1f} s, {res['simulations']} simulations", flush=True)
        _, t = timed(lambda: run_probe(Probe(WORKLOAD, DEPLOYMENT, None, spec, pc.max_rate, requests,
                                             Replica(0, None), SLO)))
        out["single_simulate"][spec.label] = t
    scan = {k: sum(v[k] for v in out["linear_scan"].values()) for k in ("wall_s", "cpu_s", "simulations")}
    single = sum(v["wall_s"] for v in out["single_simulate"].values()) / len(specs)
    out["ratios"] = {
        "search_wall_over_one_simulation": out["search"]["wall_s"] / single,
        "linear_scan_wall_over_search_1rep_1worker": scan["wall_s"] / out["search_1rep_1worker"]["wall_s"],
        "linear_scan_simulations_over_search_1rep": scan["simulations"] / out["search_1rep_1worker"]["simulations"],
    }
    out["linear_scan_total"] = scan
    out["load_after"] = os.getloadavg()
    print(json.dumps(out["ratios"], indent=2))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    sys.exit(main())
