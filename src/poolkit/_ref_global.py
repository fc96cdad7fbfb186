"""Pure-Python reference for global, adaptive and unpooling operations and class activation
maps.

The same operations as ``poolkit.global_avg_pool2d`` and friends, written as explicit loops
over one element at a time, to be read and to test the compiled kernels against. Like
``poolkit.reference`` (which re-exports everything here), it imports only NumPy, the standard
library and the checks shared by the reference modules (``_ref_common``), never a compiled
module nor any other part of poolkit.

Conventions (those of ``poolkit.reference``):

* ``x`` has shape ``(N, C, H, W)``, or ``(C, H, W)`` for one sample (the result then has no
  batch axis either); dtype float32 or float64, kept by the results.
* Argmax indices are int64 flat positions ``h * W + w`` in the ``(H, W)`` plane of their
  ``(n, c)``; ties go to the first position in row-major order, a NaN wins and the first NaN
  is reported, a window of ``-inf`` reports its first position.
* Sums of average pooling are accumulated in Python floats (double precision) for both
  dtypes, then divided and rounded once to the dtype.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ._ref_common import _add_at_indices, _as_4d, _check_float

__all__ = [
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
# Checks shared by the functions below
# ---------------------------------------------------------------------------


# Not the ``_pair`` and ``_check_input_shape`` of ``_ref_common``: these name the offending
# entry in their TypeError, and this ``_check_input_shape`` takes ints only (the shared one
# calls ``int()`` on each entry).


def _check_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    return int(value)


def _pair(value, name):
    """An int or an (h, w) pair of ints, as a tuple of two ints."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {value!r}")
        return (_check_int(value[0], name), _check_int(value[1], name))
    v = _check_int(value, name)
    return (v, v)


def _check_input_shape(input_shape):
    """`input_shape` as a tuple of 3 or 4 non-negative ints with H and W > 0."""
    shape = tuple(_check_int(s, "input_shape") for s in input_shape)
    if len(shape) not in (3, 4) or any(s < 0 for s in shape):
        raise ValueError(
            f"input_shape must be (C, H, W) or (N, C, H, W) of non-negative ints, got {shape}"
        )
    if shape[-2] == 0 or shape[-1] == 0:
        raise ValueError(f"input_shape must have H > 0 and W > 0, got {shape}")
    return shape


def _check_indices(indices, shape):
    indices = np.asarray(indices)
    if not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"indices must have an integer dtype, got dtype {indices.dtype}")
    if indices.shape != tuple(shape):
        raise ValueError(f"indices must have shape {tuple(shape)}, got {indices.shape}")
    return indices


def _check_index_range(indices, size):
    if indices.size and (indices.min() < 0 or indices.max() >= size):
        raise ValueError(
            f"indices must lie in [0, {size}), got values from {indices.min()} to "
            f"{indices.max()}"
        )


def _beats(v, best):
    """Whether `v` replaces the current maximum `best` (in row-major order): it is larger, or
    it is the first NaN (NaN wins and stays)."""
    return v > best or (math.isnan(v) and not math.isnan(best))


# ---------------------------------------------------------------------------
# Global average and global max pooling
# ---------------------------------------------------------------------------


def _global_shape(x_shape, keepdims):
    return tuple(x_shape[:-2]) + ((1, 1) if keepdims else ())


def _check_global_grad(grad_output, input_shape):
    """Check a global backward's arguments: `grad_output` has shape ``input_shape[:-2]`` or
    ``input_shape[:-2] + (1, 1)``. Returns ``(shape, grad_output)``, checked."""
    shape = _check_input_shape(input_shape)
    g = _check_float(grad_output, "grad_output")
    if g.shape not in (shape[:-2], shape[:-2] + (1, 1)):
        raise ValueError(
            f"grad_output must have shape {shape[:-2]} or {shape[:-2] + (1, 1)}, got {g.shape}"
        )
    return shape, g


def global_avg_pool2d(x: npt.ArrayLike, keepdims: bool = False) -> npt.NDArray[np.floating]:
    """Mean of each (H, W) plane.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W) or (C, H, W), dtype float32 or float64
    keepdims : bool, default False
        Keep the reduced axes: shape (N, C, 1, 1) instead of (N, C).

    Returns
    -------
    ndarray of shape (N, C) or (N, C, 1, 1), dtype of `x`
        The plane's sum, taken in double precision in row-major order, divided by H * W
        and rounded once to the dtype.

    Examples
    --------
    >>> global_avg_pool2d(np.arange(8.0).reshape(1, 2, 2, 2))
    array([[1.5, 5.5]])
    """
    x4, _ = _as_4d(x)
    N, C, H, W = x4.shape
    out = np.empty((N, C), dtype=x4.dtype)
    for n in range(N):
        for c in range(C):
            acc = 0.0  # a Python float: double precision for float32 input too
            for h in range(H):
                for w in range(W):
                    acc += float(x4[n, c, h, w])
            out[n, c] = acc / (H * W)
    return out.reshape(_global_shape(np.shape(x), keepdims))


def global_avg_pool2d_backward(grad_output: npt.ArrayLike,
                               input_shape: Sequence[int]) -> npt.NDArray[np.floating]:
    """Gradient of :func:`global_avg_pool2d`: every position receives ``grad / (H * W)``.

    `grad_output` has shape ``input_shape[:-2]`` or ``input_shape[:-2] + (1, 1)``; the
    division is done in double precision and rounded once.

    Examples
    --------
    >>> global_avg_pool2d_backward(np.array([[4.0]]), (1, 1, 2, 2))
    array([[[[1., 1.],
             [1., 1.]]]])
    """
    shape, g = _check_global_grad(grad_output, input_shape)
    H, W = shape[-2:]
    flat_g = g.reshape(-1)
    grad_input = np.empty((flat_g.size, H, W), dtype=g.dtype)
    for p in range(flat_g.size):
        share = float(flat_g[p]) / (H * W)
        for h in range(H):
            for w in range(W):
                grad_input[p, h, w] = share
    return grad_input.reshape(shape)


def global_max_pool2d(x: npt.ArrayLike, keepdims: bool = False,
                      return_indices: bool = False) -> (
        npt.NDArray[np.floating] | tuple[npt.NDArray[np.floating], npt.NDArray[np.int64]]):
    """Maximum of each (H, W) plane, optionally with its flat position ``h * W + w``.

    Examples
    --------
    >>> global_max_pool2d(np.array([[[[1.0, 3.0], [3.0, 2.0]]]]), return_indices=True)
    (array([[3.]]), array([[1]]))
    """
    x4, _ = _as_4d(x)
    N, C, H, W = x4.shape
    out = np.empty((N, C), dtype=x4.dtype)
    indices = np.empty((N, C), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            best, best_index = x4[n, c, 0, 0], 0
            for h in range(H):
                for w in range(W):
                    if _beats(x4[n, c, h, w], best):
                        best, best_index = x4[n, c, h, w], h * W + w
            out[n, c] = best
            indices[n, c] = best_index
    shape = _global_shape(np.shape(x), keepdims)
    if return_indices:
        return out.reshape(shape), indices.reshape(shape)
    return out.reshape(shape)


def global_max_pool2d_backward(grad_output: npt.ArrayLike, indices: npt.ArrayLike,
                               input_shape: Sequence[int]) -> npt.NDArray[np.floating]:
    """Gradient of :func:`global_max_pool2d`: each plane's gradient at its argmax, 0 elsewhere.

    Examples
    --------
    >>> global_max_pool2d_backward(np.array([[5.0]]), np.array([[1]]), (1, 1, 2, 2))
    array([[[[0., 5.],
             [0., 0.]]]])
    """
    shape, g = _check_global_grad(grad_output, input_shape)
    indices = _check_indices(indices, g.shape)
    H, W = shape[-2:]
    _check_index_range(indices, H * W)
    flat_g, flat_i = g.reshape(-1), indices.reshape(-1)
    grad_input = np.zeros((flat_g.size, H * W), dtype=g.dtype)
    for p in range(flat_g.size):
        grad_input[p, flat_i[p]] = flat_g[p]
    return grad_input.reshape(shape)


# ---------------------------------------------------------------------------
# Adaptive average and adaptive max pooling
# ---------------------------------------------------------------------------


def adaptive_window(o: int, L: int, n_out: int) -> tuple[int, int]:
    """PyTorch's adaptive window of output `o` along an axis of length `L` cut into `n_out`.

    Returns ``(start, end)`` with ``start = floor(o * L / n_out)`` and
    ``end = ceil((o + 1) * L / n_out)``, in integer arithmetic.

    >>> [adaptive_window(o, 5, 3) for o in range(3)]
    [(0, 2), (1, 4), (3, 5)]
    """
    start = (o * L) // n_out
    end = -((-(o + 1) * L) // n_out)  # ceil division
    return start, end


def _output_size(output_size, H, W):
    """(OH, OW) from an int or a pair whose entries may be None (= the input's size)."""
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != 2:
            raise ValueError(f"output_size must be an int or a pair (h, w), got {output_size!r}")
        oh, ow = output_size
    else:
        oh = ow = _check_int(output_size, "output_size")
    oh = H if oh is None else _check_int(oh, "output_size")
    ow = W if ow is None else _check_int(ow, "output_size")
    if oh < 1 or ow < 1:
        raise ValueError(f"output_size must be >= 1 along H and W, got {output_size!r}")
    return oh, ow


def _check_adaptive_grad(grad_output, input_shape):
    """Check an adaptive backward's arguments: `grad_output` has the leading (N, C) axes of
    `input_shape`, and any output size. Returns ``(shape, g4, added_batch)`` (see ``_as_4d``)."""
    shape = _check_input_shape(input_shape)
    g4, added_batch = _as_4d(grad_output, "grad_output")
    if len(shape) != np.ndim(grad_output) or tuple(shape[:-2]) != np.shape(grad_output)[:-2]:
        raise ValueError(
            f"grad_output of shape {np.shape(grad_output)} does not match input_shape={shape}"
        )
    return shape, g4, added_batch


def adaptive_avg_pool2d(x: npt.ArrayLike, output_size: int | tuple[int | None, int | None]
                        ) -> npt.NDArray[np.floating]:
    """Mean over each adaptive window (see :func:`adaptive_window`).

    The window sum is taken in double precision in row-major order, divided by the window's
    size and rounded once to the dtype.

    Examples
    --------
    >>> adaptive_avg_pool2d(np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]]), (1, 3))
    array([[[1.5, 3. , 4.5]]])
    """
    x4, added_batch = _as_4d(x)
    N, C, H, W = x4.shape
    OH, OW = _output_size(output_size, H, W)
    out = np.empty((N, C, OH, OW), dtype=x4.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                h0, h1 = adaptive_window(oh, H, OH)
                for ow in range(OW):
                    w0, w1 = adaptive_window(ow, W, OW)
                    acc = 0.0
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            acc += float(x4[n, c, h, w])
                    out[n, c, oh, ow] = acc / ((h1 - h0) * (w1 - w0))
    return out[0] if added_batch else out


def adaptive_avg_pool2d_backward(grad_output: npt.ArrayLike,
                                 input_shape: Sequence[int]) -> npt.NDArray[np.floating]:
    """Gradient of :func:`adaptive_avg_pool2d`; the output size is that of `grad_output`.

    Each output gradient divided by its window's size (in double precision, rounded once to
    the dtype) is added, in the dtype, to every position of the window; overlapping windows
    accumulate in output order.

    Examples
    --------
    >>> adaptive_avg_pool2d_backward(np.array([[[2.0, 3.0]]]), (1, 1, 3))
    array([[[1. , 2.5, 1.5]]])
    """
    shape, g4, _ = _check_adaptive_grad(grad_output, input_shape)
    N, C, OH, OW = g4.shape
    H, W = shape[-2:]
    scalar = g4.dtype.type
    grad_input = np.zeros((N, C, H, W), dtype=g4.dtype)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                h0, h1 = adaptive_window(oh, H, OH)
                for ow in range(OW):
                    w0, w1 = adaptive_window(ow, W, OW)
                    share = scalar(float(g4[n, c, oh, ow]) / ((h1 - h0) * (w1 - w0)))
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            grad_input[n, c, h, w] = grad_input[n, c, h, w] + share
    return grad_input.reshape(shape)


def adaptive_max_pool2d(x: npt.ArrayLike, output_size: int | tuple[int | None, int | None],
                        return_indices: bool = False) -> (
        npt.NDArray[np.floating] | tuple[npt.NDArray[np.floating], npt.NDArray[np.int64]]):
    """Maximum over each adaptive window, optionally with its flat position ``h * W + w``.

    Examples
    --------
    >>> adaptive_max_pool2d(np.array([[[1.0, 5.0, 2.0, 4.0, 3.0]]]), (1, 2), True)
    (array([[[5., 4.]]]), array([[[1, 3]]]))
    """
    x4, added_batch = _as_4d(x)
    N, C, H, W = x4.shape
    OH, OW = _output_size(output_size, H, W)
    out = np.empty((N, C, OH, OW), dtype=x4.dtype)
    indices = np.empty((N, C, OH, OW), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                h0, h1 = adaptive_window(oh, H, OH)
                for ow in range(OW):
                    w0, w1 = adaptive_window(ow, W, OW)
                    best, best_index = x4[n, c, h0, w0], h0 * W + w0
                    for h in range(h0, h1):
                        for w in range(w0, w1):
                            if _beats(x4[n, c, h, w], best):
                                best, best_index = x4[n, c, h, w], h * W + w
                    out[n, c, oh, ow] = best
                    indices[n, c, oh, ow] = best_index
    if added_batch:
        out, indices = out[0], indices[0]
    return (out, indices) if return_indices else out


def adaptive_max_pool2d_backward(grad_output: npt.ArrayLike, indices: npt.ArrayLike,
                                 input_shape: Sequence[int]) -> npt.NDArray[np.floating]:
    """Gradient of :func:`adaptive_max_pool2d`:
    ``grad_input[n, c].flat[indices[n, c, i, j]] += grad_output[n, c, i, j]``.

    Examples
    --------
    >>> adaptive_max_pool2d_backward(np.array([[[1.0, 2.0]]]), np.array([[[1, 3]]]), (1, 1, 5))
    array([[[0., 1., 0., 2., 0.]]])
    """
    shape, g4, added_batch = _check_adaptive_grad(grad_output, input_shape)
    indices = _check_indices(indices, np.shape(grad_output))
    H, W = shape[-2:]
    _check_index_range(indices, H * W)
    i4 = indices[np.newaxis] if added_batch else indices
    return _add_at_indices(g4, i4, H * W).reshape(shape)


# ---------------------------------------------------------------------------
# Max unpooling
# ---------------------------------------------------------------------------


def _unpool_size(x_shape, kernel_size, stride, padding, output_size):
    """(H_out, W_out) of max unpooling (PyTorch's rule)."""
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    padding = _pair(padding, "padding")
    if min(kernel) < 1 or min(stride) < 1 or min(padding) < 0:
        raise ValueError(
            f"need kernel_size >= 1, stride >= 1, padding >= 0, got kernel_size={kernel}, "
            f"stride={stride}, padding={padding}"
        )
    default = [(x_shape[-2 + d] - 1) * stride[d] - 2 * padding[d] + kernel[d] for d in range(2)]
    if output_size is None:
        size = default
    else:
        size = [_check_int(v, "output_size") for v in output_size]
        if len(size) == len(x_shape):  # a full shape: its leading entries must be x's
            if tuple(size[:-2]) != tuple(x_shape[:-2]):
                raise ValueError(f"output_size {tuple(size)} does not match x's shape {x_shape}")
            size = size[-2:]
        if len(size) != 2:
            raise ValueError(f"output_size must have 2 or {len(x_shape)} entries, got {size}")
        for d in range(2):
            if not default[d] - stride[d] < size[d] < default[d] + stride[d]:
                raise ValueError(
                    f"output_size {tuple(size)}: entry {d} must lie strictly between "
                    f"{default[d] - stride[d]} and {default[d] + stride[d]}"
                )
    if min(size) < 1:
        raise ValueError(f"max_unpool2d output size would be {tuple(size)}, below 1")
    return tuple(size)


def max_unpool2d(x: npt.ArrayLike, indices: npt.ArrayLike,
                 kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0,
                 output_size: Sequence[int] | None = None) -> npt.NDArray[np.floating]:
    """Put each value of `x` at its flat index in a zeroed ``(H_out, W_out)`` plane.

    The output size is ``(in - 1) * stride - 2 * padding + kernel_size`` per axis, or
    `output_size` (``(H, W)`` or the full shape) when it lies strictly within ``stride`` of
    that. When two values share an index, the later one in row-major order wins.

    Examples
    --------
    >>> max_unpool2d(np.array([[[[3.0]]]]), np.array([[[[1]]]]), 2)
    array([[[[0., 3.],
             [0., 0.]]]])
    """
    x4, added_batch = _as_4d(x)
    x_shape = np.shape(x)
    indices = _check_indices(indices, x_shape)
    H_out, W_out = _unpool_size(x_shape, kernel_size, stride, padding, output_size)
    _check_index_range(indices, H_out * W_out)
    i4 = indices[np.newaxis] if added_batch else indices
    N, C, H, W = x4.shape
    out = np.zeros((N, C, H_out * W_out), dtype=x4.dtype)
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    out[n, c, i4[n, c, h, w]] = x4[n, c, h, w]
    out = out.reshape(N, C, H_out, W_out)
    return out[0] if added_batch else out


def max_unpool2d_backward(grad_output: npt.ArrayLike,
                          indices: npt.ArrayLike) -> npt.NDArray[np.floating]:
    """Gradient of :func:`max_unpool2d` with respect to `x`: gather `grad_output` at `indices`.

    Examples
    --------
    >>> max_unpool2d_backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), np.array([[[[1]]]]))
    array([[[[2.]]]])
    """
    g4, added_batch = _as_4d(grad_output, "grad_output")
    indices = np.asarray(indices)
    if indices.ndim != np.ndim(grad_output) or indices.shape[:-2] != np.shape(grad_output)[:-2]:
        raise ValueError(
            f"indices of shape {indices.shape} do not match grad_output of shape "
            f"{np.shape(grad_output)}"
        )
    indices = _check_indices(indices, indices.shape)
    N, C, H_out, W_out = g4.shape
    _check_index_range(indices, H_out * W_out)
    i4 = indices[np.newaxis] if added_batch else indices
    H, W = i4.shape[-2:]
    flat_g = g4.reshape(N, C, H_out * W_out)
    grad_input = np.empty((N, C, H, W), dtype=g4.dtype)
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    grad_input[n, c, h, w] = flat_g[n, c, i4[n, c, h, w]]
    return grad_input[0] if added_batch else grad_input


# ---------------------------------------------------------------------------
# Class activation maps
# ---------------------------------------------------------------------------


def _bilinear_source(i, n_in, n_out):
    """Input rows ``(i0, i1)`` and weight ``t`` of output `i` (half-pixel centres)."""
    s = (i + 0.5) * (n_in / n_out) - 0.5
    if s < 0:
        s = 0.0
    i0 = min(int(s), n_in - 1)
    i1 = min(i0 + 1, n_in - 1)
    return i0, i1, s - i0


def _lerp(a, b, t):
    """Linear interpolation ``a + t * (b - a)``; exactly `a` when ``a == b``."""
    if a == b:
        return a
    return a + t * (b - a)


def class_activation_map(features: npt.ArrayLike, weights: npt.ArrayLike,
                         class_index: int | npt.ArrayLike,
                         size: int | tuple[int, int] | None = None,
                         normalize: bool | None = None) -> npt.NDArray[np.floating]:
    """Class activation maps, one pixel at a time (Zhou et al. 2016).

    ``M[n, y, x] = sum_k weights[c_n, k] * features[n, k, y, x]`` (in double precision);
    then, with `size`, bilinear resizing with half-pixel centres (``(i + 0.5) * in / out -
    0.5``, clamped at 0, the last pixel repeated beyond the edge), first along H then along W,
    each step ``a + t * (b - a)``, exactly ``a`` when ``a == b``; then, when `normalize` is
    True (default: when `size` is given), ``(M - min M) / (max M - min M)`` per map, a
    constant map giving 0. The result has dtype ``result_type(features, weights)``.

    Examples
    --------
    >>> f = np.zeros((1, 2, 2, 2)); f[0, 0, 0, 0] = 4.0; f[0, 1, 1, 1] = 4.0
    >>> class_activation_map(f, np.array([[1.0, -1.0]]), 0)
    array([[[ 4.,  0.],
            [ 0., -4.]]])
    """
    f = _check_float(features, "features")
    w = _check_float(weights, "weights")
    single = f.ndim == 3
    if single:
        f = f[np.newaxis]
    if f.ndim != 4 or w.ndim != 2 or w.shape[1] != f.shape[1]:
        raise ValueError(f"need features (N, K, h, w) and weights (classes, K), got "
                         f"{np.shape(features)} and {w.shape}")
    N, K, h, wd = f.shape
    classes = np.asarray(class_index)
    if not np.issubdtype(classes.dtype, np.integer):
        raise TypeError(f"class_index must be an int or an array of ints, got {class_index!r}")
    classes = np.broadcast_to(classes, (N,)) if classes.ndim == 0 else classes
    if classes.shape != (N,) or (single and np.ndim(class_index) != 0):
        raise ValueError(f"class_index must be an int or have shape ({N},)")
    for c in classes:
        if not 0 <= c < w.shape[0]:
            raise ValueError(f"class_index must lie in [0, {w.shape[0]}), got {c}")
    if normalize is None:
        normalize = size is not None
    dtype = np.result_type(f.dtype, w.dtype)

    maps = np.zeros((N, h, wd), dtype=np.float64)
    for n in range(N):
        for y in range(h):
            for x in range(wd):
                acc = 0.0
                for k in range(K):
                    acc += float(w[classes[n], k]) * float(f[n, k, y, x])
                maps[n, y, x] = acc

    if size is not None:
        H, W = _pair(size, "size")
        if H < 1 or W < 1:
            raise ValueError(f"size must be >= 1, got {size!r}")
        resized = np.zeros((N, H, W), dtype=np.float64)
        for n in range(N):
            for y in range(H):
                y0, y1, ty = _bilinear_source(y, h, H)
                for x in range(W):
                    x0, x1, tx = _bilinear_source(x, wd, W)
                    left = _lerp(maps[n, y0, x0], maps[n, y1, x0], ty)   # along H first
                    right = _lerp(maps[n, y0, x1], maps[n, y1, x1], ty)
                    resized[n, y, x] = _lerp(left, right, tx)            # then along W
        maps = resized

    if normalize:
        for n in range(N):
            lo, hi = maps[n].min(), maps[n].max()
            for y in range(maps.shape[1]):
                for x in range(maps.shape[2]):
                    if hi > lo:
                        maps[n, y, x] = (maps[n, y, x] - lo) / (hi - lo)
                    elif math.isnan(hi - lo):
                        maps[n, y, x] = math.nan
                    else:
                        maps[n, y, x] = 0.0

    maps = maps.astype(dtype)
    return maps[0] if single else maps
