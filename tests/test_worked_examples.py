"""The worked examples of the specification, as literal tests.

A 2x2 input ``[[1, 3], [2, 2]]`` pooled by a 2x2 window:

- mean: forward ``[[2]]``; backward of ``[[2]]`` is ``[[0.5, 0.5], [0.5, 0.5]]``;
- max: forward ``[[3]]`` with index 1; backward of ``[[3]]`` is ``[[0, 3], [0, 0]]``.

And the 1-D ceil-mode mean ``[1, 2, 3, 4, 5]``, k=2, s=2 -> ``[1.5, 3.5, 5.0]``
(the last window is clipped to the input before it is counted).
"""

import numpy as np
import pytest

import poolkit
from poolkit import reference

X = [[1.0, 3.0], [2.0, 2.0]]

DTYPES = [np.float32, np.float64]


def _x(dtype):
    return np.array([[X]], dtype=dtype)  # (1, 1, 2, 2)


@pytest.mark.parametrize("impl", [poolkit, reference], ids=["poolkit", "reference"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_mean_forward_is_two(impl, dtype):
    y = impl.avg_pool2d(_x(dtype), 2)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, np.array([[[[2.0]]]], dtype=dtype))


@pytest.mark.parametrize("impl", [poolkit, reference], ids=["poolkit", "reference"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_mean_backward_spreads_a_quarter(impl, dtype):
    g = impl.avg_pool2d_backward(np.array([[[[2.0]]]], dtype=dtype), (1, 1, 2, 2), 2)
    assert g.dtype == dtype
    np.testing.assert_array_equal(g, np.full((1, 1, 2, 2), 0.5, dtype=dtype))


@pytest.mark.parametrize("impl", [poolkit, reference], ids=["poolkit", "reference"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_forward_is_three_at_index_one(impl, dtype):
    y, idx = impl.max_pool2d(_x(dtype), 2, return_indices=True)
    assert y.dtype == dtype
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(y, np.array([[[[3.0]]]], dtype=dtype))
    np.testing.assert_array_equal(idx, np.array([[[[1]]]], dtype=np.int64))
    # Without return_indices only the values come back.
    np.testing.assert_array_equal(impl.max_pool2d(_x(dtype), 2), y)


@pytest.mark.parametrize("impl", [poolkit, reference], ids=["poolkit", "reference"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_max_backward_routes_to_the_argmax(impl, dtype):
    g = impl.max_pool2d_backward(
        np.array([[[[3.0]]]], dtype=dtype), np.array([[[[1]]]], dtype=np.int64), (1, 1, 2, 2)
    )
    assert g.dtype == dtype
    np.testing.assert_array_equal(g, np.array([[[[0.0, 3.0], [0.0, 0.0]]]], dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_avgpool_layer_worked_example(dtype):
    layer = poolkit.AvgPool2d(2)
    np.testing.assert_array_equal(layer(_x(dtype)), np.array([[[[2.0]]]], dtype=dtype))
    g = layer.backward(np.array([[[[2.0]]]], dtype=dtype))
    np.testing.assert_array_equal(g, np.full((1, 1, 2, 2), 0.5, dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_maxpool_layer_worked_example(dtype):
    layer = poolkit.MaxPool2d(2)
    np.testing.assert_array_equal(layer.forward(_x(dtype)), np.array([[[[3.0]]]], dtype=dtype))
    g = layer.backward(np.array([[[[3.0]]]], dtype=dtype))
    np.testing.assert_array_equal(g, np.array([[[[0.0, 3.0], [0.0, 0.0]]]], dtype=dtype))

    layer = poolkit.MaxPool2d(2, return_indices=True)
    y, idx = layer(_x(dtype))
    np.testing.assert_array_equal(y, np.array([[[[3.0]]]], dtype=dtype))
    np.testing.assert_array_equal(idx, np.array([[[[1]]]], dtype=np.int64))


@pytest.mark.parametrize("impl", [poolkit, reference], ids=["poolkit", "reference"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_ceil_mode_mean_clips_last_window(impl, dtype):
    x = np.array([[[[1.0, 2.0, 3.0, 4.0, 5.0]]]], dtype=dtype)
    y = impl.avg_pool2d(x, (1, 2), stride=(1, 2), ceil_mode=True)
    np.testing.assert_array_equal(y, np.array([[[[1.5, 3.5, 5.0]]]], dtype=dtype))
    # Backward uses the same clipped divisor: the last window passes its
    # gradient to input 4 undivided by 2.
    g = impl.avg_pool2d_backward(
        np.ones((1, 1, 1, 3), dtype=dtype), x.shape, (1, 2), stride=(1, 2), ceil_mode=True
    )
    np.testing.assert_array_equal(g, np.array([[[[0.5, 0.5, 0.5, 0.5, 1.0]]]], dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_ceil_mode_layer_worked_example(dtype):
    x = np.array([[[[1.0, 2.0, 3.0, 4.0, 5.0]]]], dtype=dtype)
    layer = poolkit.AvgPool2d((1, 2), stride=(1, 2), ceil_mode=True)
    np.testing.assert_array_equal(layer(x), np.array([[[[1.5, 3.5, 5.0]]]], dtype=dtype))
