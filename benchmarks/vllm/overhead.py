"""What a fluidopt scheduler costs vLLM per step, and whether it still decides as the executor.

Replays one request stream through vLLM's own ``Scheduler`` (the baseline, in the same
run) and through each plug-in, driving ``schedule()`` / ``update_from_output()`` directly
(:func:`fluidopt.integrations.vllm.replay.replay`; no model runs, so the time is the
scheduler's alone), and reports CPU microseconds per step (the best of ``--repeat``
runs), the ratio to the baseline, the mean number of live (arrived, unfinished)
requests per step, and whether the plug-in's trace equals the executor's. Needs the ``vllm`` extra. ``--quick``: a small stream, one repeat.

    python benchmarks/vllm/overhead.py [--requests 400] [--blocks 40] [--repeat 3] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fluidopt.executor.policy import make_policy
from fluidopt.integrations.vllm import FCFSScheduler, MCSFScheduler, SVFScheduler, WaitScheduler
from fluidopt.integrations.vllm.parity import compare, executor_trace
from fluidopt.integrations.vllm.replay import replay
from fluidopt.threshold_file import Thresholds, ThresholdType, save_thresholds
from fluidopt.workload import Workload
from vllm.v1.core.sched.scheduler import Scheduler

BLOCK = 16


def stream(n: int, seed: int = 0) -> Workload:
    """n requests over n/2 rounds: prompts 5–120, outputs 1–80 tokens (unit time)."""
    rng = np.random.default_rng(seed)
    out = rng.integers(1, 80, n)
    return Workload.from_frame(pd.DataFrame({
        "arrival": np.sort(rng.integers(0, max(n // 2, 1), n)).astype(float),
        "prompt": rng.integers(5, 120, n),
        "output": out,
    }))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--blocks", type=int, default=40, help="KV blocks of 16 tokens (one is vLLM's null block)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    n, repeat = (40, 1) if args.quick else (args.requests, args.repeat)
    w = stream(n)
    replay(stream(4), Scheduler, num_blocks=args.blocks, block_size=BLOCK)  # warm-up: the model config, imports
    with tempfile.TemporaryDirectory() as tmp:
        th = Path(tmp) / "thresholds.json"
        save_thresholds(Thresholds("wait", (ThresholdType("short", (1, 30), 2), ThresholdType("long", (31, None), 2))), th)
        cases = [
            ("vllm default", Scheduler, None, {}),
            ("fcfs", FCFSScheduler, "fcfs", {}),
            ("mc-sf", MCSFScheduler, "mc-sf", {}),
            ("svf", SVFScheduler, "svf", {}),
            ("wait", WaitScheduler, "wait", {"thresholds": str(th)}),
        ]
        rows = []
        for label, cls, policy, params in cases:
            cfg = {"fluidopt": params} if params else {}
            best, trace = float("inf"), None
            for _ in range(repeat):
                t0 = time.process_time()
                trace = replay(w, cls, num_blocks=args.blocks, block_size=BLOCK, additional_config=cfg)
                best = min(best, time.process_time() - t0)
            steps = len(trace.steps)
            clocks = np.array(sorted(trace.steps))
            arrived = np.searchsorted(np.sort(np.asarray(w.arrival)), clocks, side="right")
            done = np.searchsorted(np.sort(list(trace.completion.values())), clocks, side="right")
            row = {"scheduler": label, "steps": steps, "preemptions": trace.preemptions,
                   "mean_live": float(np.mean(arrived - done)), "us_per_step": 1e6 * best / steps}
            if policy is not None:
                ex = executor_trace(w, make_policy(policy, **params), num_blocks=args.blocks, block_size=BLOCK)
                row["rollbacks"] = ex.rollbacks
                row["agrees_with_executor"] = compare(ex, trace) == []
            rows.append(row)
    base = rows[0]["us_per_step"]
    print(f"{n} requests, {args.blocks} blocks of {BLOCK}; load {os.getloadavg()[0]:.1f}; best of {repeat}")
    print(f"{'scheduler':14} {'steps':>6} {'preempt':>7} {'live':>5} {'µs/step':>8} {'× vLLM':>7}  executor")
    for r in rows:
        agree = {True: "same trace", False: "DIFFERS", None: "–"}[r.get("agrees_with_executor")]
        print(f"{r['scheduler']:14} {r['steps']:6d} {r['preemptions']:7d} {r['mean_live']:5.0f} "
              f"{r['us_per_step']:8.0f} {r['us_per_step'] / base:7.2f}  {agree}")
    return {"requests": n, "blocks": args.blocks, "rows": rows}


if __name__ == "__main__":
    main(sys.argv[1:])
