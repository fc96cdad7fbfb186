"""Global average and global max pooling: functions (validation, allocation, dispatch) and
their layers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from . import _global_pool
from ._arrays import (argmax_outputs, as_float_array, as_float_input, as_input_shape,
                      check_indices, check_input_size, check_plane, flat_planes, native, output,
                      raise_bad_indices)
from ._layers import _ArgmaxLayer, _AveragingLayer
from ._params import as_flag, check_bool
from ._pooling import FloatArray, IndexArray
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


def _pooled_shape(shape: tuple, keepdims: bool) -> tuple:
    return tuple(shape[:-2]) + ((1, 1) if keepdims else ())


def _global_input_shape(input_shape, grad_output: np.ndarray) -> tuple:
    """Validate a global backward's ``input_shape`` against its gradient, whose shape must be
    ``input_shape[:-2]`` (``keepdims=False``) or ``input_shape[:-2] + (1, 1)``, and whose dtype
    the gradient of that shape would have (checked before anything of its size is touched)."""
    grad_shape = grad_output.shape
    shape = as_input_shape(input_shape)
    check_input_size(shape, grad_output.dtype)
    if tuple(grad_shape) not in (shape[:-2], shape[:-2] + (1, 1)):
        raise ValueError(
            f"grad_output must have shape {shape[:-2]} or {shape[:-2] + (1, 1)} (the output "
            f"of global pooling on input_shape {shape}), got {tuple(grad_shape)}"
        )
    return shape


def _scratch(n_planes: int, hw: int, dtype, n_threads: int) -> np.ndarray | None:
    """A forward kernel's scratch: one entry per chunk, or None when the kernel takes whole
    planes and never reads it (enough planes per thread; a memoryview of an array, even an
    empty one, costs the kernel call about half a microsecond)."""
    if n_planes >= _global_pool.PLANES_PER_THREAD * n_threads:
        return None
    return np.empty(n_planes * _global_pool.n_chunks(hw), dtype=dtype)


def _flat_grad(g: np.ndarray) -> np.ndarray:
    """A 1-D C-contiguous native copy or view of a gradient of global pooling."""
    if not g.dtype.isnative:
        g = g.astype(native(g.dtype))
    return np.ascontiguousarray(g).reshape(-1)


# The kernel calls, shared with adaptive pooling to a 1 x 1 output. Each writes into arrays
# already checked and not empty.


def run_global_avg(x: np.ndarray, result: np.ndarray, n_threads: int | None) -> None:
    """Write the mean of every plane of ``x`` into ``result`` (one element per plane)."""
    rows = flat_planes(x)
    nt = resolve(n_threads, rows.size)
    _global_pool.global_avg_pool2d_forward(
        rows, result.reshape(-1), _scratch(*rows.shape, np.float64, nt), nt
    )


def run_global_avg_backward(g: np.ndarray, grad_input: np.ndarray,
                            n_threads: int | None) -> None:
    """Fill every plane of ``grad_input`` with its gradient in ``g`` divided by ``H * W``."""
    rows = grad_input.reshape(-1, grad_input.shape[-2] * grad_input.shape[-1])
    nt = resolve(n_threads, rows.size)
    _global_pool.global_avg_pool2d_backward(_flat_grad(g), rows, nt)


def run_global_max(x: np.ndarray, values: np.ndarray, indices: np.ndarray,
                   n_threads: int | None) -> None:
    """Write the maximum of every plane of ``x`` and its flat position into ``values`` and
    ``indices`` (one element per plane)."""
    rows = flat_planes(x)
    nt = resolve(n_threads, rows.size)
    _global_pool.global_max_pool2d_forward(
        rows, values.reshape(-1), indices.reshape(-1),
        _scratch(*rows.shape, rows.dtype, nt), _scratch(*rows.shape, np.int64, nt), nt,
    )


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
    result = output(out, _pooled_shape(x.shape, keepdims), native(x.dtype), "out", (x,))
    if result.size:
        run_global_avg(x, result, n_threads)
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
    g = as_float_array(grad_output, "grad_output")
    shape = _global_input_shape(input_shape, g)
    grad_input = output(out, shape, native(g.dtype), "out", (g,))
    if grad_input.size:
        run_global_avg_backward(g, grad_input, n_threads)
    else:
        resolve(n_threads)
    return grad_input


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
    return_indices = as_flag(return_indices, "return_indices")
    values, indices = argmax_outputs(out, _pooled_shape(x.shape, keepdims), x, return_indices)
    if values.size:
        run_global_max(x, values, indices, n_threads)
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
    g = as_float_array(grad_output, "grad_output")
    shape = _global_input_shape(input_shape, g)
    idx = check_indices(indices, g.shape)
    hw = shape[-2] * shape[-1]
    if not _trusted_indices and idx.size and ((idx < 0) | (idx >= hw)).any():
        raise_bad_indices(idx, hw)
    idx = np.ascontiguousarray(idx, dtype=np.int64).reshape(-1)
    grad_input = output(out, shape, native(g.dtype), "out", (g, idx))
    if grad_input.size:
        rows = grad_input.reshape(-1, hw)
        nt = resolve(n_threads, rows.size)
        _global_pool.global_max_pool2d_backward(_flat_grad(g), idx, rows, nt)
    else:
        resolve(n_threads)
    return grad_input


# --------------------------------------------------------------------------------- layers


class GlobalAvgPool2d(_AveragingLayer):
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

    def _pool(self, x):
        return global_avg_pool2d(x, self.keepdims, n_threads=self.n_threads)

    def _pool_backward(self, grad_output, input_shape):
        return global_avg_pool2d_backward(grad_output, input_shape, n_threads=self.n_threads)


class GlobalMaxPool2d(_ArgmaxLayer):
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
        self.return_indices = as_flag(return_indices, "return_indices")
        super().__init__(n_threads)

    def _pool(self, x):
        return global_max_pool2d(x, self.keepdims, return_indices=True, n_threads=self.n_threads)

    def _pool_backward(self, grad_output, indices, input_shape):
        return global_max_pool2d_backward(grad_output, indices, input_shape,
                                          n_threads=self.n_threads, _trusted_indices=True)
