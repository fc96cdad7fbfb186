# cython: boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
# (the same directives setup.py sets; repeated here so that a plain `cython -a` shows what the
# build compiles. POOLKIT_CYTHON_DEBUG=1 builds strip this line to turn the checks back on.)
"""Max unpooling kernels: scatter into a zeroed output plane, and its backward, a gather.

Layout handed in by the facade: flattened C-contiguous planes, ``(P, M)`` for the pooled side
(values, indices, input gradient) and ``(P, OHW)`` for the unpooled side, ``P = N * C``. An
index is a flat position ``oh * OW + ow`` in its unpooled plane.

Indices come from the user, and only a pass over them can find a bad one, so both kernels check
each plane's indices against ``[0, OHW)`` before touching that plane, leave a plane with a bad
index zeroed, and return how many such planes they met (the facade raises when it is not 0).

One thread per plane (``prange`` over planes): in the forward scatter, when two inputs of a
plane share an index the later one (row-major) wins, as on PyTorch's CPU, for any thread count.
"""

from cython.parallel cimport prange
from libc.string cimport memset

from _typedefs cimport floating, intp_t, index_t


cdef inline bint _plane_bad(const index_t *ip, intp_t M, intp_t size) noexcept nogil:
    cdef intp_t i
    cdef int bad = 0
    for i in range(M):
        bad = bad | (<unsigned long long> ip[i] >= <unsigned long long> size)
    return bad != 0


def max_unpool2d_forward(
    const floating[:, ::1] x not None,        # IN  (P, M)
    const index_t[:, ::1] indices not None,   # IN  (P, M)
    floating[:, ::1] out not None,             # OUT (P, OHW)
    int n_threads,
):
    """``out[p] = 0; out[p, indices[p, i]] = x[p, i]`` for i in order. Returns the number of
    planes with an index outside ``[0, OHW)`` (left zeroed)."""
    cdef:
        intp_t P = out.shape[0], OHW = out.shape[1], M = x.shape[1]
        intp_t p, i, n_bad = 0
        const floating *xp
        const index_t *ip
        floating *op

    with nogil:
        for p in prange(P, schedule="static", num_threads=n_threads):
            xp = &x[p, 0]
            ip = &indices[p, 0]
            op = &out[p, 0]
            memset(op, 0, OHW * sizeof(floating))
            if _plane_bad(ip, M, OHW):
                n_bad += 1
            else:
                for i in range(M):
                    op[ip[i]] = xp[i]
    return n_bad


def max_unpool2d_backward(
    const floating[:, ::1] grad_output not None,  # IN  (P, OHW)
    const index_t[:, ::1] indices not None,       # IN  (P, M)
    floating[:, ::1] grad_input not None,         # OUT (P, M)
    int n_threads,
):
    """``grad_input[p, i] = grad_output[p, indices[p, i]]``. Returns the number of planes with
    an index outside ``[0, OHW)`` (their gradient is left zeroed)."""
    cdef:
        intp_t P = grad_input.shape[0], M = grad_input.shape[1]
        intp_t OHW = grad_output.shape[1]
        intp_t p, i, n_bad = 0
        const floating *gp
        const index_t *ip
        floating *gip

    with nogil:
        for p in prange(P, schedule="static", num_threads=n_threads):
            gp = &grad_output[p, 0]
            ip = &indices[p, 0]
            gip = &grad_input[p, 0]
            if _plane_bad(ip, M, OHW):
                memset(gip, 0, M * sizeof(floating))
                n_bad += 1
            else:
                for i in range(M):
                    gip[i] = gp[ip[i]]
    return n_bad
