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
