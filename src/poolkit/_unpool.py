"""Max unpooling (the partial inverse of max pooling) and its backward: functions and layer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from . import _max_unpool
from ._arrays import (as_float_input, check_indices, check_int64_range, check_plane, flat_planes,
                      native, output)
from ._layers import Layer
from ._params import _MAX_DIM, as_int, pair
from ._pooling import FloatArray, IntOrPair
from ._threads import resolve

__all__ = ["max_unpool2d", "max_unpool2d_backward", "unpool_output_size", "MaxUnpool2d"]


def _window_params(kernel_size, stride, padding):
    k = pair(kernel_size, "kernel_size")
    s = k if stride is None else pair(stride, "stride")
    p = pair(padding, "padding")
    for name, vals, low in (("kernel_size", k, 1), ("stride", s, 1), ("padding", p, 0)):
        for v in vals:
            if v < low:
                raise ValueError(f"{name} must be >= {low}, got {name}={vals}")
            if v > _MAX_DIM:
                raise ValueError(f"{name} must be at most {_MAX_DIM}, got {name}={vals}")
    return k, s, p


def unpool_output_size(input_shape: Sequence[int], kernel_size: IntOrPair,
                       stride: IntOrPair | None = None, padding: IntOrPair = 0,
                       output_size: Sequence[int] | None = None) -> tuple[int, int]:
    """The ``(H_out, W_out)`` of :func:`max_unpool2d` for an input of ``input_shape``.

    Default, per axis: ``(in - 1) * stride - 2 * padding + kernel_size``, the input size of
    the max pooling this undoes (the smallest one, when that pooling dropped a remainder).
    ``output_size`` overrides it with ``(H, W)`` or a full shape (``len(input_shape)``
    entries, whose leading ones must equal the input's); each entry must lie strictly between
    ``default - stride`` and ``default + stride`` (PyTorch's rule, which admits exactly the
    input sizes that pool back to ``input_shape``) and be >= 1.

    >>> unpool_output_size((1, 1, 2, 2), 2)
    (4, 4)
    >>> unpool_output_size((1, 1, 2, 2), 2, output_size=(5, 5))
    (5, 5)
    """
    k, s, p = _window_params(kernel_size, stride, padding)
    in_hw = tuple(input_shape[-2:])
    default = tuple((in_hw[d] - 1) * s[d] - 2 * p[d] + k[d] for d in range(2))
    if output_size is None:
        size = default
    else:
        if isinstance(output_size, np.ndarray):
            output_size = output_size.tolist()
        try:
            seq = [as_int(v, "output_size") for v in output_size]
        except TypeError:
            raise TypeError(
                f"output_size must be a sequence of ints (H, W) or a full shape, got "
                f"{output_size!r}"
            ) from None
        ndim = len(input_shape)
        if len(seq) == ndim:
            if tuple(seq[:-2]) != tuple(input_shape[:-2]):
                raise ValueError(
                    f"output_size {tuple(seq)} is a full shape whose leading dimensions "
                    f"{tuple(seq[:-2])} differ from the input's {tuple(input_shape[:-2])}"
                )
            seq = seq[-2:]
        elif len(seq) != 2:
            raise ValueError(
                f"output_size must have 2 entries (H, W) or {ndim} (the full output shape), "
                f"got {len(seq)}: {tuple(seq)}"
            )
        for d in range(2):
            lo, hi = default[d] - s[d], default[d] + s[d]
            if not lo < seq[d] < hi:
                raise ValueError(
                    f"invalid output_size {tuple(seq)}: along {'HW'[d]} it must lie strictly "
                    f"between {lo} and {hi} (the default size {default[d]} -/+ stride "
                    f"{s[d]}), got {seq[d]}"
                )
        size = tuple(seq)
    for d in range(2):
        if size[d] < 1:
            raise ValueError(
                f"max_unpool2d output size along {'HW'[d]} would be {size[d]} < 1 for input "
                f"size {in_hw[d]} with kernel_size={k}, stride={s}, padding={p}"
            )
        if size[d] > _MAX_DIM:
            raise ValueError(f"max_unpool2d output size along {'HW'[d]} is above {_MAX_DIM}")
    return size


def _as_indices(indices, shape: tuple) -> np.ndarray:
    """Indices of the shape of ``x`` (integer dtype, within int64; no copy, no bounds check)."""
    indices = check_indices(indices, shape, "x")
    check_int64_range(indices)
    return indices


def _raise_bad(indices: np.ndarray, out_hw: tuple) -> None:
    size = out_hw[0] * out_hw[1]
    bad = np.flatnonzero((indices < 0) | (indices >= size))
    pos = np.unravel_index(bad[0], indices.shape)
    raise ValueError(
        f"indices must lie in [0, H_out * W_out) = [0, {size}) for the output size "
        f"{tuple(out_hw)}; indices{tuple(map(int, pos))} = {int(indices[pos])} does not"
    )


def max_unpool2d(x: npt.ArrayLike, indices: npt.ArrayLike, kernel_size: IntOrPair,
                 stride: IntOrPair | None = None, padding: IntOrPair = 0,
                 output_size: Sequence[int] | None = None, *, out: np.ndarray | None = None,
                 n_threads: int | None = None, _trusted_indices: bool = False) -> FloatArray:
    """Max unpooling: put each value at its index in a zeroed, larger plane (PyTorch's meaning).

    ``out[n, c].flat[indices[n, c, i, j]] = x[n, c, i, j]``, everything else 0: the partial
    inverse of ``max_pool2d(..., return_indices=True)``.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W) or (C, H, W), dtype float32 or float64
        Pooled values, any memory layout; never written to.
    indices : ndarray of int, same shape as x
        Flat positions ``h * W_out + w`` in the output plane, each in ``[0, H_out * W_out)``
        (what ``max_pool2d(..., return_indices=True)`` returns for an input of the output's
        size).
    kernel_size, stride, padding : int or (int, int)
        Those of the max pooling being undone (``stride`` defaults to ``kernel_size``); they
        only set the output size.
    output_size : sequence of int, optional
        ``(H_out, W_out)``, or the full output shape, to pick among the input sizes that pool
        to ``x``'s size; see :func:`unpool_output_size` for the default and the admissible range.
    out : ndarray, optional
        Where to write the result (C-contiguous, writable, right shape and dtype).
    n_threads : int, optional
        OpenMP threads; results do not depend on it.

    Returns
    -------
    ndarray of shape (N, C, H_out, W_out) or (C, H_out, W_out), dtype of x

    Raises
    ------
    ValueError
        For an index outside ``[0, H_out * W_out)`` (all checked before anything is written),
        an inadmissible ``output_size``, an output size < 1, or shapes that disagree.

    Notes
    -----
    When two inputs of a plane share an index, the later one in row-major order wins, for any
    thread count (PyTorch leaves this case unspecified, and its CPU result varies); indices made
    by max pooling with non-overlapping windows never collide.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> v, i = poolkit.max_pool2d(np.array([[[[1.0, 3.0], [2.0, 2.0]]]]), 2, return_indices=True)
    >>> poolkit.max_unpool2d(v, i, 2)
    array([[[[0., 3.],
             [0., 0.]]]])
    """
    x = as_float_input(x)
    check_plane(x.shape)
    idx = _as_indices(indices, x.shape)
    out_hw = unpool_output_size(x.shape, kernel_size, stride, padding, output_size)
    result = output(out, x.shape[:-2] + out_hw, native(x.dtype), "out", (x, idx))
    if result.size:
        xf = flat_planes(x)
        nt = resolve(n_threads, xf.size + result.size)
        n_bad = _max_unpool.max_unpool2d_forward(
            xf, flat_planes(idx.astype(np.int64, copy=False)), result.reshape(xf.shape[0], -1),
            not _trusted_indices, nt,
        )
        if n_bad:
            _raise_bad(idx, out_hw)
    else:
        resolve(n_threads)
    return result


def max_unpool2d_backward(grad_output: npt.ArrayLike, indices: npt.ArrayLike, *,
                          out: np.ndarray | None = None, n_threads: int | None = None,
                          _trusted_indices: bool = False) -> FloatArray:
    """Gradient of :func:`max_unpool2d` with respect to its input ``x``: a gather.

    ``grad_input[n, c, i, j] = grad_output[n, c].flat[indices[n, c, i, j]]``.

    Parameters
    ----------
    grad_output : ndarray of shape (N, C, H_out, W_out) or (C, H_out, W_out), float32 or float64
        Gradient with respect to the unpooled output.
    indices : ndarray of int, shape (N, C, H, W) or (C, H, W)
        The indices given to the forward; each in ``[0, H_out * W_out)``.
    out : ndarray, optional
        Where to write the input gradient (C-contiguous, writable, shape of ``indices``).
    n_threads : int, optional
        OpenMP threads; results do not depend on it.

    Returns
    -------
    grad_input : ndarray of the shape of indices, dtype of grad_output

    Notes
    -----
    With duplicate indices every input sharing an index receives that position's gradient,
    as in PyTorch, although the forward kept only the last of them; indices from max pooling
    with non-overlapping windows have no duplicates.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> g = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    >>> poolkit.max_unpool2d_backward(g, np.array([[[[1]]]]))
    array([[[[2.]]]])
    """
    g = as_float_input(grad_output, "grad_output")
    check_plane(g.shape, "grad_output")
    idx = np.asarray(indices)
    if idx.ndim != g.ndim or idx.shape[:-2] != g.shape[:-2]:
        raise ValueError(
            f"indices must have grad_output's leading (batch, channel) dimensions "
            f"{g.shape[:-2]} and {g.ndim} dimensions, got shape {idx.shape}"
        )
    idx = _as_indices(idx, idx.shape)
    grad_input = output(out, idx.shape, native(g.dtype), "out", (g, idx))
    if grad_input.size and idx.shape[-2] * idx.shape[-1]:
        gf = flat_planes(g)
        nt = resolve(n_threads, gf.size + grad_input.size)
        n_bad = _max_unpool.max_unpool2d_backward(
            gf, flat_planes(idx.astype(np.int64, copy=False)),
            grad_input.reshape(gf.shape[0], -1), not _trusted_indices, nt,
        )
        if n_bad:
            _raise_bad(idx, g.shape[-2:])
    else:
        resolve(n_threads)
    return grad_input


class MaxUnpool2d(Layer):
    """Max unpooling layer (see :func:`poolkit.max_unpool2d`).

    ``forward(x, indices, output_size=None)`` (also ``__call__``) unpools and caches the
    indices; ``backward(grad_output)`` gathers the gradient at them.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> unpool = poolkit.MaxUnpool2d(2)
    >>> unpool(np.array([[[[3.0]]]]), np.array([[[[1]]]]))
    array([[[[0., 3.],
             [0., 0.]]]])
    >>> unpool.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    array([[[[2.]]]])
    """

    _params = ("kernel_size", "stride", "padding")

    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None,
                 padding: IntOrPair = 0, n_threads: int | None = None) -> None:
        _window_params(kernel_size, stride, padding)
        super().__init__(n_threads)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def __call__(self, x: npt.ArrayLike, indices: npt.ArrayLike,  # type: ignore[override]
                 output_size: Sequence[int] | None = None) -> FloatArray:
        return self.forward(x, indices, output_size)

    def forward(self, x: npt.ArrayLike, indices: npt.ArrayLike,  # type: ignore[override]
                output_size: Sequence[int] | None = None) -> FloatArray:
        with self._exclusive("forward"):
            result = max_unpool2d(x, indices, self.kernel_size, self.stride, self.padding,
                                  output_size, n_threads=self.n_threads)
            # Copy the checked indices: the caller may change its array before backward.
            self._cache = (np.array(indices, dtype=np.int64, order="C"), result.shape)
            return result

    def _backward(self, grad_output, cache):
        indices, out_shape = cache
        self._check_grad_shape("MaxUnpool2d", grad_output, out_shape)
        return max_unpool2d_backward(grad_output, indices, n_threads=self.n_threads,
                                     _trusted_indices=True)
