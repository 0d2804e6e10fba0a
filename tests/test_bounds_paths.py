"""The path relaxation (fluidopt.bounds.paths): the pricing is exact, every path it returns
obeys the next-2 rule, and the bound, at the column generation's end and at random
multipliers, never exceeds the proven optimum of the textbook program."""

from __future__ import annotations

import numpy as np
import pytest

from fluidopt.bounds.path_pricing import PathPricer, next_two_violations
from fluidopt.bounds.paths import PathRelaxation, path_bound, round_up
from fluidopt.bounds.time_indexed import lp_solution
from fluidopt.completion.windows import prepare
from tests.test_bounds_peaks import KINDS, _optimum_textbook, random_instance, wl


def reference_cheapest(C: int, p, o, first, last, cost) -> np.ndarray:
    """Per item, the least cost of a next-2 path ending with it, by a plain DP over the
    last two entries of the path (no marginals), independent of PathPricer."""
    cells = sorted((c, i) for i in range(len(p)) for c in range(first[i], last[i] + 1) if np.isfinite(cost[i, c]))

    def held(m: int, gap: int) -> int:
        return p[m] - gap if gap < o[m] else 0

    end = np.full(len(p), np.inf)
    pair: dict[tuple[int, int], float] = {}
    for y, (cy, iy) in enumerate(cells):
        end[iy] = min(end[iy], cost[iy, cy])
        for x in range(y):
            cx, ix = cells[x]
            if ix == iy or p[ix] + held(iy, cy - cx) > C:
                continue
            best = cost[ix, cx]
            for w in range(x):
                cw, iw = cells[w]
                if (w, x) in pair and p[iw] + held(ix, cx - cw) + held(iy, cy - cw) <= C:
                    best = min(best, pair[(w, x)])
            pair[(x, y)] = best + cost[iy, cy]
            end[iy] = min(end[iy], pair[(x, y)])
    return end


def random_pricing_instance(rng: np.random.Generator):
    C = int(rng.integers(3, 11))
    n = int(rng.integers(1, 5))
    o = rng.integers(1, 5, size=n)
    o = np.minimum(o, C - 1)
    p = o + rng.integers(1, C - o + 1)  # s ≥ 1, p ≤ C
    first = rng.integers(0, 4, size=n) + o
    last = first + rng.integers(0, 5, size=n)
    cost = np.full((n, int(last.max()) + 1), np.inf)
    for i in range(n):
        k = last[i] - first[i] + 1
        cost[i, first[i]:last[i] + 1] = rng.integers(-6, 4, size=k) if rng.random() < 0.5 else rng.normal(-1, 3, size=k)
    return C, p, o, first, last, cost


def test_pricing_is_exact_against_a_plain_dp_and_returns_paths_of_that_cost() -> None:
    rng = np.random.default_rng(3)
    cut_short = 0
    for trial in range(150):
        C, p, o, first, last, cost = random_pricing_instance(rng)
        if trial % 2:  # no negative cost after some round: the DP may stop there
            late = int(rng.integers(0, cost.shape[1]))
            cost[:, late:] = np.abs(cost[:, late:])
        pricer = PathPricer(C, p, o, first, last)
        ref = reference_cheapest(C, p.tolist(), o.tolist(), first.tolist(), last.tolist(), cost)
        full = pricer.price(cost, every_round=True)
        assert np.allclose(full.end_value, ref, atol=1e-9), (trial, full.end_value, ref)
        # the DP cut after the last negative cost: the least cost is the same, every item's
        # value is that of a path it returns, and never below the item's own optimum
        cut = pricer.price(cost)
        assert cut.best == pytest.approx(ref.min(), abs=1e-9), trial
        assert np.all(cut.end_value >= ref - 1e-9), trial
        cut_short += cut.limit <= pricer.T
        for pricing in (full, cut):
            for m in range(len(p)):
                path = pricer.path(pricing, m)
                assert path[-1, 0] == m
                assert not next_two_violations(path, C, p, o), (trial, path)
                assert np.all((path[:, 1] >= first[path[:, 0]]) & (path[:, 1] <= last[path[:, 0]]))
                assert cost[path[:, 0], path[:, 1]].sum() == pytest.approx(pricing.end_value[m], abs=1e-9)
    assert cut_short >= 50


def test_the_rule_checker_reads_the_definition() -> None:
    """C = 10, peaks 6, 5, 4 (outputs 3, 3, 2). (0, 5), (1, 6): item 1 holds 5 − 1 = 4 in
    round 5, 6 + 4 = 10 fits; adding (2, 6) makes 6 + 4 + 4 = 14 at position 0."""
    p, o = np.array([6, 5, 4]), np.array([3, 3, 2])
    assert not next_two_violations([(0, 5), (1, 6)], 10, p, o)
    assert next_two_violations([(0, 5), (1, 6), (2, 6)], 10, p, o)
    assert not next_two_violations([(0, 5), (1, 6), (2, 9)], 10, p, o)  # 9 − 5 = 4 ≥ o_2: not resident
    assert next_two_violations([(1, 5), (0, 5)], 10, p, o)  # equal rounds in decreasing index
    assert next_two_violations([(0, 5), (0, 9)], 10, p, o)  # the same request twice in a row


def _random_multipliers(relax: PathRelaxation, rng: np.random.Generator, scale: float) -> np.ndarray:
    u = np.where(rng.random(relax.n_rows) < 0.3, -rng.exponential(rng.choice([0.05, 1.0, 5.0]), relax.n_rows), 0.0)
    u[relax.kind == 0] = rng.uniform(-5.0, 2.0 * scale, size=int(np.sum(relax.kind == 0)))
    return u


def _check_instance(w, C, rng, opt: float, pricer_factory=None, time_limit: float = 5.0) -> tuple[float, float]:
    """(best of the column generation and of random multipliers, LP) on one instance;
    asserts every path the pricing returns obeys the next-2 rule."""
    prep = prepare(w, C, executor=False)
    relax = PathRelaxation(prep.data)
    if pricer_factory is not None:
        relax.pricer = pricer_factory(relax)
    best = -np.inf
    for _ in range(4):
        u = _random_multipliers(relax, rng, opt)
        pricing = relax.pricer.price(relax.round_costs(u))
        best = max(best, relax.lagrangian(u, pricing))
        for m in np.flatnonzero(np.isfinite(pricing.end_value))[:3]:
            path = relax.pricer.path(pricing, int(m))
            assert not next_two_violations(path, C, relax.pricer.p, relax.pricer.o)
    lp = lp_solution(prep.data)
    result = path_bound(prep.data, time_limit=time_limit, lp=lp, relax=relax)
    return max(best, result.value), lp.value


def test_the_path_bound_never_exceeds_the_textbook_optimum_on_500_instances() -> None:
    """Five families (uniform, identical large requests, one request at p = C, prompts
    above C/2, peaks around C/2), both arrival models; the column generation's bound and
    L(u) at random multipliers, against the optimum of the plain textbook program."""
    rng = np.random.default_rng(2027)
    lifted = 0
    for trial in range(500):
        w, C = random_instance(rng, KINDS[trial % len(KINDS)])
        opt = _optimum_textbook(w, C)
        value, lp = _check_instance(w, C, rng, opt)
        assert value <= opt + 1e-6, (trial, value, opt, w.to_frame().to_dict("list"), C)
        lifted += round_up(value) > round_up(lp)
    assert lifted >= 20  # 24 with this seed: the paths see what the LP with peak rows does not


def test_a_rule_one_round_too_strict_is_caught_by_the_optimum() -> None:
    """Mutation: count a request as resident one round longer (c_q − c_l ≤ o_q). The paths
    then cut off real schedules, and the bound exceeds the optimum on some instance."""

    def strict(relax: PathRelaxation) -> PathPricer:
        pr = relax.pricer
        return PathPricer(pr.C, pr.p, pr.o + 1, pr.first, pr.last)

    rng = np.random.default_rng(2027)
    for trial in range(100):
        w, C = random_instance(rng, KINDS[trial % len(KINDS)])
        opt = _optimum_textbook(w, C)
        value, _ = _check_instance(w, C, rng, opt, strict, time_limit=0.5)
        if value > opt + 1e-6:
            break
    else:
        pytest.fail("the too-strict rule went unnoticed")


def test_a_rule_one_round_too_lenient_is_caught_by_the_rule_check() -> None:
    """Mutation: a request counted as resident one round less (c_q − c_l < o_q − 1). The
    pricing then returns paths that break the next-2 rule."""
    rng = np.random.default_rng(5)
    caught = 0
    for _ in range(100):
        C, p, o, first, last, cost = random_pricing_instance(rng)
        lenient = PathPricer(C, p, np.maximum(o - 1, 1), first, last)
        pricing = lenient.price(cost)
        caught += any(next_two_violations(lenient.path(pricing, m), C, p, o) for m in range(len(p)))
    assert caught >= 1


def test_a_chain_of_identical_large_requests_is_bounded_exactly() -> None:
    """Three requests s = 1, o = 7 (p = 8) with C = 10 complete 6 rounds apart at best
    (8 + 8 − 10): 7 + 13 + 19 = 39. A path cannot do better, so the bound is the optimum."""
    w = wl([0, 0, 0], [1, 1, 1], [7, 7, 7])
    prep = prepare(w, 10, executor=False)
    result = path_bound(prep.data, time_limit=10)
    assert result.status == "converged" and result.bound == 39


def test_the_bound_is_anytime_and_stops_at_a_known_schedule() -> None:
    from fluidopt.generators import kv_synthetic

    w, C = kv_synthetic(1, 1, 15)
    prep = prepare(w, C)
    seen: list[float] = []
    result = path_bound(prep.data, time_limit=1.0, schedules=[prep.incumbent], progress=seen.append)
    assert result.status in ("time_limit", "converged")
    assert result.seconds < 5.0
    assert seen == sorted(seen) and result.bound == seen[-1]
    assert result.bound <= prep.upper_bound
    low = path_bound(prep.data, time_limit=5.0, upper_bound=result.bound)
    assert low.status == "meets_upper_bound" and low.bound >= result.bound


def test_no_bound_when_the_pricing_table_would_not_fit() -> None:
    w = wl([0, 0], [1, 2], [3, 4])
    prep = prepare(w, 10, executor=False)
    result = path_bound(prep.data, max_table=10)
    assert result.status == "too_large" and result.bound is None


def test_the_driver_gives_the_path_bound_to_cpsat_and_names_it_when_it_wins() -> None:
    """An instance of the families above (C = 10) on which the LP with peak rows stays at
    31 while the path bound reaches the optimum, 33."""
    from fluidopt.completion.solve import solve_tct

    w = wl([0, 5, 5, 6], [2, 2, 2, 1], [7, 2, 1, 2])
    opt = _optimum_textbook(w, 10)
    seen: list[float] = []
    sol = solve_tct(w, 10, backend="cpsat", time_limit=20, executor=False,
                    progress=lambda stage, t, obj, bnd: seen.append(bnd) if bnd is not None else None)
    assert sol.status == "optimal" and sol.objective_tct == opt
    assert sol.info["path_bound"] == opt and sol.info["bound_source"] == "paths"
    assert sol.info["lp_bound"] < opt - 1
    assert max(seen) <= opt
    off = solve_tct(w, 10, backend="cpsat", time_limit=20, executor=False, path_bound=False)
    assert off.info["path_bound"] is None and off.info["path_bound_status"] == "skipped"
    assert off.objective_tct == opt and off.info["bound_source"] != "paths"


def test_benchmark_quick_mode(tmp_path) -> None:
    """The per-instance benchmark of the path bound runs and writes sane rows."""
    import subprocess
    import sys

    import pandas as pd

    from conftest import REPO

    out = tmp_path / "paths.csv"
    script = REPO / "benchmarks" / "kv_synthetic" / "paths.py"
    proc = subprocess.run([sys.executable, str(script), "--quick", "--out", str(out)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = pd.read_csv(out)
    assert len(rows) == 2 and set(rows["arrival_model"]) == {1, 2}
    assert (rows["paths"] <= rows["best_schedule"]).all() and (rows["lp"] <= rows["best_schedule"]).all()
    assert "| n | model |" in proc.stdout


def test_ctrl_c_stops_the_column_generation_with_its_best_bound() -> None:
    from fluidopt import interrupts
    from fluidopt.generators import kv_synthetic

    w, C = kv_synthetic(2, 1, 15)
    prep = prepare(w, C)
    seen: list[float] = []

    def progress(bound: float) -> None:
        seen.append(bound)
        if len(seen) == 3:
            raise KeyboardInterrupt

    interrupts.clear()
    result = path_bound(prep.data, time_limit=30, progress=progress)
    try:
        assert result.status == "interrupted" and interrupts.seen()
        assert result.bound == seen[-1] <= prep.upper_bound
    finally:
        interrupts.clear()


def test_the_master_keeps_the_process_thread_count_of_highs() -> None:
    """HiGHS fixes its thread count at the first solve of a process; a later model with
    another count fails. The master LP must not be that first solve with its own count."""
    import subprocess
    import sys

    code = (
        "from fluidopt.bounds.paths import path_bound\n"
        "from fluidopt.completion.solve import solve_tct\n"
        "from fluidopt.completion.windows import prepare\n"
        "from fluidopt.generators import kv_synthetic\n"
        "w, C = kv_synthetic(2, 1, 8)\n"
        "assert path_bound(prepare(w, C).data, time_limit=20).bound is not None\n"
        "sol = solve_tct(w, C, builder='pyomo', backend='highs', time_limit=20)\n"
        "print(sol.status)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "optimal"


def test_the_path_bound_is_below_every_policy_run_on_kv_instances() -> None:
    """[KV] instances with 15–25 requests, arrivals at 0 and spread: the path bound
    (a few seconds of column generation) against every executor policy, evicting or not,
    and the best schedule found."""
    from fluidopt.generators import kv_synthetic
    from tests.test_bounds_peaks import _policy_completions

    for model, seed, n in [(1, 3, 20), (2, 4, 20), (1, 11, 15), (2, 12, 25)]:
        w, C = kv_synthetic(model, seed, n=n)
        prep = prepare(w, C)
        result = path_bound(prep.data, time_limit=4.0, schedules=[prep.incumbent])
        assert result.bound is not None
        for name, c in _policy_completions(w, C).items():
            assert result.bound <= float(c.sum()), (model, seed, name)
        assert result.bound <= prep.upper_bound


def test_lower_bounds_report_progress_and_stop_after_ctrl_c() -> None:
    from fluidopt import interrupts
    from fluidopt.bounds.tct import lower_bounds
    from fluidopt.generators import kv_synthetic

    w, C = kv_synthetic(1, 1, 12)
    seen: list[tuple[str, float]] = []
    out = lower_bounds(w, C, time_limit=20, progress=lambda name, best: seen.append((name, best)))
    assert [name for name, _ in seen][:2] == ["lp", "paths"] and seen[-1][0] == "lagrangian"
    assert [b for _, b in seen] == sorted(b for _, b in seen) and seen[-1][1] <= out["best"]
    assert out["lagrangian"] is not None and out["paths"] is not None

    calls = {"paths": 0}

    def ctrl_c_in_the_path_bound(name: str, best: float) -> None:
        if name == "paths":
            calls["paths"] += 1
            if calls["paths"] == 2:  # the first improvement, inside the column generation
                raise KeyboardInterrupt

    interrupts.clear()
    try:
        stopped = lower_bounds(w, C, time_limit=20, progress=ctrl_c_in_the_path_bound)
        assert stopped["paths_status"] == "interrupted" and "lagrangian" not in stopped
        assert stopped["best"] == max(stopped["lp"], stopped["paths"], stopped["volume"])
    finally:
        interrupts.clear()
