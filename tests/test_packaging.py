"""A built wheel ships ``fluidopt.models``, the deployment files and the traces, and works alone.

The wheel is built from a copy of the sources in a temporary folder, so the build leaves no
``build/`` or ``*.egg-info`` folder in the working tree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "fluidopt", "models", "instances", "notebooks")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))
        elif path.exists():
            shutil.copy2(path, src / name)
    dist = src / "tmp"
    res = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    wheels = list(dist.glob("fluidopt-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "fluidopt/models/__init__.py" in names
    for init in (REPO / "fluidopt").rglob("__init__.py"):  # every subpackage is listed in pyproject
        assert init.relative_to(REPO).as_posix() in names, init
    for notebook in (REPO / "notebooks").glob("*.py"):
        assert f"fluidopt/notebooks/{notebook.name}" in names
    for module in (REPO / "models").glob("*.py"):
        assert f"fluidopt/models/{module.name}" in names
    shipped = sorted(p.name for p in (REPO / "instances" / "deployments").glob("*.yaml"))
    assert {"llama2-7b-a100.yaml", "llama2-70b-2xa100.yaml"} <= set(shipped)
    for name in shipped:
        assert f"fluidopt/instances/deployments/{name}" in names
    traces = REPO / "instances" / "traces"
    if traces.is_dir():
        for path in traces.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and not path.name.startswith("."):
                rel = path.relative_to(REPO / "instances").as_posix()
                assert f"fluidopt/instances/{rel}" in names, rel
    # The profiling inputs of the fit script are for developers, not for the package.
    assert not any(n.startswith("fluidopt/instances/profiling/") and n.endswith(".csv") for n in names)


def test_wheel_alone_imports_models_and_loads_deployments(wheel, tmp_path):
    """Only the wheel provides fluidopt (the editable install is shadowed and checked for)."""
    code = textwrap.dedent(
        f"""
        import json, pkgutil, sys
        wheel = {str(wheel)!r}
        sys.path.insert(0, wheel)
        import fluidopt, fluidopt.models
        from fluidopt.models import __doc__ as models_doc
        from fluidopt.deployment import deployment_names, load_deployment
        found = {{}}
        for info in pkgutil.iter_modules(fluidopt.models.__path__):
            module = __import__("fluidopt.models." + info.name, fromlist=["_"])
            exec("from fluidopt.models import " + info.name)
            found[info.name] = module.__file__
        dep = load_deployment("llama2-7b-a100")
        print(json.dumps({{
            "fluidopt": fluidopt.__file__,
            "models": fluidopt.models.__file__,
            "modules": found,
            "names": deployment_names(),
            "capacity": dep.capacity,
        }}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    res = subprocess.run(
        [sys.executable, "-s", "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["fluidopt"].startswith(str(wheel))
    assert out["models"].startswith(str(wheel))
    in_wheel = zipfile.ZipFile(wheel).namelist()
    expected = {
        Path(n).stem for n in in_wheel if n.startswith("fluidopt/models/") and n.endswith(".py")
    } - {"__init__"}
    assert set(out["modules"]) == expected
    assert all(path.startswith(str(wheel)) for path in out["modules"].values())
    assert "llama2-7b-a100" in out["names"] and out["capacity"] == 118_784
