"""Workload: validation in from_frame, derived columns, views and provenance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fluidopt.errors import InputError
from fluidopt.workload import Workload


def frame(**cols):
    base = {"arrival": [0.0, 1.0, 2.5], "prompt": [3, 1, 2], "output": [2, 4, 1]}
    base.update(cols)
    return pd.DataFrame(base)


def test_from_frame_keeps_columns_and_default_ids():
    w = Workload.from_frame(frame(), name="t")
    assert len(w) == 3
    assert w.id.tolist() == [0, 1, 2]
    assert w.prompt.dtype == np.int64 and w.output.tolist() == [2, 4, 1]
    assert w.pred_lo is None and w.pred is None and w.type is None


def test_volume_and_peak_by_hand():
    # V = o*s + o(o+1)/2: (2*3 + 3) = 9, (4*1 + 10) = 14, (1*2 + 1) = 3
    w = Workload.from_frame(frame())
    assert w.volume.tolist() == [9.0, 14.0, 3.0]
    assert w.peak_footprint.tolist() == [5, 5, 3]


@pytest.mark.parametrize(
    "cols, row, field, text",
    [
        ({"prompt": [3, 0, 2]}, 2, "prompt", "positive"),
        ({"output": [2, -1, 1]}, 2, "output", "positive"),
        ({"output": [2, 4, 1.5]}, 3, "output", "integer"),
        ({"prompt": [3, "x", 2]}, 2, "prompt", "not a number"),
        ({"output": [2, None, 1]}, 2, "output", "NaN"),
        ({"arrival": [0.0, float("nan"), 2.0]}, 2, "arrival", "NaN"),
        ({"arrival": [0.0, 3.0, 2.0]}, 3, "arrival", "earlier"),
        ({"arrival": [-1.0, 0.0, 2.0]}, 1, "arrival", "negative"),
        ({"id": [5, 6, 5]}, 3, "id", "duplicate"),
        ({"pred_lo": [1, 5, 1], "pred_hi": [3, 6, 1]}, 2, "pred_lo", "exceeds"),
        ({"pred_lo": [1, 1, 1], "pred_hi": [3, 3, 1]}, 2, "pred_hi", "below"),
    ],
)
def test_bad_values_name_row_and_field(cols, row, field, text):
    with pytest.raises(InputError) as info:
        Workload.from_frame(frame(**cols), source="f.csv")
    err = info.value
    assert (err.source, err.row, err.field) == ("f.csv", row, field)
    assert text in str(err)


def test_fields_map_renames_the_field_in_errors():
    with pytest.raises(InputError) as info:
        Workload.from_frame(frame(prompt=[3, 0, 2]), source="a.csv", fields={"prompt": "ContextTokens"})
    assert info.value.field == "ContextTokens"
    assert "a.csv: row 2: field 'ContextTokens'" in str(info.value)


def test_empty_and_missing_columns():
    with pytest.raises(InputError, match="empty"):
        Workload.from_frame(frame().iloc[:0])
    with pytest.raises(InputError, match="missing column"):
        Workload.from_frame(frame().drop(columns=["output"]))
    with pytest.raises(InputError, match="together"):
        Workload.from_frame(frame(pred_lo=[1, 1, 1]))


def test_check_capacity_names_first_row():
    w = Workload.from_frame(frame())
    w.check_capacity(5)  # peak footprints are 5, 5, 3
    with pytest.raises(InputError) as info:
        w.check_capacity(4)
    assert info.value.row == 1 and "2 such request" in str(info.value)


def test_head_replace_roundtrip_and_digest():
    w = Workload.from_frame(frame(type=["a", "b", "a"]), name="t", meta={"seed": 1})
    h = w.head(2)
    assert len(h) == 2 and h.meta["head"] == 2 and h.meta["seed"] == 1
    r = w.replace(pred=[2, 2, 2], meta={"x": 1})
    assert r.pred.tolist() == [2, 2, 2] and r.meta == {"seed": 1, "x": 1}
    assert r.replace(pred=None).pred is None
    back = Workload.from_frame(w.to_frame())
    assert back.digest() == w.digest()
    assert w.replace(output=[2, 4, 2]).digest() != w.digest()
    with pytest.raises(TypeError):
        w.replace(bogus=1)


def test_stats_by_hand():
    s = Workload.from_frame(frame()).stats()
    assert s["n_requests"] == 3
    assert s["duration_s"] == 2.5
    assert s["rate_per_s"] == pytest.approx(2 / 2.5)
    assert s["prompt_mean"] == 2.0 and s["output_median"] == 2.0
    assert s["peak_footprint_max"] == 5
