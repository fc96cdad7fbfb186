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

from _openmp_helpers cimport dynamic_chunk
from cython.parallel cimport prange, parallel
from libc.stdlib cimport malloc, free
from libc.string cimport memset
from _stream_helpers cimport STREAM_AUTO, pk_stream_worth, pk_stream_fence

from _typedefs cimport floating, intp_t
from _pool_helpers cimport (
    pk_add_tap_f, pk_add_tap_d, pk_divide_f, pk_divide_d,
    pk_divide_const_f, pk_divide_const_d,
    pk_scaled_f, pk_scaled_d, pk_scatter_tap_f, pk_scatter_tap_d, pk_expand_row_f,
    pk_expand_row_d, pk_first_out, pk_end_out, pk_sum_3x3_f, pk_sum_3x3_d, pk_gather_3s2_f,
    pk_gather_3s2_d, pk_scaled_plane_f, pk_scaled_plane_d, pk_gather_3s2_plane_f,
    pk_gather_3s2_plane_d, pk_mean3s2_plane_f, pk_mean3s2_plane_d, pk_mean_bwd2_f,
    pk_mean_bwd2_d, pk_prefetch_ahead, nt_blocks_fit, pk_avg_2x2_plane_f, pk_avg_2x2_plane_d,
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


cdef inline floating _window_sum(const floating *xp, intp_t W, intp_t h0, intp_t h1,
                                 intp_t w0, intp_t w1) noexcept nogil:
    """Sum of ``x[h0:h1, w0:w1]`` from +0 in row-major order (the tap loops' order)."""
    cdef intp_t ih, iw
    cdef floating a = 0
    for ih in range(h0, h1):
        for iw in range(w0, w1):
            a = a + xp[ih * W + iw]
    return a


cdef inline void _sum_row_taps(const floating *xp, intp_t W, intp_t first, intp_t last,
                               floating *orow, intp_t OW, intp_t sw, intp_t pw, intp_t j0,
                               intp_t j1) noexcept nogil:
    """Window sums of one output row, any window: input rows [first, last), kernel columns
    [j0, j1), one tap at a time over the whole row, in row-major window order (each sum is
    taken in the reference's order)."""
    cdef intp_t ih, j, off
    memset(orow, 0, OW * sizeof(floating))
    for ih in range(first, last):
        for j in range(j0, j1):
            off = j - pw
            if floating is float:
                pk_add_tap_f(xp + ih * W, sw, off, pk_first_out(off, sw, OW),
                             pk_end_out(off, sw, W, OW), orow)
            else:
                pk_add_tap_d(xp + ih * W, sw, off, pk_first_out(off, sw, OW),
                             pk_end_out(off, sw, W, OW), orow)


cdef inline void _sum_row_3x3(const floating *xp, intp_t W, intp_t hs, floating *orow,
                              intp_t OW, intp_t sw, intp_t pw) noexcept nogil:
    """Window sums of one output row of 3x3 windows whose rows hs..hs+2 are inside the
    input: the fused loop where the columns are inside too, one window at a time at the
    edges."""
    cdef intp_t ow, ws
    cdef intp_t lo = pk_first_out(-pw, sw, OW)
    cdef intp_t hi = max(pk_end_out(2 - pw, sw, W, OW), lo)
    for ow in range(lo):
        ws = ow * sw - pw
        orow[ow] = _window_sum(xp, W, hs, hs + 3, max(ws, 0), min(ws + 3, W))
    if floating is float:
        pk_sum_3x3_f(xp + hs * W, xp + (hs + 1) * W, xp + (hs + 2) * W, sw, -pw, lo, hi, orow)
    else:
        pk_sum_3x3_d(xp + hs * W, xp + (hs + 1) * W, xp + (hs + 2) * W, sw, -pw, lo, hi, orow)
    for ow in range(hi, OW):
        ws = ow * sw - pw
        orow[ow] = _window_sum(xp, W, hs, hs + 3, max(ws, 0), min(ws + 3, W))


cdef inline void _width_counts(floating *wcount, intp_t OW, intp_t W, intp_t kw, intp_t sw,
                               intp_t pw, bint count_include_pad) noexcept nogil:
    cdef intp_t ow, first, last, count
    for ow in range(OW):
        _window(ow, W, kw, sw, pw, count_include_pad, &first, &last, &count)
        wcount[ow] = <floating> count


cdef inline void _height_counts(floating *hcounts, intp_t OH, intp_t H, intp_t ph,
                                bint count_include_pad) noexcept nogil:
    """The height part of the divisor of each output row of 3x3 stride-2 windows (as in
    _scaled_row)."""
    cdef intp_t oh, first, last, count
    for oh in range(OH):
        _window(oh, H, 3, 2, ph, count_include_pad, &first, &last, &count)
        hcounts[oh] = <floating> count


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
        intp_t p, oh, hs, he, first, last, hcount, n_fail = 0
        # Kernel columns j whose input column j - pw + ow * sw is inside [0, W) for some ow
        # (a huge kernel must not cost a loop over all its taps).
        intp_t j0 = pk_first_out((OW - 1) * sw - pw, 1, kw)
        intp_t j1 = pk_end_out((OW - 1) * sw - pw, 1, W + (OW - 1) * sw, kw)
        const floating *xp
        floating *orow
        floating *wcount = NULL
        # 2x2 stride-2 windows that all lie inside the input: one fused pass per row pair,
        # one call per plane.
        bint fused_2x2 = (kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0
                          and 2 * OH <= H and 2 * OW <= W)
        # 3x3 windows, column stride 2: one pass per output row over its 1 to 3 input rows,
        # one call per plane; windows [lo3, hi3) of a row lie inside it.
        bint mean_3s2 = kh == 3 and kw == 3 and sw == 2
        intp_t lo3 = pk_first_out(-pw, 2, OW)
        intp_t hi3 = max(pk_end_out(2 - pw, 2, W, OW), lo3)
        # 3x3 windows, column stride 1: a fused loop for the windows inside the input.
        bint fused_3x3 = kh == 3 and kw == 3 and sw == 1

    with nogil, parallel(num_threads=n_threads):
        # Per thread: the width part of every window's divisor (the same for every row).
        wcount = <floating *> malloc(max(OW, 1) * sizeof(floating))
        if wcount != NULL:
            _width_counts(wcount, OW, W, kw, sw, pw, count_include_pad)
        for p in prange(P, schedule="dynamic", chunksize=dynamic_chunk(P, n_threads)):
            if wcount == NULL:
                n_fail += 1
                continue
            xp = &x[p, 0, 0]
            if fused_2x2:
                if floating is float:
                    pk_avg_2x2_plane_f(xp, W, OH, OW,
                                       <float> (divisor_override if divisor_override else 4),
                                       &out[p, 0, 0])
                else:
                    pk_avg_2x2_plane_d(xp, W, OH, OW,
                                       <double> (divisor_override if divisor_override else 4),
                                       &out[p, 0, 0])
                continue
            if mean_3s2:
                if floating is float:
                    pk_mean3s2_plane_f(xp, H, W, OH, OW, sh, ph, pw, lo3, hi3, count_include_pad,
                                       NULL if divisor_override else wcount,
                                       <float> divisor_override, &out[p, 0, 0])
                else:
                    pk_mean3s2_plane_d(xp, H, W, OH, OW, sh, ph, pw, lo3, hi3, count_include_pad,
                                       NULL if divisor_override else wcount,
                                       <double> divisor_override, &out[p, 0, 0])
                continue
            for oh in range(OH):
                orow = &out[p, oh, 0]
                # (written out here, not through _window's pointers: variables a prange body
                # only writes through a pointer would be shared between threads)
                hs = oh * sh - ph
                pk_prefetch_ahead(xp, hs + kh, sh, W * <intp_t> sizeof(floating))
                he = min(hs + kh, H + ph)
                first = max(hs, 0)
                last = min(he, H)
                hcount = (he - hs) if count_include_pad else (last - first)
                if fused_3x3 and hs >= 0 and hs + 2 < H:
                    _sum_row_3x3(xp, W, hs, orow, OW, sw, pw)
                else:
                    _sum_row_taps(xp, W, first, last, orow, OW, sw, pw, j0, j1)
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


cdef inline void _scaled_row(const floating *grow, intp_t oh, intp_t H, intp_t OW, intp_t kh,
                             intp_t sh, intp_t ph, bint count_include_pad,
                             intp_t divisor_override, const floating *wcount,
                             floating *q) noexcept nogil:
    """``q[ow] = grad_output[oh, ow] / divisor(oh, ow)``: each window's share."""
    cdef intp_t hs = oh * sh - ph
    cdef intp_t he = min(hs + kh, H + ph)
    cdef intp_t hcount = (he - hs) if count_include_pad else (min(he, H) - max(hs, 0))
    if divisor_override:
        wcount = NULL   # pk_scaled divides by divisor_override instead
    if floating is float:
        pk_scaled_f(grow, OW, <float> hcount, wcount, <float> divisor_override, q)
    else:
        pk_scaled_d(grow, OW, <double> hcount, wcount, <double> divisor_override, q)


cdef inline void _backward_plane_scatter(
    const floating *gp, floating *gip, intp_t H, intp_t W, intp_t OH, intp_t OW,
    intp_t kh, intp_t kw, intp_t sh, intp_t sw, intp_t ph, intp_t pw,
    bint count_include_pad, intp_t divisor_override, const floating *wcount,
    intp_t j0, intp_t j1, floating *q, bint nt,
) noexcept nogil:
    """One plane, any window: zero it, then add every window's share to its positions, one
    tap at a time over whole rows. Windows that tile the input (stride == kernel, no padding)
    write every position once instead, with no zero fill."""
    cdef intp_t oh, ih, j, off, hs, he, hcount
    cdef bint tiled = sh == kh and sw == kw and ph == 0 and pw == 0
    cdef bint tiled_2x2 = tiled and kh == 2 and kw == 2
    cdef const floating *wc = wcount
    if divisor_override:
        wc = NULL   # pk_mean_bwd2 divides by divisor_override instead
    if not tiled:
        memset(gip, 0, H * W * sizeof(floating))
    for oh in range(OH):
        if tiled_2x2:
            # 2x2 windows: shares computed and written in one pass (see pk_mean_bwd2)
            hs = 2 * oh
            he = min(hs + 2, H)
            hcount = he - hs   # (no padding: the padded extent is the input's)
            if floating is float:
                pk_mean_bwd2_f(gp + oh * OW, OW, <float> hcount, wc, <float> divisor_override,
                               W, gip + hs * W, gip + (hs + 1) * W if he - hs == 2 else NULL,
                               nt)
            else:
                pk_mean_bwd2_d(gp + oh * OW, OW, <double> hcount, wc, <double> divisor_override,
                               W, gip + hs * W, gip + (hs + 1) * W if he - hs == 2 else NULL,
                               nt)
            continue
        _scaled_row(gp + oh * OW, oh, H, OW, kh, sh, ph, count_include_pad, divisor_override,
                    wcount, q)
        hs = oh * sh - ph
        for ih in range(max(hs, 0), min(hs + kh, H)):
            if tiled:
                if floating is float:
                    pk_expand_row_f(q, OW, kw, W, gip + ih * W)
                else:
                    pk_expand_row_d(q, OW, kw, W, gip + ih * W)
                continue
            for j in range(j0, j1):
                off = j - pw
                if floating is float:
                    pk_scatter_tap_f(gip + ih * W, sw, off, pk_first_out(off, sw, OW),
                                     pk_end_out(off, sw, W, OW), q)
                else:
                    pk_scatter_tap_d(gip + ih * W, sw, off, pk_first_out(off, sw, OW),
                                     pk_end_out(off, sw, W, OW), q)
    if tiled and OH * kh < H:
        # rows below the last window get no gradient
        memset(gip + OH * kh * W, 0, (H - OH * kh) * W * sizeof(floating))


cdef inline void _backward_plane_3s2(
    const floating *gp, floating *gip, intp_t H, intp_t W, intp_t OH, intp_t OW,
    intp_t ph, intp_t pw, bint count_include_pad, intp_t divisor_override,
    const floating *wcount, floating *q, floating *qall, const floating *hcounts, bint nt,
) noexcept nogil:
    """One plane, 3x3 windows with stride 2 (padding 0 or 1), in gather form: each input row
    is written once, from the shares of the one or two output rows covering it (row
    ih + ph = 2a is covered by output rows a - 1 and a, row 2a + 1 by a alone), in window
    order: the reference's sums, without the zero fill and the nine read-modify-write passes
    of the scatter. ``qall``, when not NULL, takes the shares of the whole plane (OH * OW)
    first (``hcounts``: each output row's divisor height part), and the plane is gathered
    in one call: on small planes the per-row calls cost as much as the rows. Otherwise
    ``q`` holds two rows of shares (2 * OW), reused while ih advances."""
    cdef intp_t ih, t, a, oh0, oh1
    cdef const floating *wc = wcount
    if qall != NULL:
        if divisor_override:
            wc = NULL   # pk_scaled_plane divides by divisor_override instead
        if floating is float:
            pk_scaled_plane_f(gp, OH, OW, hcounts, wc, <float> divisor_override, qall)
        else:
            pk_scaled_plane_d(gp, OH, OW, hcounts, wc, <double> divisor_override, qall)
        if floating is float:
            pk_gather_3s2_plane_f(qall, OH, OW, H, W, ph, pw, gip, nt)
        else:
            pk_gather_3s2_plane_d(qall, OH, OW, H, W, ph, pw, gip, nt)
        return
    cdef intp_t held0 = -1, held1 = -1   # the output rows whose shares q, q + OW hold
    cdef floating *q0
    cdef floating *q1
    for ih in range(H):
        t = ih + ph
        a = t >> 1
        oh0 = max(a - 1 if (t & 1) == 0 else a, 0)
        oh1 = min(a, OH - 1)
        if oh0 > oh1:
            # no window covers this row (below the last window)
            memset(gip + ih * W, 0, W * sizeof(floating))
            continue
        # shares of rows oh0 (and oh1): the rows already held are kept, the older replaced
        if held0 != oh0 and held1 != oh0:
            if held0 < held1:
                held0 = oh0
            else:
                held1 = oh0
            _scaled_row(gp + oh0 * OW, oh0, H, OW, 3, 2, ph, count_include_pad,
                        divisor_override, wcount, q if held0 == oh0 else q + OW)
        q0 = q if held0 == oh0 else q + OW
        q1 = NULL
        if oh1 > oh0:
            if held0 != oh1 and held1 != oh1:
                if held0 == oh0:
                    held1 = oh1
                else:
                    held0 = oh1
                _scaled_row(gp + oh1 * OW, oh1, H, OW, 3, 2, ph, count_include_pad,
                            divisor_override, wcount, q if held0 == oh1 else q + OW)
            q1 = q if held0 == oh1 else q + OW
        if floating is float:
            pk_gather_3s2_f(q0, q1, OW, pw, W, gip + ih * W, nt)
        else:
            pk_gather_3s2_d(q0, q1, OW, pw, W, gip + ih * W, nt)


# Mean backward of 3x3 stride-2 windows: planes of rows shorter than _QALL_OW and of up to
# _QALL_MAX outputs (64 KiB of float32 per thread) have all their shares computed first, and
# are gathered in one call. (On rows of 56 outputs the row-by-row path measured 5-10%
# faster: per-row costs no longer show, and the shares stay in L1.)
cdef intp_t _QALL_OW = 32
cdef intp_t _QALL_MAX = 16384


def avg_pool2d_backward(
    const floating[:, :, ::1] grad_output not None,  # IN  (P, OH, OW)
    floating[:, :, ::1] grad_input not None,         # OUT (P, H, W)
    intp_t kh, intp_t kw, intp_t sh, intp_t sw, intp_t ph, intp_t pw,
    bint count_include_pad, intp_t divisor_override, int n_threads, int stream=STREAM_AUTO,
):
    """Spread each output gradient over its window, divided by the window's divisor.

    3x3 windows with stride 2 gather each input gradient from the windows covering it, and
    windows that tile the input (stride == kernel, no padding) write each once; otherwise
    each plane is zeroed and the windows accumulate into it. Every position's sum is taken
    in window order, as the reference's. ``stream``: -1 (``STREAM_AUTO``) writes an output of
    16 MiB or more (2x2 windows, or 3x3 of stride 2 with one column of padding) with
    streaming stores where the blocks cover its aligned rows exactly; 0 never; 1 whenever
    they do. Returns the number of planes skipped for want of scratch
    memory (the facade raises).
    """
    cdef:
        intp_t P = grad_input.shape[0], H = grad_input.shape[1], W = grad_input.shape[2]
        intp_t OH = grad_output.shape[1], OW = grad_output.shape[2]
        intp_t p, n_fail = 0
        # Kernel columns j whose input column j - pw + ow * sw is inside [0, W) for some ow
        # (a huge kernel must not cost a loop over all its taps).
        intp_t j0 = pk_first_out((OW - 1) * sw - pw, 1, kw)
        intp_t j1 = pk_end_out((OW - 1) * sw - pw, 1, W + (OW - 1) * sw, kw)
        bint gather_3s2 = kh == 3 and kw == 3 and sh == 2 and sw == 2
        # 2x2 tiles on a large output: its rows written with streaming stores (see
        # pk_mean_bwd2). Only where the vector blocks write every position of every row,
        # each block 16-byte aligned: a plain store to a line with streaming stores pending
        # (an uncovered column or row) flushes them, and on 28x28 planes a plain overlapping
        # last block made the op 30 times slower.
        bint streamable = (P > 0 and W == 2 * OW and nt_blocks_fit(&grad_input[0, 0, 0], OW)
                           and (pk_stream_worth(P * H * W * sizeof(floating))
                                if stream == STREAM_AUTO else stream != 0))
        bint nt = (streamable and kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0
                   and pw == 0 and H == 2 * OH)
        # 3x3 stride-2 windows with one column of padding, likewise (pk_gather3s2_nt): their
        # blocks cover the rows exactly when W == 2 OW and every input row has a window.
        intp_t t_last = H - 1 + ph
        bint nt3 = (streamable and gather_3s2 and pw == 1
                    and ((t_last >> 1) if t_last & 1 else (t_last >> 1) - 1) < OH)
        floating *q = NULL
        floating *qall = NULL
        floating *hcounts = NULL
        floating *wcount = NULL

    with nogil, parallel(num_threads=n_threads):
        # Per thread: the divided gradients of one or two output rows, and the divisor's
        # width part.
        q = <floating *> malloc(2 * max(OW, 1) * sizeof(floating))
        wcount = <floating *> malloc(max(OW, 1) * sizeof(floating))
        if wcount != NULL:
            _width_counts(wcount, OW, W, kw, sw, pw, count_include_pad)
        # the whole plane's shares, for planes of up to _QALL_MAX outputs (else NULL: two rows)
        qall = (<floating *> malloc(OH * OW * sizeof(floating))
                if gather_3s2 and OW < _QALL_OW and OH * OW <= _QALL_MAX else NULL)
        hcounts = <floating *> malloc(OH * sizeof(floating)) if qall != NULL else NULL
        if hcounts == NULL:
            free(qall)
            qall = NULL   # (the two-row path needs no hcounts)
        else:
            _height_counts(hcounts, OH, H, ph, count_include_pad)
        for p in prange(P, schedule="dynamic", chunksize=dynamic_chunk(P, n_threads)):
            if q == NULL or wcount == NULL:
                n_fail += 1
                continue
            if gather_3s2:
                _backward_plane_3s2(&grad_output[p, 0, 0], &grad_input[p, 0, 0], H, W, OH, OW,
                                    ph, pw, count_include_pad, divisor_override, wcount, q,
                                    qall, hcounts, nt3)
            else:
                _backward_plane_scatter(&grad_output[p, 0, 0], &grad_input[p, 0, 0], H, W, OH,
                                        OW, kh, kw, sh, sw, ph, pw, count_include_pad,
                                        divisor_override, wcount, j0, j1, q, nt)
        if nt or nt3:
            pk_stream_fence()   # the streaming stores made visible before the region ends
        free(q)
        free(qall)
        free(hcounts)
        free(wcount)
    return n_fail
