"""`fluidopt instances list | show | generate`."""

from __future__ import annotations

import pandas as pd
import pytest

from fluidopt.traces import load_workload


def test_show_azure_conv_json(cli):
    res = cli("instances", "show", "azure-conv", "--json")
    assert res.code == 0, res.err
    d = res.json()
    # numbers of the shipped file (data SOURCES table: 19,366 requests, prompt 1155, output 211 / 129 / 601)
    assert d["n_requests"] == 19366
    assert d["output_mean"] == pytest.approx(211.13, abs=0.01)
    assert d["prompt_mean"] == pytest.approx(1154.70, abs=0.01)
    assert d["output_median"] == 129 and d["output_p99"] == 601 and d["prompt_median"] == 1020
    assert d["duration_s"] == pytest.approx(3501.72, abs=0.01)
    assert d["rate_per_s"] == pytest.approx(5.53, abs=0.005)
    for key in ("n_requests", "duration_s", "rate_per_s", "prompt_mean", "prompt_median", "output_mean",
                "output_median", "output_p99"):
        assert key in d
    assert d["kind"] == "trace" and d["meta"]["licence"] == "CC-BY-4.0"


def test_show_table_is_readable(cli):
    res = cli("instances", "show", "azure-conv")
    assert res.code == 0
    assert "n_requests" in res.out and "19,366" in res.out and "{" not in res.out


def test_show_options(cli):
    d = cli("instances", "show", "sharegpt", "--rate", "4", "--seed", "2", "--requests", "2000", "--json").json()
    assert d["n_requests"] == 2000 and d["meta"]["seed"] == 2 and d["meta"]["rate"] == 4.0
    assert d["rate_per_s"] == pytest.approx(4.0, rel=0.1)
    k = cli("instances", "show", "kv-synthetic-2", "--seed", "11", "--json").json()
    assert 30 <= k["capacity"] <= 50 and k["fits_capacity"] is True and k["meta"]["seed"] == 11
    t = cli("instances", "show", "azure-conv", "--output-edges", "20,50", "--prompt-edges", "1024", "--json").json()
    assert len(t["types"]) == 6 and sum(x["count"] for x in t["types"]) == 19366
    table = cli("instances", "show", "wait-two-type", "--requests", "500")
    assert table.code == 0 and "Types" not in table.out
    binned = cli("instances", "show", "wait-two-type", "--requests", "500", "--output-bins", "2")
    assert "d1-20" in binned.out and "d21-50" in binned.out


def test_list(cli):
    res = cli("instances", "list", "--json")
    assert res.code == 0
    rows = {r["name"]: r for r in res.json()["instances"]}
    for name in ("azure-conv", "azure-code", "mooncake-conversation", "sharegpt", "arxiv-summarization",
                 "kv-synthetic-1", "wait-p512d20", "lmsys-matched"):
        assert name in rows
    assert rows["azure-conv"]["n_requests"] == 19366 and rows["wait-p512d20"]["kind"] == "spec"
    text = cli("instances", "list")
    assert text.code == 0 and "azure-code" in text.out and "kv-synthetic-2" in text.out


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet"])
def test_generate_writes_our_schema(cli, tmp_path, suffix):
    out = tmp_path / f"w{suffix}"
    res = cli("instances", "generate", "wait-two-type", "-o", out, "--requests", "300", "--seed", "4", "--json")
    assert res.code == 0, res.err
    d = res.json()
    assert d["n_requests"] == 300 and d["seed"] == 4 and out.exists()
    frame = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    assert list(frame.columns) == ["id", "arrival", "prompt", "output", "type"]
    back = load_workload(str(out))
    ref = load_workload("wait-two-type", seed=4, requests=300)
    assert back.digest() == ref.digest() == d["digest"]
    assert list(back.type) == list(ref.type)
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temporary left


def test_generate_with_predictions_and_table_output(cli, tmp_path):
    spec = tmp_path / "pred.yaml"
    spec.write_text(
        "generator: lengths-matching\nseed: 1\nprediction: {interval_alpha: 0.5}\n"
        "params: {prompt_mean: 40.62, prompt_median: 11, output_mean: 85.32, output_median: 45, n: 200, rate: 10}\n"
    )
    out = tmp_path / "pred.csv"
    res = cli("instances", "generate", spec, "-o", out)
    assert res.code == 0 and "wrote" in res.out
    w = load_workload(str(out))
    assert w.pred_lo is not None and (w.pred_lo <= w.output).all() and (w.output <= w.pred_hi).all()
    shown = cli("instances", "show", out, "--json").json()
    assert shown["has_prediction_interval"] is True and shown["kind"] == "file"


def test_same_seed_same_file(cli, tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert cli("instances", "generate", "kv-synthetic-2", "-o", a, "--seed", "9").code == 0
    assert cli("instances", "generate", "kv-synthetic-2", "-o", b, "--seed", "9").code == 0
    assert a.read_bytes() == b.read_bytes()


def test_parquet_keeps_the_capacity_of_a_kv_instance(cli, tmp_path):
    out = tmp_path / "kv.parquet"
    d = cli("instances", "generate", "kv-synthetic-1", "-o", out, "--seed", "5", "--json").json()
    shown = cli("instances", "show", out, "--json").json()
    assert shown["capacity"] == d["capacity"] and shown["meta"]["seed"] == 5
    assert shown["fits_capacity"] is True
    # an explicit capacity wins over the stored one
    peak = int(load_workload(str(out)).peak_footprint.max())
    assert cli("instances", "show", out, "--capacity", str(peak - 1)).code == 2
    assert cli("instances", "show", out, "--capacity", str(peak)).code == 0
