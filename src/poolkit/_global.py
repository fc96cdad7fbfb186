"""Global average and global max pooling: functions (validation, allocation, dispatch) and
their layers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from . import _global_pool
from ._arrays import FLOAT_TYPES, as_float_input, as_planes, check_nbytes, check_plane, output
from ._layers import Layer
from ._params import as_int
from ._pooling import FloatArray, IndexArray, split_out_pair
from ._threads import resolve

__all__ = [
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "global_max_pool2d",
    "global_max_pool2d_backward",
    "GlobalAvgPool2d",
    "GlobalMaxPool2d",
]


# ----------------------------------------------------------------------------- helpers


def _native(dtype) -> np.dtype:
    return np.dtype(dtype).newbyteorder("=")


def check_bool(value: object, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def flat_planes(x: np.ndarray) -> np.ndarray:
    """``x`` as C-contiguous native ``(P, H * W)`` rows (a view when ``x`` already is one)."""
    planes = as_planes(x)
    return planes.reshape(planes.shape[0], planes.shape[1] * planes.shape[2])


def _pooled_shape(shape: tuple, keepdims: bool) -> tuple:
    return tuple(shape[:-2]) + ((1, 1) if keepdims else ())


def _as_float_array(a, name: str) -> np.ndarray:
    """A float32/float64 ndarray of any shape (no copy here)."""
    a = np.asarray(a)
    if a.dtype.type not in FLOAT_TYPES:
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {a.dtype}; convert it explicitly "
            f"(poolkit never casts silently)"
        )
    return a


def _global_input_shape(input_shape, grad_output: np.ndarray) -> tuple:
    """Validate a global backward's ``input_shape`` against its gradient, whose shape must be
    ``input_shape[:-2]`` (``keepdims=False``) or ``input_shape[:-2] + (1, 1)``, and whose dtype
    the gradient of that shape would have (checked before anything of its size is touched)."""
    grad_shape = grad_output.shape
    try:
        shape = tuple(as_int(v, "input_shape") for v in input_shape)
    except TypeError:
        raise TypeError(f"input_shape must be a tuple of ints, got {input_shape!r}") from None
    if len(shape) not in (3, 4):
        raise ValueError(
            f"input_shape must be (N, C, H, W) or (C, H, W), got {len(shape)} dimensions: "
            f"{shape}"
        )
    if any(v < 0 for v in shape):
        raise ValueError(f"input_shape must not be negative, got {shape}")
    check_plane(shape, "input_shape")
    check_nbytes(shape, grad_output.dtype, "input_shape")
    if tuple(grad_shape) not in (shape[:-2], shape[:-2] + (1, 1)):
        raise ValueError(
            f"grad_output must have shape {shape[:-2]} or {shape[:-2] + (1, 1)} (the output "
            f"of global pooling on input_shape {shape}), got {tuple(grad_shape)}"
        )
    return shape


def _scratch(n_planes: int, hw: int, dtype) -> np.ndarray:
    return np.empty(n_planes * _global_pool.n_chunks(hw), dtype=dtype)


# ------------------------------------------------------------------------- global average


def global_avg_pool2d(x: npt.ArrayLike, keepdims: bool = False, *, out: np.ndarray | None = None,
                      n_threads: int | None = None) -> FloatArray:
    """Global average pooling (Lin et al. 2014, "Network In Network"): the mean of each plane.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W) or (C, H, W), dtype float32 or float64
        Input, in any memory layout; never written to.
    keepdims : bool, default False
        Return shape ``(N, C, 1, 1)`` instead of ``(N, C)`` (``(C, 1, 1)`` / ``(C,)`` for
        3-D input).
    out : ndarray, optional
        Where to write the result (C-contiguous, writable, right shape and dtype).
    n_threads : int, optional
        OpenMP threads; None uses OpenMP's default, -1 all CPUs. Results do not depend on it.

    Returns
    -------
    ndarray of shape (N, C) or (N, C, 1, 1), dtype of x
        ``sum(x[n, c]) / (H * W)``. The sum is accumulated in double for both dtypes (16
        interleaved partial sums over runs of 4096 elements, combined in a fixed order), so a
        float32 result is the float64 mean rounded once: a 224 x 224 plane keeps a relative
        error near 1e-7 (one float32 rounding), not the ~1e-4 of a float32 running sum.

    Raises
    ------
    TypeError
        For a dtype other than float32/float64, or a non-bool ``keepdims``.
    ValueError
        For a shape that is not 3-D or 4-D or has ``H == 0`` or ``W == 0``, and unusable
        ``out`` arrays.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.arange(8.0).reshape(1, 2, 2, 2)
    >>> poolkit.global_avg_pool2d(x)
    array([[1.5, 5.5]])
    >>> poolkit.global_avg_pool2d(x, keepdims=True).shape
    (1, 2, 1, 1)
    """
    x = as_float_input(x)
    check_plane(x.shape)
    keepdims = check_bool(keepdims, "keepdims")
    result = output(out, _pooled_shape(x.shape, keepdims), _native(x.dtype), "out", (x,))
    if result.size:
        rows = flat_planes(x)
        nt = resolve(n_threads, rows.size)
        _global_pool.global_avg_pool2d_forward(
            rows, result.reshape(-1), _scratch(*rows.shape, np.float64), nt
        )
    else:
        resolve(n_threads)
    return result


def global_avg_pool2d_backward(grad_output: npt.ArrayLike, input_shape: Sequence[int], *,
                               out: np.ndarray | None = None,
                               n_threads: int | None = None) -> FloatArray:
    """Gradient of :func:`global_avg_pool2d`: ``grad_output / (H * W)`` at every position.

    Parameters
    ----------
    grad_output : ndarray of shape (N, C) or (N, C, 1, 1), dtype float32 or float64
        Gradient with respect to the pooled output (either ``keepdims`` form; ``(C,)`` or
        ``(C, 1, 1)`` for a 3-D input).
    input_shape : tuple of int
        Shape of the forward input, ``(N, C, H, W)`` or ``(C, H, W)``.
    out : ndarray, optional
        Where to write the input gradient (C-contiguous, writable, right shape and dtype).
    n_threads : int, optional
        OpenMP threads (see :func:`global_avg_pool2d`).

    Returns
    -------
    grad_input : ndarray of shape input_shape, dtype of grad_output
        Each plane filled with its ``grad_output / (H * W)`` (divided in double, rounded once).

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> poolkit.global_avg_pool2d_backward(np.array([[4.0]]), (1, 1, 2, 2))
    array([[[[1., 1.],
             [1., 1.]]]])
    """
    g = _as_float_array(grad_output, "grad_output")
    shape = _global_input_shape(input_shape, g)
    grad_input = output(out, shape, _native(g.dtype), "out", (g,))
    if grad_input.size:
        rows = grad_input.reshape(-1, shape[-2] * shape[-1])
        nt = resolve(n_threads, rows.size)
        _global_pool.global_avg_pool2d_backward(_flat_grad(g), rows, nt)
    else:
        resolve(n_threads)
    return grad_input


def _flat_grad(g: np.ndarray) -> np.ndarray:
    """A 1-D C-contiguous native copy or view of a gradient of global pooling."""
    if not g.dtype.isnative:
        g = g.astype(_native(g.dtype))
    return np.ascontiguousarray(g).reshape(-1)


# ----------------------------------------------------------------------------- global max


def global_max_pool2d(x: npt.ArrayLike, keepdims: bool = False, return_indices: bool = False,
                      *, out: np.ndarray | tuple[np.ndarray, np.ndarray] | None = None,
                      n_threads: int | None = None) -> FloatArray | tuple[FloatArray, IndexArray]:
    """Global max pooling: the maximum of each plane, optionally with its position.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W) or (C, H, W), dtype float32 or float64
        Input, in any memory layout; never written to.
    keepdims : bool, default False
        Return shape ``(N, C, 1, 1)`` instead of ``(N, C)``.
    return_indices : bool, default False
        Also return the int64 flat position ``h * W + w`` of each maximum in its plane (the
        meaning of PyTorch's ``adaptive_max_pool2d(x, 1, return_indices=True)``).
    out : ndarray or (ndarray, ndarray), optional
        Where to write the values (and, with ``return_indices``, the indices).
    n_threads : int, optional
        OpenMP threads; results do not depend on it.

    Returns
    -------
    values : ndarray of shape (N, C) or (N, C, 1, 1), dtype of x
    indices : ndarray of the same shape, dtype int64
        Only with ``return_indices=True``.

    Notes
    -----
    The semantics of max pooling: ties go to the first position in row-major order; a plane
    holding a NaN gives NaN and the position of its first NaN (PyTorch reports the last one);
    a plane of ``-inf`` gives ``-inf`` at position 0.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.array([[[[1.0, 3.0], [3.0, 2.0]]]])
    >>> poolkit.global_max_pool2d(x, return_indices=True)
    (array([[3.]]), array([[1]]))
    """
    x = as_float_input(x)
    check_plane(x.shape)
    keepdims = check_bool(keepdims, "keepdims")
    return_indices = bool(return_indices)
    shape = _pooled_shape(x.shape, keepdims)
    out_v, out_i = split_out_pair(out, return_indices)
    values = output(out_v, shape, _native(x.dtype), "out[0]" if return_indices else "out", (x,))
    indices = output(out_i, shape, np.int64, "out[1]", (x, values))
    if values.size:
        rows = flat_planes(x)
        nt = resolve(n_threads, rows.size)
        _global_pool.global_max_pool2d_forward(
            rows, values.reshape(-1), indices.reshape(-1),
            _scratch(*rows.shape, rows.dtype), _scratch(*rows.shape, np.int64), nt,
        )
    else:
        resolve(n_threads)
    return (values, indices) if return_indices else values


def global_max_pool2d_backward(grad_output: npt.ArrayLike, indices: npt.ArrayLike,
                               input_shape: Sequence[int], *, out: np.ndarray | None = None,
                               n_threads: int | None = None,
                               _trusted_indices: bool = False) -> FloatArray:
    """Gradient of :func:`global_max_pool2d`: each plane's gradient goes to its argmax.

    Parameters
    ----------
    grad_output : ndarray of shape (N, C) or (N, C, 1, 1), dtype float32 or float64
        Gradient with respect to the pooled output (either ``keepdims`` form).
    indices : ndarray of int, same shape as grad_output
        Argmax from ``global_max_pool2d(..., return_indices=True)``; each must lie in
        ``[0, H * W)``.
    input_shape : tuple of int
        Shape of the forward input.
    out, n_threads
        As in :func:`global_avg_pool2d_backward`.

    Returns
    -------
    grad_input : ndarray of shape input_shape, dtype of grad_output
        Zero except ``grad_input[n, c].flat[indices[n, c]] = grad_output[n, c]``.

    Raises
    ------
    ValueError
        For an index outside ``[0, H * W)`` (checked before anything is written), or shapes
        that disagree.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> poolkit.global_max_pool2d_backward(np.array([[5.0]]), np.array([[1]]), (1, 1, 2, 2))
    array([[[[0., 5.],
             [0., 0.]]]])
    """
    g = _as_float_array(grad_output, "grad_output")
    shape = _global_input_shape(input_shape, g)
    idx = np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"indices must have an integer dtype, got {idx.dtype}")
    if idx.shape != g.shape:
        raise ValueError(
            f"indices must have the shape of grad_output {g.shape}, got {idx.shape}"
        )
    hw = shape[-2] * shape[-1]
    if not _trusted_indices and idx.size:
        bad = np.flatnonzero((idx < 0) | (idx >= hw))
        if bad.size:
            pos = np.unravel_index(bad[0], idx.shape)
            raise ValueError(
                f"indices must lie in [0, H * W) = [0, {hw}); indices{tuple(map(int, pos))} = "
                f"{int(idx[pos])} does not"
            )
    idx = np.ascontiguousarray(idx, dtype=np.int64).reshape(-1)
    grad_input = output(out, shape, _native(g.dtype), "out", (g, idx))
    if grad_input.size:
        rows = grad_input.reshape(-1, hw)
        nt = resolve(n_threads, rows.size)
        _global_pool.global_max_pool2d_backward(_flat_grad(g), idx, rows, nt)
    else:
        resolve(n_threads)
    return grad_input


# --------------------------------------------------------------------------------- layers


class GlobalAvgPool2d(Layer):
    """Global average pooling layer (see :func:`poolkit.global_avg_pool2d`).

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> gap = poolkit.GlobalAvgPool2d()
    >>> gap(np.array([[[[1.0, 3.0], [2.0, 2.0]]]]))
    array([[2.]])
    >>> gap.backward(np.array([[4.0]]))
    array([[[[1., 1.],
             [1., 1.]]]])
    """

    _params = ("keepdims",)

    def __init__(self, keepdims: bool = False, n_threads: int | None = None) -> None:
        self.keepdims = check_bool(keepdims, "keepdims")
        super().__init__(n_threads)

    def _forward(self, x):
        result = global_avg_pool2d(x, self.keepdims, n_threads=self.n_threads)
        return result, (np.shape(x), result.shape)

    def _backward(self, grad_output, cache):
        input_shape, out_shape = cache
        self._check_grad_shape("GlobalAvgPool2d", grad_output, out_shape)
        return global_avg_pool2d_backward(grad_output, input_shape, n_threads=self.n_threads)


class GlobalMaxPool2d(Layer):
    """Global max pooling layer; caches the argmax for ``backward``
    (see :func:`poolkit.global_max_pool2d`).

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> gmp = poolkit.GlobalMaxPool2d(keepdims=True)
    >>> gmp(np.array([[[[1.0, 3.0], [2.0, 2.0]]]]))
    array([[[[3.]]]])
    >>> gmp.backward(np.array([[[[5.0]]]]))
    array([[[[0., 5.],
             [0., 0.]]]])
    """

    _params = ("keepdims", "return_indices")

    def __init__(self, keepdims: bool = False, return_indices: bool = False,
                 n_threads: int | None = None) -> None:
        self.keepdims = check_bool(keepdims, "keepdims")
        self.return_indices = bool(return_indices)
        super().__init__(n_threads)

    def _forward(self, x):
        values, indices = global_max_pool2d(
            x, self.keepdims, return_indices=True, n_threads=self.n_threads
        )
        cache = (indices, np.shape(x))
        return ((values, indices) if self.return_indices else values), cache

    def _backward(self, grad_output, cache):
        indices, input_shape = cache
        self._check_grad_shape("GlobalMaxPool2d", grad_output, indices.shape)
        return global_max_pool2d_backward(grad_output, indices, input_shape,
                                          n_threads=self.n_threads, _trusted_indices=True)
