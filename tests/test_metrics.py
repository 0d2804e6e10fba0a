"""Summary metrics on a hand-built run (values computed by hand in the docstrings)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fluidopt.errors import InputError
from fluidopt.executor.metrics import RunResult, aggregate_seeds, request_metrics, window_mask


def hand_run() -> RunResult:
    """Five requests (times in s):

        id  arrival  output  first_token  completion  evictions  wasted
        0   0        1       1            1           0          0
        1   1        3       2            5           1          2
        2   2        2       4            5           0          0
        3   3        5       5            9           0          0
        4   4        2       –            –  (unfinished)
    Run: 0 → 10 s, C = 10, Σ τ·KV = 50 token·s, Σ τ·waiting = 5, Σ τ·in-system = 20.
    """
    records = pd.DataFrame(
        {
            "id": [0, 1, 2, 3, 4],
            "arrival": [0.0, 1.0, 2.0, 3.0, 4.0],
            "prompt": [5, 5, 5, 5, 5],
            "output": [1, 3, 2, 5, 2],
            "first_admitted": [0.0, 1.0, 3.0, 4.0, np.nan],
            "start": [0.0, 3.0, 3.0, 4.0, np.nan],
            "first_token": [1.0, 2.0, 4.0, 5.0, np.nan],
            "completion": [1.0, 5.0, 5.0, 9.0, np.nan],
            "finished": [True, True, True, True, False],
            "evictions": [0, 1, 0, 0, 0],
            "wasted_tokens": [0, 2, 0, 0, 0],
        }
    )
    return RunResult(
        records=records,
        events=None,
        policy="hand",
        params={},
        workload_name="hand",
        workload_digest="0",
        workload_meta={},
        deployment="unit",
        time_model="unit",
        capacity=10,
        run={
            "iterations": 10,
            "start_time": 0.0,
            "end_time": 10.0,
            "peak_kv": 9,
            "kv_integral": 50.0,
            "waiting_integral": 5.0,
            "in_system_integral": 20.0,
        },
    )


def test_whole_run_summary() -> None:
    """latency (1, 4, 3, 6): mean 3.5, p99 = 4 + 0.97·(6 − 4) = 5.94 (linear, sorted 1 3 4 6);
    ttft (1, 1, 2, 2): mean 1.5; tpot over o > 1: (5−2)/2, (5−4)/1, (9−5)/4 → mean 3.5/3;
    tct 1 + 5 + 5 + 9 = 20, tel 20 − (0+1+2+3) = 14; throughput: the window has an
    unfinished request, so its span runs to the end of the run: 11 tokens / 10 s;
    mean_kv_util 50 / (10 s · 10 tokens) = 0.5; mean_in_system 20/10."""
    s = hand_run().summary()
    assert (s["n_requests"], s["completed"], s["unfinished"]) == (5, 4, 1)
    assert s["mean_latency"] == 3.5
    assert s["p99_latency"] == pytest.approx(5.94)
    assert s["mean_ttft"] == 1.5
    assert s["mean_tpot"] == pytest.approx(3.5 / 3)
    assert (s["tct"], s["tel"]) == (20.0, 14.0)
    assert s["throughput_tokens_per_s"] == pytest.approx(1.1)
    assert s["requests_per_s"] == pytest.approx(0.4)
    assert (s["evictions"], s["wasted_tokens"], s["peak_kv"], s["capacity"]) == (1, 2, 9, 10)
    assert s["mean_kv_util"] == 0.5 and s["mean_in_system"] == 2.0 and s["mean_waiting"] == 0.5


def test_central_window() -> None:
    """warmup = cooldown = 0.2 of 5 requests drops one at each end → ids 1, 2, 3, all
    finished: span from arrival 1 to completion 9 = 8 s; tokens 3 + 2 + 5 = 10 → 1.25/s;
    latency (4, 3, 6) → mean 13/3; tct 19."""
    s = hand_run().summary(warmup=0.2, cooldown=0.2)
    assert s["window_requests"] == 3
    assert s["mean_latency"] == pytest.approx(13 / 3)
    assert s["throughput_tokens_per_s"] == 1.25
    assert s["requests_per_s"] == 3 / 8
    assert s["tct"] == 19.0
    assert (s["evictions"], s["wasted_tokens"]) == (1, 2)
    # whole-run counts are unaffected by the window
    assert (s["completed"], s["unfinished"]) == (4, 1)


def test_window_orders_by_arrival_then_id() -> None:
    rec = pd.DataFrame({"id": [5, 3, 4, 9], "arrival": [0.0, 0.0, 1.0, 2.0]})
    # ranks: id 3 (0.0), id 5 (0.0), id 4 (1.0), id 9 (2.0); warmup 0.25 drops id 3
    assert window_mask(rec, warmup=0.25).tolist() == [True, False, True, True]
    assert window_mask(rec, cooldown=0.5).tolist() == [True, True, False, False]
    with pytest.raises(InputError):
        window_mask(rec, warmup=0.6, cooldown=0.5)


def test_request_metrics_columns() -> None:
    frame = request_metrics(hand_run().records)
    assert frame["ttft"].tolist()[:4] == [1.0, 1.0, 2.0, 2.0]
    assert frame["latency"].tolist()[:4] == [1.0, 4.0, 3.0, 6.0]
    assert math.isnan(frame["tpot"].iloc[0])  # o = 1
    assert frame["tpot"].iloc[1] == 1.5
    assert math.isnan(frame["latency"].iloc[4])


def test_to_dict_is_json_safe() -> None:
    import json

    d = hand_run().to_dict()
    text = json.dumps(d, allow_nan=False)
    assert '"policy": "hand"' in text


def test_aggregate_seeds_mean_and_std() -> None:
    """Values 1 and 3: mean 2, sample std √2; strings kept when equal, dropped otherwise."""
    agg = aggregate_seeds(
        [{"a": 1, "b": "x", "c": "p", "d": None}, {"a": 3, "b": "x", "c": "q", "d": None}]
    )
    assert agg["a"] == {"mean": 2.0, "std": pytest.approx(math.sqrt(2)), "n": 2}
    assert agg["b"] == "x" and "c" not in agg and agg["d"] is None
    assert aggregate_seeds([{"a": 4}])["a"] == {"mean": 4.0, "std": 0.0, "n": 1}
