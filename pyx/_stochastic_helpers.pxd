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
    /* The fused loops run their rows in blocks (PK_IN_BLOCKS, from _pool_helpers.pxd, which
       every module that cimports this file cimports first). */
    #ifndef PK_IN_BLOCKS
    #error "cimport from _pool_helpers before _stochastic_helpers"
    #endif
    /* The row loops are kept out of line, so that their __restrict promises hold: inlined
       into a kernel, gcc sees pointers into one scratch block and the output rows and needs
       runtime alias checks it may decline to emit. A call per tap and row is cheap.
       With gcc on x86-64 Linux they are also compiled twice, for AVX2 and for the baseline,
       and picked at load time (as _pool_helpers.pxd's PK_ROW; POOLKIT_NO_MULTIVERSION turns
       it off): twice the vector width where the CPU has it, portable wheels all the same.
       Both clones give bitwise the same results: the avx2 target does not enable FMA, so
       every sum and product is rounded exactly as in the baseline code.
       Check vectorisation with Python's own flags (they include -fwrapv, which changes what
       gcc vectorises): add -fopt-info-vec-optimized to the compile line setup.py prints. */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \\
        && !defined(POOLKIT_NO_MULTIVERSION)
    #define PKS_LOOP static __attribute__((target_clones("avx2", "default"), unused))
    #elif defined(_MSC_VER)
    #define PKS_LOOP static __declspec(noinline)
    #else
    #define PKS_LOOP static __attribute__((noinline, unused))
    #endif

    static inline uint64_t pk_splitmix64(uint64_t key, uint64_t n) {
        uint64_t z = key + n * UINT64_C(0x9E3779B97F4A7C15);
        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        return z ^ (z >> 31);
    }
    /* 24 bits of a 32-bit half as a float in [0, 1) (the shift leaves a value that fits an
       int32, whose conversion is cheaper than an unsigned one). */
    static inline float pk_u24(uint32_t half) { return (float)(int32_t)(half >> 8) * (1.0f / 16777216.0f); }

    #if PK_VEC8
    /* The stream in blocks of 4 outputs: SplitMix64's mix on 4 64-bit lanes (gcc builds the
       64-bit multiplies from 32-bit ones: AVX2 has none, and the scalar loop's imul, one
       per cycle, bounded it), lane l of z holding key + (n + l) * golden. Same numbers as
       pk_splitmix64, lane by lane. */
    typedef uint64_t pk_u4 __attribute__((vector_size(32)));
    typedef uint32_t pk_u8 __attribute__((vector_size(32)));
    static inline pk_u4 pk_mix4(pk_u4 z) {
        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        return z ^ (z >> 31);
    }
    /* the counters n .. n + 3, weighted: key + (n + l) * golden */
    static inline pk_u4 pk_mix4_start(uint64_t key, uint64_t n) {
        const uint64_t g = UINT64_C(0x9E3779B97F4A7C15);
        return key + (n + (pk_u4){0, 1, 2, 3}) * g;
    }
    #define PK_MIX4_STEP (UINT64_C(0x9E3779B97F4A7C15) * 4)
    #endif

    /* u[i] for the outputs g0, g0 + 1, ..., g0 + n - 1 (see the stream above). The 64-bit
       outputs in memory order are the pairs' halves in output order (low, high), so that a
       block of 4 outputs is 8 floats as they stand. */
    PKS_LOOP void pk_uniform_row_f(uint64_t key, uint64_t g0, Py_ssize_t n, float *PKS_R u) {
        Py_ssize_t i = 0;
        if (n > 0 && (g0 & 1)) {            /* odd first output: the high half of its pair */
            u[0] = pk_u24((uint32_t)(pk_splitmix64(key, (g0 >> 1) + 1) >> 32));
            i = 1;
        }
        const uint64_t n0 = ((g0 + (uint64_t)i) >> 1) + 1;
        const Py_ssize_t pairs = (n - i) / 2;
        float *PKS_R v = u + i;
        Py_ssize_t k = 0;
    #if PK_VEC8
        pk_u4 z = pk_mix4_start(key, n0);
        for (; k + 4 <= pairs; k += 4, z += PK_MIX4_STEP) {
            const pk_u8 h = (pk_u8)pk_mix4(z);
            const pk_f8 f = __builtin_convertvector((pk_i8)(h >> 8), pk_f8) * (1.0f / 16777216.0f);
            __builtin_memcpy(v + 2 * k, &f, sizeof f);
        }
    #endif
        for (; k < pairs; ++k) {
            const uint64_t z = pk_splitmix64(key, n0 + (uint64_t)k);
            v[2 * k] = pk_u24((uint32_t)z);
            v[2 * k + 1] = pk_u24((uint32_t)(z >> 32));
        }
        i += 2 * pairs;
        if (i < n)                           /* even last output: the low half of its pair */
            u[i] = pk_u24((uint32_t)pk_splitmix64(key, ((g0 + (uint64_t)i) >> 1) + 1));
    }
    /* 53 bits as a double in [0, 1). In blocks of 4, v = z >> 11 (below 2**53) converted
       exactly without a 64-bit integer conversion (AVX2 has none): its high and low 32 bits
       put into the mantissas of 2**84 and 2**52, and those biases taken off; each step is
       exact, so the double is v itself, as (double)(int64_t)v. */
    PKS_LOOP void pk_uniform_row_d(uint64_t key, uint64_t g0, Py_ssize_t n, double *PKS_R u) {
        Py_ssize_t i = 0;
    #if PK_VEC8
        pk_u4 z = pk_mix4_start(key, g0 + 1);
        for (; i + 4 <= n; i += 4, z += PK_MIX4_STEP) {
            const pk_u4 v = pk_mix4(z) >> 11;
            const pk_u4 hi = (v >> 32) | UINT64_C(0x4530000000000000);
            const pk_u4 lo = (v & UINT64_C(0xFFFFFFFF)) | UINT64_C(0x4330000000000000);
            const pk_d4 d = ((pk_d4)hi - 0x1.00000001p84) + (pk_d4)lo;
            const pk_d4 r = d * (1.0 / 9007199254740992.0);
            __builtin_memcpy(u + i, &r, sizeof r);
        }
    #endif
        for (; i < n; ++i)
            u[i] = (double)(int64_t)(pk_splitmix64(key, g0 + (uint64_t)i + 1) >> 11) * (1.0 / 9007199254740992.0);
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
    PKS_LOOP int pk_all_valid_##SUFFIX(const T *PKS_R x, Py_ssize_t s, Py_ssize_t n) {      \\
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
    PKS_LOOP void pk_thresholds_##SUFFIX(const T *PKS_R u, const T *PKS_R S, Py_ssize_t n,  \\
                                         T *PKS_R t) {                                      \\
        for (Py_ssize_t o = 0; o < n; ++o) t[o] = pk_threshold_##SUFFIX(u[o], S[o]);        \\
    }
    PK_DEFINE_THRESHOLDS(float, f)
    PK_DEFINE_THRESHOLDS(double, d)

    /* Per-tap row loops. A tap reaches the outputs o in [lo, hi), reading row[o*s + off].
       The out-of-line wrapper moves every pointer to o = lo and the inline body loops from
       0, with strides 1 and 2 as compile-time constants: the simplest loops to vectorise. */
    #define PK_TAP_DISPATCH(BODY, ...)                                                      \\
        if (s == 1) BODY(1, __VA_ARGS__);                                                   \\
        else if (s == 2) BODY(2, __VA_ARGS__);                                              \\
        else BODY(s, __VA_ARGS__);

    /* Window sums: acc[o] += row[o*s + off]. */
    #define PK_DEFINE_SUM_TAP(T, SUFFIX)                                                    \\
    static inline void pk_sum_tap_s_##SUFFIX(Py_ssize_t s, const T *PKS_R r, Py_ssize_t n,  \\
                                             T *PKS_R acc) {                                \\
        for (Py_ssize_t o = 0; o < n; ++o) acc[o] = acc[o] + r[o * s];                      \\
    }                                                                                       \\
    PKS_LOOP void pk_sum_tap_##SUFFIX(const T *PKS_R row, Py_ssize_t s, Py_ssize_t off,     \\
                                      Py_ssize_t lo, Py_ssize_t hi, T *PKS_R acc) {         \\
        if (hi <= lo) return;                                                               \\
        PK_TAP_DISPATCH(pk_sum_tap_s_##SUFFIX, row + lo * s + off, hi - lo, acc + lo)       \\
    }
    PK_DEFINE_SUM_TAP(float, f)
    PK_DEFINE_SUM_TAP(double, d)

    /* Sampling, one kernel tap over one output row. With c = cs[o] the running sum of the
       window's earlier taps and v this tap's value, the tap is taken when v > 0 and
       c <= t[o]; then cs[o] = c + v. Running sums of non-negative values never decrease, so
       the LAST tap taken is the first one whose running sum exceeds t[o] (that tap has
       v > 0, since its running sum grew) -- or, when rounding leaves every running sum
       <= t[o], the last positive one. A window of zeros takes none and keeps what the caller
       initialised: value 0 at its first input position. The value select takes an int
       condition and the index select an int64 mask: the forms gcc vectorises for float under
       -fwrapv (an int64 condition for the value, or a ternary on the int64 array, is not;
       double stays scalar on SSE2, which has no packed 64-bit compare-to-mask path). */
    #define PK_DEFINE_PICK_TAP(T, SUFFIX)                                                   \\
    static inline void pk_pick_tap_s_##SUFFIX(Py_ssize_t s, const T *PKS_R r, Py_ssize_t n, \\
                                              const T *PKS_R t, T *PKS_R cs, T *PKS_R val,  \\
                                              int64_t *PKS_R idx, int64_t base) {           \\
        for (Py_ssize_t o = 0; o < n; ++o) {                                                \\
            const T v = r[o * s];                                                           \\
            const T c = cs[o];                                                              \\
            const int take = (v > 0) & (c <= t[o]);                                         \\
            const int64_t m = -(int64_t)take;                                               \\
            const T vo = val[o];                                                            \\
            val[o] = take ? v : vo;                                                         \\
            idx[o] = (idx[o] & ~m) | ((base + o * s) & m);                                  \\
            cs[o] = c + v;                                                                  \\
        }                                                                                   \\
    }                                                                                       \\
    PKS_LOOP void pk_pick_tap_##SUFFIX(const T *PKS_R row, Py_ssize_t s, Py_ssize_t off,    \\
                                       Py_ssize_t lo, Py_ssize_t hi, const T *PKS_R t,      \\
                                       T *PKS_R cs, T *PKS_R val, int64_t *PKS_R idx,       \\
                                       int64_t base) {                                      \\
        if (hi <= lo) return;                                                               \\
        PK_TAP_DISPATCH(pk_pick_tap_s_##SUFFIX, row + lo * s + off, hi - lo, t + lo, cs + lo,\\
                        val + lo, idx + lo, base + lo * s)                                  \\
    }

    /* 2x2 windows, stride 2, no padding, every window inside the plane: one fused pass over
       the row pair r0, r1 that sums, thresholds and selects (the same running sums, in the
       same order, as the tap-by-tap path). b0 = flat index of r0[0], w = W (< 2**30).
       Returns 1 when the values it read were all finite and >= 0, else 0: the vector
       blocks always check; the scalar loop only with CHECK = 1 (float), double's returns 1
       and its caller checks the plane first (rows too short for a block, or builds without
       vectors): the flag's reduction is what keeps gcc from vectorising the double loop on
       SSE2, and so is an int32 window offset chosen by double comparisons -- double keeps
       it as a double (exact: w < 2**30). */
    #define PK_DEFINE_PICK_2X2(T, SUFFIX, TMAX, KT, CHECK, VS, VT, VM, STIDX)               \\
    PK_BODY int pk_pick_2x2_k_##SUFFIX(const T *PKS_R r0, const T *PKS_R r1,         \\
                                            Py_ssize_t lo, Py_ssize_t hi, const T *PKS_R u, \\
                                            T *PKS_R val, int64_t *PKS_R idx, int64_t b0,   \\
                                            int32_t w) {                                    \\
        T bad = 0;                                                                          \\
        const KT k1 = (KT)1, kw = (KT)w, kw1 = (KT)w + (KT)1;                               \\
        for (Py_ssize_t o = lo; o < hi; ++o) {                                              \\
            const T a = r0[2 * o], b = r0[2 * o + 1], c = r1[2 * o], d = r1[2 * o + 1];     \\
            const T s1 = a, s2 = s1 + b, s3 = s2 + c, S = s3 + d;                           \\
            if (CHECK) {                                                                    \\
                /* Valid: min >= 0, max finite, no NaN (a NaN may slip through the          \\
                   compare-and-select min and max, never through the sum). About half       \\
                   the instructions of eight separate comparisons. */                       \\
                const T m1 = a < b ? a : b, m2 = c < d ? c : d, mn = m1 < m2 ? m1 : m2;     \\
                const T x1 = a > b ? a : b, x2 = c > d ? c : d, mx = x1 > x2 ? x1 : x2;     \\
                bad = (mn >= 0 && mx <= TMAX && S == S) ? bad : 1;                          \\
            }                                                                               \\
            const T t = pk_threshold_##SUFFIX(u[o], S);                                     \\
            T v = 0;                                                                        \\
            KT k = 0;                                                                       \\
            /* Each condition written into its selects (an int `take` made from a double    \\
               comparison does not vectorise). */                                           \\
            v = a > 0 ? a : v;                                                              \\
            v = (b > 0 && s1 <= t) ? b : v;   k = (b > 0 && s1 <= t) ? k1 : k;              \\
            v = (c > 0 && s2 <= t) ? c : v;   k = (c > 0 && s2 <= t) ? kw : k;              \\
            v = (d > 0 && s3 <= t) ? d : v;   k = (d > 0 && s3 <= t) ? kw1 : k;             \\
            val[o] = v;                                                                     \\
            idx[o] = b0 + 2 * o + (int32_t)k;                                               \\
        }                                                                                   \\
        return bad == 0;                                                                    \\
    }                                                                                       \\
    PK_PICK_2X2_VEC(T, SUFFIX, TMAX, VS, VT, VM, STIDX)                                     \\
    PKS_LOOP int pk_pick_2x2_##SUFFIX(const T *PKS_R r0, const T *PKS_R r1, Py_ssize_t n,   \\
                                      const T *PKS_R u, T *PKS_R val, int64_t *PKS_R idx,   \\
                                      int64_t b0, int32_t w) {                              \\
        const Py_ssize_t NL = pk_vl_##VS;  /* windows per vector block */                  \\
        if (PK_VEC8 && n >= NL)                                                             \\
            return pk_pick_2x2_vrow_##SUFFIX(r0, r1, n, u, val, idx, b0, w);                \\
        int ok = 1;                                                                         \\
        PK_IN_BLOCKS(0, n, ok &= pk_pick_2x2_k_##SUFFIX(r0, r1, B_LO, B_HI, u, val, idx,    \\
                                                        b0, w));                            \\
        return ok;                                                                          \\
    }

    /* 3x3 windows, stride s (1 or 2, a constant after inlining), over outputs [lo, hi)
       whose windows lie inside the plane (the plane already checked): the window sum, its
       threshold and the select in one pass, nine values in registers -- the same running
       sums in the same order as the tap-by-tap path (which starts them from +0: the sums
       here differ from those at most in the sign of a zero, which no comparison sees).
       Window o starts at column o*s + c0 of rows r0, r1, r2; b0 is the flat index of
       r0[c0]; w = W (< 2**29). The window offset is kept as a KT (int32 for float, double
       for double: see pk_pick_2x2). */
    #define PK_DEFINE_PICK_3X3(T, SUFFIX, KT, VS, VT, VM, KV, STIDX)                        \\
    PK_BODY void pk_pick_3x3_k_##SUFFIX(PK_TAPS(T), Py_ssize_t n, const T *PKS_R u,         \\
                                        T *PKS_R val, int64_t *PKS_R idx, int64_t base,     \\
                                        Py_ssize_t s, int32_t w) {                          \\
        const KT w0 = (KT)w, w2 = (KT)(2 * w);                                              \\
        for (Py_ssize_t o = 0; o < n; ++o) {                                                \\
            const T a0 = t0[o], a1 = t1[o], a2 = t2[o];                                     \\
            const T a3 = t3[o], a4 = t4[o], a5 = t5[o];                                     \\
            const T a6 = t6[o], a7 = t7[o], a8 = t8[o];                                     \\
            const T s1 = a0, s2 = s1 + a1, s3 = s2 + a2, s4 = s3 + a3, s5 = s4 + a4;        \\
            const T s6 = s5 + a5, s7 = s6 + a6, s8 = s7 + a7, S = s8 + a8;                  \\
            const T t = pk_threshold_##SUFFIX(u[o], S);                                     \\
            T v = 0;                                                                        \\
            KT k = 0;                                                                       \\
            v = a0 > 0 ? a0 : v;                                                            \\
            v = (a1 > 0 && s1 <= t) ? a1 : v;  k = (a1 > 0 && s1 <= t) ? (KT)1 : k;         \\
            v = (a2 > 0 && s2 <= t) ? a2 : v;  k = (a2 > 0 && s2 <= t) ? (KT)2 : k;         \\
            v = (a3 > 0 && s3 <= t) ? a3 : v;  k = (a3 > 0 && s3 <= t) ? w0 : k;            \\
            v = (a4 > 0 && s4 <= t) ? a4 : v;  k = (a4 > 0 && s4 <= t) ? w0 + 1 : k;        \\
            v = (a5 > 0 && s5 <= t) ? a5 : v;  k = (a5 > 0 && s5 <= t) ? w0 + 2 : k;        \\
            v = (a6 > 0 && s6 <= t) ? a6 : v;  k = (a6 > 0 && s6 <= t) ? w2 : k;            \\
            v = (a7 > 0 && s7 <= t) ? a7 : v;  k = (a7 > 0 && s7 <= t) ? w2 + 1 : k;        \\
            v = (a8 > 0 && s8 <= t) ? a8 : v;  k = (a8 > 0 && s8 <= t) ? w2 + 2 : k;        \\
            val[o] = v;                                                                     \\
            idx[o] = base + o * s + (int32_t)k;                                             \\
        }                                                                                   \\
    }                                                                                       \\
    PK_PICK_3X3_VEC(T, SUFFIX, VS, VT, VM, KV, STIDX)                                       \\
    PKS_LOOP void pk_pick_3x3_##SUFFIX(const T *PKS_R r0, const T *PKS_R r1,                \\
                                       const T *PKS_R r2, Py_ssize_t s, Py_ssize_t c0,      \\
                                       Py_ssize_t lo, Py_ssize_t hi, const T *PKS_R u,      \\
                                       T *PKS_R val, int64_t *PKS_R idx, int64_t b0,        \\
                                       int32_t w, int left, int top) {                      \\
        /* left (s == 2, c0 == -1, lo == 1, hi >= NL): window 0, which overhangs the left   \\
           edge, is done here too, in the first block. top (s == 2): r0 is a row of -0.0   \\
           standing for the top padding (b0 the flat index it would have, row -1). */       \\
        const Py_ssize_t NL = pk_vl_##VS;  /* windows per vector block */                  \\
        if (PK_VEC8 && s == 2 && (left || hi - lo >= NL)) {                                 \\
            /* NL windows per block, columns split in registers (see PK_DEFINE_SEP_MAX3) */ \\
            Py_ssize_t o = lo;                                                              \\
            if (left) {                                                                     \\
                pk_pick_3s2_v8_##SUFFIX(r0, r1, r2, 0, 0, u, val, idx, b0, w, 1, top);      \\
                o = NL;                                                                     \\
            }                                                                               \\
            for (; o + NL <= hi; o += NL)                                                   \\
                pk_pick_3s2_v8_##SUFFIX(r0, r1, r2, 2 * o + c0, o, u, val, idx, b0 + 2 * o, \\
                                        w, 0, top);                                         \\
            if (o < hi)  /* the last block overlaps the one before */                       \\
                pk_pick_3s2_v8_##SUFFIX(r0, r1, r2, 2 * (hi - NL) + c0, hi - NL, u, val,    \\
                                        idx, b0 + 2 * (hi - NL), w, 0, top);                \\
            return;                                                                         \\
        }                                                                                   \\
        PK_3X3_CHUNKS(T, r0, r1, r2, s, c0, lo, hi,                                         \\
            PK_IN_BLOCKS(0, N, pk_pick_3x3_k_##SUFFIX(PK_Q(B_LO), B_HI - B_LO,              \\
                                                      u + O0 + B_LO, val + O0 + B_LO,       \\
                                                      idx + O0 + B_LO,                      \\
                                                      b0 + (O0 + B_LO) * s, s, w)));        \\
    }                                                                                       \\
    /* Two output rows of 3x3 windows, stride 2, at once: the first from rows r0, r1, r2,   \\
       the second from r2, r3, r4 (all inside the plane; b0 the flat index of r0[c0]), in   \\
       the vector blocks of pk_pick_3x3 (so only where it takes them: PK_VEC8, and left or  \\
       hi - lo >= the block length), a block of each row in turn. A window's sum and        \\
       running sums are chains of dependent additions (about 50 cycles a block); a row of   \\
       few blocks at a time left the core waiting on them, two rows' blocks overlap. */     \\
    PKS_LOOP void pk_pick_3x3_x2_##SUFFIX(const T *PKS_R r0, const T *PKS_R r1,             \\
                                          const T *PKS_R r2, const T *PKS_R r3,             \\
                                          const T *PKS_R r4, Py_ssize_t c0, Py_ssize_t lo,  \\
                                          Py_ssize_t hi, const T *PKS_R u0,                 \\
                                          const T *PKS_R u1, T *PKS_R val0,                 \\
                                          int64_t *PKS_R idx0, T *PKS_R val1,               \\
                                          int64_t *PKS_R idx1, int64_t b0, int32_t w,       \\
                                          int left) {                                       \\
        const Py_ssize_t NL = pk_vl_##VS;  /* windows per vector block */                   \\
        const int64_t b1 = b0 + 2 * (int64_t)w;                                             \\
        Py_ssize_t o = lo;                                                                  \\
        if (left) {                                                                         \\
            pk_pick_3s2_v8_##SUFFIX(r0, r1, r2, 0, 0, u0, val0, idx0, b0, w, 1, 0);         \\
            pk_pick_3s2_v8_##SUFFIX(r2, r3, r4, 0, 0, u1, val1, idx1, b1, w, 1, 0);         \\
            o = NL;                                                                         \\
        }                                                                                   \\
        for (; o + NL <= hi; o += NL) {                                                     \\
            pk_pick_3s2_v8_##SUFFIX(r0, r1, r2, 2 * o + c0, o, u0, val0, idx0, b0 + 2 * o,  \\
                                    w, 0, 0);                                               \\
            pk_pick_3s2_v8_##SUFFIX(r2, r3, r4, 2 * o + c0, o, u1, val1, idx1, b1 + 2 * o,  \\
                                    w, 0, 0);                                               \\
        }                                                                                   \\
        if (o < hi) {  /* the last block overlaps the one before */                         \\
            const Py_ssize_t q = hi - NL;                                                   \\
            pk_pick_3s2_v8_##SUFFIX(r0, r1, r2, 2 * q + c0, q, u0, val0, idx0, b0 + 2 * q,  \\
                                    w, 0, 0);                                               \\
            pk_pick_3s2_v8_##SUFFIX(r2, r3, r4, 2 * q + c0, q, u1, val1, idx1, b1 + 2 * q,  \\
                                    w, 0, 0);                                               \\
        }                                                                                   \\
    }

    /* Inference, one tap over one output row, in double for either dtype:
       S[o] += v, Q[o] += v * v with v = row[o*s + off]; then out[o] = Q[o] / S[o], or 0
       when S[o] == 0 (the quotient is taken, then selected). */
    #define PK_DEFINE_SUMSQ_TAP(T, SUFFIX)                                                  \\
    static inline void pk_sumsq_tap_s_##SUFFIX(Py_ssize_t s, const T *PKS_R r, Py_ssize_t n,\\
                                               double *PKS_R S, double *PKS_R Q) {          \\
        for (Py_ssize_t o = 0; o < n; ++o) {                                                \\
            const double v = (double)r[o * s];                                              \\
            S[o] = S[o] + v;                                                                \\
            Q[o] = Q[o] + v * v;                                                            \\
        }                                                                                   \\
    }                                                                                       \\
    PKS_LOOP void pk_sumsq_tap_##SUFFIX(const T *PKS_R row, Py_ssize_t s, Py_ssize_t off,   \\
                                        Py_ssize_t lo, Py_ssize_t hi, double *PKS_R S,      \\
                                        double *PKS_R Q) {                                  \\
        if (hi <= lo) return;                                                               \\
        PK_TAP_DISPATCH(pk_sumsq_tap_s_##SUFFIX, row + lo * s + off, hi - lo, S + lo, Q + lo)\\
    }                                                                                       \\
    PKS_LOOP void pk_ratio_row_##SUFFIX(const double *PKS_R S, const double *PKS_R Q,       \\
                                        Py_ssize_t n, T *PKS_R out) {                       \\
        for (Py_ssize_t o = 0; o < n; ++o) {                                                \\
            const double sv = S[o];                                                         \\
            const double y = Q[o] / (sv > 0 ? sv : 1.0);                                    \\
            out[o] = (T)(sv > 0 ? y : 0.0);                                                 \\
        }                                                                                   \\
    }
    PK_DEFINE_PICK_TAP(float, f)
    PK_DEFINE_PICK_TAP(double, d)
    #if PK_VEC8
    /* Windows o .. o + L-1 (u, val and idx indexed by window; L = 8 floats or 4 doubles,
       see PK_VEC_PRIMS), window o + i starting at
       column c + 2i of rows r0..r2, its taps split in registers; the same running sums,
       threshold and selects as pk_pick_3x3_k, lane by lane; b = the flat index of r0[c]. */
    #define PK_PICK_3X3_VEC(T, SUFFIX, VS, VT, VM, KV, STIDX)                               \\
    PK_BODY void pk_pick_3s2_v8_##SUFFIX(const T *PKS_R r0, const T *PKS_R r1,             \\
                                         const T *PKS_R r2, Py_ssize_t c, Py_ssize_t o,     \\
                                         const T *PKS_R u, T *PKS_R val,                    \\
                                         int64_t *PKS_R idx, int64_t b, int32_t w,          \\
                                         int left, int top) {                               \\
        VT a[9];                                                                            \\
        const T *PKS_R rows[3] = {r0 + c, r1 + c, r2 + c};                                  \\
        for (int j = 0; j < 3; ++j) {                                                       \\
            /* left: windows 0..L-1 with one column of left padding, window 0's missing    \\
               column -0.0 (never taken, every running sum unchanged: x + -0.0 == x) */     \\
            VT *PKS_R t = a + 3 * j;                                                        \\
            if (left) pk_taps3_left_##VS(rows[j], 0, t, t + 1, t + 2);                      \\
            else pk_taps3_##VS(rows[j], t, t + 1, t + 2);                                   \\
        }                                                                                   \\
        /* S, then the running sums again while selecting: the same additions in the same  \\
           order give the same sums, and fewer vectors are live than with all nine kept. */ \\
        VT S = a[0];                                                                        \\
        for (int j = 1; j < 9; ++j) S = S + a[j];                                           \\
        const VT uv = pk_ld8_##VS(u + o), zero = {0};                                       \\
        const VT t = pk_vsel_##VS(uv > zero, uv * S, zero);                                 \\
        VT v = pk_vsel_##VS(a[0] > zero, a[0], zero), c_ = a[0];                            \\
        KV k = {0};                                                                         \\
        const int32_t off[9] = {0, 1, 2, w, w + 1, w + 2, 2 * w, 2 * w + 1, 2 * w + 2};     \\
        for (int j = 1; j < 9; ++j) {                                                       \\
            const VM m = (a[j] > zero) & (c_ <= t);                                         \\
            v = pk_vsel_##VS(m, a[j], v);                                                   \\
            const KV m32 = (KV)m;                                                           \\
            k = (m32 & off[j]) | (~m32 & k);                                                \\
            c_ = c_ + a[j];                                                                 \\
        }                                                                                   \\
        __builtin_memcpy(val + o, &v, sizeof v);                                            \\
        if (left || top) {                                                                  \\
            /* a window that took nothing reports its first input position: column 0       \\
               for window 0 of a left-padded row, the next row down in the top one (tap    \\
               0, the padding, is the only one that can leave k at 0 there) */             \\
            const int32_t dw = top ? w : 0;                                                 \\
            KV fix = (KV){0} + dw;                                                          \\
            fix[0] += left ? 1 : 0;                                                         \\
            k = k + ((k == 0) & fix);                                                       \\
        }                                                                                   \\
        KV lane2;                                                                           \\
        for (int i = 0; i < pk_vl_##VS; ++i) lane2[i] = 2 * i;                              \\
        STIDX(idx + o, k + lane2, b);                                                       \\
    }
    PK_DEFINE_PICK_3X3(float, f, int32_t, f, pk_f8, pk_i8, pk_i8, pk_store_idx8)
    PK_DEFINE_PICK_3X3(double, d, double, d4, pk_d4, pk_l4, pk_l4, pk_store_idx4)
    #else
    #define PK_PICK_3X3_VEC(T, SUFFIX, VS, VT, VM, KV, STIDX)                               \\
    static inline void pk_pick_3s2_v8_##SUFFIX(const T *r0, const T *r1, const T *r2,      \\
                                               Py_ssize_t c, Py_ssize_t o, const T *u,      \\
                                               T *val, int64_t *idx, int64_t b, int32_t w,  \\
                                               int left, int top) {                         \\
        (void)r0; (void)r1; (void)r2; (void)c; (void)o; (void)u; (void)val; (void)idx;      \\
        (void)b; (void)w; (void)left; (void)top;  /* not called: PK_VEC8 is 0 */            \\
    }
    PK_DEFINE_PICK_3X3(float, f, int32_t, f, void, void, void, void)
    PK_DEFINE_PICK_3X3(double, d, double, d4, void, void, void, void)
    #endif
    PK_DEFINE_SUMSQ_TAP(float, f)
    PK_DEFINE_SUMSQ_TAP(double, d)
    #if PK_VEC8
    /* Windows o .. o + L-1 of pk_pick_2x2_k as one vector block, the columns split in
       registers (pk_even8, pk_odd8): the same running sums, threshold, selects and
       validity test (pk_pick_2x2_k's CHECK), lane by lane, for either dtype; the test's
       lanes are and-ed into *ok (reduced once per row by pk_pick_2x2_vrow: per block, gcc
       extracts the lanes one by one). */
    #define PK_PICK_2X2_VEC(T, SUFFIX, TMAX, VS, VT, VM, STIDX)                             \\
    PK_BODY void pk_pick_2x2_v_##SUFFIX(const T *PKS_R r0, const T *PKS_R r1, Py_ssize_t o, \\
                                        const T *PKS_R u, T *PKS_R val, int64_t *PKS_R idx, \\
                                        int64_t b0, int32_t w, VM *PKS_R ok) {              \\
        enum { L = pk_vl_##VS };                                                            \\
        const VT p0 = pk_ld8_##VS(r0 + 2 * o), p1 = pk_ld8_##VS(r0 + 2 * o + L);            \\
        const VT q0 = pk_ld8_##VS(r1 + 2 * o), q1 = pk_ld8_##VS(r1 + 2 * o + L);            \\
        const VT a = pk_even8_##VS(p0, p1), b = pk_odd8_##VS(p0, p1);                       \\
        const VT c = pk_even8_##VS(q0, q1), d = pk_odd8_##VS(q0, q1);                       \\
        const VT s1 = a, s2 = s1 + b, s3 = s2 + c, S = s3 + d, zero = {0};                  \\
        const VT m1 = pk_vsel_##VS(a < b, a, b), m2 = pk_vsel_##VS(c < d, c, d);            \\
        const VT x1 = pk_vsel_##VS(a > b, a, b), x2 = pk_vsel_##VS(c > d, c, d);            \\
        const VT mn = pk_vsel_##VS(m1 < m2, m1, m2), mx = pk_vsel_##VS(x1 > x2, x1, x2);    \\
        *ok &= (mn >= zero) & (mx <= (VT){0} + TMAX) & (S == S);                            \\
        const VT uv = pk_ld8_##VS(u + o);                                                   \\
        const VT t = pk_vsel_##VS(uv > zero, uv * S, zero);                                 \\
        VT v = pk_vsel_##VS(a > zero, a, zero);                                             \\
        VM k = {0};                                                                         \\
        VM m = (b > zero) & (s1 <= t);                                                      \\
        v = pk_vsel_##VS(m, b, v);  k = (m & 1) | (~m & k);                                 \\
        m = (c > zero) & (s2 <= t);                                                         \\
        v = pk_vsel_##VS(m, c, v);  k = (m & w) | (~m & k);                                 \\
        m = (d > zero) & (s3 <= t);                                                         \\
        v = pk_vsel_##VS(m, d, v);  k = (m & (w + 1)) | (~m & k);                           \\
        __builtin_memcpy(val + o, &v, sizeof v);                                            \\
        VM lane2;                                                                           \\
        for (int i = 0; i < L; ++i) lane2[i] = 2 * i;                                       \\
        STIDX(idx + o, k + lane2, b0 + 2 * o);                                              \\
    }                                                                                       \\
    /* A row of n >= L windows in blocks of L, the last one overlapping the one before;     \\
       1 when every value read was valid. */                                               \\
    PK_BODY int pk_pick_2x2_vrow_##SUFFIX(const T *PKS_R r0, const T *PKS_R r1,             \\
                                          Py_ssize_t n, const T *PKS_R u, T *PKS_R val,     \\
                                          int64_t *PKS_R idx, int64_t b0, int32_t w) {      \\
        enum { L = pk_vl_##VS };                                                            \\
        VM ok = (VM){0} - 1;                                                                \\
        Py_ssize_t o = 0;                                                                   \\
        for (; o + L <= n; o += L)                                                          \\
            pk_pick_2x2_v_##SUFFIX(r0, r1, o, u, val, idx, b0, w, &ok);                     \\
        if (o < n) pk_pick_2x2_v_##SUFFIX(r0, r1, n - L, u, val, idx, b0, w, &ok);          \\
        int all = 1;                                                                        \\
        for (int l = 0; l < L; ++l) all &= ok[l] != 0;                                      \\
        return all;                                                                         \\
    }
    PK_DEFINE_PICK_2X2(float, f, FLT_MAX, int32_t, 1, f, pk_f8, pk_i8, pk_store_idx8)
    PK_DEFINE_PICK_2X2(double, d, DBL_MAX, double, 0, d4, pk_d4, pk_l4, pk_store_idx4)
    #else
    #define PK_PICK_2X2_VEC(T, SUFFIX, TMAX, VS, VT, VM, STIDX)                             \\
    static inline int pk_pick_2x2_vrow_##SUFFIX(const T *r0, const T *r1, Py_ssize_t n,    \\
                                                const T *u, T *val, int64_t *idx,           \\
                                                int64_t b0, int32_t w) {                    \\
        (void)r0; (void)r1; (void)n; (void)u; (void)val; (void)idx; (void)b0; (void)w;      \\
        return 1;  /* not called: PK_VEC8 is 0 */                                           \\
    }
    PK_DEFINE_PICK_2X2(float, f, FLT_MAX, int32_t, 1, f, void, void, void)
    PK_DEFINE_PICK_2X2(double, d, DBL_MAX, double, 0, d4, void, void, void)
    #endif
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
    void pk_pick_3x3_f(const float *r0, const float *r1, const float *r2, Py_ssize_t s,
                       Py_ssize_t c0, Py_ssize_t lo, Py_ssize_t hi, const float *u, float *val,
                       int64_t *idx, int64_t b0, int32_t w, int left,
                       int top) noexcept nogil
    void pk_pick_3x3_d(const double *r0, const double *r1, const double *r2, Py_ssize_t s,
                       Py_ssize_t c0, Py_ssize_t lo, Py_ssize_t hi, const double *u,
                       double *val, int64_t *idx, int64_t b0, int32_t w, int left,
                       int top) noexcept nogil
    void pk_pick_3x3_x2_f(const float *r0, const float *r1, const float *r2, const float *r3,
                          const float *r4, Py_ssize_t c0, Py_ssize_t lo, Py_ssize_t hi,
                          const float *u0, const float *u1, float *val0, int64_t *idx0,
                          float *val1, int64_t *idx1, int64_t b0, int32_t w,
                          int left) noexcept nogil
    void pk_pick_3x3_x2_d(const double *r0, const double *r1, const double *r2,
                          const double *r3, const double *r4, Py_ssize_t c0, Py_ssize_t lo,
                          Py_ssize_t hi, const double *u0, const double *u1, double *val0,
                          int64_t *idx0, double *val1, int64_t *idx1, int64_t b0, int32_t w,
                          int left) noexcept nogil
    int pk_pick_2x2_f(const float *r0, const float *r1, Py_ssize_t n, const float *u,
                      float *val, int64_t *idx, int64_t b0, int32_t w) noexcept nogil
    int pk_pick_2x2_d(const double *r0, const double *r1, Py_ssize_t n, const double *u,
                      double *val, int64_t *idx, int64_t b0, int32_t w) noexcept nogil
