"""Capacity search: the bisection against known thresholds, replications, the fluid
bracket, and the acceptance checks against fresh simulations."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from fluidopt.capacity import (
    MIN_FRACTION,
    PolicySpec,
    Probe,
    RateSearch,
    Replica,
    fluid_limit,
    parse_policies,
    plan_replicas,
    run_probe,
    search_capacity,
)
from fluidopt.capacity.bisection import round_down
from fluidopt.capacity.search import answer, next_round
from fluidopt.deployment import load_deployment
from fluidopt.errors import InputError
from fluidopt.traces import load_workload


def drive(oks: list[Callable[[float], bool]], tops: list[float], precision: float = 0.02, slots: int = 1):
    """Run the search rounds against known pass/fail rules, one per replication."""
    replicas = [Replica(k, None) for k in range(len(oks))]
    searches = {(0, k): RateSearch(round_down(tops[k])) for k in range(len(oks))}
    rounds = 0
    while wanted := next_round(searches, 1, replicas, precision, slots):
        rounds += 1
        for i, k, rate in wanted:
            assert rate <= tops[k] and rate not in searches[(i, k)].probes
            searches[(i, k)].probes[rate] = {"ok": oks[k](rate), "reason": "fails", "summary": None, "replication": k}
    return answer(0, PolicySpec("x"), searches, replicas, precision), rounds


def test_bisection_brackets_a_known_threshold() -> None:
    res, rounds = drive([lambda r: r <= 3.7], [10.0])
    assert res.limited_by == "slo"
    assert res.max_rate <= 3.7 < res.fail_rate <= 1.02 * res.max_rate
    assert res.evaluations == rounds <= 10  # 10, 5, 2.5 then about six bisection steps
    assert res.max_rate == float(f"{res.max_rate:.4g}")  # rates are rounded to 4 significant digits


def test_fluid_limit_and_unattainable_ends() -> None:
    res, _ = drive([lambda r: True], [7.123456])
    assert res.limited_by == "fluid limit" and res.fail_rate is None
    assert res.max_rate == 7.123 and res.evaluations == 1  # the fluid limit rounded down
    res, _ = drive([lambda r: False], [10.0])
    assert res.limited_by == "unattainable" and res.max_rate is None and res.all_replications_rate is None
    assert res.fail_rate == pytest.approx(10 * MIN_FRACTION, rel=1e-3) and "every rate probed" in res.reason


def test_k_section_uses_idle_slots() -> None:
    one, rounds_one = drive([lambda r: r <= 3.7], [10.0], slots=1)
    four, rounds_four = drive([lambda r: r <= 3.7], [10.0], slots=4)
    assert four.max_rate <= 3.7 < four.fail_rate <= 1.02 * four.max_rate
    assert rounds_four < rounds_one


def test_replications_spread_and_all_replications_rate() -> None:
    res, _ = drive([lambda r: r <= 3.7, lambda r: r <= 3.0, lambda r: r <= 4.5], [10.0, 9.0, 11.0])
    assert res.max_rate <= 3.7 < res.fail_rate  # the first replication's own answer
    assert res.binding_replication == 1 and res.all_replications_rate <= 3.0 < 1.02 * res.all_replications_rate
    spread = res.spread()
    assert spread["n"] == 3 and spread["min"] == res.all_replications_rate and 4.4 < spread["max"] <= 4.5
    # verified: every replication was run at the all-replications rate and met the SLO there
    assert [p["ok"] for p in res.at_all_replications_rate] == [True, True, True]


def test_verification_failure_resumes_the_search() -> None:
    """Replication 1 passes in a band [2.5, 3.0] and below 1.0 only; its own bisection
    lands at 3.0, above replication 0's 2.2. Checked at 2.2 it fails, so its search
    resumes below 2.2 and ends near 1.0, where replication 0 is checked again."""
    res, _ = drive([lambda r: r <= 2.2, lambda r: r <= 1.0 or 2.5 <= r <= 3.0], [10.0, 10.0])
    assert 2.2 / 1.02 <= res.max_rate <= 2.2
    assert res.binding_replication == 1 and 1.0 / 1.02 <= res.all_replications_rate <= 1.0
    assert [p["ok"] for p in res.at_all_replications_rate] == [True, True]


def test_parse_policies() -> None:
    specs = parse_policies("wait, sarathi", [("wait.advance_resident", True)])
    assert [s.label for s in specs] == ["wait(advance_resident=true)", "sarathi"]
    assert specs[0].calibrated and specs[0].calibration_rule == "advance" and not specs[1].calibrated
    assert not PolicySpec("wait", {"thresholds": {"a": 1}}).calibrated
    for text, params, message in [
        ("", [], "no policy"),
        ("nosuch", [], "unknown policy"),
        ("vllm,vllm", [], "twice"),
        ("vllm", [("token_budget", 3)], "POLICY.KEY"),
        ("vllm", [("sarathi.token_budget", 3)], "POLICY.KEY"),
    ]:
        with pytest.raises(InputError, match=message):
            parse_policies(text, params)


def test_replications_by_seed_and_by_window() -> None:
    mode, reps, notes = plan_replicas("wait-p512d20", 500, None, None)
    assert mode == "seeds" and [r.seed for r in reps] == [None, 1, 2] and not notes  # spec seed 0, then 1, 2
    assert [r.seed for r in plan_replicas("wait-p512d20", 500, 5, 2)[1]] == [5, 6]
    mode, reps, notes = plan_replicas("azure-code", 3000, None, None)  # 8,819 requests: two windows
    assert mode == "windows" and [r.window for r in reps] == [None, (3000, 6000)] and notes
    assert plan_replicas("azure-code", None, None, None)[0] == "single"
    with pytest.raises(InputError, match="consecutive windows"):
        plan_replicas("azure-code", 3000, None, 3)
    with pytest.raises(InputError, match="≥ 1"):
        plan_replicas("azure-code", 3000, None, 0)


def test_fluid_limit_matches_the_closed_form_and_does_not_depend_on_the_rate() -> None:
    """One type p512d20: the largest stable rate is λ* = C/(c0·V + C·u) (M* ≤ C binds
    before A < 1 here or not; either way κλ_emp = λ*), with V = 20·512 + 20·21/2 =
    10,450 and u the deployment's marginal work. In the loader's rate unit the limit is
    λ*·r/λ_emp, λ_emp = n/span of the sample drawn at rate r."""
    dep = load_deployment("llama2-7b-a100")
    u = float(np.asarray(dep.marginal_work(np.array([512.0]), np.array([20.0]))).reshape(-1)[0])
    lam_star = min(dep.capacity / (dep.time.c0 * 10_450 + dep.capacity * u), 1 / u)
    for rate in (1.0, 23.0):
        w = load_workload("wait-p512d20", rate=rate, requests=500)
        lam_emp = len(w) / float(w.arrival[-1] - w.arrival[0])
        assert fluid_limit(w, dep, rate) == pytest.approx(lam_star * rate / lam_emp, rel=1e-9)
    w1, w2 = (load_workload("azure-conv", rate=r, requests=2000) for r in (1.0, 3.3))
    assert fluid_limit(w1, dep, 1.0) == pytest.approx(fluid_limit(w2, dep, 3.3), rel=1e-9)


def test_search_input_errors() -> None:
    specs = [PolicySpec("sarathi")]
    for kwargs, message in [
        ({"precision": 0.0}, "precision"),
        ({"requests": 1}, "≥ 2"),
        ({"warmup": 0.6, "cooldown": 0.5}, "warmup and cooldown"),
    ]:
        with pytest.raises(InputError, match=message):
            search_capacity("wait-p512d20", "llama2-7b-a100", specs, "p99_ttft<=1", **kwargs)
    with pytest.raises(InputError, match="not unit time"):
        search_capacity("wait-p512d20", "unit", specs, "p99_ttft<=1")


SLO = "p99_ttft<=0.5,p99_tpot<=0.05"


@pytest.mark.slow
def test_acceptance_on_a_generated_workload(cli) -> None:
    """At max_rate the SLO holds in a fresh `fluidopt simulate` with the same -n and
    --seed, at 1.1× it fails, max_rate ≤ the fluid limit, the bracket is within 5%; the
    all-replications rate holds on every replication."""
    res = search_capacity("wait-p512d20", "llama2-7b-a100", parse_policies("sarathi,vllm"), SLO,
                          requests=600, seed=4, replications=2, workers=1)
    d = res.to_dict()
    assert d["replication_mode"] == "seeds" and [r["seed"] for r in d["replicas"]] == [4, 5]
    for pol in d["policies"]:
        rate = pol["max_rate"]
        assert pol["limited_by"] == "slo" and rate <= d["fluid_limit"]
        assert pol["fail_rate"] <= 1.05 * rate
        common = ("-w", "wait-p512d20", "-d", "llama2-7b-a100", "-p", pol["name"], "-n", "600", "--seed", "4",
                  "--slo", SLO, "--json")
        at = cli("simulate", "--rate", str(rate), *common)
        above = cli("simulate", "--rate", str(1.1 * rate), *common)
        assert at.code == 0 and above.code == 0, at.err + above.err
        assert at.json()["slo_met"] is True and above.json()["slo_met"] is False
        assert at.json()["p99_ttft"] == pytest.approx(pol["metrics"]["p99_ttft"])
        assert f"-p {pol['name']} --rate {rate!r} -n 600 --seed 4 --slo '{SLO}'" in pol["check_command"]
        robust = pol["all_replications_rate"]
        assert robust == min(r["max_rate"] for r in pol["replications"]) <= rate
        for rep in res.replicas:
            probe = run_probe(Probe("wait-p512d20", "llama2-7b-a100", None, PolicySpec(pol["name"]), robust, 600,
                                    rep, SLO))
            assert probe["ok"], (pol["policy"], rep, probe["reason"])
    assert d["evaluations"] == len(d["probes"]) == sum(p["evaluations"] for p in d["policies"])


@pytest.mark.slow
def test_acceptance_with_calibrated_wait_on_a_trace(cli, tmp_path) -> None:
    """WAIT (authors' rule) recalibrated at every probe on azure-conv: the thresholds file
    saved for max_rate reproduces the verdict in `fluidopt simulate`; at 1.1× (WAIT
    recalibrated there, as the search does) the SLO fails."""
    slo = "p99_ttft<=2,p99_tpot<=0.12"
    out = cli("capacity", "-w", "azure-conv", "-d", "llama2-7b-a100", "-p", "wait",
              "--param", "wait.advance_resident=true", "-n", "1000", "--slo", slo, "--replications", "1",
              "--workers", "1", "--save-thresholds", tmp_path / "th", "--json")
    assert out.code == 0, out.err
    d = out.json()
    pol = d["policies"][0]
    rate, th = pol["max_rate"], tmp_path / "th" / "wait.json"
    assert pol["policy"] == "wait(advance_resident=true)" and rate <= d["fluid_limit"]
    assert pol["calibration"]["rule"] == "advance" and pol["calibration"]["thresholds"]
    assert str(th) in pol["check_command"]
    at = cli("simulate", "-w", "azure-conv", "-d", "llama2-7b-a100", "-p", "wait", "--rate", str(rate), "-n", "1000",
             "--param", "advance_resident=true", "--thresholds", th, "--slo", slo, "--json")
    assert at.code == 0 and at.json()["slo_met"] is True
    above = run_probe(Probe("azure-conv", "llama2-7b-a100", None, PolicySpec("wait", {"advance_resident": True}),
                            1.1 * rate, 1000, Replica(0, None), slo))
    assert above["ok"] is False and above["calibration"] is not None


@pytest.mark.slow
def test_dask_scheduler_gives_the_same_answer(tmp_path) -> None:
    from distributed import LocalCluster

    kwargs = dict(requests=300, replications=1, precision=0.05)
    # two local processes and two Dask workers: the same slots, so the same probes
    local = search_capacity("wait-p512d20", "llama2-7b-a100", parse_policies("sarathi"), SLO, workers=2, **kwargs)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        dask = search_capacity("wait-p512d20", "llama2-7b-a100", parse_policies("sarathi"), SLO,
                               scheduler=cluster.scheduler_address, **kwargs)
    assert dask.workers == 2
    assert dask.policies[0].max_rate == local.policies[0].max_rate
    assert [p["rate"] for p in dask.probes] == [p["rate"] for p in local.probes]
    assert math.isclose(dask.fluid_limit, local.fluid_limit)
