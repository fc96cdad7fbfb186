"""Hypothesis strategies and small helpers shared by the poolkit tests.

A *case* is a pair ``(shape, params)``: ``shape`` is the input shape (4-D, or
3-D when asked for) and ``params`` the keyword arguments of the forward function
(``kernel_size``, ``stride``, ``padding``, ... exactly as a user passes them:
an int or an ``(h, w)`` pair, ``stride`` sometimes ``None``). Configurations
are drawn from the ranges of the test plan (kernel 1..4, stride 1..3, dilation
1..3, padding 0..half the effective kernel, N and C 0..3, H and W 1..12) and
then filtered by asking ``poolkit.reference`` whether it raises, so the
strategies only produce configurations the contract calls valid.
"""

import math

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

DTYPES = (np.float32, np.float64)
INPUT_KINDS = ("normal", "ties", "special")

# Tolerances for results that depend on the order of a floating-point sum.
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def rtol_for(dtype):
    return RTOL[np.dtype(dtype)]


def atol_for(dtype, scale=1.0):
    """Absolute tolerance for sums of O(scale) values that may cancel."""
    return 16 * float(np.finfo(dtype).eps) * max(1.0, float(scale))


def pair(v):
    """``v`` as an ``(h, w)`` tuple (int -> (v, v))."""
    if isinstance(v, (tuple, list)):
        return tuple(v)
    return (v, v)


def expected_out_size(length, kernel, stride, pad, dilation=1, ceil_mode=False):
    """Output length of one axis, written straight from DESIGN.md."""
    eff = dilation * (kernel - 1) + 1
    num = length + 2 * pad - eff
    out = (-(-num // stride) if ceil_mode else num // stride) + 1
    if ceil_mode and (out - 1) * stride >= length + pad:
        out -= 1
    return out


def expected_out_hw(hw, params):
    """``(out_h, out_w)`` for a params dict of max or avg pooling."""
    k = pair(params["kernel_size"])
    s = pair(params["stride"] if params.get("stride") is not None else params["kernel_size"])
    p = pair(params.get("padding", 0))
    d = pair(params.get("dilation", 1))
    c = params.get("ceil_mode", False)
    return tuple(expected_out_size(hw[i], k[i], s[i], p[i], d[i], c) for i in range(2))


def every_window_has_input(hw, params):
    """True when each output window of each axis covers an input position."""
    k = pair(params["kernel_size"])
    s = pair(params["stride"] if params.get("stride") is not None else params["kernel_size"])
    p = pair(params.get("padding", 0))
    d = pair(params.get("dilation", 1))
    c = params.get("ceil_mode", False)
    for i in range(2):
        n_out = expected_out_size(hw[i], k[i], s[i], p[i], d[i], c)
        for o in range(max(n_out, 0)):
            start = o * s[i] - p[i]
            if not any(0 <= start + j * d[i] < hw[i] for j in range(k[i])):
                return False
    return True


def make_input(shape, dtype, kind="normal", seed=0):
    """A reproducible input array.

    ``normal``: standard normals (ties have probability ~0).
    ``ties``: small integers in [-2, 2], so most windows hold ties.
    ``special``: normals with about 10% NaN, 10% -inf and 5% +inf.
    """
    rng = np.random.default_rng(seed)
    if kind == "normal":
        x = rng.standard_normal(shape)
    elif kind == "ties":
        x = rng.integers(-2, 3, size=shape).astype(np.float64)
    elif kind == "special":
        x = rng.standard_normal(shape)
        u = rng.random(shape)
        x[u < 0.10] = np.nan
        x[(u >= 0.10) & (u < 0.20)] = -np.inf
        x[(u >= 0.20) & (u < 0.25)] = np.inf
    else:  # pragma: no cover - programming error in a test
        raise AssertionError(kind)
    return np.ascontiguousarray(x, dtype=dtype)


def distinct_input(shape, dtype, seed=0, spacing=0.5):
    """Values with no ties: a random permutation of ``arange`` times ``spacing``,
    centred on 0 so negative values (which padding must never beat) occur."""
    rng = np.random.default_rng(seed)
    n = math.prod(shape)
    x = (rng.permutation(n) - n / 2.0) * spacing
    return x.reshape(shape).astype(dtype)


def _int_or_pair(draw, a, b):
    """Draw ``(a, b)`` as a pair, or as a plain int when both are equal."""
    if a == b and draw(st.booleans()):
        return a
    return (a, b)


def _reference():
    from poolkit import reference

    return reference


def _draw_common(draw, max_dilation, min_nc, max_n, max_c, max_hw, allow_3d):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, max_dilation)), draw(st.integers(1, max_dilation))
    eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    ph, pw = draw(st.integers(0, eh // 2)), draw(st.integers(0, ew // 2))
    if draw(st.booleans()):
        stride = None
    else:
        stride = _int_or_pair(draw, draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    n, c = draw(st.integers(min_nc, max_n)), draw(st.integers(min_nc, max_c))
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    shape = (n, c, h, w)
    if allow_3d and draw(st.sampled_from([False, False, False, True])):
        shape = (c, h, w)
    params = dict(
        kernel_size=_int_or_pair(draw, kh, kw),
        stride=stride,
        padding=_int_or_pair(draw, ph, pw),
        ceil_mode=draw(st.booleans()),
    )
    return shape, params, (dh, dw)


@st.composite
def max_pool_cases(draw, max_n=3, max_c=3, max_hw=12, allow_3d=True, min_nc=0):
    """``(shape, params)`` for a valid ``max_pool2d`` call."""
    shape, params, (dh, dw) = _draw_common(draw, 3, min_nc, max_n, max_c, max_hw, allow_3d)
    params["dilation"] = _int_or_pair(draw, dh, dw)
    try:
        _reference().max_pool2d(np.zeros((1, 1) + shape[-2:]), **params)
    except ValueError:
        assume(False)
    return shape, params


@st.composite
def avg_pool_cases(draw, max_n=3, max_c=3, max_hw=12, allow_3d=True, min_nc=0):
    """``(shape, params)`` for a valid ``avg_pool2d`` call."""
    shape, params, _ = _draw_common(draw, 1, min_nc, max_n, max_c, max_hw, allow_3d)
    params["count_include_pad"] = draw(st.booleans())
    params["divisor_override"] = draw(st.one_of(st.none(), st.integers(1, 5)))
    try:
        _reference().avg_pool2d(np.zeros((1, 1) + shape[-2:]), **params)
    except ValueError:
        assume(False)
    return shape, params


dtypes = st.sampled_from(DTYPES)
input_kinds = st.sampled_from(INPUT_KINDS)
seeds = st.integers(0, 2**32 - 1)
