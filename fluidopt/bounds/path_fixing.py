"""Reduced-cost fixing from the path relaxation: a lower bound on Σ c_i per (request,
completion round), which closes the rounds no schedule better than a known one uses.

Unit-time model, rounds; notation of :mod:`fluidopt.bounds.paths`. For multipliers u of
the right signs (free on the start-once rows, ≤ 0 on the ≤ rows) and an entry (i, c)
of the pricing, let through_u(i, c) be the least reduced cost Σ (c' − u·A_(m,c')) of a
path that contains (i, c) (:meth:`fluidopt.bounds.path_pricing.PathPricer.through`).

**Claim.** Every schedule x in the windows in which item i completes in round c has

    Σ c ≥ ⌈u·b + through_u(i, c)⌉ =: LB_u(i, c).

*Proof.* As in :mod:`fluidopt.bounds.paths`, x listed in completion order (ties by index,
the members of a group of identical requests taking its rounds in increasing order) is
a path P_x whose point is x, and c·x ≥ c·x + u·(b − A x) = u·b + Σ_{(m,c') ∈ P_x}
(c' − u·A_(m,c')) ≥ u·b + through_u(i, c), because P_x contains (i, c). Σ c is an
integer. ∎

So if LB_u(i, c) > Z, no schedule with Σ c ≤ Z completes item i in round c. A member of
a group of identical requests may be any of its items, so a group's bound at round c is
the least over its members. With Z the value of the best schedule known, the rounds
whose bound exceeds Z can be removed from a search for schedules with Σ c ≤ Z: the
constraint "S_i ∈ {t : LB(i, t + o_i) ≤ Z}" is implied by Σ c ≤ Z and removes no such
schedule (the fixing of Pessoa et al. 2010 on arc-time-indexed formulations, here on
next-2 paths). At the relaxation's optimum the rounds of its optimal combination keep
LB ≤ its value: fixing does not raise the relaxation's own bound, it shrinks the
search space of the exact search.
"""

from __future__ import annotations

import numpy as np

from fluidopt.bounds.paths import PathRelaxation

#: The bound written for rounds outside a window (no schedule completes there).
NEVER = np.iinfo(np.int64).max // 4


def completion_bounds(relax: PathRelaxation, u: np.ndarray) -> np.ndarray:
    """LB_u per (group, completion round 0 … T) of the module docstring: the least Σ c of
    a schedule in the windows in which some request of the group completes in that round
    (int64; :data:`NEVER` outside the window)."""
    reduced = float(u @ relax.b) + relax.pricer.through(relax.round_costs(u))
    finite = np.isfinite(reduced)
    values = np.full(reduced.shape, NEVER, dtype=np.int64)
    # ⌈·⌉ with room for the rounding of float sums, as the bound itself is rounded
    values[finite] = np.ceil(reduced[finite] - 1e-6 - 1e-9 * np.abs(reduced[finite])).astype(np.int64)
    by_group = np.full((relax.data.n_groups, values.shape[1]), NEVER, dtype=np.int64)
    np.minimum.at(by_group, relax.group, values)
    return by_group


def start_bounds(relax: PathRelaxation, u: np.ndarray) -> list[list[int]]:
    """Per request (workload position), LB_u for each start epoch est … lst of its window
    (start t completes in round t + o): the input of the exact search's fixing
    (:class:`fluidopt.models.tct_cpsat.CpsatInstance`, ``start_bounds``)."""
    data = relax.data
    by_group = completion_bounds(relax, u)
    n = int(sum(len(m) for m in data.members))
    out: list[list[int]] = [[] for _ in range(n)]
    for g, members in enumerate(data.members):
        first = int(data.est[g] + data.output[g])
        row = by_group[g, first:int(data.lst[g] + data.output[g]) + 1].tolist()
        for i in np.asarray(members).tolist():
            out[i] = row
    return out
