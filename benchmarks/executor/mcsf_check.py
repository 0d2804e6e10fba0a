"""Micro-benchmark: MC-SF's admission check at completion points vs every future round.

One decision of MC-SF = build the residents' load profile, then add waiting requests in
ascending predicted length until the first one fails the future-memory check. Three
implementations of the same decision are timed on the same random states:

- ``points``: :class:`fluidopt.executor.policies.mcsf.FutureMemoryCheck` (completion
  points only, vectorised), and the full ``MCSF.decide`` call around it;
- ``rounds``: an every-future-round check, vectorised with numpy (load of every round
  1 … horizon from sorted suffix sums, each candidate touches its o rounds);
- ``loop``: :func:`fluidopt.executor.policies.mcsf.naive_future_check` re-run from
  scratch for every candidate (a per-request Python loop over the rounds).

All three must agree on every state (asserted). Times are medians over repeated batches
of calls, in CPU microseconds per decision (one process, one core). Usage::

    python benchmarks/executor/mcsf_check.py [--residents 256] [--waiting 64] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import pandas as pd

from fluidopt.deployment import unit_deployment
from fluidopt.executor.policies.mcsf import MCSF, FutureMemoryCheck, naive_future_check
from fluidopt.executor.policy import StateView
from fluidopt.workload import Workload


def make_state(rng: np.random.Generator, n_res: int, n_wait: int, max_out: int, admit: int) -> tuple:
    """A state with ``n_res`` residents (prompt 1–512, output 1–max_out, part generated)
    and ``n_wait`` waiting requests; C is set so that exactly about ``admit`` of the
    shortest waiting requests pass (the rest of the decision is the failing test)."""
    n = n_res + n_wait
    prompt = rng.integers(1, 513, n)
    output = rng.integers(1, max_out + 1, n)
    gen = np.zeros(n, dtype=np.int64)
    gen[:n_res] = rng.integers(0, output[:n_res])  # generated < output: still running
    res = np.arange(n_res)
    wait = np.arange(n_res, n)
    # capacity: the peak with the residents plus the `admit` shortest candidates, + 1
    order = wait[np.argsort(output[wait], kind="stable")]
    rem, foot = output[res] - gen[res], prompt[res] + gen[res]
    horizon = int(max(rem.max(), output.max()))
    k = np.arange(1, horizon + 1)
    load = np.zeros(horizon, dtype=np.int64)
    for r, b in zip(rem, foot):
        load[:r] += b + k[:r]
    for c in order[:admit]:
        load[: output[c]] += prompt[c] + k[: output[c]]
    cap = int(load.max())  # the residents and the `admit` shortest fit exactly
    frame = pd.DataFrame({"arrival": np.zeros(n), "prompt": prompt, "output": output})
    w = Workload.from_frame(frame)
    v = StateView()
    v.clock, v.iteration, v.capacity = 0.0, 0, cap
    v.prompt, v.arrival, v.id = w.prompt, w.arrival, w.id
    v.generated = gen
    v.prefilled = np.where(np.arange(n) < n_res, prompt, 0)
    v.admitted_at = np.where(np.arange(n) < n_res, 0.0, np.nan)
    v.evictions = np.zeros(n, dtype=np.int64)
    v.resident, v.waiting = res, wait
    v.kv_used = int(v.prefilled.sum() + gen.sum())
    v.next_arrival = float("inf")
    v.pred_lo = v.pred_hi = v.pred = v.type = v.output = None
    v.deployment = unit_deployment(cap)
    return w, v, rem, foot, order, output, prompt, cap


def decide_points(rem, foot, order, output, prompt, cap) -> int:  # type: ignore[no-untyped-def]
    """The check as ``MCSF.decide`` runs it: first candidate alone, then a prefix test."""
    chk = FutureMemoryCheck(rem, foot, cap)
    if not chk.fits_alone(output[order[0]], prompt[order[0]]):
        return 0
    free = cap - chk.resident_load(1)
    m = int((prompt[order] + 1).cumsum().searchsorted(free, side="right")) + 1
    cand = order[:m]
    return chk.admit_prefix(output[cand], prompt[cand])


def decide_rounds(rem, foot, order, output, prompt, cap) -> int:  # type: ignore[no-untyped-def]
    """Every future round 1 … horizon, vectorised."""
    horizon = int(max(rem.max(), output[order].max()))
    r = np.sort(rem)
    b = foot[np.argsort(rem, kind="stable")]
    bsuf = np.r_[np.cumsum(b[::-1])[::-1], 0]
    nsuf = np.arange(r.size, -1, -1)
    k = np.arange(1, horizon + 1)
    j = np.searchsorted(r, k, side="left")
    load = bsuf[j] + k * nsuf[j]
    if load.max() > cap:
        return 0
    admitted = 0
    for c in order:
        o, s = int(output[c]), int(prompt[c])
        new = load[:o] + s + k[:o]
        if new.max() > cap:
            break
        load[:o] = new
        admitted += 1
    return admitted


def decide_loop(rem, foot, order, output, prompt, cap) -> int:  # type: ignore[no-untyped-def]
    acc: list[int] = []
    for c in order:
        if not naive_future_check(rem, foot, output[np.r_[acc, c].astype(int)], prompt[np.r_[acc, c].astype(int)], cap):
            break
        acc.append(int(c))
    return len(acc)


def timeit(fn, *args, repeat: int, number: int = 20) -> float:  # type: ignore[no-untyped-def]
    """Median CPU µs per call over ``repeat`` batches of ``number`` calls.

    CPU time of this process (``time.process_time``), not wall time: on a shared
    machine other processes then inflate the numbers much less.
    """
    samples = []
    for _ in range(repeat):
        t0 = time.process_time()
        for _ in range(number):
            fn(*args)
        samples.append((time.process_time() - t0) / number * 1e6)
    return statistics.median(samples)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--residents", type=int, default=256)
    ap.add_argument("--waiting", type=int, default=64)
    ap.add_argument("--max-output", type=int, default=1024)
    ap.add_argument("--states", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = []
    for admit in (0, 4):
        for _ in range(args.states):
            w, v, rem, foot, order, output, prompt, cap = make_state(
                rng, args.residents, args.waiting, args.max_output, admit
            )
            pol = MCSF()
            pol.reset(w, v.deployment)
            a = decide_points(rem, foot, order, output, prompt, cap)
            assert a == decide_rounds(rem, foot, order, output, prompt, cap) == decide_loop(
                rem, foot, order, output, prompt, cap
            )
            assert pol.decide(v).run.size == args.residents + a
            rows.append(
                {
                    "target_admitted": admit,
                    "admitted": a,
                    "decide_us": timeit(pol.decide, v, repeat=args.repeat),
                    "points_us": timeit(decide_points, rem, foot, order, output, prompt, cap, repeat=args.repeat),
                    "rounds_us": timeit(decide_rounds, rem, foot, order, output, prompt, cap, repeat=args.repeat),
                    "loop_us": timeit(
                        decide_loop, rem, foot, order, output, prompt, cap, repeat=max(3, args.repeat // 10), number=2
                    ),
                }
            )
    df = pd.DataFrame(rows)
    summary = df.groupby("target_admitted").median().reset_index()
    summary["rounds/points"] = summary["rounds_us"] / summary["points_us"]
    summary["loop/points"] = summary["loop_us"] / summary["points_us"]
    meta = {
        "residents": args.residents,
        "waiting": args.waiting,
        "max_output": args.max_output,
        "states": args.states,
        "repeat": args.repeat,
        "seed": args.seed,
    }
    if args.json:
        print(json.dumps({"meta": meta, "summary": summary.to_dict(orient="records")}))
    else:
        print(meta)
        print(summary.to_string(index=False, float_format=lambda x: f"{x:.1f}"))


if __name__ == "__main__":
    main()
