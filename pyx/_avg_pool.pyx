# cython: boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
# (the same directives setup.py sets; repeated here so that a plain `cython -a` shows what the
# build compiles. POOLKIT_CYTHON_DEBUG=1 builds strip this line to turn the checks back on.)
"""Average (mean) pooling kernels, forward and backward.

Layout handed in by the facade: ``(P, H, W)`` C-contiguous planes, ``P = N * C``; every
parameter already validated. A window's divisor follows PyTorch: ``divisor_override`` when it
is not 0; else, with ``count_include_pad``, the window clipped to the padded extent; else the
number of input positions in it. The sum runs over the window in row-major order, in the
input's dtype, then is divided once, so results equal ``poolkit.reference`` bit for bit.

One thread per plane (``prange`` over planes): deterministic for any thread count.
"""

from cython.parallel cimport prange, parallel
from libc.stdlib cimport malloc, free
from libc.string cimport memset

from _typedefs cimport floating, intp_t
from _pool_helpers cimport (
    pk_add_tap_f, pk_add_tap_d, pk_scatter_tap_f, pk_scatter_tap_d, pk_first_out, pk_end_out,
)


cdef inline intp_t _divisor(intp_t oh, intp_t ow, intp_t H, intp_t W,
                            intp_t kh, intp_t kw, intp_t sh, intp_t sw, intp_t ph, intp_t pw,
                            bint count_include_pad, intp_t divisor_override) noexcept nogil:
    cdef intp_t hs, ws, he, we
    if divisor_override:
        return divisor_override
    hs = oh * sh - ph
    ws = ow * sw - pw
    he = min(hs + kh, H + ph)
    we = min(ws + kw, W + pw)
    if not count_include_pad:
        hs = max(hs, 0)
        ws = max(ws, 0)
        he = min(he, H)
        we = min(we, W)
    return (he - hs) * (we - ws)


def avg_pool2d_forward(
    const floating[:, :, ::1] x not None,   # IN  (P, H, W)
    floating[:, :, ::1] out not None,        # OUT (P, OH, OW)
    intp_t kh, intp_t kw, intp_t sh, intp_t sw, intp_t ph, intp_t pw,
    bint count_include_pad, intp_t divisor_override, int n_threads,
):
    cdef:
        intp_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
        intp_t OH = out.shape[1], OW = out.shape[2]
        intp_t p, oh, ow, j, hs, ih, off, lo, hi
        const floating *xp
        floating *orow

    with nogil:
        for p in prange(P, schedule="static", num_threads=n_threads):
            xp = &x[p, 0, 0]
            for oh in range(OH):
                orow = &out[p, oh, 0]
                hs = oh * sh - ph
                memset(orow, 0, OW * sizeof(floating))
                for ih in range(max(hs, 0), min(hs + kh, H)):
                    for j in range(kw):
                        off = j - pw
                        lo = pk_first_out(off, sw, OW)
                        hi = pk_end_out(off, sw, W, OW)
                        if floating is float:
                            pk_add_tap_f(xp + ih * W, sw, off, lo, hi, orow)
                        else:
                            pk_add_tap_d(xp + ih * W, sw, off, lo, hi, orow)
                for ow in range(OW):
                    orow[ow] = orow[ow] / <floating> _divisor(
                        oh, ow, H, W, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override)


def avg_pool2d_backward(
    const floating[:, :, ::1] grad_output not None,  # IN  (P, OH, OW)
    floating[:, :, ::1] grad_input not None,         # OUT (P, H, W)
    intp_t kh, intp_t kw, intp_t sh, intp_t sw, intp_t ph, intp_t pw,
    bint count_include_pad, intp_t divisor_override, int n_threads,
):
    """Spread each output gradient over its window, divided by the window's divisor.

    Returns the number of planes skipped for want of scratch memory (the facade raises).
    """
    cdef:
        intp_t P = grad_input.shape[0], H = grad_input.shape[1], W = grad_input.shape[2]
        intp_t OH = grad_output.shape[1], OW = grad_output.shape[2]
        intp_t p, oh, ow, j, hs, ih, off, lo, hi, n_fail = 0
        const floating *grow
        floating *gip
        floating *q = NULL

    with nogil, parallel(num_threads=n_threads):
        # One scratch row per thread: the output row's gradients, already divided.
        q = <floating *> malloc(max(OW, 1) * sizeof(floating))
        for p in prange(P, schedule="static"):
            gip = &grad_input[p, 0, 0]
            memset(gip, 0, H * W * sizeof(floating))
            if q == NULL:
                n_fail += 1
                continue
            for oh in range(OH):
                grow = &grad_output[p, oh, 0]
                hs = oh * sh - ph
                for ow in range(OW):
                    q[ow] = grow[ow] / <floating> _divisor(
                        oh, ow, H, W, kh, kw, sh, sw, ph, pw, count_include_pad, divisor_override)
                for ih in range(max(hs, 0), min(hs + kh, H)):
                    for j in range(kw):
                        off = j - pw
                        lo = pk_first_out(off, sw, OW)
                        hi = pk_end_out(off, sw, W, OW)
                        if floating is float:
                            pk_scatter_tap_f(gip + ih * W, sw, off, lo, hi, q)
                        else:
                            pk_scatter_tap_d(gip + ih * W, sw, off, lo, hi, q)
        free(q)
    return n_fail  # planes left zeroed because scratch memory could not be allocated
