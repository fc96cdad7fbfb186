"""The semantic rules of DESIGN.md on small hand-computed cases.

Each case runs through the compiled facade and the reference alike.
"""

import numpy as np
import pytest

import poolkit
from poolkit import reference

IMPLS = pytest.mark.parametrize("impl", [poolkit, reference], ids=["poolkit", "reference"])
DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64])

nan, inf = np.nan, np.inf


def _plane(rows, dtype):
    return np.array([[rows]], dtype=dtype)


# --------------------------------------------------------------------- max: NaN


@IMPLS
@DTYPES
def test_max_nan_propagates_and_points_at_first_nan(impl, dtype):
    x = _plane([[1.0, nan, 9.0], [nan, 5.0, 2.0]], dtype)
    y, idx = impl.max_pool2d(x, (2, 3), return_indices=True)
    assert np.isnan(y[0, 0, 0, 0])
    assert idx[0, 0, 0, 0] == 1  # the first NaN in row-major order, not the last (3)


@IMPLS
@DTYPES
def test_max_nan_first_in_window_order_with_overlap_and_padding(impl, dtype):
    # 3x3 windows, stride 1, padding 1 over a 3x3 plane with NaN at 4 and 8.
    x = _plane([[0.0, 1.0, 2.0], [3.0, nan, 5.0], [6.0, 7.0, nan]], dtype)
    y, idx = impl.max_pool2d(x, 3, stride=1, padding=1, return_indices=True)
    assert np.isnan(y).all()  # every window holds position 4
    np.testing.assert_array_equal(idx[0, 0], np.full((3, 3), 4))
    # The NaN at 8 is first only in windows that exclude 4: none here. With a
    # 2x2 window, stride 1, no padding, the bottom-right window holds 4 first.
    y2, idx2 = impl.max_pool2d(x, 2, stride=1, return_indices=True)
    np.testing.assert_array_equal(idx2[0, 0], [[4, 4], [4, 4]])


@IMPLS
@DTYPES
def test_max_nan_beats_inf(impl, dtype):
    x = _plane([[inf, nan]], dtype)
    y, idx = impl.max_pool2d(x, (1, 2), return_indices=True)
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 1


# --------------------------------------------------------------------- max: ties


@IMPLS
@DTYPES
def test_max_ties_go_to_first_in_row_major_order(impl, dtype):
    x = _plane([[1.0, 3.0, 0.0], [3.0, 3.0, 0.0]], dtype)
    y, idx = impl.max_pool2d(x, (2, 2), stride=1, return_indices=True)
    np.testing.assert_array_equal(y[0, 0], [[3.0, 3.0]])
    np.testing.assert_array_equal(idx[0, 0], [[1, 1]])

    const = np.full((1, 1, 4, 4), 2.0, dtype=dtype)
    _, idx = impl.max_pool2d(const, 2, return_indices=True)
    np.testing.assert_array_equal(idx[0, 0], [[0, 2], [8, 10]])


@IMPLS
@DTYPES
def test_max_ties_with_dilation_take_first_tapped_position(impl, dtype):
    x = np.full((1, 1, 3, 3), 1.0, dtype=dtype)
    _, idx = impl.max_pool2d(x, 2, stride=1, dilation=2, return_indices=True)
    np.testing.assert_array_equal(idx, [[[[0]]]])


# ------------------------------------------------------------------ max: -inf


@IMPLS
@DTYPES
def test_max_all_neg_inf_points_at_first_input_position(impl, dtype):
    x = np.full((1, 1, 3, 3), -inf, dtype=dtype)
    y, idx = impl.max_pool2d(x, 2, stride=1, return_indices=True)
    assert np.all(y == -inf)
    np.testing.assert_array_equal(idx[0, 0], [[0, 1], [3, 4]])


@IMPLS
@DTYPES
def test_max_all_neg_inf_with_padding_never_points_outside_plane(impl, dtype):
    x = np.full((1, 1, 2, 2), -inf, dtype=dtype)
    y, idx = impl.max_pool2d(x, 2, stride=1, padding=1, return_indices=True)
    assert np.all(y == -inf)
    np.testing.assert_array_equal(idx[0, 0], [[0, 0, 1], [0, 0, 1], [2, 2, 3]])


@IMPLS
@DTYPES
def test_max_all_neg_inf_with_dilation_and_padding_points_at_first_tap(impl, dtype):
    # k=2, d=2, p=1 over 3: windows tap {-1, 1}, {0, 2}, {1, 3}.
    x = np.full((1, 1, 3, 3), -inf, dtype=dtype)
    y, idx = impl.max_pool2d(x, 2, stride=1, padding=1, dilation=2, return_indices=True)
    assert np.all(y == -inf)
    np.testing.assert_array_equal(idx[0, 0], [[4, 3, 4], [1, 0, 1], [4, 3, 4]])


@IMPLS
@DTYPES
def test_max_neg_inf_window_backward_stays_in_plane(impl, dtype):
    x = np.full((2, 3, 2, 2), -inf, dtype=dtype)
    y, idx = impl.max_pool2d(x, 2, stride=1, padding=1, ceil_mode=True, return_indices=True)
    assert idx.min() >= 0 and idx.max() < 4
    g = impl.max_pool2d_backward(np.ones_like(y), idx, x.shape)
    # All gradient lands inside the planes.
    np.testing.assert_allclose(g.sum(axis=(-2, -1)), np.full((2, 3), y.shape[-2] * y.shape[-1]))


# ---------------------------------------------------------- max: padding never wins


@IMPLS
@DTYPES
@pytest.mark.parametrize(
    "params",
    [
        dict(kernel_size=2, stride=1, padding=1),
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
        dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 1), dilation=(2, 1)),
    ],
)
def test_max_padded_positions_never_win(impl, dtype, params):
    rng = np.random.default_rng(0)
    x = (-1.0 - rng.random((2, 2, 5, 4))).astype(dtype)  # all in [-2, -1)
    y, idx = impl.max_pool2d(x, return_indices=True, **params)
    assert np.all(y < 0)
    assert idx.min() >= 0 and idx.max() < 5 * 4
    # Each value is the input at its index.
    flat = x.reshape(2, 2, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, idx.reshape(2, 2, -1), -1), y.reshape(2, 2, -1))


# --------------------------------------------------------------------- average

X22 = [[1.0, 2.0], [3.0, 4.0]]


@IMPLS
@DTYPES
def test_avg_count_include_pad_true_divides_by_window_area(impl, dtype):
    y = impl.avg_pool2d(_plane(X22, dtype), 2, stride=1, padding=1, count_include_pad=True)
    want = [[0.25, 0.75, 0.5], [1.0, 2.5, 1.5], [0.75, 1.75, 1.0]]
    np.testing.assert_allclose(y[0, 0], want, rtol=1e-6)


@IMPLS
@DTYPES
def test_avg_count_include_pad_false_divides_by_input_count(impl, dtype):
    y = impl.avg_pool2d(_plane(X22, dtype), 2, stride=1, padding=1, count_include_pad=False)
    want = [[1.0, 1.5, 2.0], [2.0, 2.5, 3.0], [3.0, 3.5, 4.0]]
    np.testing.assert_allclose(y[0, 0], want, rtol=1e-6)


@IMPLS
@DTYPES
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_divisor_override_replaces_divisor(impl, dtype, count_include_pad):
    y = impl.avg_pool2d(
        _plane(X22, dtype), 2, stride=1, padding=1,
        count_include_pad=count_include_pad, divisor_override=3,
    )
    sums = np.array([[1.0, 3.0, 2.0], [4.0, 10.0, 6.0], [3.0, 7.0, 4.0]])
    np.testing.assert_allclose(y[0, 0], sums / 3, rtol=1e-6)


@IMPLS
@DTYPES
@pytest.mark.parametrize(
    "count_include_pad, want",
    [(True, [1.0, 3.0, 5.0, 3.0]), (False, [1.5, 3.0, 5.0, 6.0])],
)
def test_avg_ceil_mode_window_clipped_to_padded_extent(impl, dtype, count_include_pad, want):
    # L=6, k=3, s=2, p=1, ceil: windows [-1,1], [1,3], [3,5], [5,7] -> the last
    # is clipped to [5,6] (one input, one pad) before it is counted.
    x = _plane([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]], dtype)
    y = impl.avg_pool2d(
        x, (1, 3), stride=(1, 2), padding=(0, 1), ceil_mode=True,
        count_include_pad=count_include_pad,
    )
    np.testing.assert_allclose(y[0, 0, 0], want, rtol=1e-6)


@IMPLS
@DTYPES
def test_avg_backward_divides_by_the_same_divisor(impl, dtype):
    g = np.ones((1, 1, 3, 3), dtype=dtype)
    kw = dict(kernel_size=2, stride=1, padding=1)
    # count_include_pad=True: every output passes 1/4 to each of its inputs;
    # each input is in 4 windows.
    gx = impl.avg_pool2d_backward(g, (1, 1, 2, 2), count_include_pad=True, **kw)
    np.testing.assert_allclose(gx[0, 0], np.full((2, 2), 1.0), rtol=1e-6)
    # count_include_pad=False: input (0, 0) is alone in one window (1), shares
    # two with one other input (1/2 + 1/2) and one with all four (1/4).
    gx = impl.avg_pool2d_backward(g, (1, 1, 2, 2), count_include_pad=False, **kw)
    np.testing.assert_allclose(gx[0, 0], np.full((2, 2), 1 + 0.5 + 0.5 + 0.25), rtol=1e-6)
    # divisor_override=3: 4 windows x 1/3.
    gx = impl.avg_pool2d_backward(g, (1, 1, 2, 2), divisor_override=3, **kw)
    np.testing.assert_allclose(gx[0, 0], np.full((2, 2), 4 / 3), rtol=1e-6)


# ------------------------------------------------------------------ empty batches

EMPTY_SHAPES = [(0, 3, 5, 4), (2, 0, 5, 4), (0, 0, 5, 4), (0, 5, 4)]


@IMPLS
@DTYPES
@pytest.mark.parametrize("shape", EMPTY_SHAPES)
def test_max_empty_batch_forward_and_backward(impl, dtype, shape):
    x = np.zeros(shape, dtype=dtype)
    y, idx = impl.max_pool2d(x, 2, padding=1, return_indices=True)
    assert y.shape == shape[:-2] + (3, 3) and y.dtype == dtype
    assert idx.shape == y.shape and idx.dtype == np.int64
    g = impl.max_pool2d_backward(y, idx, shape)
    assert g.shape == shape and g.dtype == dtype


@IMPLS
@DTYPES
@pytest.mark.parametrize("shape", EMPTY_SHAPES)
def test_avg_empty_batch_forward_and_backward(impl, dtype, shape):
    x = np.zeros(shape, dtype=dtype)
    y = impl.avg_pool2d(x, 2, padding=1)
    assert y.shape == shape[:-2] + (3, 3) and y.dtype == dtype
    g = impl.avg_pool2d_backward(y, shape, 2, padding=1)
    assert g.shape == shape and g.dtype == dtype


# ------------------------------------------------------------------------- 3-D


@IMPLS
@DTYPES
def test_max_3d_input_gives_3d_output(impl, dtype):
    x = np.random.default_rng(1).standard_normal((3, 5, 6)).astype(dtype)
    y, idx = impl.max_pool2d(x, 2, stride=1, return_indices=True)
    y4, idx4 = impl.max_pool2d(x[None], 2, stride=1, return_indices=True)
    assert y.shape == (3, 4, 5) and idx.shape == (3, 4, 5)
    np.testing.assert_array_equal(y, y4[0])
    np.testing.assert_array_equal(idx, idx4[0])
    g = impl.max_pool2d_backward(y, idx, x.shape)
    assert g.shape == x.shape
    np.testing.assert_array_equal(g, impl.max_pool2d_backward(y4, idx4, x[None].shape)[0])


@IMPLS
@DTYPES
def test_avg_3d_input_gives_3d_output(impl, dtype):
    x = np.random.default_rng(2).standard_normal((3, 5, 6)).astype(dtype)
    y = impl.avg_pool2d(x, 2, stride=1, padding=1, count_include_pad=False)
    y4 = impl.avg_pool2d(x[None], 2, stride=1, padding=1, count_include_pad=False)
    assert y.shape == (3, 6, 7)
    np.testing.assert_array_equal(y, y4[0])
    g = impl.avg_pool2d_backward(y, x.shape, 2, stride=1, padding=1, count_include_pad=False)
    g4 = impl.avg_pool2d_backward(y4, x[None].shape, 2, stride=1, padding=1, count_include_pad=False)
    assert g.shape == x.shape
    np.testing.assert_array_equal(g, g4[0])


# ------------------------------------------------- ceil mode: kernel > input


@IMPLS
@DTYPES
def test_ceil_mode_kernel_larger_than_input_gives_one_clipped_window(impl, dtype):
    # DESIGN.md: out = ceil((6 - 7) / 7) + 1 = 1, and (1 - 1) * 7 < 6 keeps it;
    # PyTorch 2.13 agrees (max 35, mean 17.5). Floor mode gives 0: an error.
    x = np.arange(36.0, dtype=dtype).reshape(1, 1, 6, 6)
    y, idx = impl.max_pool2d(x, 7, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(y, [[[[35.0]]]])
    np.testing.assert_array_equal(idx, [[[[35]]]])
    np.testing.assert_allclose(impl.avg_pool2d(x, 7, ceil_mode=True), [[[[17.5]]]], rtol=1e-6)
    g = impl.avg_pool2d_backward(np.ones((1, 1, 1, 1), dtype=dtype), x.shape, 7, ceil_mode=True)
    np.testing.assert_allclose(g, np.full(x.shape, 1 / 36), rtol=1e-6)
    with pytest.raises(ValueError, match="output"):
        impl.max_pool2d(x, 7)
