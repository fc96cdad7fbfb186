"""Every user mistake of DESIGN.md raises the documented error, naming the parameter."""

import numpy as np
import pytest

import poolkit
from poolkit import reference

IMPLS = pytest.mark.parametrize("impl", [poolkit, reference], ids=["poolkit", "reference"])

X = np.zeros((2, 3, 6, 6))


# ------------------------------------------------------------ parameter values

BAD_COMMON = [
    # (kwargs, name in the message)
    (dict(kernel_size=0), "kernel_size"),
    (dict(kernel_size=-1), "kernel_size"),
    (dict(kernel_size=(2, 0)), "kernel_size"),
    (dict(kernel_size=(0, 2)), "kernel_size"),
    (dict(kernel_size=2, stride=0), "stride"),
    (dict(kernel_size=2, stride=-2), "stride"),
    (dict(kernel_size=2, stride=(1, 0)), "stride"),
    (dict(kernel_size=2, padding=-1), "padding"),
    (dict(kernel_size=2, padding=(0, -1)), "padding"),
    (dict(kernel_size=2, padding=2), "padding"),  # > half of 2
    (dict(kernel_size=3, padding=2), "padding"),  # > half of 3
    (dict(kernel_size=(4, 2), padding=(2, 2)), "padding"),  # fine along H, not W
    (dict(kernel_size=7), "output"),  # 6 < 7: no window fits
    (dict(kernel_size=(2, 7)), "output"),
    (dict(kernel_size=(2, 2, 2)), "kernel_size"),
    (dict(kernel_size=(2,)), "kernel_size"),
    (dict(kernel_size=2, stride=(1, 1, 1)), "stride"),
    (dict(kernel_size=2, padding=(1,)), "padding"),
]

BAD_MAX_ONLY = [
    (dict(kernel_size=2, dilation=0), "dilation"),
    (dict(kernel_size=2, dilation=(1, 0)), "dilation"),
    (dict(kernel_size=2, dilation=-1), "dilation"),
    (dict(kernel_size=2, dilation=(1, 2, 3)), "dilation"),
    (dict(kernel_size=3, dilation=2, padding=3), "padding"),  # effective kernel 5: at most 2
    (dict(kernel_size=3, dilation=3), "output"),  # effective kernel 7 > 6
]

BAD_AVG_ONLY = [
    (dict(kernel_size=2, divisor_override=0), "divisor_override"),
]


def _id(case):
    return "-".join(f"{k}={v}" for k, v in case[0].items())


@IMPLS
@pytest.mark.parametrize("case", BAD_COMMON + BAD_MAX_ONLY, ids=_id)
def test_max_pool_bad_parameter_raises_value_error(impl, case):
    kwargs, name = case
    with pytest.raises(ValueError, match=name):
        impl.max_pool2d(X, **kwargs)


@IMPLS
@pytest.mark.parametrize("case", BAD_COMMON + BAD_AVG_ONLY, ids=_id)
def test_avg_pool_bad_parameter_raises_value_error(impl, case):
    kwargs, name = case
    with pytest.raises(ValueError, match=name):
        impl.avg_pool2d(X, **kwargs)


@IMPLS
@pytest.mark.parametrize("case", BAD_COMMON + BAD_AVG_ONLY, ids=_id)
def test_avg_pool_backward_bad_parameter_raises_value_error(impl, case):
    kwargs, name = case
    with pytest.raises(ValueError, match=name):
        impl.avg_pool2d_backward(np.zeros((2, 3, 3, 3)), X.shape, **kwargs)


@IMPLS
def test_padding_of_exactly_half_the_effective_kernel_is_accepted(impl):
    assert impl.max_pool2d(X, 2, padding=1).shape == (2, 3, 4, 4)
    assert impl.max_pool2d(X, 3, dilation=2, padding=2, stride=1).shape == (2, 3, 6, 6)
    assert impl.avg_pool2d(X, 3, padding=1, stride=1).shape == (2, 3, 6, 6)


@IMPLS
def test_max_pool_window_without_input_raises_value_error(impl):
    # PyTorch 2.13 accepts this and returns index 6 in a 4-element plane.
    x = np.zeros((2, 1, 2, 2))
    with pytest.raises(ValueError):
        impl.max_pool2d(x, 2, stride=1, padding=1, dilation=3)
    with pytest.raises(ValueError):
        impl.max_pool2d(x, 2, stride=1, padding=1, dilation=3, return_indices=True)


# ------------------------------------------------------------------ array shape

BAD_SHAPES = [(6,), (6, 6), (1, 1, 1, 6, 6), (2, 3, 0, 6), (2, 3, 6, 0), (3, 0, 6)]


@IMPLS
@pytest.mark.parametrize("shape", BAD_SHAPES)
def test_bad_input_shape_raises_value_error(impl, shape):
    x = np.zeros(shape)
    with pytest.raises(ValueError):
        impl.max_pool2d(x, 1)
    with pytest.raises(ValueError):
        impl.avg_pool2d(x, 1)


@IMPLS
@pytest.mark.parametrize("shape", BAD_SHAPES)
def test_bad_input_shape_for_backward_raises_value_error(impl, shape):
    g = np.zeros(shape)
    with pytest.raises(ValueError):
        impl.avg_pool2d_backward(g, shape, 1)
    with pytest.raises(ValueError):
        impl.max_pool2d_backward(g, np.zeros(shape, dtype=np.int64), shape)


# ------------------------------------------------------------------------ dtype

BAD_DTYPES = [np.int32, np.int64, np.float16, np.bool_, np.complex64, np.uint8, object]


def _assert_names_supported(excinfo):
    msg = str(excinfo.value)
    assert "float32" in msg and "float64" in msg, msg


@IMPLS
@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=lambda d: np.dtype(d).name)
def test_unsupported_dtype_raises_type_error(impl, dtype):
    x = np.zeros((1, 1, 4, 4), dtype=dtype)
    with pytest.raises(TypeError) as excinfo:
        impl.max_pool2d(x, 2)
    _assert_names_supported(excinfo)
    with pytest.raises(TypeError) as excinfo:
        impl.avg_pool2d(x, 2)
    _assert_names_supported(excinfo)


@IMPLS
@pytest.mark.parametrize("dtype", BAD_DTYPES, ids=lambda d: np.dtype(d).name)
def test_unsupported_grad_dtype_raises_type_error(impl, dtype):
    g = np.zeros((1, 1, 2, 2), dtype=dtype)
    with pytest.raises(TypeError) as excinfo:
        impl.avg_pool2d_backward(g, (1, 1, 4, 4), 2)
    _assert_names_supported(excinfo)
    with pytest.raises(TypeError) as excinfo:
        impl.max_pool2d_backward(g, np.zeros((1, 1, 2, 2), dtype=np.int64), (1, 1, 4, 4))
    _assert_names_supported(excinfo)


# -------------------------------------------------------------------- n_threads


@pytest.mark.parametrize("n_threads", [0])
def test_n_threads_zero_raises_value_error(n_threads):
    x = np.zeros((1, 1, 4, 4))
    g = np.zeros((1, 1, 2, 2))
    idx = np.zeros((1, 1, 2, 2), dtype=np.int64)
    with pytest.raises(ValueError, match="n_threads"):
        poolkit.max_pool2d(x, 2, n_threads=n_threads)
    with pytest.raises(ValueError, match="n_threads"):
        poolkit.avg_pool2d(x, 2, n_threads=n_threads)
    with pytest.raises(ValueError, match="n_threads"):
        poolkit.max_pool2d_backward(g, idx, x.shape, n_threads=n_threads)
    with pytest.raises(ValueError, match="n_threads"):
        poolkit.avg_pool2d_backward(g, x.shape, 2, n_threads=n_threads)


@pytest.mark.parametrize("n_threads", [1.5, "2"])
def test_n_threads_not_an_integer_raises_type_error(n_threads):
    x = np.zeros((1, 1, 4, 4))
    g = np.zeros((1, 1, 2, 2))
    idx = np.zeros((1, 1, 2, 2), dtype=np.int64)
    with pytest.raises(TypeError, match="n_threads"):
        poolkit.max_pool2d(x, 2, n_threads=n_threads)
    with pytest.raises(TypeError, match="n_threads"):
        poolkit.avg_pool2d(x, 2, n_threads=n_threads)
    with pytest.raises(TypeError, match="n_threads"):
        poolkit.max_pool2d_backward(g, idx, x.shape, n_threads=n_threads)
    with pytest.raises(TypeError, match="n_threads"):
        poolkit.avg_pool2d_backward(g, x.shape, 2, n_threads=n_threads)


@pytest.mark.parametrize("n_threads", [1, 2, -1, np.int64(2), None])
def test_n_threads_valid_values_are_accepted(n_threads):
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(
        poolkit.max_pool2d(x, 2, n_threads=n_threads), [[[[5.0, 7.0], [13.0, 15.0]]]]
    )


# ------------------------------------------------------------- max backward

G = np.ones((2, 3, 2, 2))
IN_SHAPE = (2, 3, 4, 4)


def _valid_indices():
    return np.zeros((2, 3, 2, 2), dtype=np.int64)


@IMPLS
@pytest.mark.parametrize("bad", [-1, 16, 17, 2**40, -(2**62), -(2**63), 2**63 - 1])
def test_max_backward_out_of_range_index_raises_value_error(impl, bad):
    idx = _valid_indices()
    idx[1, 2, 1, 1] = bad
    with pytest.raises(ValueError, match="indices"):
        impl.max_pool2d_backward(G, idx, IN_SHAPE)


@pytest.mark.parametrize("bad", [-1, 35, -(2**63), 2**63 - 1])
def test_max_backward_finds_a_bad_index_at_every_position_of_a_row(bad):
    # the bounds check runs vector-wide over each plane's indices, with a scalar remainder:
    # a bad index at any position, in either part, is found (fresh output and out=)
    g = np.ones((1, 2, 1, 37))
    for pos in range(37):
        idx = np.tile(np.arange(37, dtype=np.int64) % 35, (1, 2, 1, 1))
        idx[0, 1, 0, pos] = bad
        with pytest.raises(ValueError, match="indices"):
            poolkit.max_pool2d_backward(g, idx, (1, 2, 5, 7))
        with pytest.raises(ValueError, match="indices"):
            poolkit.max_pool2d_backward(g, idx, (1, 2, 5, 7), out=np.zeros((1, 2, 5, 7)))
    idx[0, 1, 0, pos] = 34   # and all good: accepted
    poolkit.max_pool2d_backward(g, idx, (1, 2, 5, 7))


def test_max_backward_checks_indices_before_writing_out():
    idx = _valid_indices()
    idx[-1, -1, -1, -1] = 16  # the very last element is bad
    out = np.full(IN_SHAPE, 7.0)
    with pytest.raises(ValueError, match="indices"):
        poolkit.max_pool2d_backward(G, idx, IN_SHAPE, out=out)
    assert np.all(out == 7.0), "the kernel ran before the indices were checked"


@IMPLS
@pytest.mark.parametrize(
    "idx_shape", [(2, 3, 2, 3), (2, 3, 4), (1, 3, 2, 2), (2, 3, 2, 2, 1), (2, 2, 2, 2)]
)
def test_max_backward_indices_shape_mismatch_raises_value_error(impl, idx_shape):
    with pytest.raises(ValueError):
        impl.max_pool2d_backward(G, np.zeros(idx_shape, dtype=np.int64), IN_SHAPE)


@IMPLS
@pytest.mark.parametrize(
    "input_shape",
    [(2, 3, 4), (3, 4, 4), (2, 3, 4, 4, 1), (1, 3, 4, 4), (2, 2, 4, 4), (2, 3, 0, 4), (2, 3, 4, -4)],
)
def test_max_backward_input_shape_inconsistent_raises_value_error(impl, input_shape):
    with pytest.raises(ValueError):
        impl.max_pool2d_backward(G, _valid_indices(), input_shape)


@IMPLS
@pytest.mark.parametrize("idx_dtype", [np.float64, np.float32, np.complex128])
def test_max_backward_non_integer_indices_are_rejected(impl, idx_dtype):
    with pytest.raises((TypeError, ValueError), match="indices"):
        impl.max_pool2d_backward(G, _valid_indices().astype(idx_dtype), IN_SHAPE)


# ------------------------------------------------------------- avg backward


@IMPLS
@pytest.mark.parametrize(
    "input_shape",
    [
        (2, 3, 6, 6),  # would give a 3x3 output, not 2x2
        (2, 3, 4, 6),  # 2x3
        (1, 3, 4, 4),  # N differs
        (2, 4, 4, 4),  # C differs
        (3, 4, 4),  # ndim differs from grad_output
        (2, 3, 4, 4, 1),
    ],
)
def test_avg_backward_input_shape_inconsistent_raises_value_error(impl, input_shape):
    with pytest.raises(ValueError):
        impl.avg_pool2d_backward(G, input_shape, 2)


@IMPLS
def test_avg_backward_accepts_any_input_size_giving_the_grad_shape(impl):
    # Floor mode maps both 4 and 5 to 2 windows of 2: both are consistent.
    for hw in (4, 5):
        g = impl.avg_pool2d_backward(G, (2, 3, hw, hw), 2)
        assert g.shape == (2, 3, hw, hw)
