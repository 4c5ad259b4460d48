"""The headless core imports no UI or torch, and importing it compiles nothing.

Checked in a fresh interpreter, since this test session has imported plenty already.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The views, which may import what the core may not; the GPU kernels (imported only for
#: device="cuda"); the benchmarks (torch beside rnnlab is their point); module entry points (they run).
NOT_CORE = ["rnnlab.cli", "rnnlab.console", "rnnlab.tui", "rnnlab.kernels.cuda", "rnnlab.bench", "rnnlab.bench_cuda"]
FORBIDDEN = ["textual", "rich", "typer", "torch"]

PROBE = r"""
import importlib, json, sys, types
import numba
from numba.core.dispatcher import Dispatcher

from pathlib import Path

# from the files: pkgutil.walk_packages imports each package it walks into, the views' too
modules = (".".join(f.with_suffix("").parts).removesuffix(".__init__") for f in Path("rnnlab").rglob("*.py"))
core = sorted(m for m in modules if not m.endswith("__main__")
              and not any(m == v or m.startswith(v + ".") for v in {not_core!r}))
for name in core:
    importlib.import_module(name)

forbidden = sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})
gpu = sorted(m for m in sys.modules if m == "numba.cuda" or m.startswith("numba.cuda.")
             or m.startswith("rnnlab.kernels.cuda"))
dispatchers = {{}}
for mod_name, mod in list(sys.modules.items()):
    if not (mod_name == "rnnlab" or mod_name.startswith("rnnlab.")) or not isinstance(mod, types.ModuleType):
        continue
    for attr, value in vars(mod).items():
        if isinstance(value, Dispatcher):
            key = value.py_func.__module__ + "." + value.py_func.__qualname__
            dispatchers[key] = [str(s) for s in value.signatures]
print(json.dumps({{"core": core, "forbidden": forbidden, "gpu": gpu, "dispatchers": dispatchers}}))
"""


def _probe() -> dict:
    code = PROBE.format(not_core=NOT_CORE, forbidden=FORBIDDEN)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


_RESULT: dict | None = None


def _result() -> dict:
    global _RESULT
    if _RESULT is None:
        _RESULT = _probe()
    return _RESULT


def test_core_imports_no_ui_and_no_torch():
    """Every module of the core, each one loaded (the package __init__s alone left the labs'
    engines, explain, gradcheck and the tree and seq2seq trainers unchecked: a code review)."""
    core = _result()["core"]
    assert {"rnnlab.labs.esn", "rnnlab.labs.tree", "rnnlab.explain", "rnnlab.gradcheck", "rnnlab.fsio",
            "rnnlab.train.trees", "rnnlab.layers.tree"} <= set(core) and len(core) > 60
    assert _result()["forbidden"] == []


def test_core_does_not_import_gpu_code():
    assert _result()["gpu"] == []


def test_import_compiles_no_kernel():
    dispatchers = _result()["dispatchers"]
    public = {f"{cell}_{direction}_steps" for cell in ("elman", "lstm", "gru") for direction in ("forward", "backward")}
    found = {key.rsplit(".", 1)[-1] for key in dispatchers}
    assert public <= found, found
    compiled = {key: sigs for key, sigs in dispatchers.items() if sigs}
    assert compiled == {}


EACH_FIRST = r"""
import importlib, json, pkgutil, sys
import rnnlab

names = sorted(m.name for m in pkgutil.walk_packages(rnnlab.__path__, "rnnlab.")
               if ".cuda" not in m.name and not m.name.endswith("__main__"))  # cuda: needs a GPU; __main__ runs
failed = {}
for name in names:
    for loaded in [m for m in sys.modules if m == "rnnlab" or m.startswith("rnnlab.")]:
        del sys.modules[loaded]  # as in a fresh interpreter whose first import is this module
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed[name] = f"{type(exc).__name__}: {exc}"
print(json.dumps({"modules": len(names), "failed": failed}))
"""


def test_every_module_imports_when_it_is_the_first_one_imported():
    """An import cycle shows only in some orders (rnnlab.spec first once broke `rnnlab train`
    while every test passed, having imported the layers before): each module goes first once."""
    result = subprocess.run([sys.executable, "-c", EACH_FIRST], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["modules"] > 80 and report["failed"] == {}


def test_the_package_says_it_is_typed():
    """The ``py.typed`` marker (PEP 561) ships with the package, so mypy and pyright read rnnlab's
    annotations in a non-editable install; pyproject listed it but the file was missing."""
    import tomllib

    package = Path(__file__).resolve().parent.parent / "rnnlab"
    assert (package / "py.typed").is_file()
    with open(package.parent / "pyproject.toml", "rb") as f:
        assert "py.typed" in tomllib.load(f)["tool"]["setuptools"]["package-data"]["rnnlab"]
