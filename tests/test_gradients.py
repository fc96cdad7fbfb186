"""Backward passes are the gradients of the forward passes.

- Conservation: when windows tile the input without overlap (stride ==
  kernel, no padding, sizes divisible), backward neither loses nor multiplies
  gradient: ``sum(grad_input) == sum(grad_output)`` up to rounding.
- Finite differences in float64, overlapping windows, padding, dilation and
  ceil mode included. Max pooling is checked on inputs without ties (a
  scaled permutation of ``arange``), where it is differentiable and a small
  step cannot change the argmax.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import poolkit
from _strategies import avg_pool_cases, distinct_input, make_input, max_pool_cases, seeds


@st.composite
def tiling_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    mh, mw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    return (n, c, kh * mh, kw * mw), (kh, kw)


@given(case=tiling_cases(), dtype=st.sampled_from([np.float32, np.float64]), seed=seeds)
def test_max_pool_backward_conserves_gradient_sum(case, dtype, seed):
    shape, kernel = case
    x = make_input(shape, dtype, "ties", seed)
    _, idx = poolkit.max_pool2d(x, kernel, return_indices=True)
    g = make_input(idx.shape, dtype, "normal", seed + 1)
    gx = poolkit.max_pool2d_backward(g, idx, shape)
    # Each input receives at most one output gradient: the non-zero entries of
    # grad_input are exactly the entries of grad_output.
    np.testing.assert_allclose(
        gx.sum(dtype=np.float64), g.sum(dtype=np.float64), rtol=1e-6, atol=1e-5
    )
    assert np.count_nonzero(gx) == np.count_nonzero(g)
    # Per plane too, not only in total.
    np.testing.assert_allclose(
        gx.sum(axis=(-2, -1), dtype=np.float64),
        g.sum(axis=(-2, -1), dtype=np.float64),
        rtol=1e-6,
        atol=1e-5,
    )


@pytest.mark.parametrize("count_include_pad", [True, False])
@given(case=tiling_cases(), dtype=st.sampled_from([np.float32, np.float64]), seed=seeds)
def test_avg_pool_backward_conserves_gradient_sum(case, dtype, seed, count_include_pad):
    shape, kernel = case
    out_shape = shape[:2] + (shape[2] // kernel[0], shape[3] // kernel[1])
    g = make_input(out_shape, dtype, "normal", seed)
    gx = poolkit.avg_pool2d_backward(g, shape, kernel, count_include_pad=count_include_pad)
    np.testing.assert_allclose(
        gx.sum(axis=(-2, -1), dtype=np.float64),
        g.sum(axis=(-2, -1), dtype=np.float64),
        rtol=1e-5,
        atol=1e-5,
    )


def _numerical_grad(forward, x, g, eps):
    """Central differences of ``f(x) = sum(forward(x) * g)``, all at once.

    Pooling acts on each (n, c) plane alone, so the M = x.size perturbed copies
    of x are stacked along the batch axis and pooled in a single call.
    """
    n, c, h, w = x.shape
    planes = x.reshape(1, n * c, h, w)
    m = x.size
    eye = np.eye(m, dtype=x.dtype).reshape(m, n * c, h, w)
    fp = forward(planes + eps * eye)
    fm = forward(planes - eps * eye)
    gp = g.reshape(1, n * c, g.shape[-2], g.shape[-1])
    return (((fp - fm) * gp).sum(axis=(1, 2, 3)) / (2 * eps)).reshape(x.shape)


@given(case=avg_pool_cases(max_n=2, max_c=2, max_hw=8, allow_3d=False, min_nc=1), seed=seeds)
def test_avg_pool_backward_matches_finite_differences(case, seed):
    shape, params = case
    x = make_input(shape, np.float64, "normal", seed)
    y = poolkit.avg_pool2d(x, **params)
    g = make_input(y.shape, np.float64, "normal", seed + 1)
    analytic = poolkit.avg_pool2d_backward(g, shape, **params)
    numeric = _numerical_grad(lambda z: poolkit.avg_pool2d(z, **params), x, g, eps=1e-3)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-8)


@given(case=max_pool_cases(max_n=2, max_c=2, max_hw=8, allow_3d=False, min_nc=1), seed=seeds)
def test_max_pool_backward_matches_finite_differences(case, seed):
    shape, params = case
    x = distinct_input(shape, np.float64, seed, spacing=0.5)
    y, idx = poolkit.max_pool2d(x, return_indices=True, **params)
    g = make_input(y.shape, np.float64, "normal", seed + 1)
    analytic = poolkit.max_pool2d_backward(g, idx, shape)
    numeric = _numerical_grad(lambda z: poolkit.max_pool2d(z, **params), x, g, eps=1e-3)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-8)


@pytest.mark.parametrize(
    "params",
    [
        dict(kernel_size=3, stride=1, padding=1),
        dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), ceil_mode=True),
        dict(kernel_size=2, stride=1, dilation=2, padding=1),
    ],
    ids=["k3s1p1", "k32s21p10-ceil", "k2s1d2p1"],
)
def test_max_pool_overlapping_windows_accumulate_gradient(params):
    """With overlapping windows one input can win several windows; its
    gradient is the sum over them (checked against finite differences)."""
    shape = (1, 2, 6, 7)
    x = distinct_input(shape, np.float64, 3)
    y, idx = poolkit.max_pool2d(x, return_indices=True, **params)
    counts = np.zeros(x.shape[-2] * x.shape[-1], dtype=np.int64)
    np.add.at(counts, idx[0, 0].ravel(), 1)
    assert counts.max() > 1, "test configuration must make an input win twice"
    g = make_input(y.shape, np.float64, "normal", 4)
    analytic = poolkit.max_pool2d_backward(g, idx, shape)
    numeric = _numerical_grad(lambda z: poolkit.max_pool2d(z, **params), x, g, eps=1e-3)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-8)
