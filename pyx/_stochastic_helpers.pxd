# Tiny C loops for the stochastic pooling kernels (the habits of _pool_helpers.pxd).
#
# Written in C so that gcc sees plain compare-and-select loops it can if-convert and vectorise
# (with -fno-trapping-math; see shared/PERF_NOTES.md). One copy per dtype: `_f` for float,
# `_d` for double.
#
# The random stream: the uniform of the output element at global position g (its flat index in
# the (N, C, OH, OW) output) comes from the (g + 1)-th output of the SplitMix64 generator
# seeded with a 64-bit key, i.e. splitmix64_mix(key + (g + 1) * 0x9E3779B97F4A7C15) (Steele,
# Lea & Flood 2014; Vigna's splitmix64.c). Being counter-based, a value depends only on
# (key, g): not on the thread that computes it, nor on the order. poolkit.reference computes
# the same numbers with Python integers.

from libc.stdint cimport int64_t, uint64_t

cdef extern from *:
    """
    #include <stdint.h>
    #include <stddef.h>
    #include <float.h>

    #define PK_SPLITMIX64_GAMMA UINT64_C(0x9E3779B97F4A7C15)

    static inline uint64_t pk_splitmix64(uint64_t key, uint64_t n) {
        uint64_t z = key + n * PK_SPLITMIX64_GAMMA;
        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        return z ^ (z >> 31);
    }

    /* u[i] in [0, 1) for the outputs g0, g0 + 1, ..., g0 + n - 1. float: the top 24 bits
       (exactly representable, as NumPy's Generator.random(dtype=float32) does); double: the
       top 53 bits. Both are exact multiples of 2**-24 / 2**-53 strictly below 1. */
    static inline void pk_uniform_row_f(uint64_t key, uint64_t g0, Py_ssize_t n, float *u) {
        for (Py_ssize_t i = 0; i < n; ++i)
            u[i] = (float)(pk_splitmix64(key, g0 + (uint64_t)i + 1) >> 40) * 0x1p-24f;
    }
    static inline void pk_uniform_row_d(uint64_t key, uint64_t g0, Py_ssize_t n, double *u) {
        for (Py_ssize_t i = 0; i < n; ++i)
            u[i] = (double)(pk_splitmix64(key, g0 + (uint64_t)i + 1) >> 11) * 0x1p-53;
    }

    /* 1 when every one of the n values is finite and >= 0 (-0.0 included), else 0.
       No early exit: a flag accumulated without branches vectorises. */
    #define PK_DEFINE_ALL_VALID(T, SUFFIX, TMAX)                                            \\
    static inline int pk_all_valid_##SUFFIX(const T *x, Py_ssize_t n) {                     \\
        int ok = 1;                                                                         \\
        for (Py_ssize_t i = 0; i < n; ++i) ok &= (x[i] >= (T)0) & (x[i] <= TMAX);           \\
        return ok;                                                                          \\
    }
    PK_DEFINE_ALL_VALID(float, f, FLT_MAX)
    PK_DEFINE_ALL_VALID(double, d, DBL_MAX)

    /* t[o] = u[o] * s[o], in place over u: the threshold each window's running sum is
       compared with. u == 0 gives 0 even when a float32 window sum overflowed to inf
       (0 * inf would be NaN, which no running sum exceeds). */
    #define PK_DEFINE_SCALE(T, SUFFIX)                                                      \\
    static inline void pk_scale_row_##SUFFIX(T *t, const T *s, Py_ssize_t n) {              \\
        for (Py_ssize_t i = 0; i < n; ++i) t[i] = t[i] > (T)0 ? t[i] * s[i] : (T)0;         \\
    }
    PK_DEFINE_SCALE(float, f)
    PK_DEFINE_SCALE(double, d)

    /* Sampling, one kernel tap over one output row. With c = cs[o] the running sum of the
       window's earlier taps and v this tap's value, the tap is taken when v > 0 and
       c <= t[o]; then cs[o] = c + v. Running sums of non-negative values never decrease, so
       the LAST tap taken is the first one whose running sum exceeds t[o] -- or, when rounding
       leaves every running sum <= t[o], the last positive one. A window of zeros takes none
       and keeps what the caller initialised (value 0, its first input position). */
    #define PK_DEFINE_PICK_TAP(T, SUFFIX)                                                   \\
    static inline void pk_pick_tap_##SUFFIX(const T *row, Py_ssize_t s, Py_ssize_t off,      \\
                                           Py_ssize_t lo, Py_ssize_t hi, const T *t, T *cs,  \\
                                           T *val, int64_t *idx, int64_t base) {            \\
        for (Py_ssize_t o = lo; o < hi; ++o) {                                              \\
            const T v = row[o * s + off];                                                   \\
            const T c = cs[o];                                                              \\
            const int take = (v > (T)0) & (c <= t[o]);                                      \\
            val[o] = take ? v : val[o];                                                     \\
            idx[o] = take ? (base + o * s) : idx[o];                                        \\
            cs[o] = c + v;                                                                  \\
        }                                                                                   \\
    }
    PK_DEFINE_PICK_TAP(float, f)
    PK_DEFINE_PICK_TAP(double, d)
    """
    uint64_t pk_splitmix64(uint64_t key, uint64_t n) noexcept nogil
    void pk_uniform_row_f(uint64_t key, uint64_t g0, Py_ssize_t n, float *u) noexcept nogil
    void pk_uniform_row_d(uint64_t key, uint64_t g0, Py_ssize_t n, double *u) noexcept nogil
    int pk_all_valid_f(const float *x, Py_ssize_t n) noexcept nogil
    int pk_all_valid_d(const double *x, Py_ssize_t n) noexcept nogil
    void pk_scale_row_f(float *t, const float *s, Py_ssize_t n) noexcept nogil
    void pk_scale_row_d(double *t, const double *s, Py_ssize_t n) noexcept nogil
    void pk_pick_tap_f(const float *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                       Py_ssize_t hi, const float *t, float *cs, float *val, int64_t *idx,
                       int64_t base) noexcept nogil
    void pk_pick_tap_d(const double *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                       Py_ssize_t hi, const double *t, double *cs, double *val, int64_t *idx,
                       int64_t base) noexcept nogil
