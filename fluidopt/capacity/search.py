"""The capacity search driver: replications, rounds of parallel probes, the answers."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fluidopt.capacity.bisection import MIN_FRACTION, RateSearch, round_down
from fluidopt.capacity.probe import PolicySpec, Probe, Replica, load_replica, run_probe, timed_deployment
from fluidopt.capacity.result import CapacityResult, PolicyCapacity
from fluidopt.errors import FluidoptError, InputError
from fluidopt.executor.slo import Slo

#: Replications by default (fewer for a trace too short for that many windows).
DEFAULT_REPLICATIONS = 3

Searches = dict[tuple[int, int], RateSearch]  # (policy index, replication) → search
ProgressFn = Callable[[int, dict[str, tuple[float | None, float | None]]], None]


def fluid_limit(w: Any, deployment: Any, rate: float) -> float:
    """The fluid stability limit in the loader's rate unit (requests/s).

    ``w`` is the workload loaded at ``rate``; the largest stable scale κ of its binned
    types (``fluid-and-wait.md`` §1; default binning of :func:`fluidopt.calibrate.arrays_from_workload`)
    times ``rate``. This does not depend on ``rate``: the loader scales every arrival
    time by the same factor, so all type rates scale together.
    """
    from fluidopt.bounds.fluid import max_stable_scale
    from fluidopt.calibrate import arrays_from_workload

    return max_stable_scale(arrays_from_workload(w, deployment).arrays) * rate


def plan_replicas(
    workload: str, requests: int | None, seed: int | None, replications: int | None
) -> tuple[str, list[Replica], list[str]]:
    """Replications of ``workload``: by seed (generated workloads) or by trace window.

    Returns
    -------
    tuple
        The mode (``"seeds"``, ``"windows"`` or ``"single"``), the replicas and notes.
        Seeds: replication 0 keeps ``seed`` (``None``: the workload's default seed s0),
        replication k uses (``seed`` or s0) + k. Windows (a trace with timestamps, which
        has no randomness): replication k is requests [k·n, (k+1)·n) of the time-scaled
        trace, n = ``requests``.

    Raises
    ------
    InputError
        ``replications`` < 1, or more windows asked for than the trace holds.
    """
    from fluidopt.traces import load_workload

    if replications is not None and replications < 1:
        raise InputError(f"--replications must be ≥ 1 (got {replications})")
    w = load_workload(workload, seed=seed)
    if isinstance(w.meta.get("seed"), (int, np.integer)):
        r = replications or DEFAULT_REPLICATIONS
        base = int(seed if seed is not None else w.meta["seed"])
        reps = [Replica(0, seed)] + [Replica(k, base + k) for k in range(1, r)]
        return ("seeds" if r > 1 else "single"), reps, []
    n = requests if requests is not None and requests < len(w) else len(w)
    fits = len(w) // n
    if replications is not None and replications > fits:
        raise InputError(
            f"{workload} has timestamps (no randomness), so replications are consecutive windows of -n requests: "
            f"{replications} × {n:,} > {len(w):,} requests; give a smaller -n or fewer --replications"
        )
    r = replications or min(DEFAULT_REPLICATIONS, fits)
    notes = []
    if r < DEFAULT_REPLICATIONS and replications is None:
        notes.append(f"{workload} has timestamps and {len(w):,} requests: {r} window(s) of {n:,} requests")
    reps = [Replica(0, seed)] + [Replica(k, seed, (k * n, (k + 1) * n)) for k in range(1, r)]
    return ("windows" if r > 1 else "single"), reps, notes


def search_capacity(
    workload: str,
    deployment: str,
    policies: Sequence[PolicySpec],
    slo: Slo | str,
    *,
    requests: int | None = None,
    seed: int | None = None,
    capacity: int | None = None,
    replications: int | None = None,
    precision: float = 0.02,
    warmup: float = 0.0,
    cooldown: float = 0.0,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: ProgressFn | None = None,
) -> CapacityResult:
    """The largest arrival rate at which each policy meets the SLO (see :mod:`fluidopt.capacity`).

    Parameters
    ----------
    workload, deployment
        Names or files, as for ``fluidopt simulate``.
    policies
        Policies to size (:func:`~fluidopt.capacity.probe.parse_policies`).
    slo
        SLO text or :class:`~fluidopt.executor.slo.Slo`.
    requests, seed, capacity
        As for ``simulate`` (-n, --seed, --capacity in tokens).
    replications
        Workload replications (default 3, or fewer windows of a short trace).
    precision
        Relative bracket width hi/lo − 1 at which bisection stops, in (0, 0.5].
    warmup, cooldown
        Summary window fractions.
    workers, scheduler
        Local worker processes (default: all cores) or a Dask scheduler address.
    progress
        Called after every round with the number of simulations so far and each
        policy's current (lo, hi) bracket on the first replication.

    Raises
    ------
    InputError
        Bad parameters, workload or deployment, or a probe's own input error (named
        with the policy, rate and replication).
    """
    from fluidopt.executor.metrics import window_mask
    from fluidopt.parallel import task_pool

    started = time.perf_counter()
    slo = slo if isinstance(slo, Slo) else Slo.parse(slo)
    if not 0 < precision <= 0.5:
        raise InputError(f"precision must lie in (0, 0.5] (got {precision})")
    if requests is not None and requests < 2:
        raise InputError(f"-n must be ≥ 2: a rate needs two arrivals (got {requests})")
    window_mask(pd.DataFrame({"id": [], "arrival": []}), warmup, cooldown)  # checks the fractions
    if not policies:
        raise InputError("no policy given")
    dep = timed_deployment(deployment, capacity)
    mode, replicas, notes = plan_replicas(workload, requests, seed, replications)
    limits = [fluid_limit(load_replica(workload, 1.0, requests, r), dep, 1.0) for r in replicas]
    searches: Searches = {(i, r.index): RateSearch(round_down(limits[r.index]))
                          for i in range(len(policies)) for r in replicas}
    probes: list[dict[str, Any]] = []
    with task_pool(workers, scheduler) as pool:
        size = pool.size
        while wanted := next_round(searches, len(policies), replicas, precision, size):
            tasks = [Probe(workload, deployment, capacity, policies[i], rate, requests, replicas[k], str(slo),
                           warmup, cooldown) for i, k, rate in wanted]
            for (i, k, rate), result in zip(wanted, pool.map(run_probe, tasks)):
                if isinstance(result, FluidoptError):  # the probe's own input: say which probe
                    kind = InputError if isinstance(result, InputError) else FluidoptError
                    raise kind(f"{policies[i].label} at {rate:g} requests/s (replication {k}): {result}") from None
                if isinstance(result, BaseException):
                    raise result
                result["policy"] = policies[i].label
                searches[(i, k)].probes[rate] = result
                probes.append(result)
            if progress:
                progress(len(probes), {p.label: searches[(i, 0)].bracket() for i, p in enumerate(policies)})
    return CapacityResult(
        workload=workload, deployment=deployment, capacity=int(dep.capacity), slo=slo, requests=requests,
        seed=seed, precision=precision, warmup=warmup, cooldown=cooldown, replication_mode=mode,
        replicas=replicas, fluid_limits=limits,
        policies=[answer(i, spec, searches, replicas, precision) for i, spec in enumerate(policies)],
        probes=probes, seconds=time.perf_counter() - started, workers=size, notes=notes,
        capacity_override=capacity,
    )


def next_round(
    searches: Searches, n_policies: int, replicas: Sequence[Replica], precision: float, slots: int
) -> list[tuple[int, int, float]]:
    """The probes (policy index, replication, rate) of the next round.

    Bisection steps of the unfinished searches, spreading ``slots`` workers over them;
    when all are finished, the check of each policy's all-replications rate (the
    smallest critical rate) on the replications that have not run it. A failed check
    cuts that replication's bracket, so its search resumes.
    """
    active = [key for key, s in searches.items() if s.limited_by(precision) is None]
    if active:
        k = max(1, slots // len(active))
        wanted = [(i, r, rate) for (i, r) in active for rate in searches[(i, r)].next_rates(k)]
        if wanted:
            return wanted
    wanted = []
    for i in range(n_policies):
        los = [searches[(i, r.index)].bracket()[0] for r in replicas]
        if any(lo is None for lo in los):
            continue  # some replication meets the SLO nowhere: nothing to verify
        candidate = min(los)
        wanted += [(i, r.index, candidate) for r in replicas if candidate not in searches[(i, r.index)].probes]
    return wanted


def answer(
    i: int, spec: PolicySpec, searches: Searches, replicas: Sequence[Replica], precision: float
) -> PolicyCapacity:
    """The result of policy ``i`` from its finished searches."""
    per = []
    for r in replicas:
        s = searches[(i, r.index)]
        lo, hi = s.bracket()
        per.append({**r.describe(), "max_rate": lo, "fail_rate": hi, "limited_by": s.limited_by(precision),
                    "fluid_limit": s.top, "evaluations": len(s.probes)})
    evaluations = sum(p["evaluations"] for p in per)
    first = searches[(i, 0)]
    lo0, hi0 = first.bracket()
    reason = ""
    if lo0 is None:
        fails = sorted({p["reason"] for p in first.probes.values() if not p["ok"]})
        reason = (f"the SLO fails at every rate probed, down to {first.floor:g} requests/s "
                  f"(1/{round(1 / MIN_FRACTION)} of the fluid limit): {'; '.join(fails)[:300]}")
    los = [p["max_rate"] for p in per]
    robust = None if any(v is None for v in los) else min(los)
    binding = None if robust is None else int(np.argmin([math.inf if v is None else v for v in los]))
    return PolicyCapacity(
        policy=spec,
        max_rate=lo0,
        fail_rate=hi0,
        limited_by=per[0]["limited_by"] or "slo",
        all_replications_rate=robust,
        binding_replication=binding,
        per_replication=per,
        at_max_rate=first.probes.get(lo0) if lo0 is not None else None,
        at_all_replications_rate=[] if robust is None else [searches[(i, r.index)].probes[robust] for r in replicas],
        evaluations=evaluations,
        reason=reason,
    )
