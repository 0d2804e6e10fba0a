"""fluidopt: optimisation models and an online executor for LLM-inference scheduling
under KV-cache memory limits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Deployment", "TimeModel", "Workload", "load_deployment", "__version__"]

if TYPE_CHECKING:
    from fluidopt.deployment import Deployment, TimeModel, load_deployment
    from fluidopt.workload import Workload

_LAZY = {"Deployment": "deployment", "TimeModel": "deployment", "load_deployment": "deployment",
         "Workload": "workload"}


def __getattr__(name: str) -> Any:
    # Imported on first use so that `fluidopt --help` does not pay for numpy/pandas.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"fluidopt.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'fluidopt' has no attribute {name!r}")
