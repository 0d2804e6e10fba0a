"""Plain JSON values from numpy scalars and arrays, NaN and nested containers.

Used by every result's ``to_dict`` and by the command line's ``--json`` output; it lives
at the bottom of the package so that the library never imports the CLI.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, NaN and nested containers to plain JSON values.

    Non-finite floats become ``None``; dict keys become strings.
    """
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
