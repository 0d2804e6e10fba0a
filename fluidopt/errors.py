"""Errors a user can act on.

The CLI prints a :class:`FluidoptError` as one line on stderr and exits with code 2;
anything else is a bug and is reported as such.
"""

from __future__ import annotations


class FluidoptError(Exception):
    """An error caused by the input or the environment, not by a bug in fluidopt."""


class InputError(FluidoptError):
    """Invalid input data, located as precisely as possible.

    Parameters
    ----------
    message
        What is wrong, e.g. ``"must be a positive integer (got -3)"``.
    source
        The file, trace name or generator the data came from.
    row
        1-based data row (the header is not counted).
    field
        Column or field name.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        row: int | None = None,
        field: str | None = None,
    ) -> None:
        self.source, self.row, self.field = source, row, field
        where = [str(source)] if source else []
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        super().__init__(": ".join([*where, message]) if where else message)


class SolverError(FluidoptError):
    """A solver could not be run or returned no usable answer."""


class PolicyError(Exception):
    """A policy broke its contract (e.g. an overflow-free policy needed an eviction).

    This signals a bug in a policy, so it is deliberately not a :class:`FluidoptError`.
    """
