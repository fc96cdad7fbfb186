# cython: boundscheck=False, wraparound=False, initializedcheck=False, cdivision=True
# (the same directives setup.py sets; repeated here so that a plain `cython -a` shows what the
# build compiles. POOLKIT_CYTHON_DEBUG=1 builds strip this line to turn the checks back on.)
"""Stochastic pooling kernels (Zeiler & Fergus, ICLR 2013).

Layout handed in by the facade: ``(P, H, W)`` C-contiguous planes, ``P = N * C``; every
parameter validated there, every window holds at least one input position (no dilation).

* Training forward: in each window, with ``S`` the sum of its input values, the output is the
  value ``a_i`` at the first position ``i`` (row-major window order) whose running sum exceeds
  ``u * S``, where ``u`` in ``[0, 1)`` is the output element's uniform; ``i`` is the last
  positive position when rounding leaves every running sum ``<= u * S``. Running sums are
  taken in the input's dtype, in row-major window order, from 0 -- exactly as
  ``poolkit.reference`` does, so the choices agree bit for bit. A window whose sum is 0
  outputs 0 and records its first input position. Its backward is max pooling's scatter
  through the indices (``_max_pool.max_pool2d_backward``).
* Inference forward: ``sum(a^2) / sum(a)``, both sums in double for either dtype (no overflow
  of ``a^2`` for float32), 0 for a zero-sum window. Backward:
  ``grad_input[j] += g * (2 a_j - y) / S`` with ``y = sum(a^2) / S`` (the same quantity as
  ``(2 a_j S - sum(a^2)) / S^2``), in double, rounded to the dtype once per contribution;
  a zero-sum window passes gradient 0.

Every kernel checks its whole plane for negative, NaN or infinite values -- including the
rows and columns no window covers -- and reports the planes holding one through its return
code; the facade then raises ``ValueError`` naming the first bad value. A plane is checked in
one branch-free pass before it is used (it is then hot in cache), except by the float32 fused
2x2/stride-2 training path, which checks the values as it reads them. Kernels never raise.

Speed: the training forward has fused one-pass loops for 2x2 windows with stride 2 and no
padding (the common case) and for 3x3 windows with stride 1 or 2 (the windows inside the
plane), and a general two-pass path (window sums, then a select pass over
the same taps) whose per-tap loops vectorise across an output row (float32; the double select
pass stays scalar on SSE2/AVX2). The inference forward runs tap by tap the same way; its
backward, not a hot path, is a plain loop per output.

Each plane is read and written by one thread only (``prange`` over planes), and the uniform of
an output comes from a counter-based stream indexed by the output's global position (see
``_stochastic_helpers.pxd``), so results do not depend on the thread count.
"""

from _openmp_helpers cimport dynamic_chunk
from cython.parallel cimport prange, parallel
from libc.stdint cimport int32_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memset

from _typedefs cimport floating, intp_t, index_t
from _pool_helpers cimport (
    pk_first_out, pk_end_out, pk_prefetch_ahead, PK_VEC8, vec_lanes,
)
from _stochastic_helpers cimport (
    pk_uniform_row_f, pk_uniform_row_d, pk_all_valid_f, pk_all_valid_d,
    pk_thresholds_f, pk_thresholds_d, pk_sum_tap_f, pk_sum_tap_d,
    pk_pick_tap_f, pk_pick_tap_d, pk_pick_2x2_f, pk_pick_2x2_d, pk_pick_3x3_f, pk_pick_3x3_d,
    pk_pick_3x3_x2_f, pk_pick_3x3_x2_d, pk_sumsq_tap_f, pk_sumsq_tap_d, pk_ratio_row_f,
    pk_ratio_row_d,
)


cdef inline bint _all_valid(const floating *xp, intp_t s, intp_t n) noexcept nogil:
    """Whether the n values xp[0], xp[s], ... are finite and >= 0."""
    if floating is float:
        return pk_all_valid_f(xp, s, n)
    else:
        return pk_all_valid_d(xp, s, n)


cdef inline void _sample_row(
    const floating *xp, intp_t H, intp_t W, intp_t oh, intp_t OW,
    intp_t kh, intp_t kw, intp_t sh, intp_t sw, intp_t ph, intp_t pw,
    const floating *u,  # IN  (OW,) the row's uniforms
    floating *t,        # scratch (OW,): thresholds u * S
    floating *cs,       # scratch (OW,): window sums, then running sums
    floating *vrow,     # OUT (OW,) sampled values
    index_t *irow,      # OUT (OW,) sampled positions h * W + w
) noexcept nogil:
    """Sample one output row, any window: sums, thresholds, then a select pass over the same
    taps in the same (row-major window) order. Padded taps are skipped."""
    cdef intp_t hs = oh * sh - ph
    cdef intp_t h0 = max(hs, 0), h1 = min(hs + kh, H)
    # Only the tap columns some window of the row places inside the input (a huge kernel
    # must not cost a loop over every tap): j - pw in [-(OW - 1) * sw, W).
    cdef intp_t j0 = max(0, pw - (OW - 1) * sw), j1 = min(kw, W + pw)
    cdef intp_t ih, j, ow, off, lo, hi
    memset(cs, 0, OW * sizeof(floating))
    for ih in range(h0, h1):
        for j in range(j0, j1):
            off = j - pw
            lo = pk_first_out(off, sw, OW)
            hi = pk_end_out(off, sw, W, OW)
            if floating is float:
                pk_sum_tap_f(xp + ih * W, sw, off, lo, hi, cs)
            else:
                pk_sum_tap_d(xp + ih * W, sw, off, lo, hi, cs)
    if floating is float:
        pk_thresholds_f(u, cs, OW, t)
    else:
        pk_thresholds_d(u, cs, OW, t)
    for ow in range(OW):
        cs[ow] = 0
        vrow[ow] = 0
        irow[ow] = h0 * W + max(ow * sw - pw, 0)   # what a zero-sum window records
    for ih in range(h0, h1):
        for j in range(j0, j1):
            off = j - pw
            lo = pk_first_out(off, sw, OW)
            hi = pk_end_out(off, sw, W, OW)
            if floating is float:
                pk_pick_tap_f(xp + ih * W, sw, off, lo, hi, t, cs, vrow, irow, ih * W + off)
            else:
                pk_pick_tap_d(xp + ih * W, sw, off, lo, hi, t, cs, vrow, irow, ih * W + off)


cdef inline void _sample_window(
    const floating *xp, intp_t W, intp_t h0, intp_t h1, intp_t w0, intp_t w1, floating u,
    floating *v, index_t *at,
) noexcept nogil:
    """Sample one window ``[h0, h1) x [w0, w1)`` (inside the plane) on its own: the tap
    path's sums, threshold and select for a single output, in the same order."""
    cdef intp_t ih, iw
    cdef floating S = 0, c = 0, a, t
    for ih in range(h0, h1):
        for iw in range(w0, w1):
            S = S + xp[ih * W + iw]
    t = u * S
    if not u > 0:
        t = 0   # (as pk_threshold: 0 * inf would be NaN)
    v[0] = 0
    at[0] = h0 * W + w0
    for ih in range(h0, h1):
        for iw in range(w0, w1):
            a = xp[ih * W + iw]
            if a > 0 and c <= t:
                v[0] = a
                at[0] = ih * W + iw
            c = c + a


cdef inline void _sample_row_3x3(
    const floating *xp, intp_t W, intp_t hs, intp_t OW, intp_t sw, intp_t pw,
    const floating *u, floating *vrow, index_t *irow, const floating *pad,
) noexcept nogil:
    """Sample one output row of 3x3 windows whose rows hs..hs+2 are inside the plane, or,
    with column stride 2, hs == -1 and ``pad`` a row of -0.0 standing for the top padding
    (-0.0 is never sampled and leaves every running sum as it is): the fused loop where the
    columns are inside too, one window at a time at the edges."""
    cdef intp_t ow, ws
    cdef intp_t lo = pk_first_out(-pw, sw, OW)
    cdef intp_t hi = max(pk_end_out(2 - pw, sw, W, OW), lo)
    # column stride 2, one column of left padding, a vector block of windows or more: window
    # 0 goes with the first vector block (pk_pick_3x3)
    cdef intp_t nl = vec_lanes(xp)
    cdef bint left = PK_VEC8 and sw == 2 and pw == 1 and lo == 1 and hi >= nl
    cdef bint top = hs < 0   # (only called so when the vector blocks take the row)
    cdef const floating *r0 = pad if top else xp + hs * W
    for ow in range(0 if left else lo):
        ws = ow * sw - pw
        _sample_window(xp, W, max(hs, 0), hs + 3, max(ws, 0), min(ws + 3, W), u[ow],
                       vrow + ow, irow + ow)
    if floating is float:
        pk_pick_3x3_f(r0, xp + (hs + 1) * W, xp + (hs + 2) * W, sw, -pw, lo, hi, u,
                      vrow, irow, hs * W - pw, <int32_t> W, left, top)
    else:
        pk_pick_3x3_d(r0, xp + (hs + 1) * W, xp + (hs + 2) * W, sw, -pw, lo, hi, u,
                      vrow, irow, hs * W - pw, <int32_t> W, left, top)
    for ow in range(hi, OW):
        ws = ow * sw - pw
        _sample_window(xp, W, max(hs, 0), hs + 3, max(ws, 0), min(ws + 3, W), u[ow],
                       vrow + ow, irow + ow)


cdef inline void _sample_window_x2(
    const floating *xp, intp_t W, intp_t hs, intp_t ws, intp_t ow,
    const floating *u0, const floating *u1, floating *v0, index_t *i0, floating *v1,
    index_t *i1,
) noexcept nogil:
    """Window ow (starting at column ws) of the two output rows of _sample_rows_3x3_x2."""
    _sample_window(xp, W, hs, hs + 3, max(ws, 0), min(ws + 3, W), u0[ow], v0 + ow, i0 + ow)
    _sample_window(xp, W, hs + 2, hs + 5, max(ws, 0), min(ws + 3, W), u1[ow], v1 + ow, i1 + ow)


cdef inline void _sample_rows_3x3_x2(
    const floating *xp, intp_t W, intp_t hs, intp_t OW, intp_t pw,
    const floating *u0, const floating *u1, floating *v0, index_t *i0, floating *v1,
    index_t *i1,
) noexcept nogil:
    """Two output rows of 3x3 windows, stride 2, whose rows hs .. hs + 4 are inside the plane,
    each as _sample_row_3x3 samples it, the vector blocks two rows at a time
    (pk_pick_3x3_x2). Only where _sample_row_3x3 would take the vector blocks."""
    cdef intp_t ow, ws
    cdef intp_t lo = pk_first_out(-pw, 2, OW)
    cdef intp_t hi = max(pk_end_out(2 - pw, 2, W, OW), lo)
    cdef bint left = pw == 1 and lo == 1 and hi >= vec_lanes(xp)
    for ow in range(0 if left else lo):
        _sample_window_x2(xp, W, hs, ow * 2 - pw, ow, u0, u1, v0, i0, v1, i1)
    if floating is float:
        pk_pick_3x3_x2_f(xp + hs * W, xp + (hs + 1) * W, xp + (hs + 2) * W, xp + (hs + 3) * W,
                         xp + (hs + 4) * W, -pw, lo, hi, u0, u1, v0, i0, v1, i1, hs * W - pw,
                         <int32_t> W, left)
    else:
        pk_pick_3x3_x2_d(xp + hs * W, xp + (hs + 1) * W, xp + (hs + 2) * W, xp + (hs + 3) * W,
                         xp + (hs + 4) * W, -pw, lo, hi, u0, u1, v0, i0, v1, i1, hs * W - pw,
                         <int32_t> W, left)
    for ow in range(hi, OW):
        _sample_window_x2(xp, W, hs, ow * 2 - pw, ow, u0, u1, v0, i0, v1, i1)


cdef inline void _fill_negative_zero(floating *p, intp_t n) noexcept nogil:
    """p[0:n] = -0.0 (the stand-in for the top padding row, see _sample_row_3x3)."""
    cdef intp_t i
    for i in range(n):
        p[i] = -0.0


# At least this many outputs' uniforms are made in one call, and at least this many input
# values are checked in one call (several rows of a small plane): on 28x28 planes, a call per
# row of 14 outputs (or 28 inputs) cost a third of the sampling.
cdef intp_t _U_MIN = 64
cdef intp_t _V_MIN = 512


cdef inline intp_t _u_rows(intp_t OH, intp_t OW) noexcept nogil:
    """Output rows whose uniforms one call makes."""
    return max(1, min(OH, _U_MIN // max(OW, 1)))


cdef inline intp_t _work_len(intp_t OH, intp_t OW, intp_t W) noexcept nogil:
    """Scratch per thread for _sample_plane: a row of thresholds and one of running sums,
    two buffers of _u_rows rows of uniforms, then a row of -0.0 (W, at the end)."""
    return 2 * max(OW, 1) + 2 * _u_rows(OH, OW) * max(OW, 1) + W


cdef inline void _uniform_row(uint64_t key, uint64_t g0, intp_t n,
                              floating *u) noexcept nogil:
    """The stream's uniforms of the outputs g0 .. g0 + n - 1."""
    if floating is float:
        pk_uniform_row_f(key, g0, n, u)
    else:
        pk_uniform_row_d(key, g0, n, u)


def uniform_stream(uint64_t key, uint64_t g0, floating[::1] u not None):
    """Fill ``u`` with the stream's uniforms of the outputs ``g0 .. g0 + len(u) - 1``: the
    numbers the training kernels sample with, for the tests to check against
    ``poolkit._ref_stochastic.stochastic_uniform``."""
    with nogil:
        _uniform_row(key, g0, u.shape[0], &u[0] if u.shape[0] > 0 else NULL)


cdef inline bint _sample_plane(
    const floating *xp,     # IN  (H, W) one plane
    const floating *up,     # IN  (OH, OW) its uniforms, or NULL: the counter-based stream
    uint64_t key, uint64_t g0,   # the stream's key; global position of the plane's output 0
    intp_t H, intp_t W, intp_t OH, intp_t OW,
    intp_t kh, intp_t kw, intp_t sh, intp_t sw, intp_t ph, intp_t pw,
    floating *work,         # scratch (_work_len(OH, OW, W) - W,)
    const floating *pad,    # IN  (W,) -0.0 (the top padding of 3x3 stride-2 rows), or NULL
    floating *vp,           # OUT (OH, OW)
    index_t *ip,            # OUT (OH, OW)
) noexcept nogil:
    """Sample one plane. Returns False, with the outputs unspecified, when the plane holds a
    negative, NaN or infinite value."""
    cdef intp_t oh
    cdef bint ok = True
    cdef const floating *u
    # 2x2 stride-2 windows without padding, all inside the plane: one fused pass per row
    # pair, which also checks the values it reads (float always, double in its vector
    # blocks); the rows and columns no window covers (odd H or W) are checked apart. Double
    # planes too narrow for a vector block are checked first, in one pass.
    cdef bint fused_2x2 = (kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0
                           and pw == 0 and 2 * OH <= H and 2 * OW <= W and W < (1 << 30))
    # 3x3 windows, column stride 1 or 2: a fused loop for the windows inside the plane.
    cdef bint fused_3x3 = kh == 3 and kw == 3 and sw <= 2 and W < (1 << 29)
    cdef intp_t hs, he
    # Other windows: the input rows are checked as the output rows first reach them (rows
    # [0, checked) so far), the rest at the end. Checked just before it is sampled, a row is
    # still in cache when the sampling reads it, and the hardware prefetcher streams the
    # next rows in while the sampling computes (a first pass over the whole plane would
    # read it from memory with nothing to overlap).
    cdef intp_t checked = 0, upto
    cdef intp_t v_rows = max(1, _V_MIN // max(W, 1))
    # The top output row of 3x3 stride-2 windows (hs == -1) through the vector blocks, its
    # missing row read from ``pad``: when those blocks take the row (see pk_pick_3x3).
    cdef intp_t lo3 = pk_first_out(-pw, sw, OW)
    cdef intp_t hi3 = max(pk_end_out(2 - pw, sw, W, OW), lo3)
    cdef intp_t nl = vec_lanes(xp)
    # (whether pk_pick_3x3 takes a row of column stride 2 through its vector blocks)
    cdef bint vec_rows = (PK_VEC8 and sw == 2
                          and (hi3 - lo3 >= nl or (pw == 1 and lo3 == 1 and hi3 >= nl)))
    cdef bint top_ok = vec_rows and pad != NULL
    # Rows of at most 4 vector blocks through those blocks, row stride 2: two output rows at
    # a time where their five input rows are inside the plane and their uniforms in one
    # buffer (_sample_rows_3x3_x2), as the 3x3 max and mean kernels do.
    cdef bint pair3 = fused_3x3 and vec_rows and sh == 2 and OW <= 4 * nl
    cdef bint pair = False, paired = False
    if fused_2x2 and (floating is float or (PK_VEC8 and OW >= nl)):
        for oh in range(2 * OH, H):
            ok = ok & _all_valid(xp + oh * W, 1, W)
        if 2 * OW < W:
            ok = ok & _all_valid(xp + W - 1, W, 2 * OH)
    elif fused_2x2 and not _all_valid(xp, 1, H * W):
        return False
    # The stream's uniforms are made rc output rows at a time (chunk c: rows c * rc ..),
    # into two buffers at ub by chunk parity: chunk c + 1's are made before chunk c's first
    # row is sampled, so that the sampling never reads values stored just before (the
    # scalar stores cannot be forwarded to its vector loads: a stall per block).
    cdef intp_t rc = _u_rows(OH, OW), ul = rc * OW, c, r = 0
    cdef floating *ub = work + 2 * max(OW, 1)
    if up == NULL:
        _uniform_row(key, g0, min(rc, OH) * OW, ub)
    for oh in range(OH):
        if paired:   # sampled with the row before
            paired = False
            continue
        pk_prefetch_ahead(xp, oh * sh - ph + kh, sh, W * <intp_t> sizeof(floating))
        if up != NULL:
            u = up + oh * OW
        else:
            c = oh // rc
            r = oh - c * rc
            if r == 0 and (c + 1) * rc < OH:
                _uniform_row(key, g0 + <uint64_t> ((c + 1) * ul),
                             min(rc, OH - (c + 1) * rc) * OW, ub + ul * ((c + 1) & 1))
            u = ub + ul * (c & 1) + r * OW
        if fused_2x2:
            if floating is float:
                ok = ok & pk_pick_2x2_f(xp + 2 * oh * W, xp + (2 * oh + 1) * W, OW, u,
                                        vp + oh * OW, ip + oh * OW, 2 * oh * W, <int32_t> W)
            else:
                ok = ok & pk_pick_2x2_d(xp + 2 * oh * W, xp + (2 * oh + 1) * W, OW, u,
                                        vp + oh * OW, ip + oh * OW, 2 * oh * W, <int32_t> W)
        else:
            hs = oh * sh - ph
            # (the next row's uniforms follow this row's in the same buffer)
            pair = (pair3 and hs >= 0 and hs + 4 < H and oh + 1 < OH
                    and (up != NULL or r + 1 < rc))
            he = hs + 5 if pair else min(hs + kh, H)
            if he > checked:
                # (v_rows rows at least: a few calls for a small plane)
                upto = min(H, max(he, checked + v_rows))
                if not _all_valid(xp + checked * W, 1, (upto - checked) * W):
                    return False
                checked = upto
            if pair:
                pk_prefetch_ahead(xp, hs + sh + kh, sh, W * <intp_t> sizeof(floating))
                _sample_rows_3x3_x2(xp, W, hs, OW, pw, u, u + OW, vp + oh * OW, ip + oh * OW,
                                    vp + (oh + 1) * OW, ip + (oh + 1) * OW)
                paired = True
            elif fused_3x3 and hs + 2 < H and (hs >= 0 or (hs == -1 and top_ok)):
                _sample_row_3x3(xp, W, hs, OW, sw, pw, u, vp + oh * OW, ip + oh * OW, pad)
            else:
                _sample_row(xp, H, W, oh, OW, kh, kw, sh, sw, ph, pw, u, work,
                            work + OW, vp + oh * OW, ip + oh * OW)
    if not fused_2x2 and checked < H and not _all_valid(xp + checked * W, 1,
                                                        (H - checked) * W):
        return False
    return ok


def stochastic_pool2d_train(
    const floating[:, :, ::1] x not None,   # IN  (P, H, W), finite and >= 0
    floating[:, :, ::1] out not None,        # OUT (P, OH, OW) sampled values
    index_t[:, :, ::1] indices not None,     # OUT (P, OH, OW) sampled positions
    uint64_t key,
    intp_t kh, intp_t kw, intp_t sh, intp_t sw, intp_t ph, intp_t pw, int n_threads,
):
    """Training forward with the counter-based stream keyed by ``key`` (see
    ``_stochastic_helpers.pxd``): output ``g`` (flat in ``(P, OH, OW)``) takes its uniform
    from SplitMix64 output ``g + 1`` (double) or half of output ``g // 2 + 1`` (float).

    Returns the number of planes holding a negative, NaN or infinite value (their outputs are
    unspecified), or -1 when scratch memory could not be allocated (the facade raises).
    """
    cdef:
        intp_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
        intp_t OH = out.shape[1], OW = out.shape[2]
        intp_t p, n_bad = 0, n_fail = 0
        floating *work = NULL

    with nogil, parallel(num_threads=n_threads):
        # Per-thread scratch (_work_len): thresholds, running sums, two buffers of uniforms,
        # then a row of -0.0 for the top padding of 3x3 stride-2 windows.
        work = <floating *> malloc(_work_len(OH, OW, W) * sizeof(floating))
        if work != NULL:
            _fill_negative_zero(work + _work_len(OH, OW, W) - W, W)
        for p in prange(P, schedule="dynamic", chunksize=dynamic_chunk(P, n_threads)):
            if work == NULL:
                n_fail += 1
            elif not _sample_plane(&x[p, 0, 0], NULL, key, <uint64_t> (p * OH * OW),
                                   H, W, OH, OW, kh, kw, sh, sw, ph, pw, work,
                                   work + _work_len(OH, OW, W) - W,
                                   &out[p, 0, 0], &indices[p, 0, 0]):
                n_bad += 1
        free(work)
    return -1 if n_fail else n_bad


def stochastic_pool2d_train_uniforms(
    const floating[:, :, ::1] x not None,   # IN  (P, H, W), finite and >= 0
    const floating[:, :, ::1] u not None,   # IN  (P, OH, OW) uniforms in [0, 1)
    floating[:, :, ::1] out not None,        # OUT (P, OH, OW) sampled values
    index_t[:, :, ::1] indices not None,     # OUT (P, OH, OW) sampled positions
    intp_t kh, intp_t kw, intp_t sh, intp_t sw, intp_t ph, intp_t pw, int n_threads,
):
    """Training forward with uniforms drawn by the caller: the design the counter-based stream
    was measured against (``benchmarks/bench_stochastic.py``); the facade does not use it.

    Returns as :func:`stochastic_pool2d_train`.
    """
    cdef:
        intp_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
        intp_t OH = out.shape[1], OW = out.shape[2]
        intp_t p, n_bad = 0, n_fail = 0
        floating *work = NULL

    with nogil, parallel(num_threads=n_threads):
        # Per-thread scratch as in stochastic_pool2d_train (its uniform rows unused).
        work = <floating *> malloc(_work_len(OH, OW, W) * sizeof(floating))
        if work != NULL:
            _fill_negative_zero(work + _work_len(OH, OW, W) - W, W)
        for p in prange(P, schedule="dynamic", chunksize=dynamic_chunk(P, n_threads)):
            if work == NULL:
                n_fail += 1
            elif not _sample_plane(&x[p, 0, 0], &u[p, 0, 0], 0, 0,
                                   H, W, OH, OW, kh, kw, sh, sw, ph, pw, work,
                                   work + _work_len(OH, OW, W) - W, &out[p, 0, 0],
                                   &indices[p, 0, 0]):
                n_bad += 1
        free(work)
    return -1 if n_fail else n_bad


def stochastic_pool2d_infer(
    const floating[:, :, ::1] x not None,   # IN  (P, H, W), finite and >= 0
    floating[:, :, ::1] out not None,        # OUT (P, OH, OW)
    intp_t kh, intp_t kw, intp_t sh, intp_t sw, intp_t ph, intp_t pw, int n_threads,
):
    """Inference forward: ``sum(a^2) / sum(a)`` per window, 0 for sum 0. Both sums in double,
    tap by tap over an output row in row-major window order (each window's sums therefore
    run in the same order as ``poolkit.reference``'s).

    Returns the number of planes holding a negative, NaN or infinite value (their outputs are
    unspecified), or -1 when scratch memory could not be allocated (the facade raises).
    """
    cdef:
        intp_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
        intp_t OH = out.shape[1], OW = out.shape[2]
        intp_t p, oh, ih, j, hs, off, lo, hi, n_bad = 0, n_fail = 0
        # Tap columns some window places inside the input (see _sample_row).
        intp_t j0 = max(0, pw - (OW - 1) * sw), j1 = min(kw, W + pw)
        const floating *xp
        double *S = NULL

    with nogil, parallel(num_threads=n_threads):
        # Per-thread scratch: one row of window sums and one of sums of squares.
        S = <double *> malloc(2 * max(OW, 1) * sizeof(double))
        for p in prange(P, schedule="dynamic", chunksize=dynamic_chunk(P, n_threads)):
            xp = &x[p, 0, 0]
            if S == NULL:
                n_fail += 1
                continue
            if not _all_valid(xp, 1, H * W):
                n_bad += 1
                continue
            for oh in range(OH):
                hs = oh * sh - ph
                memset(S, 0, 2 * OW * sizeof(double))
                for ih in range(max(hs, 0), min(hs + kh, H)):
                    for j in range(j0, j1):
                        off = j - pw
                        lo = pk_first_out(off, sw, OW)
                        hi = pk_end_out(off, sw, W, OW)
                        if floating is float:
                            pk_sumsq_tap_f(xp + ih * W, sw, off, lo, hi, S, S + OW)
                        else:
                            pk_sumsq_tap_d(xp + ih * W, sw, off, lo, hi, S, S + OW)
                if floating is float:
                    pk_ratio_row_f(S, S + OW, OW, &out[p, oh, 0])
                else:
                    pk_ratio_row_d(S, S + OW, OW, &out[p, oh, 0])
        free(S)
    return -1 if n_fail else n_bad


def stochastic_pool2d_infer_backward(
    const floating[:, :, ::1] grad_output not None,  # IN  (P, OH, OW)
    const floating[:, :, ::1] x not None,            # IN  (P, H, W), finite and >= 0
    floating[:, :, ::1] grad_input not None,         # OUT (P, H, W)
    intp_t kh, intp_t kw, intp_t sh, intp_t sw, intp_t ph, intp_t pw, int n_threads,
):
    """Gradient of the inference forward: ``grad_input[j] += g * (2 a_j - y) / S`` over each
    window (``S = sum(a)``, ``y = sum(a^2) / S``, all in double); nothing for a zero-sum
    window. Overlapping windows accumulate, outputs in row-major order, taps in row-major
    window order.

    Returns the number of planes skipped (left zeroed) for holding a negative, NaN or infinite
    value of ``x``.
    """
    cdef:
        intp_t P = x.shape[0], H = x.shape[1], W = x.shape[2]
        intp_t OH = grad_output.shape[1], OW = grad_output.shape[2]
        intp_t p, oh, ow, ih, iw, hs, ws, h0, h1, w0, w1, n_bad = 0
        double a, s, q, y, r
        const floating *xp
        const floating *grow
        floating *gip

    with nogil:
        for p in prange(P, schedule="dynamic", num_threads=n_threads,
                        chunksize=dynamic_chunk(P, n_threads)):
            xp = &x[p, 0, 0]
            gip = &grad_input[p, 0, 0]
            memset(gip, 0, H * W * sizeof(floating))
            if not _all_valid(xp, 1, H * W):
                n_bad += 1
                continue
            for oh in range(OH):
                grow = &grad_output[p, oh, 0]
                hs = oh * sh - ph
                h0 = max(hs, 0)
                h1 = min(hs + kh, H)
                for ow in range(OW):
                    ws = ow * sw - pw
                    w0 = max(ws, 0)
                    w1 = min(ws + kw, W)
                    s = 0.0
                    q = 0.0
                    for ih in range(h0, h1):
                        for iw in range(w0, w1):
                            a = xp[ih * W + iw]
                            s = s + a
                            q = q + a * a
                    if s > 0.0:
                        y = q / s
                        r = grow[ow] / s
                        for ih in range(h0, h1):
                            for iw in range(w0, w1):
                                gip[ih * W + iw] = gip[ih * W + iw] + <floating> (
                                    r * (2.0 * xp[ih * W + iw] - y))
    return n_bad
