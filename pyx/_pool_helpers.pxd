# Tiny C loops shared by the pooling kernels.
#
# They are written in C, not Cython, because Cython turns its ternaries into if/else blocks
# that gcc does not if-convert: these loops compile to branch-free compare-and-select code the
# compiler can vectorise (with -fno-trapping-math; see shared/PERF_NOTES.md). One copy per
# dtype: `_f` for float, `_d` for double. Each is a single pass over one output row.
#
# Window arithmetic helpers are here too, so every kernel computes "which outputs does this tap
# reach" the same way.

from libc.stdint cimport int32_t, int64_t, uintptr_t
from _typedefs cimport floating

cdef extern from *:
    """
    #include <stdint.h>
    #include <stddef.h>

    /* Arguments of one helper never alias: telling the compiler so lets it vectorise. */
    #define PK_R __restrict

    /* Row-level loops are compiled twice on x86-64 Linux with gcc, for AVX2 and for the
       baseline, and the loader picks one per CPU (function multiversioning through ifunc):
       wheels stay portable while AVX2 machines get twice the vector width. */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \\
        && !defined(POOLKIT_NO_MULTIVERSION)
    #define PK_ROW static __attribute__((target_clones("avx2", "default"), unused))
    #else
    #define PK_ROW static inline
    #endif

    /* A NaN wins over a number, and nothing replaces a NaN: the FIRST NaN of a window stays.
       Written with || and && (not | and &) because gcc then if-converts and vectorises it. */
    #define PK_TAKES(v, cur) (((v) > (cur)) || ((v) != (v) && (cur) == (cur)))

    /* Prefetch [p, p + nbytes) into the caches, a line at a time. The plane kernels call it
       for the input rows a few output rows ahead: on their own, the hardware prefetchers
       left the compute and the memory reads of a row to take turns (a float64 3x3 max on
       112x112 planes went from 21.9 to 13.6 ms with 2 threads). A prefetch never faults,
       so the span may run past the array. */
    static inline void pk_prefetch_span(const void *p, Py_ssize_t nbytes) {
    #if defined(__GNUC__)
        const char *c = (const char *)p;
        for (Py_ssize_t i = 0; i < nbytes; i += 64) __builtin_prefetch(c + i, 0, 3);
    #else
        (void)p; (void)nbytes;
    #endif
    }
    /* 32 bytes from v to p (16-byte aligned) with streaming stores, which write to memory
       without first reading the line in (see _stream_helpers.pxd); plain stores where
       there are none. */
    #if defined(__SSE2__)
    #include <emmintrin.h>
    static inline void pk_nt_store32(void *p, const void *v) {
        __m128i a, b;
        __builtin_memcpy(&a, v, 16);
        __builtin_memcpy(&b, (const char *)v + 16, 16);
        _mm_stream_si128((__m128i *)p, a);
        _mm_stream_si128((__m128i *)p + 1, b);
    }
    #else
    #include <string.h>
    static inline void pk_nt_store32(void *p, const void *v) { memcpy(p, v, 32); }
    #endif
    /* The prefetch the plane kernels make per output row: the rows an output row 4 rows
       ahead reads beyond those of the row 3 ahead, [end + 3 sh, end + 4 sh), where end is
       the row after this output row's window (its first row plus the window's height) and
       sh the row stride; row_bytes apart from base. Past the plane: the next plane's. */
    static inline void pk_prefetch_ahead(const void *base, Py_ssize_t end, Py_ssize_t sh,
                                         Py_ssize_t row_bytes) {
        pk_prefetch_span((const char *)base + (end + 3 * sh) * row_bytes, sh * row_bytes);
    }

    /* Runs CALL, a loop over outputs [B_LO, B_HI), over [lo, hi) as two calls when PK_BLOCK
       does not divide the range: the largest multiple of PK_BLOCK outputs, then the last
       PK_BLOCK outputs again, overlapping the first call. Only for the fused loops, which
       compute each output from the inputs alone, so that an output written twice gets the
       same value twice. Every output then goes through the compiler's vector loop (PK_BLOCK
       is a multiple of every vector width used) instead of its scalar remainder loop: on
       rows of 14 or 28 outputs the branchy remainder cost more than the vector part.
       Ranges shorter than PK_BLOCK run as one call. */
    #define PK_BLOCK 8
    /* The loop bodies PK_IN_BLOCKS calls, inlined into each target clone of their caller
       (left to itself, gcc may outline one -- a single copy, compiled for the baseline
       target, that the AVX2 clone then calls). */
    #if defined(__GNUC__)
    #define PK_BODY static inline __attribute__((always_inline))
    #else
    #define PK_BODY static inline
    #endif

    /* The nine taps of 3x3 windows as unit-stride arrays. For the windows [lo, hi) of rows
       r0, r1, r2 (window o starts at column o*s + c0, s = 1 or 2) this runs CALL once per
       chunk of windows [O0, O0 + N) with Q0..Q8 pointing at the chunk's taps: window O0 + i
       reads Q0[i], Q1[i], Q2[i] (row r0), Q3..Q5 (r1), Q6..Q8 (r2). With s == 1 the taps are
       the rows themselves; with s == 2 each chunk of up to PK_CHUNK windows is first split
       into even and odd columns (E[i] = r[2i], D[i] = r[2i + 1]: taps E, D, E + 1). The
       fused loops then read only unit-stride arrays, which gcc vectorises without keeping
       back the scalar iterations it reserves for strided groups that read past their last
       element ("peeling for gaps": on a row of 8 windows, all of them). */
    #define PK_CHUNK 64
    #define PK_Q(B) Q0 + (B), Q1 + (B), Q2 + (B), Q3 + (B), Q4 + (B), Q5 + (B), Q6 + (B),    \\
                    Q7 + (B), Q8 + (B)
    #define PK_TAPS(T) const T *PK_R t0, const T *PK_R t1, const T *PK_R t2,                 \\
                       const T *PK_R t3, const T *PK_R t4, const T *PK_R t5,                 \\
                       const T *PK_R t6, const T *PK_R t7, const T *PK_R t8
    #define PK_3X3_CHUNKS(T, r0, r1, r2, s, c0, lo, hi, CALL) do {                          \\
        if ((s) == 1) {                                                                     \\
            const Py_ssize_t O0 = (lo), N = (hi) - (lo);                                    \\
            const T *Q0 = (r0) + (c0) + O0, *Q1 = Q0 + 1, *Q2 = Q0 + 2;                     \\
            const T *Q3 = (r1) + (c0) + O0, *Q4 = Q3 + 1, *Q5 = Q3 + 2;                     \\
            const T *Q6 = (r2) + (c0) + O0, *Q7 = Q6 + 1, *Q8 = Q6 + 2;                     \\
            if (N > 0) { CALL; }                                                            \\
        } else {                                                                            \\
            T E0[PK_CHUNK + 1], D0[PK_CHUNK], E1[PK_CHUNK + 1], D1[PK_CHUNK];               \\
            T E2[PK_CHUNK + 1], D2[PK_CHUNK];                                               \\
            for (Py_ssize_t O0 = (lo); O0 < (hi); O0 += PK_CHUNK) {                         \\
                const Py_ssize_t N = (hi) - O0 < PK_CHUNK ? (hi) - O0 : PK_CHUNK;            \\
                const T *PK_R a = (r0) + 2 * O0 + (c0), *PK_R b = (r1) + 2 * O0 + (c0);      \\
                const T *PK_R c = (r2) + 2 * O0 + (c0);                                      \\
                for (Py_ssize_t i = 0; i < N; ++i) {                                        \\
                    E0[i] = a[2 * i]; D0[i] = a[2 * i + 1];                                 \\
                    E1[i] = b[2 * i]; D1[i] = b[2 * i + 1];                                 \\
                    E2[i] = c[2 * i]; D2[i] = c[2 * i + 1];                                 \\
                }                                                                           \\
                E0[N] = a[2 * N]; E1[N] = b[2 * N]; E2[N] = c[2 * N];                       \\
                const T *Q0 = E0, *Q1 = D0, *Q2 = E0 + 1, *Q3 = E1, *Q4 = D1, *Q5 = E1 + 1; \\
                const T *Q6 = E2, *Q7 = D2, *Q8 = E2 + 1;                                   \\
                CALL;                                                                       \\
            }                                                                               \\
        }                                                                                   \\
    } while (0)
    /* Hides a value from the optimiser. The overlapping block's length is PK_BLOCK, a
       constant: gcc then unrolls its loop completely before the vectoriser sees it, and the
       unrolled compare-and-selects become branches (if-conversion works on loops only),
       which mispredict on real data. An opaque length keeps it a vectorised loop. */
    #if defined(__GNUC__)
    #define PK_OPAQUE(x) __asm__("" : "+r"(x))
    #else
    #define PK_OPAQUE(x) ((void)0)
    #endif
    #define PK_IN_BLOCKS(lo, hi, CALL) do {                                                 \\
        const Py_ssize_t pk_lo_ = (lo), pk_hi_ = (hi), pk_n_ = pk_hi_ - pk_lo_;             \\
        if (pk_n_ > PK_BLOCK && pk_n_ % PK_BLOCK) {                                         \\
            { const Py_ssize_t B_LO = pk_lo_, B_HI = pk_lo_ + pk_n_ / PK_BLOCK * PK_BLOCK;  \\
              CALL; }                                                                       \\
            { Py_ssize_t pk_b_ = PK_BLOCK; PK_OPAQUE(pk_b_);                                 \\
              const Py_ssize_t B_LO = pk_hi_ - pk_b_, B_HI = pk_hi_; CALL; }                \\
        } else {                                                                            \\
            const Py_ssize_t B_LO = pk_lo_, B_HI = pk_hi_; CALL;                            \\
        }                                                                                   \\
    } while (0)

    /* Max pooling, one kernel tap over one output row: for o in [lo, hi),
       v = row[o*s + off]; when v wins, m[o] = v and k[o] = rel, the tap's offset from the
       window's start position (the caller turns k into flat indices once per row). The common
       strides get their own loops, with the stride a constant the compiler can vectorise.
       The fused 2x2 and 3x3 loops keep the winner's offset as a KT: int32 for float,
       int64 for double, as wide as the compare masks (with an int32 offset, gcc packed
       every float64 mask into 32-bit lanes, five instructions a mask). */
    #define PK_DEFINE_MAX_TAP(T, SUFFIX, KT)                                                \\
    static inline void pk_max_tap_s_##SUFFIX(const T *PK_R row, Py_ssize_t s, Py_ssize_t off,     \\
                                            Py_ssize_t lo, Py_ssize_t hi, T *PK_R m, int32_t *PK_R k,  \\
                                            int32_t rel) {                                  \\
        for (Py_ssize_t o = lo; o < hi; ++o) {                                              \\
            const T v = row[o * s + off];                                                   \\
            const T cur = m[o];                                                             \\
            const int take = PK_TAKES(v, cur);                                              \\
            m[o] = take ? v : cur;                                                          \\
            k[o] = take ? rel : k[o];                                                       \\
        }                                                                                   \\
    }                                                                                       \\
    PK_ROW void pk_max_tap_##SUFFIX(const T *PK_R row, Py_ssize_t s, Py_ssize_t off,       \\
                                          Py_ssize_t lo, Py_ssize_t hi, T *PK_R m, int32_t *PK_R k,    \\
                                          int32_t rel) {                                    \\
        if (s == 1) pk_max_tap_s_##SUFFIX(row, 1, off, lo, hi, m, k, rel);                  \\
        else if (s == 2) pk_max_tap_s_##SUFFIX(row, 2, off, lo, hi, m, k, rel);             \\
        else pk_max_tap_s_##SUFFIX(row, s, off, lo, hi, m, k, rel);                         \\
    }                                                                                       \\
    /* 2x2 windows, stride 2, no padding, no dilation: one fused pass over two input rows.  \\
       r0, r1 point at the window row pair; b0 = flat index of r0[0]; w = W (< 2**30). */    \\
    PK_BODY void pk_max_2x2_k_##SUFFIX(const T *PK_R r0, const T *PK_R r1,           \\
                                            Py_ssize_t lo, Py_ssize_t hi, T *PK_R m,        \\
                                            int64_t *PK_R idx, int64_t b0, int32_t w) {     \\
        for (Py_ssize_t o = lo; o < hi; ++o) {                                              \\
            const T a = r0[2 * o], b = r0[2 * o + 1], c = r1[2 * o], d = r1[2 * o + 1];     \\
            T mv = a;                                                                       \\
            KT k = 0;                                                                       \\
            int t;                                                                          \\
            t = PK_TAKES(b, mv); mv = t ? b : mv; k = t ? 1 : k;                            \\
            t = PK_TAKES(c, mv); mv = t ? c : mv; k = t ? w : k;                            \\
            t = PK_TAKES(d, mv); mv = t ? d : mv; k = t ? w + 1 : k;                        \\
            m[o] = mv;                                                                      \\
            idx[o] = b0 + 2 * o + k;                                                        \\
        }                                                                                   \\
    }                                                                                       \\
    /* Over a plane's OH output rows (W columns, W < 2**30), in one call: on 28x28 planes   \\
       per-row calls cost as much as the rows. */                                          \\
    PK_ROW void pk_max_2x2_plane_##SUFFIX(const T *PK_R xp, Py_ssize_t W, Py_ssize_t OH,   \\
                                          Py_ssize_t OW, T *PK_R m, int64_t *PK_R idx) {    \\
        for (Py_ssize_t oh = 0; oh < OH; ++oh) {                                            \\
            const T *PK_R r0 = xp + 2 * oh * W;                                             \\
            pk_prefetch_ahead(xp, 2 * oh + 2, 2, W * (Py_ssize_t)sizeof(T));                \\
            T *PK_R mr = m + oh * OW;                                                       \\
            int64_t *PK_R ir = idx + oh * OW;                                               \\
            const int64_t b0 = (int64_t)(2 * oh) * W;                                       \\
            PK_IN_BLOCKS(0, OW, pk_max_2x2_k_##SUFFIX(r0, r0 + W, B_LO, B_HI, mr, ir, b0,   \\
                                                      (int32_t)W));                         \\
        }                                                                                   \\
    }                                                                                       \\
    /* 3x3 windows, dilation 1, stride s (1 or 2, a constant after inlining), over outputs \\
       [lo, hi) whose windows lie inside the input: nine loads and a select chain per       \\
       output, in registers. Window o starts at column o*s + c0 of rows r0, r1, r2; b0 is   \\
       the flat index of r0[c0]; w = W (< 2**29). */                                        \\
    PK_BODY void pk_max_3x3_k_##SUFFIX(PK_TAPS(T), Py_ssize_t n, T *PK_R m,               \\
                                       int64_t *PK_R idx, int64_t base, Py_ssize_t s,       \\
                                       int32_t w) {                                         \\
        for (Py_ssize_t o = 0; o < n; ++o) {                                                \\
            T mv = t0[o];                                                                   \\
            KT k = 0;                                                                       \\
            T v; int t;                                                                     \\
            v = t1[o]; t = PK_TAKES(v, mv); mv = t ? v : mv; k = t ? 1 : k;                 \\
            v = t2[o]; t = PK_TAKES(v, mv); mv = t ? v : mv; k = t ? 2 : k;                 \\
            v = t3[o]; t = PK_TAKES(v, mv); mv = t ? v : mv; k = t ? w : k;                 \\
            v = t4[o]; t = PK_TAKES(v, mv); mv = t ? v : mv; k = t ? w + 1 : k;             \\
            v = t5[o]; t = PK_TAKES(v, mv); mv = t ? v : mv; k = t ? w + 2 : k;             \\
            v = t6[o]; t = PK_TAKES(v, mv); mv = t ? v : mv; k = t ? 2 * w : k;             \\
            v = t7[o]; t = PK_TAKES(v, mv); mv = t ? v : mv; k = t ? 2 * w + 1 : k;         \\
            v = t8[o]; t = PK_TAKES(v, mv); mv = t ? v : mv; k = t ? 2 * w + 2 : k;         \\
            m[o] = mv;                                                                      \\
            idx[o] = base + o * s + k;                                                      \\
        }                                                                                   \\
    }                                                                                       \\
    /* 3x3 windows, dilation 1, stride s (1 or 2), over outputs [lo, hi) whose windows lie \\
       inside the input: nine loads and a select chain per output, in registers. Window o  \\
       starts at column o*s + c0 of rows r0, r1, r2; b0 is the flat index of r0[c0];       \\
       w = W (< 2**29). */                                                                  \\
    PK_ROW void pk_max_3x3_##SUFFIX(const T *PK_R r0, const T *PK_R r1,                    \\
                                    const T *PK_R r2, Py_ssize_t s, Py_ssize_t c0,          \\
                                    Py_ssize_t lo, Py_ssize_t hi, T *PK_R m,                \\
                                    int64_t *PK_R idx, int64_t b0, int32_t w) {             \\
        PK_3X3_CHUNKS(T, r0, r1, r2, s, c0, lo, hi,                                         \\
            PK_IN_BLOCKS(0, N, pk_max_3x3_k_##SUFFIX(PK_Q(B_LO), B_HI - B_LO,               \\
                                                     m + O0 + B_LO, idx + O0 + B_LO,        \\
                                                     b0 + (O0 + B_LO) * s, s, w)));         \\
    }                                                                                       \\
    /* The same two loops for values only (max_pool2d without return_indices). */          \\
    static inline void pk_max_vtap_s_##SUFFIX(const T *PK_R row, Py_ssize_t s,               \\
                                             Py_ssize_t off, Py_ssize_t lo, Py_ssize_t hi,  \\
                                             T *PK_R m) {                                   \\
        for (Py_ssize_t o = lo; o < hi; ++o) {                                              \\
            const T v = row[o * s + off];                                                   \\
            const T cur = m[o];                                                             \\
            m[o] = PK_TAKES(v, cur) ? v : cur;                                              \\
        }                                                                                   \\
    }                                                                                       \\
    PK_ROW void pk_max_vtap_##SUFFIX(const T *PK_R row, Py_ssize_t s, Py_ssize_t off, \\
                                           Py_ssize_t lo, Py_ssize_t hi, T *PK_R m) {       \\
        if (s == 1) pk_max_vtap_s_##SUFFIX(row, 1, off, lo, hi, m);                         \\
        else if (s == 2) pk_max_vtap_s_##SUFFIX(row, 2, off, lo, hi, m);                    \\
        else pk_max_vtap_s_##SUFFIX(row, s, off, lo, hi, m);                                \\
    }                                                                                       \\
    PK_BODY void pk_max_3x3_vk_##SUFFIX(PK_TAPS(T), Py_ssize_t n, T *PK_R m) {              \\
        for (Py_ssize_t o = 0; o < n; ++o) {                                                \\
            T mv = t0[o];                                                                   \\
            T v;                                                                            \\
            v = t1[o]; mv = PK_TAKES(v, mv) ? v : mv;                                       \\
            v = t2[o]; mv = PK_TAKES(v, mv) ? v : mv;                                       \\
            v = t3[o]; mv = PK_TAKES(v, mv) ? v : mv;                                       \\
            v = t4[o]; mv = PK_TAKES(v, mv) ? v : mv;                                       \\
            v = t5[o]; mv = PK_TAKES(v, mv) ? v : mv;                                       \\
            v = t6[o]; mv = PK_TAKES(v, mv) ? v : mv;                                       \\
            v = t7[o]; mv = PK_TAKES(v, mv) ? v : mv;                                       \\
            v = t8[o]; mv = PK_TAKES(v, mv) ? v : mv;                                       \\
            m[o] = mv;                                                                      \\
        }                                                                                   \\
    }                                                                                       \\
    PK_ROW void pk_max_3x3_v_##SUFFIX(const T *PK_R r0, const T *PK_R r1,                  \\
                                      const T *PK_R r2, Py_ssize_t s, Py_ssize_t c0,        \\
                                      Py_ssize_t lo, Py_ssize_t hi, T *PK_R m) {            \\
        PK_3X3_CHUNKS(T, r0, r1, r2, s, c0, lo, hi,                                         \\
            PK_IN_BLOCKS(0, N, pk_max_3x3_vk_##SUFFIX(PK_Q(B_LO), B_HI - B_LO,              \\
                                                      m + O0 + B_LO)));                     \\
    }                                                                                       \\
    PK_BODY void pk_max_2x2_vk_##SUFFIX(const T *PK_R r0, const T *PK_R r1,          \\
                                             Py_ssize_t lo, Py_ssize_t hi, T *PK_R m) {     \\
        for (Py_ssize_t o = lo; o < hi; ++o) {                                              \\
            const T a = r0[2 * o], b = r0[2 * o + 1], c = r1[2 * o], d = r1[2 * o + 1];     \\
            T mv = a;                                                                       \\
            mv = PK_TAKES(b, mv) ? b : mv;                                                  \\
            mv = PK_TAKES(c, mv) ? c : mv;                                                  \\
            mv = PK_TAKES(d, mv) ? d : mv;                                                  \\
            m[o] = mv;                                                                      \\
        }                                                                                   \\
    }                                                                                       \\
    PK_ROW void pk_max_2x2_v_##SUFFIX(const T *PK_R r0, const T *PK_R r1,                  \\
                                      Py_ssize_t n_out, T *PK_R m) {                        \\
        PK_IN_BLOCKS(0, n_out, pk_max_2x2_vk_##SUFFIX(r0, r1, B_LO, B_HI, m));              \\
    }
    PK_DEFINE_MAX_TAP(float, f, int32_t)
    PK_DEFINE_MAX_TAP(double, d, int64_t)

    /* Separable 3x3 max for stride 2 along the width. The winner of a window -- the first
       position, in row-major order, of its largest value (a NaN above every number) -- is
       the first winner among the winners of its rows, each of those being the first winner
       along its row. So each input row's three-column maxima are computed once
       (pk_hmax3s2) and shared by the output rows whose windows overlap on it, and an output
       row is a three-row pass over them (pk_vmax3): six compare-selects per output instead
       of eight. The result, value and index, is the nine-tap loop's, bit for bit.

       With gcc, both passes work on 8 windows at a time in GNU vector types (one or two
       AVX2 registers in the avx2 clone, SSE2 pairs in the baseline one), the even and odd
       columns split by shuffles in registers. Left to its auto-vectoriser, gcc split the
       columns through a stack buffer, and reading it back at an offset of one element
       stalls on store forwarding. A row shorter than 8 windows, and other compilers, take
       the scalar loops. Blocks of 8 cover a row with the last one overlapping the one
       before (the outputs are pure functions of the inputs, so writing one twice is
       harmless). POOLKIT_NO_VEC8 (CFLAGS=-DPOOLKIT_NO_VEC8) builds the scalar loops alone,
       as other compilers get them. Little-endian targets only: the blocks reinterpret
       int32 lanes as int64 ones (index widening, the float64 columns). */
    #if defined(__GNUC__) && !defined(__clang__) && !defined(POOLKIT_NO_VEC8) \
        && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    #define PK_VEC8 1
    typedef float pk_f8 __attribute__((vector_size(32)));
    typedef int32_t pk_i8 __attribute__((vector_size(32)));
    typedef int64_t pk_l4 __attribute__((vector_size(32)));
    typedef double pk_d4 __attribute__((vector_size(32)));
    typedef int32_t pk_i4 __attribute__((vector_size(16)));
    /* dst[0..7] = b + k[0..7] for k[i] >= 0, widened to int64 in two halves: gcc spills a
       64-byte int64 vector stored with one memcpy to the stack and copies it 16 and 8 bytes
       at a time. The widening is a zero extension written as shuffles with a zero vector,
       which gcc's AVX2 clone turns into one vpmovzxdq per half (its lowering of a 4-lane
       __builtin_convertvector took four instructions a half). */
    static inline __attribute__((always_inline)) void pk_store_idx8(int64_t *dst, pk_i8 k,
                                                                    int64_t b) {
        const pk_i8 zero = {0}, lo = {0, 8, 1, 9, 2, 10, 3, 11};
        const pk_i8 k_hi = __builtin_shuffle(k, (pk_i8){4, 5, 6, 7, 4, 5, 6, 7});
        const pk_i8 z0 = __builtin_shuffle(k, zero, lo), z1 = __builtin_shuffle(k_hi, zero, lo);
        pk_l4 q0, q1;
        __builtin_memcpy(&q0, &z0, 32);
        __builtin_memcpy(&q1, &z1, 32);
        q0 += b;
        q1 += b;
        __builtin_memcpy(dst, &q0, 32);
        __builtin_memcpy(dst + 4, &q1, 32);
    }
    /* dst[0..3] = b + k[0..3] (the 4-double blocks' columns are int64 lanes already). */
    static inline __attribute__((always_inline)) void pk_store_idx4(int64_t *dst, pk_l4 k,
                                                                    int64_t b) {
        const pk_l4 q = k + b;
        __builtin_memcpy(dst, &q, 32);
    }
    #else
    #define PK_VEC8 0
    #endif
    #define PK_DEFINE_SEP_MAX3(T, SUFFIX, VS, VT, VM, KT, STIDX)                           \\
    PK_BODY void pk_hmax3_k_##SUFFIX(const T *PK_R a, Py_ssize_t n, T *PK_R hm,            \\
                                     int32_t *PK_R hc, int32_t c) {                         \\
        for (Py_ssize_t o = 0; o < n; ++o) {                                                \\
            T mv = a[2 * o], v;                                                             \\
            int32_t k = 0;                                                                  \\
            int t;                                                                          \\
            v = a[2 * o + 1]; t = PK_TAKES(v, mv); mv = t ? v : mv; k = t ? 1 : k;          \\
            v = a[2 * o + 2]; t = PK_TAKES(v, mv); mv = t ? v : mv; k = t ? 2 : k;          \\
            hm[o] = mv;                                                                     \\
            if (hc) hc[o] = c + 2 * (int32_t)o + k;                                         \\
        }                                                                                   \\
    }                                                                                       \\
    PK_BODY void pk_vmax3_k_##SUFFIX(const T *PK_R h0, const int32_t *PK_R c0,             \\
                                     const T *PK_R h1, const int32_t *PK_R c1,              \\
                                     const T *PK_R h2, const int32_t *PK_R c2,              \\
                                     Py_ssize_t n, T *PK_R m, int64_t *PK_R idx,            \\
                                     int64_t b0, int32_t w1, int32_t w2) {                  \\
        for (Py_ssize_t o = 0; o < n; ++o) {                                                \\
            T mv = h0[o], v;                                                                \\
            int t;                                                                          \\
            int32_t k = idx ? c0[o] : 0;                                                    \\
            v = h1[o]; t = PK_TAKES(v, mv); mv = t ? v : mv;                                \\
            if (idx && t) k = c1[o] + w1;                                                   \\
            v = h2[o]; t = PK_TAKES(v, mv); mv = t ? v : mv;                                \\
            if (idx && t) k = c2[o] + w2;                                                   \\
            m[o] = mv;                                                                      \\
            if (idx) idx[o] = b0 + k;                                                       \\
        }                                                                                   \\
    }                                                                                       \\
    PK_SEP_MAX3_VEC(T, SUFFIX, VS, VT, VM, KT, STIDX)                                       \\
    /* Window o of a row at the edge: columns 2o - pw .. 2o - pw + 2 clipped to [0, W). */ \\
    static inline void pk_hmax3_edge_##SUFFIX(const T *PK_R r, Py_ssize_t W, Py_ssize_t o,  \\
                                              Py_ssize_t pw, T *PK_R hm,                    \\
                                              int32_t *PK_R hc) {                           \\
        Py_ssize_t cs = 2 * o - pw, ce = 2 * o - pw + 3;                                    \\
        if (cs < 0) cs = 0;                                                                 \\
        if (ce > W) ce = W;                                                                 \\
        T mv = r[cs];                                                                       \\
        int32_t k = (int32_t)cs;                                                            \\
        for (Py_ssize_t c = cs + 1; c < ce; ++c) {                                          \\
            const T v = r[c];                                                               \\
            const int t = PK_TAKES(v, mv);                                                  \\
            mv = t ? v : mv;                                                                \\
            k = t ? (int32_t)c : k;                                                         \\
        }                                                                                   \\
        hm[o] = mv;                                                                         \\
        if (hc) hc[o] = k;                                                                  \\
    }                                                                                       \\
    /* The row maxima of input row r (W columns) for windows of 3 columns, stride 2, pw    \\
       columns of left padding (0 or 1): hm[o] = the first maximum of window o's columns   \\
       inside the row and, when hc is not NULL, hc[o] = its column, for o in [0, OW).      \\
       Windows [lo, hi) lie inside the row (lo <= hi); the others overhang an edge. */      \\
    PK_BODY void pk_hmax3s2_##SUFFIX(const T *PK_R r, Py_ssize_t W, Py_ssize_t OW,         \\
                                    Py_ssize_t pw, Py_ssize_t lo, Py_ssize_t hi,            \\
                                    T *PK_R hm, int32_t *PK_R hc) {                         \\
        const Py_ssize_t L = pk_vl_##VS;  /* windows per vector block */                 \\
        Py_ssize_t o = 0;                                                                   \\
        if (PK_VEC8 && pw == 1 && lo == 1 && hi >= L) {                                     \\
            /* windows 0..7, the left edge included, in one block */                        \\
            pk_hmax3_st8_##SUFFIX(r, 0, 1, 1, hm, hc);                                      \\
            o = L;                                                                          \\
        }                                                                                   \\
        for (; o < lo; ++o) pk_hmax3_edge_##SUFFIX(r, W, o, pw, hm, hc);                    \\
        if (o < hi) {                                                                       \\
            if (PK_VEC8 && hi - lo >= L) {                                                  \\
                for (; o + L <= hi; o += L) pk_hmax3_st8_##SUFFIX(r, o, pw, 0, hm, hc);     \\
                if (o < hi)  /* overlaps the block before; starts at >= lo */               \\
                    pk_hmax3_st8_##SUFFIX(r, hi - L, pw, 0, hm, hc);                        \\
            } else {                                                                        \\
                pk_hmax3_k_##SUFFIX(r + (2 * o - pw), hi - o, hm + o, hc ? hc + o : NULL,   \\
                                    (int32_t)(2 * o - pw));                                 \\
            }                                                                               \\
            o = hi;                                                                         \\
        }                                                                                   \\
        for (; o < OW; ++o) pk_hmax3_edge_##SUFFIX(r, W, o, pw, hm, hc);                    \\
    }                                                                                       \\
    /* One output row from the row maxima of its window rows, top to bottom: m[o] = the    \\
       first maximum of h0[o], h1[o], h2[o] and, when idx is not NULL, idx[o] = b0 + the   \\
       winner's column plus w1 (row 1) or w2 (row 2). A window with fewer rows passes its  \\
       last row again (a repeat never wins: PK_TAKES is strict). w2 < 2**31 - W. */         \\
    PK_BODY void pk_vmax3_##SUFFIX(const T *PK_R h0, const int32_t *PK_R c0,               \\
                                  const T *PK_R h1, const int32_t *PK_R c1,                 \\
                                  const T *PK_R h2, const int32_t *PK_R c2, Py_ssize_t n,   \\
                                  T *PK_R m, int64_t *PK_R idx, int64_t b0, int32_t w1,     \\
                                  int32_t w2) {                                             \\
        const Py_ssize_t L = pk_vl_##VS;  /* windows per vector block */                 \\
        if (PK_VEC8 && n >= L) {                                                            \\
            Py_ssize_t o = 0;                                                               \\
            for (; o + L <= n; o += L)                                                      \\
                pk_vmax3_v8_##SUFFIX(h0, c0, h1, c1, h2, c2, o, m, idx, b0, w1, w2);        \\
            if (o < n)                                                                      \\
                pk_vmax3_v8_##SUFFIX(h0, c0, h1, c1, h2, c2, n - L, m, idx, b0, w1, w2);    \\
        } else {                                                                            \\
            pk_vmax3_k_##SUFFIX(h0, c0, h1, c1, h2, c2, n, m, idx, b0, w1, w2);             \\
        }                                                                                   \\
    }                                                                                       \\
    /* An output row (row stride 2) whose window rows a, b = a + 1, c = a + 2 (xb, xc) are  \\
       all inside the plane, a's row maxima in ha, ca: b's and c's made and combined with  \\
       a's in one pass of 8-window blocks (pk_max3_f8), c's kept in hcs, ccs for the next  \\
       output row (b's are needed by this row only). Windows from hi on (odd W) overhang    \\
       the right edge: one at a time, b's through hbs, cbs. Needs PK_VEC8, hi >= 8 and      \\
       lo == pw (0 or 1). idx NULL: values only (the c* arrays unused). */                  \\
    PK_BODY void pk_max3_frow_##SUFFIX(const T *PK_R xb, const T *PK_R xc, Py_ssize_t W,    \\
                                       Py_ssize_t OW, Py_ssize_t pw, Py_ssize_t hi,         \\
                                       const T *PK_R ha, const int32_t *PK_R ca,            \\
                                       T *PK_R hbs, int32_t *PK_R cbs, T *PK_R hcs,         \\
                                       int32_t *PK_R ccs, T *PK_R out, int64_t *PK_R idx,   \\
                                       int64_t b0) {                                        \\
        const Py_ssize_t L = pk_vl_##VS;  /* windows per vector block */                 \\
        const int32_t w = (int32_t)W;                                                       \\
        Py_ssize_t o = 0;                                                                   \\
        if (pw == 1) {                                                                      \\
            pk_max3_f8_##SUFFIX(xb, xc, 0, 1, 1, ha, ca, hcs, ccs, out, idx, b0, w);        \\
            o = L;                                                                          \\
        }                                                                                   \\
        for (; o + L <= hi; o += L)                                                         \\
            pk_max3_f8_##SUFFIX(xb, xc, o, pw, 0, ha, ca, hcs, ccs, out, idx, b0, w);       \\
        if (o < hi)  /* overlaps the block before; starts at >= lo */                       \\
            pk_max3_f8_##SUFFIX(xb, xc, hi - L, pw, 0, ha, ca, hcs, ccs, out, idx, b0, w);  \\
        if (hi < OW) {                                                                      \\
            for (o = hi; o < OW; ++o) {                                                     \\
                pk_hmax3_edge_##SUFFIX(xb, W, o, pw, hbs, idx ? cbs : NULL);                \\
                pk_hmax3_edge_##SUFFIX(xc, W, o, pw, hcs, idx ? ccs : NULL);                \\
            }                                                                               \\
            pk_vmax3_k_##SUFFIX(ha + hi, idx ? ca + hi : NULL, hbs + hi,                    \\
                                idx ? cbs + hi : NULL, hcs + hi, idx ? ccs + hi : NULL,     \\
                                OW - hi, out + hi, idx ? idx + hi : NULL, b0, w, 2 * w);    \\
        }                                                                                   \\
    }                                                                                       \\
    /* Two output rows (row stride 2) whose window rows a .. e (xb .. xe after a) are all   \\
       inside the plane and whose windows all lie inside the rows (hi == OW, lo == pw): the \\
       blocks of pk_max3_f8x2, the last one overlapping the one before. Needs PK_VEC8 and   \\
       OW >= 8. a's row maxima in ha, ca; e's go to hes, ces. */                            \\
    PK_BODY void pk_max3_frow2_##SUFFIX(const T *PK_R xb, const T *PK_R xc, const T *PK_R xd,\\
                                        const T *PK_R xe, Py_ssize_t OW, Py_ssize_t pw,     \\
                                        const T *PK_R ha, const int32_t *PK_R ca,           \\
                                        T *PK_R hes, int32_t *PK_R ces, T *PK_R out0,       \\
                                        int64_t *PK_R idx0, T *PK_R out1,                   \\
                                        int64_t *PK_R idx1, int64_t b0, int32_t w) {        \\
        const Py_ssize_t L = pk_vl_##VS;  /* windows per vector block */                    \\
        Py_ssize_t o = 0;                                                                   \\
        if (pw == 1) {                                                                      \\
            pk_max3_f8x2_##SUFFIX(xb, xc, xd, xe, 0, 1, 1, ha, ca, hes, ces, out0, idx0,    \\
                                  out1, idx1, b0, w);                                       \\
            o = L;                                                                          \\
        }                                                                                   \\
        for (; o + L <= OW; o += L)                                                         \\
            pk_max3_f8x2_##SUFFIX(xb, xc, xd, xe, o, pw, 0, ha, ca, hes, ces, out0, idx0,   \\
                                  out1, idx1, b0, w);                                       \\
        if (o < OW)  /* overlaps the block before; starts at >= pw */                       \\
            pk_max3_f8x2_##SUFFIX(xb, xc, xd, xe, OW - L, pw, 0, ha, ca, hes, ces, out0,    \\
                                  idx0, out1, idx1, b0, w);                                 \\
    }                                                                                       \\
    /* One plane (H x W) of 3x3 windows, column stride 2, row stride sh, padding ph and pw: \\
       the row maxima of input row r live in slot r % 3 of hbuf (their columns in cbuf;     \\
       both 3 * OW long), computed when an output row first needs them; each output row is  \\
       then one pass over its 1 to 3 window rows. idx and cbuf NULL: values only. Windows   \\
       [lo, hi) of a row lie inside it. One call per plane: on 28 x 28 planes the calls of  \\
       a row at a time cost as much as the rows. */                                         \\
    PK_ROW void pk_max3s2_plane_##SUFFIX(const T *PK_R xp, Py_ssize_t H, Py_ssize_t W,      \\
                                         Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t sh,       \\
                                         Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t lo,       \\
                                         Py_ssize_t hi, T *PK_R out, int64_t *PK_R idx,     \\
                                         T *PK_R hbuf, int32_t *PK_R cbuf) {                \\
        const Py_ssize_t L = pk_vl_##VS;  /* windows per vector block */                 \\
        Py_ssize_t slot_row[3] = {-1, -1, -1};                                              \\
        /* stride 2, rows of 8 windows or more: the inside rows in one pass each */         \\
        const int fused = PK_VEC8 && sh == 2 && hi >= L && lo == pw && pw <= 1;             \\
        /* and rows of at most 4 blocks whose windows all lie inside the row: two output    \\
           rows at a time (pk_max3_frow2), as the 3x3 mean (pk_mean3s2_plane) */            \\
        const int pair = fused && hi == OW && OW <= 4 * L;                                  \\
        for (Py_ssize_t oh = 0; oh < OH; ++oh) {                                            \\
            const Py_ssize_t hs = oh * sh - ph;                                             \\
            pk_prefetch_ahead(xp, hs + 3, sh, W * (Py_ssize_t)sizeof(T));                   \\
            if (pair && oh + 1 < OH && hs >= 0 && hs + 4 < H) {                             \\
                const Py_ssize_t sa = (hs % 3) * OW, se = ((hs + 4) % 3) * OW;              \\
                pk_prefetch_ahead(xp, hs + 5, sh, W * (Py_ssize_t)sizeof(T));               \\
                if (slot_row[hs % 3] != hs)                                                 \\
                    pk_hmax3s2_##SUFFIX(xp + hs * W, W, OW, pw, lo, hi, hbuf + sa,          \\
                                        cbuf ? cbuf + sa : NULL);                           \\
                pk_max3_frow2_##SUFFIX(xp + (hs + 1) * W, xp + (hs + 2) * W,                \\
                                       xp + (hs + 3) * W, xp + (hs + 4) * W, OW, pw,        \\
                                       hbuf + sa, cbuf ? cbuf + sa : NULL, hbuf + se,       \\
                                       cbuf ? cbuf + se : NULL, out + oh * OW,              \\
                                       idx ? idx + oh * OW : NULL, out + (oh + 1) * OW,     \\
                                       idx ? idx + (oh + 1) * OW : NULL, (int64_t)hs * W,   \\
                                       (int32_t)W);                                         \\
                slot_row[0] = slot_row[1] = slot_row[2] = -1;                               \\
                slot_row[(hs + 4) % 3] = hs + 4;                                            \\
                ++oh;                                                                       \\
                continue;                                                                   \\
            }                                                                               \\
            if (fused && hs >= 0 && hs + 2 < H) {                                           \\
                const Py_ssize_t sa = (hs % 3) * OW, sb = ((hs + 1) % 3) * OW;              \\
                const Py_ssize_t sc = ((hs + 2) % 3) * OW;                                  \\
                if (slot_row[hs % 3] != hs)                                                 \\
                    pk_hmax3s2_##SUFFIX(xp + hs * W, W, OW, pw, lo, hi, hbuf + sa,          \\
                                        cbuf ? cbuf + sa : NULL);                           \\
                pk_max3_frow_##SUFFIX(xp + (hs + 1) * W, xp + (hs + 2) * W, W, OW, pw, hi,  \\
                                      hbuf + sa, cbuf ? cbuf + sa : NULL, hbuf + sb,        \\
                                      cbuf ? cbuf + sb : NULL, hbuf + sc,                   \\
                                      cbuf ? cbuf + sc : NULL, out + oh * OW,               \\
                                      idx ? idx + oh * OW : NULL, (int64_t)hs * W);         \\
                slot_row[hs % 3] = hs;                                                      \\
                slot_row[(hs + 1) % 3] = -1;  /* only its edge windows, if any */           \\
                slot_row[(hs + 2) % 3] = hs + 2;                                            \\
                continue;                                                                   \\
            }                                                                               \\
            const Py_ssize_t r0 = hs > 0 ? hs : 0, r1 = hs + 3 < H ? hs + 3 : H;            \\
            for (Py_ssize_t r = r0; r < r1; ++r) {                                          \\
                const Py_ssize_t sl = r % 3;                                                \\
                if (slot_row[sl] == r) continue;                                            \\
                slot_row[sl] = r;                                                           \\
                pk_hmax3s2_##SUFFIX(xp + r * W, W, OW, pw, lo, hi, hbuf + sl * OW,          \\
                                    cbuf ? cbuf + sl * OW : NULL);                          \\
            }                                                                               \\
            /* a window of fewer than three rows passes its last row again */               \\
            const Py_ssize_t ra = r0, rb = r0 + 1 < r1 - 1 ? r0 + 1 : r1 - 1;               \\
            const Py_ssize_t rc = r0 + 2 < r1 - 1 ? r0 + 2 : r1 - 1;                        \\
            const Py_ssize_t sa = (ra % 3) * OW, sb = (rb % 3) * OW, sc = (rc % 3) * OW;    \\
            pk_vmax3_##SUFFIX(hbuf + sa, cbuf ? cbuf + sa : NULL, hbuf + sb,                \\
                              cbuf ? cbuf + sb : NULL, hbuf + sc, cbuf ? cbuf + sc : NULL,  \\
                              OW, out + oh * OW, idx ? idx + oh * OW : NULL,                \\
                              (int64_t)ra * W, (int32_t)((rb - ra) * W),                    \\
                              (int32_t)((rc - ra) * W));                                    \\
        }                                                                                   \\
    }
    #if PK_VEC8
    /* The vector primitives, per vector suffix VS: f (8 floats) and d4 (4 doubles, one
       AVX2 register like the floats: written as 8 doubles, 64-byte vectors, gcc 12 kept
       them on the stack without AVX-512 and split their compares into scalar ones, which
       made the float64 blocks slower than the scalar loops). L = lanes of a vector; the
       "8" in the names is the float block. Loads and stores go through memcpy
       (unaligned), selects are bit masks. The shuffle masks: the evens (EVEN1 then PAIRS)
       and odds (ODD1 then PAIRS) of two vectors, and SHIFT (one lane in from the left). */
    #define PK_EVEN1_f ((pk_i8){0, 2, 8, 10, 4, 6, 12, 14})
    #define PK_ODD1_f ((pk_i8){1, 3, 9, 11, 5, 7, 13, 15})
    #define PK_PAIRS_f ((pk_i8){0, 1, 4, 5, 2, 3, 6, 7})
    #define PK_SHIFT_f ((pk_i8){0, 8, 9, 10, 11, 12, 13, 14})
    #define PK_EVEN1_d4 ((pk_l4){0, 4, 2, 6})
    #define PK_ODD1_d4 ((pk_l4){1, 5, 3, 7})
    #define PK_PAIRS_d4 ((pk_l4){0, 2, 1, 3})
    #define PK_SHIFT_d4 ((pk_l4){0, 4, 5, 6})
    /* each lane twice: the low and the high half of the lanes (the 2x2 mean backward) */
    #define PK_DUPLO_f ((pk_i8){0, 0, 1, 1, 2, 2, 3, 3})
    #define PK_DUPHI_f ((pk_i8){4, 4, 5, 5, 6, 6, 7, 7})
    #define PK_DUPLO_d4 ((pk_l4){0, 0, 1, 1})
    #define PK_DUPHI_d4 ((pk_l4){2, 2, 3, 3})
    /* two vectors' lanes interleaved (a0, b0, a1, b1, ...): the low and the high half */
    #define PK_ZIPLO_f ((pk_i8){0, 8, 1, 9, 2, 10, 3, 11})
    #define PK_ZIPHI_f ((pk_i8){4, 12, 5, 13, 6, 14, 7, 15})
    #define PK_ZIPLO_d4 ((pk_l4){0, 4, 1, 5})
    #define PK_ZIPHI_d4 ((pk_l4){2, 6, 3, 7})
    /* one lane down, the top lane from the second vector's lane 0 (a zero vector: the last
       lane then 0) */
    #define PK_SHIFTDN_f ((pk_i8){1, 2, 3, 4, 5, 6, 7, 8})
    #define PK_SHIFTDN_d4 ((pk_l4){1, 2, 3, 4})
    #define PK_VEC_PRIMS(T, SUFFIX, VT, VM)                                                 \\
    enum { pk_vl_##SUFFIX = (int)(sizeof(VT) / sizeof(T)) };  /* lanes */                   \\
    PK_BODY VT pk_ld8_##SUFFIX(const T *p) { VT v; __builtin_memcpy(&v, p, sizeof v); return v; } \\
    PK_BODY VM pk_vtakes_##SUFFIX(VT v, VT cur) {                                           \\
        /* PK_TAKES: not (v <= cur) is v > cur or either one NaN; cur == cur drops a NaN     \\
           cur. Two compares and an and (vcmpnleps, vcmpeqps, vpand) where the literal      \\
           form takes three compares, an and and an or. */                                  \\
        const VM le = v <= cur;                                                             \\
        return ~le & (cur == cur);                                                          \\
    }                                                                                       \\
    PK_BODY VT pk_vsel_##SUFFIX(VM t, VT a, VT b) {                                         \\
        return (VT)((t & (VM)a) | (~t & (VM)b));                                            \\
    }                                                                                       \\
    /* The even and odd elements of the 2L values lo, hi: an in-lane shuffle, then the      \\
       middle 64-bit pairs swapped (vshufps and vpermd with AVX2 for floats, vunpcklpd and  \\
       vpermpd for 4 doubles; gcc lowers the one-step two-source shuffle to three           \\
       instructions). */                                                                    \\
    PK_BODY VT pk_even8_##SUFFIX(VT lo, VT hi) {                                            \\
        return __builtin_shuffle(__builtin_shuffle(lo, hi, PK_EVEN1_##SUFFIX), PK_PAIRS_##SUFFIX); \\
    }                                                                                       \\
    PK_BODY VT pk_odd8_##SUFFIX(VT lo, VT hi) {                                             \\
        return __builtin_shuffle(__builtin_shuffle(lo, hi, PK_ODD1_##SUFFIX), PK_PAIRS_##SUFFIX); \\
    }                                                                                       \\
    /* The three taps of windows 0..L-1 of a[] (window i: a[2i], a[2i + 1], a[2i + 2]),    \\
       from a[0..2L]: the evens and odds of a[0..2L-1], and the odds of a[1..2L]. */        \\
    PK_BODY void pk_taps3_##SUFFIX(const T *PK_R a, VT *t0, VT *t1, VT *t2) {               \\
        enum { L = pk_vl_##SUFFIX };                                                        \\
        const VT lo = pk_ld8_##SUFFIX(a), hi = pk_ld8_##SUFFIX(a + L);                      \\
        *t0 = pk_even8_##SUFFIX(lo, hi);                                                    \\
        *t1 = pk_odd8_##SUFFIX(lo, hi);                                                     \\
        *t2 = pk_odd8_##SUFFIX(pk_ld8_##SUFFIX(a + 1), pk_ld8_##SUFFIX(a + 1 + L));         \\
    }                                                                                       \\
    /* The same for windows 0..L-1 of a row r with one column of left padding (window i:   \\
       r[2i - 1], r[2i], r[2i + 1]; reads r[0..2L-1]): window 0's missing r[-1] becomes a  \\
       stand-in that cannot change the result: with dup a second r[0] (a max never takes a \\
       repeat), else -0.0 (x + -0.0 == x, and no sample takes a zero). */                   \\
    PK_BODY void pk_taps3_left_##SUFFIX(const T *PK_R r, int dup, VT *t0, VT *t1, VT *t2) { \\
        enum { L = pk_vl_##SUFFIX };                                                        \\
        const VT lo = pk_ld8_##SUFFIX(r), hi = pk_ld8_##SUFFIX(r + L);                      \\
        *t1 = pk_even8_##SUFFIX(lo, hi);                                                    \\
        *t2 = pk_odd8_##SUFFIX(lo, hi);                                                     \\
        *t0 = __builtin_shuffle(dup ? *t1 : -(VT){0}, *t2, PK_SHIFT_##SUFFIX);              \\
    }
    /* The 3x3 max blocks of L windows on the primitives of vector suffix VS: KT holds the
       winners' columns (int32 lanes for floats, int64 for doubles, as wide as the compare
       masks VM; kept in int32 arrays, see pk_cols_ld_*), STIDX stores them as int64
       indices. */
    #define PK_SEP_MAX3_VEC(T, SUFFIX, VS, VT, VM, KT, STIDX)                              \\
    PK_BODY KT pk_kld_##SUFFIX(const int32_t *PK_R p) { return pk_cols_ld_##VS(p); }       \\
    PK_BODY void pk_kst_##SUFFIX(int32_t *PK_R p, KT k) { pk_cols_st_##VS(p, k); }         \\
    /* The three taps t0, t1, t2 of 8 windows (window i's column of t0 being c + 2i):       \\
       *m = their first maximum, *k = its column, a column below 0 (the left padding,        \\
       which never wins over its duplicate) clamped to 0. */                                \\
    PK_BODY void pk_hmax3_sel8_##SUFFIX(VT t0, VT t1, VT t2, int32_t c, VT *m, KT *k) {     \\
        VT mv = t0;                                                                         \\
        VM t = pk_vtakes_##VS(t1, mv);                                                      \\
        mv = pk_vsel_##VS(t, t1, mv);                                                       \\
        KT kk = (KT)t & 1;                                                                  \\
        t = pk_vtakes_##VS(t2, mv);                                                         \\
        mv = pk_vsel_##VS(t, t2, mv);                                                       \\
        const KT tk = (KT)t;                                                                \\
        kk = (tk & 2) | (~tk & kk);                                                         \\
        KT lane2;                                                                           \\
        for (int i = 0; i < pk_vl_##VS; ++i) lane2[i] = 2 * i;                              \\
        kk = kk + c + lane2;                                                                \\
        *m = mv;                                                                            \\
        *k = pk_cols_clamp_##VS(kk);                                                        \\
    }                                                                                       \\
    /* The row maxima of windows o .. o + 7 of row r (window i: columns 2i - pw .. 2i - pw  \\
       + 2), in registers. left: windows 0..7 with one column of left padding, read from    \\
       r[0..15], window 0's missing r[-1] replaced by a second r[0] (which cannot win over  \\
       the first, and is reported as column 0); otherwise every window is inside the row    \\
       (reads r[2o - pw .. 2o - pw + 16]). */                                               \\
    PK_BODY void pk_hmax3_r8_##SUFFIX(const T *PK_R r, Py_ssize_t o, Py_ssize_t pw,         \\
                                      int left, VT *m, KT *k) {                             \\
        VT t0, t1, t2;                                                                      \\
        if (left) pk_taps3_left_##VS(r, 1, &t0, &t1, &t2);                                  \\
        else pk_taps3_##VS(r + (2 * o - pw), &t0, &t1, &t2);                                \\
        pk_hmax3_sel8_##SUFFIX(t0, t1, t2, left ? -1 : (int32_t)(2 * o - pw), m, k);        \\
    }                                                                                       \\
    /* The same, stored: hm[o..o+7] and, unless hc is NULL, hc[o..o+7]. */                  \\
    PK_BODY void pk_hmax3_st8_##SUFFIX(const T *PK_R r, Py_ssize_t o, Py_ssize_t pw,        \\
                                       int left, T *PK_R hm, int32_t *PK_R hc) {            \\
        VT m;                                                                               \\
        KT k;                                                                               \\
        pk_hmax3_r8_##SUFFIX(r, o, pw, left, &m, &k);                                       \\
        __builtin_memcpy(hm + o, &m, sizeof m);                                             \\
        if (hc) pk_kst_##SUFFIX(hc + o, k);                                                 \\
    }                                                                                       \\
    /* Output windows o .. o + 7 from the row maxima of their three rows, top to bottom,    \\
       given as (v0, k0), (v1, k1), (v2, k2): out[o..] = the first maximum and, unless idx  \\
       is NULL, idx[o..] = b0 + its column (+ w1 for row 1, + w2 for row 2). */             \\
    PK_BODY void pk_vcomb8r_##SUFFIX(VT v0, KT k0, VT v1, KT k1, VT v2, KT k2,              \\
                                     Py_ssize_t o, T *PK_R m, int64_t *PK_R idx,            \\
                                     int64_t b0, int32_t w1, int32_t w2) {                  \\
        VT mv = v0;                                                                         \\
        const VM t1 = pk_vtakes_##VS(v1, mv);                                               \\
        mv = pk_vsel_##VS(t1, v1, mv);                                                      \\
        const VM t2 = pk_vtakes_##VS(v2, mv);                                               \\
        mv = pk_vsel_##VS(t2, v2, mv);                                                      \\
        __builtin_memcpy(m + o, &mv, sizeof mv);                                            \\
        if (idx) {                                                                          \\
            KT k = k0;                                                                      \\
            const KT s1 = (KT)t1, s2 = (KT)t2;                                              \\
            k = (s1 & (k1 + w1)) | (~s1 & k);                                               \\
            k = (s2 & (k2 + w2)) | (~s2 & k);                                               \\
            STIDX(idx + o, k, b0);                                                          \\
        }                                                                                   \\
    }                                                                                       \\
    /* The same with row 0 read from h0 and, unless idx is NULL, c0 (written out rather     \\
       than through pk_vcomb8r, which made the one-row loop 1-5% slower on 112 x 112        \\
       planes). */                                                                          \\
    PK_BODY void pk_vcomb8_##SUFFIX(const T *PK_R h0, const int32_t *PK_R c0, VT v1,        \\
                                    KT k1, VT v2, KT k2, Py_ssize_t o, T *PK_R m,           \\
                                    int64_t *PK_R idx, int64_t b0, int32_t w1, int32_t w2) {\\
        VT mv = pk_ld8_##VS(h0 + o);                                                        \\
        const VM t1 = pk_vtakes_##VS(v1, mv);                                               \\
        mv = pk_vsel_##VS(t1, v1, mv);                                                      \\
        const VM t2 = pk_vtakes_##VS(v2, mv);                                               \\
        mv = pk_vsel_##VS(t2, v2, mv);                                                      \\
        __builtin_memcpy(m + o, &mv, sizeof mv);                                            \\
        if (idx) {                                                                          \\
            KT k = pk_kld_##SUFFIX(c0 + o);                                                 \\
            const KT s1 = (KT)t1, s2 = (KT)t2;                                              \\
            k = (s1 & (k1 + w1)) | (~s1 & k);                                               \\
            k = (s2 & (k2 + w2)) | (~s2 & k);                                               \\
            STIDX(idx + o, k, b0);                                                          \\
        }                                                                                   \\
    }                                                                                       \\
    /* Output windows o .. o + 7 of a row whose window rows a, b, c (consecutive) are all  \\
       inside the plane: b's and c's row maxima made in registers (c's also stored into    \\
       hcs, ccs for the next output row), a's read from ha, ca, and the three combined:    \\
       out, and unless NULL idx = b0 + column (+ w for b, + 2w for c). */                   \\
    PK_BODY void pk_max3_f8_##SUFFIX(const T *PK_R xb, const T *PK_R xc, Py_ssize_t o,      \\
                                     Py_ssize_t pw, int left, const T *PK_R ha,             \\
                                     const int32_t *PK_R ca, T *PK_R hcs,                   \\
                                     int32_t *PK_R ccs, T *PK_R out, int64_t *PK_R idx,     \\
                                     int64_t b0, int32_t w) {                               \\
        VT vb, vc;                                                                          \\
        KT kb, kc;                                                                          \\
        pk_hmax3_r8_##SUFFIX(xb, o, pw, left, &vb, &kb);                                    \\
        pk_hmax3_r8_##SUFFIX(xc, o, pw, left, &vc, &kc);                                    \\
        __builtin_memcpy(hcs + o, &vc, sizeof vc);                                          \\
        if (idx) pk_kst_##SUFFIX(ccs + o, kc);                                              \\
        pk_vcomb8_##SUFFIX(ha, ca, vb, kb, vc, kc, o, out, idx, b0, w, 2 * w);              \\
    }                                                                                       \\
    /* Output windows o .. o + 7 of two rows at once (row stride 2): rows a .. e all inside \\
       the plane, the first output row from a, b, c, the second from c, d, e. a's row       \\
       maxima read from ha, ca; b's to e's made in registers; e's stored into hes, ces for  \\
       the next pair. b0: the flat index of row a's column 0. Two rows' independent         \\
       chains in one block (as pk_mean3_x2). */                                             \\
    PK_BODY void pk_max3_f8x2_##SUFFIX(const T *PK_R xb, const T *PK_R xc, const T *PK_R xd,\\
                                       const T *PK_R xe, Py_ssize_t o, Py_ssize_t pw,       \\
                                       int left, const T *PK_R ha, const int32_t *PK_R ca,  \\
                                       T *PK_R hes, int32_t *PK_R ces, T *PK_R out0,        \\
                                       int64_t *PK_R idx0, T *PK_R out1,                    \\
                                       int64_t *PK_R idx1, int64_t b0, int32_t w) {         \\
        VT vb, vc, vd, ve;                                                                  \\
        KT kb, kc, kd, ke;                                                                  \\
        pk_hmax3_r8_##SUFFIX(xb, o, pw, left, &vb, &kb);                                    \\
        pk_hmax3_r8_##SUFFIX(xc, o, pw, left, &vc, &kc);                                    \\
        pk_hmax3_r8_##SUFFIX(xd, o, pw, left, &vd, &kd);                                    \\
        pk_hmax3_r8_##SUFFIX(xe, o, pw, left, &ve, &ke);                                    \\
        __builtin_memcpy(hes + o, &ve, sizeof ve);                                          \\
        if (idx0) pk_kst_##SUFFIX(ces + o, ke);                                             \\
        pk_vcomb8_##SUFFIX(ha, ca, vb, kb, vc, kc, o, out0, idx0, b0, w, 2 * w);            \\
        pk_vcomb8r_##SUFFIX(vc, kc, vd, kd, ve, ke, o, out1, idx1, b0 + 2 * (int64_t)w, w,  \\
                            2 * w);                                                         \\
    }                                                                                       \\
    PK_BODY void pk_vmax3_v8_##SUFFIX(const T *PK_R h0, const int32_t *PK_R c0,            \\
                                      const T *PK_R h1, const int32_t *PK_R c1,             \\
                                      const T *PK_R h2, const int32_t *PK_R c2,             \\
                                      Py_ssize_t o, T *PK_R m, int64_t *PK_R idx,           \\
                                      int64_t b0, int32_t w1, int32_t w2) {                 \\
        KT k1 = {0}, k2 = {0};                                                              \\
        if (idx) {                                                                          \\
            k1 = pk_kld_##SUFFIX(c1 + o);                                                   \\
            k2 = pk_kld_##SUFFIX(c2 + o);                                                   \\
        }                                                                                   \\
        pk_vcomb8_##SUFFIX(h0, c0, pk_ld8_##VS(h1 + o), k1, pk_ld8_##VS(h2 + o), k2,        \\
                           o, m, idx, b0, w1, w2);                                          \\
    }
    #else
    #define PK_SEP_MAX3_VEC(T, SUFFIX, VS, VT, VM, KT, STIDX)                              \\
    static inline void pk_hmax3_st8_##SUFFIX(const T *r, Py_ssize_t o, Py_ssize_t pw,      \\
                                             int left, T *hm, int32_t *hc) {                \\
        (void)r; (void)o; (void)pw; (void)left; (void)hm; (void)hc;  /* not called */       \\
    }                                                                                       \\
    static inline void pk_max3_f8_##SUFFIX(const T *xb, const T *xc, Py_ssize_t o,         \\
                                           Py_ssize_t pw, int left, const T *ha,            \\
                                           const int32_t *ca, T *hcs, int32_t *ccs, T *out, \\
                                           int64_t *idx, int64_t b0, int32_t w) {           \\
        (void)xb; (void)xc; (void)o; (void)pw; (void)left; (void)ha; (void)ca; (void)hcs;   \\
        (void)ccs; (void)out; (void)idx; (void)b0; (void)w;  /* not called */               \\
    }                                                                                       \\
    static inline void pk_max3_f8x2_##SUFFIX(const T *xb, const T *xc, const T *xd,         \\
                                             const T *xe, Py_ssize_t o, Py_ssize_t pw,      \\
                                             int left, const T *ha, const int32_t *ca,      \\
                                             T *hes, int32_t *ces, T *out0, int64_t *idx0,  \\
                                             T *out1, int64_t *idx1, int64_t b0, int32_t w) {\\
        (void)xb; (void)xc; (void)xd; (void)xe; (void)o; (void)pw; (void)left; (void)ha;    \\
        (void)ca; (void)hes; (void)ces; (void)out0; (void)idx0; (void)out1; (void)idx1;     \\
        (void)b0; (void)w;  /* not called */                                                \\
    }                                                                                       \\
    PK_BODY void pk_vmax3_v8_##SUFFIX(const T *h0, const int32_t *c0, const T *h1,         \\
                                      const int32_t *c1, const T *h2, const int32_t *c2,    \\
                                      Py_ssize_t o, T *m, int64_t *idx, int64_t b0,         \\
                                      int32_t w1, int32_t w2) {                             \\
        pk_vmax3_k_##SUFFIX(h0 + o, c0 ? c0 + o : NULL, h1 + o, c1 ? c1 + o : NULL,         \\
                            h2 + o, c2 ? c2 + o : NULL, 8, m + o, idx ? idx + o : NULL,     \\
                            b0, w1, w2);                                                    \\
    }
    #endif
    #if PK_VEC8
    /* The vector helpers pass vectors by value; they are always inlined, so the ABI note gcc
       gives for that (the argument registers differ with and without AVX) does not apply.
       gcc reports it at the end of the file, so it stays off for the rest of it. */
    #pragma GCC diagnostic ignored "-Wpsabi"
    /* The 3x3 max blocks' winning columns, between the int32 arrays they are kept in and
       the blocks' lanes: 8 int32 lanes for floats, as they are; int64 lanes for the
       4-double blocks, zero-extended (the columns are never negative) and truncated by one
       shuffle each way, where gcc 12 lowers __builtin_convertvector between 4 int32 and 4
       int64 to five or six instructions (vpmovzxdq from memory, and vpermd). */
    PK_BODY pk_i8 pk_cols_ld_f(const int32_t *PK_R p) {
        pk_i8 v;
        __builtin_memcpy(&v, p, sizeof v);
        return v;
    }
    PK_BODY void pk_cols_st_f(int32_t *PK_R p, pk_i8 k) { __builtin_memcpy(p, &k, sizeof k); }
    /* max(k, 0) lane by lane, for columns >= -1: a shift for int32 lanes, a compare for
       int64 lanes (AVX2 has no 64-bit arithmetic shift: gcc makes one of four instructions) */
    PK_BODY pk_i8 pk_cols_clamp_f(pk_i8 k) { return k & ~(k >> 31); }
    PK_BODY pk_l4 pk_cols_clamp_d4(pk_l4 k) { return k & ~(k < 0); }
    #if defined(__has_builtin)
    #if __has_builtin(__builtin_shufflevector)
    #define PK_HAS_SHUFFLEVECTOR 1
    #endif
    #endif
    PK_BODY pk_l4 pk_cols_ld_d4(const int32_t *PK_R p) {
        pk_i4 v;
        __builtin_memcpy(&v, p, sizeof v);
    #ifdef PK_HAS_SHUFFLEVECTOR
        const pk_i4 z = {0};
        return (pk_l4)__builtin_shufflevector(v, z, 0, 4, 1, 4, 2, 4, 3, 4);
    #else
        return __builtin_convertvector(v, pk_l4);
    #endif
    }
    PK_BODY void pk_cols_st_d4(int32_t *PK_R p, pk_l4 k) {
        const pk_i8 w = __builtin_shuffle((pk_i8)k, (pk_i8){0, 2, 4, 6, 0, 2, 4, 6});
        __builtin_memcpy(p, &w, 16);
    }
    PK_VEC_PRIMS(float, f, pk_f8, pk_i8)
    PK_VEC_PRIMS(double, d4, pk_d4, pk_l4)
    PK_DEFINE_SEP_MAX3(float, f, f, pk_f8, pk_i8, pk_i8, pk_store_idx8)
    PK_DEFINE_SEP_MAX3(double, d, d4, pk_d4, pk_l4, pk_l4, pk_store_idx4)
    #else
    enum { pk_vl_f = 8, pk_vl_d4 = 4 };  /* unused: PK_VEC8 is 0 */
    PK_DEFINE_SEP_MAX3(float, f, f, void, void, void, void)
    PK_DEFINE_SEP_MAX3(double, d, d4, void, void, void, void)
    #endif
    /* the lanes of a vector block by scalar suffix: 8 floats, 4 doubles */
    #define PK_VL_f pk_vl_f
    #define PK_VL_d pk_vl_d4

    /* idx[o] = base + o*s + k[o]: window-relative offsets to flat plane positions. */
    static inline void pk_finish_indices(const int32_t *PK_R k, Py_ssize_t n, int64_t base,
                                         Py_ssize_t s, int64_t *PK_R idx) {
        for (Py_ssize_t o = 0; o < n; ++o) idx[o] = base + o * s + k[o];
    }

    /* Sum pooling, one tap over one output row: acc[o] += row[o*s + off] (strides 1 and 2
       get constant-stride loops). */
    #define PK_DEFINE_ADD_TAP(T, SUFFIX)                                                    \\
    static inline void pk_add_tap_s_##SUFFIX(const T *PK_R row, Py_ssize_t s, Py_ssize_t off,\\
                                            Py_ssize_t lo, Py_ssize_t hi, T *PK_R acc) {    \\
        for (Py_ssize_t o = lo; o < hi; ++o) acc[o] = acc[o] + row[o * s + off];            \\
    }                                                                                       \\
    PK_ROW void pk_add_tap_##SUFFIX(const T *PK_R row, Py_ssize_t s, Py_ssize_t off,  \\
                                          Py_ssize_t lo, Py_ssize_t hi, T *PK_R acc) {      \\
        if (s == 1) pk_add_tap_s_##SUFFIX(row, 1, off, lo, hi, acc);                        \\
        else if (s == 2) pk_add_tap_s_##SUFFIX(row, 2, off, lo, hi, acc);                   \\
        else pk_add_tap_s_##SUFFIX(row, s, off, lo, hi, acc);                               \\
    }                                                                                       \\
    /* acc[o] = acc[o] / (hcount * wcount[o]): the divisor as the product of its parts. */  \\
    static inline void pk_divide_##SUFFIX(T *PK_R acc, Py_ssize_t n, T hcount,               \\
                                         const T *PK_R wcount) {                            \\
        for (Py_ssize_t o = 0; o < n; ++o) acc[o] = acc[o] / (hcount * wcount[o]);          \\
    }                                                                                       \\
    static inline void pk_divide_const_##SUFFIX(T *PK_R acc, Py_ssize_t n, T d) {           \\
        for (Py_ssize_t o = 0; o < n; ++o) acc[o] = acc[o] / d;                             \\
    }                                                                                       \\
    /* q[o] = g[o] / (hcount * wcount[o]) (or / d when wcount is NULL). */                  \\
    PK_ROW void pk_scaled_##SUFFIX(const T *PK_R g, Py_ssize_t n, T hcount,                  \\
                                         const T *PK_R wcount, T d, T *PK_R q) {            \\
        if (wcount) { for (Py_ssize_t o = 0; o < n; ++o) q[o] = g[o] / (hcount * wcount[o]); } \\
        else { for (Py_ssize_t o = 0; o < n; ++o) q[o] = g[o] / d; }                        \\
    }                                                                                       \\
    /* The same for a plane of OH rows of n: row oh divided by hcount[oh] * wcount[o] (or  \\
       by d when wcount is NULL), in one call. */                                           \\
    PK_ROW void pk_scaled_plane_##SUFFIX(const T *PK_R g, Py_ssize_t OH, Py_ssize_t n,      \\
                                         const T *PK_R hcount, const T *PK_R wcount, T d,   \\
                                         T *PK_R q) {                                       \\
        if (wcount) {                                                                       \\
            for (Py_ssize_t r = 0; r < OH; ++r) {                                           \\
                const T h = hcount[r];                                                      \\
                for (Py_ssize_t o = 0; o < n; ++o)                                          \\
                    q[r * n + o] = g[r * n + o] / (h * wcount[o]);                          \\
            }                                                                               \\
        } else {                                                                            \\
            for (Py_ssize_t i = 0; i < OH * n; ++i) q[i] = g[i] / d;                        \\
        }                                                                                   \\
    }                                                                                       \\
    /* 2x2 windows, stride 2, all inside the input, divided by d: one fused pass. The sum    \\
       starts from +0 and adds in row-major order, exactly as the tap loops and the          \\
       reference do (so even the sign of a zero sum agrees). */                              \\
    PK_BODY void pk_avg_2x2_k_##SUFFIX(const T *PK_R r0, const T *PK_R r1,           \\
                                            Py_ssize_t lo, Py_ssize_t hi, T d,              \\
                                            T *PK_R out) {                                  \\
        for (Py_ssize_t o = lo; o < hi; ++o)                                                 \\
            out[o] = (((((T)0 + r0[2 * o]) + r0[2 * o + 1]) + r1[2 * o]) + r1[2 * o + 1]) / d;  \\
    }                                                                                        \\
    /* Over a plane's OH output rows (W columns), in one call (as pk_max_2x2_plane). */     \\
    PK_ROW void pk_avg_2x2_plane_##SUFFIX(const T *PK_R xp, Py_ssize_t W, Py_ssize_t OH,   \\
                                          Py_ssize_t OW, T d, T *PK_R out) {                \\
        for (Py_ssize_t oh = 0; oh < OH; ++oh) {                                            \\
            const T *PK_R r0 = xp + 2 * oh * W;                                             \\
            pk_prefetch_ahead(xp, 2 * oh + 2, 2, W * (Py_ssize_t)sizeof(T));                \\
            T *PK_R orow = out + oh * OW;                                                   \\
            PK_IN_BLOCKS(0, OW, pk_avg_2x2_k_##SUFFIX(r0, r0 + W, B_LO, B_HI, d, orow));    \\
        }                                                                                   \\
    }
    PK_DEFINE_ADD_TAP(float, f)
    PK_DEFINE_ADD_TAP(double, d)

    /* Windows m .. m + L-1 of pk_gather_3s2_k's inside columns (see below) as one vector
       block: the even columns 2m - pw get ((0 + q0[m - 1]) + q0[m]) (+ q1[m - 1]) + q1[m],
       the odd ones (0 + q0[m]) + q1[m], interleaved into 2L columns. */
    #if PK_VEC8
    #define PK_DEFINE_GATHER3S2_V(T, SUFFIX, VS, VT)                                        \\
    PK_BODY void pk_gather3s2_v_##SUFFIX(const T *PK_R q0, const T *PK_R q1, int two,       \\
                                         Py_ssize_t m, Py_ssize_t pw, T *PK_R row) {        \\
        const VT b = pk_ld8_##VS(q0 + m);                                                   \\
        VT e = ((VT){0} + pk_ld8_##VS(q0 + m - 1)) + b, o = (VT){0} + b;                    \\
        if (two) {                                                                          \\
            const VT d = pk_ld8_##VS(q1 + m);                                               \\
            e = (e + pk_ld8_##VS(q1 + m - 1)) + d;                                          \\
            o = o + d;                                                                      \\
        }                                                                                   \\
        const VT lo = __builtin_shuffle(e, o, PK_ZIPLO_##VS);                               \\
        const VT hi = __builtin_shuffle(e, o, PK_ZIPHI_##VS);                               \\
        __builtin_memcpy(row + 2 * m - pw, &lo, sizeof lo);                                 \\
        __builtin_memcpy(row + 2 * m - pw + pk_vl_##VS, &hi, sizeof hi);                    \\
    }
    PK_DEFINE_GATHER3S2_V(float, f, f, pk_f8)
    PK_DEFINE_GATHER3S2_V(double, d, d4, pk_d4)
    /* The same gather for one column of padding (pw == 1) and W == 2 n columns, as blocks
       that start at even columns, so that they can be streamed: the block at window m
       writes columns 2m .. 2m + 2L - 1, column 2j (t = 2j + 1) getting window j's share
       (0 + q0[j]) (+ q1[j]) and column 2j + 1 (t = 2j + 2) windows j and j + 1's,
       ((0 + q0[j]) + q0[j + 1]) (+ q1[j]) + q1[j + 1]. Past the last window the shares
       are +0 (the last block's top lane): (((0 + a) + 0) + c) + 0 is (0 + a) + c for every
       a and c, as 0 + a is never -0 and neither is the sum of it and c. Streaming stores;
       the caller makes sure every block is 16-byte aligned (nt_blocks_fit). */
    #define PK_DEFINE_GATHER3S2_NT(T, SUFFIX, VS, VT)                                       \\
    PK_BODY void pk_gather3s2_ntb_##SUFFIX(const T *PK_R q0, const T *PK_R q1, int two,     \\
                                           Py_ssize_t m, int last, T *PK_R row) {           \\
        const VT zero = {0};                                                                \\
        const VT a = pk_ld8_##VS(q0 + m);                                                   \\
        const VT b = last ? __builtin_shuffle(a, zero, PK_SHIFTDN_##VS)                     \\
                          : pk_ld8_##VS(q0 + m + 1);                                        \\
        VT o = zero + a, e = (zero + a) + b;                                                \\
        if (two) {                                                                          \\
            const VT c = pk_ld8_##VS(q1 + m);                                               \\
            const VT d = last ? __builtin_shuffle(c, zero, PK_SHIFTDN_##VS)                 \\
                              : pk_ld8_##VS(q1 + m + 1);                                    \\
            o = o + c;                                                                      \\
            e = (e + c) + d;                                                                \\
        }                                                                                   \\
        const VT lo = __builtin_shuffle(o, e, PK_ZIPLO_##VS);                               \\
        const VT hi = __builtin_shuffle(o, e, PK_ZIPHI_##VS);                               \\
        pk_nt_store32(row + 2 * m, &lo);                                                    \\
        pk_nt_store32(row + 2 * m + pk_vl_##VS, &hi);                                       \\
    }                                                                                       \\
    PK_BODY void pk_gather3s2_nt_##SUFFIX(const T *PK_R q0, const T *PK_R q1, int two,      \\
                                          Py_ssize_t n, T *PK_R row) {                      \\
        const Py_ssize_t NL = pk_vl_##VS;                                                   \\
        Py_ssize_t m = 0;                                                                   \\
        for (; m + NL <= n; m += NL)                                                        \\
            pk_gather3s2_ntb_##SUFFIX(q0, q1, two, m, m + NL == n, row);                    \\
        if (m < n) pk_gather3s2_ntb_##SUFFIX(q0, q1, two, n - NL, 1, row);                  \\
    }
    PK_DEFINE_GATHER3S2_NT(float, f, f, pk_f8)
    PK_DEFINE_GATHER3S2_NT(double, d, d4, pk_d4)
    #else
    #define pk_gather3s2_v_f(q0, q1, two, m, pw, row) ((void)0)  /* not called */
    #define pk_gather3s2_v_d(q0, q1, two, m, pw, row) ((void)0)
    #define pk_gather3s2_nt_f(q0, q1, two, n, row) ((void)0)
    #define pk_gather3s2_nt_d(q0, q1, two, n, row) ((void)0)
    #endif
    /* 3x3 windows, stride s (1 or 2, a constant after inlining), over outputs [lo, hi)
       whose windows lie inside the input: out[o] = the nine values summed from +0 in
       row-major order (the tap loops' and the reference's order), in registers. Window o
       starts at column o*s + c0 of rows r0, r1, r2. */
    #define PK_DEFINE_SUM_3X3(T, SUFFIX)                                                    \\
    PK_BODY void pk_sum_3x3_k_##SUFFIX(PK_TAPS(T), Py_ssize_t n, T *PK_R out) {             \\
        for (Py_ssize_t o = 0; o < n; ++o) {                                                \\
            T a = (T)0 + t0[o];                                                             \\
            a = a + t1[o]; a = a + t2[o];                                                   \\
            a = a + t3[o]; a = a + t4[o]; a = a + t5[o];                                    \\
            a = a + t6[o]; a = a + t7[o]; a = a + t8[o];                                    \\
            out[o] = a;                                                                     \\
        }                                                                                   \\
    }                                                                                       \\
    PK_ROW void pk_sum_3x3_##SUFFIX(const T *PK_R r0, const T *PK_R r1, const T *PK_R r2,  \\
                                    Py_ssize_t s, Py_ssize_t c0, Py_ssize_t lo,             \\
                                    Py_ssize_t hi, T *PK_R out) {                           \\
        PK_3X3_CHUNKS(T, r0, r1, r2, s, c0, lo, hi,                                         \\
            PK_IN_BLOCKS(0, N, pk_sum_3x3_k_##SUFFIX(PK_Q(B_LO), B_HI - B_LO,               \\
                                                     out + O0 + B_LO)));                    \\
    }                                                                                       \\
    /* Mean backward for kernel 3, stride 2 along the width, in gather form: every input  \\
       column iw of one row gets, in window order, the shares of the windows covering it   \\
       from the one or two output rows q0, q1 (q1 NULL: one row) that cover the input row, \\
       summed from +0: exactly the reference's scatter order, written once, no zero fill.  \\
       Column iw is covered by windows m - 1 and m when t = iw + pw = 2m, by m alone when  \\
       t = 2m + 1 (those in [0, n_out)). */                                                  \\
    static inline T pk_share_3s2_##SUFFIX(const T *PK_R q, Py_ssize_t t, Py_ssize_t n_out, \\
                                          T acc) {                                          \\
        const Py_ssize_t m = t >> 1;                                                        \\
        if (!(t & 1) && m >= 1 && m - 1 < n_out) acc = acc + q[m - 1];                       \\
        if (m < n_out) acc = acc + q[m];                                                    \\
        return acc;                                                                         \\
    }                                                                                       \\
    PK_BODY void pk_gather2_k_##SUFFIX(const T *PK_R q0, const T *PK_R q1, Py_ssize_t lo,  \\
                                       Py_ssize_t hi, Py_ssize_t pw, T *PK_R row) {         \\
        for (Py_ssize_t m = lo; m < hi; ++m) {                                              \\
            row[2 * m - pw] = ((((T)0 + q0[m - 1]) + q0[m]) + q1[m - 1]) + q1[m];            \\
            row[2 * m + 1 - pw] = ((T)0 + q0[m]) + q1[m];                                   \\
        }                                                                                   \\
    }                                                                                       \\
    PK_BODY void pk_gather1_k_##SUFFIX(const T *PK_R q0, Py_ssize_t lo, Py_ssize_t hi,     \\
                                       Py_ssize_t pw, T *PK_R row) {                        \\
        for (Py_ssize_t m = lo; m < hi; ++m) {                                              \\
            row[2 * m - pw] = ((T)0 + q0[m - 1]) + q0[m];                                   \\
            row[2 * m + 1 - pw] = (T)0 + q0[m];                                             \\
        }                                                                                   \\
    }                                                                                       \\
    PK_BODY void pk_gather_3s2_k_##SUFFIX(const T *PK_R q0, const T *PK_R q1,               \\
                                               int two, Py_ssize_t n_out, Py_ssize_t pw,    \\
                                               Py_ssize_t W, T *PK_R row, const int nt) {   \\
        if (PK_VEC8 && nt) {  /* pw == 1, W == 2 n_out, aligned blocks: see above */        \\
            pk_gather3s2_nt_##SUFFIX(q0, q1, two, n_out, row);                              \\
            return;                                                                         \\
        }                                                                                   \\
        /* columns whose windows are all in [0, n_out): t = 2m, 2m + 1 for m in [1, n_out) */\\
        Py_ssize_t m_lo = 1, m_hi = n_out;                                                  \\
        if (m_hi > (W - 2 + pw) / 2 + 1) m_hi = (W - 2 + pw) / 2 + 1;                        \\
        if (m_hi < m_lo) m_hi = m_lo;                                                       \\
        Py_ssize_t iw = 0;                                                                  \\
        for (; iw < 2 * m_lo - pw && iw < W; ++iw) {                                        \\
            T a = pk_share_3s2_##SUFFIX(q0, iw + pw, n_out, (T)0);                          \\
            row[iw] = two ? pk_share_3s2_##SUFFIX(q1, iw + pw, n_out, a) : a;                \\
        }                                                                                   \\
        if (PK_VEC8 && m_hi - m_lo >= PK_VL_##SUFFIX) {                                     \\
            /* vector blocks, the last one overlapping the one before */                    \\
            const Py_ssize_t NL = PK_VL_##SUFFIX;                                           \\
            Py_ssize_t m = m_lo;                                                            \\
            for (; m + NL <= m_hi; m += NL)                                                 \\
                pk_gather3s2_v_##SUFFIX(q0, q1, two, m, pw, row);                           \\
            if (m < m_hi) pk_gather3s2_v_##SUFFIX(q0, q1, two, m_hi - NL, pw, row);          \\
        } else if (two)                                                                     \\
            PK_IN_BLOCKS(m_lo, m_hi, pk_gather2_k_##SUFFIX(q0, q1, B_LO, B_HI, pw, row));   \\
        else                                                                                \\
            PK_IN_BLOCKS(m_lo, m_hi, pk_gather1_k_##SUFFIX(q0, B_LO, B_HI, pw, row));       \\
        iw = 2 * m_hi - pw;                                                                 \\
        if (iw < 0) iw = 0;                                                                 \\
        for (; iw < W; ++iw) {                                                              \\
            T a = pk_share_3s2_##SUFFIX(q0, iw + pw, n_out, (T)0);                          \\
            row[iw] = two ? pk_share_3s2_##SUFFIX(q1, iw + pw, n_out, a) : a;                \\
        }                                                                                   \\
    }                                                                                       \\
    PK_ROW void pk_gather_3s2_##SUFFIX(const T *PK_R q0, const T *PK_R q1,                 \\
                                       Py_ssize_t n_out, Py_ssize_t pw, Py_ssize_t W,       \\
                                       T *PK_R row, int nt) {                               \\
        if (nt && q1) pk_gather_3s2_k_##SUFFIX(q0, q1, 1, n_out, pw, W, row, 1);            \\
        else if (nt) pk_gather_3s2_k_##SUFFIX(q0, q0, 0, n_out, pw, W, row, 1);             \\
        else if (q1) pk_gather_3s2_k_##SUFFIX(q0, q1, 1, n_out, pw, W, row, 0);             \\
        else pk_gather_3s2_k_##SUFFIX(q0, q0, 0, n_out, pw, W, row, 0);                     \\
    }                                                                                       \\
    /* The same for a whole plane from its shares q (OH rows of OW): input row ih gets     \\
       the shares of output rows oh0 and oh1 (ih + ph = 2a: a - 1 and a; = 2a + 1: a     \\
       alone), clipped to [0, OH); a row no window covers gets 0. One call per plane:     \\
       on small planes the per-row call cost as much as the row. nt: streamed rows (the    \\
       caller makes sure every row is covered, pw == 1 and W == 2 OW, blocks aligned). */  \\
    PK_BODY void pk_gather_3s2_rows_##SUFFIX(const T *PK_R q, Py_ssize_t OH, Py_ssize_t OW, \\
                                             Py_ssize_t H, Py_ssize_t W, Py_ssize_t ph,     \\
                                             Py_ssize_t pw, T *PK_R gip, const int nt) {    \\
        for (Py_ssize_t ih = 0; ih < H; ++ih) {                                             \\
            const Py_ssize_t t = ih + ph, a = t >> 1;                                       \\
            Py_ssize_t oh0 = (t & 1) ? a : a - 1, oh1 = a < OH - 1 ? a : OH - 1;            \\
            if (oh0 < 0) oh0 = 0;                                                           \\
            T *PK_R row = gip + ih * W;                                                     \\
            if (oh0 > oh1) {                                                                \\
                for (Py_ssize_t c = 0; c < W; ++c) row[c] = 0;                              \\
            } else if (oh1 > oh0) {                                                         \\
                pk_gather_3s2_k_##SUFFIX(q + oh0 * OW, q + oh1 * OW, 1, OW, pw, W, row, nt);\\
            } else {                                                                        \\
                pk_gather_3s2_k_##SUFFIX(q + oh0 * OW, q + oh0 * OW, 0, OW, pw, W, row, nt);\\
            }                                                                               \\
        }                                                                                   \\
    }                                                                                       \\
    PK_ROW void pk_gather_3s2_plane_##SUFFIX(const T *PK_R q, Py_ssize_t OH, Py_ssize_t OW, \\
                                             Py_ssize_t H, Py_ssize_t W, Py_ssize_t ph,     \\
                                             Py_ssize_t pw, T *PK_R gip, int nt) {          \\
        if (nt) pk_gather_3s2_rows_##SUFFIX(q, OH, OW, H, W, ph, pw, gip, 1);               \\
        else pk_gather_3s2_rows_##SUFFIX(q, OH, OW, H, W, ph, pw, gip, 0);                  \\
    }
    PK_DEFINE_SUM_3X3(float, f)
    PK_DEFINE_SUM_3X3(double, d)

    /* Mean of 3x3 windows with column stride 2, one output row: the window rows are r0 and,
       when not NULL, r1 and r2 (only the rows inside the input); out[o] = the sum of window
       o's values inside the input, from +0 in row-major order (the reference's order), over
       (hcount * wcount[o]), or over d when wcount is NULL. Windows [lo, hi) lie inside the
       row, the others overhang an edge. As in the separable max, blocks of 8 windows split
       the columns in registers (gcc), and with one column of left padding the first block
       takes window 0 too: its missing column is -0.0, which leaves any sum unchanged (x +
       -0.0 == x for every x, -0.0 and NaN included), so the sums stay the reference's bit
       for bit. */
    #define PK_DEFINE_MEAN3S2(T, SUFFIX, VS, VT, VM)                                        \\
    static inline T pk_mean3_edge_##SUFFIX(const T *r0, const T *r1, const T *r2,          \\
                                           Py_ssize_t W, Py_ssize_t o, Py_ssize_t pw) {     \\
        Py_ssize_t cs = 2 * o - pw, ce = 2 * o - pw + 3;                                    \\
        if (cs < 0) cs = 0;                                                                 \\
        if (ce > W) ce = W;                                                                 \\
        T a = 0;                                                                            \\
        for (Py_ssize_t c = cs; c < ce; ++c) a = a + r0[c];                                 \\
        if (r1) for (Py_ssize_t c = cs; c < ce; ++c) a = a + r1[c];                         \\
        if (r2) for (Py_ssize_t c = cs; c < ce; ++c) a = a + r2[c];                         \\
        return a;                                                                           \\
    }                                                                                       \\
    PK_MEAN3S2_VEC(T, SUFFIX, VS, VT, VM)                                                   \\
    PK_BODY void pk_mean3s2_##SUFFIX(const T *PK_R r0, const T *PK_R r1, const T *PK_R r2, \\
                                    Py_ssize_t W, Py_ssize_t OW, Py_ssize_t pw,             \\
                                    Py_ssize_t lo, Py_ssize_t hi, T hcount,                 \\
                                    const T *PK_R wcount, T d, T *PK_R out) {               \\
        const Py_ssize_t NL = pk_vl_##VS;  /* windows per vector block */                  \\
        Py_ssize_t o = 0;                                                                   \\
        if (PK_VEC8 && pw == 1 && lo == 1 && hi >= NL) {                                    \\
            pk_mean3_l8_##SUFFIX(r0, r1, r2, hcount, wcount, d, out);                       \\
            o = NL;                                                                         \\
        }                                                                                   \\
        for (; o < lo; ++o)                                                                 \\
            out[o] = pk_mean3_edge_##SUFFIX(r0, r1, r2, W, o, pw)                           \\
                     / (wcount ? hcount * wcount[o] : d);                                   \\
        if (PK_VEC8 && o < hi && hi - lo >= NL) {                                           \\
            for (; o + NL <= hi; o += NL)                                                   \\
                pk_mean3_v8_##SUFFIX(r0, r1, r2, 2 * o - pw, o, hcount, wcount, d, out);    \\
            if (o < hi)  /* the last block overlaps the one before; starts at >= lo */       \\
                pk_mean3_v8_##SUFFIX(r0, r1, r2, 2 * (hi - NL) - pw, hi - NL, hcount,       \\
                                     wcount, d, out);                                       \\
            o = hi;                                                                         \\
        }                                                                                   \\
        for (; o < OW; ++o)                                                                 \\
            out[o] = pk_mean3_edge_##SUFFIX(r0, r1, r2, W, o, pw)                           \\
                     / (wcount ? hcount * wcount[o] : d);                                   \\
    }                                                                                       \\
    /* A whole plane (H x W), row stride sh, padding ph: output row oh averages the input  \\
       rows [max(hs, 0), min(hs + 3, H)), hs = oh * sh - ph, its divisor's height part      \\
       being the window clipped to the padded extent (count_include_pad) or those rows.     \\
       One call per plane, as pk_max3s2_plane. */                                          \\
    PK_ROW void pk_mean3s2_plane_##SUFFIX(const T *PK_R xp, Py_ssize_t H, Py_ssize_t W,     \\
                                          Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t sh,      \\
                                          Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t lo,      \\
                                          Py_ssize_t hi, int count_include_pad,             \\
                                          const T *PK_R wcount, T d, T *PK_R out) {         \\
        /* Rows of at most 4 vector blocks go two at a time where they can (pk_mean3s2_x2): \\
           their few independent chains per row left the core waiting. (64, 256, 28, 28)    \\
           float32, 2 threads: 2.41 -> 2.04 ms; (64, 64, 56, 56): 2.71 -> 2.44 ms; float64  \\
           28 x 28: 4.8 -> 4.4 ms. With more blocks, a row's own chains overlap: float64    \\
           56 x 56 (7 blocks a row) went from 7.0 to 8.9 ms on one thread in pairs, float32 \\
           112 x 112 (7 blocks) was level. */                                               \\
        const int pair = PK_VEC8 && sh == 2 && hi - lo >= pk_vl_##VS                        \\
                         && OW <= 4 * pk_vl_##VS;                                           \\
        for (Py_ssize_t oh = 0; oh < OH; ++oh) {                                            \\
            const Py_ssize_t hs = oh * sh - ph;                                             \\
            if (pair && oh + 1 < OH && hs >= 0 && hs + 5 <= H) {                            \\
                /* two output rows whose five input rows are inside the plane */            \\
                pk_prefetch_ahead(xp, hs + 3, sh, W * (Py_ssize_t)sizeof(T));               \\
                pk_prefetch_ahead(xp, hs + 5, sh, W * (Py_ssize_t)sizeof(T));               \\
                pk_mean3s2_x2_##SUFFIX(xp + hs * W, xp + (hs + 1) * W, xp + (hs + 2) * W,   \\
                                       xp + (hs + 3) * W, xp + (hs + 4) * W, W, OW, pw, lo, \\
                                       hi, (T)3, wcount, d, out + oh * OW,                  \\
                                       out + (oh + 1) * OW);                                \\
                ++oh;                                                                       \\
                continue;                                                                   \\
            }                                                                               \\
            const Py_ssize_t he = hs + 3 < H + ph ? hs + 3 : H + ph;                        \\
            pk_prefetch_ahead(xp, hs + 3, sh, W * (Py_ssize_t)sizeof(T));                   \\
            const Py_ssize_t first = hs > 0 ? hs : 0, last = he < H ? he : H;               \\
            const Py_ssize_t hcount = count_include_pad ? he - hs : last - first;           \\
            pk_mean3s2_##SUFFIX(xp + first * W,                                             \\
                                last - first >= 2 ? xp + (first + 1) * W : NULL,            \\
                                last - first >= 3 ? xp + (first + 2) * W : NULL,            \\
                                W, OW, pw, lo, hi, (T)hcount, wcount, d, out + oh * OW);    \\
        }                                                                                   \\
    }
    #if PK_VEC8
    #define PK_MEAN3S2_VEC(T, SUFFIX, VS, VT, VM)                                           \\
    /* a + the three taps of 8 windows, window i reading p[2i], p[2i + 1], p[2i + 2] */     \\
    PK_BODY VT pk_sum3_v8_##SUFFIX(VT a, const T *PK_R p) {                                 \\
        VT t0, t1, t2;                                                                      \\
        pk_taps3_##VS(p, &t0, &t1, &t2);                                                    \\
        return ((a + t0) + t1) + t2;                                                        \\
    }                                                                                       \\
    /* the same for windows 0..7 with one column of left padding (p = the row; -0.0 for    \\
       window 0's missing column) */                                                        \\
    PK_BODY VT pk_sum3_l8_##SUFFIX(VT a, const T *PK_R p) {                                 \\
        VT t0, t1, t2;                                                                      \\
        pk_taps3_left_##VS(p, 0, &t0, &t1, &t2);                                            \\
        return ((a + t0) + t1) + t2;                                                        \\
    }                                                                                       \\
    PK_BODY void pk_mean3_store_##SUFFIX(VT a, Py_ssize_t o, T hcount,                     \\
                                         const T *PK_R wcount, T d, T *PK_R out) {          \\
        if (wcount) a = a / (hcount * pk_ld8_##VS(wcount + o));                             \\
        else a = a / d;                                                                     \\
        __builtin_memcpy(out + o, &a, sizeof a);                                            \\
    }                                                                                       \\
    PK_BODY void pk_mean3_v8_##SUFFIX(const T *PK_R r0, const T *PK_R r1,                  \\
                                      const T *PK_R r2, Py_ssize_t c, Py_ssize_t o,         \\
                                      T hcount, const T *PK_R wcount, T d, T *PK_R out) {   \\
        VT a = pk_sum3_v8_##SUFFIX((VT){0}, r0 + c);                                        \\
        if (r1) a = pk_sum3_v8_##SUFFIX(a, r1 + c);                                         \\
        if (r2) a = pk_sum3_v8_##SUFFIX(a, r2 + c);                                         \\
        pk_mean3_store_##SUFFIX(a, o, hcount, wcount, d, out);                              \\
    }                                                                                       \\
    PK_BODY void pk_mean3_l8_##SUFFIX(const T *PK_R r0, const T *PK_R r1,                  \\
                                      const T *PK_R r2, T hcount, const T *PK_R wcount,     \\
                                      T d, T *PK_R out) {                                   \\
        VT a = pk_sum3_l8_##SUFFIX((VT){0}, r0);                                            \\
        if (r1) a = pk_sum3_l8_##SUFFIX(a, r1);                                             \\
        if (r2) a = pk_sum3_l8_##SUFFIX(a, r2);                                             \\
        pk_mean3_store_##SUFFIX(a, 0, hcount, wcount, d, out);                              \\
    }                                                                                       \\
    /* Windows o .. o + 7 of two output rows at once, row stride 2: rows ra, rb, rc for     \\
       the first (out0), rc, rd, re for the second (out1), the shared row's taps made once. \\
       Each window's sum is a chain of nine dependent additions and a division (about 50    \\
       cycles); made a row at a time, a row's chains ran one after the other, and two rows' \\
       independent chains in one block let the core overlap them. left: windows 0 .. 7      \\
       with one column of left padding (as pk_mean3_l8, c unused). */                       \\
    PK_BODY void pk_mean3_x2_##SUFFIX(const T *PK_R ra, const T *PK_R rb, const T *PK_R rc, \\
                                      const T *PK_R rd, const T *PK_R re, Py_ssize_t c,     \\
                                      Py_ssize_t o, int left, T hcount,                     \\
                                      const T *PK_R wcount, T d, T *PK_R out0,              \\
                                      T *PK_R out1) {                                       \\
        VT t0, t1, t2, s0 = {0}, s1 = {0};                                                  \\
        s0 = left ? pk_sum3_l8_##SUFFIX(s0, ra) : pk_sum3_v8_##SUFFIX(s0, ra + c);          \\
        s0 = left ? pk_sum3_l8_##SUFFIX(s0, rb) : pk_sum3_v8_##SUFFIX(s0, rb + c);          \\
        if (left) pk_taps3_left_##VS(rc, 0, &t0, &t1, &t2);                                 \\
        else pk_taps3_##VS(rc + c, &t0, &t1, &t2);                                          \\
        s0 = ((s0 + t0) + t1) + t2;                                                         \\
        s1 = ((s1 + t0) + t1) + t2;                                                         \\
        s1 = left ? pk_sum3_l8_##SUFFIX(s1, rd) : pk_sum3_v8_##SUFFIX(s1, rd + c);          \\
        s1 = left ? pk_sum3_l8_##SUFFIX(s1, re) : pk_sum3_v8_##SUFFIX(s1, re + c);          \\
        pk_mean3_store_##SUFFIX(s0, o, hcount, wcount, d, out0);                            \\
        pk_mean3_store_##SUFFIX(s1, o, hcount, wcount, d, out1);                            \\
    }                                                                                       \\
    /* Windows [from, to) of both rows of pk_mean3s2_x2, one at a time (they overhang an    \\
       edge). */                                                                            \\
    static inline void pk_mean3_edges_x2_##SUFFIX(const T *ra, const T *rb, const T *rc,    \\
                                                  const T *rd, const T *re, Py_ssize_t W,   \\
                                                  Py_ssize_t pw, Py_ssize_t from,           \\
                                                  Py_ssize_t to, T hcount, const T *wcount, \\
                                                  T d, T *out0, T *out1) {                  \\
        for (Py_ssize_t o = from; o < to; ++o) {                                            \\
            const T div = wcount ? hcount * wcount[o] : d;                                  \\
            out0[o] = pk_mean3_edge_##SUFFIX(ra, rb, rc, W, o, pw) / div;                   \\
            out1[o] = pk_mean3_edge_##SUFFIX(rc, rd, re, W, o, pw) / div;                   \\
        }                                                                                   \\
    }                                                                                       \\
    /* Output rows out0 and out1 of pk_mean3s2 from input rows ra .. re (all inside the     \\
       plane, so both rows' hcount is the same), in blocks of two rows (pk_mean3_x2); the   \\
       windows that overhang an edge one at a time. Needs hi - lo >= the block length. */   \\
    PK_BODY void pk_mean3s2_x2_##SUFFIX(const T *PK_R ra, const T *PK_R rb, const T *PK_R rc,\\
                                        const T *PK_R rd, const T *PK_R re, Py_ssize_t W,   \\
                                        Py_ssize_t OW, Py_ssize_t pw, Py_ssize_t lo,        \\
                                        Py_ssize_t hi, T hcount, const T *PK_R wcount, T d, \\
                                        T *PK_R out0, T *PK_R out1) {                       \\
        const Py_ssize_t NL = pk_vl_##VS;  /* windows per vector block */                   \\
        Py_ssize_t o = 0;                                                                   \\
        if (pw == 1 && lo == 1) {                                                           \\
            pk_mean3_x2_##SUFFIX(ra, rb, rc, rd, re, 0, 0, 1, hcount, wcount, d, out0, out1);\\
            o = NL;                                                                         \\
        }                                                                                   \\
        pk_mean3_edges_x2_##SUFFIX(ra, rb, rc, rd, re, W, pw, o, lo, hcount, wcount, d, out0,\\
                                   out1);                                                   \\
        if (o < lo) o = lo;                                                                 \\
        for (; o + NL <= hi; o += NL)                                                       \\
            pk_mean3_x2_##SUFFIX(ra, rb, rc, rd, re, 2 * o - pw, o, 0, hcount, wcount, d,   \\
                                 out0, out1);                                               \\
        if (o < hi) {  /* the last block overlaps the one before; starts at >= lo */        \\
            pk_mean3_x2_##SUFFIX(ra, rb, rc, rd, re, 2 * (hi - NL) - pw, hi - NL, 0, hcount,\\
                                 wcount, d, out0, out1);                                    \\
            o = hi;                                                                         \\
        }                                                                                   \\
        pk_mean3_edges_x2_##SUFFIX(ra, rb, rc, rd, re, W, pw, o, OW, hcount, wcount, d, out0,\\
                                   out1);                                                   \\
    }
    #else
    #define PK_MEAN3S2_VEC(T, SUFFIX, VS, VT, VM)                                           \\
    static inline void pk_mean3_v8_##SUFFIX(const T *r0, const T *r1, const T *r2,         \\
                                            Py_ssize_t c, Py_ssize_t o, T hcount,           \\
                                            const T *wcount, T d, T *out) {                 \\
        (void)r0; (void)r1; (void)r2; (void)c; (void)o; (void)hcount; (void)wcount;         \\
        (void)d; (void)out;  /* not called: PK_VEC8 is 0 */                                 \\
    }                                                                                       \\
    static inline void pk_mean3_l8_##SUFFIX(const T *r0, const T *r1, const T *r2,         \\
                                            T hcount, const T *wcount, T d, T *out) {       \\
        (void)r0; (void)r1; (void)r2; (void)hcount; (void)wcount; (void)d; (void)out;       \\
    }                                                                                       \\
    static inline void pk_mean3s2_x2_##SUFFIX(const T *ra, const T *rb, const T *rc,        \\
                                              const T *rd, const T *re, Py_ssize_t W,       \\
                                              Py_ssize_t OW, Py_ssize_t pw, Py_ssize_t lo,  \\
                                              Py_ssize_t hi, T hcount, const T *wcount, T d,\\
                                              T *out0, T *out1) {                           \\
        (void)ra; (void)rb; (void)rc; (void)rd; (void)re; (void)W; (void)OW; (void)pw;      \\
        (void)lo; (void)hi; (void)hcount; (void)wcount; (void)d; (void)out0; (void)out1;    \\
    }
    #endif
    #if PK_VEC8
    PK_DEFINE_MEAN3S2(float, f, f, pk_f8, pk_i8)
    PK_DEFINE_MEAN3S2(double, d, d4, pk_d4, pk_l4)
    #else
    PK_DEFINE_MEAN3S2(float, f, f, void, void)
    PK_DEFINE_MEAN3S2(double, d, d4, void, void)
    #endif

    /* Mean backward of 2x2 windows with stride 2 and no padding, one output row: the share
       v[o] = (T)0 + g[o] / (hcount * wcount[o]) (over d when wcount is NULL) -- pk_scaled's
       value then pk_expand_row's, bit for bit -- goes to columns 2o and 2o + 1 of row0 and,
       unless NULL, row1 (the window's second row); a partial last window (ceil mode) gets
       its share in its one column, and columns no window covers get 0. The shares stay in
       registers: stored by one loop and reloaded by the next, a 16-byte store read back by
       a 32-byte load stalls store forwarding, which cost more than the work on rows of 14
       outputs. nt: the vector blocks store with streaming stores; the caller makes sure
       they cover every row exactly (W == 2n, every block 16-byte aligned: nt_blocks_fit).
       The op writes four times what it reads, and a plain store first reads its line in:
       on (32, 64, 112, 112) outputs streaming took 2.4 ms where plain stores took 3.9
       (float32, 2 threads), 4.7 where they took 11.2 (float64). */
    #define PK_DEFINE_MEAN_BWD2(T, SUFFIX, VS, VT, VM)                                      \\
    static inline T pk_share_##SUFFIX(const T *PK_R g, Py_ssize_t o, T hcount,              \\
                                      const T *PK_R wcount, T d) {                          \\
        return (T)0 + g[o] / (wcount ? hcount * wcount[o] : d);                             \\
    }                                                                                       \\
    PK_MEAN_BWD2_VEC(T, SUFFIX, VS, VT, VM)                                                 \\
    PK_ROW void pk_mean_bwd2_##SUFFIX(const T *PK_R g, Py_ssize_t n, T hcount,             \\
                                      const T *PK_R wcount, T d, Py_ssize_t L,              \\
                                      T *PK_R row0, T *PK_R row1, int nt) {                 \\
        const Py_ssize_t full = (2 * n <= L) ? n : L / 2;                                   \\
        const Py_ssize_t NL = pk_vl_##VS;  /* windows per vector block */                  \\
        Py_ssize_t o = 0;                                                                   \\
        if (PK_VEC8 && full >= NL) {                                                        \\
            for (; o + NL <= full; o += NL)                                                 \\
                pk_mean_bwd2_v8_##SUFFIX(g, o, hcount, wcount, d, row0, row1, nt);          \\
            if (o < full)  /* the last block overlaps the one before */                     \\
                pk_mean_bwd2_v8_##SUFFIX(g, full - NL, hcount, wcount, d, row0, row1, nt);  \\
            o = full;                                                                       \\
        }                                                                                   \\
        for (; o < full; ++o) {                                                             \\
            const T v = pk_share_##SUFFIX(g, o, hcount, wcount, d);                         \\
            row0[2 * o] = v; row0[2 * o + 1] = v;                                           \\
            if (row1) { row1[2 * o] = v; row1[2 * o + 1] = v; }                             \\
        }                                                                                   \\
        Py_ssize_t c = 2 * full;                                                            \\
        if (full < n && c < L) {  /* partial window */                                      \\
            const T v = pk_share_##SUFFIX(g, full, hcount, wcount, d);                      \\
            row0[c] = v;                                                                    \\
            if (row1) row1[c] = v;                                                          \\
            ++c;                                                                            \\
        }                                                                                   \\
        for (; c < L; ++c) { row0[c] = 0; if (row1) row1[c] = 0; }                          \\
    }
    #if PK_VEC8
    #define PK_MEAN_BWD2_VEC(T, SUFFIX, VS, VT, VM)                                         \\
    PK_BODY void pk_mean_bwd2_v8_##SUFFIX(const T *PK_R g, Py_ssize_t o, T hcount,         \\
                                          const T *PK_R wcount, T d, T *PK_R row0,          \\
                                          T *PK_R row1, int nt) {                           \\
        enum { NL = pk_vl_##VS };                                                           \\
        const VT div = wcount ? hcount * pk_ld8_##VS(wcount + o) : (VT){0} + d;             \\
        const VT v = (VT){0} + pk_ld8_##VS(g + o) / div;                                    \\
        const VT lo = __builtin_shuffle(v, PK_DUPLO_##VS);                                  \\
        const VT hi = __builtin_shuffle(v, PK_DUPHI_##VS);                                  \\
        if (nt) {                                                                           \\
            pk_nt_store32(row0 + 2 * o, &lo);                                               \\
            pk_nt_store32(row0 + 2 * o + NL, &hi);                                          \\
            if (row1) {                                                                     \\
                pk_nt_store32(row1 + 2 * o, &lo);                                           \\
                pk_nt_store32(row1 + 2 * o + NL, &hi);                                      \\
            }                                                                               \\
            return;                                                                         \\
        }                                                                                   \\
        __builtin_memcpy(row0 + 2 * o, &lo, sizeof lo);                                     \\
        __builtin_memcpy(row0 + 2 * o + NL, &hi, sizeof hi);                                \\
        if (row1) {                                                                         \\
            __builtin_memcpy(row1 + 2 * o, &lo, sizeof lo);                                 \\
            __builtin_memcpy(row1 + 2 * o + NL, &hi, sizeof hi);                            \\
        }                                                                                   \\
    }
    #else
    #define PK_MEAN_BWD2_VEC(T, SUFFIX, VS, VT, VM)                                         \\
    static inline void pk_mean_bwd2_v8_##SUFFIX(const T *g, Py_ssize_t o, T hcount,        \\
                                                const T *wcount, T d, T *row0, T *row1,     \\
                                                int nt) {                                   \\
        (void)g; (void)o; (void)hcount; (void)wcount; (void)d; (void)row0; (void)row1;      \\
        (void)nt;                                                                           \\
    }
    #endif
    #if PK_VEC8
    PK_DEFINE_MEAN_BWD2(float, f, f, pk_f8, pk_i8)
    PK_DEFINE_MEAN_BWD2(double, d, d4, pk_d4, pk_l4)
    #else
    PK_DEFINE_MEAN_BWD2(float, f, f, void, void)
    PK_DEFINE_MEAN_BWD2(double, d, d4, void, void)
    #endif

    /* The transposed tap (backward): row[o*s + off] += q[o]. */
    #define PK_DEFINE_SCATTER_TAP(T, SUFFIX)                                                \\
    static inline void pk_scatter_tap_s_##SUFFIX(T *PK_R row, Py_ssize_t s, Py_ssize_t off,  \\
                                                Py_ssize_t lo, Py_ssize_t hi,               \\
                                                const T *PK_R q) {                          \\
        for (Py_ssize_t o = lo; o < hi; ++o) row[o * s + off] = row[o * s + off] + q[o];    \\
    }                                                                                       \\
    PK_ROW void pk_scatter_tap_##SUFFIX(T *PK_R row, Py_ssize_t s, Py_ssize_t off,    \\
                                              Py_ssize_t lo, Py_ssize_t hi,                 \\
                                              const T *PK_R q) {                            \\
        if (s == 1) pk_scatter_tap_s_##SUFFIX(row, 1, off, lo, hi, q);                      \\
        else if (s == 2) pk_scatter_tap_s_##SUFFIX(row, 2, off, lo, hi, q);                 \\
        else pk_scatter_tap_s_##SUFFIX(row, s, off, lo, hi, q);                             \\
    }                                                                                       \\
    /* Non-overlapping windows of width k (stride k, no padding): row[o*k + j] = q[o] for   \\
       every column o*k + j < L, and 0 in the columns no window covers. Writes the whole    \\
       row once, so the backward needs no zero-fill pass. */                                \\
    PK_BODY void pk_expand2_k_##SUFFIX(const T *PK_R q, Py_ssize_t lo, Py_ssize_t hi,      \\
                                       T *PK_R row) {                                       \\
        for (Py_ssize_t o = lo; o < hi; ++o) {                                              \\
            const T v = (T)0 + q[o];                                                        \\
            row[2 * o] = v; row[2 * o + 1] = v;                                             \\
        }                                                                                   \\
    }                                                                                       \\
    PK_ROW void pk_expand_row_##SUFFIX(const T *PK_R q, Py_ssize_t n, Py_ssize_t k,   \\
                                             Py_ssize_t L, T *PK_R row) {                   \\
        Py_ssize_t full = (n * k <= L) ? n : L / k;                                         \\
        /* (T)0 + q: a share of -0 lands as +0, as in the reference's zeros-then-add */      \\
        if (k == 2) {                                                                       \\
            PK_IN_BLOCKS(0, full, pk_expand2_k_##SUFFIX(q, B_LO, B_HI, row));               \\
        } else {                                                                            \\
            for (Py_ssize_t o = 0; o < full; ++o)                                           \\
                for (Py_ssize_t j = 0; j < k; ++j) row[o * k + j] = (T)0 + q[o];            \\
        }                                                                                   \\
        Py_ssize_t c = full * k;                                                            \\
        if (full < n) { for (; c < L; ++c) row[c] = (T)0 + q[full]; }  /* partial window */ \\
        for (; c < L; ++c) row[c] = 0;                                                      \\
    }
    PK_DEFINE_SCATTER_TAP(float, f)
    PK_DEFINE_SCATTER_TAP(double, d)

    /* Max backward on 2x2 tiles. max_pool2d_backward is not told the window; a plane whose
       gradient is (H // 2) x (W // 2) and whose every index lies in its own output's tile
       (rows 2oh, 2oh + 1, columns 2ow, 2ow + 1) is written in one pass, each position once,
       instead of zero-filled and scattered: (T)0 + g where the index points, +0 at the
       tile's other three positions and in an odd last row or column no tile covers. That
       is the zeros-then-add of the scatter bit for bit ((T)0 + g turns a -0 gradient into
       +0, as 0 + g does). pk_tile2_plane_* returns 0 as soon as a row holds an index
       outside its tile (a plane of 3x3 windows, say, is given up after its first row) and
       the caller scatters the plane instead. Indices in [0, H*W) with H*W < 2**31, as the
       caller makes sure: then d = index - tile origin fits in 32 bits exactly. */
    /* whether d = index - tile origin points into the tile, w being the row length */
    #define PK_IN_TILE2(d, w) ((d) == 0 || (d) == 1 || (d) == (w) || (d) == (w) + 1)
    /* whether the n indices ix of a row of outputs all lie in their tiles, tile o's origin
       being base + 2 o */
    static inline int pk_tile2_row_fits(const int64_t *ix, Py_ssize_t n, int64_t base,
                                        int64_t w) {
        for (Py_ssize_t o = 0; o < n; ++o) {
            const int64_t d = ix[o] - base - 2 * o;
            if (!PK_IN_TILE2(d, w)) return 0;
        }
        return 1;
    }
    #define PK_DEFINE_TILE2(T, SUFFIX)                                                      \\
    static inline int64_t pk_tile2_k_##SUFFIX(const T *PK_R g, const int64_t *PK_R ix,      \\
                                              Py_ssize_t n, int64_t base, int64_t w,        \\
                                              T *PK_R r0, T *PK_R r1) {                     \\
        int64_t miss = 0;                                                                   \\
        for (Py_ssize_t o = 0; o < n; ++o) {                                                \\
            const int64_t d = ix[o] - base - 2 * o;                                         \\
            const T v = (T)0 + g[o];                                                        \\
            r0[2 * o] = d == 0 ? v : 0;                                                     \\
            r0[2 * o + 1] = d == 1 ? v : 0;                                                 \\
            r1[2 * o] = d == w ? v : 0;                                                     \\
            r1[2 * o + 1] = d == w + 1 ? v : 0;                                             \\
            miss |= !PK_IN_TILE2(d, w);                                                     \\
        }                                                                                   \\
        return miss;                                                                        \\
    }                                                                                       \\
    /* The plane: gradient g and indices idx (OH x OW) into dst (H x W); 1 when done, 0    \\
       when an index lies outside its tile (dst then holds anything). Rows of a vector     \\
       block (PK_VL) of outputs or more in vector blocks, the last one overlapping the     \\
       one before (each position is a function of its own tile's index and gradient).     \\
       nt (every block 16-byte aligned, see nt_blocks_fit): the blocks are written with    \\
       streaming stores (pk_nt_store32), straight to a large output. */                    \\
    PK_BODY int pk_tile2_rows_##SUFFIX(const T *PK_R g, const int64_t *PK_R idx,            \\
                                       Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t H,          \\
                                       Py_ssize_t W, T *PK_R dst, const int nt) {           \\
        const Py_ssize_t NL = PK_VL_##SUFFIX;                                               \\
        for (Py_ssize_t oh = 0; oh < OH; ++oh) {                                            \\
            T *PK_R r0 = dst + 2 * oh * W;                                                  \\
            T *PK_R r1 = r0 + W;                                                            \\
            const int64_t base = (int64_t)(2 * oh) * W;                                     \\
            const T *PK_R gr = g + oh * OW;                                                 \\
            const int64_t *PK_R ir = idx + oh * OW;                                         \\
            int64_t miss;                                                                   \\
            if (PK_VEC8 && OW >= NL) {                                                      \\
                Py_ssize_t o = 0;                                                           \\
                PK_TILE2_MISS_##SUFFIX m = {0};                                             \\
                for (; o + NL <= OW; o += NL)                                               \\
                    m |= pk_tile2_v_##SUFFIX(gr, ir, o, base, W, r0, r1, nt);               \\
                if (o < OW) m |= pk_tile2_v_##SUFFIX(gr, ir, OW - NL, base, W, r0, r1, nt); \\
                miss = PK_TILE2_ANY(m, NL);                                                 \\
            } else {                                                                        \\
                miss = pk_tile2_k_##SUFFIX(gr, ir, OW, base, W, r0, r1);                    \\
            }                                                                               \\
            if (miss) return 0;                                                             \\
            for (Py_ssize_t c = 2 * OW; c < W; ++c) { r0[c] = 0; r1[c] = 0; }               \\
        }                                                                                   \\
        for (Py_ssize_t c = 2 * OH * W; c < H * W; ++c) dst[c] = 0;                         \\
        return 1;                                                                           \\
    }                                                                                       \\
    /* (nt a constant in each copy: a run-time flag in the blocks slowed the plain path) */ \\
    PK_ROW int pk_tile2_plane_##SUFFIX(const T *PK_R g, const int64_t *PK_R idx,            \\
                                       Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t H,          \\
                                       Py_ssize_t W, T *PK_R dst, int nt) {                 \\
        return nt ? pk_tile2_rows_##SUFFIX(g, idx, OH, OW, H, W, dst, 1)                    \\
                  : pk_tile2_rows_##SUFFIX(g, idx, OH, OW, H, W, dst, 0);                   \\
    }
    #if PK_VEC8
    #define PK_TILE2_MISS_f pk_i8
    #define PK_TILE2_MISS_d pk_l4
    /* whether any of the NL lanes of m is set */
    #define PK_TILE2_ANY(m, NL) __extension__({                                             \\
        int64_t any_ = 0;                                                                   \\
        for (int l_ = 0; l_ < (int)(NL); ++l_) any_ |= (m)[l_];                             \\
        any_;                                                                               \\
    })
    /* The four positions of L tiles (L = 8 floats or 4 doubles) from d = index - tile
       origin and the gradients' bits vi: each selected by a compare, interleaved into two
       2L-long runs of rows r0 and r1 (LO, HI: the interleaving masks). Returns the lanes
       whose index is outside its tile. */
    #define PK_DEFINE_TILE2_PUT(T, SUFFIX, KT, LO, HI)                                      \\
    PK_BODY KT pk_tile2_put_##SUFFIX(KT d, KT w, KT vi, Py_ssize_t o, T *PK_R r0,           \\
                                     T *PK_R r1, int nt) {                                  \\
        enum { NL = PK_VL_##SUFFIX };                                                       \\
        const KT m00 = d == 0, m01 = d == 1, m10 = d == w, m11 = d == w + 1;                \\
        const KT v00 = m00 & vi, v01 = m01 & vi, v10 = m10 & vi, v11 = m11 & vi;            \\
        const KT t0 = __builtin_shuffle(v00, v01, LO), t1 = __builtin_shuffle(v00, v01, HI);\\
        const KT t2 = __builtin_shuffle(v10, v11, LO), t3 = __builtin_shuffle(v10, v11, HI);\\
        if (nt) {                                                                           \\
            pk_nt_store32(r0 + 2 * o, &t0);                                                 \\
            pk_nt_store32(r0 + 2 * o + NL, &t1);                                            \\
            pk_nt_store32(r1 + 2 * o, &t2);                                                 \\
            pk_nt_store32(r1 + 2 * o + NL, &t3);                                            \\
        } else {                                                                            \\
            __builtin_memcpy(r0 + 2 * o, &t0, sizeof t0);                                   \\
            __builtin_memcpy(r0 + 2 * o + NL, &t1, sizeof t1);                              \\
            __builtin_memcpy(r1 + 2 * o, &t2, sizeof t2);                                   \\
            __builtin_memcpy(r1 + 2 * o + NL, &t3, sizeof t3);                              \\
        }                                                                                   \\
        return ~(m00 | m01 | m10 | m11);                                                    \\
    }
    PK_DEFINE_TILE2_PUT(float, f, pk_i8, PK_ZIPLO_f, PK_ZIPHI_f)
    PK_DEFINE_TILE2_PUT(double, d, pk_l4, PK_ZIPLO_d4, PK_ZIPHI_d4)
    /* Outputs o .. o + 7 (float): their 8 int64 indices narrowed to int32 (the low halves;
       d fits in 32 bits, see above). */
    PK_BODY pk_i8 pk_tile2_v_f(const float *PK_R g, const int64_t *PK_R ix, Py_ssize_t o,
                               int64_t base, int64_t w, float *PK_R r0, float *PK_R r1,
                               int nt) {
        pk_i8 a, b;
        __builtin_memcpy(&a, ix + o, 32);
        __builtin_memcpy(&b, ix + o + 4, 32);
        const pk_i8 d = __builtin_shuffle(__builtin_shuffle(a, b, PK_EVEN1_f), PK_PAIRS_f)
                        - (int32_t)(base + 2 * o) - (pk_i8){0, 2, 4, 6, 8, 10, 12, 14};
        pk_f8 v;
        __builtin_memcpy(&v, g + o, 32);
        v = (pk_f8){0} + v;
        return pk_tile2_put_f(d, (pk_i8){0} + (int32_t)w, (pk_i8)v, o, r0, r1, nt);
    }
    /* Outputs o .. o + 3 (double), the compares on the int64 indices themselves. */
    PK_BODY pk_l4 pk_tile2_v_d(const double *PK_R g, const int64_t *PK_R ix, Py_ssize_t o,
                               int64_t base, int64_t w, double *PK_R r0, double *PK_R r1,
                               int nt) {
        pk_l4 d;
        __builtin_memcpy(&d, ix + o, 32);
        d = d - (base + 2 * o) - (pk_l4){0, 2, 4, 6};
        pk_d4 v;
        __builtin_memcpy(&v, g + o, 32);
        v = (pk_d4){0} + v;
        return pk_tile2_put_d(d, (pk_l4){0} + w, (pk_l4)v, o, r0, r1, nt);
    }
    #else
    #define PK_TILE2_MISS_f int64_t  /* not used: PK_VEC8 is 0 */
    #define PK_TILE2_MISS_d int64_t
    #define PK_TILE2_ANY(m, NL) ((int64_t)(m))
    #define pk_tile2_v_f(g, ix, o, base, w, r0, r1, nt) 0  /* not called: PK_VEC8 is 0 */
    #define pk_tile2_v_d(g, ix, o, base, w, r0, r1, nt) 0
    #endif
    PK_DEFINE_TILE2(float, f)
    PK_DEFINE_TILE2(double, d)

    /* Max backward in gather form for windows of 3 rows and 3 columns, stride 2, one row
       and one column of padding (the ResNet stem's max pooling; "win3"). Window (r, c)
       covers rows 2r - 1 .. 2r + 1 and columns 2c - 1 .. 2c + 1, and k = index - (its
       top-left tap, padding or not) = dh W + dw with dh, dw in 0 .. 2 for an index inside
       it. Position (h, w) of the input lies in the windows of rows h/2 (h even) or
       (h - 1)/2 and (h + 1)/2 (h odd), and of columns likewise: one, two or four windows.
       Each position gets, in window order, the gradients of those whose index is that
       position, summed from +0; an unmatched window adds +0, which changes no sum (a sum
       from +0 is never -0), so each window's share is taken as v = 0 + gradient, or +0:
       the scatter's value bit for bit, written once, with no zero fill. Needs W == 2 OW
       (every column inside a window) and H == 2 OH - 1 or 2 OH, and W >= 4 (k names one
       tap only when W >= 3; with W == 2 an index in column 1 would read as window 0's
       padding column, and the plane be scattered). A plane with an index
       outside its window (or at a padding position) is given up: pk_win3_plane returns 0,
       the plane then holding anything, and the caller scatters it. Indices in [0, H*W)
       with H*W < 2**30, as the caller makes sure: k then fits in 32 bits exactly, and so
       do kend = 3 W and the other multiples of W compared with it (W < 2**29 when H >= 2;
       H == 1 uses 2 W).

       Window row r is read once, its blocks writing input rows 2r - 1 (the bottom taps of
       row r - 1, with its top ones) and 2r (its middle taps); its k, the k of the window to
       the right (kn), v and vn go to a work buffer for row 2r + 1 (two slots of four
       arrays, used in turn: the overlapping last block of a row reads the previous row's).

       float32 only, for planes larger than the L1 cache (max_pool2d_backward decides):
       the gather spends about a cycle per position where the scatter spends a few per
       window, so it wins only where the scatter's zero fill, adds and copy of the plane
       go through L2 (float32, (32, 64, 112, 112), 2 threads: 7.8 -> 6.7 ms); float64's
       four lanes a block made it slower than the scatter even there (11.8 -> 14.4 ms),
       and on 28x28 and 56x56 planes the float32 gather lost too (3.5 -> 4.8 ms). */
    /* Whether k (of a row whose taps are valid for kmin <= k < kend) is outside its
       window: the row test, or k mod W > 2 (k - dh W, dh the count of W and 2 W it
       reaches). The scalar loops' form; the vector blocks make the same test in lanes. */
    #define PK_WIN3_OUTSIDE(k, w, kmin, kend)                                               \
        (((k) < (kmin)) | ((k) >= (kend))                                                   \
         | ((k) - ((k) >= (w) ? (w) : 0) - ((k) >= 2 * (w) ? (w) : 0) > 2))
    /* Whether window 0's k0 points at its left tap column, which is padding */
    #define PK_WIN3_PAD0(k0, w) ((k0) == 0 || (k0) == (w) || (k0) == 2 * (w))
    /* The kernel's probe: whether the first window row of a plane (n windows, indices ix)
       lies inside its windows, as pk_win3_rows checks it: its top tap row is padding
       (kmin = W), its bottom one is row 1 when H > 1. */
    static inline int pk_win3_row_fits(const int64_t *ix, Py_ssize_t n, int64_t W,
                                       Py_ssize_t H) {
        const int64_t kend = H > 1 ? 3 * W : 2 * W;
        for (Py_ssize_t c = 0; c < n; ++c) {
            const int64_t k = ix[c] - (-W - 1 + 2 * c);
            if (PK_WIN3_OUTSIDE(k, W, W, kend)) return 0;
        }
        return n == 0 || !PK_WIN3_PAD0(ix[0] + W + 1, W);
    }
    /* The window-row ring of pk_win3: slot s of four arrays of n (k and kn as DT, int32
       for float, the vector lanes' width; v and vn as T). */
    #define PK_WIN3_SLOT(T, DT, work, n, s, K, KN, V, VN)                                   \\
        DT *PK_R K = (DT *)(work) + (s) * 2 * (n);                                         \\
        DT *PK_R KN = K + (n);                                                              \\
        T *PK_R V = (T *)((DT *)(work) + 4 * (n)) + (s) * 2 * (n);                          \\
        T *PK_R VN = V + (n);
    #define PK_DEFINE_WIN3(T, SUFFIX, DT)                                                   \\
    /* the length of one array of the work buffer: OW rounded up to whole blocks */         \\
    static inline Py_ssize_t pk_win3_slot_##SUFFIX(Py_ssize_t OW) {                         \\
        return (OW + PK_VL_##SUFFIX - 1) / PK_VL_##SUFFIX * PK_VL_##SUFFIX;                 \\
    }                                                                                       \\
    static inline size_t pk_win3_work_bytes_##SUFFIX(Py_ssize_t OW) {                       \\
        return (size_t)4 * pk_win3_slot_##SUFFIX(OW) * (sizeof(DT) + sizeof(T));            \\
    }                                                                                       \\
    /* The windows of window row r, one at a time (see above): rows ro (2r - 1, NULL      \\
       for r == 0, the previous row's values from pk..pvn) and re (2r); whether one is    \\
       outside its window: k < kmin (W for r == 0, whose top taps are padding), k >= kend \\
       (2 W where the bottom taps are past the plane) or k mod W > 2. */                   \\
    static inline int pk_win3_k_##SUFFIX(const int64_t *PK_R ix, const T *PK_R g,          \\
                                         Py_ssize_t OW, int64_t base, DT w, DT kmin,        \\
                                         DT kend,                                           \\
                                         const DT *PK_R pk, const DT *PK_R pkn,             \\
                                         const T *PK_R pv, const T *PK_R pvn,               \\
                                         DT *PK_R qk, DT *PK_R qkn, T *PK_R qv,             \\
                                         T *PK_R qvn, T *PK_R ro, T *PK_R re) {             \\
        int bad = 0;                                                                        \\
        for (Py_ssize_t c = 0; c < OW; ++c) {                                               \\
            const DT k = (DT)(ix[c] - base - 2 * c);                                        \\
            const DT kn = c + 1 < OW ? (DT)(ix[c + 1] - base - 2 * c - 2) : (DT)-1;         \\
            const T v = (T)0 + g[c], vn = c + 1 < OW ? (T)0 + g[c + 1] : (T)0;              \\
            bad |= PK_WIN3_OUTSIDE(k, w, kmin, kend);                                       \\
            if (ro) {                                                                       \\
                ro[2 * c] = (pk[c] == 2 * w + 1 ? pv[c] : (T)0) + (k == 1 ? v : (T)0);      \\
                ro[2 * c + 1] = (((pk[c] == 2 * w + 2 ? pv[c] : (T)0)                       \\
                                  + (pkn[c] == 2 * w ? pvn[c] : (T)0))                      \\
                                 + (k == 2 ? v : (T)0)) + (kn == 0 ? vn : (T)0);            \\
            }                                                                               \\
            re[2 * c] = k == w + 1 ? v : (T)0;                                              \\
            re[2 * c + 1] = (k == w + 2 ? v : (T)0) + (kn == w ? vn : (T)0);                \\
            qk[c] = k; qkn[c] = kn; qv[c] = v; qvn[c] = vn;                                 \\
        }                                                                                   \\
        return bad;                                                                         \\
    }                                                                                       \\
    /* The last row (H == 2 OH): the bottom taps of the last window row, from its values. */\\
    static inline void pk_win3_last_k_##SUFFIX(const DT *PK_R pk, const DT *PK_R pkn,      \\
                                               const T *PK_R pv, const T *PK_R pvn,         \\
                                               Py_ssize_t OW, DT w, T *PK_R row) {          \\
        for (Py_ssize_t c = 0; c < OW; ++c) {                                               \\
            row[2 * c] = pk[c] == 2 * w + 1 ? pv[c] : (T)0;                                 \\
            row[2 * c + 1] = (pk[c] == 2 * w + 2 ? pv[c] : (T)0)                            \\
                             + (pkn[c] == 2 * w ? pvn[c] : (T)0);                           \\
        }                                                                                   \\
    }
    #if PK_VEC8
    /* The same in vector blocks of PK_VL windows: the selects are bit masks of the
       compares. The window to the right is read from the indices and gradients again at
       c + 1 (the block's stores to the work buffer, read back one lane over, would stall
       on store forwarding), but for the last block, whose top lane has none: its lanes
       shifted down, -1 (no position) and +0 coming in. A block's windows sit in its lanes
       in the order PK_W3ORD (float: 0, 1, 4, 5, 2, 3, 6, 7), so that the even and odd
       columns interleave with in-lane unpacks alone (PK_W3LO, PK_W3HI), with no shuffle
       across the 128-bit halves; the int64 indices narrow to that order in one shuffle.
       The work buffer holds a block's values at slot j (block j, the last one overlapping
       the one before in the row, but not in the buffer). nt: streaming stores (every block
       16-byte aligned, see nt_blocks_fit). */
    #define PK_W3LANES_f ((pk_i8){0, 2, 8, 10, 4, 6, 12, 14})  /* 2 x PK_W3ORD */
    #define PK_W3ORD_f ((pk_i8){0, 1, 4, 5, 2, 3, 6, 7})
    #define PK_W3LO_f ((pk_i8){0, 8, 1, 9, 4, 12, 5, 13})
    #define PK_W3HI_f ((pk_i8){2, 10, 3, 11, 6, 14, 7, 15})
    #define PK_W3DN_f ((pk_i8){1, 4, 3, 6, 5, 2, 7, 8})  /* windows one to the right */
    #define PK_DEFINE_WIN3_V(T, SUFFIX, VS, VT, VM, DT)                                     \\
    PK_BODY void pk_win3_put_##SUFFIX(VT e, VT o, T *PK_R row, Py_ssize_t c, int nt) {     \\
        const VT lo = __builtin_shuffle(e, o, PK_W3LO_##VS);                                \\
        const VT hi = __builtin_shuffle(e, o, PK_W3HI_##VS);                                \\
        if (nt) {                                                                           \\
            pk_nt_store32(row + 2 * c, &lo);                                                \\
            pk_nt_store32(row + 2 * c + pk_vl_##VS, &hi);                                   \\
        } else {                                                                            \\
            __builtin_memcpy(row + 2 * c, &lo, sizeof lo);                                  \\
            __builtin_memcpy(row + 2 * c + pk_vl_##VS, &hi, sizeof hi);                     \\
        }                                                                                   \\
    }                                                                                       \\
    /* v where k == x, else +0 */                                                           \\
    PK_BODY VT pk_win3_sel_##SUFFIX(VM k, DT x, VT v) {                                     \\
        return (VT)((k == (VM){0} + x) & (VM)v);                                            \\
    }                                                                                       \\
    /* The bottom taps of the window row kept at slot s of the work buffer: their shares of \\
       the row below it, even columns (e) and odd ones (o, window c then c + 1) */          \\
    PK_BODY void pk_win3_bottom_##SUFFIX(const DT *PK_R pk, const DT *PK_R pkn,            \\
                                         const T *PK_R pv, const T *PK_R pvn, Py_ssize_t s, \\
                                         DT w, VT *e, VT *o) {                              \\
        VM a, an;                                                                           \\
        VT b, bn;                                                                           \\
        __builtin_memcpy(&a, pk + s, sizeof a);                                             \\
        __builtin_memcpy(&an, pkn + s, sizeof an);                                          \\
        __builtin_memcpy(&b, pv + s, sizeof b);                                             \\
        __builtin_memcpy(&bn, pvn + s, sizeof bn);                                          \\
        *e = pk_win3_sel_##SUFFIX(a, 2 * w + 1, b);                                         \\
        *o = pk_win3_sel_##SUFFIX(a, 2 * w + 2, b) + pk_win3_sel_##SUFFIX(an, 2 * w, bn);   \\
    }                                                                                       \\
    /* 0 + the gradients of windows c .. c + PK_VL - 1, in the order PK_W3ORD */           \\
    PK_BODY VT pk_win3_grad_##SUFFIX(const T *PK_R g) {                                     \\
        return (VT){0} + __builtin_shuffle(pk_ld8_##VS(g), PK_W3ORD_##VS);                   \\
    }                                                                                       \\
    PK_BODY VM pk_win3_blk_##SUFFIX(const int64_t *PK_R ix, const T *PK_R g, Py_ssize_t c, \\
                                    Py_ssize_t j, int last, int64_t base, DT w, DT kmin,    \\
                                    DT kend, const DT *PK_R pk, const DT *PK_R pkn,         \\
                                    const T *PK_R pv, const T *PK_R pvn, DT *PK_R qk,       \\
                                    DT *PK_R qkn, T *PK_R qv, T *PK_R qvn, T *PK_R ro,      \\
                                    T *PK_R re, const int nt) {                             \\
        const VM z = {0}, vw = z + w;                                                       \\
        const VT zero = {0};                                                                \\
        const Py_ssize_t s = j * pk_vl_##VS;                                                \\
        const VM k = pk_win3_rel_##SUFFIX(ix + c, base + 2 * c);                            \\
        const VT v = pk_win3_grad_##SUFFIX(g + c);                                          \\
        VM kn;                                                                              \\
        VT vn;                                                                              \\
        if (last) {                                                                         \\
            kn = __builtin_shuffle(k, z - 1, PK_W3DN_##VS);                                 \\
            vn = __builtin_shuffle(v, zero, PK_W3DN_##VS);                                  \\
        } else {                                                                            \\
            kn = pk_win3_rel_##SUFFIX(ix + c + 1, base + 2 * c + 2);                        \\
            vn = pk_win3_grad_##SUFFIX(g + c + 1);                                          \\
        }                                                                                   \\
        const VM dw = (k - (vw & (k >= vw))) - (vw & (k >= vw + vw));                       \\
        if (ro) {                                                                           \\
            VT e, o;                                                                        \\
            pk_win3_bottom_##SUFFIX(pk, pkn, pv, pvn, s, w, &e, &o);                        \\
            e = e + pk_win3_sel_##SUFFIX(k, 1, v);                                          \\
            o = (o + pk_win3_sel_##SUFFIX(k, 2, v)) + pk_win3_sel_##SUFFIX(kn, 0, vn);      \\
            pk_win3_put_##SUFFIX(e, o, ro, c, nt);                                          \\
        }                                                                                   \\
        pk_win3_put_##SUFFIX(pk_win3_sel_##SUFFIX(k, w + 1, v),                             \\
                             pk_win3_sel_##SUFFIX(k, w + 2, v)                              \\
                             + pk_win3_sel_##SUFFIX(kn, w, vn), re, c, nt);                 \\
        __builtin_memcpy(qk + s, &k, sizeof k);                                             \\
        __builtin_memcpy(qkn + s, &kn, sizeof kn);                                          \\
        __builtin_memcpy(qv + s, &v, sizeof v);                                             \\
        __builtin_memcpy(qvn + s, &vn, sizeof vn);                                          \\
        return (k < z + kmin) | (k >= z + kend) | (dw > z + 2);                             \\
    }                                                                                       \\
    PK_BODY void pk_win3_lastblk_##SUFFIX(const DT *PK_R pk, const DT *PK_R pkn,           \\
                                          const T *PK_R pv, const T *PK_R pvn,              \\
                                          Py_ssize_t c, Py_ssize_t j, DT w, T *PK_R row,    \\
                                          const int nt) {                                   \\
        VT e, o;                                                                            \\
        pk_win3_bottom_##SUFFIX(pk, pkn, pv, pvn, j * pk_vl_##VS, w, &e, &o);               \\
        pk_win3_put_##SUFFIX(e, o, row, c, nt);                                             \\
    }
    /* index - (b + 2i) for the windows i of a block, in the order PK_W3ORD: the int64
       indices' low halves (the difference fits in 32 bits, see above) */
    PK_BODY pk_i8 pk_win3_rel_f(const int64_t *PK_R ix, int64_t b) {
        pk_i8 a, c;
        __builtin_memcpy(&a, ix, 32);
        __builtin_memcpy(&c, ix + 4, 32);
        return __builtin_shuffle(a, c, PK_EVEN1_f) - (int32_t)b - PK_W3LANES_f;
    }
    PK_DEFINE_WIN3_V(float, f, f, pk_f8, pk_i8, int32_t)
    #define PK_WIN3_BAD_f pk_i8
    #else
    #define PK_WIN3_BAD_f int64_t  /* not used: PK_VEC8 is 0 */
    #define pk_win3_blk_f(...) 0  /* not called */
    #define pk_win3_lastblk_f(...) ((void)0)
    #endif
    #define PK_DEFINE_WIN3_PLANE(T, SUFFIX, DT)                                             \\
    PK_BODY int pk_win3_rows_##SUFFIX(const T *PK_R g, const int64_t *PK_R idx,             \\
                                      Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t H,           \\
                                      Py_ssize_t W, T *PK_R dst, void *PK_R work,           \\
                                      const int nt) {                                       \\
        const Py_ssize_t NL = PK_VL_##SUFFIX;                                               \\
        const int vec = PK_VEC8 && OW >= NL;                                                \\
        const Py_ssize_t n_slot = pk_win3_slot_##SUFFIX(OW);                                \\
        const DT w = (DT)W;                                                                 \\
        PK_WIN3_BAD_##SUFFIX vbad = {0};                                                    \\
        int bad = 0;                                                                        \\
        for (Py_ssize_t r = 0; r < OH; ++r) {                                               \\
            PK_WIN3_SLOT(T, DT, work, n_slot, (r - 1) & 1, pk, pkn, pv, pvn)                    \\
            PK_WIN3_SLOT(T, DT, work, n_slot, r & 1, qk, qkn, qv, qvn)                          \\
            const int64_t *PK_R ix = idx + r * OW;                                          \\
            const T *PK_R gr = g + r * OW;                                                  \\
            const int64_t base = (2 * r - 1) * (int64_t)W - 1;                              \\
            const DT kmin = r == 0 ? w : 0, kend = 2 * r + 1 < H ? 3 * w : 2 * w;           \\
            T *PK_R ro = r >= 1 ? dst + (2 * r - 1) * W : NULL;                             \\
            T *PK_R re = dst + 2 * r * W;                                                   \\
            if (vec) {                                                                      \\
                Py_ssize_t c = 0, j = 0;                                                    \\
                for (; c + NL <= OW; c += NL, ++j)                                          \\
                    vbad |= pk_win3_blk_##SUFFIX(ix, gr, c, j, c + NL == OW, base, w, kmin, \\
                                                 kend, pk, pkn, pv, pvn, qk, qkn, qv, qvn,  \\
                                                 ro, re, nt);                               \\
                if (c < OW)                                                                 \\
                    vbad |= pk_win3_blk_##SUFFIX(ix, gr, OW - NL, j, 1, base, w, kmin,      \\
                                                 kend, pk, pkn, pv, pvn, qk, qkn, qv, qvn,  \\
                                                 ro, re, nt);                               \\
            } else {                                                                        \\
                bad |= pk_win3_k_##SUFFIX(ix, gr, OW, base, w, kmin, kend, pk, pkn,         \\
                                          pv, pvn, qk, qkn, qv, qvn, ro, re);               \\
            }                                                                               \\
            bad |= PK_WIN3_PAD0(ix[0] - base, (int64_t)W);                                  \\
            /* the lanes are folded once a plane, and after its first window row: a plane   \\
               of other windows is given up there */                                        \\
            if (r == 0 && (bad || PK_TILE2_ANY(vbad, NL))) return 0;                        \\
        }                                                                                   \\
        if (H == 2 * OH) {  /* the last row: the bottom taps of the last window row */      \\
            PK_WIN3_SLOT(T, DT, work, n_slot, (OH - 1) & 1, pk, pkn, pv, pvn)                   \\
            T *PK_R row = dst + (H - 1) * W;                                                \\
            if (vec) {                                                                      \\
                Py_ssize_t c = 0, j = 0;                                                    \\
                for (; c + NL <= OW; c += NL, ++j)                                          \\
                    pk_win3_lastblk_##SUFFIX(pk, pkn, pv, pvn, c, j, w, row, nt);           \\
                if (c < OW)                                                                 \\
                    pk_win3_lastblk_##SUFFIX(pk, pkn, pv, pvn, OW - NL, j, w, row, nt);     \\
            } else {                                                                        \\
                pk_win3_last_k_##SUFFIX(pk, pkn, pv, pvn, OW, w, row);                      \\
            }                                                                               \\
        }                                                                                   \\
        return !(bad || PK_TILE2_ANY(vbad, NL));                                            \\
    }                                                                                       \\
    /* The plane (nt a constant in each copy, as pk_tile2_plane); 1 when done. */           \\
    PK_ROW int pk_win3_plane_##SUFFIX(const T *PK_R g, const int64_t *PK_R idx,             \\
                                      Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t H,           \\
                                      Py_ssize_t W, T *PK_R dst, void *PK_R work, int nt) { \\
        return nt ? pk_win3_rows_##SUFFIX(g, idx, OH, OW, H, W, dst, work, 1)               \\
                  : pk_win3_rows_##SUFFIX(g, idx, OH, OW, H, W, dst, work, 0);              \\
    }
    PK_DEFINE_WIN3(float, f, int32_t)
    PK_DEFINE_WIN3_PLANE(float, f, int32_t)

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
    void pk_prefetch_ahead(const void *base, Py_ssize_t end, Py_ssize_t sh,
                           Py_ssize_t row_bytes) noexcept nogil
    bint pk_tile2_row_fits(const int64_t *ix, Py_ssize_t n, int64_t base,
                           int64_t w) noexcept nogil
    int pk_tile2_plane_f(const float *g, const int64_t *idx, Py_ssize_t OH, Py_ssize_t OW,
                         Py_ssize_t H, Py_ssize_t W, float *dst, int nt) noexcept nogil
    int pk_tile2_plane_d(const double *g, const int64_t *idx, Py_ssize_t OH, Py_ssize_t OW,
                         Py_ssize_t H, Py_ssize_t W, double *dst, int nt) noexcept nogil
    bint pk_win3_row_fits(const int64_t *ix, Py_ssize_t n, int64_t W,
                          Py_ssize_t H) noexcept nogil
    size_t pk_win3_work_bytes_f(Py_ssize_t OW) noexcept nogil
    int pk_win3_plane_f(const float *g, const int64_t *idx, Py_ssize_t OH, Py_ssize_t OW,
                        Py_ssize_t H, Py_ssize_t W, float *dst, void *work,
                        int nt) noexcept nogil
    void pk_max_tap_f(const float *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                      Py_ssize_t hi, float *m, int32_t *k, int32_t rel) noexcept nogil
    void pk_max_tap_d(const double *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                      Py_ssize_t hi, double *m, int32_t *k, int32_t rel) noexcept nogil
    void pk_max_2x2_plane_f(const float *xp, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                            float *m, int64_t *idx) noexcept nogil
    void pk_max_2x2_plane_d(const double *xp, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                            double *m, int64_t *idx) noexcept nogil
    void pk_max_3x3_f(const float *r0, const float *r1, const float *r2, Py_ssize_t s,
                      Py_ssize_t c0, Py_ssize_t lo, Py_ssize_t hi, float *m, int64_t *idx,
                      int64_t b0, int32_t w) noexcept nogil
    void pk_max_3x3_d(const double *r0, const double *r1, const double *r2, Py_ssize_t s,
                      Py_ssize_t c0, Py_ssize_t lo, Py_ssize_t hi, double *m, int64_t *idx,
                      int64_t b0, int32_t w) noexcept nogil
    void pk_max_vtap_f(const float *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                       Py_ssize_t hi, float *m) noexcept nogil
    void pk_max_vtap_d(const double *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                       Py_ssize_t hi, double *m) noexcept nogil
    void pk_max_3x3_v_f(const float *r0, const float *r1, const float *r2, Py_ssize_t s,
                        Py_ssize_t c0, Py_ssize_t lo, Py_ssize_t hi, float *m) noexcept nogil
    void pk_max_3x3_v_d(const double *r0, const double *r1, const double *r2, Py_ssize_t s,
                        Py_ssize_t c0, Py_ssize_t lo, Py_ssize_t hi, double *m) noexcept nogil
    void pk_max_2x2_v_f(const float *r0, const float *r1, Py_ssize_t n_out,
                        float *m) noexcept nogil
    void pk_max_2x2_v_d(const double *r0, const double *r1, Py_ssize_t n_out,
                        double *m) noexcept nogil
    void pk_max3s2_plane_f(const float *xp, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH,
                           Py_ssize_t OW, Py_ssize_t sh, Py_ssize_t ph, Py_ssize_t pw,
                           Py_ssize_t lo, Py_ssize_t hi, float *out, int64_t *idx, float *hbuf,
                           int32_t *cbuf) noexcept nogil
    void pk_max3s2_plane_d(const double *xp, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH,
                           Py_ssize_t OW, Py_ssize_t sh, Py_ssize_t ph, Py_ssize_t pw,
                           Py_ssize_t lo, Py_ssize_t hi, double *out, int64_t *idx,
                           double *hbuf, int32_t *cbuf) noexcept nogil
    void pk_finish_indices(const int32_t *k, Py_ssize_t n, int64_t base, Py_ssize_t s,
                           int64_t *idx) noexcept nogil
    void pk_add_tap_f(const float *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                      Py_ssize_t hi, float *acc) noexcept nogil
    void pk_add_tap_d(const double *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                      Py_ssize_t hi, double *acc) noexcept nogil
    void pk_avg_2x2_plane_f(const float *xp, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                            float d, float *out) noexcept nogil
    void pk_avg_2x2_plane_d(const double *xp, Py_ssize_t W, Py_ssize_t OH, Py_ssize_t OW,
                            double d, double *out) noexcept nogil
    void pk_sum_3x3_f(const float *r0, const float *r1, const float *r2, Py_ssize_t s,
                      Py_ssize_t c0, Py_ssize_t lo, Py_ssize_t hi, float *out) noexcept nogil
    void pk_sum_3x3_d(const double *r0, const double *r1, const double *r2, Py_ssize_t s,
                      Py_ssize_t c0, Py_ssize_t lo, Py_ssize_t hi, double *out) noexcept nogil
    void pk_mean3s2_plane_f(const float *xp, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH,
                            Py_ssize_t OW, Py_ssize_t sh, Py_ssize_t ph, Py_ssize_t pw,
                            Py_ssize_t lo, Py_ssize_t hi, int count_include_pad,
                            const float *wcount, float d, float *out) noexcept nogil
    void pk_mean3s2_plane_d(const double *xp, Py_ssize_t H, Py_ssize_t W, Py_ssize_t OH,
                            Py_ssize_t OW, Py_ssize_t sh, Py_ssize_t ph, Py_ssize_t pw,
                            Py_ssize_t lo, Py_ssize_t hi, int count_include_pad,
                            const double *wcount, double d, double *out) noexcept nogil
    void pk_mean_bwd2_f(const float *g, Py_ssize_t n, float hcount, const float *wcount,
                        float d, Py_ssize_t L, float *row0, float *row1, int nt) noexcept nogil
    void pk_mean_bwd2_d(const double *g, Py_ssize_t n, double hcount, const double *wcount,
                        double d, Py_ssize_t L, double *row0, double *row1,
                        int nt) noexcept nogil
    void pk_gather_3s2_plane_f(const float *q, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t H,
                               Py_ssize_t W, Py_ssize_t ph, Py_ssize_t pw,
                               float *gip, int nt) noexcept nogil
    void pk_gather_3s2_plane_d(const double *q, Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t H,
                               Py_ssize_t W, Py_ssize_t ph, Py_ssize_t pw,
                               double *gip, int nt) noexcept nogil
    void pk_scaled_plane_f(const float *g, Py_ssize_t OH, Py_ssize_t n, const float *hcount,
                           const float *wcount, float d, float *q) noexcept nogil
    void pk_scaled_plane_d(const double *g, Py_ssize_t OH, Py_ssize_t n, const double *hcount,
                           const double *wcount, double d, double *q) noexcept nogil
    void pk_gather_3s2_f(const float *q0, const float *q1, Py_ssize_t n_out, Py_ssize_t pw,
                         Py_ssize_t W, float *row, int nt) noexcept nogil
    void pk_gather_3s2_d(const double *q0, const double *q1, Py_ssize_t n_out, Py_ssize_t pw,
                         Py_ssize_t W, double *row, int nt) noexcept nogil
    void pk_divide_f(float *acc, Py_ssize_t n, float hcount, const float *wcount) noexcept nogil
    void pk_divide_d(double *acc, Py_ssize_t n, double hcount,
                     const double *wcount) noexcept nogil
    void pk_divide_const_f(float *acc, Py_ssize_t n, float d) noexcept nogil
    void pk_divide_const_d(double *acc, Py_ssize_t n, double d) noexcept nogil
    void pk_scaled_f(const float *g, Py_ssize_t n, float hcount, const float *wcount,
                     float d, float *q) noexcept nogil
    void pk_scaled_d(const double *g, Py_ssize_t n, double hcount, const double *wcount,
                     double d, double *q) noexcept nogil
    void pk_scatter_tap_f(float *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                          Py_ssize_t hi, const float *q) noexcept nogil
    void pk_scatter_tap_d(double *row, Py_ssize_t s, Py_ssize_t off, Py_ssize_t lo,
                          Py_ssize_t hi, const double *q) noexcept nogil
    void pk_expand_row_f(const float *q, Py_ssize_t n, Py_ssize_t k, Py_ssize_t L,
                         float *row) noexcept nogil
    void pk_expand_row_d(const double *q, Py_ssize_t n, Py_ssize_t k, Py_ssize_t L,
                         double *row) noexcept nogil
    Py_ssize_t pk_first_out(Py_ssize_t off, Py_ssize_t s, Py_ssize_t n_out) noexcept nogil
    Py_ssize_t pk_end_out(Py_ssize_t off, Py_ssize_t s, Py_ssize_t L,
                          Py_ssize_t n_out) noexcept nogil
    Py_ssize_t pk_first_inside(Py_ssize_t start, Py_ssize_t d) noexcept nogil
    # 1 when the 8-window vector blocks are compiled in (gcc), else 0
    const int PK_VEC8
    # windows per vector block (the vector lanes): float, double
    enum:
        pk_vl_f
        pk_vl_d4


cdef inline Py_ssize_t vec_lanes(const floating *p) noexcept nogil:
    """Windows per vector block for ``p``'s dtype: 8 floats, 4 doubles (pk_vl_*)."""
    return pk_vl_f if floating is float else pk_vl_d4


cdef inline bint nt_blocks_fit(const floating *out, Py_ssize_t n) noexcept nogil:
    """Whether rows of ``n`` 2x2 windows (``2 n`` columns, starting 2 n apart from ``out``)
    can be written by vector blocks of streaming stores: a block or more per row, and every
    block 16-byte aligned (the blocks at multiples of the lanes, and the overlapping last
    one at n - lanes)."""
    cdef Py_ssize_t L = vec_lanes(out)
    return (n >= L and (<uintptr_t> out) % 16 == 0 and (2 * n * sizeof(floating)) % 16 == 0
            and (2 * (n - L) * sizeof(floating)) % 16 == 0)
