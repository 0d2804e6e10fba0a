"""Peak separation (fluidopt.bounds.peaks): the lemma holds in every schedule, the peak
intervals are disjoint, and the LP relaxation with peak rows never exceeds a proven
optimum or a policy's total completion time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fluidopt.bounds.peaks import check_intervals, interval_overlaps, peak_intervals, separation
from fluidopt.bounds.time_indexed import lp_relaxation
from fluidopt.bounds.volume import volume_bound
from fluidopt.completion.heuristics import heuristic_schedules
from fluidopt.completion.solve import solve_tct
from fluidopt.completion.windows import prepare
from fluidopt.workload import Workload


def wl(arrival, prompt, output) -> Workload:
    return Workload.from_frame(pd.DataFrame({"arrival": arrival, "prompt": prompt, "output": output}))


def random_instance(rng: np.random.Generator, kind: str) -> tuple[Workload, int]:
    """Small instances; ``kind`` picks a family, adversarial ones included."""
    n = int(rng.integers(1, 6))
    C = int(rng.integers(4, 15))
    if kind == "identical-large":  # a chain of identical requests with peaks above C/2
        s = int(rng.integers(1, 3))
        o = int(rng.integers(max(1, C // 2 - s + 1), C - s + 1))
        prompt, output = [s] * n, [o] * n
    elif kind == "one-full":  # one request at p = C among small ones
        prompt = [int(rng.integers(1, 3)) for _ in range(n)]
        output = [int(rng.integers(1, max(2, C // 3))) for _ in range(n)]
        output[0] = C - prompt[0]
    elif kind == "big-prompts":  # s > C/2: pairs that cannot overlap at all (the repair path)
        prompt = [int(rng.integers(C // 2 + 1, C)) for _ in range(n)]
        output = [int(rng.integers(1, C - s + 1)) for s in prompt]
    elif kind == "half":  # peaks exactly around C/2, C odd and even
        prompt = [int(rng.integers(1, 3)) for _ in range(n)]
        output = [max(1, C // 2 + int(rng.integers(-1, 2)) - s) for s in prompt]
    else:  # uniform, as in the [KV] family
        prompt = [int(rng.integers(1, max(2, C // 4 + 1))) for _ in range(n)]
        output = [int(rng.integers(1, C - s + 1)) for s in prompt]
    if rng.random() < 0.5:
        arrival = [0] * n
    else:
        arrival = sorted(int(x) for x in rng.integers(0, 2 * C // 3 + 1, size=n))
    w = wl(arrival, prompt, output)
    slack = int(rng.integers(0, 2)) if kind != "uniform" else int(rng.integers(0, 4))
    return w, max(C, int(w.peak_footprint.max()) + slack)


KINDS = ("uniform", "identical-large", "one-full", "big-prompts", "half")


def test_separation_hand_computed() -> None:
    """C = 10: i (s 2, o 6, p 8) then j (s 1, o 5, p 6): j holds 6 − Δ at c_i beside 8, so
    Δ ≥ 4 = 8 + 6 − 10. j then i: i holds 8 − Δ beside 6, Δ ≥ 4 too. Two copies of j:
    6 + 6 − 10 = 2. A pair with p_i + s_j > C cannot overlap: the later one needs its
    whole output (k: s 5, o 4, p 9; after i, 8 + 9 − 10 = 7 > o_k = 4)."""
    D = separation(np.array([2, 1, 5]), np.array([6, 5, 4]), 10)
    assert D[0, 1] == 4 and D[1, 0] == 4 and D[1, 1] == 2
    assert D[0, 2] == 4  # min(o_k = 4, 7)


def test_peak_intervals_hand_computed() -> None:
    """C = 10 (even): L = R = p − 5 for p > 5; p = 5 is out. C = 11 (odd): L = p − 5,
    R = p − 6, so R_i + L_j = p_i + p_j − 11."""
    L, R = peak_intervals(np.array([2, 1, 1]), np.array([6, 5, 4]), 10)
    assert L.tolist() == [3, 1, 0] and R.tolist() == [3, 1, 0]
    L, R = peak_intervals(np.array([2, 1]), np.array([6, 5]), 11)
    assert L.tolist() == [3, 1] and R.tolist() == [2, 0]


def test_a_chain_of_identical_large_requests_is_tight_against_the_intervals() -> None:
    """Three requests s = 1, o = 7 (p = 8) with C = 10: each must complete 6 rounds after
    the previous (8 + 8 − 10); the intervals have length 2p − C = 6 and the optimum
    7 + 13 + 19 = 39 packs them end to end."""
    w = wl([0, 0, 0], [1, 1, 1], [7, 7, 7])
    sol = solve_tct(w, 10, executor=False, improve=0)
    assert sol.objective_tct == 39
    c = np.sort(sol.starts + 7)
    assert np.diff(c).tolist() == [6, 6]
    L, R = peak_intervals(np.array([1]), np.array([7]), 10, count=np.array([3]))
    assert (L + R).tolist() == [6]
    assert not check_intervals(np.array([1]), np.array([7]), 10, L, R, np.array([3]))


@pytest.mark.parametrize("kind", KINDS)
def test_peak_intervals_are_valid_for_every_family(kind) -> None:
    rng = np.random.default_rng(11)
    for _ in range(100):
        w, C = random_instance(rng, kind)
        s, o = np.asarray(w.prompt), np.asarray(w.output)
        count = rng.integers(1, 3, size=s.shape[0])
        L, R = peak_intervals(s, o, C, count)
        assert not check_intervals(s, o, C, L, R, count)
        assert np.all(L >= 0) and np.all(R >= 0)


def _policy_completions(w: Workload, C: int) -> dict[str, np.ndarray]:
    from fluidopt.deployment import unit_deployment
    from fluidopt.executor.engine import simulate
    from fluidopt.executor.policy import make_policy
    from fluidopt.generators import with_prediction_interval

    out = {}
    wi = with_prediction_interval(w, 0.5, 0)
    for name in ("mc-sf", "sorted-f", "fcfs", "sf", "amin", "amax"):
        run = simulate(wi if name in ("amin", "amax") else w, unit_deployment(C), make_policy(name), capacity=C)
        rec = run.records.set_index("id").loc[w.id]
        if bool(rec["finished"].all()):
            out[name] = np.rint(rec["completion"].to_numpy()).astype(np.int64)
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_the_separation_lemma_holds_in_every_schedule_we_can_produce(kind) -> None:
    """Heuristic schedules, proven optima and executor runs (including runs that evict,
    whose completion times belong to a contiguous schedule too)."""
    rng = np.random.default_rng(5)
    checked = 0
    for trial in range(40):
        w, C = random_instance(rng, kind)
        s, o = np.asarray(w.prompt), np.asarray(w.output)
        D = separation(s, o, C)
        L, R = peak_intervals(s, o, C)
        schedules = {k: v + o for k, v in heuristic_schedules(w, C, executor=False).items()}
        schedules.update(_policy_completions(w, C))
        if trial % 4 == 0:
            schedules["optimum"] = solve_tct(w, C, executor=False, improve=0, check=False).starts + o
        for name, c in schedules.items():
            gap = c[None, :] - c[:, None]  # c_j − c_i
            later = (gap >= 0) & ~np.eye(c.shape[0], dtype=bool)
            assert np.all(gap[later] >= D[later]), (kind, name, c.tolist())
            assert not interval_overlaps(c, L, R), (kind, name)
            checked += 1
    assert checked >= 200


def _optimum_textbook(w: Workload, C: int) -> float:
    """The optimum from the formulation without any of the strengthenings under test."""
    sol = solve_tct(w, C, horizon="serial", aggregate=False, mip_start=False, drop_slack_rows=False, peaks=False,
                    executor=False, improve=0, check=False)
    assert sol.status == "optimal"
    return float(sol.objective_tct)


def test_lp_with_peak_rows_never_exceeds_the_proven_optimum_on_600_instances() -> None:
    rng = np.random.default_rng(2026)
    lifted = 0
    for trial in range(600):
        w, C = random_instance(rng, KINDS[trial % len(KINDS)])
        opt = _optimum_textbook(w, C)
        prep = prepare(w, C, executor=False)
        with_peaks, _, status = lp_relaxation(prep.data)
        assert status == "optimal"
        plain, _, _ = lp_relaxation(prepare(w, C, executor=False, peaks=False).data)
        assert volume_bound(w, C) <= opt
        assert plain <= with_peaks + 1e-6, trial
        assert with_peaks <= opt + 1e-6, (trial, w.to_frame().to_dict("list"), C)
        lifted += with_peaks > plain + 1e-6
    assert lifted >= 100  # the rows do bind on these families


def test_the_lp_solved_in_two_steps_equals_the_lp_solved_at_once() -> None:
    """Without, then with the peak rows on one model: the same optimum as one solve."""
    from fluidopt.bounds.time_indexed import _solve_relaxation
    from fluidopt.generators import kv_synthetic
    from fluidopt.models.tct_mip import build_arrays

    for model, seed, n in [(1, 1, 15), (2, 3, 18), (1, 0, 12)]:
        w, C = kv_synthetic(model, seed, n=n)
        data = prepare(w, C).data
        assert data.peak_rows().shape[0] > 0
        staged, _, status = lp_relaxation(data)
        at_once, _, _ = _solve_relaxation(build_arrays(data), None)
        plain, _, _ = lp_relaxation(prepare(w, C, peaks=False).data)
        assert status == "optimal" and staged == pytest.approx(at_once, rel=1e-9)
        assert plain < staged - 1.0  # the rows bind on these instances


def test_solver_bounds_and_every_reported_bound_stay_below_the_optimum() -> None:
    """Both backends, with progress events: no bound ever reported exceeds the optimum."""
    rng = np.random.default_rng(7)
    for trial in range(12):
        w, C = random_instance(rng, KINDS[trial % len(KINDS)])
        opt = _optimum_textbook(w, C)
        for backend in ("highs", "cpsat"):
            seen: list[float] = []
            sol = solve_tct(w, C, backend=backend, time_limit=5, executor=False,
                            progress=lambda stage, t, obj, bnd: seen.append(bnd) if bnd is not None else None)
            assert sol.objective_tct == opt and sol.best_bound == opt, backend
            assert seen and max(seen) <= opt + 1e-6, backend
            assert sol.info["check"]["accepted"]


def test_the_bound_is_below_every_policy_on_kv_instances() -> None:
    """[KV] instances with 20–30 requests: the LP with peak rows against the executor's
    policies (with and without evictions) and the best schedule found."""
    from fluidopt.generators import kv_synthetic

    for model, seed, n in [(1, 3, 20), (2, 4, 20), (1, 8, 30), (2, 9, 25)]:
        w, C = kv_synthetic(model, seed, n=n)
        prep = prepare(w, C)
        lp, _, status = lp_relaxation(prep.data)
        assert status == "optimal"
        for name, c in _policy_completions(w, C).items():
            assert lp <= float(c.sum()) + 1e-6, (model, seed, name)
        assert lp <= prep.upper_bound
