# Bounds checks of user-supplied flat indices, shared by the kernels that scatter or gather
# through them (max backward, max unpooling): every such kernel checks before it writes.

from _typedefs cimport index_t, intp_t


cdef inline bint indices_fit(const index_t *ip, intp_t n, intp_t limit) noexcept nogil:
    """Whether every ``ip[i]`` (``i < n``) lies in ``[0, limit)``: one branch-free pass (an
    index below 0 wraps to a huge unsigned value)."""
    cdef intp_t i
    cdef int bad = 0
    for i in range(n):
        bad = bad | (<unsigned long long> ip[i] >= <unsigned long long> limit)
    return not bad
