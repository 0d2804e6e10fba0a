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

from fluidopt.errors import InputError


def check_output_path(path: str | os.PathLike[str], suffixes: tuple[str, ...] = ()) -> Path:
    """Fail before any work if ``path`` cannot become an output file.

    Parameters
    ----------
    path
        The output file.
    suffixes
        Accepted endings (e.g. ``(".parquet", ".csv")``); empty: any.

    Raises
    ------
    InputError
        Wrong ending, a directory, or a folder that does not exist or is not writable.
    """
    target = Path(path)
    if suffixes and not target.name.lower().endswith(tuple(suffixes)):
        raise InputError(f"output must end in {' or '.join(suffixes)}", source=str(target))
    if target.is_dir():
        raise InputError("is a directory, not an output file", source=str(target))
    if not target.parent.is_dir():
        raise InputError(f"directory {target.parent} does not exist", source=str(target))
    if not os.access(target.parent, os.W_OK | os.X_OK):
        raise InputError(f"directory {target.parent} is not writable", source=str(target))
    return target


def _umask() -> int:
    """The process umask (reading it means setting it; it is restored at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_paths(*paths: str | os.PathLike[str]) -> Iterator[list[Path]]:
    """Yield temporary paths next to ``paths``; move them all into place only on success.

    If the body raises (bad input, solver failure, Ctrl-C), every temporary file is
    removed and no ``path`` is touched, so a command's outputs appear all together or
    not at all. The files get the mode an ordinary new file gets (0666 less the umask),
    not the private 0600 of a temporary file.

    Raises
    ------
    InputError
        Before the body runs, if some folder does not exist.
    """
    targets = [Path(p) for p in paths]
    for target in targets:
        if not target.parent.is_dir():
            raise InputError(f"directory {target.parent} does not exist", source=str(target))
    temps: list[Path] = []
    try:
        for target in targets:
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            os.close(fd)
            temps.append(Path(tmp))
        yield temps
        mode = 0o666 & ~_umask()
        for tmp in temps:
            os.chmod(tmp, mode)
        for tmp, target in zip(temps, targets):
            os.replace(tmp, target)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only on success.

    One file of :func:`atomic_paths`: if the body raises, ``path`` is left untouched.
    """
    with atomic_paths(path) as (tmp,):
        yield tmp


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
