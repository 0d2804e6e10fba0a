"""SLO parsing, per-request attainment and goodput against hand-computed records."""

from __future__ import annotations

import pytest

from fluidopt.errors import InputError
from fluidopt.executor.slo import METRICS, Slo, SloTerm
from tests.test_metrics import hand_run

# Per-request metrics of hand_run() (times in s), from its docstring:
#   id  output  ttft  latency  tpot
#   0   1       1     1        –   (one token: no tpot)
#   1   3       1     4        1.5
#   2   2       2     3        1
#   3   5       2     6        1
#   4   2       –     –        –   (unfinished)


def test_parse_canonical_text_and_deadlines() -> None:
    slo = Slo.parse(" p99_ttft <= 2.0, p99_tpot<0.12 ,mean_latency<=30,goodput_requests_per_s>=1")
    assert str(slo) == "p99_ttft<=2,p99_tpot<0.12,mean_latency<=30,goodput_requests_per_s>=1"
    assert slo.terms[1] == SloTerm("p99_tpot", "<", 0.12)
    assert {k: [str(t) for t in v] for k, v in slo.deadlines().items()} == {
        "ttft": ["p99_ttft<=2"], "tpot": ["p99_tpot<0.12"], "latency": ["mean_latency<=30"],
    }
    # a lower bound on a request metric is checked on the summary but is no deadline
    assert Slo.parse("p50_ttft>=0.1").deadlines() == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p99_ttft", "no comparator"),
        ("p99_ttft=2", "no comparator"),
        ("p95_ttft<=2", "unknown metric 'p95_ttft'"),
        ("ttft<=2", "unknown metric 'ttft'"),
        ("p99_ttft<=-1", "finite number ≥ 0"),
        ("p99_ttft<=inf", "finite number ≥ 0"),
        ("p99_ttft<=fast", "is not a number"),
        ("p99_ttft<=2,,p99_tpot<=1", "has an empty term"),
        ("", "empty SLO"),
        ("p99_ttft<=2,p99_ttft<=3", "given twice"),
        ("p99_ttft<<2", "is not a number"),
        ("<=2", "not METRIC OP VALUE"),
    ],
)
def test_bad_slo_strings(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Slo.parse(text)


def test_every_metric_is_a_summary_field() -> None:
    s = hand_run().summary(slo="p99_ttft<=10")
    missing = [m for m in METRICS if m not in s]
    assert not missing


def test_meets_and_goodput_by_hand() -> None:
    """Deadlines ttft ≤ 1.5 and latency ≤ 5: request 0 (1, 1) meets; 1 (1, 4) meets;
    2 (ttft 2) and 3 (ttft 2, latency 6) miss; 4 is unfinished. Attainment 2/5;
    the window has an unfinished request, so its span is 0 → end of run (10 s):
    goodput 2/10 requests/s and (1 + 3)/10 tokens/s."""
    run = hand_run()
    slo = "p90_ttft<=1.5,mean_latency<=5"
    frame = run.to_frame(slo=slo)
    assert frame["meets_slo"].tolist() == [True, True, False, False, False]
    s = run.summary(slo=slo)
    assert s["slo_attainment"] == pytest.approx(0.4)
    assert s["goodput_requests_per_s"] == pytest.approx(0.2)
    assert s["goodput_tokens_per_s"] == pytest.approx(0.4)
    # p90 of ttft (1, 1, 2, 2) = 2 > 1.5 fails; mean latency 3.5 ≤ 5 holds; and one
    # request of the window is unfinished, which alone fails the verdict
    assert [t["ok"] for t in s["slo_terms"]] == [False, True]
    assert s["slo_window_unfinished"] == 1 and s["slo_met"] is False


def test_tpot_deadline_exempts_one_token_outputs_and_strict_comparator() -> None:
    """tpot < 1.5 (strict): request 1 (tpot 1.5) misses, 2 and 3 (tpot 1) meet, 0 has one
    output token and is exempt, 4 is unfinished."""
    frame = hand_run().to_frame(slo="p99_tpot<1.5")
    assert frame["meets_slo"].tolist() == [True, False, True, True, False]
    frame = hand_run().to_frame(slo="p99_tpot<=1.5")
    assert frame["meets_slo"].tolist() == [True, True, True, True, False]


def test_window_drops_the_unfinished_request_and_the_verdict_holds() -> None:
    """cooldown 0.2 drops the last request by arrival (the unfinished one): window 0–3,
    span 0 → 9 s (last completion). Deadline ttft ≤ 2 and tpot ≤ 1.5: all four meet;
    goodput 4/9 requests/s and (1 + 3 + 2 + 5)/9 tokens/s; p99 ttft of (1, 1, 2, 2) =
    2 ≤ 2 and p99 tpot of (1, 1, 1.5) = 1 + 0.98·0.5 = 1.49 ≤ 1.5; strictly below 2 fails."""
    s = hand_run().summary(cooldown=0.2, slo="p99_ttft<=2,p99_tpot<=1.5,slo_attainment>=1")
    assert s["slo_attainment"] == 1.0
    assert s["goodput_requests_per_s"] == pytest.approx(4 / 9)
    assert s["goodput_tokens_per_s"] == pytest.approx(11 / 9)
    assert s["goodput_tokens_per_s"] == pytest.approx(s["throughput_tokens_per_s"])
    assert s["slo_met"] is True and s["slo_window_unfinished"] == 0
    assert [t["value"] for t in s["slo_terms"][:2]] == [pytest.approx(2.0), pytest.approx(1.49)]
    tight = hand_run().summary(cooldown=0.2, slo="p99_ttft<2")
    assert tight["slo_met"] is False and tight["slo_attainment"] == 0.5


def test_summary_without_slo_has_no_slo_fields() -> None:
    s = hand_run().summary()
    assert not any(k.startswith(("slo", "goodput")) for k in s)
    assert "meets_slo" not in hand_run().to_frame()


def test_margin_is_the_worst_term_relative_to_its_limit() -> None:
    """p99 ttft 2 against 4 → 0.5; mean latency 3.5 against 2.5 → 1.4; a lower bound
    goodput ≥ 0.8 with goodput 0.4 → 0.8/0.4 = 2."""
    s = {"p99_ttft": 2.0, "mean_latency": 3.5, "goodput_requests_per_s": 0.4}
    assert Slo.parse("p99_ttft<=4").margin(s) == pytest.approx(0.5)
    assert Slo.parse("p99_ttft<=4,mean_latency<=2.5").margin(s) == pytest.approx(1.4)
    assert Slo.parse("goodput_requests_per_s>=0.8").margin(s) == pytest.approx(2.0)
    assert Slo.parse("p99_tpot<=1").margin(s) == float("inf")  # no value
