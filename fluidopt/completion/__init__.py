"""The total-completion-time side: instances, heuristic schedules, start windows, the
solve driver and primal improvement (unit-time model, spec ``completion-time.md``).

Lower bounds live in :mod:`fluidopt.bounds` (one module per bound family), the
formulations in :mod:`fluidopt.models` (``tct_mip``, ``tct_cpsat``). Dependencies run one
way: ``instance`` ← ``fluidopt.bounds.volume`` / ``fluidopt.bounds.peaks`` ←
``windows`` ← ``fluidopt.bounds.time_indexed`` ← ``solve``.
"""
