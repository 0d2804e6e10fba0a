"""What a capacity search found: per policy, and for the whole search (JSON and a table)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fluidopt.capacity.probe import PolicySpec, Replica, param_text
from fluidopt.executor.slo import Slo


def _stats(values: list[float]) -> dict[str, Any]:
    """min, max, mean, sample std (ddof=1; 0 for one value) and count."""
    if not values:
        return {"min": None, "max": None, "mean": None, "std": None, "n": 0}
    arr = np.asarray(values, dtype=float)
    return {"min": float(arr.min()), "max": float(arr.max()), "mean": float(arr.mean()),
            "std": float(arr.std(ddof=1)) if arr.size > 1 else 0.0, "n": int(arr.size)}


@dataclass
class PolicyCapacity:
    """The answer for one policy.

    Attributes
    ----------
    policy
        The policy.
    max_rate
        Largest rate (requests/s) at which the SLO held on the first replication (the
        workload ``simulate`` runs with the same -n and --seed); ``None`` when it holds
        at no rate probed.
    fail_rate
        Lowest rate at which the first replication failed the SLO, ≤ (1 + precision)
        · ``max_rate`` (``None`` when limited by the fluid limit).
    limited_by
        ``"slo"``, ``"fluid limit"`` (the SLO still held at the fluid limit) or
        ``"unattainable"``.
    all_replications_rate
        Largest rate verified on every replication (the smallest critical rate of any
        replication); ``None`` if some replication meets the SLO nowhere.
    binding_replication
        The replication whose critical rate is ``all_replications_rate``.
    per_replication
        Per replication: seed or window, its own critical rate ``max_rate``,
        ``fail_rate``, ``limited_by``, ``fluid_limit``, ``evaluations``.
    at_max_rate
        The first replication's probe result at ``max_rate``.
    at_all_replications_rate
        Every replication's probe result at ``all_replications_rate``.
    evaluations
        Simulations run for this policy.
    reason
        Why the SLO fails, when it is unattainable.
    """

    policy: PolicySpec
    max_rate: float | None
    fail_rate: float | None
    limited_by: str
    all_replications_rate: float | None
    binding_replication: int | None
    per_replication: list[dict[str, Any]]
    at_max_rate: dict[str, Any] | None
    at_all_replications_rate: list[dict[str, Any]]
    evaluations: int
    reason: str = ""

    def spread(self) -> dict[str, Any]:
        """Statistics of the per-replication critical rates (requests/s)."""
        return _stats([r["max_rate"] for r in self.per_replication if r["max_rate"] is not None])


@dataclass
class CapacityResult:
    """Everything a capacity search found; :meth:`to_dict` is the ``--json`` output.

    ``capacity`` is the KV capacity used (tokens; ``capacity_override`` when it came
    from ``--capacity``), ``fluid_limits`` are per replication (requests/s), ``probes``
    every probe result, round by round.
    """

    workload: str
    deployment: str
    capacity: int
    slo: Slo
    requests: int | None
    seed: int | None
    precision: float
    warmup: float
    cooldown: float
    replication_mode: str
    replicas: list[Replica]
    fluid_limits: list[float]
    policies: list[PolicyCapacity]
    probes: list[dict[str, Any]]
    seconds: float
    workers: int
    notes: list[str] = field(default_factory=list)
    capacity_override: int | None = None

    @property
    def fluid_limit(self) -> float:
        """Fluid limit of the first replication (the workload ``simulate`` runs), requests/s."""
        return self.fluid_limits[0]

    def check_command(self, pc: PolicyCapacity, thresholds_path: str | None = None) -> str | None:
        """The ``fluidopt simulate`` command that checks ``pc.max_rate``."""
        if pc.max_rate is None:
            return None
        args = ["fluidopt", "simulate", "-w", self.workload, "-d", self.deployment, "-p", pc.policy.name,
                "--rate", repr(pc.max_rate)]
        if self.requests is not None:
            args += ["-n", str(self.requests)]
        if self.seed is not None:
            args += ["--seed", str(self.seed)]
        if self.capacity_override is not None:
            args += ["--capacity", str(self.capacity_override)]
        for k, v in sorted(pc.policy.params.items()):
            args += ["--param", f"{k}={param_text(v)}"]
        if pc.policy.calibrated:
            args += ["--thresholds", thresholds_path or "THRESHOLDS.json"]
        if self.warmup or self.cooldown:
            args += ["--warmup", repr(self.warmup), "--cooldown", repr(self.cooldown)]
        args += ["--slo", str(self.slo)]
        return shlex.join(args)

    @staticmethod
    def thresholds_file(pc: PolicyCapacity) -> str | None:
        """The thresholds file calibrated on the first replication at ``max_rate`` (text)."""
        cal = pc.at_max_rate.get("calibration") if pc.at_max_rate else None
        return cal["file"] if cal else None

    def _policy_dict(self, pc: PolicyCapacity, thresholds_path: str | None) -> dict[str, Any]:
        at = pc.at_max_rate
        cal = at.get("calibration") if at else None
        across = {
            t.metric: _stats([float(p["summary"][t.metric]) for p in pc.at_all_replications_rate
                              if p["summary"] and p["summary"][t.metric] is not None])
            for t in self.slo.terms
        }
        return {
            "policy": pc.policy.label,
            "name": pc.policy.name,
            "params": pc.policy.params,
            "max_rate": pc.max_rate,
            "fail_rate": pc.fail_rate,
            "limited_by": pc.limited_by,
            "fraction_of_fluid_limit": pc.max_rate / self.fluid_limit if pc.max_rate is not None else None,
            "metrics": at["summary"] if at else None,
            "calibration": {k: v for k, v in cal.items() if k != "file"} if cal else None,
            "spread": pc.spread(),
            "all_replications_rate": pc.all_replications_rate,
            "binding_replication": pc.binding_replication,
            "slo_metrics_at_all_replications_rate": across,
            "replications": pc.per_replication,
            "evaluations": pc.evaluations,
            "reason": pc.reason,
            "check_command": self.check_command(pc, thresholds_path),
        }

    def to_dict(self, thresholds_paths: dict[str, str] | None = None) -> dict[str, Any]:
        """JSON-safe result: the inputs, one entry per policy, and every probe.

        ``thresholds_paths`` (policy label → file) fills the check commands of
        calibrated policies.
        """
        from fluidopt.jsonable import to_jsonable

        paths = thresholds_paths or {}
        pols = [self._policy_dict(pc, paths.get(pc.policy.label)) for pc in self.policies]
        best = max((p for p in pols if p["max_rate"] is not None), key=lambda p: p["max_rate"], default=None)
        return to_jsonable({
            "workload": self.workload,
            "deployment": self.deployment,
            "capacity": self.capacity,
            "slo": str(self.slo),
            "deadlines": {m: [str(t) for t in ts] for m, ts in self.slo.deadlines().items()},
            "requests": self.requests,
            "seed": self.seed,
            "precision": self.precision,
            "warmup": self.warmup,
            "cooldown": self.cooldown,
            "fluid_limit": self.fluid_limit,
            "max_rate": {p["policy"]: p["max_rate"] for p in pols},
            "best_policy": best["policy"] if best else None,
            "policies": pols,
            "replications": len(self.replicas),
            "replication_mode": self.replication_mode,
            "replicas": [r.describe() for r in self.replicas],
            "fluid_limits": self.fluid_limits,
            "evaluations": len(self.probes),
            "probes": [
                {"policy": p["policy"], "replication": p["replication"], "rate": p["rate"], "ok": p["ok"],
                 "reason": p["reason"], "seconds": p["seconds"],
                 "margin": self.slo.margin(p["summary"]) if p["summary"] else None,
                 **({t.metric: p["summary"][t.metric] for t in self.slo.terms} if p["summary"] else {})}
                for p in self.probes
            ],
            "seconds": self.seconds,
            "workers": self.workers,
            "notes": self.notes,
        })

    def to_frame(self) -> pd.DataFrame:
        """One row per policy: rates (requests/s), spread over replications, fluid limit,
        and the SLO metrics, attainment and goodput of the first replication at max rate."""
        rows = []
        for pc in self.policies:
            spread = pc.spread()
            row: dict[str, Any] = {
                "workload": self.workload, "deployment": self.deployment, "policy": pc.policy.label,
                "max_rate": pc.max_rate, "fail_rate": pc.fail_rate, "limited_by": pc.limited_by,
                "fluid_limit": self.fluid_limit,
                "fraction_of_fluid_limit": pc.max_rate / self.fluid_limit if pc.max_rate is not None else None,
                "all_replications_rate": pc.all_replications_rate,
                "replications": len(self.replicas), "rate_min": spread["min"], "rate_mean": spread["mean"],
                "rate_max": spread["max"], "rate_std": spread["std"], "evaluations": pc.evaluations,
                "slo": str(self.slo),
            }
            summary = (pc.at_max_rate or {}).get("summary") or {}
            for key in [t.metric for t in self.slo.terms] + ["slo_attainment", "goodput_requests_per_s",
                                                            "goodput_tokens_per_s", "mean_latency"]:
                row[key] = summary.get(key)
            rows.append(row)
        return pd.DataFrame(rows)
