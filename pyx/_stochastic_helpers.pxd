# Tiny C loops for the stochastic pooling kernels (the habits of _pool_helpers.pxd).
#
# Written in C so that gcc sees plain compare-and-select loops it can if-convert and vectorise
# (with -fno-trapping-math; see shared/PERF_NOTES.md). One copy per dtype: `_f` for float,
# `_d` for double.
#
# The random stream. SplitMix64 (Steele, Lea & Flood 2014; Vigna's splitmix64.c) seeded with a
# 64-bit key returns, as its n-th output (n = 1, 2, ...), mix(key + n * 0x9E3779B97F4A7C15).
# Being counter-based, a value depends only on (key, n): not on the thread that computes it,
# nor on the order. The output element at global position g (its flat index in the
# (N, C, OH, OW) output) takes its uniform u from:
#   double: output n = g + 1;  u = (z >> 11) * 2**-53            (53 bits)
#   float:  output n = g // 2 + 1, its low 32 bits for even g and its high 32 bits for odd g
#           (NumPy's order for float32 draws); u = (half >> 8) * 2**-24   (24 bits)
# Both are exact in their dtype and strictly below 1. A float32 running sum carries 24
# significant bits, so 24 bits of u are all that u * sum can use. poolkit.reference computes
# the same numbers with Python integers.

from libc.stdint cimport int32_t, int64_t, uint64_t

cdef extern from *:
    """
    #include <stdint.h>
    #include <stddef.h>
    #include <float.h>

    /* Arguments of one helper never alias: telling the compiler so lets it vectorise. */
    #define PKS_R __restrict

    static inline uint64_t pk_splitmix64(uint64_t key, uint64_t n) {
        uint64_t z = key + n * UINT64_C(0x9E3779B97F4A7C15);
        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        return z ^ (z >> 31);
    }
    /* 24 bits of a 32-bit half as a float in [0, 1) (the shift leaves a value that fits an
       int32, whose conversion is cheaper than an unsigned one). */
    static inline float pk_u24(uint32_t half) { return (float)(int32_t)(half >> 8) * 0x1p-24f; }

    /* u[i] for the outputs g0, g0 + 1, ..., g0 + n - 1 (see the stream above). */
    static inline void pk_uniform_row_f(uint64_t key, uint64_t g0, Py_ssize_t n,
                                        float *PKS_R u) {
        Py_ssize_t i = 0;
        if (n > 0 && (g0 & 1)) {            /* odd first output: the high half of its pair */
            u[0] = pk_u24((uint32_t)(pk_splitmix64(key, (g0 >> 1) + 1) >> 32));
            i = 1;
        }
        const uint64_t n0 = ((g0 + (uint64_t)i) >> 1) + 1;
        const Py_ssize_t pairs = (n - i) / 2;
        float *PKS_R v = u + i;
        for (Py_ssize_t k = 0; k < pairs; ++k) {
            const uint64_t z = pk_splitmix64(key, n0 + (uint64_t)k);
            v[2 * k] = pk_u24((uint32_t)z);
            v[2 * k + 1] = pk_u24((uint32_t)(z >> 32));
        }
        i += 2 * pairs;
        if (i < n)                           /* even last output: the low half of its pair */
            u[i] = pk_u24((uint32_t)pk_splitmix64(key, ((g0 + (uint64_t)i) >> 1) + 1));
    }
    static inline void pk_uniform_row_d(uint64_t key, uint64_t g0, Py_ssize_t n,
                                        double *PKS_R u) {
        for (Py_ssize_t i = 0; i < n; ++i)
            u[i] = (double)(int64_t)(pk_splitmix64(key, g0 + (uint64_t)i + 1) >> 11) * 0x1p-53;
    }

    /* An activation stochastic pooling accepts: finite and >= 0 (-0.0 included; NaN fails
       both comparisons). */
    #define PK_VALID(v, TMAX) ((v) >= 0 && (v) <= (TMAX))

    /* 1 when the n values x[0], x[s], ... are all valid, else 0. No early exit, and the flag
       is a T selected by the comparison: that is the form gcc vectorises (an int flag, or
       an int mask made from a double comparison, is not; s == 1 gets its own loop). */
    #define PK_DEFINE_ALL_VALID(T, SUFFIX, TMAX)                                            \\
    static inline int pk_all_valid_s_##SUFFIX(const T *PKS_R x, Py_ssize_t s, Py_ssize_t n) {\\
        T bad = 0;                                                                          \\
        for (Py_ssize_t i = 0; i < n; ++i) {                                                \\
            const T v = x[i * s];                                                           \\
            bad = PK_VALID(v, TMAX) ? bad : 1;                                              \\
        }                                                                                   \\
        return bad == 0;                                                                    \\
    }                                                                                       \\
    static inline int pk_all_valid_##SUFFIX(const T *PKS_R x, Py_ssize_t s, Py_ssize_t n) {  \\
        return s == 1 ? pk_all_valid_s_##SUFFIX(x, 1, n) : pk_all_valid_s_##SUFFIX(x, s, n);\\
    }
    PK_DEFINE_ALL_VALID(float, f, FLT_MAX)
    PK_DEFINE_ALL_VALID(double, d, DBL_MAX)

    /* The threshold of one window: u * S, and 0 when u == 0 even if a float32 window sum
       overflowed to inf (0 * inf would be NaN, which no running sum exceeds). The product
       is taken unconditionally, then selected: that form vectorises. */
    #define PK_DEFINE_THRESHOLDS(T, SUFFIX)                                                 \\
    static inline T pk_threshold_##SUFFIX(T u, T S) {                                       \\
        const T p = u * S;                                                                  \\
        return u > 0 ? p : 0;                                                               \\
    }                                                                                       \\
    static inline void pk_thresholds_##SUFFIX(const T *PKS_R u, const T *PKS_R S,            \\
                                             Py_ssize_t n, T *PKS_R t) {                    \\
        for (Py_ssize_t o = 0; o < n; ++o) t[o] = pk_threshold_##SUFFIX(u[o], S[o]);        \\
    }
    PK_DEFINE_THRESHOLDS(float, f)
    PK_DEFINE_THRESHOLDS(double, d)

    /* Window sums, one tap over one output row: acc[o] += row[o*s + off]. */
    #define PK_DEFINE_SUM_TAP(T, SUFFIX)                                                    \\
    static inline void pk_sum_tap_s_##SUFFIX(const T *PKS_R row, Py_ssize_t s, Py_ssize_t off,\\
                                            Py_ssize_t lo, Py_ssize_t hi, T *PKS_R acc) {   \\
        for (Py_ssize_t o = lo; o < hi; ++o) acc[o] = acc[o] + row[o * s + off];            \\
    }                                                                                       \\
    static inline void pk_sum_tap_##SUFFIX(const T *PKS_R row, Py_ssize_t s, Py_ssize_t off, \\
                                          Py_ssize_t lo, Py_ssize_t hi, T *PKS_R acc) {     \\
        if (s == 1) pk_sum_tap_s_##SUFFIX(row, 1, off, lo, hi, acc);                        \\
        else if (s == 2) pk_sum_tap_s_##SUFFIX(row, 2, off, lo, hi, acc);                   \\
        else pk_sum_tap_s_##SUFFIX(row, s, off, lo, hi, acc);                               \\
    }
    PK_DEFINE_SUM_TAP(float, f)
    PK_DEFINE_SUM_TAP(double, d)

    /* Sampling, one kernel tap over one output row. With c = cs[o] the running sum of the
       window's earlier taps and v this tap's value, the tap is taken when v > 0 and
       c <= t[o]; then cs[o] = c + v. Running sums of non-negative values never decrease, so
       the LAST tap taken is the first one whose running sum exceeds t[o] (that tap has
       v > 0, since its running sum grew) -- or, when rounding leaves every running sum
       <= t[o], the last positive one. A window of zeros takes none and keeps what the caller
       initialised: value 0 at its first input position. The index select is written with
       a mask, the form gcc vectorises for float (a ternary on an int64 array is not). */
    #define PK_DEFINE_PICK_TAP(T, SUFFIX)                                                   \\
    static inline void pk_pick_tap_s_##SUFFIX(const T *PKS_R row, Py_ssize_t s,              \\
                                             Py_ssize_t off, Py_ssize_t lo, Py_ssize_t hi,  \\
                                             const T *PKS_R t, T *PKS_R cs, T *PKS_R val,   \\
                                             int64_t *PKS_R idx, int64_t base) {            \\
        for (Py_ssize_t o = lo; o < hi; ++o) {                                              \\
            const T v = row[o * s + off];                                                   \\
            const T c = cs[o];                                                              \\
            const int64_t m = -(int64_t)((v > 0) & (c <= t[o]));                            \\
            val[o] = m ? v : val[o];                                                        \\
            idx[o] = (idx[o] & ~m) | ((base + o * s) & m);                                  \\
            cs[o] = c + v;                                                                  \\
        }                                                                                   \\
    }                                                                                       \\
    static inline void pk_pick_tap_##SUFFIX(const T *PKS_R row, Py_ssize_t s, Py_ssize_t off,\\
                                           Py_ssize_t lo, Py_ssize_t hi, const T *PKS_R t,  \\
                                           T *PKS_R cs, T *PKS_R val, int64_t *PKS_R idx,   \\
                                           int64_t base) {                                  \\
        if (s == 1) pk_pick_tap_s_##SUFFIX(row, 1, off, lo, hi, t, cs, val, idx, base);     \\
        else if (s == 2) pk_pick_tap_s_##SUFFIX(row, 2, off, lo, hi, t, cs, val, idx, base);\\
        else pk_pick_tap_s_##SUFFIX(row, s, off, lo, hi, t, cs, val, idx, base);            \\
    }

    /* 2x2 windows, stride 2, no padding, every window inside the plane: one fused pass over
       the row pair r0, r1 that checks the values, sums, thresholds and selects (the same
       running sums, in the same order, as the tap-by-tap path). b0 = flat index of r0[0],
       w = W. Returns 1 when every value read was valid. */
    #define PK_DEFINE_PICK_2X2(T, SUFFIX, TMAX)                                             \\
    static inline int pk_pick_2x2_##SUFFIX(const T *PKS_R r0, const T *PKS_R r1,             \\
                                          Py_ssize_t n, const T *PKS_R u, T *PKS_R val,     \\
                                          int64_t *PKS_R idx, int64_t b0, int32_t w) {      \\
        T bad = 0;                                                                          \\
        for (Py_ssize_t o = 0; o < n; ++o) {                                                \\
            const T a = r0[2 * o], b = r0[2 * o + 1], c = r1[2 * o], d = r1[2 * o + 1];     \\
            bad = (PK_VALID(a, TMAX) && PK_VALID(b, TMAX) && PK_VALID(c, TMAX)              \\
                   && PK_VALID(d, TMAX)) ? bad : 1;                                         \\
            const T s1 = a, s2 = s1 + b, s3 = s2 + c, S = s3 + d;                           \\
            const T t = pk_threshold_##SUFFIX(u[o], S);                                     \\
            T v = 0;                                                                        \\
            int32_t k = 0;                                                                  \\
            int take;                                                                       \\
            take = a > 0;               v = take ? a : v;                                   \\
            take = (b > 0) & (s1 <= t); v = take ? b : v; k = take ? 1 : k;                 \\
            take = (c > 0) & (s2 <= t); v = take ? c : v; k = take ? w : k;                 \\
            take = (d > 0) & (s3 <= t); v = take ? d : v; k = take ? w + 1 : k;             \\
            val[o] = v;                                                                     \\
            idx[o] = b0 + 2 * o + k;                                                        \\
        }                                                                                   \\
        return bad == 0;                                                                    \\
    }
    /* Inference, one tap over one output row, in double for either dtype:
       S[o] += v, Q[o] += v * v with v = row[o*s + off]. */
    #define PK_DEFINE_SUMSQ_TAP(T, SUFFIX)                                                  \\
    static inline void pk_sumsq_tap_s_##SUFFIX(const T *PKS_R row, Py_ssize_t s,             \\
                                              Py_ssize_t off, Py_ssize_t lo, Py_ssize_t hi, \\
                                              double *PKS_R S, double *PKS_R Q) {           \\
        for (Py_ssize_t o = lo; o < hi; ++o) {                                              \\
            const double v = (double)row[o * s + off];                                      \\
            S[o] = S[o] + v;                                                                \\
            Q[o] = Q[o] + v * v;                                                            \\
        }                                                                                   \\
    }                                                                                       \\
    static inline void pk_sumsq_tap_##SUFFIX(const T *PKS_R row, Py_ssize_t s, Py_ssize_t off,\\
                                            Py_ssize_t lo, Py_ssize_t hi, double *PKS_R S,  \\
                                            double *PKS_R Q) {                              \\
        if (s == 1) pk_sumsq_tap_s_##SUFFIX(row, 1, off, lo, hi, S, Q);                     \\
        else if (s == 2) pk_sumsq_tap_s_##SUFFIX(row, 2, off, lo, hi, S, Q);                \\
        else pk_sumsq_tap_s_##SUFFIX(row, s, off, lo, hi, S, Q);                            \\
    }                                                                                       \\
    /* out[o] = Q[o] / S[o], or 0 when S[o] == 0 (the quotient is taken, then selected). */ \\
    static inline void pk_ratio_row_##SUFFIX(const double *PKS_R S, const double *PKS_R Q,   \\
                                            Py_ssize_t n, T *PKS_R out) {                   \\
        for (Py_ssize_t o = 0; o < n; ++o) {                                                \\
            const double sv = S[o];                                                         \\
            const double y = Q[o] / (sv > 0 ? sv : 1.0);                                    \\
            out[o] = (T)(sv > 0 ? y : 0.0);                                                 \\
        }                                                                                   \\
    }
    PK_DEFINE_PICK_TAP(float, f)
    PK_DEFINE_PICK_TAP(double, d)
    PK_DEFINE_SUMSQ_TAP(float, f)
    PK_DEFINE_SUMSQ_TAP(double, d)
    PK_DEFINE_PICK_2X2(float, f, FLT_MAX)
    PK_DEFINE_PICK_2X2(double, d, DBL_MAX)
    """
    uint64_t pk_splitmix64(uint64_t key, uint64_t n) noexcept nogil
    void pk_uniform_row_f(uint64_t key, uint64_t g0, Py_ssize_t n, float *u) noexcept nogil
    void pk_uniform_row_d(uint64_t key, uint64_t g0, Py_ssize_t n, double *u) noexcept nogil
    int pk_all_valid_f(const float *x, Py_ssize_t s, Py_ssize_t n) noexcept nogil
    int pk_all_valid_d(const double *x, Py_ssize_t s, Py_ssize_t n) noexcept nogil
    void pk_thresholds_f(const float *u, const float *S, Py_ssize_t n, float *t) noexcept nogil
    void pk_thresholds_d(const double *u, const double *S, Py_ssize_t n,
                         double *t) noexcept nogil
    void pk_sum_tap_f(const float *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                      Py_ssize_t hi, float *acc) noexcept nogil
    void pk_sum_tap_d(const double *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                      Py_ssize_t hi, double *acc) noexcept nogil
    void pk_pick_tap_f(const float *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                       Py_ssize_t hi, const float *t, float *cs, float *val, int64_t *idx,
                       int64_t base) noexcept nogil
    void pk_pick_tap_d(const double *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                       Py_ssize_t hi, const double *t, double *cs, double *val, int64_t *idx,
                       int64_t base) noexcept nogil
    void pk_sumsq_tap_f(const float *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                        Py_ssize_t hi, double *S, double *Q) noexcept nogil
    void pk_sumsq_tap_d(const double *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                        Py_ssize_t hi, double *S, double *Q) noexcept nogil
    void pk_ratio_row_f(const double *S, const double *Q, Py_ssize_t n, float *out) noexcept nogil
    void pk_ratio_row_d(const double *S, const double *Q, Py_ssize_t n,
                        double *out) noexcept nogil
    int pk_pick_2x2_f(const float *r0, const float *r1, Py_ssize_t n, const float *u,
                      float *val, int64_t *idx, int64_t b0, int32_t w) noexcept nogil
    int pk_pick_2x2_d(const double *r0, const double *r1, Py_ssize_t n, const double *u,
                      double *val, int64_t *idx, int64_t b0, int32_t w) noexcept nogil
