# C helpers for the whole-plane and adaptive-window reductions (global, adaptive pooling).
#
# Written in C for the same reason as _pool_helpers.pxd: gcc vectorises these loops only when
# they are plain C with branch-free selects (and -fno-trapping-math). One copy per dtype: `_f`
# for float, `_d` for double.
#
# Summation. `pk_sum_*` adds a run of values in double with PK_LANES independent accumulators
# (lane l takes elements l, l + 16, l + 32, ...), folds the lanes pairwise (8 + 8, 4 + 4, ...)
# and adds the tail (the last n % 16 elements) in order. The order depends only on n, never on
# threads or alignment, so results are reproducible bit for bit. The lanes are what lets the
# loop run at memory speed: one double accumulator is bound by the 4-cycle latency of an add,
# about 3x slower than the memory on this machine. Accumulating float32 in double keeps the
# relative error of a 224 x 224 plane's sum near 1e-16 (plus one float32 rounding at the end).
#
# Argmax. `pk_argmax_*` returns the position of the first maximum of a run, or of its first NaN
# when it holds one (poolkit's max semantics: NaN wins and the first NaN is reported; ties go to
# the first position). Two passes: a vectorised lane-wise max with NaN detection, then a
# block-wise search for the first element equal to it (or the first NaN); both passes read the
# same few kilobytes, so the second one comes from L1.

from libc.stdint cimport int64_t

cdef extern from *:
    """
    #include <stdint.h>
    #include <stddef.h>
    #include <math.h>

    #define PK_LANES 16

    #define PK_DEFINE_SUM(T, SUFFIX)                                                        \\
    static inline double pk_sum_##SUFFIX(const T *x, Py_ssize_t n) {                         \\
        double acc[PK_LANES];                                                               \\
        for (int l = 0; l < PK_LANES; ++l) acc[l] = 0.0;                                    \\
        Py_ssize_t i = 0;                                                                   \\
        for (; i + PK_LANES <= n; i += PK_LANES)                                            \\
            for (int l = 0; l < PK_LANES; ++l) acc[l] += (double) x[i + l];                 \\
        for (int w = PK_LANES / 2; w >= 1; w /= 2)                                          \\
            for (int l = 0; l < w; ++l) acc[l] += acc[l + w];                               \\
        double s = acc[0];                                                                  \\
        for (; i < n; ++i) s += (double) x[i];                                              \\
        return s;                                                                           \\
    }
    PK_DEFINE_SUM(float, f)
    PK_DEFINE_SUM(double, d)

    #define PK_DEFINE_ARGMAX(T, SUFFIX)                                                     \\
    static inline Py_ssize_t pk_argmax_##SUFFIX(const T *x, Py_ssize_t n) {                  \\
        T m[PK_LANES];                                                                      \\
        for (int l = 0; l < PK_LANES; ++l) m[l] = -INFINITY;                                \\
        Py_ssize_t i = 0;                                                                   \\
        /* Lane-wise max; a NaN enters a lane and stays (v > NaN is false). */              \\
        for (; i + PK_LANES <= n; i += PK_LANES)                                            \\
            for (int l = 0; l < PK_LANES; ++l) {                                            \\
                const T v = x[i + l];                                                       \\
                m[l] = ((v > m[l]) | (v != v)) ? v : m[l];                                  \\
            }                                                                               \\
        T best = -INFINITY;                                                                 \\
        int nan = 0;                                                                        \\
        for (int l = 0; l < PK_LANES; ++l) {                                                \\
            nan |= m[l] != m[l];                                                            \\
            best = m[l] > best ? m[l] : best;                                               \\
        }                                                                                   \\
        for (; i < n; ++i) {                                                                \\
            const T v = x[i];                                                               \\
            nan |= v != v;                                                                  \\
            best = v > best ? v : best;                                                     \\
        }                                                                                   \\
        /* First position holding the maximum (every value is <= best, so == finds the    \\
           first tie; an all -inf run finds position 0), or the first NaN. */              \\
        Py_ssize_t b = 0;                                                                   \\
        if (nan) {                                                                          \\
            for (; b + PK_LANES <= n; b += PK_LANES) {                                      \\
                int hit = 0;                                                                \\
                for (int l = 0; l < PK_LANES; ++l) hit |= x[b + l] != x[b + l];             \\
                if (hit) break;                                                             \\
            }                                                                               \\
            for (; b < n; ++b) if (x[b] != x[b]) return b;                                  \\
        } else {                                                                            \\
            for (; b + PK_LANES <= n; b += PK_LANES) {                                      \\
                int hit = 0;                                                                \\
                for (int l = 0; l < PK_LANES; ++l) hit |= x[b + l] == best;                 \\
                if (hit) break;                                                             \\
            }                                                                               \\
            for (; b < n; ++b) if (x[b] == best) return b;                                  \\
        }                                                                                   \\
        return 0; /* not reached for n >= 1 */                                              \\
    }
    PK_DEFINE_ARGMAX(float, f)
    PK_DEFINE_ARGMAX(double, d)

    /* Max over one row segment [lo, hi) of an adaptive window, in order, with the rule of
       the max kernels: take v when it beats m, or when it is the first NaN. */
    #define PK_DEFINE_ROW_MAX(T, SUFFIX)                                                    \\
    static inline void pk_row_max_##SUFFIX(const T *row, Py_ssize_t lo, Py_ssize_t hi,       \\
                                          T *m, int64_t *idx, int64_t base) {               \\
        T cur = *m;                                                                         \\
        int64_t at = *idx;                                                                  \\
        for (Py_ssize_t w = lo; w < hi; ++w) {                                              \\
            const T v = row[w];                                                             \\
            const int take = (v > cur) | ((v != v) & (cur == cur));                         \\
            cur = take ? v : cur;                                                           \\
            at = take ? base + w : at;                                                      \\
        }                                                                                   \\
        *m = cur;                                                                           \\
        *idx = at;                                                                          \\
    }
    PK_DEFINE_ROW_MAX(float, f)
    PK_DEFINE_ROW_MAX(double, d)

    /* PyTorch's adaptive window along one axis of length L cut into n_out windows:
       [floor(o * L / n_out), ceil((o + 1) * L / n_out)), in integer arithmetic (the facade
       keeps L and n_out below 2**31, so the products fit in 64 bits). */
    static inline Py_ssize_t pk_adaptive_start(Py_ssize_t o, Py_ssize_t L, Py_ssize_t n_out) {
        return (Py_ssize_t) (((int64_t) o * L) / n_out);
    }
    static inline Py_ssize_t pk_adaptive_end(Py_ssize_t o, Py_ssize_t L, Py_ssize_t n_out) {
        return (Py_ssize_t) (((int64_t) (o + 1) * L + n_out - 1) / n_out);
    }
    """
    double pk_sum_f(const float *x, Py_ssize_t n) noexcept nogil
    double pk_sum_d(const double *x, Py_ssize_t n) noexcept nogil
    Py_ssize_t pk_argmax_f(const float *x, Py_ssize_t n) noexcept nogil
    Py_ssize_t pk_argmax_d(const double *x, Py_ssize_t n) noexcept nogil
    void pk_row_max_f(const float *row, Py_ssize_t lo, Py_ssize_t hi, float *m,
                      int64_t *idx, int64_t base) noexcept nogil
    void pk_row_max_d(const double *row, Py_ssize_t lo, Py_ssize_t hi, double *m,
                      int64_t *idx, int64_t base) noexcept nogil
    Py_ssize_t pk_adaptive_start(Py_ssize_t o, Py_ssize_t L, Py_ssize_t n_out) noexcept nogil
    Py_ssize_t pk_adaptive_end(Py_ssize_t o, Py_ssize_t L, Py_ssize_t n_out) noexcept nogil
