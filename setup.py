"""Build script for poolkit's Cython kernels.

Everything that is not the extension list lives in ``pyproject.toml``. This file:

* compiles every ``pyx/<name>.pyx`` into the extension module ``poolkit.<name>``;
* sets the Cython directives once, for every module;
* probes the C compiler for OpenMP and falls back to a serial build with a warning;
* stamps the flags it built with, so a ``build/`` left over from other flags is rebuilt
  instead of shipped.

Environment variables:

``POOLKIT_NO_OPENMP=1``
    build without OpenMP (serial kernels).
``POOLKIT_FAIL_NO_OPENMP=1``
    make a missing OpenMP a build error (set it for wheels).
``POOLKIT_CYTHON_DEBUG=1``
    turn Cython's bounds, wraparound and initialisation checks back on (for hunting memory
    errors; the test suite is run once that way in CI).
``POOLKIT_MARCH=<arch>``
    add ``-march=<arch>`` (for example ``native`` or ``x86-64-v3``); never set for wheels.
``POOLKIT_EXTENSIONS=_max_pool,_avg_pool``
    development only: compile just these modules.
"""

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


HERE = os.path.dirname(os.path.abspath(__file__))


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


# ---------------------------------------------------------------------------- OpenMP probe

_OPENMP_TEST = textwrap.dedent(
    """\
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d", n > 0 && omp_get_max_threads() > 0);
        return 0;
    }
    """
)


def _openmp_flags(compiler_type):
    """Compile and link flags that enable OpenMP for this compiler (not yet probed)."""
    if compiler_type == "msvc":
        return ["/openmp"], []
    if sys.platform == "darwin":
        # Apple clang has no -fopenmp driver flag; libomp comes from Homebrew or the wheel build.
        cflags = ["-Xpreprocessor", "-fopenmp"]
        ldflags = ["-lomp"]
        for prefix in (os.environ.get("OPENMP_PREFIX"), "/opt/homebrew/opt/libomp",
                       "/usr/local/opt/libomp"):
            if prefix and os.path.isdir(prefix):
                cflags.append(f"-I{prefix}/include")
                ldflags.append(f"-L{prefix}/lib")
                break
        return cflags, ldflags
    return ["-fopenmp"], ["-fopenmp"]


def _probe_openmp(build_cmd):
    """Return (compile_args, link_args) that build and run an OpenMP program, or None."""
    compiler = build_cmd.compiler
    cflags, ldflags = _openmp_flags(compiler.compiler_type)
    tmp = tempfile.mkdtemp(prefix="poolkit-omp-")
    try:
        src = os.path.join(tmp, "omp_probe.c")
        with open(src, "w") as fh:
            fh.write(_OPENMP_TEST)
        objects = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
        exe = os.path.join(tmp, "omp_probe")
        compiler.link_executable(objects, exe, extra_postargs=ldflags)
        if compiler.compiler_type == "msvc":
            exe += ".exe"
        result = subprocess.run([exe], capture_output=True, text=True, timeout=60)
        if result.returncode != 0 or result.stdout.strip() != "1":
            return None
        return cflags, ldflags
    except Exception:  # any compile, link or run failure means "no OpenMP"
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------- flags


def _cython_directives():
    debug = _env_flag("POOLKIT_CYTHON_DEBUG")
    return {
        "language_level": 3,
        "boundscheck": debug,
        "wraparound": debug,
        "initializedcheck": debug,
        "nonecheck": False,
        "cdivision": True,
        "embedsignature": True,
    }


def _base_compile_args(compiler_type):
    if compiler_type == "msvc":
        return ["/O2"]
    # -fno-trapping-math lets gcc if-convert and vectorise the compare-and-select loops of the
    # max kernels (IEEE results, NaN comparisons included, are unchanged; only FP-exception
    # traps are assumed absent). See shared/PERF_NOTES.md.
    args = ["-O3", "-fno-trapping-math"]
    march = os.environ.get("POOLKIT_MARCH", "").strip()
    if march:
        args.append(f"-march={march}")
    return args


class BuildExt(build_ext):
    """build_ext with the OpenMP probe and a stamp of the flags used."""

    def build_extensions(self):
        ctype = self.compiler.compiler_type
        compile_args = _base_compile_args(ctype)
        link_args = []
        macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]

        openmp = None
        if _env_flag("POOLKIT_NO_OPENMP"):
            reason = "POOLKIT_NO_OPENMP is set"
        else:
            openmp = _probe_openmp(self)
            reason = "the compiler could not build and run an OpenMP test program"
        if openmp is None:
            if _env_flag("POOLKIT_FAIL_NO_OPENMP"):
                raise RuntimeError(
                    f"poolkit: OpenMP is required (POOLKIT_FAIL_NO_OPENMP=1) but {reason}."
                )
            warnings.warn(
                f"poolkit: building WITHOUT OpenMP ({reason}); kernels will run on one thread.",
                stacklevel=1,
            )
            print(f"*** poolkit: building without OpenMP: {reason} ***", file=sys.stderr)
        else:
            compile_args += openmp[0]
            link_args += openmp[1]

        stamp = {
            "compile_args": compile_args,
            "link_args": link_args,
            "openmp": openmp is not None,
            "directives": _cython_directives(),
            "compiler": " ".join(getattr(self.compiler, "compiler_so", None) or [ctype]),
            "python": sysconfig.get_config_var("EXT_SUFFIX"),
        }
        self._force_if_flags_changed(stamp)

        for ext in self.extensions:
            ext.extra_compile_args = list(compile_args)
            ext.extra_link_args = list(link_args)
            ext.define_macros = list(ext.define_macros or []) + macros
        super().build_extensions()

    def _force_if_flags_changed(self, stamp):
        """Rebuild every object when the flags differ from those of the previous build."""
        text = json.dumps(stamp, sort_keys=True)
        os.makedirs(self.build_temp, exist_ok=True)
        path = os.path.join(self.build_temp, "poolkit-build-flags.json")
        old = None
        if os.path.exists(path):
            with open(path) as fh:
                old = fh.read()
        if old != text:
            if old is not None:
                print("poolkit: build flags changed since the last build; rebuilding everything")
            self.force = True
        with open(path, "w") as fh:
            fh.write(text)


def _debug_sources():
    """Copy ``pyx/`` to ``build/debug-pyx/`` without the ``# cython:`` header lines.

    The kernels repeat the release directives in a header comment so that a plain ``cython -a``
    shows what the build compiles; a header comment beats any directive passed to cythonize,
    so a debug build compiles copies without it.
    """
    dest = os.path.join("build", "debug-pyx")
    os.makedirs(dest, exist_ok=True)
    for path in glob.glob(os.path.join("pyx", "*.p*")):
        with open(path) as fh:
            lines = [ln for ln in fh if not ln.startswith("# cython:")]
        target = os.path.join(dest, os.path.basename(path))
        text = "".join(lines)
        if not os.path.exists(target) or open(target).read() != text:
            with open(target, "w") as fh:
                fh.write(text)
    return dest


def _extensions():
    from Cython.Build import cythonize

    src_dir = _debug_sources() if _env_flag("POOLKIT_CYTHON_DEBUG") else "pyx"
    wanted = os.environ.get("POOLKIT_EXTENSIONS", "").strip()
    wanted = {w.strip() for w in wanted.split(",") if w.strip()}
    exts = []
    for path in sorted(glob.glob(os.path.join(src_dir, "*.pyx"))):
        name = os.path.splitext(os.path.basename(path))[0]
        if wanted and name not in wanted:
            continue
        exts.append(Extension(f"poolkit.{name}", [path]))
    directives = _cython_directives()
    # Generated C goes to a folder named after the directives, so a debug build and a release
    # build never share (or reuse) each other's C files.
    tag = hashlib.sha1(json.dumps(directives, sort_keys=True).encode()).hexdigest()[:10]
    return cythonize(
        exts,
        include_path=[src_dir],
        compiler_directives=directives,
        build_dir=os.path.join("build", f"cython-{tag}"),
        annotate=False,
        quiet=True,
    )


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
