"""Build and runtime configuration: ``poolkit.show_config()`` and ``poolkit.openmp_enabled()``."""

from __future__ import annotations

import platform
import sys
from typing import Any, TextIO

import numpy as np

from . import _openmp
from ._threads import cpu_count, max_threads
from ._version import __version__


def openmp_enabled() -> bool:
    """True when poolkit's kernels were compiled with OpenMP (multi-threaded)."""
    return _openmp.openmp_enabled()


def config() -> dict[str, Any]:
    """The facts ``show_config`` prints, as a dict."""
    return {
        "poolkit": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "compiler": _openmp.compiler(),
        "openmp": openmp_enabled(),
        "openmp_version": _openmp.openmp_version(),
        "usable_cpus": cpu_count(),
        "default_threads": max_threads(),
    }


def show_config(file: TextIO | None = None) -> None:
    """Print poolkit's version, compiler, OpenMP on/off and the default thread count."""
    c = config()
    omp = (f"on (OpenMP {c['openmp_version']})" if c["openmp"]
           else "OFF (serial build: kernels run on one thread)")
    lines = [
        f"poolkit {c['poolkit']}",
        f"  python        {c['python']}",
        f"  numpy         {c['numpy']}",
        f"  platform      {c['platform']}",
        f"  compiler      {c['compiler']}",
        f"  OpenMP        {omp}",
        f"  usable CPUs   {c['usable_cpus']}",
        f"  threads       {c['default_threads']} by default (n_threads=None)",
    ]
    print("\n".join(lines), file=file if file is not None else sys.stdout)
