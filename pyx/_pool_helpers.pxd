# Tiny C loops shared by the pooling kernels.
#
# They are written in C, not Cython, because Cython turns its ternaries into if/else blocks
# that gcc does not if-convert: these loops compile to branch-free compare-and-select code the
# compiler can vectorise (with -fno-trapping-math; see shared/PERF_NOTES.md). One copy per
# dtype: `_f` for float, `_d` for double. Each is a single pass over one output row.
#
# Window arithmetic helpers are here too, so every kernel computes "which outputs does this tap
# reach" the same way.

from libc.stdint cimport int64_t

cdef extern from *:
    """
    #include <stdint.h>
    #include <stddef.h>

    /* Max pooling, one kernel tap over one output row:
       for o in [lo, hi): v = row[o*s + off]; take it when it beats m[o], or when it is the
       first NaN (a NaN never compares greater, and once m[o] is NaN nothing replaces it). */
    #define PK_DEFINE_MAX_TAP(T, SUFFIX)                                                    \\
    static inline void pk_max_tap_##SUFFIX(const T *row, Py_ssize_t s, Py_ssize_t off,       \\
                                          Py_ssize_t lo, Py_ssize_t hi, T *m, int64_t *idx,  \\
                                          int64_t base) {                                   \\
        for (Py_ssize_t o = lo; o < hi; ++o) {                                              \\
            const T v = row[o * s + off];                                                   \\
            const T cur = m[o];                                                             \\
            const int take = (v > cur) | ((v != v) & (cur == cur));                         \\
            m[o] = take ? v : cur;                                                          \\
            idx[o] = take ? (base + o * s) : idx[o];                                        \\
        }                                                                                   \\
    }
    PK_DEFINE_MAX_TAP(float, f)
    PK_DEFINE_MAX_TAP(double, d)

    /* Sum pooling, one tap over one output row: acc[o] += row[o*s + off]. */
    #define PK_DEFINE_ADD_TAP(T, SUFFIX)                                                    \\
    static inline void pk_add_tap_##SUFFIX(const T *row, Py_ssize_t s, Py_ssize_t off,       \\
                                          Py_ssize_t lo, Py_ssize_t hi, T *acc) {           \\
        for (Py_ssize_t o = lo; o < hi; ++o) acc[o] = acc[o] + row[o * s + off];            \\
    }
    PK_DEFINE_ADD_TAP(float, f)
    PK_DEFINE_ADD_TAP(double, d)

    /* The transposed tap (backward): row[o*s + off] += q[o]. */
    #define PK_DEFINE_SCATTER_TAP(T, SUFFIX)                                                \\
    static inline void pk_scatter_tap_##SUFFIX(T *row, Py_ssize_t s, Py_ssize_t off,         \\
                                              Py_ssize_t lo, Py_ssize_t hi, const T *q) {   \\
        for (Py_ssize_t o = lo; o < hi; ++o) row[o * s + off] = row[o * s + off] + q[o];    \\
    }
    PK_DEFINE_SCATTER_TAP(float, f)
    PK_DEFINE_SCATTER_TAP(double, d)

    /* First output o >= 0 with o*s + off >= 0, and one past the last with o*s + off < L,
       both clipped to [0, n_out]. s >= 1; off may be negative. */
    static inline Py_ssize_t pk_first_out(Py_ssize_t off, Py_ssize_t s, Py_ssize_t n_out) {
        Py_ssize_t lo = off >= 0 ? 0 : (-off + s - 1) / s;
        return lo < n_out ? lo : n_out;
    }
    static inline Py_ssize_t pk_end_out(Py_ssize_t off, Py_ssize_t s, Py_ssize_t L,
                                        Py_ssize_t n_out) {
        Py_ssize_t hi = (L - 1 - off) < 0 ? 0 : (L - 1 - off) / s + 1;
        return hi < n_out ? hi : n_out;
    }
    /* First tap position start + i*d (i >= 0) that is >= 0 (start may be negative). */
    static inline Py_ssize_t pk_first_inside(Py_ssize_t start, Py_ssize_t d) {
        return start >= 0 ? start : start + ((-start + d - 1) / d) * d;
    }
    """
    void pk_max_tap_f(const float *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                      Py_ssize_t hi, float *m, int64_t *idx, int64_t base) noexcept nogil
    void pk_max_tap_d(const double *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                      Py_ssize_t hi, double *m, int64_t *idx, int64_t base) noexcept nogil
    void pk_add_tap_f(const float *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                      Py_ssize_t hi, float *acc) noexcept nogil
    void pk_add_tap_d(const double *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                      Py_ssize_t hi, double *acc) noexcept nogil
    void pk_scatter_tap_f(float *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                          Py_ssize_t hi, const float *q) noexcept nogil
    void pk_scatter_tap_d(double *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                          Py_ssize_t hi, const double *q) noexcept nogil
    Py_ssize_t pk_first_out(Py_ssize_t off, Py_ssize_t s, Py_ssize_t n_out) noexcept nogil
    Py_ssize_t pk_end_out(Py_ssize_t off, Py_ssize_t s, Py_ssize_t L,
                          Py_ssize_t n_out) noexcept nogil
    Py_ssize_t pk_first_inside(Py_ssize_t start, Py_ssize_t d) noexcept nogil
