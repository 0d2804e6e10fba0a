"""Sweep runner: grid expansion, resumable Parquet results, failures, local processes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fluidopt.errors import FluidoptError, InputError
from fluidopt.sweep import Cell, SweepSpec, read_results, run_sweep

SPEC = {
    "name": "t",
    "workload": "kv-synthetic-1",
    "workload_params": {"rate": [1.0, 2.0]},
    "deployment": "unit",
    "capacity": 40,
    "policies": ["fcfs", {"name": "alpha-greedy", "params": {"alpha": [0.1, 0.2]}}],
    "seeds": 2,
}


def fake_runner(cell: Cell) -> dict:
    """Deterministic stand-in for an executor run: a pure function of the cell."""
    value = cell.seed * 100 + cell.workload_params["rate"] * 10 + cell.policy_params.get("alpha", 0)
    return {"key": cell.key, "policy": cell.policy, "seed": cell.seed, "value": value}


CALLS: list[str] = []


def counting_runner(cell: Cell) -> dict:
    CALLS.append(cell.key)
    return fake_runner(cell)


def failing_runner(cell: Cell) -> dict:
    if cell.seed == 1:
        raise InputError("boom", source="cell")
    return fake_runner(cell)


def test_grid_expands_every_axis_in_a_fixed_order():
    cells = SweepSpec.from_dict(SPEC).cells()
    # 2 rates × (1 fcfs + 2 alpha values) × 2 seeds
    assert len(cells) == 12
    assert len({c.key for c in cells}) == 12
    assert [c.policy for c in cells[:6]] == ["fcfs", "fcfs", "alpha-greedy", "alpha-greedy", "alpha-greedy",
                                              "alpha-greedy"]
    assert cells[2].policy_params == {"alpha": 0.1} and cells[4].policy_params == {"alpha": 0.2}
    assert SweepSpec.from_dict(SPEC).cells() == cells  # deterministic


def test_list_valued_parameter_is_a_one_element_axis():
    segments = [[20, 1], [50, 2]]
    spec = {**SPEC, "workload_params": {}, "seeds": 1,
            "policies": [{"name": "nested-wait", "params": {"segments": [segments]}}]}
    cells = SweepSpec.from_dict(spec).cells()
    assert len(cells) == 1 and cells[0].policy_params == {"segments": segments}


def test_key_changes_with_any_parameter():
    cell = SweepSpec.from_dict(SPEC).cells()[0]
    other = Cell(**{**cell.to_dict(), "seed": cell.seed + 1})
    assert other.key != cell.key
    assert Cell(**cell.to_dict()).key == cell.key


def test_results_are_appended_and_resumed(tmp_path: Path):
    CALLS.clear()
    out = tmp_path / "r.parquet"
    spec = SweepSpec.from_dict(SPEC)
    first = run_sweep(spec, out, workers=1, runner=counting_runner)
    assert len(first) == 12 and len(CALLS) == 12
    again = run_sweep(spec, out, workers=1, runner=counting_runner)
    assert len(CALLS) == 12, "finished cells must not be recomputed"
    pd.testing.assert_frame_equal(first, again)
    # a bigger spec reuses the 12 finished cells and runs only the new ones
    bigger = SweepSpec.from_dict({**SPEC, "seeds": 3})
    res = run_sweep(bigger, out, workers=1, runner=counting_runner)
    assert len(res) == 18 and len(CALLS) == 18


def test_half_finished_spec_resumes_without_recomputing(tmp_path: Path):
    CALLS.clear()
    out = tmp_path / "r.parquet"
    spec = SweepSpec.from_dict(SPEC)
    with pytest.raises(FluidoptError, match="6 of 12 cells failed"):
        run_sweep(spec, out, workers=1, runner=failing_runner)
    assert len(read_results(out)) == 6  # the finished half was saved before the error
    res = run_sweep(spec, out, workers=1, runner=counting_runner)
    assert len(res) == 12 and len(CALLS) == 6


def test_local_processes_give_the_same_rows_as_in_process(tmp_path: Path):
    spec = SweepSpec.from_dict(SPEC)
    serial = run_sweep(spec, tmp_path / "a.parquet", workers=1, runner=fake_runner)
    parallel = run_sweep(spec, tmp_path / "b.parquet", workers=2, runner=fake_runner)
    pd.testing.assert_frame_equal(serial, parallel)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"policies": []}, "policies"),
        ({"seeds": 0}, "seeds"),
        ({"warmup": 1.5}, "warmup"),
        ({"bogus": 1}, "unknown key"),
        ({"policies": [{"params": {}}]}, "policies"),
        ({"workload_params": {"rte": [1.0]}}, r"workload_params.*no parameter 'rte' \(did you mean rate\?\)"),
        ({"workload_params": {"requests": "many"}}, "requests must be an integer"),
    ],
)
def test_bad_specs_name_the_field(change, message):
    with pytest.raises(InputError, match=message):
        SweepSpec.from_dict({**SPEC, **change})


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"workload": "kv-synthetic-3"}, "workload", "unknown workload"),
        ({"deployment": ["unit", "nope"]}, "deployment", "unknown deployment 'nope'"),
        ({"capacity": [40, -1]}, "capacity", "positive integer"),
        ({"policies": ["fcfs", "fcfz"]}, "policies", "unknown policy 'fcfz'"),
        ({"policies": ["fcfs", {"name": "alpha-greedy", "params": {"alpha": [0.1, "x"]}}]}, "policies",
         "alpha must be a number"),
        ({"policies": ["fcfs", {"name": "alpha-greedy", "params": {"alfa": [0.1]}}]}, "policies",
         "no parameter 'alfa'"),
    ],
)
def test_typos_fail_before_the_first_cell(tmp_path: Path, change, field, message):
    """A typo anywhere in the grid is reported before any (valid) cell runs."""
    CALLS.clear()
    out = tmp_path / "r.parquet"
    spec = SweepSpec.from_dict({**SPEC, **change}, source="s.yaml")
    with pytest.raises(InputError, match=message) as info:
        run_sweep(spec, out, workers=1, runner=counting_runner)
    assert f"s.yaml: field '{field}'" in str(info.value)
    assert CALLS == [] and not out.exists()


def test_failure_message_says_where_finished_cells_are(tmp_path: Path):
    def always_fails(cell: Cell) -> dict:
        raise InputError("boom")

    out = tmp_path / "r.parquet"
    with pytest.raises(FluidoptError, match=f"no cell finished, nothing was written to {out}"):
        run_sweep(SweepSpec.from_dict(SPEC), out, workers=1, runner=always_fails)
    assert not out.exists()
    with pytest.raises(FluidoptError, match=f"the 6 finished cells are saved in {out}"):
        run_sweep(SweepSpec.from_dict(SPEC), out, workers=1, runner=failing_runner)


def test_cli_bad_spec_is_one_line(cli, tmp_path: Path):
    spec = tmp_path / "s.yaml"
    spec.write_text("workload: x\npolicies: []\n")
    res = cli("sweep", spec)
    assert res.code == 2 and res.err.count("\n") == 1 and "policies" in res.err
    assert not (tmp_path / "s.parquet").exists()


REAL = {
    "name": "real",
    "workload": "kv-synthetic-2",
    "deployment": "unit",
    "policies": ["mc-sf", {"name": "alpha-greedy", "params": {"alpha": [0.1, 0.3]}}],
    "seeds": 2,
}


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=["wall_seconds"]).reset_index(drop=True)


@pytest.mark.slow
def test_real_cells_are_identical_in_process_in_local_processes_and_on_dask(tmp_path: Path):
    from distributed import LocalCluster

    spec = SweepSpec.from_dict(REAL)
    serial = run_sweep(spec, tmp_path / "serial.parquet", workers=1)
    assert len(serial) == 6 and serial["completed"].gt(0).all()
    local = run_sweep(spec, tmp_path / "local.parquet", workers=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        dask = run_sweep(spec, tmp_path / "dask.parquet", scheduler=cluster.scheduler_address)
        # resuming against the cluster recomputes nothing and returns the same rows
        again = run_sweep(spec, tmp_path / "dask.parquet", scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(_comparable(serial), _comparable(local))
    pd.testing.assert_frame_equal(_comparable(serial), _comparable(dask))
    pd.testing.assert_frame_equal(dask, again)


def test_unreachable_scheduler_is_a_clear_error(tmp_path: Path):
    spec = SweepSpec.from_dict(REAL)
    with pytest.raises(FluidoptError, match="cannot reach the Dask scheduler"):
        run_sweep(spec, tmp_path / "r.parquet", scheduler="tcp://127.0.0.1:1", connect_timeout=1)
    assert not (tmp_path / "r.parquet").exists()
