# cython: boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
# (the same directives setup.py sets; repeated here so that a plain `cython -a` shows what the
# build compiles. POOLKIT_CYTHON_DEBUG=1 builds strip this line to turn the checks back on.)
"""Max unpooling kernels: scatter into a zeroed output plane, and its backward, a gather.

Layout handed in by the facade: flattened C-contiguous planes, ``(P, M)`` for the pooled side
(values, indices, input gradient) and ``(P, OHW)`` for the unpooled side, ``P = N * C``. An
index is a flat position ``oh * OW + ow`` in its unpooled plane.

Indices come from the user, and only a pass over them can find a bad one, so both kernels can
first check every index against ``[0, OHW)`` in one parallel pass; when one is outside they
write nothing and return how many planes hold a bad index (the facade raises when it is not 0).
A layer's backward passes indices its forward already checked, and skips the pass.

One thread per plane (``prange`` over planes): in the forward scatter, when two inputs of a
plane share an index the later one (row-major) wins, for any thread count.
"""

from _openmp_helpers cimport dynamic_chunk
from cython.parallel cimport prange
from libc.string cimport memset

from _typedefs cimport floating, intp_t, index_t
from _index_helpers cimport indices_fit


def max_unpool2d_forward(
    const floating[:, ::1] x not None,        # IN  (P, M)
    const index_t[:, ::1] indices not None,   # IN  (P, M)
    floating[:, ::1] out not None,             # OUT (P, OHW)
    bint check_indices, int n_threads,
):
    """``out[p] = 0; out[p, indices[p, i]] = x[p, i]`` for i in order.

    With ``check_indices`` every index is first checked against ``[0, OHW)``; if any is
    outside, nothing is written and the number of planes holding a bad index is returned (the
    facade raises).
    """
    cdef:
        intp_t P = out.shape[0], OHW = out.shape[1], M = x.shape[1]
        intp_t p, i, n_bad = 0
        const floating *xp
        const index_t *ip
        floating *op

    with nogil:
        if check_indices:
            for p in prange(P, schedule="dynamic", num_threads=n_threads,
                            chunksize=dynamic_chunk(P, n_threads)):
                if not indices_fit(&indices[p, 0], M, OHW):
                    n_bad += 1
        if n_bad == 0:
            for p in prange(P, schedule="dynamic", num_threads=n_threads,
                            chunksize=dynamic_chunk(P, n_threads)):
                xp = &x[p, 0]
                ip = &indices[p, 0]
                op = &out[p, 0]
                memset(op, 0, OHW * sizeof(floating))
                for i in range(M):
                    op[ip[i]] = xp[i]
    return n_bad


def max_unpool2d_backward(
    const floating[:, ::1] grad_output not None,  # IN  (P, OHW)
    const index_t[:, ::1] indices not None,       # IN  (P, M)
    floating[:, ::1] grad_input not None,         # OUT (P, M)
    bint check_indices, int n_threads,
):
    """``grad_input[p, i] = grad_output[p, indices[p, i]]``, after the same check as the
    forward (nothing written, bad-plane count returned, when an index is outside)."""
    cdef:
        intp_t P = grad_input.shape[0], M = grad_input.shape[1]
        intp_t OHW = grad_output.shape[1]
        intp_t p, i, n_bad = 0
        const floating *gp
        const index_t *ip
        floating *gip

    with nogil:
        if check_indices:
            for p in prange(P, schedule="dynamic", num_threads=n_threads,
                            chunksize=dynamic_chunk(P, n_threads)):
                if not indices_fit(&indices[p, 0], M, OHW):
                    n_bad += 1
        if n_bad == 0:
            for p in prange(P, schedule="dynamic", num_threads=n_threads,
                            chunksize=dynamic_chunk(P, n_threads)):
                gp = &grad_output[p, 0]
                ip = &indices[p, 0]
                gip = &grad_input[p, 0]
                for i in range(M):
                    gip[i] = gp[ip[i]]
    return n_bad
