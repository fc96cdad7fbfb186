"""Max and average pooling: the functional API (validation, allocation, dispatch)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, overload

import numpy as np
import numpy.typing as npt

from . import _avg_pool, _max_pool
from ._arrays import (argmax_outputs, as_float_input, as_indices, as_planes, check_input_shape,
                      check_plane, native, output, planes_of, raise_bad_indices)
from ._params import as_flag, check_bool, check_divisor_override, pool_params
from ._threads import resolve

__all__ = [
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
]

# Types of the public signatures (PEP 604 unions: fine at run time from Python 3.10).
IntOrPair = int | tuple[int, int]
"""A window parameter: one int for both axes, or ``(h, w)``."""
FloatArray = npt.NDArray[np.floating]
"""float32 or float64 results (the input's dtype)."""
IndexArray = npt.NDArray[np.int64]
"""argmax indices: flat ``h * W + w`` positions in the input plane."""


# ----------------------------------------------------------------------------- max pooling


# Overloads: the result is an array, or a (values, indices) pair with return_indices=True.
@overload
def max_pool2d(
    x: npt.ArrayLike, kernel_size: IntOrPair, stride: IntOrPair | None = ...,
    padding: IntOrPair = ..., dilation: IntOrPair = ..., ceil_mode: bool = ...,
    return_indices: Literal[False] = ..., *, out: np.ndarray | None = ...,
    n_threads: int | None = ...,
) -> FloatArray: ...
@overload
def max_pool2d(
    x: npt.ArrayLike, kernel_size: IntOrPair, stride: IntOrPair | None = ...,
    padding: IntOrPair = ..., dilation: IntOrPair = ..., ceil_mode: bool = ...,
    *, return_indices: Literal[True], out: tuple[np.ndarray, np.ndarray] | None = ...,
    n_threads: int | None = ...,
) -> tuple[FloatArray, IndexArray]: ...
@overload
def max_pool2d(
    x: npt.ArrayLike, kernel_size: IntOrPair, stride: IntOrPair | None = ...,
    padding: IntOrPair = ..., dilation: IntOrPair = ..., ceil_mode: bool = ...,
    return_indices: bool = ..., *, out: np.ndarray | tuple[np.ndarray, np.ndarray] | None = ...,
    n_threads: int | None = ...,
) -> FloatArray | tuple[FloatArray, IndexArray]: ...
def max_pool2d(
    x: npt.ArrayLike,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    out: np.ndarray | tuple[np.ndarray, np.ndarray] | None = None,
    n_threads: int | None = None,
) -> FloatArray | tuple[FloatArray, IndexArray]:
    """2-D max pooling over the last two axes, with optional argmax indices.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W) or (C, H, W), dtype float32 or float64
        Input, in any memory layout; never written to.
    kernel_size : int or (int, int)
        Window size ``(kh, kw)``.
    stride : int or (int, int), optional
        Window step; defaults to ``kernel_size``.
    padding : int or (int, int), default 0
        Implicit padding on both sides; padded positions never win. At most half the
        effective kernel ``dilation * (kernel_size - 1) + 1``.
    dilation : int or (int, int), default 1
        Spacing between the positions of a window.
    ceil_mode : bool, default False
        Round the output size up instead of down (the last window must still start inside the
        input or the left padding).
    return_indices : bool, default False
        Also return the argmax of each window as int64 flat positions ``h * W + w`` in the
        unpadded input plane (PyTorch's ``return_indices``, Caffe's ``max_idx_``).
    out : ndarray or (ndarray, ndarray), optional
        Where to write the values (and, with ``return_indices``, the indices): C-contiguous,
        writable, right shape and dtype, not overlapping ``x``.
    n_threads : int, optional
        OpenMP threads; None uses OpenMP's default, -1 all CPUs. Results do not depend on it.

    Returns
    -------
    values : ndarray of shape (N, C, OH, OW) or (C, OH, OW), dtype of x
    indices : ndarray of shape (N, C, OH, OW) or (C, OH, OW), dtype int64
        Only with ``return_indices=True``.

    Raises
    ------
    TypeError
        For a dtype other than float32/float64, or non-integer parameters.
    ValueError
        For invalid parameters or shapes, and unusable ``out`` arrays (the message names the
        parameter and the value it got).

    Notes
    -----
    A window holding a NaN outputs NaN and points at its first NaN; ties go to the first
    position in row-major window order; a window of ``-inf`` outputs ``-inf`` at its first
    input position.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.array([[[[1., 3.], [2., 2.]]]])
    >>> values, indices = poolkit.max_pool2d(x, 2, return_indices=True)
    >>> values
    array([[[[3.]]]])
    >>> indices
    array([[[[1]]]])
    """
    x = as_float_input(x)
    check_plane(x.shape)
    prm = pool_params(x.shape[-2:], kernel_size, stride, padding, dilation, ceil_mode)
    shape = x.shape[:-2] + prm.out_hw
    return_indices = as_flag(return_indices, "return_indices")
    values, indices = argmax_outputs(out, shape, x, return_indices, with_indices=return_indices)
    if values.size:
        planes = as_planes(x)
        nt = resolve(n_threads, planes.size + values.size)
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = prm[:4]
        n_fail = _max_pool.max_pool2d_forward(
            planes, planes_of(values), None if indices is None else planes_of(indices),
            kh, kw, sh, sw, ph, pw, dh, dw, nt
        )
        if n_fail:
            raise MemoryError("max_pool2d could not allocate its scratch row")
    else:
        resolve(n_threads)
    return values if indices is None else (values, indices)


def max_pool2d_backward(
    grad_output: npt.ArrayLike,
    indices: npt.ArrayLike,
    input_shape: Sequence[int],
    *,
    out: np.ndarray | None = None,
    n_threads: int | None = None,
    _trusted_indices: bool = False,
) -> FloatArray:
    """Gradient of :func:`max_pool2d`: route each output gradient to its argmax.

    ``grad_input[n, c].flat[indices[n, c, i, j]] += grad_output[n, c, i, j]``; overlapping
    windows accumulate and every other position is 0.

    Parameters
    ----------
    grad_output : ndarray of shape (N, C, OH, OW) or (C, OH, OW), dtype float32 or float64
        Gradient with respect to the pooled output.
    indices : ndarray of int, same shape as grad_output
        Argmax from ``max_pool2d(..., return_indices=True)``; each must lie in ``[0, H * W)``.
    input_shape : tuple of int
        Shape of the forward input, ``(N, C, H, W)`` or ``(C, H, W)``.
    out : ndarray, optional
        Where to write the input gradient (C-contiguous, writable, right shape and dtype).
    n_threads : int, optional
        OpenMP threads (see :func:`max_pool2d`).

    Returns
    -------
    grad_input : ndarray of shape input_shape, dtype of grad_output

    Raises
    ------
    ValueError
        For an index outside ``[0, H * W)`` (all are checked before anything is written), or
        shapes that disagree.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> g = np.array([[[[3.]]]])
    >>> poolkit.max_pool2d_backward(g, np.array([[[[1]]]]), (1, 1, 2, 2))
    array([[[[0., 3.],
             [0., 0.]]]])
    """
    g = as_float_input(grad_output, "grad_output")
    shape = check_input_shape(input_shape, g)
    return argmax_backward(g, indices, shape, out, n_threads,
                           _trusted_indices)


def argmax_backward(g: np.ndarray, indices: npt.ArrayLike, shape: tuple[int, ...],
                    out: np.ndarray | None, n_threads: int | None,
                    trusted_indices: bool) -> FloatArray:
    """The body of the max-pooling backwards (max, adaptive max, stochastic training): add
    each output gradient at its argmax, a flat position in its input plane.

    ``g`` and ``shape`` (the input's) are already checked; ``indices`` are checked here, and
    their bounds by the kernel (unless ``trusted_indices``: a layer's own). Into a user's
    ``out=`` nothing is written when one is out of bounds (they are all checked first); a
    fresh output is discarded on error, so its planes' indices are checked as each plane is
    scattered (the indices are then read once, not twice).
    """
    idx = as_indices(indices, g.shape)
    grad_input = output(out, shape, native(g.dtype), "out", (g, idx))
    if grad_input.size and g.size:
        gp = as_planes(g)
        nt = resolve(n_threads, gp.size + grad_input.size)
        check = (_max_pool.CHECK_NONE if trusted_indices else
                 _max_pool.CHECK_BEFORE if out is not None else _max_pool.CHECK_WHILE)
        if _max_pool.max_pool2d_backward(gp, planes_of(idx), planes_of(grad_input), check, nt):
            raise_bad_indices(idx, shape[-2] * shape[-1])
    else:
        # nothing to route (no gradient planes, or planes of 0 rows or columns): zeros
        resolve(n_threads)
        grad_input.fill(0)
    return grad_input


# ------------------------------------------------------------------------- average pooling


def _avg_params(in_hw, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override):
    prm = pool_params(in_hw, kernel_size, stride, padding, 1, ceil_mode)
    cip = check_bool(count_include_pad, "count_include_pad")
    return prm, cip, check_divisor_override(divisor_override)


def _avg_pass(kernel: Callable, what: str, src: np.ndarray, shape: tuple, prm, cip: bool,
              dov: int, out: np.ndarray | None, n_threads: int | None) -> FloatArray:
    """Run an average-pooling ``kernel`` (forward or backward) from ``src`` into ``out`` or a
    new array of ``shape``; ``what`` names the function in a MemoryError."""
    result = output(out, shape, native(src.dtype), "out", (src,))
    if result.size:
        planes = as_planes(src)
        nt = resolve(n_threads, planes.size + result.size)
        (kh, kw), (sh, sw), (ph, pw) = prm[:3]
        if kernel(planes, planes_of(result), kh, kw, sh, sw, ph, pw, cip, dov, nt):
            raise MemoryError(f"{what} could not allocate its scratch row")
    else:
        resolve(n_threads)
    return result


def avg_pool2d(
    x: npt.ArrayLike,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    *,
    out: np.ndarray | None = None,
    n_threads: int | None = None,
) -> FloatArray:
    """2-D average (mean) pooling over the last two axes.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W) or (C, H, W), dtype float32 or float64
        Input, in any memory layout; never written to.
    kernel_size, stride, padding, ceil_mode
        As in :func:`max_pool2d` (padding counts as zeros in the sum).
    count_include_pad : bool, default True
        Count padded positions in the divisor (the window clipped to the padded extent, as
        PyTorch does); with False only input positions are counted.
    divisor_override : int, optional
        Divide every window sum by this instead (not 0).
    out : ndarray, optional
        Where to write the result (C-contiguous, writable, right shape and dtype).
    n_threads : int, optional
        OpenMP threads (see :func:`max_pool2d`).

    Returns
    -------
    ndarray of shape (N, C, OH, OW) or (C, OH, OW), dtype of x
        Each window's sum (taken in row-major order in x's dtype) divided by its divisor.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> poolkit.avg_pool2d(np.array([[[[1., 3.], [2., 2.]]]]), 2)
    array([[[[2.]]]])
    >>> poolkit.avg_pool2d(np.array([[[1., 2., 3., 4., 5.]]]), (1, 2), ceil_mode=True)
    array([[[1.5, 3.5, 5. ]]])
    """
    x = as_float_input(x)
    check_plane(x.shape)
    prm, cip, dov = _avg_params(x.shape[-2:], kernel_size, stride, padding, ceil_mode,
                                count_include_pad, divisor_override)
    return _avg_pass(_avg_pool.avg_pool2d_forward, "avg_pool2d", x, x.shape[:-2] + prm.out_hw,
                     prm, cip, dov, out, n_threads)


def avg_pool2d_backward(
    grad_output: npt.ArrayLike,
    input_shape: Sequence[int],
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
    *,
    out: np.ndarray | None = None,
    n_threads: int | None = None,
) -> FloatArray:
    """Gradient of :func:`avg_pool2d`: spread each output gradient over its window.

    Every input position of a window receives ``grad_output / divisor`` with the forward's
    divisor (never the undivided gradient); overlapping windows accumulate.

    Parameters
    ----------
    grad_output : ndarray of shape (N, C, OH, OW) or (C, OH, OW), dtype float32 or float64
    input_shape : tuple of int
        Shape of the forward input.
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        The forward's parameters; ``grad_output`` must have the shape they give.
    out, n_threads
        As in :func:`avg_pool2d`.

    Returns
    -------
    grad_input : ndarray of shape input_shape, dtype of grad_output

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> poolkit.avg_pool2d_backward(np.array([[[[2.]]]]), (1, 1, 2, 2), 2)
    array([[[[0.5, 0.5],
             [0.5, 0.5]]]])
    """
    g = as_float_input(grad_output, "grad_output")
    shape = check_input_shape(input_shape, g)
    prm, cip, dov = _avg_params(shape[-2:], kernel_size, stride, padding, ceil_mode,
                                count_include_pad, divisor_override)
    expected = shape[:-2] + prm.out_hw
    if g.shape != expected:
        raise ValueError(
            f"grad_output must have shape {expected} (the output of avg_pool2d on input_shape "
            f"{shape} with these parameters), got {g.shape}"
        )
    return _avg_pass(_avg_pool.avg_pool2d_backward, "avg_pool2d_backward", g, shape, prm, cip,
                     dov, out, n_threads)
