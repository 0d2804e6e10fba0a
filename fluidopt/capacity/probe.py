"""One probe of the capacity search: a policy simulated at one rate on one replication.

Everything here runs in worker processes, so the inputs are small picklable dataclasses
and the workload is loaded (and, for calibrated policies, the thresholds calibrated)
inside the worker.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fluidopt.errors import FluidoptError, InputError

#: Policies whose thresholds are recalibrated at every probed rate (unless given), and
#: the parameter that carries them.
CALIBRATED = {"wait": "thresholds", "nested-wait": "segments"}


def param_text(value: Any) -> str:
    """A parameter value as typed on the command line (booleans in lower case)."""
    return str(value).lower() if isinstance(value, bool) or value is None else str(value)


@dataclass(frozen=True)
class PolicySpec:
    """A policy to size: registry name and parameters.

    Attributes
    ----------
    name
        Registry name (``fluidopt simulate -p NAME``).
    params
        Policy parameters (JSON-like values).
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """``name`` or ``name(key=value,...)``."""
        if not self.params:
            return self.name
        return f"{self.name}({','.join(f'{k}={param_text(v)}' for k, v in sorted(self.params.items()))})"

    @property
    def calibrated(self) -> bool:
        """Thresholds come from calibration at every probed rate."""
        return self.name in CALIBRATED and CALIBRATED[self.name] not in self.params

    @property
    def calibration_rule(self) -> str:
        """The executor rule calibration models: ``advance`` or ``paper``."""
        return "advance" if self.params.get("advance_resident") else "paper"


def parse_policies(text: str, params: Sequence[tuple[str, Any]] = ()) -> list[PolicySpec]:
    """``"wait,sarathi"`` and ``[("wait.advance_resident", True)]`` → policy specs.

    Raises
    ------
    InputError
        Empty list, unknown policy (listing the known ones), a name given twice, or a
        parameter key not of the form ``POLICY.KEY`` for a listed policy.
    """
    import fluidopt.executor.policies  # noqa: F401  (fills the registry)
    from fluidopt.executor.policy import POLICIES

    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise InputError("no policy given (e.g. -p wait,sarathi,vllm)")
    for n in names:
        if n not in POLICIES:
            raise InputError(f"unknown policy {n!r}; known: {', '.join(sorted(POLICIES))}")
    if len(set(names)) != len(names):
        raise InputError(f"policy given twice in {text!r}")
    by_name: dict[str, dict[str, Any]] = {n: {} for n in names}
    for key, value in params:
        pol, dot, k = key.partition(".")
        if not dot or not k or pol not in by_name:
            raise InputError(f"--param {key}={value}: expected POLICY.KEY=VALUE with POLICY one of {', '.join(names)}")
        by_name[pol][k] = value
    return [PolicySpec(n, by_name[n]) for n in names]


@dataclass(frozen=True)
class Replica:
    """How one replication's workload is drawn.

    Attributes
    ----------
    index
        0 for the first replication: the workload ``simulate`` runs with the same
        ``-n`` and ``--seed``.
    seed
        Seed passed to the workload loader (``None``: the workload's own default).
    window
        Rows [a, b) of the time-scaled trace, or ``None`` for the first ``requests``.
    """

    index: int
    seed: int | None
    window: tuple[int, int] | None = None

    def describe(self) -> dict[str, Any]:
        return {"replication": self.index, "seed": self.seed,
                "window": list(self.window) if self.window is not None else None}


@dataclass(frozen=True)
class Probe:
    """One simulation of the search.

    Attributes
    ----------
    workload, deployment, capacity
        As for ``fluidopt simulate`` (capacity overrides the deployment's, tokens).
    policy
        The policy and its parameters.
    rate
        Arrival rate, requests/s (the loader's ``rate``).
    requests
        First K requests (``None``: all).
    replica
        Which replication.
    slo
        SLO text.
    warmup, cooldown
        Summary window fractions.
    """

    workload: str
    deployment: str
    capacity: int | None
    policy: PolicySpec
    rate: float
    requests: int | None
    replica: Replica
    slo: str
    warmup: float = 0.0
    cooldown: float = 0.0


def load_replica(workload: str, rate: float, requests: int | None, replica: Replica) -> Any:
    """The workload of one replication at ``rate`` requests/s.

    The first replication is loaded exactly as ``fluidopt simulate -w W --rate R -n N
    --seed S`` loads it; a window of a trace is cut from the whole time-scaled trace.
    """
    from fluidopt.traces import load_workload
    from fluidopt.workload import Workload

    if replica.window is None:
        return load_workload(workload, seed=replica.seed, requests=requests, rate=rate)
    full = load_workload(workload, seed=replica.seed, rate=rate)
    a, b = replica.window
    frame = full.to_frame().iloc[a:b].reset_index(drop=True)
    return Workload.from_frame(frame, name=full.name, source=full.source, meta={**full.meta, "window": [a, b]})


def timed_deployment(name: str, capacity: int | None) -> Any:
    """A deployment with a KV capacity and an iteration-time model in seconds.

    Raises
    ------
    InputError
        Unknown deployment, or one without a capacity or in unit time.
    """
    from fluidopt.deployment import load_deployment

    dep = load_deployment(name, capacity=capacity)
    if dep.time.is_unit or dep.capacity is None:
        raise InputError(
            f"deployment {dep.name!r}: a capacity search needs a KV capacity and an iteration-time model in "
            "seconds (not unit time)"
        )
    return dep


def _calibrated_policy(probe: Probe, w: Any, dep: Any) -> tuple[Any, dict[str, Any]]:
    """Calibrate thresholds on the probed workload; the policy and what was calibrated.

    The thresholds go through a thresholds file, so the file kept in the result
    reproduces the run with ``fluidopt simulate --thresholds``.
    """
    from fluidopt.calibrate import calibrate
    from fluidopt.executor.policy import make_policy
    from fluidopt.threshold_file import load_thresholds

    spec = probe.policy
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "thresholds.json"
        calibrate(w, dep, policy=spec.name, rule=spec.calibration_rule, path=path)
        text = path.read_text()
        thresholds = load_thresholds(path)
    policy = make_policy(spec.name, **{**spec.params, CALIBRATED[spec.name]: thresholds})
    if thresholds.policy == "wait":
        summary: Any = {t.label: t.threshold for t in thresholds.types}
    else:
        summary = [[s.end, s.threshold] for s in thresholds.segments]
    return policy, {"rule": spec.calibration_rule, "thresholds": summary, "reserve": thresholds.reserve,
                    "file": text}


def run_probe(probe: Probe) -> dict[str, Any]:
    """Simulate one probe and judge the SLO.

    Returns
    -------
    dict
        ``rate``, ``replication``, ``ok`` (SLO met), ``reason`` (the failed terms, or why
        calibration failed; "" if met), ``summary`` (the run's summary with the SLO
        fields; ``None`` when calibration failed), ``calibration`` (calibrated policies:
        rule, thresholds, reserve and the thresholds file text) and ``seconds`` (wall
        clock of the probe).
    """
    from fluidopt.executor.engine import simulate
    from fluidopt.executor.policy import make_policy

    start = time.perf_counter()
    w = load_replica(probe.workload, probe.rate, probe.requests, probe.replica)
    dep = timed_deployment(probe.deployment, probe.capacity)
    out: dict[str, Any] = {"rate": probe.rate, "replication": probe.replica.index, "calibration": None}
    if probe.policy.calibrated:
        try:
            policy, out["calibration"] = _calibrated_policy(probe, w, dep)
        except FluidoptError as exc:
            first = str(exc).splitlines()[0]
            return {**out, "ok": False, "reason": f"calibration failed: {first}", "summary": None,
                    "seconds": time.perf_counter() - start}
    else:
        policy = make_policy(probe.policy.name, **probe.policy.params)
    run = simulate(w, dep, policy)
    summary = run.summary(warmup=probe.warmup, cooldown=probe.cooldown, slo=probe.slo)
    failed = [t["term"] for t in summary["slo_terms"] if not t["ok"]]
    if summary["slo_window_unfinished"]:
        failed.append(f"{summary['slo_window_unfinished']} unfinished")
    return {**out, "ok": bool(summary["slo_met"]), "reason": ", ".join(failed), "summary": summary,
            "seconds": time.perf_counter() - start}
