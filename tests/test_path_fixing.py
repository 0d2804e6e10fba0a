"""Reduced-cost fixing from the path relaxation (fluidopt.bounds.path_fixing): the least
cost through an entry is exact, no proven optimum, policy run or heuristic schedule is
ever fixed out, a continuation left out of the bound is caught, and CP-SAT's exact
search with the fixing finds the same optima."""

from __future__ import annotations

import numpy as np
import pytest

from fluidopt.bounds.path_fixing import NEVER, completion_bounds, start_bounds
from fluidopt.bounds.path_pricing import PathPricer
from fluidopt.bounds.paths import PathRelaxation, path_bound
from fluidopt.bounds.time_indexed import lp_solution
from fluidopt.completion.solve import solve_tct
from fluidopt.completion.windows import prepare
from tests.test_bounds_paths import _random_multipliers, random_pricing_instance, reference_cheapest
from tests.test_bounds_peaks import KINDS, _policy_completions, random_instance


def test_the_cost_through_an_entry_is_the_least_cost_of_a_path_containing_it() -> None:
    """Against the plain DP of the pricing tests with a large bonus on the entry (an
    entry appears at most once in a path: equal rounds go in increasing index)."""
    rng = np.random.default_rng(11)
    bonus = 1e4
    for trial in range(120):
        C, p, o, first, last, cost = random_pricing_instance(rng)
        through = PathPricer(C, p, o, first, last).through(cost)
        for i in range(len(p)):
            for c in range(cost.shape[1]):
                if not np.isfinite(cost[i, c]):
                    assert through[i, c] == np.inf, (trial, i, c)
                    continue
                marked = cost.copy()
                marked[i, c] -= bonus
                ref = reference_cheapest(C, p.tolist(), o.tolist(), first.tolist(), last.tolist(), marked).min()
                assert through[i, c] == pytest.approx(ref + bonus, abs=1e-7), (trial, i, c)


def _optimum(w, C) -> tuple[float, np.ndarray]:
    """Value and start epochs of an optimum of the textbook program (HiGHS)."""
    sol = solve_tct(w, C, horizon="serial", aggregate=False, mip_start=False, drop_slack_rows=False, peaks=False,
                    executor=False, improve=0, check=False)
    assert sol.status == "optimal"
    return float(sol.objective_tct), np.asarray(sol.starts)


def _multipliers(relax: PathRelaxation, prep, rng, scale: float) -> list[np.ndarray]:
    """The LP's duals, the column generation's best and two random vectors."""
    lp = lp_solution(prep.data)
    best = path_bound(prep.data, time_limit=2.0, lp=lp, relax=relax, schedules=[prep.incumbent]).multipliers
    return [relax.lp_multipliers(lp), best] + [_random_multipliers(relax, rng, scale) for _ in range(2)]


def _fixed_out(bounds: list[list[int]], est: np.ndarray, starts: np.ndarray, value: float) -> list[int]:
    """Requests whose start in a schedule of Σ c = value has a bound above value."""
    return [i for i, t in enumerate(starts.tolist()) if bounds[i][t - est[i]] > value]


def _request_est(prep) -> np.ndarray:
    est = np.zeros(sum(len(m) for m in prep.data.members), dtype=np.int64)
    for g, members in enumerate(prep.data.members):
        est[np.asarray(members)] = prep.data.est[g]
    return est


def test_no_proven_optimum_is_fixed_out_on_500_instances() -> None:
    """Five families (adversarial ones included), both arrival models: at the LP's duals,
    the column generation's best multipliers and random ones, the optimal start of every
    request keeps a bound ≤ the optimum, while the fixing does remove starts."""
    rng = np.random.default_rng(808)
    removing = 0
    for trial in range(500):
        w, C = random_instance(rng, KINDS[trial % len(KINDS)])
        opt, starts = _optimum(w, C)
        prep = prepare(w, C, executor=False)
        relax = PathRelaxation(prep.data)
        est = _request_est(prep)
        for u in _multipliers(relax, prep, rng, opt):
            bounds = start_bounds(relax, u)
            assert not _fixed_out(bounds, est, starts, opt), (trial, w.to_frame().to_dict("list"), C)
            removing += sum(int(np.sum(np.asarray(b) > opt)) for b in bounds) > 0
    assert removing >= 500  # 591 of the 2,000 vectors (240 instances) with this seed: the fixing is not vacuous


def test_a_bound_without_the_continuation_is_caught_by_an_optimum(monkeypatch) -> None:
    """Mutation: the cost through an entry taken as the cheapest path *ending* there (the
    continuation's negative costs left out) overstates the bound, and some proven optimum
    gets fixed out."""

    def ending_only(self, cost):
        forward = self.price(cost, every_round=True)
        out = np.full((self.n, self.T + 1), np.inf)
        out[:, forward.start:forward.start + forward.table.shape[0]] = forward.table[:, :, 0].T
        return out

    monkeypatch.setattr(PathPricer, "through", ending_only)
    rng = np.random.default_rng(808)
    for trial in range(200):
        w, C = random_instance(rng, KINDS[trial % len(KINDS)])
        opt, starts = _optimum(w, C)
        prep = prepare(w, C, executor=False)
        relax = PathRelaxation(prep.data)
        lp = lp_solution(prep.data)
        if _fixed_out(start_bounds(relax, relax.lp_multipliers(lp)), _request_est(prep), starts, opt):
            return
    pytest.fail("the mutated bound never cut off an optimum")


def test_no_policy_run_is_fixed_out_on_kv_instances() -> None:
    """[KV] instances of 15–20 requests: every executor policy's schedule and the
    heuristic incumbent, where they lie in the windows, keep bounds ≤ their own Σ c."""
    from fluidopt.generators import kv_synthetic

    checked = 0
    for model, seed, n in [(1, 3, 20), (2, 4, 20), (1, 11, 15), (2, 12, 15)]:
        w, C = kv_synthetic(model, seed, n=n)
        prep = prepare(w, C)
        relax = PathRelaxation(prep.data)
        result = path_bound(prep.data, time_limit=4.0, schedules=[prep.incumbent], relax=relax)
        bounds = start_bounds(relax, result.multipliers)
        est = _request_est(prep)
        lst = est + np.array([len(b) for b in bounds]) - 1
        schedules = {name: c - np.asarray(w.output) for name, c in _policy_completions(w, C).items()}
        schedules["incumbent"] = np.asarray(prep.incumbent)
        for name, starts in schedules.items():
            value = float(np.sum(starts + np.asarray(w.output)))
            if np.all((starts >= est) & (starts <= lst)):
                checked += 1
                assert not _fixed_out(bounds, est, starts, value), (model, seed, name)
        by_group = completion_bounds(relax, result.multipliers)
        assert np.all(by_group[~np.isfinite(relax.round_costs(result.multipliers)[
            np.searchsorted(relax.group, np.arange(prep.data.n_groups))])] == NEVER)
    assert checked >= 8


@pytest.mark.parametrize("model", [1, 2])
def test_the_exact_search_with_the_fixing_finds_the_textbook_optimum(model) -> None:
    """Small [KV] instances (9 requests) solved by CP-SAT with the fixing, straight from
    the heuristic schedule (no neighbourhood search, so that the search does the proof),
    against the textbook optimum in HiGHS; the worker removes starts and never finds its
    hint outside them."""
    from fluidopt.generators import kv_synthetic

    removed = 0
    for seed in (1, 2, 3):
        w, C = kv_synthetic(model, seed, n=9)
        opt, _ = _optimum(w, C)
        sol = solve_tct(w, C, backend="cpsat", time_limit=30, threads=1, improve=0)
        assert sol.status == "optimal" and sol.objective_tct == opt, (seed, sol.status, sol.objective_tct, opt)
        assert sol.info["check"]["accepted"]
        fixing = sol.info.get("cpsat_fixing") or {}
        assert not fixing.get("contradicted"), seed
        removed += fixing.get("removed", 0)
    assert removed > 0


def test_allowed_starts_reads_the_bounds_from_each_window_start() -> None:
    from fluidopt.models.tct_cpsat import CpsatInstance, allowed_starts

    inst = CpsatInstance(10, [0, 3], [2, 2], [3, 3], [0, 3], [3, 5], start_bounds=[[5, 9, 7, 9], [8, 6, 12]])
    assert [a.tolist() for a in allowed_starts(inst, 8)] == [[0, 2], [3, 4]]
    assert [a.tolist() for a in allowed_starts(inst, 4)] == [[], []]
    assert allowed_starts(CpsatInstance(10, [0], [2], [3], [0], [3]), 8) is None


def test_the_worker_refuses_bounds_that_would_cut_off_its_hint() -> None:
    """Bounds that exclude the hint's start of one request contradict the claim: the
    worker removes nothing, says so, and still proves the same optimum."""
    from fluidopt.generators import kv_synthetic
    from fluidopt.models.tct_cpsat import from_tct_data
    from fluidopt.solver import SolveOptions, solve_cpsat

    w, C = kv_synthetic(1, 2, n=9)
    opt, _ = _optimum(w, C)
    prep = prepare(w, C, executor=False)
    est = _request_est(prep)
    windows = [prep.data.lst[g] - prep.data.est[g] + 1 for g in range(prep.data.n_groups)]
    bounds: list = [None] * len(est)
    for g, members in enumerate(prep.data.members):
        for i in members:
            bounds[i] = [0] * int(windows[g])
    bounds[0][int(prep.incumbent[0] - est[0])] = NEVER  # the hint's start of request 0
    inst = from_tct_data(prep.data, hint=prep.incumbent, upper_bound=prep.upper_bound, start_bounds=bounds)
    res = solve_cpsat(inst, SolveOptions(time_limit=30.0))
    assert res.info["fixing"]["contradicted"] and res.info["fixing"]["removed"] == 0
    assert res.status == "optimal" and res.objective == opt


def test_ctrl_c_during_the_fixing_stops_like_the_bound(monkeypatch) -> None:
    """A KeyboardInterrupt while the start bounds are computed ends the solve with its
    incumbent and bound (status interrupted), without the search."""
    import fluidopt.bounds.path_fixing as path_fixing
    from fluidopt import interrupts
    from fluidopt.bounds.checker import check_schedule
    from fluidopt.generators import kv_synthetic

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(path_fixing, "start_bounds", ctrl_c)
    interrupts.clear()
    w, C = kv_synthetic(1, 3, n=12)
    sol = solve_tct(w, C, time_limit=30.0, backend="cpsat", threads=1)
    assert sol.status == "interrupted" and sol.info["path_bound_status"] == "interrupted"
    assert sol.info["solve_seconds"] == 0.0 and not sol.info["path_fixing"]
    assert sol.best_bound is not None and sol.best_bound <= sol.objective_tct
    assert check_schedule(w, C, sol.starts).accepted and interrupts.seen()
    interrupts.clear()
