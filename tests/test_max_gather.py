"""The max backward's gather form for 3x3 windows of stride 2 with one row and column of
padding (pk_win3_plane in pyx/_pool_helpers.pxd): each input position sums, in window order,
the gradients of the windows whose index is that position, instead of a zero fill and a
scatter. The result must be the scatter's bit for bit (the sign of a zero sum included), on
every path: scalar rows (fewer than 8 windows), whole and overlapping vector blocks, odd and
even heights, plain and streaming stores, aligned and misaligned outputs; a plane with an
index outside its window is scattered instead. The kernel gathers only float32 planes larger
than the L1 cache by itself; ``gather=1`` forces it on small ones, ``gather=0`` never. As the
values are the scatter's, ``win3_gather_plane`` runs the gather of one plane alone, so that
the tests see that it ran (or gave a plane up)."""

import numpy as np
import pytest

from poolkit import _max_pool, reference

CHECKS = [_max_pool.CHECK_NONE, _max_pool.CHECK_BEFORE, _max_pool.CHECK_WHILE]
# (H, W): OW = W // 2 of 1-7 (scalar rows), 8 and 16 (whole blocks), 9-14 (an overlapping
# last block, aligned or not), odd and even H
_SHAPES = [(1, 2), (2, 4), (3, 6), (5, 14), (7, 8), (4, 16), (6, 18), (9, 20), (8, 22),
           (11, 24), (10, 26), (13, 28), (12, 32), (5, 34), (14, 56)]


def _window_indices(rng, P, H, W):
    """Indices of 3x3 windows of stride 2 and padding 1, each drawn at random among its
    window's positions inside the plane (so all nine offsets occur, and neighbouring
    windows often pick the same position)."""
    OH, OW = (H + 1) // 2, W // 2
    idx = np.empty((P, OH, OW), np.int64)
    for r in range(OH):
        rows = [h for h in (2 * r - 1, 2 * r, 2 * r + 1) if 0 <= h < H]
        for c in range(OW):
            cols = [w for w in (2 * c - 1, 2 * c, 2 * c + 1) if 0 <= w < W]
            idx[:, r, c] = rng.choice(rows, P) * W + rng.choice(cols, P)
    return idx


def _wayward(idx, H, W):
    """Planes 1..6 of ``idx`` (7 planes) each get one index inside the plane but outside
    its window: a row too far, a column too far, and window 0's padding column in the top,
    middle and bottom rows of its window (the last column of the row above the window's)."""
    OH, OW = idx.shape[1:]
    r, c = OH // 2, OW // 2 - 1
    idx[1, 0, OW - 1] = (H - 1) * W                 # first window row, far off
    idx[2, OH - 1, 0] = 0                           # last window row, rows above
    idx[3, r, c] = 2 * r * W + 2 * c + 2            # a column right of the window
    idx[4, OH - 1, 0] = (2 * OH - 2) * W - 1        # padding column, middle row
    idx[5, 1, 0] = 1 * W - 1                        # padding column, top row (row 1)
    idx[6, 0, 0] = 2 * W - 1                        # padding column, bottom row (row 1)
    assert idx.min() >= 0 and idx.max() < H * W
    return idx


def _scatter(g, idx, H, W):
    want = np.zeros((g.shape[0], H * W), g.dtype)
    for p in range(g.shape[0]):
        np.add.at(want[p], idx[p].ravel(), g[p].ravel())
    return want.reshape(-1, H, W)


def _aligned_and_off(n, dtype):
    """A view of n elements on a 64-byte boundary and one an element past it."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.full(n + 2 + 64 // itemsize, np.nan, dtype)
    skip = (-raw.ctypes.data % 64) // itemsize
    return raw[skip:skip + n], raw[skip + 1:skip + 1 + n]


def _gradient(rng, shape, dtype):
    g = rng.standard_normal(shape).astype(dtype)
    g.reshape(-1)[rng.integers(0, g.size, 4)] = -0.0   # +0.0 where alone, as in the scatter
    g.reshape(-1)[rng.integers(0, g.size, 1)] = np.nan
    return g


@pytest.mark.parametrize("H, W", _SHAPES)
def test_gathered_planes_equal_the_scatter(H, W):
    rng = np.random.default_rng(H * 100 + W)
    P = 3
    idx = _window_indices(rng, P, H, W)
    g = _gradient(rng, idx.shape, np.float32)
    want = _scatter(g, idx, H, W)
    for view in _aligned_and_off(P * H * W, np.float32):
        gi = view.reshape(P, H, W)
        for stream in (0, 1):
            for check in CHECKS:
                for gather in (0, 1):
                    gi[...] = np.nan
                    assert _max_pool.max_pool2d_backward(g, idx, gi, check, 2, stream,
                                                         gather) == 0
                    assert gi.tobytes() == want.tobytes(), (stream, check, gather)


@pytest.mark.parametrize("H, W", [(5, 14), (12, 32), (13, 28), (4, 6)])
def test_forward_indices_of_flat_and_random_inputs(H, W):
    # the forward's own indices: of a flat input (every window picks its first position
    # inside the plane, no two the same) and of a random one
    rng = np.random.default_rng(7)
    for x in (np.zeros((1, 2, H, W), np.float32),
              rng.standard_normal((1, 2, H, W)).astype(np.float32)):
        _, idx = reference.max_pool2d(x, 3, 2, 1, return_indices=True)
        idx = idx[0]
        g = _gradient(rng, idx.shape, np.float32)
        want = _scatter(g, idx, H, W)
        gi = np.full((2, H, W), np.nan, np.float32)
        assert _max_pool.max_pool2d_backward(g, idx, gi, _max_pool.CHECK_NONE, 1, 1, 1) == 0
        assert gi.tobytes() == want.tobytes()


@pytest.mark.parametrize("H, W", [(5, 14), (12, 32), (9, 20), (3, 6)])
def test_planes_with_an_index_outside_its_window_are_scattered(H, W):
    # In range, but outside the window: a row too high or low, a column too far, and window
    # 0's padding column (the last column of the row above). Plane 0 gathers (the kernel
    # tries the gather only when plane 0's first window row fits); the others give it up
    # after writing some rows, and are scattered in scratch (stream=1) or in place.
    rng = np.random.default_rng(11)
    P = 8
    idx = _wayward(_window_indices(rng, P, H, W), H, W)
    OH, OW = idx.shape[1:]
    g = _gradient(rng, idx.shape, np.float32)
    want = _scatter(g, idx, H, W)
    bad = idx.copy()
    bad[7, OH - 1, OW - 1] = H * W                  # out of bounds
    for view in _aligned_and_off(P * H * W, np.float32):
        gi = view.reshape(P, H, W)
        for stream in (0, 1):
            for check in CHECKS:
                gi[...] = np.nan
                assert _max_pool.max_pool2d_backward(g, idx, gi, check, 2, stream, 1) == 0
                assert gi.tobytes() == want.tobytes(), (stream, check)
            gi[...] = np.nan
            assert _max_pool.max_pool2d_backward(g, bad, gi, _max_pool.CHECK_WHILE, 2,
                                                 stream, 1) == 1
            assert gi[:7].tobytes() == want[:7].tobytes()
            gi[...] = 7
            assert _max_pool.max_pool2d_backward(g, bad, gi, _max_pool.CHECK_BEFORE, 2,
                                                 stream, 1) == 1
            assert (gi == 7).all()


def test_the_kernel_gathers_large_float32_planes_by_itself():
    # 96x96 float32 planes (36 KiB) are gathered without being asked, float64 ones scattered:
    # the same values either way
    rng = np.random.default_rng(5)
    for dtype in (np.float32, np.float64):
        idx = _window_indices(rng, 2, 96, 96)
        g = _gradient(rng, idx.shape, dtype)
        got = np.full((2, 96, 96), np.nan, dtype)
        for stream in (-1, 1):   # as the kernel decides (not streamed: small), streamed
            got[...] = np.nan
            assert _max_pool.max_pool2d_backward(g, idx, got, _max_pool.CHECK_WHILE, 2,
                                                 stream) == 0
            assert got.tobytes() == _scatter(g, idx, 96, 96).tobytes()
        # forcing the gather on float64 changes nothing: it is float32 only
        got[...] = np.nan
        assert _max_pool.max_pool2d_backward(g, idx, got, _max_pool.CHECK_NONE, 2, 1, 1) == 0
        assert got.tobytes() == _scatter(g, idx, 96, 96).tobytes()


@pytest.mark.parametrize("H, W", [hw for hw in _SHAPES if hw[1] >= 4])
def test_the_gather_itself(H, W):
    # one plane at a time: window indices are gathered (the scatter's values), and every
    # wayward plane is given up, the ones wayward in the first window row by the probe too
    rng = np.random.default_rng(H * 1000 + W)
    idx = _window_indices(rng, 7, H, W)
    g = _gradient(rng, idx.shape, np.float32)
    for p in range(7):
        want = _scatter(g[p:p + 1], idx[p:p + 1], H, W)[0]
        for view in _aligned_and_off(H * W, np.float32):
            for stream in (False, True):
                gi = view.reshape(H, W)
                gi[...] = np.nan
                assert _max_pool.win3_gather_plane(g[p], idx[p], gi, stream) == (True, True)
                assert gi.tobytes() == want.tobytes(), (p, stream)
    if H < 3:
        return  # a single window row: the wayward rows below need two
    wayward = _wayward(idx.copy(), H, W)
    for p in range(1, 7):
        fits, done = _max_pool.win3_gather_plane(g[p], wayward[p], np.empty((H, W), np.float32))
        assert not done, p
        assert fits == (p not in (1, 6)), p    # planes 1 and 6: wayward in window row 0


def test_the_gather_hook_refuses_what_the_kernel_would_not_gather():
    g = np.zeros((2, 2), np.float32)
    idx = np.zeros((2, 2), np.int64)
    with pytest.raises(ValueError, match="W == 2 OW >= 4"):
        _max_pool.win3_gather_plane(g, idx, np.empty((4, 5), np.float32))
    with pytest.raises(ValueError, match="W == 2 OW >= 4"):
        _max_pool.win3_gather_plane(np.zeros((2, 1), np.float32), np.zeros((2, 1), np.int64),
                                    np.empty((4, 2), np.float32))
    with pytest.raises(ValueError, match=r"in \[0, H \* W\)"):
        _max_pool.win3_gather_plane(g, idx - 1, np.empty((4, 4), np.float32))
