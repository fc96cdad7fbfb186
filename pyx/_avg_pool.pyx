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
    pk_add_tap_f, pk_add_tap_d, pk_avg_2x2_f, pk_avg_2x2_d, pk_divide_f, pk_divide_d, pk_divide_const_f, pk_divide_const_d,
    pk_scaled_f, pk_scaled_d, pk_scatter_tap_f, pk_scatter_tap_d, pk_expand_row_f,
    pk_expand_row_d, pk_first_out, pk_end_out,
)


cdef inline void _window(intp_t o, intp_t L, intp_t k, intp_t s, intp_t pad,
                         bint count_include_pad, intp_t *first, intp_t *last,
                         intp_t *count) noexcept nogil:
    """Input positions [first, last) of window ``o`` along one axis, and its divisor part:
    the window clipped to the padded extent (count_include_pad) or its input positions."""
    cdef intp_t start = o * s - pad
    cdef intp_t end = min(start + k, L + pad)
    first[0] = max(start, 0)
    last[0] = min(end, L)
    count[0] = (end - start) if count_include_pad else (last[0] - first[0])


cdef inline void _width_counts(floating *wcount, intp_t OW, intp_t W, intp_t kw, intp_t sw,
                               intp_t pw, bint count_include_pad) noexcept nogil:
    cdef intp_t ow, first, last, count
    for ow in range(OW):
        _window(ow, W, kw, sw, pw, count_include_pad, &first, &last, &count)
        wcount[ow] = <floating> count


def avg_pool2d_forward(
    const floating[:, :, ::1] x not None,   # IN  (P, H, W)
    floating[:, :, ::1] out not None,        # OUT (P, OH, OW)
    intp_t kh, intp_t kw, intp_t sh, intp_t sw, intp_t ph, intp_t pw,
    bint count_include_pad, intp_t divisor_override, int n_threads,
):
    """Average pooling forward. Returns the number of planes skipped for want of scratch
    memory (the facade raises MemoryError when it is not 0)."""
    cdef:
        intp_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
        intp_t OH = out.shape[1], OW = out.shape[2]
        intp_t p, oh, j, ih, off, lo, hi, hs, he, first, last, hcount, n_fail = 0
        # Kernel columns j whose input column j - pw + ow * sw is inside [0, W) for some ow
        # (a huge kernel must not cost a loop over all its taps).
        intp_t j0 = pk_first_out((OW - 1) * sw - pw, 1, kw)
        intp_t j1 = pk_end_out((OW - 1) * sw - pw, 1, W + (OW - 1) * sw, kw)
        const floating *xp
        floating *orow
        floating *wcount = NULL
        # 2x2 stride-2 windows that all lie inside the input: one fused pass per row pair.
        bint fused_2x2 = (kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0
                          and 2 * OH <= H and 2 * OW <= W)

    with nogil, parallel(num_threads=n_threads):
        # Per thread: the width part of every window's divisor (the same for every row).
        wcount = <floating *> malloc(max(OW, 1) * sizeof(floating))
        if wcount != NULL:
            _width_counts(wcount, OW, W, kw, sw, pw, count_include_pad)
        for p in prange(P, schedule="static"):
            if wcount == NULL:
                n_fail += 1
                continue
            xp = &x[p, 0, 0]
            for oh in range(OH):
                orow = &out[p, oh, 0]
                # (written out here, not through _window's pointers: variables a prange body
                # only writes through a pointer would be shared between threads)
                hs = oh * sh - ph
                he = min(hs + kh, H + ph)
                first = max(hs, 0)
                last = min(he, H)
                hcount = (he - hs) if count_include_pad else (last - first)
                if fused_2x2:
                    if floating is float:
                        pk_avg_2x2_f(xp + 2 * oh * W, xp + (2 * oh + 1) * W, OW,
                                     <float> (divisor_override if divisor_override else 4), orow)
                    else:
                        pk_avg_2x2_d(xp + 2 * oh * W, xp + (2 * oh + 1) * W, OW,
                                     <double> (divisor_override if divisor_override else 4), orow)
                    continue
                memset(orow, 0, OW * sizeof(floating))
                # Taps in row-major window order: each sum is taken in the reference's order.
                for ih in range(first, last):
                    for j in range(j0, j1):
                        off = j - pw
                        lo = pk_first_out(off, sw, OW)
                        hi = pk_end_out(off, sw, W, OW)
                        if floating is float:
                            pk_add_tap_f(xp + ih * W, sw, off, lo, hi, orow)
                        else:
                            pk_add_tap_d(xp + ih * W, sw, off, lo, hi, orow)
                if floating is float:
                    if divisor_override:
                        pk_divide_const_f(orow, OW, <float> divisor_override)
                    else:
                        pk_divide_f(orow, OW, <float> hcount, wcount)
                else:
                    if divisor_override:
                        pk_divide_const_d(orow, OW, <double> divisor_override)
                    else:
                        pk_divide_d(orow, OW, <double> hcount, wcount)
        free(wcount)
    return n_fail


def avg_pool2d_backward(
    const floating[:, :, ::1] grad_output not None,  # IN  (P, OH, OW)
    floating[:, :, ::1] grad_input not None,         # OUT (P, H, W)
    intp_t kh, intp_t kw, intp_t sh, intp_t sw, intp_t ph, intp_t pw,
    bint count_include_pad, intp_t divisor_override, int n_threads,
):
    """Spread each output gradient over its window, divided by the window's divisor.

    Windows that tile the input (stride == kernel, no padding) write every input gradient
    exactly once; otherwise each plane is zeroed and the windows accumulate into it. Returns
    the number of planes skipped for want of scratch memory (the facade raises).
    """
    cdef:
        intp_t P = grad_input.shape[0], H = grad_input.shape[1], W = grad_input.shape[2]
        intp_t OH = grad_output.shape[1], OW = grad_output.shape[2]
        intp_t p, oh, j, ih, off, lo, hi, hs, he, first, last, hcount, n_fail = 0
        # Kernel columns j whose input column j - pw + ow * sw is inside [0, W) for some ow
        # (a huge kernel must not cost a loop over all its taps).
        intp_t j0 = pk_first_out((OW - 1) * sw - pw, 1, kw)
        intp_t j1 = pk_end_out((OW - 1) * sw - pw, 1, W + (OW - 1) * sw, kw)
        bint tiled = sh == kh and sw == kw and ph == 0 and pw == 0
        const floating *grow
        floating *gip
        floating *q = NULL
        floating *wcount = NULL

    with nogil, parallel(num_threads=n_threads):
        # Per thread: the divided gradients of one output row, and the divisor's width part.
        q = <floating *> malloc(max(OW, 1) * sizeof(floating))
        wcount = <floating *> malloc(max(OW, 1) * sizeof(floating))
        if wcount != NULL:
            _width_counts(wcount, OW, W, kw, sw, pw, count_include_pad)
        for p in prange(P, schedule="static"):
            if q == NULL or wcount == NULL:
                n_fail += 1
                continue
            gip = &grad_input[p, 0, 0]
            if not tiled:
                memset(gip, 0, H * W * sizeof(floating))
            for oh in range(OH):
                grow = &grad_output[p, oh, 0]
                # (written out here, not through _window's pointers: variables a prange body
                # only writes through a pointer would be shared between threads)
                hs = oh * sh - ph
                he = min(hs + kh, H + ph)
                first = max(hs, 0)
                last = min(he, H)
                hcount = (he - hs) if count_include_pad else (last - first)
                if floating is float:
                    pk_scaled_f(grow, OW, <float> hcount, NULL if divisor_override else wcount,
                                <float> divisor_override, q)
                else:
                    pk_scaled_d(grow, OW, <double> hcount, NULL if divisor_override else wcount,
                                <double> divisor_override, q)
                for ih in range(first, last):
                    if tiled:
                        if floating is float:
                            pk_expand_row_f(q, OW, kw, W, gip + ih * W)
                        else:
                            pk_expand_row_d(q, OW, kw, W, gip + ih * W)
                        continue
                    for j in range(j0, j1):
                        off = j - pw
                        lo = pk_first_out(off, sw, OW)
                        hi = pk_end_out(off, sw, W, OW)
                        if floating is float:
                            pk_scatter_tap_f(gip + ih * W, sw, off, lo, hi, q)
                        else:
                            pk_scatter_tap_d(gip + ih * W, sw, off, lo, hi, q)
            if tiled and OH * kh < H:
                # rows below the last window get no gradient
                memset(gip + OH * kh * W, 0, (H - OH * kh) * W * sizeof(floating))
        free(q)
        free(wcount)
    return n_fail
