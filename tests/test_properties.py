"""Property-based tests: the compiled path agrees with the pure-Python reference.

Shapes, every pooling parameter, both dtypes and three kinds of input (random
normals; many ties; NaN and infinities) are drawn by Hypothesis. Max pooling
must agree exactly (values NaN-aware, indices bit for bit); average pooling to
a tight relative tolerance, since the order of a floating-point sum may differ.
Thread counts must not change any result by a single bit.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import poolkit
from poolkit import reference
from _strategies import (
    atol_for,
    avg_pool_cases,
    dtypes,
    expected_out_hw,
    input_kinds,
    make_input,
    max_pool_cases,
    rtol_for,
    seeds,
)


@given(case=max_pool_cases(), dtype=dtypes, kind=input_kinds, seed=seeds)
def test_max_pool_forward_matches_reference(case, dtype, kind, seed):
    shape, params = case
    x = make_input(shape, dtype, kind, seed)
    vals, idx = poolkit.max_pool2d(x, return_indices=True, **params)
    ref_vals, ref_idx = reference.max_pool2d(x, return_indices=True, **params)

    assert vals.shape == ref_vals.shape == shape[:-2] + expected_out_hw(shape[-2:], params)
    assert vals.dtype == dtype and idx.dtype == np.int64
    assert vals.flags.c_contiguous and idx.flags.c_contiguous
    np.testing.assert_array_equal(vals, ref_vals)  # NaN == NaN here
    np.testing.assert_array_equal(idx, ref_idx)
    # Without return_indices, the same values.
    np.testing.assert_array_equal(poolkit.max_pool2d(x, **params), vals)


@given(case=max_pool_cases(), dtype=dtypes, kind=input_kinds, seed=seeds)
def test_max_pool_backward_matches_reference(case, dtype, kind, seed):
    shape, params = case
    x = make_input(shape, dtype, kind, seed)
    _, idx = reference.max_pool2d(x, return_indices=True, **params)
    g = make_input(idx.shape, dtype, "normal", seed + 1)

    got = poolkit.max_pool2d_backward(g, idx, shape)
    want = reference.max_pool2d_backward(g, idx, shape)
    assert got.shape == shape and got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=rtol_for(dtype), atol=atol_for(dtype, 4))


# The reference sums with NumPy scalars: inf + -inf in a "special" input warns.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@given(case=avg_pool_cases(), dtype=dtypes, kind=input_kinds, seed=seeds)
def test_avg_pool_forward_matches_reference(case, dtype, kind, seed):
    shape, params = case
    x = make_input(shape, dtype, kind, seed)
    got = poolkit.avg_pool2d(x, **params)
    want = reference.avg_pool2d(x, **params)

    assert got.shape == want.shape == shape[:-2] + expected_out_hw(shape[-2:], params)
    assert got.dtype == dtype and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=rtol_for(dtype), atol=atol_for(dtype, 4))


@given(case=avg_pool_cases(), dtype=dtypes, seed=seeds)
def test_avg_pool_backward_matches_reference(case, dtype, seed):
    shape, params = case
    out_shape = shape[:-2] + expected_out_hw(shape[-2:], params)
    g = make_input(out_shape, dtype, "normal", seed)

    got = poolkit.avg_pool2d_backward(g, shape, **params)
    want = reference.avg_pool2d_backward(g, shape, **params)
    assert got.shape == shape and got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=rtol_for(dtype), atol=atol_for(dtype, 4))


def _assert_bitwise_equal(results):
    first = results[0]
    for other in results[1:]:
        assert other.dtype == first.dtype and other.shape == first.shape
        assert other.tobytes() == first.tobytes()


THREADS = [1, 2, None]


@given(case=max_pool_cases(), dtype=dtypes, kind=input_kinds, seed=seeds)
def test_max_pool_bitwise_identical_across_n_threads(case, dtype, kind, seed):
    shape, params = case
    x = make_input(shape, dtype, kind, seed)
    outs = [poolkit.max_pool2d(x, return_indices=True, n_threads=t, **params) for t in THREADS]
    _assert_bitwise_equal([o[0] for o in outs])
    _assert_bitwise_equal([o[1] for o in outs])
    idx = outs[0][1]
    g = make_input(idx.shape, dtype, "normal", seed + 1)
    _assert_bitwise_equal(
        [poolkit.max_pool2d_backward(g, idx, shape, n_threads=t) for t in THREADS]
    )


@given(case=avg_pool_cases(), dtype=dtypes, kind=input_kinds, seed=seeds)
def test_avg_pool_bitwise_identical_across_n_threads(case, dtype, kind, seed):
    shape, params = case
    x = make_input(shape, dtype, kind, seed)
    ys = [poolkit.avg_pool2d(x, n_threads=t, **params) for t in THREADS]
    _assert_bitwise_equal(ys)
    g = make_input(ys[0].shape, dtype, "normal", seed + 1)
    _assert_bitwise_equal(
        [poolkit.avg_pool2d_backward(g, shape, n_threads=t, **params) for t in THREADS]
    )


# Small inputs may legitimately run on one thread whatever is asked, so the
# properties above may never exercise more than one. These inputs are large
# enough to be split (many planes; few large planes); the windows overlap so
# backward accumulates. Each thread count runs REPEATS times: a data race
# shows up as results that differ between runs, most often under CPU load.
BIG_SHAPES = [(2, 16, 64, 64), (1, 4, 160, 224)]  # above _threads.SMALL_WORK
REPEATS = 3


@pytest.mark.parametrize("shape", BIG_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_large_input_bitwise_identical_across_n_threads(shape, dtype):
    x = make_input(shape, dtype, "ties", 7)  # ties: index choice must not depend on threads
    params = dict(kernel_size=3, stride=2, padding=1, dilation=(1, 2), ceil_mode=True)
    threads = (THREADS + [-1]) * REPEATS
    outs = [poolkit.max_pool2d(x, return_indices=True, n_threads=t, **params) for t in threads]
    _assert_bitwise_equal([o[0] for o in outs])
    _assert_bitwise_equal([o[1] for o in outs])
    idx = outs[0][1]
    g = make_input(idx.shape, dtype, "normal", 8)
    _assert_bitwise_equal(
        [poolkit.max_pool2d_backward(g, idx, shape, n_threads=t) for t in threads]
    )


@pytest.mark.parametrize("shape", BIG_SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_large_input_bitwise_identical_across_n_threads(shape, dtype, count_include_pad):
    x = make_input(shape, dtype, "normal", 9)
    params = dict(
        kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=count_include_pad
    )
    threads = (THREADS + [-1]) * REPEATS
    ys = [poolkit.avg_pool2d(x, n_threads=t, **params) for t in threads]
    _assert_bitwise_equal(ys)
    g = make_input(ys[0].shape, dtype, "normal", 10)
    _assert_bitwise_equal(
        [poolkit.avg_pool2d_backward(g, shape, n_threads=t, **params) for t in threads]
    )


@given(
    hw=st.tuples(st.integers(1, 8), st.integers(1, 8)),
    kernel=st.tuples(st.integers(0, 5), st.integers(1, 5)),
    stride=st.one_of(st.none(), st.tuples(st.integers(0, 3), st.integers(1, 3))),
    padding=st.tuples(st.integers(-1, 4), st.integers(0, 4)),
    dilation=st.tuples(st.integers(0, 4), st.integers(1, 4)),
    ceil_mode=st.booleans(),
)
def test_max_pool_validation_agrees_with_reference(hw, kernel, stride, padding, dilation, ceil_mode):
    """Over a range that includes invalid parameters, the compiled facade
    raises ValueError exactly when the reference does."""
    x = np.zeros((1, 2) + hw)
    params = dict(
        kernel_size=kernel, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode
    )
    try:
        reference.max_pool2d(x, **params)
        ref_raises = False
    except ValueError:
        ref_raises = True
    if ref_raises:
        with pytest.raises(ValueError):
            poolkit.max_pool2d(x, **params)
    else:
        poolkit.max_pool2d(x, **params)


@given(
    hw=st.tuples(st.integers(1, 8), st.integers(1, 8)),
    kernel=st.tuples(st.integers(0, 5), st.integers(1, 5)),
    stride=st.one_of(st.none(), st.tuples(st.integers(0, 3), st.integers(1, 3))),
    padding=st.tuples(st.integers(-1, 4), st.integers(0, 4)),
    ceil_mode=st.booleans(),
    count_include_pad=st.booleans(),
    divisor_override=st.one_of(st.none(), st.integers(0, 3)),
)
def test_avg_pool_validation_agrees_with_reference(
    hw, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
):
    x = np.zeros((1, 2) + hw)
    params = dict(
        kernel_size=kernel,
        stride=stride,
        padding=padding,
        ceil_mode=ceil_mode,
        count_include_pad=count_include_pad,
        divisor_override=divisor_override,
    )
    try:
        reference.avg_pool2d(x, **params)
        ref_raises = False
    except ValueError:
        ref_raises = True
    if ref_raises:
        with pytest.raises(ValueError):
            poolkit.avg_pool2d(x, **params)
    else:
        poolkit.avg_pool2d(x, **params)


def test_big_shapes_are_large_enough_to_be_split_across_threads():
    """The thread-count tests above only mean something if these inputs are threaded."""
    from poolkit import _threads

    for shape in BIG_SHAPES:
        assert int(np.prod(shape)) >= _threads.SMALL_WORK
