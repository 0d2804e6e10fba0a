"""Keyword parameters checked against a signature, with errors in the user's terms.

Policies (``--param KEY=VALUE``, sweep ``params``) and workload loaders (sweep
``workload_params``) take keyword parameters from the command line and from YAML. A
misspelt key or a value of the wrong kind must not surface as a Python ``TypeError``
about ``__init__``: :func:`check_keywords` names the parameter, lists the valid ones with
their types and defaults, and raises :class:`~fluidopt.errors.InputError`.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fluidopt.errors import InputError

#: Annotation names checked by value, and how they are named to a user.
_SIMPLE = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "text"}


@dataclass(frozen=True)
class Parameter:
    """One keyword parameter of a function.

    Attributes
    ----------
    name
        Keyword.
    kinds
        Simple annotation names (``int``, ``float``, ``bool``, ``str``, ``None``) the value
        is checked against, or ``None`` when the annotation is not simple (not checked).
    text
        The accepted values as a user reads them, e.g. ``"an integer"``.
    default
        Default value; ``inspect.Parameter.empty`` when required.
    """

    name: str
    kinds: frozenset[str] | None
    text: str
    default: Any

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty

    def describe(self) -> str:
        """``chunk_size (an integer, optional)``, ``watermark (a number, default 0.01)``."""
        if self.required:
            tail = "required"
        elif self.default is None:
            tail = "optional"
        else:
            tail = f"default {str(self.default).lower() if isinstance(self.default, bool) else self.default}"
        return f"{self.name} ({self.text}, {tail})"

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` fits a simple annotation (always True for other annotations)."""
        if self.kinds is None:
            return True
        if value is None:
            return "None" in self.kinds
        if isinstance(value, bool):
            return "bool" in self.kinds
        if isinstance(value, int):
            return bool(self.kinds & {"int", "float"})
        if isinstance(value, float):
            return "float" in self.kinds or ("int" in self.kinds and value.is_integer())
        if isinstance(value, str):
            return "str" in self.kinds
        return False


def parameters(
    func: Callable[..., Any], *, skip: tuple[str, ...] = (), help: Mapping[str, str] | None = None
) -> list[Parameter]:
    """The keyword parameters of ``func`` (a function or a class: its ``__init__``).

    Parameters
    ----------
    func
        Function or class.
    skip
        Parameters that are not the user's to give (e.g. the positional name).
    help
        Text for parameters whose annotation is not simple, e.g. a thresholds file.
    """
    target = func.__init__ if inspect.isclass(func) else func
    out = []
    for p in inspect.signature(target).parameters.values():
        if p.name in ("self", *skip) or p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            continue
        ann = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", str(p.annotation))
        parts = frozenset(a.strip() for a in ann.split("|"))
        simple = parts <= {*_SIMPLE, "None"} and parts - {"None"}
        kinds = parts if simple else None
        if help and p.name in help:
            text = help[p.name]
        elif kinds is not None:
            text = " or ".join(_SIMPLE[k] for k in sorted(kinds - {"None"}, key=list(_SIMPLE).index))
        else:
            text = ann
        out.append(Parameter(p.name, kinds, text, p.default))
    return out


def describe(params: list[Parameter]) -> str:
    """All parameters in one phrase, for error messages and ``--help``."""
    return "; ".join(p.describe() for p in params) if params else "none"


def check_keywords(params: list[Parameter], given: Mapping[str, Any], *, what: str) -> None:
    """Raise if ``given`` has an unknown key, lacks a required one, or has a value of the
    wrong kind.

    Parameters
    ----------
    params
        From :func:`parameters`.
    given
        The keywords as the user gave them.
    what
        How the owner is named, e.g. ``"policy 'sarathi'"``.

    Raises
    ------
    InputError
        Naming the parameter and listing the valid ones with their types.
    """
    by_name = {p.name: p for p in params}
    valid = f"parameters of {what}: {describe(params)}"
    for key in given:
        if key not in by_name:
            close = difflib.get_close_matches(key, list(by_name), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise InputError(f"{what} has no parameter {key!r}{hint}; {valid}")
    for p in params:
        if p.required and p.name not in given:
            raise InputError(f"{what} needs the parameter {p.name!r}; {valid}")
    for key, value in given.items():
        p = by_name[key]
        if not p.accepts(value):
            raise InputError(f"{what}: parameter {key} must be {p.text} (got {value!r}); {valid}")
