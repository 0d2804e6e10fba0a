"""Calibration pipeline: per-type means, window rates, thresholds file, executor run."""

from __future__ import annotations


import pandas as pd
import pytest

from fluidopt.calibrate import arrays_from_workload, calibrate, resolve_deployment, window_rates
from fluidopt.deployment import Deployment, TimeModel
from fluidopt.errors import InputError
from fluidopt.threshold_file import load_thresholds
from fluidopt.workload import Workload

LIN = Deployment("toy", 5000, TimeModel.linear_kv(0.01, 1e-4))


def tiny() -> Workload:
    """Four requests over 3 s: outputs 2, 4 (bin ≤ 4) and 10, 10 (bin 5..10), prompt 10."""
    frame = pd.DataFrame({"arrival": [0.0, 1.0, 2.0, 3.0], "prompt": [10, 10, 10, 10], "output": [2, 4, 10, 10]})
    return Workload.from_frame(frame, name="tiny")


def test_type_means_are_per_request_means() -> None:
    """Bin 1: V = 2·10 + 3 = 23 and 4·10 + 10 = 50 → E[V] = 36.5 (V at the mean length 3
    would be 36: the per-request mean is the one the fluid model needs). Rate 2/3 s."""
    st = arrays_from_workload(tiny(), LIN, output_edges=[4])
    a = st.arrays
    assert a.rate == pytest.approx([2 / 3, 2 / 3])
    assert a.volume == pytest.approx([36.5, 155])
    assert a.work == pytest.approx([1e-4 * 36.5, 1e-4 * 155])
    assert a.output == pytest.approx([3, 10])
    # Σ_{i=1..o}(s+i)²: o = 2 → 121 + 144 = 265; o = 4 → 265 + 169 + 196 = 630
    assert st.stage_sq[0] == pytest.approx((265 + 630) / 2)


def test_window_rates() -> None:
    w = tiny()
    st = arrays_from_workload(w, LIN, output_edges=[4])
    win = window_rates(w, st.table, 1.0)
    # windows [0,1), [1,2), [2,3): one request each; bin 1 has 1, 1, 0
    assert win["windows"] == 3
    assert win["types"][0]["mean"] == pytest.approx(2 / 3)
    assert win["total"]["mean"] == pytest.approx(1.0)


def test_calibrate_writes_a_file_the_executor_runs(tmp_path) -> None:
    from fluidopt.executor.engine import simulate
    from fluidopt.traces import load_workload

    dep = resolve_deployment("llama2-7b-a100")
    w = load_workload("wait-two-type", rate=20, requests=1500)
    path = tmp_path / "t.json"
    rep = calibrate(w, dep, policy="wait", objective="latency", choose_binning=False, path=path)
    th = load_thresholds(path)
    assert th.policy == "wait" and [t.label for t in th.types] == ["d20", "d50"]
    assert th.inputs["workload_digest"] == w.digest() and th.inputs["epsilon"] == 0.05
    assert all(t.threshold >= 1 for t in th.types)
    # keep-up holds at the thresholds' own ΔT
    sol = rep["solution"]
    for t in th.types:
        assert t.threshold >= 1.05 * t.rate * sol["delta_t"] - 1e-9
    run = simulate(w, dep, _wait(th)).summary()
    assert run["evictions"] == 0 and run["unfinished"] == 0


def _wait(th):
    from fluidopt.executor.policy import make_policy

    return make_policy("wait", thresholds=th)


def test_calibrate_nested(tmp_path) -> None:
    from fluidopt.traces import load_workload

    dep = resolve_deployment("llama2-7b-a100")
    w = load_workload("wait-two-type", rate=20, requests=1500)
    rep = calibrate(w, dep, policy="nested-wait", path=tmp_path / "n.json")
    th = load_thresholds(tmp_path / "n.json")
    assert th.policy == "nested-wait" and th.segments[-1].end == 50
    assert rep["solution"]["feasible"] and rep["solution"]["total_memory"] <= 118784


def test_resolve_deployment_overrides() -> None:
    dep = resolve_deployment(None, d0=0.02, d1=1e-6, capacity=1000)
    assert dep.time.kind == "linear-kv" and dep.time.c0 == 0.02 and dep.capacity == 1000
    with pytest.raises(InputError):
        resolve_deployment(None)
    with pytest.raises(InputError):
        resolve_deployment("llama2-7b-a100", d0=0.1)


def test_binning_choice_keeps_the_best_candidate(tmp_path) -> None:
    """0.7 p512d20 + 0.3 p512d50 at 20/s: under the paper's rule one merged type (rate 20/s,
    stages advance in almost every batch) beats two types (the d50 type at 6/s pauses)."""
    from fluidopt.traces import load_workload

    dep = resolve_deployment("llama2-7b-a100")
    w = load_workload("wait-two-type", rate=20, requests=1500)
    rep = calibrate(w, dep, policy="wait", path=tmp_path / "t.json")
    scores = [c["score"] for c in rep["binning_candidates"] if "score" in c]
    assert rep["solution"]["latency_proxy"] == min(scores)
    th = load_thresholds(tmp_path / "t.json")
    # the first bin starts at 1; the last (here the only) one is open to +∞
    assert len(th.types) == 1 and th.types[0].output_range == (1, None)


def test_polish_by_simulation_only_accepts_improvements(tmp_path) -> None:
    from fluidopt.traces import load_workload

    dep = resolve_deployment("llama2-7b-a100")
    w = load_workload("wait-p512d20", rate=27, requests=800)
    rep = calibrate(w, dep, policy="wait", polish=2, path=tmp_path / "p.json")
    lat = [t["mean_latency"] for t in rep["polish"]]
    assert all(b < a for a, b in zip(lat, lat[1:]))
    final = load_thresholds(tmp_path / "p.json").types[0].threshold
    assert final == rep["polish"][-1]["thresholds"][0] and rep["inputs"]["polish_rounds"] == 2


def test_last_output_bin_is_open(tmp_path) -> None:
    """Held-out requests longer than every calibration request still have a type."""
    import numpy as np

    from fluidopt.executor.engine import simulate
    from fluidopt.executor.policy import make_policy
    from fluidopt.traces import load_workload

    dep = resolve_deployment("llama2-7b-a100")
    w = load_workload("wait-two-type", rate=20, requests=600)
    calibrate(w, dep, policy="wait", output_edges=[20], path=tmp_path / "t.json")
    th = load_thresholds(tmp_path / "t.json")
    assert [t.output_range for t in th.types] == [(1, 20), (21, None)]
    assert th.inputs["binning"]["last_bin"].startswith("open")
    assert th.assign_types(np.array([512, 512, 512]), np.array([20, 50, 10**6])).tolist() == [0, 1, 1]
    # a workload with outputs beyond the sample's maximum runs under these thresholds
    frame = w.head(50).to_frame()
    frame.loc[:9, "output"] = 400
    longer = Workload.from_frame(frame, name="longer")
    s = simulate(longer, dep, make_policy("wait", thresholds=th, advance_resident=True)).summary()
    assert s["unfinished"] == 0


def _halves(w: Workload) -> tuple[Workload, Workload]:
    k = len(w) // 2
    frame = w.to_frame()
    test = frame.iloc[k:].reset_index(drop=True)
    test["arrival"] -= test["arrival"].iloc[0]
    return (Workload.from_frame(frame.iloc[:k].reset_index(drop=True), name="train", meta=w.meta),
            Workload.from_frame(test, name="test", meta=w.meta))


def _azure_conv_at(scale: float, requests: int) -> Workload:
    from fluidopt.traces import load_workload

    native = load_workload("azure-conv")
    rate = (len(native) - 1) / float(native.arrival[-1] - native.arrival[0])
    return load_workload("azure-conv", rate=scale * rate, requests=requests)


def test_calibrated_nested_wait_runs_without_evictions_on_azure_conv(tmp_path) -> None:
    """Shipped trace (azure-conv, first 4,000 requests at 0.8× its native rate, inside
    the fluid region): thresholds and reserve calibrated on the first half, run on the
    held-out second half. Without the reserve the same thresholds evict (36 times when
    written); with it, none."""
    from fluidopt.bounds.fluid import fluid_from_arrays
    from fluidopt.executor.engine import simulate
    from fluidopt.executor.policy import make_policy

    dep = resolve_deployment("llama2-7b-a100")
    train, test = _halves(_azure_conv_at(0.8, 4000))
    assert fluid_from_arrays(arrays_from_workload(test, dep, n_output_bins=1).arrays).stable
    rep = calibrate(train, dep, policy="nested-wait", rule="advance", reserve="simulate", path=tmp_path / "n.json")
    th = load_thresholds(tmp_path / "n.json")
    assert th.reserve == rep["reserve"]["reserve"] > 0 and rep["reserve"]["confirmed"] is True
    assert th.inputs["reserve"]["delta"] == 0.01
    run = simulate(test, dep, make_policy("nested-wait", segments=th, advance_resident=True)).summary()
    assert run["evictions"] == 0 and run["unfinished"] == 0
    bare = simulate(test, dep, make_policy("nested-wait", segments=th, advance_resident=True, reserve=0)).summary()
    assert bare["evictions"] > 0  # the test can fail: the reserve is what prevents them


def test_calibrated_wait_runs_without_evictions_on_azure_conv(tmp_path) -> None:
    from fluidopt.executor.engine import simulate
    from fluidopt.executor.policy import make_policy

    dep = resolve_deployment("llama2-7b-a100")
    train, test = _halves(_azure_conv_at(0.8, 4000))
    calibrate(train, dep, policy="wait", rule="advance", reserve="simulate", path=tmp_path / "w.json")
    th = load_thresholds(tmp_path / "w.json")
    run = simulate(test, dep, make_policy("wait", thresholds=th, advance_resident=True)).summary()
    assert run["evictions"] == 0 and run["unfinished"] == 0


def test_reserve_estimate_by_hand() -> None:
    """Outputs 2, 4, 10, 10: E[o²]/(2E[o]) = 55/13; R = ⌈55/13 · ln 100⌉ = 20."""
    from fluidopt.calibrate import reserve_estimate

    est = reserve_estimate(tiny(), 0.01)
    assert est["mean_residual_output"] == pytest.approx(55 / 13)
    assert est["reserve"] == 20
    with pytest.raises(InputError):
        reserve_estimate(tiny(), 0.0)
