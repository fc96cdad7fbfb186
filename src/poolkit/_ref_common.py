"""Checks and shape arithmetic shared by the pure-Python reference modules.

``poolkit.reference``, ``poolkit._ref_stochastic`` and ``poolkit._ref_global`` take their
common helpers from here. Like them, this module imports only NumPy and the standard library,
never a compiled module nor any other part of poolkit -- and none of the reference modules, so
it can be imported first whatever the order in which they are loaded.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["pool_output_size"]

_AXES = ("H", "W")


def pool_output_size(L: int, kernel: int, stride: int, pad: int, dilation: int,
                     ceil_mode: bool) -> int:
    """Number of pooling windows along one axis.

    Parameters
    ----------
    L : int
        Input length along the axis.
    kernel, stride, pad, dilation : int
        Pooling parameters along the axis.
    ceil_mode : bool
        Round the window count up instead of down.

    Returns
    -------
    int
        ``floor((L + 2*pad - e) / stride) + 1`` (ceil in ceil mode), where
        ``e = dilation * (kernel - 1) + 1`` is the effective kernel. In ceil
        mode a last window that would start inside the right padding is
        dropped. The result may be < 1; callers reject that.

    Examples
    --------
    >>> pool_output_size(5, 2, 2, 0, 1, False)
    2
    >>> pool_output_size(5, 2, 2, 0, 1, True)
    3
    """
    effective = dilation * (kernel - 1) + 1
    span = L + 2 * pad - effective
    if ceil_mode:
        out = -(-span // stride) + 1  # integer ceil division
        # The last window must start inside the input or the left padding.
        if (out - 1) * stride >= L + pad:
            out -= 1
    else:
        out = span // stride + 1  # integer floor division
    return out


def _pair(value, name):
    """Normalise an int or an (h, w) pair of ints to a tuple of two ints."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {value!r}")
        pair = tuple(value)
    else:
        pair = (value, value)
    for v in pair:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return (int(pair[0]), int(pair[1]))


def _check_float(array, name):
    """Return `array` as an ndarray of native float32/float64, else TypeError."""
    array = np.asarray(array)
    if array.dtype.type not in (np.float32, np.float64):
        raise TypeError(
            f"{name} must have dtype float32 or float64, got dtype {array.dtype}"
        )
    # Non-native byte order is read as the same native dtype.
    return array.astype(array.dtype.type, copy=False)


def _as_4d(x, name="x"):
    """Check `x` (3-D or 4-D, H and W > 0); view a 3-D (C, H, W) array as (1, C, H, W).

    Returns the 4-D array and whether a batch axis was added.
    """
    x = np.asarray(x)
    if x.ndim not in (3, 4):
        raise ValueError(
            f"{name} must be 3-D (C, H, W) or 4-D (N, C, H, W), got shape {x.shape}"
        )
    x = _check_float(x, name)
    if x.shape[-2] == 0 or x.shape[-1] == 0:
        raise ValueError(f"{name} must have H > 0 and W > 0, got shape {x.shape}")
    if x.ndim == 3:
        return x[np.newaxis], True
    return x, False


def _check_input_shape(input_shape):
    """Check `input_shape` (3 or 4 non-negative ints, H and W > 0); return a tuple."""
    try:
        shape = tuple(int(s) for s in input_shape)
    except TypeError:
        raise TypeError(
            f"input_shape must be a tuple of ints, got {input_shape!r}"
        ) from None
    if len(shape) not in (3, 4) or any(s < 0 for s in shape):
        raise ValueError(
            "input_shape must be (C, H, W) or (N, C, H, W) of non-negative ints, "
            f"got {input_shape!r}"
        )
    if shape[-2] == 0 or shape[-1] == 0:
        raise ValueError(f"input_shape must have H > 0 and W > 0, got {input_shape!r}")
    return shape


def _add_at_indices(g4, i4, plane_size):
    """Route every output gradient to its index: the backward of max-like pooling.

    ``grad_input[n, c, i4[n, c, oh, ow]] += g4[n, c, oh, ow]`` for every output, in
    row-major output order, in the dtype of `g4`; positions no index names stay 0.
    Returns `grad_input` with flat planes, shape ``(N, C, plane_size)``.
    """
    N, C, H_out, W_out = g4.shape
    grad_input = np.zeros((N, C, plane_size), dtype=g4.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(H_out):
                for ow in range(W_out):
                    idx = i4[n, c, oh, ow]
                    grad_input[n, c, idx] = grad_input[n, c, idx] + g4[n, c, oh, ow]
    return grad_input
