"""Packaging: stubs for the compiled modules, one version, metadata, and OpenMP under
threadpoolctl.

These tests look at the *installed* package (the suite runs with ``--import-mode=importlib``),
so run against a wheel they check what users get: ``tools/build_wheels.py`` and cibuildwheel
run them that way.
"""

import ast
import importlib
import importlib.machinery
import importlib.metadata
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import poolkit
from poolkit import _threads

PKG_DIR = Path(poolkit.__file__).resolve().parent


def compiled_modules():
    """Names of the extension modules installed in the poolkit package (``_max_pool`` ...)."""
    # longest first: ".cpython-311-x86_64-linux-gnu.so" before the bare ".so"
    suffixes = sorted(importlib.machinery.EXTENSION_SUFFIXES, key=len, reverse=True)
    names = set()
    for path in PKG_DIR.iterdir():
        for suffix in suffixes:
            if path.name.endswith(suffix):
                names.add(path.name[: -len(suffix)])
                break
    return sorted(names)


MODULES = compiled_modules()


def stub_names(module_name):
    """``{name: [parameter names] or None}`` of what a ``.pyi`` stub declares at top level:
    functions with their parameters, annotated constants (``CHUNK: int``) with None."""
    tree = ast.parse((PKG_DIR / f"{module_name}.pyi").read_text(), f"{module_name}.pyi")
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            a = node.args
            out[node.name] = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out[node.target.id] = None
    return out


def test_the_package_has_compiled_modules():
    assert MODULES, f"no extension modules in {PKG_DIR}"
    assert {"_max_pool", "_avg_pool", "_openmp"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_every_compiled_module_has_a_stub(name):
    assert (PKG_DIR / f"{name}.pyi").is_file(), f"poolkit.{name} has no stub {name}.pyi"


def test_py_typed_marker():
    assert (PKG_DIR / "py.typed").is_file()


@pytest.mark.parametrize("name", MODULES)
def test_stub_matches_the_module(name):
    """Each stub declares exactly the module's public names, functions with their parameters."""
    if not (PKG_DIR / f"{name}.pyi").is_file():
        pytest.skip(f"no stub for {name} (test_every_compiled_module_has_a_stub fails)")
    mod = importlib.import_module(f"poolkit.{name}")
    runtime = {n for n in dir(mod) if not n.startswith("_")}
    stub = stub_names(name)
    public_stub = {n for n in stub if not n.startswith("_")}
    assert public_stub == runtime, (
        f"poolkit.{name}: stub only {sorted(public_stub - runtime)}, "
        f"module only {sorted(runtime - public_stub)}"
    )
    for fname in sorted(runtime):
        if stub[fname] is None or not callable(getattr(mod, fname)):
            assert stub[fname] is None, f"poolkit.{name}.{fname} is not a function at run time"
            continue
        try:
            params = list(inspect.signature(getattr(mod, fname)).parameters)
        except (TypeError, ValueError):  # no introspectable signature: names checked above
            continue
        assert stub[fname] == params, f"poolkit.{name}.{fname}: stub {stub[fname]} != {params}"


def test_version_has_one_source():
    from poolkit import _version

    assert poolkit.__version__ == _version.__version__
    assert poolkit.__version__ == importlib.metadata.version("poolkit")


def test_metadata_is_complete():
    meta = importlib.metadata.metadata("poolkit")
    assert meta["Name"] == "poolkit"
    assert meta["Summary"]
    assert meta["Requires-Python"] == ">=3.10"
    assert meta.get("License-Expression") == "BSD-3-Clause" or meta.get("License")
    assert meta["Description-Content-Type"] == "text/markdown"
    readme = meta.get_payload() or meta["Description"] or ""
    assert not readme or readme.lstrip().startswith("# poolkit")  # editable installs: none
    classifiers = meta.get_all("Classifier") or []
    for minor in (10, 11, 12, 13):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert "Typing :: Typed" in classifiers
    requires = meta.get_all("Requires-Dist") or []
    numpy_req = [r for r in requires if r.startswith("numpy") and "extra ==" not in r]
    assert numpy_req and "<" in numpy_req[0], f"numpy needs an upper bound: {numpy_req}"


# ----------------------------------------------------------------------- threadpoolctl

_OPENMP_PROBE = """
import json
import numpy, threadpoolctl
before = [d for d in threadpoolctl.threadpool_info() if d["user_api"] == "openmp"]
import poolkit
after = [d for d in threadpoolctl.threadpool_info() if d["user_api"] == "openmp"]
print(json.dumps({"before": before, "after": after, "pkg": poolkit.__file__}))
"""


def _needs_openmp():
    pytest.importorskip("threadpoolctl")
    if not poolkit.openmp_enabled():
        pytest.skip("poolkit was built without OpenMP")


def test_threadpoolctl_sees_poolkits_openmp_runtime():
    """In a fresh process, importing poolkit loads an OpenMP runtime threadpoolctl can see.

    When the wheel bundles its runtime (auditwheel's ``poolkit.libs/``, delocate's
    ``poolkit/.dylibs/``) threadpoolctl must list that copy.
    """
    _needs_openmp()
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS",)}
    out = subprocess.run([sys.executable, "-c", _OPENMP_PROBE], capture_output=True, text=True,
                         env=env, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout.strip().splitlines()[-1])
    after = info["after"]
    # (when NumPy's BLAS loaded none, the one listed now is poolkit's)
    assert after, "threadpoolctl lists no OpenMP runtime after `import poolkit`"
    pkg = Path(info["pkg"]).resolve().parent
    bundled = [d for d in (pkg.parent / "poolkit.libs", pkg / ".dylibs") if d.is_dir()]
    bundled_omp = [p for d in bundled for p in d.iterdir()
                   if p.name.startswith(("libgomp", "libomp", "libiomp", "vcomp"))]
    if bundled_omp:
        paths = [Path(d["filepath"]).resolve() for d in after]
        assert any(p.parent in {b.resolve() for b in bundled} for p in paths), (
            f"the wheel bundles {[p.name for p in bundled_omp]} but threadpoolctl lists "
            f"{[str(p) for p in paths]}"
        )


def test_threadpool_limits_limit_poolkits_kernels():
    """``threadpool_limits(1)`` caps poolkit's default team at one thread; results stay
    bitwise identical; the default comes back after the block."""
    _needs_openmp()
    from threadpoolctl import threadpool_limits

    x = np.random.default_rng(0).standard_normal((4, 8, 64, 64))  # above SMALL_WORK
    assert x.size >= _threads.SMALL_WORK
    default = _threads.max_threads()
    y_max, i_max = poolkit.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
    y_avg = poolkit.avg_pool2d(x, 3, stride=2, padding=1)
    with threadpool_limits(limits=1, user_api="openmp"):
        assert _threads.max_threads() == 1
        assert _threads.resolve(None, x.size) == 1
        y_max1, i_max1 = poolkit.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
        y_avg1 = poolkit.avg_pool2d(x, 3, stride=2, padding=1)
    assert _threads.max_threads() == default
    np.testing.assert_array_equal(y_max1, y_max)
    np.testing.assert_array_equal(i_max1, i_max)
    np.testing.assert_array_equal(y_avg1, y_avg)
