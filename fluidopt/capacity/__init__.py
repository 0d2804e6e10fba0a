"""Capacity search: the highest arrival rate at which a deployment meets an SLO, per policy.

The question: how many requests per second can one GPU serve for this traffic with, say,
p99 TTFT ≤ 2 s and p99 TPOT ≤ 0.12 s, and which policy serves more? The fluid limit
brackets the answer, simulation decides it:

1. **Rate.** A probe at rate r runs the workload time-scaled exactly as
   ``fluidopt simulate --rate r`` does (``fluidopt.traces.load_workload``: a trace's mean
   rate over the whole trace becomes r; a generated workload is drawn at total rate r),
   keeps its first ``requests`` requests and checks the SLO
   (:mod:`fluidopt.executor.slo`) on the run's summary.
2. **Bracket.** The fluid stability limit F (``max_stable_scale`` of the fluid benchmark
   of the binned workload, in the same rate unit) is the upper end: beyond it every
   policy's queue grows without bound in the fluid model, so ``max_rate ≤ F`` by
   construction. F is probed first; if the SLO holds there the answer is F ("limited by
   the fluid limit"). Otherwise rates are halved until the SLO holds (down to F/64;
   below that the SLO is called unattainable).
3. **Bisection** on the bracket [lo, hi] (SLO holds at lo, fails at hi) at the geometric
   midpoint until hi/lo ≤ 1 + ``precision`` (default 2%). When the pool has more workers
   than searches in flight, each search probes several interior points per round
   (k-section), so idle cores shorten the search instead of waiting.
4. **Answer.** ``max_rate`` is the critical rate of the *first* replication: the
   workload ``fluidopt simulate`` runs with the same ``-n`` and ``--seed``. The SLO holds
   there, it fails at ``fail_rate`` ≤ (1 + precision)·``max_rate``, and
   ``max_rate`` ≤ F. A fresh ``simulate`` reproduces both (``check_command``).
5. **Replications**, so that the answer is not one lucky run: R seeds (S, S+1, …) of a
   generated workload, or R consecutive windows of ``requests`` requests of a trace (a
   timestamped trace has no randomness). Each replication is bisected on its own; the
   spread of their critical rates is reported, and so is ``all_replications_rate``: the
   smallest of them, then *verified* by simulating every replication there. If one
   fails (the SLO need not be monotone in the rate) its bracket is cut there and the
   search goes on, so the SLO holds on every replication at that rate.
6. **Calibrated policies.** ``wait`` and ``nested-wait`` without explicit thresholds are
   recalibrated at every probe: :func:`fluidopt.calibrate.calibrate` on the probed
   workload itself (the same requests at the probed rate; latency objective, ε = 0.05,
   admission reserve estimated from the output lengths; ``rule="advance"`` when the
   policy runs with ``advance_resident=True``, the paper's rule otherwise), written to a
   thresholds file and loaded back, so the saved file reproduces the run. A rate where
   calibration is infeasible counts as an SLO failure, with the reason recorded.

Probes of one round run in parallel on a :func:`fluidopt.parallel.task_pool` (local
processes, or the Dask scheduler the sweeps use).

Modules: :mod:`~fluidopt.capacity.probe` (one simulation, run in workers),
:mod:`~fluidopt.capacity.bisection` (the bracket of one policy and replication),
:mod:`~fluidopt.capacity.search` (the driver), :mod:`~fluidopt.capacity.result`
(JSON and table).
"""

from fluidopt.capacity.bisection import MIN_FRACTION, RateSearch
from fluidopt.capacity.probe import CALIBRATED, PolicySpec, Probe, Replica, parse_policies, run_probe
from fluidopt.capacity.result import CapacityResult, PolicyCapacity
from fluidopt.capacity.search import DEFAULT_REPLICATIONS, fluid_limit, plan_replicas, search_capacity

__all__ = [
    "CALIBRATED",
    "DEFAULT_REPLICATIONS",
    "MIN_FRACTION",
    "CapacityResult",
    "PolicyCapacity",
    "PolicySpec",
    "Probe",
    "RateSearch",
    "Replica",
    "fluid_limit",
    "parse_policies",
    "plan_replicas",
    "run_probe",
    "search_capacity",
]
