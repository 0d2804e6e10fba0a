"""Deployments: time models, marginal work, deployment files and the `deployments` commands."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fluidopt.deployment import (
    Deployment,
    TimeModel,
    deployment_names,
    load_deployment,
    unit_deployment,
    volume,
)
from fluidopt.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "instances" / "deployments"


# --------------------------------------------------------------------------------------
# Marginal work against a brute-force walk over a request's service iterations
# --------------------------------------------------------------------------------------


def brute_force_work(coeffs: dict[str, float], prompt: int, output: int, chunk: int | None) -> float:
    """Σ over the request's iterations of c_seq + c_kv·footprint + c_new·new + c_pf2·chunk².

    Walks the iterations one by one as the system model describes them: prefill chunks of
    ``chunk`` tokens (the whole prompt when None) that emit nothing, except the one that
    finishes the prompt, which emits token 1 (footprint s + 1); then one token per iteration.
    """
    step = prompt if chunk is None else chunk
    done, total, emitted = 0, 0.0, 0
    while emitted < output:
        if done < prompt:
            c = min(step, prompt - done)
            done += c
            new, sq = c, c * c
            if done == prompt:
                emitted = 1
            footprint = done + emitted
        else:
            emitted += 1
            new, sq = 1, 0
            footprint = prompt + emitted
        total += coeffs["c_seq"] + coeffs["c_kv"] * footprint + coeffs["c_new"] * new + coeffs["c_pf2"] * sq
    return total


def test_marginal_work_hand_example():
    # The docstring's example: c0 = 1, c_seq = 2, c_kv = 3, c_new = 5, c_pf2 = 7; s = 3, o = 2.
    tm = TimeModel("affine", 1.0, c_seq=2.0, c_kv=3.0, c_new=5.0, c_pf2=7.0)
    assert tm.marginal_work(3, 2) == pytest.approx(114.0)  # 92 + 22
    assert tm.marginal_work(3, 2, chunk_size=2) == pytest.approx(94.0)  # 46 + 26 + 22
    assert tm.marginal_work(3, 2, chunk_size=3) == pytest.approx(114.0)  # one chunk = whole prompt
    assert tm.marginal_work(3, 2, chunk_size=8) == pytest.approx(114.0)
    # The brute force agrees with the same hand numbers.
    coeffs = dict(c_seq=2.0, c_kv=3.0, c_new=5.0, c_pf2=7.0)
    assert brute_force_work(coeffs, 3, 2, None) == 114.0
    assert brute_force_work(coeffs, 3, 2, 2) == 94.0


def test_linear_kv_work_is_d1_times_volume():
    # s = 10, o = 3: footprints 11, 12, 13 → V = 36; d1 = 0.5 → u = 18.
    tm = TimeModel.linear_kv(0.2, 0.5)
    assert volume(10, 3) == 36.0
    assert tm.marginal_work(10, 3) == pytest.approx(18.0)


def test_unit_work_is_zero():
    tm = TimeModel.unit()
    assert tm.marginal_work(100, 7) == 0.0
    assert np.array_equal(tm.marginal_work([1, 2], [3, 4]), [0.0, 0.0])


coefficient = st.floats(min_value=0.0, max_value=10.0, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["linear-kv", "affine"]),
    c=st.tuples(coefficient, coefficient, coefficient, coefficient),
    prompt=st.integers(1, 300),
    output=st.integers(1, 60),
    chunk=st.one_of(st.none(), st.integers(1, 80)),
)
def test_marginal_work_matches_brute_force(kind, c, prompt, output, chunk):
    if kind == "linear-kv":
        tm = TimeModel.linear_kv(1.0, c[1])
    else:
        tm = TimeModel("affine", 1.0, c_seq=c[0], c_kv=c[1], c_new=c[2], c_pf2=c[3])
    expected = brute_force_work(tm.coefficients(), prompt, output, chunk)
    assert tm.marginal_work(prompt, output, chunk_size=chunk) == pytest.approx(expected, rel=1e-12, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    prompt=st.integers(1, 200),
    output=st.integers(1, 40),
    others=st.lists(st.tuples(st.integers(1, 500), st.integers(0, 64)), max_size=6),
)
def test_marginal_work_is_the_request_share_of_iteration_times(prompt, output, others):
    """Σ over the request's iterations of τ(batch with it) − τ(batch without it) = u.

    The background batch (decoding sequences with given footprints) is the same in every
    iteration; the request's own iterations are walked one by one.
    """
    tm = TimeModel("affine", 0.01, c_seq=1e-4, c_kv=3e-7, c_new=5e-5, c_pf2=9e-9)
    b0 = len(others)
    kv0 = sum(f for f, _ in others)
    new0 = b0
    total = 0.0
    for j in range(1, output + 1):
        footprint, new, sq = prompt + j, (prompt if j == 1 else 1), (prompt**2 if j == 1 else 0)
        with_it = tm.iteration_time(b0 + 1, kv0 + footprint, new0 + new, sq)
        without = tm.iteration_time(b0, kv0, new0, 0)
        total += with_it - without
    assert tm.marginal_work(prompt, output) == pytest.approx(total, rel=1e-9)


def test_marginal_work_vectorised_matches_scalar_calls():
    dep = load_deployment("llama2-7b-a100")
    s = np.array([1, 17, 512, 4000])
    o = np.array([1, 20, 50, 96])
    u = dep.marginal_work(s, o)
    assert isinstance(u, np.ndarray) and u.shape == (4,)
    for i in range(4):
        assert u[i] == pytest.approx(dep.marginal_work(int(s[i]), int(o[i])))
        assert u[i] == pytest.approx(brute_force_work(dep.time.coefficients(), int(s[i]), int(o[i]), None))
    uc = dep.marginal_work(s, o, chunk_size=512)
    for i in range(4):
        assert uc[i] == pytest.approx(brute_force_work(dep.time.coefficients(), int(s[i]), int(o[i]), 512))
    assert isinstance(dep.marginal_work(512, 20), float)


def test_bad_chunk_size_is_input_error():
    with pytest.raises(InputError, match="chunk_size"):
        TimeModel.linear_kv(1.0, 1.0).marginal_work(10, 3, chunk_size=0)


# --------------------------------------------------------------------------------------
# iteration_time
# --------------------------------------------------------------------------------------


def test_iteration_time_hand_example():
    # c0 = 1, c_seq = 2, c_kv = 3, c_new = 5, c_pf2 = 7; B = 2, ΣKV = 10, N_new = 3, Σchunk² = 4:
    # 1 + 4 + 30 + 15 + 28 = 78.
    tm = TimeModel("affine", 1.0, c_seq=2.0, c_kv=3.0, c_new=5.0, c_pf2=7.0)
    assert tm.iteration_time(2, 10, 3, 4) == 78.0
    assert isinstance(tm.iteration_time(2, 10, 3, 4), float)
    # linear-kv: d0 + d1·ΣKV = 0.5 + 0.25·10.
    assert TimeModel.linear_kv(0.5, 0.25).iteration_time(7, 10) == 3.0


def test_iteration_time_vectorised_and_broadcasting():
    tm = load_deployment("llama2-7b-a100").time
    b = np.array([1, 8, 64, 128])
    kv = np.array([[128], [4000]]) * b  # shape (2, 4)
    new = b
    t = tm.iteration_time(b, kv, new)
    assert t.shape == (2, 4)
    for i in range(2):
        for j in range(4):
            assert t[i, j] == pytest.approx(tm.iteration_time(int(b[j]), int(kv[i, j]), int(new[j])))
    # Lists are accepted too, and a scalar argument broadcasts.
    assert np.allclose(tm.iteration_time([1, 2], 100.0), [tm.iteration_time(1, 100), tm.iteration_time(2, 100)])


def test_unit_iteration_time_is_one_with_the_broadcast_shape():
    tm = TimeModel.unit()
    assert tm.iteration_time(5, 1000) == 1.0
    out = tm.iteration_time(1, [10, 20, 30])
    assert isinstance(out, np.ndarray) and out.shape == (3,) and np.all(out == 1.0)


def test_time_model_rejects_bad_coefficients():
    with pytest.raises(InputError, match="c_kv"):
        TimeModel("affine", 1.0, c_kv=-1.0)
    with pytest.raises(InputError, match="kind"):
        TimeModel("quadratic", 1.0)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="c_seq"):
        TimeModel("linear-kv", 1.0, c_seq=0.1)
    with pytest.raises(InputError, match="c0"):
        TimeModel("affine", 0.0)
    with pytest.raises(InputError, match="c0"):
        TimeModel("unit", 2.0)


# --------------------------------------------------------------------------------------
# Shipped deployments
# --------------------------------------------------------------------------------------


def test_shipped_deployments_load():
    names = deployment_names()
    assert {"unit", "llama2-7b-a100", "llama2-70b-2xa100"} <= set(names)
    for name in names:
        dep = load_deployment(name)
        assert dep.name == name
        assert dep.description
        assert dep.provenance


def test_required_capacities():
    assert load_deployment("llama2-7b-a100").capacity == 118_784  # Vidur: 7,424 blocks × 16
    assert load_deployment("llama2-7b-a100").chunk_size == 512
    assert load_deployment("llama2-70b-2xa100").capacity == 16_492  # [KV]
    assert load_deployment("llama2-7b-a100", capacity=5000).capacity == 5000


def test_unit_deployment_capacity_per_instance():
    dep = load_deployment("unit")
    assert dep.capacity is None and dep.time.is_unit
    with pytest.raises(InputError, match="capacity"):
        dep.require_capacity()
    assert dep.with_capacity(40).require_capacity() == 40
    assert unit_deployment(30).capacity == 30
    with pytest.raises(InputError, match="capacity"):
        dep.with_capacity(0)


def test_to_dict_from_dict_round_trip():
    for name in deployment_names():
        dep = load_deployment(name)
        assert Deployment.from_dict(dep.to_dict()) == dep
        # And through YAML text, as the files are written.
        assert Deployment.from_dict(yaml.safe_load(yaml.safe_dump(dep.to_dict(), allow_unicode=True))) == dep


def test_shipped_files_state_coefficients_in_seconds():
    # Whole-file reading independent of the loader: the 7B decode step of one sequence at
    # context 1024 must be about 10 ms, i.e. c0 ≈ 0.01 (s), not 10 (ms).
    raw = yaml.safe_load((SHIPPED / "llama2-7b-a100.yaml").read_text())
    assert 0.005 < raw["time"]["c0"] < 0.02
    raw70 = yaml.safe_load((SHIPPED / "llama2-70b-2xa100.yaml").read_text())
    assert 0.03 < raw70["time"]["c0"] < 0.1


# --------------------------------------------------------------------------------------
# Deployment file errors
# --------------------------------------------------------------------------------------

GOOD = {
    "name": "toy",
    "capacity": 1000,
    "time": {"kind": "affine", "c0": 0.01, "c_kv": 1e-7},
    "description": "a toy",
}


def _write(tmp_path: Path, data, name: str = "toy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def _with(**changes):
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in GOOD.items()}
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".")
            if value is None:
                data[outer].pop(inner)
            else:
                data[outer][inner] = value
        elif value is None:
            data.pop(key)
        else:
            data[key] = value
    return data


def test_good_file_loads(tmp_path):
    dep = load_deployment(str(_write(tmp_path, GOOD)))
    assert dep.capacity == 1000 and dep.time.c_kv == 1e-7 and dep.time.c_seq == 0.0


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"capacity": None}, "capacity"),
        ({"time": None}, "time"),
        ({"name": None}, "name"),
        ({"time.kind": None}, "time.kind"),
        ({"time.c0": None}, "time.c0"),
    ],
)
def test_missing_field_names_file_and_field(tmp_path, changes, field):
    path = _write(tmp_path, _with(**changes))
    with pytest.raises(InputError) as exc:
        load_deployment(str(path))
    assert exc.value.field == field and exc.value.source == str(path)
    assert "missing field" in str(exc.value) and str(path) in str(exc.value)


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"capacity": -3}, "capacity"),
        ({"capacity": "lots"}, "capacity"),
        ({"capacity": 10.5}, "capacity"),
        ({"capacity": True}, "capacity"),
        ({"max_batch": 0}, "max_batch"),
        ({"chunk_size": "512"}, "chunk_size"),
        ({"block_size": 0}, "block_size"),
        ({"preemption": "swap"}, "preemption"),
        ({"victim": "oldest"}, "victim"),
        ({"token_budget": "max"}, "token_budget"),
        ({"cpu_overhead": {"c0": -1.0, "c_seq": 0.0}}, "cpu_overhead.c0"),
        ({"cpu_overhead": {"c0": 1e-3, "c_sq": 0.0}}, "cpu_overhead.c_sq"),
        ({"cpu_overhead": {"c0": 1e-3, "included": "yes"}}, "cpu_overhead.included"),
        ({"name": ""}, "name"),
        ({"time.c_kv": -1e-7}, "time.c_kv"),
        ({"time.c0": "fast"}, "time.c0"),
        ({"time.c0": 0.0}, "time.c0"),
        ({"time.kind": "quadratic"}, "time.kind"),
        ({"time.kind": "linear-kv", "time.c_seq": 1e-4}, "time.c_seq"),
        ({"time.c_kvv": 1e-7}, "time.c_kvv"),
        ({"capacitty": 5}, "capacitty"),
        ({"provenance": "somewhere"}, "provenance"),
        ({"time": [1, 2]}, "time"),
    ],
)
def test_bad_value_names_file_and_field(tmp_path, changes, field):
    path = _write(tmp_path, _with(**changes))
    with pytest.raises(InputError) as exc:
        load_deployment(str(path))
    assert exc.value.field == field and exc.value.source == str(path)
    assert f"field '{field}'" in str(exc.value) and str(path) in str(exc.value)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(InputError, match="unknown deployment 'no-such-gpu'.*llama2-7b-a100"):
        load_deployment("no-such-gpu")


def test_unreadable_paths(tmp_path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(InputError, match="cannot read") as exc:
        load_deployment(str(missing))
    assert exc.value.source == str(missing)
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    with pytest.raises(InputError, match="cannot read"):
        load_deployment(str(folder))
    with pytest.raises(InputError, match="not valid YAML") as exc:
        load_deployment(str(_write(tmp_path, "name: [unclosed\n", "broken.yaml")))
    assert "broken.yaml" in str(exc.value)
    with pytest.raises(InputError, match="mapping"):
        load_deployment(str(_write(tmp_path, "- just\n- a list\n", "list.yaml")))


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def test_cli_list(cli):
    res = cli("deployments", "list", "--json")
    assert res.code == 0, res.err
    rows = {r["name"]: r for r in res.json()["deployments"]}
    assert rows["llama2-7b-a100"]["capacity"] == 118_784
    assert rows["llama2-7b-a100"]["time_model"] == "affine"
    assert rows["unit"]["capacity"] is None and rows["unit"]["time_model"] == "unit"
    table = cli("deployments", "list")
    assert table.code == 0 and "llama2-70b-2xa100" in table.out and "16,492" in table.out


def test_cli_show_types_linear_kv(cli):
    # u = d1·V with d1 read straight from the file; V by hand: 512·20 + 20·21/2 = 10,450.
    d1 = yaml.safe_load((SHIPPED / "llama2-7b-a100-linear.yaml").read_text())["time"]["c_kv"]
    res = cli("deployments", "show", "llama2-7b-a100-linear", "--json", "--type", "512:20", "--type", "10:1")
    assert res.code == 0, res.err
    data = res.json()
    assert data["capacity"] == 118_784 and data["time"]["kind"] == "linear-kv"
    t1, t2 = data["types"]
    assert (t1["prompt"], t1["output"], t1["volume"]) == (512, 20, 10_450)
    assert t1["marginal_work_s"] == pytest.approx(d1 * 10_450)
    assert t2["volume"] == 11  # one iteration at footprint 10 + 1
    assert data["provenance"]["generated_by"] == "scripts/fit_deployments.py"


def test_cli_show_affine_by_path_and_table(cli):
    path = SHIPPED / "llama2-7b-a100.yaml"
    res = cli("deployments", "show", str(path), "--type", "512:20")
    assert res.code == 0, res.err
    assert "118,784" in res.out and "c_pf2" in res.out and "512:20" in res.out and "10,450" in res.out


def test_cli_show_unit(cli):
    res = cli("deployments", "show", "unit", "--json", "--type", "3:2")
    assert res.code == 0, res.err
    data = res.json()
    assert data["capacity"] is None and data["types"][0]["marginal_work_s"] == 0.0
    assert data["types"][0]["volume"] == 9  # footprints 4 + 5
    assert cli("deployments", "show", "unit", "--capacity", "40", "--json").json()["capacity"] == 40
    assert cli("deployments", "show", "unit").code == 0


@pytest.mark.parametrize(
    "args, needle",
    [
        (("deployments", "show", "no-such-gpu"), "unknown deployment"),
        (("deployments", "show", "/no/such/file.yaml"), "/no/such/file.yaml: cannot read"),
        (("deployments", "show", "unit", "--type", "512x20"), "PROMPT:OUTPUT"),
        (("deployments", "show", "unit", "--type", "0:20"), "≥ 1"),
    ],
)
def test_cli_errors_are_one_line_exit_2(cli, args, needle):
    res = cli(*args)
    assert res.code == 2
    assert res.err.count("\n") == 1 and res.err.startswith("fluidopt: error:") and needle in res.err


def test_cli_bad_file_names_file_and_field(cli, tmp_path):
    path = _write(tmp_path, _with(**{"time.c_kv": -1.0}))
    res = cli("deployments", "show", str(path))
    assert res.code == 2 and res.err.count("\n") == 1
    assert str(path) in res.err and "field 'time.c_kv'" in res.err


def test_volume_hand_values():
    assert volume(3, 2) == 9.0  # 4 + 5
    assert np.array_equal(volume([1, 512], [1, 20]), [2.0, 10_450.0])
    assert math.isclose(volume(100, 1), 101.0)


def test_engine_settings_and_switchable_cpu_overhead(tmp_path):
    """Engine settings load from the file; the CPU overhead is a separate, switchable part:
    included, it is added to c0 and c_seq; the file keeps the compute part alone."""
    base = load_deployment("llama2-7b-a100")
    data = {**base.to_dict(), "block_size": 16, "preemption": "recompute", "victim": "latest-arrival",
            "token_budget": "padded", "cpu_overhead": {"c0": 0.001, "c_seq": 0.0001, "included": True}}
    path = tmp_path / "d.yaml"
    path.write_text(yaml.safe_dump(data))
    dep = load_deployment(str(path))
    assert dep.engine_settings == {"block_size": 16, "token_budget": "padded", "preemption": "recompute",
                                   "victim": "latest-arrival", "iteration_time": "affine"}
    assert dep.time.c0 == base.time.c0 + 0.001 and dep.time.c_seq == base.time.c_seq + 0.0001
    off = dep.with_cpu_overhead(False)
    assert off.time.c0 == pytest.approx(base.time.c0, rel=1e-12) and off.cpu_overhead["included"] is False
    assert off.with_cpu_overhead(True).time == dep.time
    # round trip: the file holds the compute part and the switch
    again = Deployment.from_dict(dep.to_dict())
    assert again.time.c0 == pytest.approx(dep.time.c0, rel=1e-12) and again.engine_settings == dep.engine_settings
    # defaults are today's engine and are not written out
    assert base.engine_settings == {"block_size": 1, "token_budget": "sum", "preemption": "restart", "victim": "policy",
                                    "iteration_time": "affine"}
    assert "preemption" not in base.to_dict()
    with pytest.raises(InputError, match="no separate cpu_overhead"):
        base.with_cpu_overhead(False)


def test_provenance_cites_only_sections_that_exist() -> None:
    """Every "FILE, 'Section'" a deployment cites is a heading of that file, and no
    numbered section (§N) of a SOURCES file is cited: ours have none."""
    import re

    from conftest import REPO

    for path in sorted((REPO / "instances" / "deployments").glob("*.yaml")):
        text = path.read_text()
        assert not re.search(r"SOURCES\.md §", text), f"{path.name} cites a numbered section"
        for file, section in re.findall(r"(instances/[\w/]+\.md), '([^']+)'", text):
            headings = [h.strip("# ").strip() for h in (REPO / file).read_text().splitlines() if h.startswith("#")]
            assert section in headings, f"{path.name} cites {file}, '{section}', which has no such heading"
