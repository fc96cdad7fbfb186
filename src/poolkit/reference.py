"""Pure-Python reference implementation of poolkit's 2-D pooling.

Every function here computes the same result as its counterpart in the public
API (``poolkit.max_pool2d`` and so on), but with explicit, one-element-at-a-time
Python loops instead of compiled kernels. It has two jobs:

* it is the second, obviously-correct implementation that the Cython fast path
  is tested against, and
* it is the readable statement of the semantics in ``DESIGN.md``: which
  positions a window covers, which one wins a max, what an average divides by.

It imports only NumPy, the standard library and the other reference modules
(``_ref_common``, ``_ref_stochastic``, ``_ref_global``) -- never a compiled
poolkit module nor any other part of poolkit -- so a bug in the fast path
cannot leak into it. It is slow (about a microsecond per window tap) and meant
for small arrays.

Conventions shared by all functions:

* ``x`` has shape ``(N, C, H, W)``, or ``(C, H, W)`` for a single sample (the
  result is then 3-D again). dtype float32 or float64; results keep it.
* ``kernel_size``, ``stride``, ``padding`` and ``dilation`` are an int or an
  ``(h, w)`` pair; ``stride=None`` means ``stride = kernel_size``.
* Argmax indices are int64 and hold the flat position ``h * W + w`` inside the
  unpadded ``(H, W)`` plane of their ``(n, c)``.
* Along one axis of length ``L``, output position ``o`` has its window start at
  ``o * stride - padding`` and its taps at ``start + i * dilation`` for
  ``i in range(kernel)``; taps outside ``[0, L)`` are padding.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ._ref_common import (_AXES, _add_at_indices, _as_4d, _check_float, _check_input_shape,
                          _pair, pool_output_size)
from ._ref_global import (  # noqa: F401 - re-exported
    adaptive_avg_pool2d,
    adaptive_avg_pool2d_backward,
    adaptive_max_pool2d,
    adaptive_max_pool2d_backward,
    adaptive_window,
    class_activation_map,
    global_avg_pool2d,
    global_avg_pool2d_backward,
    global_max_pool2d,
    global_max_pool2d_backward,
    max_unpool2d,
    max_unpool2d_backward,
)
from ._ref_stochastic import stochastic_pool2d, stochastic_pool2d_backward  # noqa: F401

__all__ = [
    "avg_pool2d",
    "avg_pool2d_backward",
    "max_pool2d",
    "max_pool2d_backward",
    "pool_output_size",
    "stochastic_pool2d",
    "stochastic_pool2d_backward",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "global_max_pool2d",
    "global_max_pool2d_backward",
    "adaptive_window",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "max_unpool2d",
    "max_unpool2d_backward",
    "class_activation_map",
]


# ---------------------------------------------------------------------------
# Parameter checks (the shape arithmetic, pool_output_size, and the checks
# shared by every reference module are in _ref_common)
# ---------------------------------------------------------------------------


def _window_params(spatial, kernel_size, stride, padding, dilation, ceil_mode):
    """Validate pooling parameters for an (H, W) plane; return them as pairs.

    Returns ``(kernel, stride, padding, dilation, out_shape)``, each a pair.
    Raises ValueError, naming the parameter and its value, for: kernel,
    stride or dilation < 1; padding < 0 or more than half the effective
    kernel; an output size < 1; a window holding no input position.
    """
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    padding = _pair(padding, "padding")
    dilation = _pair(dilation, "dilation")

    for name, pair in (("kernel_size", kernel), ("stride", stride), ("dilation", dilation)):
        if min(pair) < 1:
            raise ValueError(f"{name} must be >= 1, got {name}={pair}")
    out_shape = []
    for axis in range(2):
        L, k, s, p, d = spatial[axis], kernel[axis], stride[axis], padding[axis], dilation[axis]
        effective = d * (k - 1) + 1
        if p < 0 or 2 * p > effective:
            raise ValueError(
                f"padding must be >= 0 and at most half the effective kernel "
                f"dilation * (kernel_size - 1) + 1 = {effective} along {_AXES[axis]}, "
                f"got padding={padding}"
            )
        out = pool_output_size(L, k, s, p, d, ceil_mode)
        if out < 1:
            raise ValueError(
                f"output size along {_AXES[axis]} would be {out} (< 1) for input "
                f"length {L} with kernel_size={kernel}, stride={stride}, "
                f"padding={padding}, dilation={dilation}, ceil_mode={ceil_mode}"
            )
        # With dilation, every tap of a window can land in the padding or
        # jump over the whole input; such a window would have no maximum.
        for o in range(out):
            start = o * s - p
            if not any(0 <= start + i * d < L for i in range(k)):
                raise ValueError(
                    f"window {o} along {_AXES[axis]} (length {L}) holds no input "
                    f"position with kernel_size={kernel}, stride={stride}, "
                    f"padding={padding}, dilation={dilation}"
                )
        out_shape.append(out)
    return kernel, stride, padding, dilation, tuple(out_shape)


# ---------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------


def max_pool2d(x: npt.ArrayLike, kernel_size: int | tuple[int, int],
               stride: int | tuple[int, int] | None = None, padding: int | tuple[int, int] = 0,
               dilation: int | tuple[int, int] = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> (
        npt.NDArray[np.floating] | tuple[npt.NDArray[np.floating], npt.NDArray[np.int64]]):
    """2-D max pooling, one window at a time.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W) or (C, H, W), dtype float32 or float64
        Input.
    kernel_size : int or (int, int)
        Window size.
    stride : int or (int, int), optional
        Window step; defaults to `kernel_size`.
    padding : int or (int, int), default 0
        Implicit padding on both sides; padded positions never win.
    dilation : int or (int, int), default 1
        Spacing between window taps.
    ceil_mode : bool, default False
        Round the output size up instead of down.
    return_indices : bool, default False
        Also return the argmax positions.

    Returns
    -------
    out : ndarray of shape (N, C, H_out, W_out), dtype of `x`
        Window maxima. A window holding a NaN gives NaN.
    indices : ndarray of shape (N, C, H_out, W_out), dtype int64
        Only with ``return_indices=True``: flat position ``h * W + w`` of
        each maximum in its unpadded input plane. Ties, and several NaNs,
        go to the first position in row-major window order.

    Raises
    ------
    TypeError
        If `x` is not float32 or float64.
    ValueError
        If a shape or parameter is invalid (see ``DESIGN.md``).

    Examples
    --------
    >>> x = np.array([[[1.0, 3.0], [2.0, 2.0]]])
    >>> max_pool2d(x, 2, return_indices=True)
    (array([[[3.]]]), array([[[1]]]))
    """
    x, added_batch = _as_4d(x)
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (H_out, W_out) = _window_params(
        (H, W), kernel_size, stride, padding, dilation, ceil_mode)

    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)
    indices = np.empty((N, C, H_out, W_out), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            plane = x[n, c]
            for oh in range(H_out):
                for ow in range(W_out):
                    best_value = None
                    best_index = -1
                    for i in range(kh):  # row-major window order: rows outer
                        h = oh * sh - ph + i * dh
                        if not 0 <= h < H:
                            continue  # padding row
                        for j in range(kw):
                            w = ow * sw - pw + j * dw
                            if not 0 <= w < W:
                                continue  # padding column
                            v = plane[h, w]
                            first_tap = best_index < 0
                            larger = not first_tap and v > best_value  # ties keep the first
                            first_nan = (not first_tap and math.isnan(v)
                                         and not math.isnan(best_value))  # NaN wins, and stays
                            if first_tap or larger or first_nan:
                                best_value = v
                                best_index = h * W + w
                    out[n, c, oh, ow] = best_value
                    indices[n, c, oh, ow] = best_index

    if added_batch:
        out, indices = out[0], indices[0]
    if return_indices:
        return out, indices
    return out


def max_pool2d_backward(grad_output: npt.ArrayLike, indices: npt.ArrayLike,
                        input_shape: Sequence[int]) -> npt.NDArray[np.floating]:
    """Gradient of :func:`max_pool2d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray of shape (N, C, H_out, W_out) or (C, H_out, W_out)
        Gradient of the loss with respect to the pooled output; float32 or
        float64.
    indices : ndarray of integers, same shape as `grad_output`
        Argmax positions from ``max_pool2d(..., return_indices=True)``.
    input_shape : tuple of int
        Shape of the forward input, ``(N, C, H, W)`` or ``(C, H, W)``.

    Returns
    -------
    grad_input : ndarray of shape `input_shape`, dtype of `grad_output`
        ``grad_input[n, c].flat[idx] += grad_output[n, c, oh, ow]`` for every
        output element; overlapping windows accumulate.

    Raises
    ------
    TypeError
        If `grad_output` is not float32/float64 or `indices` not integer.
    ValueError
        If shapes disagree or an index lies outside ``[0, H * W)``.

    Examples
    --------
    >>> g = np.array([[[3.0]]])
    >>> max_pool2d_backward(g, np.array([[[1]]]), (1, 2, 2))
    array([[[0., 3.],
            [0., 0.]]])
    """
    input_shape = _check_input_shape(input_shape)
    grad_output = _check_float(grad_output, "grad_output")
    indices = np.asarray(indices)
    if not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"indices must have an integer dtype, got dtype {indices.dtype}")
    if grad_output.shape != indices.shape:
        raise ValueError(
            f"grad_output and indices must have the same shape, got "
            f"{grad_output.shape} and {indices.shape}"
        )
    if grad_output.ndim != len(input_shape) or grad_output.shape[:-2] != input_shape[:-2]:
        raise ValueError(
            f"grad_output of shape {grad_output.shape} does not match "
            f"input_shape={input_shape} in its leading (N, C) axes"
        )
    H, W = input_shape[-2:]
    if indices.size and (indices.min() < 0 or indices.max() >= H * W):
        raise ValueError(
            f"indices must lie in [0, H * W) = [0, {H * W}), got values from "
            f"{indices.min()} to {indices.max()}"
        )

    added_batch = grad_output.ndim == 3
    if added_batch:
        grad_output, indices = grad_output[np.newaxis], indices[np.newaxis]
    grad_input = _add_at_indices(grad_output, indices, H * W)  # flat planes
    return grad_input.reshape(input_shape)


# ---------------------------------------------------------------------------
# Average pooling
# ---------------------------------------------------------------------------


def _avg_window(o, k, s, p, L):
    """Bounds of average-pooling window `o` along one axis of length `L`.

    Returns ``(start, end, padded_size)``: the input positions summed are
    ``range(start, end)``, and ``padded_size`` is the window length after
    clipping to the padded extent ``[-p, L + p)`` -- the divisor's factor
    when padding counts. In ceil mode the last window may overhang the right
    padding; the overhang counts for nothing (PyTorch's rule).
    """
    start = o * s - p
    end = min(start + k, L + p)
    padded_size = end - start
    return max(start, 0), min(end, L), padded_size


def _avg_divisor(hwin, wwin, count_include_pad, divisor_override):
    """Divisor of one average window from its two axis windows."""
    if divisor_override is not None:
        return divisor_override
    (h0, h1, h_padded), (w0, w1, w_padded) = hwin, wwin
    if count_include_pad:
        return h_padded * w_padded
    return (h1 - h0) * (w1 - w0)  # input positions only


def _check_divisor_override(divisor_override):
    if divisor_override is None:
        return None
    if isinstance(divisor_override, bool) or not isinstance(divisor_override, numbers.Integral):
        raise TypeError(f"divisor_override must be None or an int, got {divisor_override!r}")
    if divisor_override == 0:
        raise ValueError("divisor_override must not be zero, got divisor_override=0")
    return int(divisor_override)


def avg_pool2d(x: npt.ArrayLike, kernel_size: int | tuple[int, int],
               stride: int | tuple[int, int] | None = None, padding: int | tuple[int, int] = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: int | None = None) -> npt.NDArray[np.floating]:
    """2-D average pooling, one window at a time.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W) or (C, H, W), dtype float32 or float64
        Input.
    kernel_size : int or (int, int)
        Window size.
    stride : int or (int, int), optional
        Window step; defaults to `kernel_size`.
    padding : int or (int, int), default 0
        Implicit zero padding on both sides.
    ceil_mode : bool, default False
        Round the output size up instead of down.
    count_include_pad : bool, default True
        Count padded positions in the divisor (input positions only if False).
    divisor_override : int, optional
        Divide every window sum by this instead.

    Returns
    -------
    out : ndarray of shape (N, C, H_out, W_out), dtype of `x`
        Window sums (accumulated in row-major order in the dtype of `x`)
        divided by the divisor.

    Raises
    ------
    TypeError
        If `x` is not float32 or float64.
    ValueError
        If a shape or parameter is invalid, or ``divisor_override == 0``.

    Examples
    --------
    >>> avg_pool2d(np.array([[[1.0, 3.0], [2.0, 2.0]]]), 2)
    array([[[2.]]])
    >>> avg_pool2d(np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]]), (1, 2), ceil_mode=True)
    array([[[1.5, 3.5, 5. ]]])
    """
    x, added_batch = _as_4d(x)
    divisor_override = _check_divisor_override(divisor_override)
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw), _, (H_out, W_out) = _window_params(
        (H, W), kernel_size, stride, padding, 1, ceil_mode)

    scalar = x.dtype.type  # keep float32 arithmetic in float32
    out = np.empty((N, C, H_out, W_out), dtype=x.dtype)
    for n in range(N):
        for c in range(C):
            plane = x[n, c]
            for oh in range(H_out):
                hwin = _avg_window(oh, kh, sh, ph, H)
                for ow in range(W_out):
                    wwin = _avg_window(ow, kw, sw, pw, W)
                    acc = scalar(0)
                    for h in range(hwin[0], hwin[1]):
                        for w in range(wwin[0], wwin[1]):
                            acc = acc + plane[h, w]
                    divisor = _avg_divisor(hwin, wwin, count_include_pad, divisor_override)
                    out[n, c, oh, ow] = acc / scalar(divisor)

    return out[0] if added_batch else out


def avg_pool2d_backward(grad_output: npt.ArrayLike, input_shape: Sequence[int],
                        kernel_size: int | tuple[int, int],
                        stride: int | tuple[int, int] | None = None,
                        padding: int | tuple[int, int] = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True,
                        divisor_override: int | None = None) -> npt.NDArray[np.floating]:
    """Gradient of :func:`avg_pool2d` with respect to its input.

    Parameters
    ----------
    grad_output : ndarray of shape (N, C, H_out, W_out) or (C, H_out, W_out)
        Gradient of the loss with respect to the pooled output; float32 or
        float64.
    input_shape : tuple of int
        Shape of the forward input, ``(N, C, H, W)`` or ``(C, H, W)``.
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        As given to :func:`avg_pool2d`.

    Returns
    -------
    grad_input : ndarray of shape `input_shape`, dtype of `grad_output`
        Each output gradient divided by its window's divisor and added to
        every input position of the window.

    Raises
    ------
    TypeError
        If `grad_output` is not float32 or float64.
    ValueError
        If a parameter is invalid or `grad_output` has the wrong shape.

    Examples
    --------
    >>> avg_pool2d_backward(np.array([[[2.0]]]), (1, 2, 2), 2)
    array([[[0.5, 0.5],
            [0.5, 0.5]]])
    """
    input_shape = _check_input_shape(input_shape)
    grad_output = _check_float(grad_output, "grad_output")
    divisor_override = _check_divisor_override(divisor_override)
    H, W = input_shape[-2:]
    (kh, kw), (sh, sw), (ph, pw), _, (H_out, W_out) = _window_params(
        (H, W), kernel_size, stride, padding, 1, ceil_mode)
    expected = input_shape[:-2] + (H_out, W_out)
    if grad_output.shape != expected:
        raise ValueError(
            f"grad_output must have shape {expected} for input_shape={input_shape}, "
            f"got {grad_output.shape}"
        )

    added_batch = grad_output.ndim == 3
    if added_batch:
        grad_output = grad_output[np.newaxis]
    N, C = grad_output.shape[:2]

    scalar = grad_output.dtype.type
    grad_input = np.zeros((N, C, H, W), dtype=grad_output.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(H_out):
                hwin = _avg_window(oh, kh, sh, ph, H)
                for ow in range(W_out):
                    wwin = _avg_window(ow, kw, sw, pw, W)
                    divisor = _avg_divisor(hwin, wwin, count_include_pad, divisor_override)
                    share = grad_output[n, c, oh, ow] / scalar(divisor)
                    for h in range(hwin[0], hwin[1]):
                        for w in range(wwin[0], wwin[1]):
                            grad_input[n, c, h, w] = grad_input[n, c, h, w] + share

    return grad_input.reshape(input_shape)
