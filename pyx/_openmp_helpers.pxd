# OpenMP through a guarded shim, so that every module also compiles without OpenMP
# (scikit-learn's utils/_openmp_helpers.pxd). `cimport openmp` would emit an unguarded
# `#include <omp.h>` and break the serial fallback.

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define POOLKIT_OPENMP 1
    #else
    #define POOLKIT_OPENMP 0
    static inline int omp_get_max_threads(void) { return 1; }
    static inline int omp_get_thread_num(void) { return 0; }
    static inline int omp_get_num_procs(void) { return 1; }
    #endif
    """
    int POOLKIT_OPENMP
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
    int omp_get_num_procs() noexcept nogil


cdef inline Py_ssize_t dynamic_chunk(Py_ssize_t n, int n_threads) noexcept nogil:
    """Chunk size for ``prange(n, schedule="dynamic", chunksize=...)``: about 16 chunks per
    thread. On a shared machine a thread can lose its CPU for milliseconds; with a static
    split the others then wait for its half at the barrier, with chunks they take over its
    remaining ones (5-10% lower medians on the large benchmark rows with 2 threads). Each
    iteration is computed the same whichever thread takes it, so results do not change."""
    return max(1, n // (16 * max(n_threads, 1)))
