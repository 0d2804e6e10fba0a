"""Parameter sweeps: grids of (workload × deployment × policy × parameters × seed) runs.

A sweep spec (YAML or dict) expands into :class:`Cell` objects; each cell is one
executor run and yields one row of summary metrics. Cells run in local worker
processes by default, or on an existing Dask cluster (``scheduler="tcp://host:port"``).
Every finished cell is appended to a Parquet results file at once (rewritten
atomically), keyed by a hash of the cell's full parameters, so re-running the same spec
skips finished cells: a crash or a killed worker loses only the cells in flight.

Spec schema::

    name: wait-vs-sarathi            # recorded in every row
    workload: wait-p512d20           # trace name, workload-spec name or path
    workload_params: {rate: [18, 20, 22], requests: 2000}   # lists are grid axes
    deployment: llama2-7b-a100       # or a list (grid axis)
    capacity: null                   # or an int, or a list
    policies:                        # names, or {name: ..., params: {...}} (lists = axes)
      - sarathi
      - {name: wait, params: {advance_resident: [false, true]}}
    seeds: 3                         # an int n means seeds 0..n-1; or a list
    warmup: 0.1                      # summary window (fractions of requests)
    cooldown: 0.1

Every list is a grid axis, so a parameter whose value is itself a list (Nested WAIT's
segments) is written as a one-element axis: ``segments: [[[20, 1], [50, 2]]]``.

Randomness comes only from each cell's explicit seed, so a cell gives the same row
whichever way (in-process, local processes, Dask) it is run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from fluidopt.errors import FluidoptError, InputError
from fluidopt.io import atomic_path, check_output_path, read_mapping
from fluidopt.parallel import task_pool


@dataclass(frozen=True)
class Cell:
    """One run of a sweep: everything needed to reproduce it.

    Attributes
    ----------
    sweep
        Name of the sweep spec.
    workload
        Trace name, workload-spec name or path (``fluidopt.traces.load_workload``).
    workload_params
        Keyword arguments for ``load_workload`` (``rate`` in req/s, ``requests``).
    deployment
        Deployment name or path.
    capacity
        KV capacity override, tokens (``None``: the deployment's).
    policy, policy_params
        Registry name and parameters of the policy.
    seed
        Seed of the workload's randomness.
    warmup, cooldown
        Fractions of requests (by arrival) left out of the summary window.
    """

    sweep: str
    workload: str
    workload_params: dict[str, Any]
    deployment: str
    capacity: int | None
    policy: str
    policy_params: dict[str, Any]
    seed: int
    warmup: float = 0.0
    cooldown: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def key(self) -> str:
        """Stable identity of the cell: SHA-256 of its canonical JSON (16 hex digits)."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SweepSpec:
    """A parsed sweep spec; :meth:`cells` expands its grid in a fixed order."""

    name: str
    workload: str
    workload_params: dict[str, Any] = field(default_factory=dict)
    deployment: Any = "unit"
    capacity: Any = None
    policies: tuple[Any, ...] = ()
    seeds: tuple[int, ...] = (0,)
    warmup: float = 0.0
    cooldown: float = 0.0
    source: str = field(default="sweep spec", compare=False)  # the spec file, for error messages

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "sweep spec") -> SweepSpec:
        known = {"name", "workload", "workload_params", "deployment", "capacity", "policies", "seeds", "warmup",
                 "cooldown", "description"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}", source=source)
        for key in ("workload", "policies"):
            if not data.get(key):
                raise InputError("missing or empty", source=source, field=key)
        seeds = data.get("seeds", 1)
        if isinstance(seeds, int):
            if seeds < 1:
                raise InputError(f"must be ≥ 1 (got {seeds})", source=source, field="seeds")
            seeds = list(range(seeds))
        if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds):
            raise InputError("must be an integer count or a list of integers", source=source, field="seeds")
        params = data.get("workload_params") or {}
        if not isinstance(params, dict):
            raise InputError("must be a mapping", source=source, field="workload_params")
        _check_workload_params(params, source)
        for frac in ("warmup", "cooldown"):
            value = data.get(frac, 0.0)
            if not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise InputError(f"must be a fraction in [0, 1) (got {value!r})", source=source, field=frac)
        policies = data["policies"]
        if not isinstance(policies, list):
            policies = [policies]
        for p in policies:
            if not (isinstance(p, str) or (isinstance(p, dict) and isinstance(p.get("name"), str))):
                raise InputError(f"each policy must be a name or {{name: ..., params: ...}} (got {p!r})",
                                 source=source, field="policies")
        return cls(
            name=str(data.get("name") or Path(source).stem),
            workload=str(data["workload"]),
            workload_params=dict(params),
            deployment=data.get("deployment", "unit"),
            capacity=data.get("capacity"),
            policies=tuple(policies),
            seeds=tuple(seeds),
            warmup=float(data.get("warmup", 0.0)),
            cooldown=float(data.get("cooldown", 0.0)),
            source=source,
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SweepSpec:
        data = read_mapping(Path(path), what="a sweep spec mapping")
        return cls.from_dict(data, source=str(path))

    def validate(self) -> None:
        """Check every name and parameter of the grid, so that a typo fails before the
        first cell runs: the workload, each deployment and capacity, each policy with
        each of its parameter combinations.

        Raises
        ------
        InputError
            Naming the spec file and the field.
        """
        from fluidopt.deployment import load_deployment
        from fluidopt.executor.policy import make_policy
        from fluidopt.traces import check_workload_name

        source = self.source

        def fail(exc: InputError, fld: str) -> InputError:
            return InputError(str(exc), source=source, field=fld)

        try:
            check_workload_name(self.workload)
        except InputError as exc:
            raise fail(exc, "workload") from None
        for dep in _axis(self.deployment):
            try:
                load_deployment(str(dep))
            except InputError as exc:
                raise fail(exc, "deployment") from None
        for cap in _axis(self.capacity):
            if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
                raise InputError(f"must be a positive integer number of KV tokens (got {cap!r})", source=source,
                                 field="capacity")
        for pol in self.policies:
            name, pgrid = (pol, {}) if isinstance(pol, str) else (pol["name"], pol.get("params") or {})
            for pparams in _grid(pgrid):
                try:
                    make_policy(name, **pparams)
                except InputError as exc:
                    raise fail(exc, "policies") from None

    def cells(self) -> list[Cell]:
        """All cells, in the order: deployment, capacity, workload params, policy, policy params, seed."""
        out: list[Cell] = []
        for dep, cap, wparams in itertools.product(
            _axis(self.deployment), _axis(self.capacity), _grid(self.workload_params)
        ):
            for pol in self.policies:
                name, pgrid = (pol, {}) if isinstance(pol, str) else (pol["name"], pol.get("params") or {})
                for pparams in _grid(pgrid):
                    for seed in self.seeds:
                        out.append(
                            Cell(self.name, self.workload, wparams, str(dep), cap, name, pparams, int(seed),
                                 self.warmup, self.cooldown)
                        )
        return out


def _check_workload_params(params: dict[str, Any], source: str) -> None:
    """Every combination of ``workload_params`` must be keywords of ``load_workload``."""
    from fluidopt.params import check_keywords, parameters
    from fluidopt.traces import load_workload

    accepted = parameters(load_workload, skip=("name_or_path", "seed"))
    for combo in _grid(params):
        try:
            check_keywords(accepted, combo, what="the workload loader")
        except InputError as exc:
            raise InputError(str(exc), source=source, field="workload_params") from None


def _axis(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _grid(params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    keys = sorted(params)
    for combo in itertools.product(*(_axis(params[k]) for k in keys)):
        yield dict(zip(keys, combo))


def run_cell(cell: Cell) -> dict[str, Any]:
    """Run one cell in the executor and return its result row (JSON-safe values)."""
    from fluidopt.deployment import deployment_for
    from fluidopt.executor.diagnostics import thrash_warning
    from fluidopt.executor.engine import simulate
    from fluidopt.executor.policy import make_policy
    from fluidopt.traces import load_workload

    start = time.perf_counter()
    workload = load_workload(cell.workload, seed=cell.seed, **cell.workload_params)
    deployment = deployment_for(cell.deployment, workload.meta, capacity=cell.capacity)
    result = simulate(workload, deployment, make_policy(cell.policy, **cell.policy_params))
    summary = result.summary(warmup=cell.warmup, cooldown=cell.cooldown)
    row: dict[str, Any] = {"key": cell.key, "cell": json.dumps(cell.to_dict(), sort_keys=True, default=str)}
    row.update({"sweep": cell.sweep, "workload": cell.workload, "deployment": cell.deployment,
                "capacity_override": cell.capacity, "policy": cell.policy, "seed": cell.seed})
    row.update({f"workload.{k}": v for k, v in cell.workload_params.items()})
    row.update({f"policy.{k}": v for k, v in cell.policy_params.items()})
    row.update({k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool)) or v is None})
    row["warning"] = thrash_warning(result) or ""  # text in every row: one column type in Parquet
    row["workload_digest"] = workload.digest()
    row["wall_seconds"] = time.perf_counter() - start
    return row


def read_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """The results file as a DataFrame (empty if it does not exist yet)."""
    p = Path(path)
    if not p.exists():
        return pd.DataFrame()
    try:
        return pd.read_parquet(p)
    except Exception as exc:  # a corrupt or foreign file: say which
        raise InputError(f"not a readable Parquet results file ({exc})", source=str(p)) from None


def _append(path: Path, frame: pd.DataFrame, rows: list[dict[str, Any]]) -> pd.DataFrame:
    merged = pd.concat([frame, pd.DataFrame(rows)], ignore_index=True) if len(frame) else pd.DataFrame(rows)
    with atomic_path(path) as tmp:
        merged.to_parquet(tmp, index=False)
    return merged


ProgressFn = Callable[[int, int], None]


def run_sweep(
    spec: SweepSpec,
    results: str | os.PathLike[str],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: ProgressFn | None = None,
    runner: Callable[[Cell], dict[str, Any]] = run_cell,
    connect_timeout: float = 10.0,
) -> pd.DataFrame:
    """Run every unfinished cell of ``spec`` and return all its rows, in cell order.

    Parameters
    ----------
    spec
        The sweep.
    results
        Parquet file; finished cells already in it are skipped, new ones appended.
    workers
        Local worker processes (default: the machine's cores; 1 runs in-process).
    scheduler
        Address of a Dask distributed scheduler; when given, cells run there.
    progress
        Called as ``progress(done, total)`` after each finished cell.
    runner
        The function that runs one cell (module-level, so it pickles).
    connect_timeout
        Seconds to wait for the Dask scheduler to answer.

    Raises
    ------
    FluidoptError
        If some cells failed; the finished ones are saved first.
    """
    path = Path(results)
    check_output_path(path, (".parquet",))
    spec.validate()
    cells = spec.cells()
    frame = read_results(path)
    done = set(frame["key"]) if "key" in frame else set()
    todo = [c for c in cells if c.key not in done]
    total, finished = len(cells), len(cells) - len(todo)
    if progress:
        progress(finished, total)
    failures: list[str] = []
    for outcome in _execute(todo, workers, scheduler, runner, connect_timeout):
        if isinstance(outcome, BaseException):
            failures.append(f"{type(outcome).__name__}: {outcome}")
            continue
        frame = _append(path, frame, [outcome])
        finished += 1
        if progress:
            progress(finished, total)
    if failures:
        saved = (f"the {finished} finished cells are saved in {path}; rerun to resume" if finished
                 else f"no cell finished, nothing was written to {path}")
        raise FluidoptError(f"{len(failures)} of {total} cells failed ({saved}); first: {failures[0]}")
    order = {c.key: i for i, c in enumerate(cells)}
    mine = frame[frame["key"].isin(order)].copy() if len(frame) else frame
    if len(mine):
        mine = mine.sort_values("key", key=lambda s: s.map(order)).reset_index(drop=True)
    return mine


def _execute(
    cells: list[Cell],
    workers: int | None,
    scheduler: str | None,
    runner: Callable[[Cell], dict[str, Any]],
    connect_timeout: float,
) -> Iterable[dict[str, Any] | BaseException]:
    """Yield each cell's row (or its exception) as it finishes."""
    if not cells:
        return
    workers = min(workers or os.cpu_count() or 1, len(cells))
    with task_pool(workers, scheduler, connect_timeout=connect_timeout) as pool:
        for _, outcome in pool.imap_unordered(runner, cells):
            yield outcome
