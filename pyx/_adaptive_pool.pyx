# cython: boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
# (the same directives setup.py sets; repeated here so that a plain `cython -a` shows what the
# build compiles. POOLKIT_CYTHON_DEBUG=1 builds strip this line to turn the checks back on.)
"""Adaptive average and adaptive max pooling kernels: forward, and the average's backward (the
max's backward is max pooling's, ``_max_pool.max_pool2d_backward``: a scatter through the
recorded argmax, whatever the windows were).

Layout handed in by the facade: ``(P, H, W)`` C-contiguous planes, ``P = N * C``; output sizes
already validated (``1 <= OH, OW < 2**31``). Output ``(oh, ow)`` pools the window
``[hs, he) x [ws, we)`` of PyTorch's rule, ``hs = floor(oh * H / OH)``,
``he = ceil((oh + 1) * H / OH)`` (integer arithmetic, see _reduce_helpers.pxd), and likewise
along W. Windows are never empty, may overlap by one position when the size does not divide,
and repeat input positions when the output is larger than the input.

Forward kernels run ``prange`` over ``(plane, output row)`` pairs: each output element has one
writer and is computed the same way whatever the thread count. Backward kernels scatter into
overlapping windows, so they run ``prange`` over planes: one writer per input-gradient plane.
"""

from _openmp_helpers cimport dynamic_chunk
from cython.parallel cimport prange, parallel
from libc.math cimport INFINITY
from libc.stdlib cimport malloc, free
from libc.string cimport memset

from _typedefs cimport floating, intp_t, index_t
from _reduce_helpers cimport (
    pk_acc_row_f, pk_acc_row_d, pk_row_max_f, pk_row_max_d, pk_adaptive_start, pk_adaptive_end,
)


def adaptive_avg_pool2d_forward(
    const floating[:, :, ::1] x not None,   # IN  (P, H, W)
    floating[:, :, ::1] out not None,        # OUT (P, OH, OW)
    int n_threads,
):
    """Window means, summed in double for both dtypes and rounded once.

    For each output row: the column sums of the window's input rows (added in row order, a
    loop vectorised across the row), then for each window the sum of its column sums (in
    column order), divided by the window size. Returns the number of output rows skipped for
    want of scratch memory (the facade raises when it is not 0).
    """
    cdef:
        intp_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
        intp_t OH = out.shape[1], OW = out.shape[2]
        intp_t t, p, oh, ow, ih, iw, hs, he, ws, we, n_fail = 0
        double s
        const floating *xp
        double *colsum = NULL

    with nogil, parallel(num_threads=n_threads):
        # One scratch row of column sums per thread.
        colsum = <double *> malloc(W * sizeof(double))
        for t in prange(P * OH, schedule="dynamic", chunksize=dynamic_chunk(P * OH, n_threads)):
            if colsum == NULL:
                n_fail += 1
                continue
            p = t // OH
            oh = t - p * OH
            xp = &x[p, 0, 0]
            hs = pk_adaptive_start(oh, H, OH)
            he = pk_adaptive_end(oh, H, OH)
            memset(colsum, 0, W * sizeof(double))
            for ih in range(hs, he):
                if floating is float:
                    pk_acc_row_f(colsum, xp + ih * W, W)
                else:
                    pk_acc_row_d(colsum, xp + ih * W, W)
            for ow in range(OW):
                ws = pk_adaptive_start(ow, W, OW)
                we = pk_adaptive_end(ow, W, OW)
                s = 0.0
                for iw in range(ws, we):
                    s = s + colsum[iw]
                out[p, oh, ow] = <floating> (s / <double> ((he - hs) * (we - ws)))
        free(colsum)
    return n_fail


def adaptive_avg_pool2d_backward(
    const floating[:, :, ::1] grad_output not None,  # IN  (P, OH, OW)
    floating[:, :, ::1] grad_input not None,         # OUT (P, H, W)
    int n_threads,
):
    """Spread ``grad_output / window size`` (divided in double, rounded once) over each window;
    overlapping windows accumulate in the output dtype, in (oh, ow) order."""
    cdef:
        intp_t P = grad_input.shape[0], H = grad_input.shape[1], W = grad_input.shape[2]
        intp_t OH = grad_output.shape[1], OW = grad_output.shape[2]
        intp_t p, oh, ow, ih, iw, hs, he, ws, we
        floating q
        floating *gip

    with nogil:
        for p in prange(P, schedule="dynamic", num_threads=n_threads,
                        chunksize=dynamic_chunk(P, n_threads)):
            gip = &grad_input[p, 0, 0]
            memset(gip, 0, H * W * sizeof(floating))
            for oh in range(OH):
                hs = pk_adaptive_start(oh, H, OH)
                he = pk_adaptive_end(oh, H, OH)
                for ih in range(hs, he):
                    for ow in range(OW):
                        ws = pk_adaptive_start(ow, W, OW)
                        we = pk_adaptive_end(ow, W, OW)
                        q = <floating> (<double> grad_output[p, oh, ow]
                                        / <double> ((he - hs) * (we - ws)))
                        for iw in range(ws, we):
                            gip[ih * W + iw] = gip[ih * W + iw] + q


def adaptive_max_pool2d_forward(
    const floating[:, :, ::1] x not None,   # IN  (P, H, W)
    floating[:, :, ::1] out not None,        # OUT (P, OH, OW)
    index_t[:, :, ::1] indices not None,     # OUT (P, OH, OW)  flat h * W + w of the winner
    int n_threads,
):
    """Window maxima in row-major window order: ties keep the first position, the first NaN
    wins, a window of -inf reports its first position."""
    cdef:
        intp_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
        intp_t OH = out.shape[1], OW = out.shape[2]
        intp_t t, p, oh, ow, ih, hs, he, ws, we
        floating m
        index_t at
        const floating *xp

    with nogil:
        for t in prange(P * OH, schedule="dynamic", num_threads=n_threads,
                        chunksize=dynamic_chunk(P * OH, n_threads)):
            p = t // OH
            oh = t - p * OH
            xp = &x[p, 0, 0]
            hs = pk_adaptive_start(oh, H, OH)
            he = pk_adaptive_end(oh, H, OH)
            for ow in range(OW):
                ws = pk_adaptive_start(ow, W, OW)
                we = pk_adaptive_end(ow, W, OW)
                m = -INFINITY
                at = hs * W + ws
                for ih in range(hs, he):
                    if floating is float:
                        pk_row_max_f(xp + ih * W, ws, we, &m, &at, ih * W)
                    else:
                        pk_row_max_d(xp + ih * W, ws, we, &m, &at, ih * W)
                out[p, oh, ow] = m
                indices[p, oh, ow] = at
