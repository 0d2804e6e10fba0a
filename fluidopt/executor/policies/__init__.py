"""Scheduling policies; importing this package fills the registry.

Each module below registers its policies with :func:`fluidopt.executor.policy.register`.
A module that does not exist (yet) is skipped; an import error *inside* a module that
exists is raised, so a broken policy never disappears silently.
"""

from __future__ import annotations

import importlib

#: Policy modules, imported in this order.
POLICY_MODULES = (
    "baselines",
    "wait",
    "nested_wait",
    "mcsf",
    "robust",
    "sorted_f",
    "replay",
    "svf",
)

for _name in POLICY_MODULES:
    _full = f"{__name__}.{_name}"
    try:
        importlib.import_module(_full)
    except ModuleNotFoundError as _exc:
        if _exc.name != _full:
            raise
