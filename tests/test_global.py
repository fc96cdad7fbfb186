"""Global average and global max pooling: forward, backward, layers.

- Property tests against ``poolkit.reference`` (shapes, both dtypes, ties, NaN and
  infinities, ``keepdims``, 3-D input, empty batches).
- Accuracy: float32 sums are accumulated in double, so a 224 x 224 plane keeps a relative
  error below 1e-6 against a float64 mean (a float32 running sum does not).
- Planes longer than one kernel chunk (4096 elements): the argmax semantics (first maximum,
  first NaN) hold across chunk boundaries, and results are bitwise the same for any thread
  count, few large planes included.
- Gradients: conservation, finite differences, PyTorch parity (``mean`` and
  ``adaptive_max_pool2d(x, 1)``) when torch is importable.
- Layouts, ``out=``, error cases and the layer classes.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import poolkit
from poolkit import reference
from _strategies import atol_for, distinct_input, dtypes, input_kinds, make_input, rtol_for, seeds

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64])


@st.composite
def global_shapes(draw, max_nc=3, max_hw=12):
    n, c = draw(st.integers(0, max_nc)), draw(st.integers(0, max_nc))
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    if draw(st.sampled_from([False, False, True])):
        return (c, h, w)
    return (n, c, h, w)


def _pooled(shape, keepdims):
    return tuple(shape[:-2]) + ((1, 1) if keepdims else ())


# ----------------------------------------------------------------------- vs the reference


@given(shape=global_shapes(), dtype=dtypes, kind=input_kinds, seed=seeds, keepdims=st.booleans())
def test_global_avg_matches_reference(shape, dtype, kind, seed, keepdims):
    x = make_input(shape, dtype, kind, seed)
    got = poolkit.global_avg_pool2d(x, keepdims=keepdims)
    want = reference.global_avg_pool2d(x, keepdims=keepdims)
    assert got.shape == want.shape == _pooled(shape, keepdims)
    assert got.dtype == dtype and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=rtol_for(dtype), atol=atol_for(dtype))


@given(shape=global_shapes(), dtype=dtypes, kind=input_kinds, seed=seeds, keepdims=st.booleans())
def test_global_max_matches_reference(shape, dtype, kind, seed, keepdims):
    x = make_input(shape, dtype, kind, seed)
    vals, idx = poolkit.global_max_pool2d(x, keepdims=keepdims, return_indices=True)
    ref_vals, ref_idx = reference.global_max_pool2d(x, keepdims=keepdims, return_indices=True)
    assert vals.shape == idx.shape == _pooled(shape, keepdims)
    assert vals.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(vals, ref_vals)  # NaN == NaN here
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(poolkit.global_max_pool2d(x, keepdims=keepdims), vals)


@given(shape=global_shapes(), dtype=dtypes, seed=seeds, keepdims=st.booleans())
def test_global_backward_matches_reference(shape, dtype, seed, keepdims):
    g = make_input(_pooled(shape, keepdims), dtype, "normal", seed)
    np.testing.assert_array_equal(
        poolkit.global_avg_pool2d_backward(g, shape),
        reference.global_avg_pool2d_backward(g, shape),
    )
    x = make_input(shape, dtype, "ties", seed + 1)
    _, idx = poolkit.global_max_pool2d(x, keepdims=keepdims, return_indices=True)
    got = poolkit.global_max_pool2d_backward(g, idx, shape)
    assert got.shape == shape and got.dtype == dtype
    np.testing.assert_array_equal(got, reference.global_max_pool2d_backward(g, idx, shape))


# ------------------------------------------------------------------------------ accuracy


def test_float32_mean_of_a_224_plane_is_accurate():
    rng = np.random.default_rng(0)
    # A large common offset is the hard case for a float32 running sum (sum ~ 5e7, where
    # float32 spacing is 4).
    x = (1000.0 + rng.random((2, 3, 224, 224))).astype(np.float32)
    exact = x.astype(np.float64).mean(axis=(2, 3))
    got = poolkit.global_avg_pool2d(x)
    rel = np.abs(got.astype(np.float64) - exact) / np.abs(exact)
    assert rel.max() < 1e-6
    # The check has teeth: a float32 running sum is far off here.
    naive = np.cumsum(x.reshape(6, -1), axis=1, dtype=np.float32)[:, -1] / np.float32(224 * 224)
    assert (np.abs(naive - exact.ravel()) / np.abs(exact.ravel())).max() > 1e-5
    # The adaptive (1, 1) path is the same kernel.
    np.testing.assert_array_equal(poolkit.adaptive_avg_pool2d(x, 1)[..., 0, 0], got)


def test_float32_mean_with_cancellation_is_accurate():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 4, 224, 224)).astype(np.float32) * 1e4
    x += np.float32(3.0)  # a small mean under large, cancelling values
    exact = x.astype(np.float64).mean(axis=(2, 3))
    got = poolkit.global_avg_pool2d(x).astype(np.float64)
    # Double accumulation: the error is the final float32 rounding, not the sum's.
    np.testing.assert_allclose(got, exact, rtol=2 ** -23)


def _lane_order_mean(plane):
    """The documented summation order (_reduce_helpers.pxd), in NumPy: per chunk of 4096, 16
    double lanes over whole blocks of 16, folded pairwise (l + 8, l + 4, l + 2, l + 1), then
    the tail in order; the chunk sums added in order; divided by the size in double."""
    total = 0.0
    for lo in range(0, plane.size, 4096):
        chunk = plane[lo:lo + 4096].astype(np.float64)
        nb = chunk.size // 16 * 16
        acc = np.zeros(16)
        for block in chunk[:nb].reshape(-1, 16):
            acc = acc + block
        for w in (8, 4, 2, 1):
            acc = acc[:w] + acc[w:2 * w]
        s = acc[0]
        for v in chunk[nb:]:
            s = s + v
        total = total + s
    return total / plane.size


@DTYPES
def test_sums_follow_the_documented_lane_order_bit_for_bit(dtype):
    # Every sum loop (AVX2 intrinsics, vector extensions, plain C) keeps the one order, so a
    # result does not depend on the CPU; plane sizes around the 16-lane blocks and chunks.
    rng = np.random.default_rng(5)
    for hw in (1, 15, 16, 17, 31, 32, 33, 47, 784, 4095, 4096, 4097, 8200):
        # as many +1e30 as -1e30 among small values: the small ones survive or not
        # depending on the order of every addition (a float32 result would hide a last-bit
        # difference of ordinary sums)
        x = rng.choice([1.0, -3.0, 0.5], size=(1, 3, 1, hw)).astype(dtype)
        for c in range(3):
            pos = rng.permutation(hw)
            k = hw // 4   # k of each: half the values stay small
            x[0, c, 0, pos[:k]] = 1e30
            x[0, c, 0, pos[k:2 * k]] = -1e30
        got = poolkit.global_avg_pool2d(x)
        want = [dtype(_lane_order_mean(x[0, c, 0])) for c in range(3)]
        assert got[0].tobytes() == np.array(want, dtype).tobytes(), hw


# ------------------------------------------------------------- chunks and thread counts


def _big_plane(dtype, h=97, w=131, seed=0):  # 12707 elements: four chunks
    return make_input((1, 1, h, w), dtype, "normal", seed)


@DTYPES
def test_global_max_first_maximum_across_chunks(dtype):
    x = _big_plane(dtype)
    flat = x.reshape(-1)
    flat[9000] = 50.0
    flat[12000] = 50.0  # a later tie in a later chunk must not win
    flat[5000] = 49.0
    v, i = poolkit.global_max_pool2d(x, return_indices=True)
    assert v[0, 0] == 50.0 and i[0, 0] == 9000


@DTYPES
def test_global_max_first_nan_across_chunks(dtype):
    x = _big_plane(dtype)
    flat = x.reshape(-1)
    flat[100] = np.inf
    flat[8200] = np.nan
    flat[12500] = np.nan
    v, i = poolkit.global_max_pool2d(x, return_indices=True)
    assert np.isnan(v[0, 0]) and i[0, 0] == 8200


@DTYPES
def test_global_max_special_planes(dtype):
    x = np.full((1, 3, 70, 70), -np.inf, dtype=dtype)       # 4900 elements: two chunks
    x[0, 1] = 0.0
    x[0, 1].flat[4800] = -0.0                                 # -0.0 == 0.0: the first wins
    x[0, 2, 0, 0] = -0.0
    v, i = poolkit.global_max_pool2d(x, return_indices=True)
    np.testing.assert_array_equal(v[0], [-np.inf, 0.0, 0.0])
    np.testing.assert_array_equal(i[0], [0, 0, 0])
    assert not np.signbit(v[0, 1]) and np.signbit(v[0, 2])
    ref_v, ref_i = reference.global_max_pool2d(x, return_indices=True)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_array_equal(np.signbit(v), np.signbit(ref_v))


@DTYPES
def test_multi_chunk_planes_match_reference(dtype):
    x = make_input((1, 2, 70, 64), dtype, "special", 3)
    np.testing.assert_allclose(poolkit.global_avg_pool2d(x), reference.global_avg_pool2d(x),
                               rtol=rtol_for(dtype))
    v, i = poolkit.global_max_pool2d(x, return_indices=True)
    rv, ri = reference.global_max_pool2d(x, return_indices=True)
    np.testing.assert_array_equal(v, rv)
    np.testing.assert_array_equal(i, ri)


# Inputs above _threads.SMALL_WORK, so that more than one thread runs: whole planes split
# statically (the float32 one within the threads' L2 caches), whole planes handed out
# dynamically, and chunks of few large planes.
THREADED_SHAPES = [(2, 16, 64, 64), (4, 16, 96, 96), (1, 3, 300, 300)]


def test_threaded_shapes_are_large_enough_to_be_split():
    from poolkit import _threads

    for shape in THREADED_SHAPES:
        assert int(np.prod(shape[:2])) * shape[2] * shape[3] >= _threads.SMALL_WORK


@DTYPES
@pytest.mark.parametrize("shape", [(4, 8, 40, 40), (1, 1, 300, 300), (1, 3, 130, 70),
                                   (2, 4, 70, 70)]  # 8 planes: whole planes or chunks
                         + THREADED_SHAPES)
def test_results_do_not_depend_on_thread_count(shape, dtype):
    x = make_input(shape, dtype, "normal", 7)
    x.reshape(-1)[::977] = np.nan
    g = make_input(shape[:2], dtype, "normal", 8)
    runs = []
    for nt in (1, 2, 3, None, -1):
        v, i = poolkit.global_max_pool2d(x, return_indices=True, n_threads=nt)
        runs.append((
            poolkit.global_avg_pool2d(x, n_threads=nt), v, i,
            poolkit.global_avg_pool2d_backward(g, shape, n_threads=nt),
            poolkit.global_max_pool2d_backward(g, i, shape, n_threads=nt),
        ))
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert a.tobytes() == b.tobytes()


@DTYPES
def test_forward_kernels_need_scratch_only_for_chunked_planes(dtype):
    """The facade passes no scratch arrays (None) when the kernels take whole planes; a kernel
    that would split planes into chunks refuses to run without them instead of writing
    through a missing array."""
    from poolkit import _global_pool

    few = make_input((2, 5000), dtype, "normal", 1)     # 2 planes, 2 chunks each
    out, idx = np.empty(2, dtype), np.empty(2, np.int64)
    with pytest.raises(ValueError, match="scratch"):
        _global_pool.global_avg_pool2d_forward(few, out, None, 1)
    with pytest.raises(ValueError, match="scratch"):
        _global_pool.global_avg_pool2d_forward(few, out, np.empty(3), 1)
    with pytest.raises(ValueError, match="scratch"):
        _global_pool.global_max_pool2d_forward(few, out, idx, np.empty(4, dtype), None, 1)
    _global_pool.global_avg_pool2d_forward(few, out, np.empty(4), 1)
    np.testing.assert_array_equal(out, poolkit.global_avg_pool2d(few.reshape(1, 2, 50, 100))[0])

    many = make_input((8, 5000), dtype, "normal", 2)    # whole planes: no scratch needed
    out8, idx8 = np.empty(8, dtype), np.empty(8, np.int64)
    _global_pool.global_avg_pool2d_forward(many, out8, None, 2)
    np.testing.assert_array_equal(out8, poolkit.global_avg_pool2d(many.reshape(1, 8, 50, 100))[0])
    _global_pool.global_max_pool2d_forward(many, out8, idx8, None, None, 2)
    np.testing.assert_array_equal(idx8, many.argmax(axis=1))


# ---------------------------------------------------------------------------- gradients


@given(n=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
       dtype=dtypes, seed=seeds)
@settings(max_examples=30)
def test_global_backward_conserves_gradient(n, c, h, w, dtype, seed):
    g = make_input((n, c), dtype, "normal", seed)
    gx = poolkit.global_avg_pool2d_backward(g, (n, c, h, w))
    np.testing.assert_allclose(gx.sum(axis=(2, 3), dtype=np.float64), g, rtol=1e-5, atol=1e-6)
    x = make_input((n, c, h, w), dtype, "ties", seed + 1)
    _, idx = poolkit.global_max_pool2d(x, return_indices=True)
    gm = poolkit.global_max_pool2d_backward(g, idx, (n, c, h, w))
    np.testing.assert_array_equal(gm.sum(axis=(2, 3)), g)  # one non-zero per plane
    assert np.count_nonzero(gm) == np.count_nonzero(g)


def _numerical_grad(f, x, g, eps=1e-6):
    num = np.zeros_like(x)
    for i in range(x.size):
        d = np.zeros_like(x)
        d.flat[i] = eps
        num.flat[i] = ((f(x + d) - f(x - d)) * g).sum() / (2 * eps)
    return num


@pytest.mark.parametrize("keepdims", [False, True])
def test_global_finite_differences(keepdims):
    x = distinct_input((2, 2, 3, 4), np.float64, seed=4)
    g = make_input(_pooled(x.shape, keepdims), np.float64, "normal", 5)
    num = _numerical_grad(lambda a: poolkit.global_avg_pool2d(a, keepdims), x, g)
    np.testing.assert_allclose(poolkit.global_avg_pool2d_backward(g, x.shape), num, atol=1e-8)
    _, idx = poolkit.global_max_pool2d(x, keepdims, return_indices=True)
    num = _numerical_grad(lambda a: poolkit.global_max_pool2d(a, keepdims), x, g)
    np.testing.assert_allclose(poolkit.global_max_pool2d_backward(g, idx, x.shape), num,
                               atol=1e-8)


# ------------------------------------------------------------------------------- PyTorch


@DTYPES
@pytest.mark.parametrize("shape", [(2, 3, 7, 5), (1, 4, 1, 1), (3, 2, 70, 65), (2, 6, 5)])
def test_torch_parity(shape, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = distinct_input(shape, dtype, seed=11)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    # average: torch's mean and adaptive_avg_pool2d(x, 1), forward and autograd backward
    mean = xt.mean(dim=(-2, -1))
    np.testing.assert_allclose(poolkit.global_avg_pool2d(x), mean.detach().numpy(),
                               rtol=rtol_for(dtype), atol=atol_for(dtype))
    np.testing.assert_allclose(poolkit.global_avg_pool2d(x, keepdims=True),
                               F.adaptive_avg_pool2d(xt, 1).detach().numpy(),
                               rtol=rtol_for(dtype), atol=atol_for(dtype))
    g = make_input(mean.shape, dtype, "normal", 12)
    mean.backward(torch.from_numpy(g))
    np.testing.assert_allclose(poolkit.global_avg_pool2d_backward(g, shape), xt.grad.numpy(),
                               rtol=rtol_for(dtype))
    # max: adaptive_max_pool2d(x, 1) with indices, and its autograd backward
    xt.grad = None
    tv, ti = F.adaptive_max_pool2d(xt, 1, return_indices=True)
    v, i = poolkit.global_max_pool2d(x, keepdims=True, return_indices=True)
    np.testing.assert_array_equal(v, tv.detach().numpy())
    np.testing.assert_array_equal(i, ti.numpy())
    gk = g.reshape(v.shape)
    tv.backward(torch.from_numpy(gk))
    np.testing.assert_array_equal(poolkit.global_max_pool2d_backward(gk, i, shape),
                                  xt.grad.numpy())


# ----------------------------------------------------------------- shapes, layouts, out=


@DTYPES
@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (2, 0, 4, 4), (0, 5, 5)])
def test_empty_batches(shape, dtype):
    x = np.zeros(shape, dtype)
    for keepdims in (False, True):
        assert poolkit.global_avg_pool2d(x, keepdims).shape == _pooled(shape, keepdims)
        v, i = poolkit.global_max_pool2d(x, keepdims, return_indices=True)
        assert v.shape == i.shape == _pooled(shape, keepdims) and i.dtype == np.int64
        g = np.zeros(_pooled(shape, keepdims), dtype)
        assert poolkit.global_avg_pool2d_backward(g, shape).shape == shape
        assert poolkit.global_max_pool2d_backward(g, i, shape).shape == shape


def _layouts(x):
    yield np.asfortranarray(x)
    yield np.ascontiguousarray(x[:, :, ::-1, ::-1])[:, :, ::-1, ::-1]  # negative strides
    big = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)
    big[..., ::2] = x
    yield big[..., ::2]
    yield np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    ro = x.copy()
    ro.flags.writeable = False
    yield ro
    yield x.astype(x.dtype.newbyteorder(">" if x.dtype.byteorder != ">" else "<"))


@DTYPES
def test_any_layout_gives_the_same_result(dtype, tmp_path):
    x = make_input((2, 3, 6, 5), dtype, "special", 2)
    want_avg = poolkit.global_avg_pool2d(x)
    want_v, want_i = poolkit.global_max_pool2d(x, return_indices=True)
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=dtype, shape=x.shape)
    mm[...] = x
    for v in list(_layouts(x)) + [np.load(tmp_path / "x.npy", mmap_mode="r")]:
        before = v.copy()
        np.testing.assert_array_equal(poolkit.global_avg_pool2d(v), want_avg)
        got_v, got_i = poolkit.global_max_pool2d(v, return_indices=True)
        np.testing.assert_array_equal(got_v, want_v)
        np.testing.assert_array_equal(got_i, want_i)
        np.testing.assert_array_equal(v, before)
    g = make_input((2, 3), dtype, "normal", 3)
    want_g = poolkit.global_avg_pool2d_backward(g, x.shape)
    for gl in (g[:, ::-1][:, ::-1], g.astype(g.dtype.newbyteorder(">")), np.asfortranarray(g)):
        np.testing.assert_array_equal(poolkit.global_avg_pool2d_backward(gl, x.shape), want_g)


@DTYPES
def test_out_argument(dtype):
    x = make_input((2, 3, 4, 5), dtype, "normal", 0)
    out = np.empty((2, 3, 1, 1), dtype)
    assert poolkit.global_avg_pool2d(x, True, out=out) is out
    np.testing.assert_array_equal(out, poolkit.global_avg_pool2d(x, True))
    pair = (np.empty((2, 3), dtype), np.empty((2, 3), np.int64))
    v, i = poolkit.global_max_pool2d(x, return_indices=True, out=pair)
    assert v is pair[0] and i is pair[1]
    gi = np.empty(x.shape, dtype)
    assert poolkit.global_avg_pool2d_backward(v, x.shape, out=gi) is gi
    assert poolkit.global_max_pool2d_backward(v, i, x.shape, out=gi) is gi
    bad = [np.empty((2, 3, 1), dtype), np.empty((2, 3), np.float16 if dtype == np.float32
                                                 else np.float32), np.empty((3, 2), dtype).T]
    ro = np.empty((2, 3), dtype)
    ro.flags.writeable = False
    for o in bad + [ro]:
        with pytest.raises(ValueError):
            poolkit.global_avg_pool2d(x, out=o)
    with pytest.raises(ValueError, match="overlap"):
        xx = make_input((2, 3, 1, 1), dtype, "normal", 1)
        poolkit.global_avg_pool2d(xx, True, out=xx)
    with pytest.raises(ValueError, match="pair"):
        poolkit.global_max_pool2d(x, return_indices=True, out=np.empty((2, 3), dtype))


# -------------------------------------------------------------------------------- errors


def test_errors():
    x = np.zeros((1, 2, 3, 3), np.float32)
    with pytest.raises(TypeError, match="float32 or float64"):
        poolkit.global_avg_pool2d(x.astype(np.int32))
    with pytest.raises(TypeError, match="float32 or float64"):
        poolkit.global_max_pool2d(x.astype(np.float16))
    with pytest.raises(ValueError, match="4-D"):
        poolkit.global_avg_pool2d(np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="H > 0"):
        poolkit.global_max_pool2d(np.zeros((1, 2, 0, 3), np.float32))
    with pytest.raises(TypeError, match="keepdims"):
        poolkit.global_avg_pool2d(x, keepdims=1)
    with pytest.raises(ValueError, match="n_threads"):
        poolkit.global_avg_pool2d(x, n_threads=0)
    g = np.ones((1, 2), np.float32)
    with pytest.raises(ValueError, match="grad_output must have shape"):
        poolkit.global_avg_pool2d_backward(np.ones((1, 3), np.float32), (1, 2, 3, 3))
    with pytest.raises(ValueError, match="grad_output must have shape"):
        poolkit.global_avg_pool2d_backward(np.ones((1, 2, 1), np.float32), (1, 2, 3, 3))
    with pytest.raises(ValueError, match="H > 0"):
        poolkit.global_avg_pool2d_backward(g, (1, 2, 0, 3))
    with pytest.raises(ValueError, match="input_shape"):
        poolkit.global_avg_pool2d_backward(g, (2, 3, 3))
    with pytest.raises(TypeError, match="float32 or float64"):
        poolkit.global_avg_pool2d_backward(g.astype(int), (1, 2, 3, 3))
    with pytest.raises(TypeError, match="integer"):
        poolkit.global_max_pool2d_backward(g, g, (1, 2, 3, 3))
    with pytest.raises(ValueError, match="shape of grad_output"):
        poolkit.global_max_pool2d_backward(g, np.zeros((1, 2, 1, 1), int), (1, 2, 3, 3))
    for bad in (9, -1):
        out = np.full((1, 2, 3, 3), 7.0, np.float32)
        with pytest.raises(ValueError, match=r"\[0, 9\)"):
            poolkit.global_max_pool2d_backward(g, np.array([[0, bad]]), (1, 2, 3, 3), out=out)
        assert (out == 7.0).all()  # nothing written


# -------------------------------------------------------------------------------- layers


@DTYPES
@pytest.mark.parametrize("keepdims", [False, True])
def test_layers_match_functions(dtype, keepdims):
    x = make_input((2, 3, 5, 4), dtype, "ties", 0)
    gap = poolkit.GlobalAvgPool2d(keepdims=keepdims, n_threads=1)
    y = gap(x)
    np.testing.assert_array_equal(y, poolkit.global_avg_pool2d(x, keepdims))
    g = make_input(y.shape, dtype, "normal", 1)
    np.testing.assert_array_equal(gap.backward(g), poolkit.global_avg_pool2d_backward(g, x.shape))
    gmp = poolkit.GlobalMaxPool2d(keepdims=keepdims)
    y = gmp.forward(x)
    v, i = poolkit.global_max_pool2d(x, keepdims, return_indices=True)
    np.testing.assert_array_equal(y, v)
    np.testing.assert_array_equal(gmp.backward(g),
                                  poolkit.global_max_pool2d_backward(g, i, x.shape))
    yv, yi = poolkit.GlobalMaxPool2d(keepdims, return_indices=True)(x)
    np.testing.assert_array_equal(yv, v)
    np.testing.assert_array_equal(yi, i)
    # 3-D input
    np.testing.assert_array_equal(gap(x[0]), poolkit.global_avg_pool2d(x[0], keepdims))
    assert gap.backward(g[0]).shape == x[0].shape


def test_layer_protocol():
    for layer in (poolkit.GlobalAvgPool2d(), poolkit.GlobalMaxPool2d()):
        with pytest.raises(RuntimeError, match="before forward"):
            layer.backward(np.ones((1, 1)))
        layer(np.ones((2, 3, 4, 4)))
        with pytest.raises(ValueError, match="shape"):
            layer.backward(np.ones((2, 3, 1, 1)))
        assert layer.eval() is layer and not layer.training
        assert layer.train().training
    assert repr(poolkit.GlobalAvgPool2d(True)) == "GlobalAvgPool2d(keepdims=True)"
    assert repr(poolkit.GlobalMaxPool2d()) == "GlobalMaxPool2d(keepdims=False, return_indices=False)"
    with pytest.raises(TypeError, match="keepdims"):
        poolkit.GlobalAvgPool2d(keepdims="yes")
