"""File I/O shared by every part: output files that are either complete or absent, and
structured input files whose errors name the file."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from fluidopt.errors import FluidoptError, InputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only on success.

    If the body raises (bad input, solver failure, Ctrl-C), the temporary file is
    removed and ``path`` is left untouched, so no half-written output is ever seen.
    """
    target = Path(path)
    if not target.parent.exists():
        raise FluidoptError(f"{target}: directory {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def read_mapping(path: Any, *, fmt: str = "yaml", what: str = "a mapping") -> dict[str, Any]:
    """Read a YAML or JSON file that must hold a mapping.

    Parameters
    ----------
    path
        A path, or an ``importlib.resources`` traversable (shipped files).
    fmt
        ``"yaml"`` or ``"json"``.
    what
        How the expected content is named in the error, e.g. ``"a workload spec mapping"``.

    Raises
    ------
    InputError
        Naming the file (and the line of a syntax error): unreadable, not UTF-8, a
        directory, not valid YAML/JSON, or not a mapping.
    """
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except IsADirectoryError:
        raise InputError("cannot read (is a directory)", source=source) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or exc})", source=source) from None
    except UnicodeDecodeError:
        raise InputError("cannot read (not UTF-8 text)", source=source) from None
    if fmt == "json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"not valid JSON ({exc.msg} at line {exc.lineno})", source=source) from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" at line {mark.line + 1}" if mark is not None else ""
            raise InputError(f"not valid YAML ({getattr(exc, 'problem', None) or exc}{line})", source=source) from None
    if not isinstance(data, dict):
        raise InputError(f"expected {what}", source=source)
    return data
