"""Loaders on the shipped traces, the registry, and files in our schema.

Expected statistics come from the data's SOURCES table (computed upstream of this
package) and from independent stdlib parsing of the shipped files (csv/json/datetime).
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import statistics
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluidopt.errors import InputError
from fluidopt.traces import (
    DEFAULT_RATE,
    TRACES,
    load_workload,
    spec_names,
    trace_names,
    trace_path,
)

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"  # the developers' data folder, beside the checkout

# name: (requests, prompt mean, output mean, output median) from the data SOURCES table
SOURCE_TABLE = {
    "azure-code": (8819, 2048, 27.9, 13),
    "azure-conv": (19366, 1155, 211, 129),
    "mooncake-conversation": (12031, 12035, 343, 350),
    "mooncake-synthetic": (3993, 15326, 149, 69),
    "sharegpt": (30731, 2340, 439, 415),
    "arxiv-summarization": (28257, 2588, 291, 167),
}


def test_registry_names():
    assert trace_names() == list(TRACES)
    for name in ("azure-conv", "azure-code", "mooncake-conversation", "mooncake-synthetic", "sharegpt",
                 "arxiv-summarization"):
        assert name in trace_names()
    for name in ("kv-synthetic-1", "kv-synthetic-2", "wait-p512d20", "wait-two-type", "wait-p512d1000",
                 "wait-v1-low", "wait-v1-high", "wait-nested-synthetic", "lmsys-matched"):
        assert name in spec_names()


@pytest.mark.parametrize("name", list(SOURCE_TABLE))
def test_every_shipped_trace_matches_the_source_table(name):
    n, prompt_mean, output_mean, output_median = SOURCE_TABLE[name]
    w = load_workload(name)
    assert len(w) == n == TRACES[name].n_requests
    s = w.stats()
    assert s["prompt_mean"] == pytest.approx(prompt_mean, rel=5e-4)
    assert s["output_mean"] == pytest.approx(output_mean, abs=0.5)
    assert s["output_median"] == output_median
    assert np.all(np.diff(w.arrival) >= 0) and w.arrival[0] >= 0


def test_azure_conv_against_stdlib_parse():
    with gzip.open(trace_path("azure-conv"), "rt", newline="") as fh:
        rows = list(csv.DictReader(fh))
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    t0 = datetime.strptime(rows[0]["TIMESTAMP"][:26], fmt)  # strptime takes 6 fraction digits
    w = load_workload("azure-conv")
    assert len(w) == len(rows) == 19366
    assert statistics.fmean(int(r["ContextTokens"]) for r in rows) == pytest.approx(w.prompt.mean())
    assert statistics.fmean(int(r["GeneratedTokens"]) for r in rows) == pytest.approx(211.1259, abs=1e-4)
    assert w.output.mean() == pytest.approx(211.1259, abs=1e-4)
    assert w.prompt.mean() == pytest.approx(1154.6974, abs=1e-4)
    for i in (0, 1, 1000, len(rows) - 1):
        ti = datetime.strptime(rows[i]["TIMESTAMP"][:26], fmt)
        assert w.arrival[i] == pytest.approx((ti - t0).total_seconds(), abs=1e-6)
    # second request by hand: 18:15:50.9951690 - 18:15:46.6805900 = 4.3145790 s
    assert w.arrival[1] == pytest.approx(4.314579, abs=1e-7)
    assert (w.prompt[0], w.output[0]) == (374, 44)


def test_mooncake_ms_to_seconds_against_json():
    with gzip.open(trace_path("mooncake-synthetic"), "rt") as fh:
        recs = [json.loads(line) for line in fh]
    w = load_workload("mooncake-synthetic")
    ts = np.array([r["timestamp"] for r in recs], dtype=float)
    assert np.allclose(w.arrival, ts / 1000.0)
    assert w.prompt.tolist() == [r["input_length"] for r in recs]
    assert w.output.tolist() == [r["output_length"] for r in recs]
    assert w.stats()["duration_s"] == pytest.approx(1022.025)


@pytest.mark.skipif(not SHARED.exists(), reason="developer data folder not present")
@pytest.mark.parametrize("name", list(TRACES))
def test_shipped_gzip_is_byte_identical_to_upstream_copy(name):
    rel = TRACES[name].path.removesuffix(".gz")
    upstream = (SHARED / rel).read_bytes()
    assert hashlib.sha256(gzip.decompress(trace_path(name).read_bytes())).digest() == hashlib.sha256(upstream).digest()


def test_licences_and_sources_are_shipped():
    tdir = REPO / "instances" / "traces"
    text = (tdir / "SOURCES.md").read_text()
    assert "CC BY 4.0" in text and "Splitwise" in text and "ISCA 2024" in text
    for lic in ("AzurePublicDataset_LICENSE_CC-BY-4.0.txt", "Mooncake_LICENSE-APACHE_Apache-2.0.txt",
                "sarathi-serve_LICENSE_Apache-2.0.txt", "vidur_LICENSE_MIT.txt"):
        assert (tdir / "LICENSES" / lic).stat().st_size > 1000


def test_length_stats_arrivals_are_seeded_poisson():
    a = load_workload("sharegpt", requests=5000)
    b = load_workload("sharegpt", requests=5000)
    c = load_workload("sharegpt", seed=1, requests=5000)
    assert np.array_equal(a.arrival, b.arrival) and not np.array_equal(a.arrival, c.arrival)
    assert a.meta["rate"] == DEFAULT_RATE == 1.0
    gaps = np.diff(np.concatenate([[0.0], a.arrival]))
    assert gaps.mean() == pytest.approx(1.0, rel=0.05)  # 5000 exponential gaps: sd of the mean 1.4%
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, rel=0.06)
    fast = load_workload("arxiv-summarization", rate=20.0, requests=4000)
    assert len(fast) / fast.arrival[-1] == pytest.approx(20.0, rel=0.06)
    # lengths keep file order: first row of the arxiv file is 3772 / 54
    assert (fast.prompt[0], fast.output[0]) == (3772, 54)


def test_rate_rescales_a_timestamped_trace():
    w = load_workload("azure-code")
    target = 2 * w.stats()["rate_per_s"]
    r = load_workload("azure-code", rate=target)
    assert r.stats()["rate_per_s"] == pytest.approx(target)
    assert r.meta["time_scale"] == pytest.approx(0.5)
    assert np.allclose(r.arrival, w.arrival / 2)
    assert np.array_equal(r.output, w.output)


def test_requests_and_max_total_tokens():
    w = load_workload("mooncake-conversation", requests=100)
    assert len(w) == 100
    full = load_workload("mooncake-conversation")
    over = int(((full.prompt + full.output) > 4096).sum())
    f = load_workload("mooncake-conversation", max_total_tokens=4096)
    assert len(f) == len(full) - over and f.meta["overlong"]["affected"] == over
    assert f.peak_footprint.max() <= 4096
    c = load_workload("mooncake-conversation", max_total_tokens=4096, overlong="clip")
    assert len(c) == len(full) and c.peak_footprint.max() == 4096
    # clipping by hand: prompt 6758, output 500 -> output kept, prompt 4096 - 500
    assert (full.prompt[0], full.output[0]) == (6758, 500)
    assert (c.prompt[0], c.output[0]) == (3596, 500)
    with pytest.raises(InputError):
        load_workload("mooncake-conversation", max_total_tokens=4096, overlong="nope")


def _own_frame():
    return pd.DataFrame(
        {
            "id": [10, 11, 12],
            "arrival": [0.0, 0.5, 0.5],
            "prompt": [5, 6, 7],
            "output": [3, 4, 9],
            "pred_lo": [1, 4, 5],
            "pred_hi": [3, 8, 9],
            "pred": [2, 5, 10],
            "type": ["a", "b", "a"],
        }
    )


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet", ".jsonl"])
def test_own_schema_roundtrip(tmp_path, suffix):
    df = _own_frame()
    p = tmp_path / f"w{suffix}"
    if suffix == ".parquet":
        df.to_parquet(p, index=False)
    elif suffix == ".jsonl":
        p.write_text("\n".join(json.dumps(r) for r in df.to_dict(orient="records")) + "\n")
    else:
        df.to_csv(p, index=False)
    w = load_workload(str(p))
    assert w.id.tolist() == [10, 11, 12]
    assert w.output.tolist() == [3, 4, 9] and w.pred_hi.tolist() == [3, 8, 9] and w.pred.tolist() == [2, 5, 10]
    assert list(w.type) == ["a", "b", "a"]
    assert w.name == "w"


def test_type_labels_are_text_in_every_format(tmp_path):
    df = pd.DataFrame({"arrival": [0.0, 1.0], "prompt": [1, 1], "output": [1, 2], "type": [1, 2]})
    df.to_parquet(tmp_path / "a.parquet", index=False)
    df.to_csv(tmp_path / "a.csv", index=False)
    assert list(load_workload(str(tmp_path / "a.parquet")).type) == ["1", "2"]
    assert list(load_workload(str(tmp_path / "a.csv")).type) == ["1", "2"]


def test_csv_with_upstream_header_uses_that_loader(tmp_path):
    p = tmp_path / "mini_azure.csv"
    p.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        "2023-11-16 18:00:00.0000000,10,2\n"
        "2023-11-16 18:00:01.2500000,20,3\n"
    )
    w = load_workload(str(p))
    assert w.arrival.tolist() == [0.0, 1.25] and w.prompt.tolist() == [10, 20]
    q = tmp_path / "mini_mooncake.jsonl"
    q.write_text('{"timestamp": 0, "input_length": 5, "output_length": 2}\n'
                 '{"timestamp": 1500, "input_length": 6, "output_length": 1}\n')
    assert load_workload(str(q)).arrival.tolist() == [0.0, 1.5]


def test_spec_path_and_spec_name_agree(tmp_path):
    a = load_workload("wait-p512d20", requests=50)
    b = load_workload(str(REPO / "instances" / "workloads" / "wait-p512d20.yaml"), requests=50)
    assert a.digest() == b.digest()
    assert load_workload("wait-p512d20", seed=1, requests=50).digest() != a.digest()
