"""Invariant suite of the executor: every registered policy, every time model.

Two independent checks on thousands of random small workloads (hypothesis):

1. A **reference executor** written here from ``system-model.md`` alone — plain Python
   lists, the state rebuilt from scratch at every decision, one iteration at a time (no
   fast path), victims evicted one by one — runs the same policy on the same input. The
   engine's per-request records, iteration count and peak KV must equal the reference's
   exactly (time-model coefficients and arrivals are dyadic, so every float sum is exact).
2. Invariants checked on the engine's output itself: end-of-iteration KV ≤ C in every
   iteration of the event log; each request completes once or is reported unfinished;
   emitted tokens = completed outputs + wasted tokens; latency ≥ o_i iterations (unit
   model: c_i ≥ ⌈a_i⌉ + o_i and c_i − start_i ≥ o_i; time models: c_i − a_i ≥ o_i·c0);
   overflow-free policies (MC-SF / H-SF / Amax with right lengths) never evict.

Every example also draws the deployment's engine settings (``block_size`` 1 or 4,
``preemption`` restart or recompute, ``victim`` rule, ``token_budget`` sum or padded), and
the reference executor implements each of them from its definition in
:class:`~fluidopt.deployment.Deployment`; :func:`test_every_engine_setting_combination`
runs all 24 combinations on fixed instances.

Plus the fast path (``Decision.steady``) against the slow path, bit for bit, on a real
(non-dyadic) deployment, and Little's law on long Poisson runs.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from fluidopt.deployment import Deployment, TimeModel, unit_deployment
from fluidopt.errors import PolicyError
from fluidopt.executor.engine import simulate
from fluidopt.executor.timing import ProfileTime
from fluidopt.executor.policy import POLICIES, Decision, Policy, StateView, make_policy
from fluidopt.workload import Workload

import fluidopt.executor.policies  # noqa: F401  (fill the registry)

# ---------------------------------------------------------------------- deployments
# dyadic coefficients: every iteration time and every clock value is exact in binary
AFFINE = TimeModel("affine", 1.0, c_seq=0.25, c_kv=0.0625, c_new=0.125, c_pf2=0.03125)
DEPLOYMENTS = {
    "unit": unit_deployment(),
    "linear-kv": Deployment("linear-kv-test", None, TimeModel.linear_kv(1.0, 0.0625)),
    "affine": Deployment("affine-test", None, AFFINE),
    "affine-capped": Deployment("affine-capped-test", None, AFFINE, max_batch=3),
    "affine-chunked": Deployment("affine-chunked-test", None, AFFINE, max_tokens=8, chunk_size=3),
    # the profile time model (with a CPU-overhead part), dyadic tables
    "profile": Deployment(
        "profile-test",
        None,
        AFFINE,
        iteration_time="profile",
        cpu_overhead={"c0": 0.5, "c_seq": 0.25, "included": True},
        profile_time={
            "layers": 2,
            "token_round": 4,
            "kv_round": 4,
            "linear_ops_ms": {"tokens": [1, 4, 8, 16], "ms": [250.0, 500.0, 1000.0, 1500.0]},
            "attention_ms_per_layer": {
                "prefill": {"p1": 62.5, "p2": 31.25, "p3": 15.625},
                "decode": {"d1": 125.0, "d2": 62.5},
            },
        },
    ),
}
#: Policies tested on the token-capped deployment (those that plan prefill chunks /
#: whole prompts under ``max_tokens``).
TOKEN_CAPPED_POLICIES = {"fcfs", "vllm", "sarathi", "sf", "alpha-greedy", "alpha-beta"}
#: Policies that declare overflow-freedom when their lengths are right (the workloads
#: below always have pred_hi ≥ o; ``pred`` may be wrong, so MC-SF is exercised both ways).
NEVER_EVICT_WITH_RIGHT_LENGTHS = {"h-sf", "amax", "fixed-schedule"}


def policy_factory(name: str, workload: Workload, capacity: int) -> Policy:
    """Instantiate a registered policy with parameters it needs on the test workloads."""
    if name == "fixed-schedule":
        # replay the (contiguous, eviction-free) schedule H-SF finds on the instance
        hsf = simulate(workload, unit_deployment(), "h-sf", capacity=capacity).records
        return make_policy(name, starts=dict(zip(hsf["id"].tolist(), hsf["start"].astype(int).tolist())))
    if name == "wait":
        return make_policy("wait", thresholds={0: 2, 1: 1})
    if name == "nested-wait":
        return make_policy("nested-wait", segments=[(2, 2), (8, 1)])
    if name == "sarathi":
        return make_policy("sarathi", chunk_size=3, token_budget=5)
    return make_policy(name)


# ---------------------------------------------------------------------- reference executor
_FUT, _WAIT, _RES, _DONE = 0, 1, 2, 3


def _ro(values: list[Any], dtype: Any) -> np.ndarray:
    arr = np.array(values, dtype=dtype)
    arr.flags.writeable = False
    return arr


def reference_simulate(workload: Workload, dep: Deployment, capacity: int, policy: Policy) -> dict[str, Any]:
    """A deliberately naive executor following ``system-model.md`` step by step."""
    n = len(workload)
    arrival = [float(a) for a in workload.arrival]
    prompt = [int(s) for s in workload.prompt]
    output = [int(o) for o in workload.output]
    ids = [int(i) for i in workload.id]
    unit = dep.time.is_unit
    block = dep.block_size
    recompute = dep.preemption == "recompute"
    eff_prompt = list(prompt)  # grows by the kept tokens under recompute
    eff_output = list(output)  # shrinks by as much
    avail = [math.ceil(a) if unit else a for a in arrival]
    status = [_FUT] * n
    gen = [0] * n
    pre = [0] * n
    adm_at = [math.nan] * n
    first_adm = [math.nan] * n
    start = [math.nan] * n
    first_tok = [math.nan] * n
    comp = [math.nan] * n
    evictions = [0] * n
    wasted = [0] * n
    resident: list[int] = []  # admission order
    clock = 0.0
    iterations = 0
    peak = 0
    emitted_total = 0
    policy.reset(workload, dep)

    def kv_of(i: int) -> int:
        """What resident i holds: its footprint, or whole blocks with the prompt reserved."""
        if block == 1:
            return pre[i] + gen[i]
        return -(-max(pre[i] + gen[i], eff_prompt[i]) // block) * block

    def make_view() -> StateView:
        v = StateView()
        v.clock = clock
        v.iteration = iterations
        v.capacity = capacity
        v.kv_used = sum(kv_of(i) for i in resident)
        waiting = sorted((i for i in range(n) if status[i] == _WAIT), key=lambda i: (arrival[i], ids[i]))
        v.waiting = _ro(waiting, np.int64)
        v.resident = _ro(resident, np.int64)
        future = [arrival[i] for i in range(n) if status[i] == _FUT]
        v.next_arrival = min(future) if future else math.inf
        v.arrival = _ro(arrival, np.float64)
        v.prompt = _ro(eff_prompt, np.int64)
        v.id = _ro(ids, np.int64)
        for key in ("pred_lo", "pred_hi", "pred", "type"):
            col = getattr(workload, key)
            setattr(v, key, None if col is None else _ro(list(col), None))
        v.output = _ro(eff_output, np.int64) if policy.sees_output else None
        v.generated = _ro(gen, np.int64)
        v.prefilled = _ro(pre, np.int64)
        v.admitted_at = _ro(adm_at, np.float64)
        v.evictions = _ro(evictions, np.int64)
        v.deployment = dep
        return v

    def evict(i: int) -> None:
        if recompute:  # generated tokens kept: re-prefilled with the prompt
            eff_prompt[i] += gen[i]
            eff_output[i] -= gen[i]
        else:
            wasted[i] += gen[i]
        evictions[i] += 1
        gen[i] = pre[i] = 0
        adm_at[i] = math.nan
        status[i] = _WAIT
        resident.remove(i)

    idle_wakes = 0
    while any(s != _DONE for s in status):
        for i in range(n):
            if status[i] == _FUT and avail[i] <= clock:
                status[i] = _WAIT
        if not any(s in (_WAIT, _RES) for s in status):
            clock = float(min(avail[i] for i in range(n) if status[i] == _FUT))
            continue
        view = make_view()
        dec = policy.decide(view)
        for i in np.asarray(dec.evict, dtype=np.int64).tolist():
            evict(i)
        run = np.asarray(dec.run, dtype=np.int64).tolist()
        if not run:
            targets = [a for i, a in enumerate(arrival) if status[i] == _FUT]
            if dec.wake_at is not None:
                targets.append(dec.wake_at)
            if not targets:
                break
            if not any(status[i] == _FUT for i in range(n)):
                idle_wakes += 1
                if idle_wakes > 10_000:
                    break
            t = min(targets)
            clock = float(math.ceil(t)) if unit else float(t)
            continue
        for i in run:
            if status[i] == _WAIT:
                status[i] = _RES
                adm_at[i] = clock
                if math.isnan(first_adm[i]):
                    first_adm[i] = clock
                resident.append(i)
        chunk = None if dec.chunk is None else np.asarray(dec.chunk).tolist()
        step: dict[int, tuple[int, int]] = {}  # i -> (prompt tokens processed, emits)
        for k, i in enumerate(run):
            rem = eff_prompt[i] - pre[i]
            c = 0 if rem == 0 else (rem if chunk is None else int(chunk[k]))
            assert 0 <= c <= rem
            emits = 1 if pre[i] + c == eff_prompt[i] else 0
            step[i] = (c, emits)

        def end_fp(i: int) -> int:
            c, e = step.get(i, (0, 0))
            fp = pre[i] + c + gen[i] + e
            return fp if block == 1 else -(-max(fp, eff_prompt[i]) // block) * block

        def end_tokens(i: int) -> int:
            c, e = step[i]
            return pre[i] + c + gen[i] + e

        total = sum(end_fp(i) for i in resident)
        if total > capacity:
            assert not policy.overflow_free or block > 1
            if dep.victim == "policy":
                order = np.asarray(policy.victims(make_view(), _ro(resident, np.int64))).tolist()
            elif dep.victim == "latest-arrival":
                order = sorted(resident, key=lambda i: (arrival[i], ids[i]), reverse=True)
            else:  # latest admission first, ties larger index first
                order = sorted(resident, key=lambda i: (adm_at[i], i), reverse=True)
            for i in order:
                if total <= capacity:
                    break
                total -= end_fp(i)
                step.pop(i, None)
                evict(i)
            run = [i for i in run if i in step]
            if not run:
                continue
        assert total <= capacity
        B = len(run)
        chunks = [step[i][0] for i in run if eff_prompt[i] - pre[i] > 0]
        n_new = sum(chunks) + B - len(chunks)
        if dep.max_batch is not None:
            assert B <= dep.max_batch
        if dep.max_tokens is not None:
            padded = len(chunks) * max(chunks, default=0)
            assert (padded if dep.token_budget == "padded" else n_new) <= dep.max_tokens
        kv_run = sum(end_tokens(i) for i in run)  # the time model reads tokens, not blocks
        chunk_sq = sum(step[i][0] ** 2 for i in run)
        if dep.iteration_time == "profile":
            # decoding members' tokens cached before the iteration; prefilling members'
            # cached tokens rounded up each; their chunks; plus the CPU overhead
            pt = ProfileTime(dep.profile_time)
            dec = [i for i in run if eff_prompt[i] - pre[i] == 0]
            pf = [i for i in run if eff_prompt[i] - pre[i] > 0]
            dec_kv = sum(pre[i] + gen[i] for i in dec)
            pf_kv = sum(int(pt.round_kv(pre[i] + gen[i])) for i in pf)
            tau = pt.tau(n_new, len(dec), dec_kv, pf_kv, chunk_sq)
            o = dep.cpu_overhead
            tau = tau + (o["c0"] + o["c_seq"] * B)
        else:
            tau = float(dep.time.iteration_time(B, kv_run, n_new, chunk_sq))
        for i in run:
            c, e = step[i]
            pre[i] += c
            gen[i] += e
            emitted_total += e
        peak = max(peak, total)
        clock += tau
        iterations += 1
        for i in run:
            if gen[i] == 1 and step[i][1] and math.isnan(first_tok[i]):
                first_tok[i] = clock
            if gen[i] == eff_output[i]:
                comp[i] = clock
                start[i] = adm_at[i]
                status[i] = _DONE
                resident.remove(i)
                gen[i] = pre[i] = 0
    for i in resident:
        start[i] = adm_at[i]
    return {
        "first_admitted": first_adm,
        "start": start,
        "first_token": first_tok,
        "completion": comp,
        "finished": [s == _DONE for s in status],
        "evictions": evictions,
        "wasted_tokens": wasted,
        "iterations": iterations,
        "peak_kv": peak,
        "emitted": emitted_total,
    }


# ---------------------------------------------------------------------- strategies
@st.composite
def small_instances(draw: Any, unit: bool, block: int = 1) -> tuple[Workload, int]:
    n = draw(st.integers(1, 9))
    if unit:
        gaps = draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))
        arrival = np.cumsum(gaps).astype(float)
    else:
        gaps = draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))
        arrival = np.cumsum(gaps) * 0.25
    prompt = np.array(draw(st.lists(st.integers(1, 6), min_size=n, max_size=n)))
    output = np.array(draw(st.lists(st.integers(1, 7), min_size=n, max_size=n)))
    slack_lo = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    slack_hi = np.array(draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)))
    pred = np.array(draw(st.lists(st.integers(1, 8), min_size=n, max_size=n)))
    ids = np.array(draw(st.permutations(list(range(n)))))
    frame = pd.DataFrame(
        {
            "id": ids,
            "arrival": arrival,
            "prompt": prompt,
            "output": output,
            "pred_lo": np.maximum(output - slack_lo, 1),
            "pred_hi": output + slack_hi,
            "pred": pred,
            "type": (output > 3).astype(int),
        }
    )
    peak = int((-(-(prompt + output) // block) * block).max())
    capacity = peak + draw(st.integers(0, 14))
    return Workload.from_frame(frame, name="hypothesis"), capacity


def _check_against_reference(
    name: str, dep_key: str, workload: Workload, capacity: int, settings: dict[str, Any] | None = None
) -> None:
    dep = DEPLOYMENTS[dep_key]
    if settings:
        dep = dep.with_settings(**settings)
    res = simulate(workload, dep, policy_factory(name, workload, capacity), capacity=capacity, event_log=True)
    ref = reference_simulate(workload, dep.with_capacity(capacity), capacity, policy_factory(name, workload, capacity))
    rec = res.records
    for col in ("first_admitted", "start", "first_token", "completion", "finished", "evictions", "wasted_tokens"):
        np.testing.assert_array_equal(rec[col].to_numpy(), np.asarray(ref[col]), err_msg=f"{name}/{dep_key}: {col}")
    assert res.run["iterations"] == ref["iterations"]
    assert res.run["peak_kv"] == ref["peak_kv"]
    # --- invariants on the engine's own output
    ev = res.events
    assert (ev["kv"] <= capacity).all(), "end-of-iteration KV above capacity"
    assert res.run["peak_kv"] <= capacity
    fin = rec["finished"].to_numpy()
    assert (np.isfinite(rec["completion"].to_numpy()) == fin).all()
    unfinished_gen = 0 if fin.all() else None
    if unfinished_gen is not None:
        # every emitted token is either part of a completed output or was wasted
        assert int(ev["emitted"].sum()) == int(rec["output"][fin].sum() + rec["wasted_tokens"].sum())
        assert int(ev["emitted"].sum()) == ref["emitted"]
    c, a, o, s = (rec[k].to_numpy() for k in ("completion", "arrival", "output", "start"))
    if dep.time.is_unit:
        assert (c[fin] >= np.ceil(a[fin]) + o[fin]).all()
        # (under recompute the last run needs only the tokens not kept from earlier runs)
        since = rec["first_admitted"].to_numpy() if dep.preemption == "recompute" else s
        assert (c[fin] - since[fin] >= o[fin]).all()
    elif dep.iteration_time != "profile":
        assert (c[fin] - a[fin] >= o[fin] * dep.time.c0).all()
    if name in NEVER_EVICT_WITH_RIGHT_LENGTHS and dep.block_size == 1:
        assert int(rec["evictions"].sum()) == 0
    if dep.preemption == "recompute":
        assert int(rec["wasted_tokens"].sum()) == 0


ALL_POLICIES = sorted(POLICIES)
#: No shrinking: a broken engine then fails within the CI budget (shrinking one failure
#: over thousands of runs can take minutes); the failing example is still printed.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)


#: Policies defined for the unit-time model only.
UNIT_ONLY_POLICIES = {"fixed-schedule"}


#: Every combination of the engine settings (defaults first).
ENGINE_SETTINGS = [
    {"block_size": b, "preemption": p, "victim": v, "token_budget": t}
    for b in (1, 4)
    for p in ("restart", "recompute")
    for v in ("policy", "latest-arrival", "latest-admission")
    for t in ("sum", "padded")
]


def _settings_for(name: str, dep_key: str, data: st.DataObject) -> dict[str, Any]:
    """Engine settings drawn for one example (today's defaults for the replayed schedule)."""
    if name in UNIT_ONLY_POLICIES:
        return {}
    return data.draw(st.sampled_from(ENGINE_SETTINGS))


def _deployments_for(name: str) -> list[str]:
    if name in UNIT_ONLY_POLICIES:
        return ["unit"]
    keys = ["unit", "linear-kv", "affine", "affine-capped", "profile"]
    if name in TOKEN_CAPPED_POLICIES:
        keys.append("affine-chunked")
    return keys


@pytest.mark.parametrize("name", ALL_POLICIES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, phases=NO_SHRINK)
@given(data=st.data())
def test_engine_matches_reference_and_invariants(name: str, data: st.DataObject) -> None:
    dep_key = data.draw(st.sampled_from(_deployments_for(name)))
    settings = _settings_for(name, dep_key, data)
    workload, capacity = data.draw(small_instances(unit=dep_key == "unit", block=settings.get("block_size", 1)))
    _check_against_reference(name, dep_key, workload, capacity, settings)


@pytest.mark.parametrize("settings", ENGINE_SETTINGS, ids=lambda d: "-".join(str(v) for v in d.values()))
def test_every_engine_setting_combination(settings: dict[str, Any]) -> None:
    """All 24 combinations on the same seeded instances, for the schedulers that plan
    prefill (whole and chunked) under the caps; each against the reference executor."""
    rng = np.random.default_rng(7)
    for k in range(6):
        n = 12
        frame = pd.DataFrame(
            {
                "arrival": np.cumsum(rng.integers(0, 3, n)) * 0.5,
                "prompt": rng.integers(1, 7, n),
                "output": rng.integers(1, 8, n),
            }
        )
        w = Workload.from_frame(frame, name="combo")
        b = settings["block_size"]
        capacity = int((-(-(w.prompt + w.output) // b) * b).max()) + int(rng.integers(0, 10))
        for name, dep_key in (("fcfs", "affine-capped"), ("vllm", "affine"), ("sarathi", "affine-chunked"),
                              ("alpha-beta", "affine")):
            _check_against_reference(name, dep_key, w, capacity, settings)


@pytest.mark.parametrize("name", ["mc-sf", "mc-benchmark", "h-sf", "amax"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True, phases=NO_SHRINK)
@given(data=st.data())
def test_future_check_policies_never_evict_with_right_lengths(name: str, data: st.DataObject) -> None:
    """MC-SF / MC-Benchmark with point predictions that are upper bounds (õ = pred_hi ≥ o),
    H-SF (true lengths) and Amax (upper ends of the intervals) never evict."""
    if name not in POLICIES:
        pytest.skip(f"{name} not registered")
    dep_key = data.draw(st.sampled_from(["unit", "linear-kv", "affine", "affine-capped"]))
    workload, capacity = data.draw(small_instances(unit=dep_key == "unit"))
    workload = workload.replace(pred=workload.pred_hi)
    res = simulate(workload, DEPLOYMENTS[dep_key], make_policy(name), capacity=capacity)
    assert int(res.records["evictions"].sum()) == 0
    # (a request whose predicted peak s + õ exceeds C never passes the check, so
    # "unfinished" is possible here; it is not an eviction)


def test_every_registered_policy_is_covered() -> None:
    """The paper policies land in the registry over time; each must be constructible here."""
    assert {"fcfs", "vllm", "sarathi", "sf", "alpha-greedy", "alpha-beta"} <= set(POLICIES)
    frame = pd.DataFrame({"arrival": [0.0], "prompt": [1], "output": [1], "pred_lo": [1], "pred_hi": [1], "type": [0]})
    w = Workload.from_frame(frame)
    for name in POLICIES:
        assert policy_factory(name, w, 2).name == name


# ---------------------------------------------------------------------- fast path = slow path
class _NoSteady(Policy):
    """Wraps a policy and drops its ``steady`` promises (forces the slow path)."""

    def __init__(self, inner: Policy) -> None:
        self.inner = inner
        self.name = inner.name  # type: ignore[misc]
        self.sees_output = inner.sees_output  # type: ignore[misc]

    def reset(self, workload: Any, deployment: Any) -> None:
        self.inner.reset(workload, deployment)
        self.overflow_free = self.inner.overflow_free

    def decide(self, state: StateView) -> Decision:
        d = self.inner.decide(state)
        d.steady = False
        return d

    def victims(self, state: StateView, candidates: np.ndarray) -> np.ndarray:
        return self.inner.victims(state, candidates)

    def params(self) -> dict[str, Any]:
        return self.inner.params()


def _poisson_workload(n: int, rate: float, seed: int, max_prompt: int = 600, max_output: int = 400) -> Workload:
    rng = np.random.default_rng(seed)
    output = rng.integers(1, max_output, n)
    frame = pd.DataFrame(
        {
            "arrival": np.cumsum(rng.exponential(1 / rate, n)),
            "prompt": rng.integers(1, max_prompt, n),
            "output": output,
            "pred": np.maximum(output + rng.integers(-20, 20, n), 1),
            "pred_lo": output,
            "pred_hi": output + 10,
            "type": (output > 200).astype(int),
        }
    )
    return Workload.from_frame(frame, name="poisson", meta={"seed": seed})


@pytest.mark.parametrize("name", ["fcfs", "vllm", "sarathi", "sf", "alpha-beta", "mc-sf", "wait"])
def test_fast_path_is_bit_identical_to_slow_path(name: str) -> None:
    from fluidopt.deployment import load_deployment

    if name not in POLICIES:
        pytest.skip(f"{name} not registered")
    dep = load_deployment("llama2-7b-a100")
    w = _poisson_workload(400, rate=20.0, seed=3)
    params = {"wait": {"thresholds": {0: 3, 1: 2}}}.get(name, {})
    fast = simulate(w, dep, make_policy(name, **params), capacity=30_000, event_log=True)
    slow = simulate(w, dep, _NoSteady(make_policy(name, **params)), capacity=30_000, event_log=True)
    pd.testing.assert_frame_equal(fast.records, slow.records, check_exact=True)
    pd.testing.assert_frame_equal(fast.events, slow.events, check_exact=True)
    fast_run, slow_run = dict(fast.run), dict(slow.run)
    # the fast path did fast-forward: fewer policy decisions for the same iterations
    assert slow_run["decisions"] >= slow_run["iterations"]
    assert fast_run.pop("decisions") < slow_run.pop("decisions")
    assert fast_run == slow_run


# ---------------------------------------------------------------------- Little's law
@pytest.mark.parametrize("name", ["sarathi", "fcfs"])
def test_littles_law_on_long_poisson_run(name: str) -> None:
    """L = λ·W: the engine's time-average count of requests in the system (from its
    queue sizes, an independent bookkeeping path) against the arrival rate times the
    mean latency from the per-request records, on a stable 20,000-request run."""
    from fluidopt.deployment import load_deployment

    dep = load_deployment("llama2-7b-a100")
    w = _poisson_workload(20_000, rate=8.0, seed=11, max_prompt=1000, max_output=300)
    res = simulate(w, dep, name, capacity=118_784)
    s = res.summary()
    assert s["unfinished"] == 0
    span = res.run["end_time"] - res.run["start_time"]
    lam = len(w) / span
    L = res.run["in_system_integral"] / span
    W = s["mean_latency"]
    assert L == pytest.approx(lam * W, rel=0.02)
    # and against the classical form with λ from the arrival process alone
    lam_arr = (len(w) - 1) / (w.arrival[-1] - w.arrival[0])
    assert L == pytest.approx(lam_arr * W, rel=0.05)


def test_overflow_free_policy_needing_eviction_raises() -> None:
    """A policy that claims overflow-freedom and overflows must raise PolicyError."""

    class Liar(Policy):
        name = "liar"
        overflow_free = True

        def decide(self, state: StateView) -> Decision:
            return Decision(run=np.concatenate([state.resident, state.waiting]))

    w = Workload.from_frame(pd.DataFrame({"arrival": [0, 0], "prompt": [3, 3], "output": [2, 2]}))
    with pytest.raises(PolicyError, match="overflow_free"):
        simulate(w, unit_deployment(), Liar(), capacity=7)


# ---------------------------------------------------------------------- real trace against the reference
@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("sarathi", {}),
        ("sarathi", {"chunk_size": 256, "token_budget": 1024}),
        ("wait", {"thresholds": {0: 1, 1: 1}, "advance_resident": True}),
        ("wait", {"thresholds": {0: 3, 1: 1}}),
        ("fcfs", {}),
        ("vllm", {}),
        ("mc-sf", {}),
    ],
)
def test_engine_matches_reference_on_azure_lengths(name: str, params: dict[str, Any]) -> None:
    """The executor's fast paths (steady stretches, chunked prefill, the batch handled
    through its prefilling members) against the reference executor, bit for bit, on
    Azure-conv lengths with the fitted llama2-7b-a100 time model (non-dyadic: every
    float operation must happen in the same order) and a capacity tight enough to evict.
    """
    from fluidopt.deployment import load_deployment
    from fluidopt.traces import load_workload

    az = load_workload("azure-conv")
    rng = np.random.default_rng(5)
    n = 300
    idx = rng.integers(0, len(az), n)
    output = az.output[idx]
    frame = pd.DataFrame(
        {
            "arrival": np.cumsum(rng.exponential(1 / 6.0, n)),
            "prompt": az.prompt[idx],
            "output": output,
            "pred": np.maximum(output + rng.integers(-30, 30, n), 1),
            "type": (output > 200).astype(int),
        }
    )
    w = Workload.from_frame(frame, name="azure-lengths")
    dep = load_deployment("llama2-7b-a100")
    capacity = max(30_000, int((w.prompt + w.output).max()))
    res = simulate(w, dep, make_policy(name, **params), capacity=capacity)
    ref = reference_simulate(w, dep.with_capacity(capacity), capacity, make_policy(name, **params))
    for col in ("first_admitted", "start", "first_token", "completion", "finished", "evictions", "wasted_tokens"):
        np.testing.assert_array_equal(res.records[col].to_numpy(), np.asarray(ref[col]), err_msg=f"{name}: {col}")
    assert res.run["iterations"] == ref["iterations"]
    assert res.run["peak_kv"] == ref["peak_kv"]
    assert res.run["decisions"] < res.run["iterations"]  # the fast paths did run
