"""Build and OpenMP facts of the compiled kernels (stub of ``pyx/_openmp.pyx``)."""

def openmp_enabled() -> bool:
    """True when the kernels were compiled with OpenMP."""

def openmp_version() -> int:
    """The ``_OPENMP`` date macro the kernels were compiled with (0 without OpenMP)."""

def compiler() -> str:
    """The C compiler that built the kernels."""

def max_threads() -> int:
    """OpenMP's default team size now (respects OMP_NUM_THREADS and threadpoolctl)."""

def num_procs() -> int:
    """Processors OpenMP sees."""
