"""Any memory layout is accepted, the input is never written, and ``out=`` works.

Every layout gives the same result as a C-contiguous native copy of the same
values: non-contiguous slices, Fortran order, negative strides, read-only,
memory-mapped and non-native byte order inputs, for forward and backward.
``out=`` is filled and returned as the very same object when it is right, and
rejected with ``ValueError`` when it has the wrong shape or dtype, is not
C-contiguous, is read-only, or overlaps an input.
"""

import numpy as np
import pytest

import poolkit

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64])

SHAPE = (2, 3, 7, 6)
MAX_KW = dict(kernel_size=3, stride=2, padding=1, dilation=(1, 2), ceil_mode=True)
AVG_KW = dict(kernel_size=3, stride=(2, 1), padding=1, ceil_mode=True, count_include_pad=False)


def _base(dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(SHAPE).astype(dtype)


def _strided(a):
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    big[..., ::2] = a
    v = big[..., ::2]
    assert not v.flags.c_contiguous and np.shares_memory(v, big)
    return v


def _fortran(a):
    v = np.asfortranarray(a)
    assert not v.flags.c_contiguous
    return v


def _negative(a):
    v = np.ascontiguousarray(a[:, :, ::-1, ::-1])[:, :, ::-1, ::-1]
    assert v.strides[2] < 0 and v.strides[3] < 0
    return v


def _transposed(a):
    # Values equal to a, stored as (N, H, W, C) in memory (a channels-last view).
    v = np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    assert not v.flags.c_contiguous
    return v


def _readonly(a):
    v = a.copy()
    v.setflags(write=False)
    return v


def _byteswapped(a):
    v = a.astype(a.dtype.newbyteorder(">" if a.dtype.byteorder in "=<" else "<"))
    assert not v.dtype.isnative
    return v


LAYOUTS = {
    "strided": _strided,
    "fortran": _fortran,
    "negative_strides": _negative,
    "channels_last": _transposed,
    "readonly": _readonly,
    "non_native_byteorder": _byteswapped,
}


@pytest.fixture(params=list(LAYOUTS) + ["memmap"])
def layout(request, tmp_path):
    """A function turning a C-contiguous array into one with the same values in
    the layout under test."""
    if request.param != "memmap":
        return LAYOUTS[request.param]

    counter = iter(range(1000))

    def _memmap(a):
        path = tmp_path / f"a{next(counter)}.dat"
        w = np.memmap(path, dtype=a.dtype, mode="w+", shape=a.shape)
        w[...] = a
        w.flush()
        del w
        return np.memmap(path, dtype=a.dtype, mode="r", shape=a.shape)

    return _memmap


def _same_native(got, want):
    assert got.dtype == want.dtype and got.dtype.isnative
    assert got.shape == want.shape
    assert got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)


@DTYPES
def test_max_pool_forward_any_layout_matches_contiguous(layout, dtype):
    x = _base(dtype)
    xl = layout(x)
    before = np.array(xl, copy=True)
    vals, idx = poolkit.max_pool2d(xl, return_indices=True, **MAX_KW)
    want_vals, want_idx = poolkit.max_pool2d(x, return_indices=True, **MAX_KW)
    _same_native(vals, want_vals)
    _same_native(idx, want_idx)
    np.testing.assert_array_equal(xl, before)  # never written


@DTYPES
def test_avg_pool_forward_any_layout_matches_contiguous(layout, dtype):
    x = _base(dtype)
    xl = layout(x)
    before = np.array(xl, copy=True)
    _same_native(poolkit.avg_pool2d(xl, **AVG_KW), poolkit.avg_pool2d(x, **AVG_KW))
    np.testing.assert_array_equal(xl, before)


@DTYPES
def test_max_pool_backward_any_layout_matches_contiguous(layout, dtype):
    x = _base(dtype)
    _, idx = poolkit.max_pool2d(x, return_indices=True, **MAX_KW)
    g = np.random.default_rng(1).standard_normal(idx.shape).astype(dtype)
    want = poolkit.max_pool2d_backward(g, idx, SHAPE)
    gl = layout(g)
    il = layout(idx)
    g_before, i_before = np.array(gl, copy=True), np.array(il, copy=True)
    _same_native(poolkit.max_pool2d_backward(gl, il, SHAPE), want)
    np.testing.assert_array_equal(gl, g_before)
    np.testing.assert_array_equal(il, i_before)


@DTYPES
def test_avg_pool_backward_any_layout_matches_contiguous(layout, dtype):
    y = poolkit.avg_pool2d(_base(dtype), **AVG_KW)
    g = np.random.default_rng(2).standard_normal(y.shape).astype(dtype)
    want = poolkit.avg_pool2d_backward(g, SHAPE, **AVG_KW)
    gl = layout(g)
    before = np.array(gl, copy=True)
    _same_native(poolkit.avg_pool2d_backward(gl, SHAPE, **AVG_KW), want)
    np.testing.assert_array_equal(gl, before)


def test_input_shape_as_list_or_numpy_ints_is_accepted():
    g = np.ones((1, 1, 2, 2))
    want = poolkit.avg_pool2d_backward(g, (1, 1, 4, 4), 2)
    np.testing.assert_array_equal(poolkit.avg_pool2d_backward(g, [1, 1, 4, 4], 2), want)
    shape_np = tuple(np.int64(v) for v in (1, 1, 4, 4))
    np.testing.assert_array_equal(poolkit.avg_pool2d_backward(g, shape_np, 2), want)


# --------------------------------------------------------------- out= accepted


def _garbage(shape, dtype):
    return np.full(shape, 12345, dtype=dtype)


@DTYPES
def test_max_pool_out_is_filled_and_returned(dtype):
    x = _base(dtype)
    want = poolkit.max_pool2d(x, **MAX_KW)
    out = _garbage(want.shape, dtype)
    res = poolkit.max_pool2d(x, out=out, **MAX_KW)
    assert res is out
    np.testing.assert_array_equal(out, want)


@DTYPES
def test_max_pool_out_pair_is_filled_and_returned(dtype):
    x = _base(dtype)
    want_v, want_i = poolkit.max_pool2d(x, return_indices=True, **MAX_KW)
    out = (_garbage(want_v.shape, dtype), _garbage(want_i.shape, np.int64))
    v, i = poolkit.max_pool2d(x, return_indices=True, out=out, **MAX_KW)
    assert v is out[0] and i is out[1]
    np.testing.assert_array_equal(v, want_v)
    np.testing.assert_array_equal(i, want_i)


@DTYPES
def test_avg_pool_out_is_filled_and_returned(dtype):
    x = _base(dtype)
    want = poolkit.avg_pool2d(x, **AVG_KW)
    out = _garbage(want.shape, dtype)
    assert poolkit.avg_pool2d(x, out=out, **AVG_KW) is out
    np.testing.assert_array_equal(out, want)


@DTYPES
def test_max_pool_backward_out_is_overwritten_not_accumulated(dtype):
    x = _base(dtype)
    _, idx = poolkit.max_pool2d(x, return_indices=True, **MAX_KW)
    g = np.ones(idx.shape, dtype=dtype)
    want = poolkit.max_pool2d_backward(g, idx, SHAPE)
    out = _garbage(SHAPE, dtype)  # stale contents must be cleared, not added to
    assert poolkit.max_pool2d_backward(g, idx, SHAPE, out=out) is out
    np.testing.assert_array_equal(out, want)


@DTYPES
def test_avg_pool_backward_out_is_overwritten_not_accumulated(dtype):
    y = poolkit.avg_pool2d(_base(dtype), **AVG_KW)
    g = np.ones(y.shape, dtype=dtype)
    want = poolkit.avg_pool2d_backward(g, SHAPE, **AVG_KW)
    out = _garbage(SHAPE, dtype)
    assert poolkit.avg_pool2d_backward(g, SHAPE, out=out, **AVG_KW) is out
    np.testing.assert_array_equal(out, want)


def test_out_on_3d_input_is_3d():
    x = _base(np.float64)[0]
    want = poolkit.avg_pool2d(x, 2)
    out = np.empty(want.shape)
    assert poolkit.avg_pool2d(x, 2, out=out) is out
    np.testing.assert_array_equal(out, want)


# --------------------------------------------------------------- out= rejected


def _bad_outs(shape, dtype):
    """(id, out) pairs each wrong in exactly one way."""
    wrong_dtype = np.float32 if np.dtype(dtype) == np.float64 else np.float64
    readonly = np.zeros(shape, dtype)
    readonly.setflags(write=False)
    noncontig = np.zeros(shape[:-1] + (2 * shape[-1],), dtype)[..., ::2]
    fortran = np.asfortranarray(np.zeros(shape, dtype))
    bigger = shape[:-1] + (shape[-1] + 1,)
    return [
        ("wrong_shape", np.zeros(bigger, dtype)),
        ("wrong_ndim", np.zeros((1,) + shape, dtype)),
        ("flat", np.zeros(int(np.prod(shape)), dtype)),
        ("wrong_dtype", np.zeros(shape, wrong_dtype)),
        ("non_contiguous", noncontig),
        ("fortran", fortran),
        ("readonly", readonly),
        ("byteswapped", np.zeros(shape, np.dtype(dtype).newbyteorder())),
    ]


BAD_OUT_IDS = [
    "wrong_shape", "wrong_ndim", "flat", "wrong_dtype", "non_contiguous", "fortran",
    "readonly", "byteswapped",
]


def _pick(shape, dtype, which):
    out = dict(_bad_outs(shape, dtype))[which]
    assert which != "fortran" or not out.flags.c_contiguous
    return out


@DTYPES
@pytest.mark.parametrize("which", BAD_OUT_IDS)
def test_max_pool_bad_out_raises_value_error(dtype, which):
    x = _base(dtype)
    shape = poolkit.max_pool2d(x, **MAX_KW).shape
    out = _pick(shape, dtype, which)
    before = np.array(out, copy=True)
    with pytest.raises(ValueError, match="out"):
        poolkit.max_pool2d(x, out=out, **MAX_KW)
    np.testing.assert_array_equal(out, before)


@DTYPES
@pytest.mark.parametrize("which", BAD_OUT_IDS)
def test_max_pool_bad_values_in_out_pair_raises_value_error(dtype, which):
    x = _base(dtype)
    shape = poolkit.max_pool2d(x, **MAX_KW).shape
    out = (_pick(shape, dtype, which), np.zeros(shape, np.int64))
    with pytest.raises(ValueError, match="out"):
        poolkit.max_pool2d(x, return_indices=True, out=out, **MAX_KW)


@DTYPES
@pytest.mark.parametrize("which", BAD_OUT_IDS)
def test_max_pool_bad_indices_in_out_pair_raises_value_error(dtype, which):
    x = _base(dtype)
    shape = poolkit.max_pool2d(x, **MAX_KW).shape
    bad_idx = _pick(shape, np.int64, which) if which != "wrong_dtype" else np.zeros(shape, np.int32)
    out = (np.zeros(shape, dtype), bad_idx)
    with pytest.raises(ValueError, match="out"):
        poolkit.max_pool2d(x, return_indices=True, out=out, **MAX_KW)


@DTYPES
def test_max_pool_out_must_match_return_indices(dtype):
    x = _base(dtype)
    v, i = poolkit.max_pool2d(x, return_indices=True, **MAX_KW)
    with pytest.raises(ValueError, match="out"):
        poolkit.max_pool2d(x, return_indices=True, out=np.empty_like(v), **MAX_KW)
    with pytest.raises(ValueError, match="out"):
        poolkit.max_pool2d(x, out=(np.empty_like(v), np.empty_like(i)), **MAX_KW)
    with pytest.raises(ValueError, match="out"):
        poolkit.max_pool2d(x, return_indices=True, out=(np.empty_like(v),), **MAX_KW)


@DTYPES
@pytest.mark.parametrize("which", BAD_OUT_IDS)
def test_avg_pool_bad_out_raises_value_error(dtype, which):
    x = _base(dtype)
    shape = poolkit.avg_pool2d(x, **AVG_KW).shape
    out = _pick(shape, dtype, which)
    with pytest.raises(ValueError, match="out"):
        poolkit.avg_pool2d(x, out=out, **AVG_KW)


@DTYPES
@pytest.mark.parametrize("which", BAD_OUT_IDS)
def test_max_pool_backward_bad_out_raises_value_error(dtype, which):
    x = _base(dtype)
    _, idx = poolkit.max_pool2d(x, return_indices=True, **MAX_KW)
    g = np.ones(idx.shape, dtype)
    out = _pick(SHAPE, dtype, which)
    with pytest.raises(ValueError, match="out"):
        poolkit.max_pool2d_backward(g, idx, SHAPE, out=out)


@DTYPES
@pytest.mark.parametrize("which", BAD_OUT_IDS)
def test_avg_pool_backward_bad_out_raises_value_error(dtype, which):
    g = np.ones(poolkit.avg_pool2d(_base(dtype), **AVG_KW).shape, dtype)
    out = _pick(SHAPE, dtype, which)
    with pytest.raises(ValueError, match="out"):
        poolkit.avg_pool2d_backward(g, SHAPE, out=out, **AVG_KW)


# ------------------------------------------------------------ out= overlapping


@DTYPES
def test_out_that_is_the_input_raises_value_error(dtype):
    x = _base(dtype)
    before = x.copy()
    # kernel 1, stride 1: the output has the input's shape and dtype.
    with pytest.raises(ValueError, match="out"):
        poolkit.avg_pool2d(x, 1, out=x)
    with pytest.raises(ValueError, match="out"):
        poolkit.max_pool2d(x, 1, out=x)
    np.testing.assert_array_equal(x, before)


@DTYPES
def test_out_overlapping_part_of_the_input_raises_value_error(dtype):
    # One buffer; x is its start, out a C-contiguous view straddling x's end.
    out_shape = (2, 3, 3, 3)  # SHAPE pooled by 2
    n_x, n_out = int(np.prod(SHAPE)), int(np.prod(out_shape))
    buf = np.random.default_rng(0).standard_normal(n_x + n_out).astype(dtype)
    x = buf[:n_x].reshape(SHAPE)
    out = buf[n_x - n_out // 2 : n_x - n_out // 2 + n_out].reshape(out_shape)
    assert poolkit.avg_pool2d(x, 2).shape == out_shape
    assert out.flags.c_contiguous and np.shares_memory(out, x)
    before = buf.copy()
    with pytest.raises(ValueError, match="out"):
        poolkit.avg_pool2d(x, 2, out=out)
    with pytest.raises(ValueError, match="out"):
        poolkit.max_pool2d(x, 2, out=out)
    np.testing.assert_array_equal(buf, before)


def test_out_values_and_indices_sharing_memory_raise_value_error():
    x = _base(np.float64)
    shape = poolkit.max_pool2d(x, 2).shape
    buf = np.zeros(int(np.prod(shape)) * 8, dtype=np.uint8)
    v = buf.view(np.float64).reshape(shape)
    i = buf.view(np.int64).reshape(shape)
    with pytest.raises(ValueError, match="out"):
        poolkit.max_pool2d(x, 2, return_indices=True, out=(v, i))


@DTYPES
def test_backward_out_overlapping_grad_output_raises_value_error(dtype):
    g = _base(dtype)
    with pytest.raises(ValueError, match="out"):
        poolkit.avg_pool2d_backward(g, g.shape, 1, out=g)
    idx = np.broadcast_to(np.arange(SHAPE[2] * SHAPE[3]).reshape(SHAPE[2:]), SHAPE).copy()
    with pytest.raises(ValueError, match="out"):
        poolkit.max_pool2d_backward(g, idx, SHAPE, out=g)


def test_max_backward_out_overlapping_indices_raises_value_error():
    idx = np.zeros((1, 1, 2, 2), dtype=np.int64)
    out = idx.view(np.float64)
    with pytest.raises(ValueError, match="out"):
        poolkit.max_pool2d_backward(np.ones((1, 1, 2, 2)), idx, (1, 1, 2, 2), out=out)
