"""Streamed outputs: kernels that build each output plane in a scratch buffer and copy it out
with non-temporal stores (large outputs only, see pyx/_stream_helpers.pxd) give bitwise the
results of writing in place. The facade streams only outputs of 16 MiB and more; these tests
call the kernels with ``stream=1`` (always) and ``stream=0`` (never) on small planes, so the
scratch path is covered by the suite without large arrays: planes of every alignment (odd
sizes put plane starts off the 16-byte boundary the streaming stores need)."""

import numpy as np
import pytest

from poolkit import _avg_pool, _max_pool

DTYPES = [np.float32, np.float64]
WINDOWS = [(2, 2, 0, 1), (3, 2, 1, 1), (3, 1, 1, 1), (2, 1, 0, 2)]  # k, s, p, dilation
SHAPES = [(3, 7, 9), (5, 8, 8), (2, 3, 5), (4, 13, 6)]


def _out_side(L, k, s, p, d):
    return (L + 2 * p - d * (k - 1) - 1) // s + 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("window", WINDOWS)
@pytest.mark.parametrize("with_indices", [True, False])
def test_max_forward_streamed_equals_in_place(dtype, shape, window, with_indices):
    k, s, p, d = window
    P, H, W = shape
    OH, OW = _out_side(H, k, s, p, d), _out_side(W, k, s, p, d)
    if OH < 1 or OW < 1:
        pytest.skip("no output")
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    x[0, 0, 0] = np.nan
    results = []
    for stream in (0, 1):
        v = np.full((P, OH, OW), 99, dtype)
        i = np.full((P, OH, OW), -5, np.int64) if with_indices else None
        assert _max_pool.max_pool2d_forward(x, v, i, k, k, s, s, p, p, d, d, 2, stream) == 0
        results.append((v, i))
    (v0, i0), (v1, i1) = results
    assert v0.tobytes() == v1.tobytes()
    if with_indices:
        np.testing.assert_array_equal(i0, i1)


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


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("window", [(2, 2, 0), (3, 2, 1), (3, 1, 1), (3, 3, 0), (2, 1, 1)])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_mean_forward_and_backward_streamed_equal_in_place(dtype, shape, window,
                                                           count_include_pad):
    k, s, p = window
    P, H, W = shape
    OH, OW = _out_side(H, k, s, p, 1), _out_side(W, k, s, p, 1)
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal((P, OH, OW)).astype(dtype)
    fwd, bwd = [], []
    for stream in (0, 1):
        out = np.full((P, OH, OW), 99, dtype)
        assert _avg_pool.avg_pool2d_forward(x, out, k, k, s, s, p, p, count_include_pad, 0, 2,
                                            stream) == 0
        gi = np.full(shape, 99, dtype)
        assert _avg_pool.avg_pool2d_backward(g, gi, k, k, s, s, p, p, count_include_pad, 0, 2,
                                             stream) == 0
        fwd.append(out)
        bwd.append(gi)
    assert fwd[0].tobytes() == fwd[1].tobytes()
    assert bwd[0].tobytes() == bwd[1].tobytes()
    assert not np.any(bwd[0] == 99)   # every position written
