# C helpers for the whole-plane and adaptive-window reductions (global, adaptive pooling).
#
# Written in C for the same reason as _pool_helpers.pxd: gcc vectorises these loops only when
# they are plain C with branch-free selects (and -fno-trapping-math); the argmax reduction is
# written with GNU vector extensions because gcc does not vectorise it by itself, with a scalar
# fallback for compilers without them. The whole-run helpers stay out-of-line functions (see
# PK_NOINLINE); the sums get AVX2 copies (gcc `target_clones`), the argmax is portable SSE2
# (an AVX2 copy measured no faster). One copy per dtype: `_f` for float, `_d` for double.
#
# Summation. `pk_sum_*` adds a run of values with PK_LANES independent double accumulators
# (lane l takes elements l, l + 16, l + 32, ...), folds the lanes pairwise (8 + 8, 4 + 4, ...)
# and adds the tail (the last n % 16 elements) in order. The order depends only on n, never on
# threads or alignment, so results are reproducible bit for bit. The lanes are what lets the
# loop run at memory speed: one double accumulator is bound by the latency of an add, slower
# than memory (see benchmarks/bench_global.py); so are scalar float->double conversions, which
# is why the float32 loop is written with vector extensions. Accumulating float32 in double
# keeps the relative error of a 224 x 224 plane's sum near 1e-16 (plus one float32 rounding
# at the end).
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
    #include <string.h>
    #include <math.h>

    #define PK_LANES 16

    #if defined(__GNUC__)
    #define PK_PREFETCH(p) __builtin_prefetch(p)
    #else
    #define PK_PREFETCH(p) ((void) 0)
    #endif
    /* Not every module that cimports this file uses every helper. PK_NOINLINE keeps the
       summation loop a function of its own: inlined into the OpenMP region, gcc 12
       vectorises it with scalar conversions (cvtss2sd + unpcklpd), 30% slower. */
    #if defined(__GNUC__)
    #define PK_MAYBE_UNUSED __attribute__((unused))
    #define PK_NOINLINE __attribute__((noinline))
    #else
    #define PK_MAYBE_UNUSED
    #define PK_NOINLINE
    #endif

    /* The double lanes over [i, n) then the in-order tail; returns the folded sum. */
    #define PK_DEFINE_LANE_SUM(T, SUFFIX)                                                   \\
    static inline double pk_lane_sum_##SUFFIX(const T *x, Py_ssize_t i, Py_ssize_t n,       \\
                                              double *acc) {                                \\
        for (; i + PK_LANES <= n; i += PK_LANES) {                                          \\
            for (int l = 0; l < PK_LANES; ++l) acc[l] += (double) x[i + l];                 \\
        }                                                                                   \\
        for (int w = PK_LANES / 2; w >= 1; w /= 2)                                          \\
            for (int l = 0; l < w; ++l) acc[l] += acc[l + w];                               \\
        double s = acc[0];                                                                  \\
        for (; i < n; ++i) s += (double) x[i];                                              \\
        return s;                                                                           \\
    }
    PK_DEFINE_LANE_SUM(float, f)
    PK_DEFINE_LANE_SUM(double, d)

    /* float32: the same 16 double lanes, written with GNU vector extensions so that the
       conversions are packed (cvtps2pd; gcc's own vectoriser leaves them scalar, one
       cvtss2sd per value, which is slower than memory). Same order, same result as the
       plain loop of pk_lane_sum_f. On x86-64, CPUs with AVX2 take a copy written with
       intrinsics (one 4-wide conversion per 4 values; gcc's generic tuning splits the vector
       extension's into 2-wide halves), chosen once when the module loads. The AVX2 copy
       takes two steps per iteration and prefetches its two cache lines 1 KiB ahead into L2
       (T1): with a conversion per 4 values the loop keeps fewer lines in flight than a
       float32 sum, and the prefetch makes up for it (7-12% faster on a 103 MB input than
       none, measured beside 4 KiB and T0 hints, which were slower); the baseline copy
       prefetches 4 KiB ahead. The float64 sum does not prefetch: its loop is as light as
       a copy's and the hardware prefetcher keeps up (a 4 KiB prefetch cost 5-15%). */
    #if defined(__GNUC__) && (defined(__clang__) || __GNUC__ >= 9)
    typedef float pk_v4f __attribute__((vector_size(16)));
    typedef double pk_v4d __attribute__((vector_size(32)));
    static PK_NOINLINE PK_MAYBE_UNUSED double pk_sum_f_vec(const float *x, Py_ssize_t n) {
        pk_v4d a0 = {0, 0, 0, 0}, a1 = a0, a2 = a0, a3 = a0;
        pk_v4f f0, f1, f2, f3;
        Py_ssize_t i = 0;
        for (; i + PK_LANES <= n; i += PK_LANES) {
            PK_PREFETCH((const char *) (x + i) + 4096);
            memcpy(&f0, x + i, 16); memcpy(&f1, x + i + 4, 16);
            memcpy(&f2, x + i + 8, 16); memcpy(&f3, x + i + 12, 16);
            a0 += __builtin_convertvector(f0, pk_v4d);
            a1 += __builtin_convertvector(f1, pk_v4d);
            a2 += __builtin_convertvector(f2, pk_v4d);
            a3 += __builtin_convertvector(f3, pk_v4d);
        }
        double acc[PK_LANES];
        memcpy(acc, &a0, 32); memcpy(acc + 4, &a1, 32);
        memcpy(acc + 8, &a2, 32); memcpy(acc + 12, &a3, 32);
        return pk_lane_sum_f(x, i, n, acc);
    }
    #if defined(__x86_64__) && !defined(POOLKIT_NO_MULTIVERSION)
    #include <immintrin.h>
    __attribute__((target("avx2"))) static PK_NOINLINE PK_MAYBE_UNUSED double
    pk_sum_f_avx2(const float *x, Py_ssize_t n) {
        __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
        Py_ssize_t i = 0;
        /* two steps per iteration: more loads in flight (same lanes, same order) */
        for (; i + 2 * PK_LANES <= n; i += 2 * PK_LANES) {
            _mm_prefetch((const char *) (x + i) + 1024, _MM_HINT_T1);
            _mm_prefetch((const char *) (x + i) + 1024 + 64, _MM_HINT_T1);
            const __m128 f0 = _mm_loadu_ps(x + i), f1 = _mm_loadu_ps(x + i + 4);
            const __m128 f2 = _mm_loadu_ps(x + i + 8), f3 = _mm_loadu_ps(x + i + 12);
            const __m128 f4 = _mm_loadu_ps(x + i + 16), f5 = _mm_loadu_ps(x + i + 20);
            const __m128 f6 = _mm_loadu_ps(x + i + 24), f7 = _mm_loadu_ps(x + i + 28);
            a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(f0));
            a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(f1));
            a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(f2));
            a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(f3));
            a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(f4));
            a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(f5));
            a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(f6));
            a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(f7));
        }
        for (; i + PK_LANES <= n; i += PK_LANES) {
            a0 = _mm256_add_pd(a0, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
            a1 = _mm256_add_pd(a1, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)));
            a2 = _mm256_add_pd(a2, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 8)));
            a3 = _mm256_add_pd(a3, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 12)));
        }
        /* The pairwise fold of pk_lane_sum_f (lanes l and l + 8, then l + 4, l + 2, l + 1),
           in registers: the same additions of the same pairs, so the same result; it saves
           a store and sixteen reloads per call, which shows on small planes. */
        const __m256d c = _mm256_add_pd(_mm256_add_pd(a0, a2), _mm256_add_pd(a1, a3));
        const __m128d d = _mm_add_pd(_mm256_castpd256_pd128(c), _mm256_extractf128_pd(c, 1));
        double s = _mm_cvtsd_f64(d) + _mm_cvtsd_f64(_mm_unpackhi_pd(d, d));
        for (; i < n; ++i) s += (double) x[i];
        return s;
    }
    static int pk_use_avx2 = 0;
    __attribute__((constructor)) static void pk_pick_sum(void) {
        __builtin_cpu_init();
        pk_use_avx2 = __builtin_cpu_supports("avx2") != 0;
    }
    static PK_MAYBE_UNUSED double pk_sum_f(const float *x, Py_ssize_t n) {
        return pk_use_avx2 ? pk_sum_f_avx2(x, n) : pk_sum_f_vec(x, n);
    }
    #else
    #define pk_sum_f pk_sum_f_vec
    #endif
    #else
    static PK_NOINLINE PK_MAYBE_UNUSED double pk_sum_f(const float *x, Py_ssize_t n) {
        double acc[PK_LANES];
        for (int l = 0; l < PK_LANES; ++l) acc[l] = 0.0;
        return pk_lane_sum_f(x, 0, n, acc);
    }
    #endif
    /* float64: PK_LANES double lanes (lane l takes elements l, l + 16, ...), folded
       pairwise, then the in-order tail. On x86-64, CPUs with AVX2 take a copy written with
       intrinsics, as the float32 sum: two steps per iteration and the fold in registers
       (the same additions in the same order, so the same result). */
    static PK_NOINLINE PK_MAYBE_UNUSED double pk_sum_d_gen(const double *x, Py_ssize_t n) {
        double acc[PK_LANES];
        for (int l = 0; l < PK_LANES; ++l) acc[l] = 0.0;
        return pk_lane_sum_d(x, 0, n, acc);
    }
    #if defined(__GNUC__) && (defined(__clang__) || __GNUC__ >= 9) && defined(__x86_64__) \
        && !defined(POOLKIT_NO_MULTIVERSION)
    __attribute__((target("avx2"))) static PK_NOINLINE PK_MAYBE_UNUSED double
    pk_sum_d_avx2(const double *x, Py_ssize_t n) {
        __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
        Py_ssize_t i = 0;
        for (; i + 2 * PK_LANES <= n; i += 2 * PK_LANES) {
            a0 = _mm256_add_pd(a0, _mm256_loadu_pd(x + i));
            a1 = _mm256_add_pd(a1, _mm256_loadu_pd(x + i + 4));
            a2 = _mm256_add_pd(a2, _mm256_loadu_pd(x + i + 8));
            a3 = _mm256_add_pd(a3, _mm256_loadu_pd(x + i + 12));
            a0 = _mm256_add_pd(a0, _mm256_loadu_pd(x + i + 16));
            a1 = _mm256_add_pd(a1, _mm256_loadu_pd(x + i + 20));
            a2 = _mm256_add_pd(a2, _mm256_loadu_pd(x + i + 24));
            a3 = _mm256_add_pd(a3, _mm256_loadu_pd(x + i + 28));
        }
        for (; i + PK_LANES <= n; i += PK_LANES) {
            a0 = _mm256_add_pd(a0, _mm256_loadu_pd(x + i));
            a1 = _mm256_add_pd(a1, _mm256_loadu_pd(x + i + 4));
            a2 = _mm256_add_pd(a2, _mm256_loadu_pd(x + i + 8));
            a3 = _mm256_add_pd(a3, _mm256_loadu_pd(x + i + 12));
        }
        const __m256d c = _mm256_add_pd(_mm256_add_pd(a0, a2), _mm256_add_pd(a1, a3));
        const __m128d d = _mm_add_pd(_mm256_castpd256_pd128(c), _mm256_extractf128_pd(c, 1));
        double s = _mm_cvtsd_f64(d) + _mm_cvtsd_f64(_mm_unpackhi_pd(d, d));
        for (; i < n; ++i) s += x[i];
        return s;
    }
    static PK_MAYBE_UNUSED double pk_sum_d(const double *x, Py_ssize_t n) {
        return pk_use_avx2 ? pk_sum_d_avx2(x, n) : pk_sum_d_gen(x, n);
    }
    #else
    #define pk_sum_d pk_sum_d_gen
    #endif

    #if defined(__GNUC__)
    /* GNU vector extensions (gcc and clang; SSE2 on x86-64, NEON on arm64): gcc does not
       vectorise a compare-and-select reduction by itself. 16-byte vectors, four per step. */
    typedef float pk_vf __attribute__((vector_size(16)));
    typedef int32_t pk_mf __attribute__((vector_size(16)));
    typedef double pk_vd __attribute__((vector_size(16)));
    typedef int64_t pk_md __attribute__((vector_size(16)));
    #define PK_SEL(g, a, b, VT, MT) ((VT) (((g) & (MT) (a)) | (~(g) & (MT) (b))))

    #define PK_DEFINE_ARGMAX(T, SUFFIX, VT, MT)                                             \\
    static PK_NOINLINE PK_MAYBE_UNUSED Py_ssize_t pk_argmax_##SUFFIX(const T *x, Py_ssize_t n) {               \\
        enum { VL = 16 / sizeof(T), STEP = 4 * VL };                                        \\
        VT m0, m1, m2, m3, v0, v1, v2, v3, vb;                                              \\
        MT nan, g0, g1, g2, g3;                                                             \\
        for (int k = 0; k < VL; ++k) {                                                      \\
            m0[k] = m1[k] = m2[k] = m3[k] = -INFINITY;                                      \\
            nan[k] = 0;                                                                     \\
        }                                                                                   \\
        /* Pass 1: lane-wise max of the non-NaN values, and whether a NaN occurs. */        \\
        Py_ssize_t i = 0;                                                                   \\
        for (; i + STEP <= n; i += STEP) {                                                  \\
            PK_PREFETCH((const char *) (x + i) + 4096);                                     \\
            memcpy(&v0, x + i, 16); memcpy(&v1, x + i + VL, 16);                            \\
            memcpy(&v2, x + i + 2 * VL, 16); memcpy(&v3, x + i + 3 * VL, 16);               \\
            g0 = v0 > m0; g1 = v1 > m1; g2 = v2 > m2; g3 = v3 > m3;                         \\
            m0 = PK_SEL(g0, v0, m0, VT, MT); m1 = PK_SEL(g1, v1, m1, VT, MT);               \\
            m2 = PK_SEL(g2, v2, m2, VT, MT); m3 = PK_SEL(g3, v3, m3, VT, MT);               \\
            nan |= (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3);                       \\
        }                                                                                   \\
        T best = -INFINITY;                                                                 \\
        int any_nan = 0;                                                                    \\
        for (int k = 0; k < VL; ++k) {                                                      \\
            any_nan |= nan[k] != 0;                                                         \\
            best = m0[k] > best ? m0[k] : best; best = m1[k] > best ? m1[k] : best;         \\
            best = m2[k] > best ? m2[k] : best; best = m3[k] > best ? m3[k] : best;         \\
        }                                                                                   \\
        for (; i < n; ++i) {                                                                \\
            const T v = x[i];                                                               \\
            any_nan |= v != v;                                                              \\
            best = v > best ? v : best;                                                     \\
        }                                                                                   \\
        /* Pass 2: the first position holding the maximum (every value is <= best, so ==  \\
           finds the first tie; a run of -inf finds position 0), or the first NaN. */      \\
        Py_ssize_t b = 0;                                                                   \\
        for (int k = 0; k < VL; ++k) vb[k] = best;                                          \\
        for (; b + STEP <= n; b += STEP) {                                                  \\
            memcpy(&v0, x + b, 16); memcpy(&v1, x + b + VL, 16);                            \\
            memcpy(&v2, x + b + 2 * VL, 16); memcpy(&v3, x + b + 3 * VL, 16);               \\
            if (any_nan) g0 = (v0 != v0) | (v1 != v1) | (v2 != v2) | (v3 != v3);            \\
            else g0 = (v0 == vb) | (v1 == vb) | (v2 == vb) | (v3 == vb);                    \\
            int hit = 0;                                                                    \\
            for (int k = 0; k < VL; ++k) hit |= g0[k] != 0;                                 \\
            if (hit) break;                                                                 \\
        }                                                                                   \\
        if (any_nan) { for (; b < n; ++b) if (x[b] != x[b]) return b; }                     \\
        else { for (; b < n; ++b) if (x[b] == best) return b; }                             \\
        return 0; /* not reached for n >= 1 */                                              \\
    }
    PK_DEFINE_ARGMAX(float, f, pk_vf, pk_mf)
    PK_DEFINE_ARGMAX(double, d, pk_vd, pk_md)

    #else  /* no vector extensions (MSVC): one plain pass with the max kernels' rule */
    #define PK_DEFINE_ARGMAX(T, SUFFIX)                                                     \\
    static PK_MAYBE_UNUSED Py_ssize_t pk_argmax_##SUFFIX(const T *x, Py_ssize_t n) {                         \\
        T cur = x[0];                                                                       \\
        Py_ssize_t at = 0;                                                                  \\
        for (Py_ssize_t i = 1; i < n; ++i) {                                                \\
            const T v = x[i];                                                               \\
            if ((v > cur) || (v != v && cur == cur)) { cur = v; at = i; }                   \\
        }                                                                                   \\
        return at;                                                                          \\
    }
    PK_DEFINE_ARGMAX(float, f)
    PK_DEFINE_ARGMAX(double, d)
    #endif

    /* Column sums: acc[i] += row[i] in double (vectorised across the row). */
    #define PK_DEFINE_ACC_ROW(T, SUFFIX)                                                    \\
    static inline void pk_acc_row_##SUFFIX(double *__restrict acc,                          \\
                                          const T *__restrict row, Py_ssize_t n) {          \\
        for (Py_ssize_t i = 0; i < n; ++i) acc[i] += (double) row[i];                       \\
    }
    PK_DEFINE_ACC_ROW(float, f)
    PK_DEFINE_ACC_ROW(double, d)

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
    void pk_acc_row_f(double *acc, const float *row, Py_ssize_t n) noexcept nogil
    void pk_acc_row_d(double *acc, const double *row, Py_ssize_t n) noexcept nogil
    void pk_row_max_f(const float *row, Py_ssize_t lo, Py_ssize_t hi, float *m,
                      int64_t *idx, int64_t base) noexcept nogil
    void pk_row_max_d(const double *row, Py_ssize_t lo, Py_ssize_t hi, double *m,
                      int64_t *idx, int64_t base) noexcept nogil
    Py_ssize_t pk_adaptive_start(Py_ssize_t o, Py_ssize_t L, Py_ssize_t n_out) noexcept nogil
    Py_ssize_t pk_adaptive_end(Py_ssize_t o, Py_ssize_t L, Py_ssize_t n_out) noexcept nogil
