# Bounds checks of user-supplied flat indices, shared by the kernels that scatter or gather
# through them (max backward, max unpooling): every such kernel checks before it writes.

from libc.stdint cimport int64_t

from _typedefs cimport index_t, intp_t

cdef extern from *:
    """
    #include <stdint.h>
    #include <stddef.h>

    /* Whether every ip[i] (i < n) lies in [0, limit), limit >= 1: the OR of ip[i] and
       (limit - 1 - ip[i]) over the run, both as 64-bit words, has its top bit set exactly
       when some index is negative or above limit - 1 (unsigned arithmetic: no overflow).
       Branch-free with no compare, so gcc vectorises it even for the baseline SSE2 target
       (which has no 64-bit compare); the x86-64 Linux build also gets an AVX2 clone. */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \\
        && !defined(POOLKIT_NO_MULTIVERSION)
    __attribute__((target_clones("avx2", "default"), unused))
    #endif
    static int pk_indices_fit(const int64_t *__restrict ip, ptrdiff_t n, int64_t limit) {
        const uint64_t last = (uint64_t)limit - 1;
        uint64_t acc = 0;
        for (ptrdiff_t i = 0; i < n; ++i) acc |= (uint64_t)ip[i] | (last - (uint64_t)ip[i]);
        return (acc >> 63) == 0;
    }
    """
    int pk_indices_fit(const int64_t *ip, intp_t n, int64_t limit) noexcept nogil


cdef inline bint indices_fit(const index_t *ip, intp_t n, intp_t limit) noexcept nogil:
    """Whether every ``ip[i]`` (``i < n``) lies in ``[0, limit)`` (``limit >= 1``)."""
    return pk_indices_fit(ip, n, limit) != 0
