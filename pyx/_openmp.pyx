# cython: boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
# (the same directives setup.py sets; repeated here so that a plain `cython -a` shows what the
# build compiles. POOLKIT_CYTHON_DEBUG=1 builds strip this line to turn the checks back on.)
"""Build and OpenMP facts of the compiled kernels (used by poolkit's thread resolution and
``poolkit.show_config``)."""

from _openmp_helpers cimport POOLKIT_OPENMP, omp_get_max_threads, omp_get_num_procs

cdef extern from *:
    """
    #if defined(__clang__)
    #define POOLKIT_COMPILER "clang " __clang_version__
    #elif defined(__GNUC__)
    #define POOLKIT_COMPILER "gcc " __VERSION__
    #elif defined(_MSC_VER)
    #define POOLKIT_COMPILER "msvc"
    #else
    #define POOLKIT_COMPILER "unknown"
    #endif
    #ifdef _OPENMP
    #define POOLKIT_OPENMP_VERSION _OPENMP
    #else
    #define POOLKIT_OPENMP_VERSION 0
    #endif
    """
    const char *POOLKIT_COMPILER
    int POOLKIT_OPENMP_VERSION


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(POOLKIT_OPENMP)


def openmp_version():
    """The ``_OPENMP`` date macro the kernels were compiled with (0 without OpenMP)."""
    return POOLKIT_OPENMP_VERSION


def compiler():
    """The C compiler that built the kernels."""
    return POOLKIT_COMPILER.decode("utf-8", "replace")


def max_threads():
    """OpenMP's default team size now (respects OMP_NUM_THREADS and threadpoolctl)."""
    return omp_get_max_threads()


def num_procs():
    """Processors OpenMP sees."""
    return omp_get_num_procs()
