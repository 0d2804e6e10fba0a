"""Type binning: hand-worked examples of every edge convention."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fluidopt.binning import bin_types
from fluidopt.errors import InputError
from fluidopt.traces import load_workload
from fluidopt.workload import Workload


def wl(output, prompt=None, arrival=None):
    n = len(output)
    return Workload.from_frame(
        pd.DataFrame(
            {
                "arrival": arrival if arrival is not None else np.arange(n, dtype=float),
                "prompt": prompt if prompt is not None else [10] * n,
                "output": output,
            }
        )
    )


def test_explicit_edges_by_hand():
    # outputs 1,5,20 | 21,50 | 51,100 with edges [20, 50]; arrivals 0..6 -> duration 6 s
    w = wl([1, 5, 20, 21, 50, 51, 100], prompt=[1, 2, 3, 4, 5, 6, 7])
    t = bin_types(w, output_edges=[20, 50])
    assert [b.label for b in t.types] == ["d1-20", "d21-50", "d51-100"]
    assert [b.output_range for b in t.types] == [(1, 20), (21, 50), (51, 100)]
    assert [b.count for b in t.types] == [3, 2, 2]
    assert [b.rate for b in t.types] == pytest.approx([0.5, 2 / 6, 2 / 6])
    assert t.types[0].prompt_mean == pytest.approx(2.0) and t.types[0].output_mean == pytest.approx(26 / 3)
    assert list(t.labels) == ["d1-20"] * 3 + ["d21-50"] * 2 + ["d51-100"] * 2
    assert t.types[0].prompt_range is None and t.duration_s == 6.0


def test_empty_bins_are_dropped_and_last_edge_covers_the_max():
    t = bin_types(wl([3, 4, 90]), output_edges=[5, 10, 200])
    assert [(b.label, b.count) for b in t.types] == [("d1-5", 2), ("d11-200", 1)]


def test_quantile_bins_by_hand():
    # 1..100, 4 bins: inverted-CDF quartiles 25, 50, 75 and the max 100
    t = bin_types(wl(list(range(1, 101))), n_output_bins=4)
    assert [b.output_range for b in t.types] == [(1, 25), (26, 50), (51, 75), (76, 100)]
    assert all(b.count == 25 for b in t.types)
    # heavy ties merge quantiles: 90 ones and 10 twos in 4 bins -> 2 bins
    tied = bin_types(wl([1] * 90 + [2] * 10), n_output_bins=4)
    assert [(b.output_range, b.count) for b in tied.types] == [((1, 1), 90), ((2, 2), 10)]


def test_prompt_edges_cross_product():
    w = wl([10, 10, 30, 30], prompt=[100, 600, 100, 600])
    t = bin_types(w, output_edges=[20], prompt_edges=[512])
    assert [b.label for b in t.types] == ["p1-512d1-20", "p1-512d21-30", "p513-600d1-20", "p513-600d21-30"]
    assert [b.prompt_range for b in t.types] == [(1, 512), (1, 512), (513, 600), (513, 600)]
    assert list(t.labels) == ["p1-512d1-20", "p513-600d1-20", "p1-512d21-30", "p513-600d21-30"]
    assert list(t.assign([5, 25], [50, 550])) == ["p1-512d1-20", "p513-600d21-30"]
    # beyond the binned maxima (output 30, prompt 600) the longest bins are open above
    assert list(t.assign([31, 5, 31], [50, 9000, 9000])) == ["p1-512d21-30", "p513-600d1-20", "p513-600d21-30"]
    with pytest.raises(InputError):
        t.assign([5])


def test_distinct_outputs_without_edges_and_zero_duration():
    t = bin_types(wl([20, 50, 20], arrival=[0.0, 0.0, 0.0]))
    assert [(b.label, b.count, b.rate) for b in t.types] == [("d20", 2, None), ("d50", 1, None)]
    with pytest.raises(InputError, match="distinct"):
        bin_types(wl(list(range(1, 40))))


@pytest.mark.parametrize(
    "kwargs", [{"output_edges": [20, 10]}, {"output_edges": [0, 5]}, {"output_edges": []},
               {"output_edges": [20], "n_output_bins": 2}, {"n_output_bins": 0}, {"output_edges": [2.5]}]
)
def test_bad_edges(kwargs):
    with pytest.raises(InputError):
        bin_types(wl([1, 2, 3]), **kwargs)


def test_trace_bins_partition_the_requests():
    w = load_workload("azure-conv")
    t = bin_types(w, n_output_bins=5)
    assert sum(b.count for b in t.types) == len(w)
    assert sum(b.rate for b in t.types) == pytest.approx(len(w) / w.stats()["duration_s"])
    # contiguous ranges from 1 to the max output (1000 in this trace)
    assert t.types[0].output_range[0] == 1 and t.types[-1].output_range[1] == 1000
    for a, b in zip(t.types, t.types[1:]):
        assert b.output_range[0] == a.output_range[1] + 1
    # quantile bins of 19,366 requests hold about a fifth each (ties move the cut a little)
    assert all(abs(b.count - len(w) / 5) < 0.02 * len(w) for b in t.types)
    counts = pd.Series(t.labels).value_counts()
    assert all(counts[b.label] == b.count for b in t.types)
