"""Adaptive average and adaptive max pooling: functions (validation, allocation, dispatch) and
their layers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from . import _adaptive_pool
from ._arrays import (argmax_outputs, as_float_input, as_planes, check_input_shape, check_plane,
                      native, output, planes_of)
from ._global import run_global_avg, run_global_avg_backward, run_global_max
from ._layers import _ArgmaxLayer, _AveragingLayer
from ._params import _MAX_DIM, as_flag, as_int
from ._pooling import FloatArray, IndexArray, argmax_backward
from ._threads import resolve

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "adaptive_windows",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
]


def adaptive_windows(L: int, n_out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive windows along one axis: ``[(start, end), ...]`` for each output.

    ``start = floor(o * L / n_out)``, ``end = ceil((o + 1) * L / n_out)``, in integer
    arithmetic. Windows are never empty; neighbours overlap by one position when ``n_out``
    does not divide ``L``; with ``n_out > L`` input positions repeat.

    >>> adaptive_windows(5, 3)
    [(0, 2), (1, 4), (3, 5)]
    >>> adaptive_windows(2, 3)
    [(0, 1), (0, 2), (1, 2)]
    """
    return [((o * L) // n_out, -((-(o + 1) * L) // n_out)) for o in range(n_out)]


def output_hw(output_size: int | tuple[int | None, int | None],
              in_hw: tuple[int, int] | None = None) -> tuple:
    """Normalise ``output_size`` (an int, or an ``(h, w)`` pair whose entries may be None for
    "the input's size", as in PyTorch) to a pair; with ``in_hw`` None entries are resolved."""
    if isinstance(output_size, (tuple, list, np.ndarray)):
        seq = list(output_size) if not isinstance(output_size, np.ndarray) else output_size.tolist()
        if len(seq) != 2:
            raise ValueError(
                f"output_size must be an int or a pair (h, w), got {output_size!r}"
            )
    else:
        v = as_int(output_size, "output_size")  # a bare None is a TypeError
        seq = [v, v]
    result = []
    for axis, v in enumerate(seq):
        if v is None:
            result.append(None if in_hw is None else int(in_hw[axis]))
            continue
        v = as_int(v, "output_size")
        if v < 1:
            raise ValueError(f"output_size must be >= 1 along H and W, got {output_size!r}")
        if v > _MAX_DIM:
            raise ValueError(f"output_size must be at most {_MAX_DIM}, got {output_size!r}")
        result.append(v)
    return tuple(result)


# ------------------------------------------------------------------------ adaptive average


def adaptive_avg_pool2d(x: npt.ArrayLike, output_size: int | tuple[int | None, int | None], *,
                        out: np.ndarray | None = None, n_threads: int | None = None) -> FloatArray:
    """Adaptive average pooling: the mean over PyTorch's adaptive windows.

    Output ``(oh, ow)`` averages rows ``[floor(oh * H / OH), ceil((oh + 1) * H / OH))`` and
    the columns given by the same rule along W (see :func:`adaptive_windows`). The output may
    be larger than the input, as in PyTorch.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W) or (C, H, W), dtype float32 or float64
        Input, in any memory layout; never written to.
    output_size : int or (int or None, int or None)
        ``(OH, OW)``, each >= 1; None keeps that axis's input size.
    out : ndarray, optional
        Where to write the result (C-contiguous, writable, right shape and dtype).
    n_threads : int, optional
        OpenMP threads; results do not depend on it.

    Returns
    -------
    ndarray of shape (N, C, OH, OW) or (C, OH, OW), dtype of x
        Window sums are accumulated in double for both dtypes (column by column, then across
        the window's columns) and rounded once. ``output_size=1`` runs
        :func:`global_avg_pool2d`'s kernel.

    Raises
    ------
    ValueError
        For an output size < 1, or a bad input shape.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> poolkit.adaptive_avg_pool2d(np.array([[[1.0, 2.0, 3.0, 4.0, 5.0]]]), (1, 3))
    array([[[1.5, 3. , 4.5]]])
    """
    x = as_float_input(x)
    check_plane(x.shape)
    oh, ow = output_hw(output_size, x.shape[-2:])
    result = output(out, x.shape[:-2] + (oh, ow), native(x.dtype), "out", (x,))
    if result.size:
        if (oh, ow) == (1, 1):
            run_global_avg(x, result, n_threads)
        else:
            planes = as_planes(x)
            nt = resolve(n_threads, planes.size + result.size)
            if _adaptive_pool.adaptive_avg_pool2d_forward(planes, planes_of(result), nt):
                raise MemoryError("adaptive_avg_pool2d could not allocate its scratch row")
    else:
        resolve(n_threads)
    return result


def _grad_output_hw(g: np.ndarray) -> tuple:
    if g.shape[-2] < 1 or g.shape[-1] < 1:
        raise ValueError(
            f"grad_output must have an output size >= 1 along H and W, got shape {g.shape}"
        )
    return g.shape[-2:]


def adaptive_avg_pool2d_backward(grad_output: npt.ArrayLike, input_shape: Sequence[int], *,
                                 out: np.ndarray | None = None,
                                 n_threads: int | None = None) -> FloatArray:
    """Gradient of :func:`adaptive_avg_pool2d`.

    Each output gradient, divided by its window's size, is added to every position of its
    window; overlapping windows accumulate (in the gradient's dtype, in output order). The
    output size is read from ``grad_output``.

    Parameters
    ----------
    grad_output : ndarray of shape (N, C, OH, OW) or (C, OH, OW), dtype float32 or float64
    input_shape : tuple of int
        Shape of the forward input.
    out, n_threads
        As in :func:`adaptive_avg_pool2d`.

    Returns
    -------
    grad_input : ndarray of shape input_shape, dtype of grad_output

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> poolkit.adaptive_avg_pool2d_backward(np.array([[[2.0, 3.0]]]), (1, 1, 3))
    array([[[1. , 2.5, 1.5]]])
    """
    g = as_float_input(grad_output, "grad_output")
    shape = check_input_shape(input_shape, g)
    oh, ow = _grad_output_hw(g)
    grad_input = output(out, shape, native(g.dtype), "out", (g,))
    if grad_input.size:
        if (oh, ow) == (1, 1):
            run_global_avg_backward(g, grad_input, n_threads)
        else:
            gp = as_planes(g)
            nt = resolve(n_threads, gp.size + grad_input.size)
            _adaptive_pool.adaptive_avg_pool2d_backward(gp, planes_of(grad_input), nt)
    else:
        resolve(n_threads)
    return grad_input


# ---------------------------------------------------------------------------- adaptive max


def adaptive_max_pool2d(x: npt.ArrayLike, output_size: int | tuple[int | None, int | None],
                        return_indices: bool = False, *,
                        out: np.ndarray | tuple[np.ndarray, np.ndarray] | None = None,
                        n_threads: int | None = None) -> FloatArray | tuple[FloatArray, IndexArray]:
    """Adaptive max pooling: the maximum over PyTorch's adaptive windows.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W) or (C, H, W), dtype float32 or float64
        Input, in any memory layout; never written to.
    output_size : int or (int or None, int or None)
        ``(OH, OW)``, each >= 1; None keeps that axis's input size.
    return_indices : bool, default False
        Also return the argmax of each window as int64 flat positions ``h * W + w`` in the
        input plane (PyTorch's meaning).
    out : ndarray or (ndarray, ndarray), optional
        Where to write the values (and, with ``return_indices``, the indices).
    n_threads : int, optional
        OpenMP threads; results do not depend on it.

    Returns
    -------
    values : ndarray of shape (N, C, OH, OW) or (C, OH, OW), dtype of x
    indices : ndarray of the same shape, dtype int64
        Only with ``return_indices=True``.

    Notes
    -----
    The semantics of :func:`max_pool2d`: ties go to the first position in row-major window
    order; a window holding a NaN gives NaN and points at its first NaN (PyTorch: the last);
    a window of ``-inf`` points at its first position.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.array([[[1.0, 5.0, 2.0, 4.0, 3.0]]])
    >>> poolkit.adaptive_max_pool2d(x, (1, 2), return_indices=True)
    (array([[[5., 4.]]]), array([[[1, 3]]]))
    """
    x = as_float_input(x)
    check_plane(x.shape)
    oh, ow = output_hw(output_size, x.shape[-2:])
    return_indices = as_flag(return_indices, "return_indices")
    values, indices = argmax_outputs(out, x.shape[:-2] + (oh, ow), x, return_indices)
    if values.size:
        if (oh, ow) == (1, 1):
            run_global_max(x, values, indices, n_threads)
        else:
            planes = as_planes(x)
            nt = resolve(n_threads, planes.size + values.size)
            _adaptive_pool.adaptive_max_pool2d_forward(
                planes, planes_of(values), planes_of(indices), nt
            )
    else:
        resolve(n_threads)
    return (values, indices) if return_indices else values


def adaptive_max_pool2d_backward(grad_output: npt.ArrayLike, indices: npt.ArrayLike,
                                 input_shape: Sequence[int], *, out: np.ndarray | None = None,
                                 n_threads: int | None = None,
                                 _trusted_indices: bool = False) -> FloatArray:
    """Gradient of :func:`adaptive_max_pool2d`: route each output gradient to its argmax.

    ``grad_input[n, c].flat[indices[n, c, i, j]] += grad_output[n, c, i, j]``; windows that
    share an argmax accumulate and every other position is 0.

    Parameters
    ----------
    grad_output : ndarray of shape (N, C, OH, OW) or (C, OH, OW), dtype float32 or float64
    indices : ndarray of int, same shape as grad_output
        Argmax from ``adaptive_max_pool2d(..., return_indices=True)``; each must lie in
        ``[0, H * W)``.
    input_shape : tuple of int
        Shape of the forward input.
    out, n_threads
        As in :func:`adaptive_avg_pool2d`.

    Returns
    -------
    grad_input : ndarray of shape input_shape, dtype of grad_output

    Raises
    ------
    ValueError
        For an index outside ``[0, H * W)`` (all checked before anything is written), or
        shapes that disagree.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> g, idx = np.array([[[1.0, 2.0]]]), np.array([[[1, 3]]])
    >>> poolkit.adaptive_max_pool2d_backward(g, idx, (1, 1, 5))
    array([[[0., 1., 0., 2., 0.]]])
    """
    g = as_float_input(grad_output, "grad_output")
    shape = check_input_shape(input_shape, g)
    _grad_output_hw(g)
    return argmax_backward(g, indices, shape, out,
                           n_threads, _trusted_indices)


# --------------------------------------------------------------------------------- layers


class AdaptiveAvgPool2d(_AveragingLayer):
    """Adaptive average pooling layer (see :func:`poolkit.adaptive_avg_pool2d`).

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> pool = poolkit.AdaptiveAvgPool2d((1, 2))
    >>> pool(np.array([[[[1.0, 2.0, 3.0, 4.0]]]]))
    array([[[[1.5, 3.5]]]])
    >>> pool.backward(np.array([[[[2.0, 4.0]]]]))
    array([[[[1., 1., 2., 2.]]]])
    """

    _params = ("output_size",)

    def __init__(self, output_size: int | tuple[int | None, int | None],
                 n_threads: int | None = None) -> None:
        output_hw(output_size)  # validate now; None entries are resolved per input
        super().__init__(n_threads)
        self.output_size = output_size

    def _pool(self, x):
        return adaptive_avg_pool2d(x, self.output_size, n_threads=self.n_threads)

    def _pool_backward(self, grad_output, input_shape):
        return adaptive_avg_pool2d_backward(grad_output, input_shape, n_threads=self.n_threads)


class AdaptiveMaxPool2d(_ArgmaxLayer):
    """Adaptive max pooling layer; caches the argmax for ``backward``
    (see :func:`poolkit.adaptive_max_pool2d`).

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> pool = poolkit.AdaptiveMaxPool2d((1, 2))
    >>> pool(np.array([[[[1.0, 2.0, 4.0, 3.0]]]]))
    array([[[[2., 4.]]]])
    >>> pool.backward(np.array([[[[5.0, 6.0]]]]))
    array([[[[0., 5., 6., 0.]]]])
    """

    _params = ("output_size", "return_indices")

    def __init__(self, output_size: int | tuple[int | None, int | None],
                 return_indices: bool = False, n_threads: int | None = None) -> None:
        output_hw(output_size)
        super().__init__(n_threads)
        self.output_size = output_size
        self.return_indices = as_flag(return_indices, "return_indices")

    def _pool(self, x):
        return adaptive_max_pool2d(x, self.output_size, return_indices=True,
                                   n_threads=self.n_threads)

    def _pool_backward(self, grad_output, indices, input_shape):
        return adaptive_max_pool2d_backward(grad_output, indices, input_shape,
                                            n_threads=self.n_threads, _trusted_indices=True)
