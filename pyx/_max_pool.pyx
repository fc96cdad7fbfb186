# cython: boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
# (the same directives setup.py sets; repeated here so that a plain `cython -a` shows what the
# build compiles. POOLKIT_CYTHON_DEBUG=1 builds strip this line to turn the checks back on.)
"""Max pooling kernels: forward with argmax bookkeeping, and backward through the argmax.

Layout handed in by the facade: ``(P, H, W)`` C-contiguous planes, ``P = N * C``. Every
parameter has been validated there; every window holds at least one input position. The
argmax is the flat position ``h * W + w`` of the winner inside its unpadded plane (PyTorch's
``return_indices``, Caffe's ``max_idx_``).

Each plane is read and written by one thread only (``prange`` over planes), so overlapping
windows need no locks and results do not depend on the thread count.
"""

from _openmp_helpers cimport dynamic_chunk
from cython.parallel cimport prange, parallel
from libc.math cimport INFINITY
from libc.string cimport memset

from _typedefs cimport floating, intp_t, index_t
from libc.stdint cimport int32_t
from libc.stdlib cimport malloc, free
from _index_helpers cimport indices_fit
from _stream_helpers cimport (
    pk_stream_fence, stream_copy, stream_planes, STREAM_AUTO,
)
from _pool_helpers cimport (
    pk_max_tap_f, pk_max_tap_d, pk_finish_indices,
    pk_max_vtap_f, pk_max_vtap_d, pk_max_3x3_f, pk_max_3x3_d, pk_max_3x3_v_f, pk_max_3x3_v_d,
    pk_max_2x2_v_f, pk_max_2x2_v_d, pk_max3s2_plane_f, pk_max3s2_plane_d,
    pk_first_out, pk_end_out, pk_first_inside, pk_tile2_plane_f, pk_prefetch_ahead,
    pk_tile2_plane_d, pk_tile2_row_fits, nt_blocks_fit, pk_max_2x2_plane_f,
    pk_max_2x2_plane_d, pk_win3_row_fits, pk_win3_work_bytes_f, pk_win3_plane_f,
)


# max_pool2d_backward's ``gather``: GATHER_AUTO gathers the 3x3 windows' float32 planes of
# more than GATHER_MIN_PLANE_BYTES (the L1 data cache of most x86-64 cores: smaller planes
# scatter in it faster than they gather); 1 whenever the indices allow (tests); any other
# value never.
cdef enum:
    GATHER_AUTO = -1
    GATHER_MIN_PLANE_BYTES = 32 * 1024


cdef inline bint _win3_shape(intp_t H, intp_t W, intp_t OH, intp_t OW) noexcept nogil:
    """Whether ``(OH, OW)`` gradient planes of ``(H, W)`` inputs may come from 3x3 windows of
    stride 2 with one row and column of padding, in the form pk_win3_plane gathers."""
    return (OH >= 1 and OW >= 2 and W == 2 * OW and (H == 2 * OH or H == 2 * OH - 1)
            and H * W < (<intp_t> 1 << 30))


cdef inline bint _one_pass_plane(
    bint tile2, bint win3, const floating *gp, const index_t *ip, intp_t OH, intp_t OW,
    intp_t H, intp_t W, floating *dst, void *work, int nt,
) noexcept nogil:
    """One plane of the max backward written in one pass, as 2x2 tiles (``tile2``) or as
    gathered 3x3 windows (``win3``, float32, with a work buffer), each position once; False
    when the plane is neither (``dst`` then holds anything) and must be scattered."""
    if tile2:
        if floating is float:
            return pk_tile2_plane_f(gp, ip, OH, OW, H, W, dst, nt)
        else:
            return pk_tile2_plane_d(gp, ip, OH, OW, H, W, dst, nt)
    if floating is float:
        if win3 and work != NULL:
            return pk_win3_plane_f(gp, ip, OH, OW, H, W, dst, work, nt)
    return False


# How max_pool2d_backward checks its indices (see there); the Python names for the facade.
cdef enum:
    _CHECK_NONE = 0
    _CHECK_BEFORE = 1
    _CHECK_WHILE = 2
CHECK_NONE, CHECK_BEFORE, CHECK_WHILE = _CHECK_NONE, _CHECK_BEFORE, _CHECK_WHILE


cdef inline intp_t _first_tap_col(intp_t OW, intp_t W, intp_t kw, intp_t sw, intp_t pw,
                                   intp_t dw) noexcept nogil:
    """First kernel column j whose input column j*dw - pw + ow*sw is inside [0, W) for some
    output column ow of a row; with _end_tap_col, the range of columns worth visiting."""
    return pk_first_out((OW - 1) * sw - pw, dw, kw)


cdef inline intp_t _end_tap_col(intp_t OW, intp_t W, intp_t kw, intp_t sw, intp_t pw,
                                intp_t dw) noexcept nogil:
    return pk_end_out((OW - 1) * sw - pw, dw, W + (OW - 1) * sw, kw)


cdef inline void _max_window_scalar(
    const floating *xp, intp_t H, intp_t W, intp_t hs, intp_t ws,
    intp_t kh, intp_t kw, intp_t dh, intp_t dw, floating *m, index_t *idx,
) noexcept nogil:
    """One window, one tap at a time, int64 throughout (for planes too large for the int32
    window offsets of the vectorised path)."""
    cdef intp_t i, j, ih, iw
    cdef floating v, cur = -INFINITY
    cdef index_t best = pk_first_inside(hs, dh) * W + pk_first_inside(ws, dw)
    # only the taps inside the input (a huge window must not cost a loop over all its taps)
    for i in range(pk_first_out(hs, dh, kh), pk_end_out(hs, dh, H, kh)):
        ih = hs + i * dh
        for j in range(pk_first_out(ws, dw, kw), pk_end_out(ws, dw, W, kw)):
            iw = ws + j * dw
            v = xp[ih * W + iw]
            if v > cur or (v != v and cur == cur):
                cur = v
                best = ih * W + iw
    m[0] = cur
    idx[0] = best


cdef inline void _max_row_values(
    const floating *xp, intp_t H, intp_t W, floating *mrow, intp_t OW, intp_t hs,
    intp_t kh, intp_t kw, intp_t sw, intp_t pw, intp_t dh, intp_t dw, bint fused_2x2,
    bint fused_3x3,
) noexcept nogil:
    """One output row of max values, without the argmax bookkeeping."""
    cdef intp_t ow, i, j, ih, off, lo, hi
    cdef intp_t j0 = _first_tap_col(OW, W, kw, sw, pw, dw)
    cdef intp_t j1 = _end_tap_col(OW, W, kw, sw, pw, dw)
    cdef index_t unused
    if fused_2x2:
        if floating is float:
            pk_max_2x2_v_f(xp + hs * W, xp + (hs + 1) * W, OW, mrow)
        else:
            pk_max_2x2_v_d(xp + hs * W, xp + (hs + 1) * W, OW, mrow)
        return
    if fused_3x3 and hs >= 0 and hs + 2 < H:
        # as in max_pool2d_forward: the fused loop inside, one window at a time at the edges
        lo = pk_first_out(-pw, sw, OW)
        hi = max(pk_end_out(2 - pw, sw, W, OW), lo)
        for ow in range(lo):
            _max_window_scalar(xp, H, W, hs, ow * sw - pw, 3, 3, 1, 1, mrow + ow, &unused)
        if floating is float:
            pk_max_3x3_v_f(xp + hs * W, xp + (hs + 1) * W, xp + (hs + 2) * W, sw, -pw, lo, hi,
                           mrow)
        else:
            pk_max_3x3_v_d(xp + hs * W, xp + (hs + 1) * W, xp + (hs + 2) * W, sw, -pw, lo, hi,
                           mrow)
        for ow in range(hi, OW):
            _max_window_scalar(xp, H, W, hs, ow * sw - pw, 3, 3, 1, 1, mrow + ow, &unused)
        return
    for ow in range(OW):
        mrow[ow] = -INFINITY
    for i in range(pk_first_out(hs, dh, kh), pk_end_out(hs, dh, H, kh)):
        ih = hs + i * dh
        for j in range(j0, j1):
            off = j * dw - pw
            if floating is float:
                pk_max_vtap_f(xp + ih * W, sw, off, pk_first_out(off, sw, OW),
                              pk_end_out(off, sw, W, OW), mrow)
            else:
                pk_max_vtap_d(xp + ih * W, sw, off, pk_first_out(off, sw, OW),
                              pk_end_out(off, sw, W, OW), mrow)


def max_pool2d_forward(
    const floating[:, :, ::1] x not None,   # IN  (P, H, W)
    floating[:, :, ::1] out not None,        # OUT (P, OH, OW)
    index_t[:, :, ::1] indices,              # OUT (P, OH, OW), or None: values only
    intp_t kh, intp_t kw, intp_t sh, intp_t sw, intp_t ph, intp_t pw,
    intp_t dh, intp_t dw, int n_threads,
):
    """Max pooling forward, with the argmax when ``indices`` is not None. Returns the number
    of planes skipped for want of scratch memory (the facade raises MemoryError when it is
    not 0)."""
    cdef:
        intp_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
        intp_t OH = out.shape[1], OW = out.shape[2]
        intp_t p, oh, ow, i, j, hs, ws, ih, off, lo, hi, h0, n_fail = 0
        const floating *xp
        floating *mrow
        index_t *irow = NULL
        int32_t *krow = NULL
        bint with_indices = indices is not None
        # 2x2 stride-2 windows that all lie inside the input: one fused pass per row pair
        # (with indices: one call per plane).
        bint fused_2x2 = (kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0
                          and dh == 1 and dw == 1 and 2 * OH <= H and 2 * OW <= W
                          and W < (1 << 30))
        # 3x3 windows, column stride 2: separable, each input row's maxima shared (see
        # PK_DEFINE_SEP_MAX3), one call per plane; windows [lo3, hi3) of a row lie inside it.
        bint sep_3x3 = (kh == 3 and kw == 3 and dh == 1 and dw == 1 and sw == 2
                        and W < (1 << 29))
        intp_t lo3 = pk_first_out(-pw, 2, OW)
        intp_t hi3 = max(pk_end_out(2 - pw, 2, W, OW), lo3)
        # 3x3 windows, column stride 1: a fused loop for the windows inside the input.
        bint fused_3x3 = (kh == 3 and kw == 3 and dh == 1 and dw == 1 and sw == 1
                          and W < (1 << 29))
        floating *hbuf = NULL
        int32_t *cbuf = NULL
        # The tap loops keep each window's winner as an int32 offset from the window start.
        # (every offset i*dh*W + j*dw then stays below 2**31; written to avoid any overflow)
        bint offsets_fit = ((kw - 1) * dw + W < (1 << 30)
                            and (kh - 1) * dh < (1 << 30) // W)
        # Kernel columns that some window of a row places inside the input.
        intp_t j0 = _first_tap_col(OW, W, kw, sw, pw, dw)
        intp_t j1 = _end_tap_col(OW, W, kw, sw, pw, dw)

    with nogil, parallel(num_threads=n_threads):
        krow = <int32_t *> malloc(max(OW, 1) * sizeof(int32_t))
        if sep_3x3:
            hbuf = <floating *> malloc(3 * max(OW, 1) * sizeof(floating))
            cbuf = <int32_t *> malloc(3 * max(OW, 1) * sizeof(int32_t)) if with_indices else NULL
        for p in prange(P, schedule="dynamic", chunksize=dynamic_chunk(P, n_threads)):
            if krow == NULL or (sep_3x3 and (hbuf == NULL or (with_indices and cbuf == NULL))):
                n_fail += 1
                continue
            xp = &x[p, 0, 0]
            if fused_2x2 and with_indices:
                if floating is float:
                    pk_max_2x2_plane_f(xp, W, OH, OW, &out[p, 0, 0], &indices[p, 0, 0])
                else:
                    pk_max_2x2_plane_d(xp, W, OH, OW, &out[p, 0, 0], &indices[p, 0, 0])
                continue
            if sep_3x3:
                if floating is float:
                    pk_max3s2_plane_f(xp, H, W, OH, OW, sh, ph, pw, lo3, hi3, &out[p, 0, 0],
                                      &indices[p, 0, 0] if with_indices else NULL, hbuf, cbuf)
                else:
                    pk_max3s2_plane_d(xp, H, W, OH, OW, sh, ph, pw, lo3, hi3, &out[p, 0, 0],
                                      &indices[p, 0, 0] if with_indices else NULL, hbuf, cbuf)
                continue
            for oh in range(OH):
                mrow = &out[p, oh, 0]
                hs = oh * sh - ph
                pk_prefetch_ahead(xp, hs + (kh - 1) * dh + 1, sh, W * <intp_t> sizeof(floating))
                if not with_indices:
                    _max_row_values(xp, H, W, mrow, OW, hs, kh, kw, sw, pw, dh, dw, fused_2x2,
                                    fused_3x3)
                    continue
                irow = &indices[p, oh, 0]
                if fused_3x3 and hs >= 0 and hs + 2 < H:
                    # Windows whose three rows are inside the input: the fused loop for the
                    # columns inside too, one window at a time at the two edges.
                    lo = pk_first_out(-pw, sw, OW)
                    hi = max(pk_end_out(2 - pw, sw, W, OW), lo)
                    for ow in range(lo):
                        _max_window_scalar(xp, H, W, hs, ow * sw - pw, 3, 3, 1, 1,
                                           mrow + ow, irow + ow)
                    if floating is float:
                        pk_max_3x3_f(xp + hs * W, xp + (hs + 1) * W, xp + (hs + 2) * W, sw, -pw,
                                     lo, hi, mrow, irow, hs * W - pw, <int32_t> W)
                    else:
                        pk_max_3x3_d(xp + hs * W, xp + (hs + 1) * W, xp + (hs + 2) * W, sw, -pw,
                                     lo, hi, mrow, irow, hs * W - pw, <int32_t> W)
                    for ow in range(hi, OW):
                        _max_window_scalar(xp, H, W, hs, ow * sw - pw, 3, 3, 1, 1,
                                           mrow + ow, irow + ow)
                    continue
                if not offsets_fit:
                    for ow in range(OW):
                        _max_window_scalar(xp, H, W, hs, ow * sw - pw, kh, kw, dh, dw,
                                           mrow + ow, irow + ow)
                    continue
                # Every window starts at -inf pointing at its first input position: a window
                # of -inf values reports -inf there, never a padded position.
                h0 = pk_first_inside(hs, dh)
                for ow in range(OW):
                    ws = ow * sw - pw
                    mrow[ow] = -INFINITY
                    krow[ow] = <int32_t> ((h0 - hs) * W + pk_first_inside(ws, dw) - ws)
                # Taps in row-major window order, strict comparison: ties keep the first.
                # Only the kernel rows and columns that reach the input are visited.
                for i in range(pk_first_out(hs, dh, kh), pk_end_out(hs, dh, H, kh)):
                    ih = hs + i * dh
                    for j in range(j0, j1):
                        off = j * dw - pw
                        lo = pk_first_out(off, sw, OW)
                        hi = pk_end_out(off, sw, W, OW)
                        if floating is float:
                            pk_max_tap_f(xp + ih * W, sw, off, lo, hi, mrow, krow,
                                         <int32_t> (i * dh * W + j * dw))
                        else:
                            pk_max_tap_d(xp + ih * W, sw, off, lo, hi, mrow, krow,
                                         <int32_t> (i * dh * W + j * dw))
                pk_finish_indices(krow, OW, hs * W - pw, sw, irow)
        free(krow)
        free(hbuf)
        free(cbuf)
    return n_fail


def max_pool2d_backward(
    const floating[:, :, ::1] grad_output not None,  # IN  (P, OH, OW)
    const index_t[:, :, ::1] indices not None,       # IN  (P, OH, OW)
    floating[:, :, ::1] grad_input not None,         # OUT (P, H, W)
    int check_indices, int n_threads, int stream=STREAM_AUTO, int gather=GATHER_AUTO,
):
    """Scatter-add ``grad_output`` into ``grad_input`` at ``indices``.

    ``check_indices`` says how the indices are checked against ``[0, H * W)``:
    ``CHECK_BEFORE`` (1): all of them first, in one parallel pass, and nothing is written when
    one is outside (for a user's ``out=``); ``CHECK_WHILE`` (2): each plane's as it is
    scattered, a plane with a bad one being skipped (for a fresh output the caller discards on
    error: saves reading the indices twice); ``CHECK_NONE`` (0): indices made by poolkit's own
    forward. ``stream``: whether each plane is built in scratch and streamed out
    (``STREAM_AUTO``: for large outputs; see _stream_helpers.pxd); streamed planes of 2x2
    tiles or 3x3 windows whose blocks cover the aligned output rows exactly go straight to
    the output (``nt_blocks_fit``). Returns the number of planes holding a bad index (the
    facade raises).

    Two shapes of gradient are written in one pass, each position once, instead of
    zero-filled and scattered (the same values bit for bit); any other plane is scattered:

    - ``(H // 2, W // 2)`` planes may come from 2x2 windows of stride 2: a plane whose
      indices all lie in their own 2x2 tiles (``pk_tile2_plane``);
    - ``(ceil(H / 2), W / 2)`` planes (W even) may come from 3x3 windows of stride 2 with one
      row and column of padding: a float32 plane whose indices all lie in those windows is
      gathered, each position summing the windows that point at it in window order
      (``pk_win3_plane``), when ``gather`` is 1, or ``GATHER_AUTO`` and the plane is larger
      than ``GATHER_MIN_PLANE_BYTES`` (smaller ones, and float64, scatter faster: see
      _pool_helpers.pxd). ``gather=0`` never gathers (tests; ``win3_gather_plane`` runs the
      gather of one plane alone).
    """
    cdef:
        intp_t P = grad_input.shape[0], H = grad_input.shape[1], W = grad_input.shape[2]
        intp_t OH = grad_output.shape[1], OW = grad_output.shape[2]
        intp_t HW = H * W
        intp_t M = OH * OW
        # A gradient of (H // 2, W // 2) may come from 2x2 windows of stride 2: planes whose
        # indices all lie in their own 2x2 tiles are written in one pass (pk_tile2_plane).
        bint tile2 = (P > 0 and M > 0 and OH == H // 2 and OW == W // 2
                      and HW < (<intp_t> 1 << 31))
        # One of (ceil(H / 2), W / 2), W even, from 3x3 windows of stride 2 and padding 1:
        # float32 planes whose indices lie in those windows are gathered (pk_win3_plane).
        bint win3 = (P > 0 and _win3_shape(H, W, OH, OW)
                     and (gather == 1 or (gather == GATHER_AUTO
                                          and HW * sizeof(floating) > GATHER_MIN_PLANE_BYTES)))
        bint done
        intp_t p, i, n_bad = 0
        bint check_while = check_indices == _CHECK_WHILE
        const floating *gp
        const index_t *ip
        floating *dst
        floating *buf = NULL
        void *work = NULL
        bint streamed = stream_planes(stream, P, HW * sizeof(floating))
        # streamed tiles and gathered windows go straight to the output when its rows are
        # 16-byte aligned (only where the vector blocks write every position: a plain store
        # to a line with streaming stores pending flushes them, see avg_pool2d_backward)
        bint direct_nt = (streamed and P > 0 and W == 2 * OW
                          and nt_blocks_fit(&grad_input[0, 0, 0], OW))
        bint tile_nt, win_nt

    if floating is double:
        win3 = False
    with nogil:
        if tile2:
            # Planes are tried as tiles only when the first row of plane 0 is one (each
            # plane is still checked as it is written): a gradient of other windows, 3x3 of
            # stride 2 say, would otherwise write every plane's first row twice. Likewise
            # for the 3x3 windows, which 2x2 tiles also lie in (the tiles are faster).
            tile2 = pk_tile2_row_fits(&indices[0, 0, 0], OW, 0, W)
        win3 = (win3 and not tile2 and pk_win3_row_fits(&indices[0, 0, 0], OW, W, H))
        tile_nt = tile2 and direct_nt and H == 2 * OH
        win_nt = win3 and direct_nt
        if check_indices == _CHECK_BEFORE:
            for p in prange(P, schedule="dynamic", num_threads=n_threads,
                            chunksize=dynamic_chunk(P, n_threads)):
                if not indices_fit(&indices[p, 0, 0], M, HW):
                    n_bad += 1
        if n_bad == 0:
            with parallel(num_threads=n_threads):
                # A large output: each plane is built in a scratch buffer that stays in the
                # cache, then streamed out (no read-for-ownership of the output's lines).
                buf = <floating *> malloc(HW * sizeof(floating)) if streamed else NULL
                # the 3x3 windows' gather: two window rows of relative indices and gradients
                work = malloc(pk_win3_work_bytes_f(OW)) if win3 else NULL
                for p in prange(P, schedule="dynamic", chunksize=dynamic_chunk(P, n_threads)):
                    gp = &grad_output[p, 0, 0]
                    ip = &indices[p, 0, 0]
                    if check_while and not indices_fit(ip, M, HW):
                        n_bad += 1
                        continue
                    if tile_nt or win_nt:
                        # tiles or windows streamed straight into the output; a plane that
                        # is neither is scattered in scratch and streamed out as below (not
                        # tried again)
                        if _one_pass_plane(tile2, win3, gp, ip, OH, OW, H, W,
                                           &grad_input[p, 0, 0], work, 1):
                            continue
                    dst = buf if buf != NULL else &grad_input[p, 0, 0]
                    done = (not (tile_nt or win_nt)
                            and _one_pass_plane(tile2, win3, gp, ip, OH, OW, H, W, dst, work,
                                                0))
                    if not done:
                        memset(dst, 0, HW * sizeof(floating))
                        for i in range(M):
                            dst[ip[i]] = dst[ip[i]] + gp[i]
                    if buf != NULL:
                        stream_copy(&grad_input[p, 0, 0], buf, HW)
                if streamed:
                    pk_stream_fence()
                free(work)
                free(buf)
    return n_bad


def win3_gather_plane(
    const float[:, ::1] grad_output not None,  # IN  (OH, OW)
    const index_t[:, ::1] indices not None,    # IN  (OH, OW), in [0, H * W)
    float[:, ::1] grad_input not None,         # OUT (H, W): W == 2 OW >= 4, H == 2 OH - 1, 2 OH
    bint stream=False,
):
    """The 3x3 windows' gather of max_pool2d_backward on one float32 plane, for the tests
    (which otherwise could not tell a gathered plane from a scattered one: the values are
    the same). Returns ``(fits, done)``: whether the first window row passes the kernel's
    probe (``pk_win3_row_fits``), and whether the plane was gathered (0: an index lies
    outside its window, and ``grad_input`` holds anything). ``stream``: streaming stores,
    when the rows allow them (``nt_blocks_fit``)."""
    cdef:
        intp_t OH = grad_output.shape[0], OW = grad_output.shape[1]
        intp_t H = grad_input.shape[0], W = grad_input.shape[1]
        bint fits, nt
        int done
        void *work
    if indices.shape[0] != OH or indices.shape[1] != OW or not _win3_shape(H, W, OH, OW):
        raise ValueError("win3_gather_plane needs (OH, OW) indices and an (H, W) plane with "
                         "W == 2 OW >= 4 and H == 2 OH - 1 or 2 OH")
    if not indices_fit(&indices[0, 0], OH * OW, H * W):
        raise ValueError("win3_gather_plane needs indices in [0, H * W)")
    work = malloc(pk_win3_work_bytes_f(OW))
    if work == NULL:
        raise MemoryError()
    nt = stream and nt_blocks_fit(&grad_input[0, 0], OW)
    with nogil:
        fits = pk_win3_row_fits(&indices[0, 0], OW, W, H)
        done = pk_win3_plane_f(&grad_output[0, 0], &indices[0, 0], OH, OW, H, W,
                               &grad_input[0, 0], work, nt)
        if nt:
            pk_stream_fence()
    free(work)
    return fits, bool(done)
