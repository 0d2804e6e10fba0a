"""Bad input through the CLI: one line on stderr naming file, row and field; exit 2;
no traceback; and `instances generate` leaves no output (or temporary) file behind."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

HEADER = "arrival,prompt,output\n"

# name: (file name, content, expected row, expected field, words in the message)
CASES = {
    "empty-file": ("w.csv", "", None, None, "empty file"),
    "header-only": ("w.csv", HEADER, None, None, "no requests"),
    "missing-column": ("w.csv", "arrival,prompt\n0,5\n", None, None, "missing column(s) output"),
    "misnamed-column": ("w.csv", "arrival,prompt,outptu\n0,5,3\n", None, "outptu", "unknown column(s) outptu"),
    "non-numeric": ("w.csv", HEADER + "0,5,3\n1,abc,3\n", 2, "prompt", "not a number ('abc')"),
    "infinite": ("w.csv", HEADER + "0,5,3\n1,inf,3\n", 2, "prompt", "not a finite number"),
    "ragged-long-row": ("w.csv", HEADER + "0,5,3\n0,10,5,7,9\n", 2, None, "5 fields but the header has 3"),
    "ragged-short-row": ("w.csv", HEADER + "0,5,3\n1,5\n", 2, "output", "2 fields but the header has 3"),
    "boolean-tokens": ("w.csv", HEADER + "0,5,true\n1,5,false\n", 1, "output", "not a number ('true')"),
    "huge-float-tokens": ("w.csv", HEADER + "0,1e30,3\n", 1, "prompt", "too large (got 1e30;"),
    "huge-int-tokens": ("w.csv", HEADER + "0,9223372036854775807,3\n", 1, "prompt",
                        "too large (got 9223372036854775807;"),
    "mooncake-boolean": ("m.jsonl", '{"timestamp": 0, "input_length": true, "output_length": 2}\n', 1,
                         "input_length", "a boolean is not a number"),
    "zero-tokens": ("w.csv", HEADER + "0,5,3\n1,5,0\n", 2, "output", "positive token count"),
    "negative-tokens": ("w.csv", HEADER + "0,-5,3\n", 1, "prompt", "positive token count"),
    "fractional-tokens": ("w.csv", HEADER + "0,5,3\n1,5,2.5\n2,5,3\n", 2, "output", "integer"),
    "nan": ("w.csv", HEADER + "0,5,3\n1,5,\n", 2, "output", "NaN"),
    "nan-arrival": ("w.csv", HEADER + "0,5,3\nnan,5,3\n", 2, "arrival", "NaN"),
    "decreasing": ("w.csv", HEADER + "0,5,3\n2,5,3\n1,5,3\n", 3, "arrival", "earlier"),
    "negative-arrival": ("w.csv", HEADER + "-1,5,3\n", 1, "arrival", "negative"),
    "bad-interval": ("w.csv", "arrival,prompt,output,pred_lo,pred_hi\n0,5,3,4,6\n", 1, "pred_lo", "exceeds"),
    "azure-decreasing": (
        "a.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:02.0000000,10,2\n"
        "2023-11-16 18:00:01.0000000,10,2\n",
        2, "TIMESTAMP", "earlier",
    ),
    "azure-bad-timestamp": (
        "a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\nyesterday,10,2\n", 1, "TIMESTAMP", "not a timestamp",
    ),
    "azure-zero-tokens": (
        "a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:00:02.0000000,0,2\n", 1, "ContextTokens",
        "positive",
    ),
    "mooncake-decreasing": (
        "m.jsonl",
        '{"timestamp": 500, "input_length": 5, "output_length": 2}\n'
        '{"timestamp": 100, "input_length": 5, "output_length": 2}\n',
        2, "timestamp", "earlier",
    ),
    "mooncake-bad-json": ("m.jsonl", '{"timestamp": 0, "input_length": 5, "output_length": 2}\n{oops\n', 2, None,
                          "not valid JSON"),
    "mooncake-nan": ("m.jsonl", '{"timestamp": 0, "input_length": 5, "output_length": null}\n', 1, "output_length",
                     "NaN"),
    "stats-negative": ("s.csv", "num_prefill_tokens,num_decode_tokens\n5,3\n7,-1\n", 2, "num_decode_tokens",
                       "positive"),
    "missing-type": ("w.csv", "arrival,prompt,output,type\n0,5,3,a\n1,5,3,\n", 2, "type", "missing type label"),
    "bad-yaml": ("spec.yaml", "generator: [unclosed\n", None, None, "not valid YAML"),
    "bad-spec-generator": ("spec.yaml", "generator: nope\n", None, "generator", "unknown generator"),
    "unknown-suffix": ("w.txt", "arrival,prompt,output\n0,1,1\n", None, None, "unknown file type"),
}


def check_one_line(res, *words):
    assert res.code == 2, (res.code, res.out, res.err)
    assert "Traceback" not in res.err
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    assert len(lines) == 1, res.err
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def write_case(tmp_path: Path, case: str) -> tuple[Path, int | None, str | None, str]:
    fname, content, row, field, words = CASES[case]
    p = tmp_path / fname
    p.write_text(content)
    return p, row, field, words


@pytest.mark.filterwarnings("error::RuntimeWarning")  # e.g. numpy's invalid-cast warning on huge values
@pytest.mark.parametrize("case", list(CASES))
def test_show_reports_file_row_field(cli, tmp_path, case):
    p, row, field, words = write_case(tmp_path, case)
    expected = [str(p), words]
    if row is not None:
        expected.append(f"row {row}")
    if field is not None:
        expected.append(f"field '{field}'")
    check_one_line(cli("instances", "show", str(p)), *expected)


@pytest.mark.parametrize("case", ["empty-file", "misnamed-column", "nan", "decreasing", "azure-decreasing",
                                  "mooncake-bad-json", "bad-yaml"])
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_generate_leaves_no_file_behind(cli, tmp_path, case, suffix):
    p, _, _, words = write_case(tmp_path, case)
    outdir = tmp_path / "out"
    outdir.mkdir()
    out = outdir / f"result{suffix}"
    check_one_line(cli("instances", "generate", str(p), "-o", str(out)), str(p), words)
    assert list(outdir.iterdir()) == []


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize(
    ("column", "words"),
    [
        ([True, True], "a boolean is not a number (got True)"),
        ([3, 2**63 - 1], "too large (got 9223372036854775807;"),
        ([3.0, 1e20], "too large (got 1e+20;"),
    ],
)
def test_parquet_booleans_and_huge_numbers(cli, tmp_path, column, words):
    import pandas as pd

    p = tmp_path / "w.parquet"
    pd.DataFrame({"arrival": [0.0, 1.0], "prompt": [5, 5], "output": column}).to_parquet(p)
    row = 1 if words.startswith("a boolean") else 2
    check_one_line(cli("instances", "show", str(p)), str(p), f"row {row}", "field 'output'", words)


def test_ragged_rows_are_not_read_as_an_index(tmp_path):
    """pandas reads the surplus leading fields of a long row as an index: (5, 7, 9) here."""
    from fluidopt.errors import InputError
    from fluidopt.traces import load_workload

    p = tmp_path / "w.csv"
    p.write_text(HEADER + "0,10,5,7,9\n")
    with pytest.raises(InputError, match="row 1: 5 fields"):
        load_workload(str(p))


def test_request_larger_than_capacity(cli, tmp_path):
    p = tmp_path / "w.csv"
    p.write_text(HEADER + "0,5,3\n1,30,20\n2,5,3\n")
    line = check_one_line(cli("instances", "show", str(p), "--capacity", "40"), "--capacity 40 is too small",
                          str(p), "row 2", "50 KV tokens")
    assert "1 such request" in line and not line.startswith(f"fluidopt: error: {p}")  # the option is to blame
    assert cli("instances", "show", str(p), "--capacity", "50").code == 0
    out = tmp_path / "o.csv"
    check_one_line(cli("instances", "generate", str(p), "-o", str(out), "--capacity", "40"), "capacity 40")
    assert not out.exists() and sorted(x.name for x in tmp_path.iterdir()) == ["w.csv"]


def test_shipped_trace_against_a_small_capacity(cli):
    check_one_line(cli("instances", "show", "azure-code", "--capacity", "4096"), "azure-code",
                   "--capacity 4,096 is too small")


def test_a_workload_against_its_own_capacity_blames_the_file(cli, tmp_path):
    """A [KV] synthetic file carries its capacity C; a request above it is the file's fault."""
    import pandas as pd

    from fluidopt.traces import write_parquet
    from fluidopt.workload import Workload

    p = tmp_path / "kv.parquet"
    frame = pd.DataFrame({"arrival": [0, 0], "prompt": [2, 9], "output": [3, 9]})
    write_parquet(Workload.from_frame(frame, meta={"capacity": 10}), p)
    check_one_line(cli("instances", "show", str(p)), str(p), "row 2", "field 'output'", "more than the capacity 10")


def test_unknown_name(cli):
    line = check_one_line(cli("instances", "show", "azure-conversation"), "azure-conversation", "unknown workload")
    assert "azure-conv" in line  # lists the valid names
    check_one_line(cli("instances", "generate", "no-such-spec", "-o", "x.csv"), "unknown workload")


def test_unreadable_paths(cli, tmp_path):
    missing = tmp_path / "nope" / "w.csv"
    check_one_line(cli("instances", "show", str(missing)), str(missing), "no such file")
    d = tmp_path / "dir.csv"
    d.mkdir()
    check_one_line(cli("instances", "show", str(d)), str(d), "directory")
    gz = tmp_path / "broken.csv.gz"
    gz.write_bytes(gzip.compress(b"arrival,prompt,output\n0,1,1\n" * 50)[:40])
    check_one_line(cli("instances", "show", str(gz)), str(gz), "gzip")
    pq = tmp_path / "broken.parquet"
    pq.write_bytes(b"PAR1 this is not parquet")
    check_one_line(cli("instances", "show", str(pq)), str(pq), "Parquet")
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    check_one_line(cli("instances", "show", str(binary)), str(binary))


def test_bad_output_path(cli, tmp_path):
    check_one_line(cli("instances", "generate", "kv-synthetic-1", "-o", str(tmp_path / "x.txt")), "output must end")
    check_one_line(cli("instances", "generate", "kv-synthetic-1", "-o", str(tmp_path / "no" / "x.csv")),
                   "does not exist")


def test_bad_options(cli):
    check_one_line(cli("instances", "show", "kv-synthetic-2", "--rate", "3"), "rate")
    check_one_line(cli("instances", "show", "sharegpt", "--requests", "0"), "requests")
    check_one_line(cli("instances", "show", "sharegpt", "--rate", "-1"), "'--rate'")
    line = check_one_line(cli("instances", "show", "wait-p512d20", "--rate", "-5"), "'--rate'")
    assert "wait-p512d20.yaml" not in line  # the option is to blame, not the shipped spec
    check_one_line(cli("instances", "show", "azure-conv", "--output-edges", "20,x"), "output_edges")
    check_one_line(cli("instances", "show", "azure-conv", "--output-edges", "50,20"), "strictly increasing")


@pytest.mark.parametrize("name", ["wait-p512d20", "azure-conv", "sharegpt"])
def test_bad_rate_is_the_callers_fault(name):
    from fluidopt.errors import InputError
    from fluidopt.traces import load_workload

    with pytest.raises(InputError, match=r"^field 'rate': rate must be a positive number of requests/s \(got -5\)"):
        load_workload(name, rate=-5)
