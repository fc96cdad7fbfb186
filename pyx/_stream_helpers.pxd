# Non-temporal ("streaming") copies, for outputs too large to stay in the caches.
#
# A plain store to a line that is not in the cache first reads the line from memory (the
# read-for-ownership). The max backward zero-fills each gradient plane and scatters into it:
# done in place on a large output, the zero fill pulls every line in from memory, the scatter
# writes into it, and the lines go back out. Instead it builds each plane in a small
# per-thread scratch buffer (which stays in L1/L2) and copies it out with `pk_stream_*`, which
# writes whole lines straight to memory without reading them (10-15% faster on the
# (32, 64, 112, 112) benchmark rows). Measured and rejected here: streaming the outputs of the
# forward kernels and of the mean backward through such a copy, which write each output line
# once in order: the extra copy cost more than the read-for-ownership saved (10-30% slower on
# an AMD EPYC). Kernels that write whole aligned vectors in order stream them directly
# instead, with no copy (pk_nt_store32 in _pool_helpers.pxd: the 2x2 mean backward, 1.6-2.4x
# faster on those rows, the max backward's planes of 2x2 tiles, and the 3x3 stride-2 mean
# backward's rows).
#
# Only worth it when the whole output is larger than the caches: a small output is read
# again soon, and streaming it would push it out of them. `pk_stream_worth(bytes)` is the
# rule every kernel uses. After its last streaming copy a thread calls `pk_stream_fence()`
# (streaming stores are weakly ordered; the fence makes them visible before the parallel
# region ends).
#
# SSE2 intrinsics (every x86-64 CPU); other targets copy with memcpy.

cdef extern from *:
    """
    #include <stdint.h>
    #include <stddef.h>
    #include <string.h>
    #if defined(__SSE2__) || defined(_M_X64)
    #include <emmintrin.h>
    #define PK_STREAMING 1
    #else
    #define PK_STREAMING 0
    #endif

    /* Outputs of at least this many bytes are streamed (the last-level cache of the
       development machine is 32 MiB, shared; typical desktop CPUs have 8-32 MiB). */
    #define PK_STREAM_MIN_BYTES ((size_t) 16 << 20)

    static inline int pk_stream_worth(size_t bytes) {
        return PK_STREAMING && bytes >= PK_STREAM_MIN_BYTES;
    }

    #if PK_STREAMING
    /* dst[0:n] = src[0:n]: plain stores up to the first 16-byte boundary of dst, then
       16-byte streaming stores, then plain stores for the tail. */
    static inline void pk_stream_f(float *dst, const float *src, Py_ssize_t n) {
        Py_ssize_t i = 0;
        for (; i < n && ((uintptr_t) (dst + i) & 15); ++i) dst[i] = src[i];
        for (; i + 4 <= n; i += 4) _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
        for (; i < n; ++i) dst[i] = src[i];
    }
    static inline void pk_stream_d(double *dst, const double *src, Py_ssize_t n) {
        Py_ssize_t i = 0;
        for (; i < n && ((uintptr_t) (dst + i) & 15); ++i) dst[i] = src[i];
        for (; i + 2 <= n; i += 2) _mm_stream_pd(dst + i, _mm_loadu_pd(src + i));
        for (; i < n; ++i) dst[i] = src[i];
    }
    static inline void pk_stream_fence(void) { _mm_sfence(); }
    #else
    static inline void pk_stream_f(float *dst, const float *src, Py_ssize_t n) {
        memcpy(dst, src, (size_t) n * sizeof(float));
    }
    static inline void pk_stream_d(double *dst, const double *src, Py_ssize_t n) {
        memcpy(dst, src, (size_t) n * sizeof(double));
    }
    static inline void pk_stream_fence(void) {}
    #endif
    """
    bint PK_STREAMING
    bint pk_stream_worth(size_t nbytes) noexcept nogil
    void pk_stream_f(float *dst, const float *src, Py_ssize_t n) noexcept nogil
    void pk_stream_d(double *dst, const double *src, Py_ssize_t n) noexcept nogil
    void pk_stream_fence() noexcept nogil


from _typedefs cimport floating

# Scratch buffers for streamed planes stay at most this large (half of a 512 KiB L2 cache):
# larger planes are written in place.
cdef enum:
    STREAM_SCRATCH_MAX_BYTES = 256 * 1024

# The kernels' ``stream`` argument: STREAM_AUTO lets pk_stream_worth decide from the output's
# size; 0 never streams, 1 streams whenever a plane fits the scratch (tests, benchmarks).
cdef enum:
    STREAM_AUTO = -1


cdef inline bint stream_planes(int stream, Py_ssize_t n_planes,
                               Py_ssize_t plane_bytes) noexcept nogil:
    """Whether a kernel writing ``n_planes`` output planes of ``plane_bytes`` each builds
    them in scratch and streams them out."""
    if plane_bytes > STREAM_SCRATCH_MAX_BYTES or not PK_STREAMING:
        return False
    if stream == STREAM_AUTO:
        return pk_stream_worth(<size_t> (n_planes * plane_bytes))
    return stream != 0


cdef inline void stream_copy(floating *dst, const floating *src, Py_ssize_t n) noexcept nogil:
    """``dst[0:n] = src[0:n]`` with streaming stores (see above)."""
    if floating is float:
        pk_stream_f(dst, src, n)
    else:
        pk_stream_d(dst, src, n)
