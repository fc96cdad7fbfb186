"""Streamed outputs: the max backward builds each gradient plane of a large output in a cached
scratch buffer and copies it out with non-temporal stores (see pyx/_stream_helpers.pxd), and
the 2x2 backwards write rows their vector blocks cover exactly with streaming stores straight
into the output; the result is bitwise that of writing in place. The kernels stream only
outputs of 16 MiB and more by themselves; these tests call them with ``stream=1`` (whenever
possible) and ``stream=0`` (never) on small planes, so the streamed paths are covered without
large arrays: planes of every alignment (odd sizes put plane starts off the 16-byte boundary
the streaming stores need)."""

import numpy as np
import pytest

from poolkit import _max_pool

DTYPES = [np.float32, np.float64]
SHAPES = [(3, 7, 9), (5, 8, 8), (2, 3, 5), (4, 13, 6)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("check", [_max_pool.CHECK_NONE, _max_pool.CHECK_BEFORE,
                                   _max_pool.CHECK_WHILE])
def test_max_backward_streamed_equals_in_place(dtype, shape, check):
    P, H, W = shape
    rng = np.random.default_rng(1)
    idx = rng.integers(0, H * W, size=(P, 3, 4))
    g = rng.standard_normal((P, 3, 4)).astype(dtype)
    results = []
    for stream in (0, 1):
        gi = np.full(shape, 99, dtype)
        assert _max_pool.max_pool2d_backward(g, idx, gi, check, 2, stream) == 0
        results.append(gi)
    assert results[0].tobytes() == results[1].tobytes()
    want = np.zeros((P, H * W), dtype)
    for p in range(P):
        np.add.at(want[p], idx[p].ravel(), g[p].ravel())
    np.testing.assert_allclose(results[0].reshape(P, -1), want, rtol=1e-6)


@pytest.mark.parametrize("stream", [0, 1])
def test_max_backward_bad_index_modes(stream):
    P, H, W = 4, 3, 3
    idx = np.zeros((P, 2, 2), np.int64)
    idx[2, 1, 1] = H * W  # plane 2 holds one bad index
    g = np.ones((P, 2, 2))
    gi = np.full((P, H, W), 7.0)
    # checked before writing: nothing written
    assert _max_pool.max_pool2d_backward(g, idx, gi, _max_pool.CHECK_BEFORE, 2, stream) == 1
    assert np.all(gi == 7.0)
    # checked while writing: the bad plane is skipped, the others are written
    assert _max_pool.max_pool2d_backward(g, idx, gi, _max_pool.CHECK_WHILE, 2, stream) == 1
    assert np.all(gi[2] == 7.0)
    assert gi[0, 0, 0] == 4.0 and gi[3, 0, 0] == 4.0


def _aligned_and_off(n, dtype):
    """Two views of n elements in one buffer: one starting on a 64-byte boundary, one an
    element past it (never 16-byte aligned)."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.full(n + 2 + 64 // itemsize, np.nan, dtype)
    skip = (-raw.ctypes.data % 64) // itemsize
    on, off = raw[skip:skip + n], raw[skip + 1:skip + 1 + n]
    assert on.ctypes.data % 64 == 0 and off.ctypes.data % 16 != 0
    return on, off


# Widths of whole vector blocks, of an overlapping last block (float32: OW 10, 20, 30; an odd
# OW of 9 or 11 leaves that block unaligned, and the rows take plain stores), of a partial
# last window and columns no window covers, and an odd H.
_WIDTHS = [(4, 16), (5, 32), (6, 40), (3, 48), (7, 17), (4, 20), (2, 64), (4, 18), (4, 22),
           (2, 60), (6, 8)]


@pytest.mark.parametrize("dtype", DTYPES)
def test_mean_backward_streamed_rows_equal_plain_stores(dtype):
    # 2x2 windows of stride 2 on a large output write their rows with streaming stores when
    # the blocks cover them exactly, 16-byte aligned (else plain stores): stream=1 forces
    # them on small planes; both divisor rules.
    from poolkit import _avg_pool
    rng = np.random.default_rng(2)
    for H, W in _WIDTHS:
        x_shape = (3, H, W)
        g = rng.standard_normal((3, H // 2, W // 2)).astype(dtype)
        g[0, 0, :2] = -0.0   # lands as +0.0 either way
        for divisor in (0, 5):
            want = np.repeat(np.repeat(g / (divisor or 4) + dtype(0), 2, axis=1), 2, axis=2)
            want = np.pad(want, [(0, 0), (0, H % 2), (0, W % 2)])
            for stream in (0, 1):
                for view in _aligned_and_off(3 * H * W, dtype):
                    gi = view.reshape(x_shape)
                    assert _avg_pool.avg_pool2d_backward(g, gi, 2, 2, 2, 2, 0, 0, True,
                                                         divisor, 2, stream) == 0
                    assert gi.tobytes() == want.tobytes(), (H, W, divisor, stream)
                    gi[...] = np.nan


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_backward_streamed_tiles_equal_plain_stores(dtype):
    # Gradients of 2x2 windows whose indices lie in their tiles: with stream=1, rows the
    # vector blocks cover exactly in 16-byte aligned planes are streamed straight into the
    # output; a plane with a wayward index (in its first or its last row, after rows were
    # streamed) is scattered in scratch and copied out instead; a view one element off the
    # boundary never streams tiles. Every index-check mode; a bad plane with CHECK_WHILE is
    # left as it was.
    from poolkit import reference
    rng = np.random.default_rng(3)
    for H, W in _WIDTHS:
        x = rng.standard_normal((1, 4, H, W)).astype(dtype)
        _, idx = reference.max_pool2d(x, 2, 2, return_indices=True)
        idx = idx[0]
        OH, OW = idx.shape[1:]
        idx[1, 0, 0] += 2 if OW > 1 else W           # plane 1: off its tile, first row
        idx[2, -1, -1] -= 2 if OW > 1 else W         # plane 2: off its tile, last row
        assert idx.min() >= 0 and idx.max() < H * W
        g = rng.standard_normal(idx.shape).astype(dtype)
        g[0, 0, :3] = -0.0
        want = np.zeros((4, H * W), dtype)
        for p in range(4):
            np.add.at(want[p], idx[p].ravel(), g[p].ravel())
        want = want.reshape(4, H, W)
        bad = idx.copy()
        bad[3, 0, 0] = H * W                         # plane 3: out of bounds
        for stream in (0, 1):
            for view in _aligned_and_off(4 * H * W, dtype):
                gi = view.reshape(4, H, W)
                for check in (_max_pool.CHECK_NONE, _max_pool.CHECK_BEFORE,
                              _max_pool.CHECK_WHILE):
                    gi[...] = np.nan
                    assert _max_pool.max_pool2d_backward(g, idx, gi, check, 2, stream) == 0
                    assert gi.tobytes() == want.tobytes(), (H, W, stream, check)
                gi[...] = np.nan
                assert _max_pool.max_pool2d_backward(g, bad, gi, _max_pool.CHECK_WHILE, 2,
                                                     stream) == 1
                assert gi[:3].tobytes() == want[:3].tobytes(), (H, W, stream)
                assert np.isnan(gi[3]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_mean_backward_3x3_streamed_rows_equal_the_reference(dtype):
    # 3x3 windows of stride 2 with one column of padding gather each input row from the
    # shares of the windows covering it; when W == 2 OW and every input row has a window
    # (even H; with ceil mode odd H too), the rows are written in blocks that start at even
    # columns, with streaming stores: stream=1 forces them on small planes. Rows of one and
    # two share rows, whole and overlapping blocks, the last column (one window), both
    # divisor rules, planes gathered whole and row by row; an odd W or a misaligned view
    # takes plain stores.
    from poolkit import _avg_pool, reference
    rng = np.random.default_rng(4)
    for H, W in [(4, 16), (6, 20), (8, 28), (2, 32), (5, 18), (4, 40), (6, 8), (3, 56),
                 (4, 17), (4, 64), (5, 72)]:   # (rows of 32 windows and more: row by row)
        for ceil_mode, count_include_pad, divisor in [(False, True, None), (True, False, None),
                                                      (False, True, 7)]:
            params = dict(kernel_size=3, stride=2, padding=1, ceil_mode=ceil_mode,
                          count_include_pad=count_include_pad, divisor_override=divisor)
            x_shape = (1, 3, H, W)
            oh, ow = reference.avg_pool2d(np.zeros(x_shape, dtype), **params).shape[2:]
            g = rng.standard_normal((1, 3, oh, ow)).astype(dtype)
            g[0, 0, 0, :2] = -0.0
            want = reference.avg_pool2d_backward(g, x_shape, **params)[0]
            for stream in (0, 1):
                for view in _aligned_and_off(3 * H * W, dtype):
                    gi = view.reshape(3, H, W)
                    assert _avg_pool.avg_pool2d_backward(
                        g[0], gi, 3, 3, 2, 2, 1, 1, count_include_pad, divisor or 0, 2,
                        stream) == 0
                    assert gi.tobytes() == want.tobytes(), (H, W, params, stream)
                    gi[...] = np.nan
