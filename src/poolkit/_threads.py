"""Thread-count resolution (scikit-learn's ``_openmp_effective_n_threads`` habits)."""

from __future__ import annotations

import os

import numpy as np

from . import _openmp

# Work (elements read plus written) below this runs on one thread: starting and joining a team
# costs more than the work (scikit-learn #30662 measured 15x slowdowns otherwise), and far more
# when the cores are busy with other processes (a (32, 16, 8, 8) layer was 4-10x slower with two
# threads than with one on a loaded 2-core machine). 2**17 elements take ~30 us on one core.
SMALL_WORK = 1 << 17

# Whether the kernels were compiled with OpenMP: fixed when the extensions were built.
_OPENMP = bool(_openmp.openmp_enabled())


_cpu_count: int | None = None


def _forget_cpu_count() -> None:
    global _cpu_count
    _cpu_count = None


if hasattr(os, "register_at_fork"):
    # a forked child may be pinned to other CPUs than its parent
    os.register_at_fork(after_in_child=_forget_cpu_count)


def cpu_count() -> int:
    """CPUs this process may run on (affinity and cgroup-aware where the OS says so), read
    once per process: the affinity query is a system call, ~2 us on every pooling call
    otherwise. (``_forget_cpu_count()`` after changing the process's affinity.)"""
    global _cpu_count
    if _cpu_count is None:
        _cpu_count = _query_cpu_count()
    return _cpu_count


def _query_cpu_count() -> int:
    if hasattr(os, "process_cpu_count"):  # Python 3.13
        n = os.process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:
        n = os.cpu_count()
    return max(1, n or 1)


def max_threads() -> int:
    """OpenMP's default team size (OMP_NUM_THREADS, threadpoolctl), capped at the usable CPUs."""
    if not _OPENMP:
        return 1
    n, c = _openmp.max_threads(), cpu_count()
    return max(1, n) if n <= c else c


def resolve(n_threads, work: int = SMALL_WORK) -> int:
    """The positive thread count to hand a kernel.

    None: OpenMP's default (capped at the usable CPUs); a positive int: that many; a negative
    int: counts back from the maximum (-1 = all, -2 = all but one). ``work`` (elements touched)
    below SMALL_WORK runs on one thread.
    """
    if type(n_threads) is int and 0 < n_threads <= _MIN_TEAM_CAP and work >= SMALL_WORK:
        return n_threads if _OPENMP else 1  # the common explicit count, in a third of the time
    if n_threads is None:
        return max_threads() if work >= SMALL_WORK else 1  # (never above max_team())
    else:
        if isinstance(n_threads, (bool, np.bool_)) or not isinstance(n_threads, (int, np.integer)):
            raise TypeError(f"n_threads must be None or an int, got {n_threads!r}")
        n_threads = int(n_threads)
        if n_threads == 0:
            raise ValueError("n_threads must be a non-zero int or None, got 0")
        if n_threads > 0:
            n = n_threads
        else:
            n = cpu_count() + 1 + n_threads
            if n < 1:
                raise ValueError(
                    f"n_threads={n_threads} asks for {n} threads on a machine with "
                    f"{cpu_count()} usable CPUs"
                )
        if not _OPENMP:
            n = 1
    if work < SMALL_WORK:
        return 1
    return min(n, max_team())


_MIN_TEAM_CAP = 256


def max_team() -> int:
    """The most threads a kernel is ever handed: an explicit ``n_threads`` above it is capped
    (results do not depend on the count). libgomp cannot start arbitrarily many threads: a
    team of 65536 crashed the process (SIGSEGV) on a 2-core Linux machine."""
    return max(_MIN_TEAM_CAP, 8 * cpu_count())
