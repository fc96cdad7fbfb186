"""MaxPool2d and AvgPool2d: stateful layers over the functional API."""

import numpy as np
import pytest

import poolkit

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64])

MAX_CONFIGS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1, padding=1),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), ceil_mode=True),
]
AVG_CONFIGS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=1, padding=1, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True, divisor_override=4),
]


def _x(dtype, shape=(2, 3, 7, 6), seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@DTYPES
@pytest.mark.parametrize("params", MAX_CONFIGS)
def test_maxpool_layer_matches_functions(params, dtype):
    x = _x(dtype)
    layer = poolkit.MaxPool2d(**params)
    y = layer(x)
    want_y, want_idx = poolkit.max_pool2d(x, return_indices=True, **params)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(layer.forward(x), want_y)
    g = _x(dtype, y.shape, seed=1)
    gx = layer.backward(g)
    assert gx.shape == x.shape and gx.dtype == dtype
    np.testing.assert_array_equal(gx, poolkit.max_pool2d_backward(g, want_idx, x.shape))


@DTYPES
@pytest.mark.parametrize("params", MAX_CONFIGS)
def test_maxpool_layer_return_indices_gives_pair(params, dtype):
    x = _x(dtype)
    layer = poolkit.MaxPool2d(return_indices=True, **params)
    y, idx = layer(x)
    want_y, want_idx = poolkit.max_pool2d(x, return_indices=True, **params)
    np.testing.assert_array_equal(y, want_y)
    np.testing.assert_array_equal(idx, want_idx)
    assert idx.dtype == np.int64


@DTYPES
@pytest.mark.parametrize("params", AVG_CONFIGS)
def test_avgpool_layer_matches_functions(params, dtype):
    x = _x(dtype)
    layer = poolkit.AvgPool2d(**params)
    y = layer(x)
    np.testing.assert_array_equal(y, poolkit.avg_pool2d(x, **params))
    np.testing.assert_array_equal(layer.forward(x), y)
    g = _x(dtype, y.shape, seed=1)
    gx = layer.backward(g)
    assert gx.shape == x.shape and gx.dtype == dtype
    np.testing.assert_array_equal(gx, poolkit.avg_pool2d_backward(g, x.shape, **params))


@pytest.mark.parametrize("make", [lambda: poolkit.MaxPool2d(2), lambda: poolkit.AvgPool2d(2)])
def test_layer_backward_uses_the_latest_forward(make):
    layer = make()
    a, b = _x(np.float64, (1, 2, 4, 4), 0), _x(np.float64, (3, 1, 6, 8), 1)
    layer(a)
    layer(b)
    g = np.ones((3, 1, 3, 4))
    gx = layer.backward(g)
    assert gx.shape == b.shape


def test_maxpool_layer_backward_routes_through_the_cached_argmax():
    layer = poolkit.MaxPool2d(2)
    x = np.array([[[[1.0, 3.0], [2.0, 2.0]]]])
    layer(x)
    layer.forward(np.array([[[[4.0, 0.0], [0.0, 0.0]]]]))  # now the argmax is 0
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1, 1, 1))), [[[[1.0, 0.0], [0.0, 0.0]]]])


@pytest.mark.parametrize("make", [lambda: poolkit.MaxPool2d(2), lambda: poolkit.AvgPool2d(2)])
def test_layer_3d_input(make):
    layer = make()
    x = _x(np.float64, (3, 4, 6))
    y = layer(x)
    assert y.shape == (3, 2, 3)
    assert layer.backward(np.ones_like(y)).shape == x.shape


@pytest.mark.parametrize(
    "make",
    [lambda: poolkit.MaxPool2d(2), lambda: poolkit.MaxPool2d(2, return_indices=True),
     lambda: poolkit.AvgPool2d(2)],
    ids=["max", "max-indices", "avg"],
)
def test_layer_backward_before_forward_raises_runtime_error(make):
    with pytest.raises(RuntimeError):
        make().backward(np.ones((1, 1, 2, 2)))


@pytest.mark.parametrize(
    "make", [lambda: poolkit.MaxPool2d(2), lambda: poolkit.AvgPool2d(2)], ids=["max", "avg"]
)
@pytest.mark.parametrize("g_shape", [(1, 2, 2, 3), (1, 2, 3, 2), (2, 2, 2, 2), (2, 2, 2), (1, 2, 4, 4)])
def test_layer_backward_wrong_gradient_shape_raises_value_error(make, g_shape):
    layer = make()
    y = layer(_x(np.float64, (1, 2, 4, 4)))
    assert y.shape == (1, 2, 2, 2)
    with pytest.raises(ValueError):
        layer.backward(np.ones(g_shape))


@pytest.mark.parametrize("cls", [poolkit.MaxPool2d, poolkit.AvgPool2d])
def test_layer_train_eval_toggle_training(cls):
    layer = cls(2)
    assert layer.training is True
    assert layer.eval() is layer
    assert layer.training is False
    assert layer.train() is layer
    assert layer.training is True
    layer.eval()
    # Pooling without randomness computes the same thing in both modes.
    x = _x(np.float64, (1, 1, 4, 4))
    np.testing.assert_array_equal(layer(x), cls(2)(x))


@pytest.mark.parametrize("cls, name", [(poolkit.MaxPool2d, "MaxPool2d"), (poolkit.AvgPool2d, "AvgPool2d")])
def test_layer_repr_names_class_and_kernel_size(cls, name):
    r = repr(cls(kernel_size=3, stride=2, padding=1))
    assert r.startswith(name)
    assert "kernel_size" in r and "3" in r
    assert "\n" not in r


def test_layer_invalid_parameters_raise_value_error():
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(ValueError, match="kernel_size"):
        poolkit.MaxPool2d(0)(x)
    with pytest.raises(ValueError, match="divisor_override"):
        poolkit.AvgPool2d(2, divisor_override=0)(x)


@pytest.mark.parametrize("n_threads", [1, 2, None])
def test_layer_n_threads_does_not_change_results(n_threads):
    x = _x(np.float32, (2, 4, 16, 16))
    np.testing.assert_array_equal(
        poolkit.MaxPool2d(3, 2, 1, n_threads=n_threads)(x), poolkit.max_pool2d(x, 3, 2, 1)
    )
    np.testing.assert_array_equal(
        poolkit.AvgPool2d(3, 2, 1, n_threads=n_threads)(x), poolkit.avg_pool2d(x, 3, 2, 1)
    )
