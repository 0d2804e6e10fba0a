"""Fleet sizing from simulated capacities: capacity-search results as input to ``plan``.

The fleet MILP (:mod:`fluidopt.models.fleet`) keeps every GPU inside its fluid stable
region: for kind g, Σ_j x_jg (c0_g V_j + C_g u_jg) ≤ C_g y_g, so one GPU serves at most
the fluid limit F_g of the workload's mix. A capacity search measured how much of that
a policy actually sustains under an SLO on that workload: replication k meets the SLO
up to S_gk requests/s against its own fluid limit F_gk. Planning with simulated
capacities scales each kind's row by the derate

    ρ_g = min_k S_gk / F_gk ≤ 1,

the smallest fraction of its fluid limit that any replication sustains (the windows of
a trace differ in load, so fractions are compared, not rates). One GPU serving the
searched mix then carries ρ_g·F_g; a routing that sends a kind a different mix
extrapolates with the same ratio. The policy is the one with the largest ρ_g by
default, or a named one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fluidopt.errors import InputError


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", source=str(path)) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not JSON (line {exc.lineno}): expected the output of fluidopt capacity --json",
                         source=str(path)) from None
    if not isinstance(data, dict) or not isinstance(data.get("policies"), list) or "fluid_limit" not in data:
        raise InputError("not the output of fluidopt capacity --json", source=str(path))
    return data


def _fractions(entry: dict[str, Any]) -> list[float] | None:
    """S_k / F_k per replication of a policy entry; ``None`` if one meets the SLO nowhere."""
    reps = entry.get("replications") or []
    if not reps or any(r.get("max_rate") is None for r in reps):
        return None
    return [float(r["max_rate"]) / float(r["fluid_limit"]) for r in reps]


def _pick(data: dict[str, Any], policy: str | None, source: str) -> tuple[dict[str, Any], list[float]]:
    """The policy entry to plan with and its fractions: ``policy`` (label or name), or
    the one with the largest derate."""
    if policy is not None:
        named = [p for p in data["policies"] if policy in (p.get("policy"), p.get("name"))]
        if not named:
            known = ", ".join(p.get("policy", "?") for p in data["policies"])
            raise InputError(f"no policy {policy!r} in the capacity search (it has {known})", source=source)
        fr = _fractions(named[0])
        if fr is None:
            raise InputError(f"policy {policy!r} meets the SLO at no rate searched on some replication", source=source)
        return named[0], fr
    usable = [(p, fr) for p in data["policies"] if (fr := _fractions(p)) is not None]
    if not usable:
        raise InputError("no policy of this capacity search meets its SLO on every replication", source=source)
    return max(usable, key=lambda pf: min(pf[1]))


def simulated_derates(
    files: Sequence[str | Path], kinds: Sequence[Any], workload: str, *, policy: str | None = None
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Per GPU kind, the derate ρ_g = S_g / F_g from capacity-search results.

    Parameters
    ----------
    files
        ``fluidopt capacity -o FILE.json`` (or ``--json``) outputs, one per deployment.
    kinds
        The plan's GPU kinds (:class:`~fluidopt.fleet.GpuKind`).
    workload
        The plan's workload name; every file must be a search on it.
    policy
        Policy label or name to plan with (default: per kind the one with the highest
        rate verified on every replication).

    Returns
    -------
    tuple
        ρ per kind (in ``kinds`` order) and per kind what was used: ``kind``,
        ``policy``, ``slo``, ``derate``, ``fractions`` (S_k / F_k per replication),
        ``requests``, ``replications``, ``file``.

    Raises
    ------
    InputError
        Unreadable file, a search on another workload, two files for one deployment,
        searches with different SLOs, a kind without a file, a capacity mismatch, or no
        usable policy.
    """
    from fluidopt.deployment import load_deployment

    by_kind: dict[str, tuple[dict[str, Any], str]] = {}
    for f in files:
        path = Path(f)
        data = _load(path)
        if data.get("workload") != workload:
            raise InputError(f"a capacity search on {data.get('workload')!r}, but the plan is for {workload!r}",
                             source=str(path))
        name = load_deployment(str(data["deployment"])).name
        if name in by_kind:
            raise InputError(f"two capacity searches for deployment {name!r} ({by_kind[name][1]} and {path})")
        by_kind[name] = (data, str(path))
    slos = {str(data["slo"]) for data, _ in by_kind.values()}
    if len(slos) > 1:
        raise InputError(f"the capacity searches use different SLOs ({'; '.join(sorted(slos))}): plan with one SLO")
    derates, used = [], []
    for kind in kinds:
        dep = kind.deployment
        if dep.name not in by_kind:
            raise InputError(f"no capacity search for GPU kind {dep.name!r} among --capacities "
                             f"(have: {', '.join(sorted(by_kind)) or 'none'})")
        data, source = by_kind[dep.name]
        if int(data["capacity"]) != int(dep.capacity):
            raise InputError(f"searched with C = {data['capacity']:,} tokens, the plan's {dep.name} has "
                             f"C = {dep.capacity:,}", source=source)
        entry, fractions = _pick(data, policy, source)
        rho = min(1.0, min(fractions))
        derates.append(rho)
        used.append({"kind": dep.name, "policy": entry["policy"], "slo": data["slo"], "derate": rho,
                     "fractions": fractions, "requests": data.get("requests"),
                     "replications": data.get("replications"), "file": source})
    return np.array(derates, dtype=np.float64), used
