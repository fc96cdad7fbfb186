"""Pure-Python reference for stochastic pooling (Zeiler & Fergus, ICLR 2013).

Part of ``poolkit.reference``: plain loops, one window at a time, importing only NumPy, the
standard library and the checks shared by the reference modules (``_ref_common``). It is the
definition the compiled ``poolkit.stochastic_pool2d`` is tested against, and from the same
``rng`` seed it makes bitwise the same choices.

The rule, for a window of activations ``a`` (finite and >= 0; padded positions are not part
of the window, so they have probability 0), in row-major window order:

* training: ``S = sum(a)``; with the output element's uniform ``u`` in ``[0, 1)``, the
  threshold is ``t = u * S`` (``t = 0`` when ``u == 0``). The chosen position is the first
  one whose running sum exceeds ``t``; if rounding leaves every running sum at or below
  ``t``, the last positive position; if ``S == 0``, the first input position. The output is
  the chosen value. ``S``, ``t`` and the running sums are computed in x's dtype, from 0, in
  row-major window order -- as the kernel does, which is why the choices agree bit for bit.
  The gradient flows to the chosen position only.
* inference: ``y = sum(a^2) / sum(a)`` (0 when the sum is 0), both sums in float64 for
  either dtype; the gradient at ``a_j`` is ``g * (2 a_j - y) / S``, the same quantity as
  ``g * (2 a_j S - sum(a^2)) / S^2``, and 0 for a zero-sum window.

The uniforms. ``rng`` (None, an int seed, or a ``numpy.random.Generator``) is normalised with
``numpy.random.default_rng`` (NumPy SPEC 7), and each training call draws one 64-bit key from
it. The output element at flat position ``g`` of the ``(N, C, OH, OW)`` output gets its
uniform from the counter-based SplitMix64 stream of that key (:func:`splitmix64`):

* float64: ``u = (splitmix64(key, g + 1) >> 11) * 2**-53`` (53 bits);
* float32: ``z = splitmix64(key, g // 2 + 1)``; its low 32 bits for even ``g``, its high 32
  bits for odd ``g`` (NumPy's order when it makes float32 numbers from 64-bit outputs);
  ``u = (half >> 8) * 2**-24`` (24 bits: as many as a float32 running sum can use).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ._ref_common import (_AXES, _add_at_indices, _as_4d, _check_float, _check_input_shape,
                          _pair, pool_output_size)

__all__ = ["splitmix64", "stochastic_pool2d", "stochastic_pool2d_backward", "stochastic_uniform"]

_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15


# ---------------------------------------------------------------------------
# The random stream
# ---------------------------------------------------------------------------


def splitmix64(key, n):
    """The ``n``-th output (n = 1, 2, ...) of the SplitMix64 generator seeded with ``key``.

    SplitMix64 (Steele, Lea & Flood 2014; Vigna's ``splitmix64.c``) adds the constant
    ``0x9E3779B97F4A7C15`` to its state before each output and mixes the result, so output
    ``n`` depends only on ``key + n * 0x9E3779B97F4A7C15`` (mod 2**64).

    Examples
    --------
    >>> [splitmix64(1234567, n) for n in (1, 2, 3)]
    [6457827717110365317, 3203168211198807973, 9817491932198370423]
    """
    z = (key + n * _GAMMA) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def stochastic_uniform(key, g, dtype):
    """The uniform in ``[0, 1)``, of type ``dtype``, of output element ``g`` under ``key``."""
    if np.dtype(dtype) == np.float32:
        z = splitmix64(key, g // 2 + 1)
        half = (z & 0xFFFFFFFF) if g % 2 == 0 else (z >> 32)
        return np.float32(half >> 8) * np.float32(2.0**-24)
    return np.float64(splitmix64(key, g + 1) >> 11) * np.float64(2.0**-53)


def _draw_key(rng):
    """The one 64-bit key a training call draws from ``rng`` (NumPy SPEC 7)."""
    generator = np.random.default_rng(rng)
    return int(generator.integers(0, 2**64, dtype=np.uint64))


# ---------------------------------------------------------------------------
# Checks and window arithmetic
# ---------------------------------------------------------------------------


def _check_activations(x, name):
    """ValueError naming the first (C order) negative, NaN or infinite value of `x`."""
    for pos in np.ndindex(*x.shape):
        v = x[pos]
        if np.isnan(v):
            what = "NaN"
        elif np.isinf(v):
            what = "infinite"
        elif v < 0:
            what = "negative"
        else:
            continue
        raise ValueError(
            "stochastic pooling needs finite, non-negative activations (such as ReLU "
            f"outputs); {name}[{', '.join(str(i) for i in pos)}] = {v} is {what}"
        )


def _window_params(spatial, kernel_size, stride, padding, ceil_mode):
    """Validate the window parameters on an (H, W) plane.

    Returns ``(kernel, stride, padding, out_shape)``, each a pair.
    """
    kernel = _pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else _pair(stride, "stride")
    padding = _pair(padding, "padding")
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be a bool, got {ceil_mode!r}")
    for name, pair in (("kernel_size", kernel), ("stride", stride)):
        if min(pair) < 1:
            raise ValueError(f"{name} must be >= 1, got {name}={pair}")
    out_shape = []
    for axis in range(2):
        L, k, s, p = spatial[axis], kernel[axis], stride[axis], padding[axis]
        if p < 0 or 2 * p > k:
            raise ValueError(
                f"padding must be >= 0 and at most half the kernel size ({k} along "
                f"{_AXES[axis]}), got padding={padding}"
            )
        out = pool_output_size(L, k, s, p, 1, bool(ceil_mode))
        if out < 1:
            raise ValueError(
                f"output size along {_AXES[axis]} would be {out} (< 1) for input length {L} "
                f"with kernel_size={kernel}, stride={stride}, padding={padding}, "
                f"ceil_mode={ceil_mode}"
            )
        out_shape.append(out)
    return kernel, stride, padding, tuple(out_shape)


def _window_positions(oh, ow, H, W, kernel, stride, padding):
    """The input positions ``(h, w)`` of window ``(oh, ow)``, row-major, padding left out.

    The window covers rows ``hs, ..., hs + kh - 1`` and columns ``ws, ..., ws + kw - 1`` of
    the padded plane (``hs = oh * sh - ph``, ``ws = ow * sw - pw``); those outside
    ``[0, H) x [0, W)`` are padding.
    """
    hs = oh * stride[0] - padding[0]
    ws = ow * stride[1] - padding[1]
    positions = []
    for h in range(max(hs, 0), min(hs + kernel[0], H)):
        for w in range(max(ws, 0), min(ws + kernel[1], W)):
            positions.append((h, w))
    return positions


# ---------------------------------------------------------------------------
# Forward
# ---------------------------------------------------------------------------


def _sample_window(plane, positions, u, scalar):
    """The chosen position of one window in training (see the module docstring)."""
    total = scalar(0)
    for h, w in positions:
        total = total + plane[h, w]
    threshold = u * total if u > 0 else scalar(0)
    running = scalar(0)
    for h, w in positions:
        running = running + plane[h, w]
        if running > threshold:
            return h, w
    # Rounding left every running sum at or below the threshold (or the sum is 0).
    positive = [(h, w) for h, w in positions if plane[h, w] > 0]
    if positive:
        return positive[-1]
    return positions[0]


def _expectation(plane, positions):
    """``(sum(a), sum(a^2))`` of one window, in float64."""
    total = 0.0
    squares = 0.0
    for h, w in positions:
        a = float(plane[h, w])
        total = total + a
        squares = squares + a * a
    return total, squares


def stochastic_pool2d(x: npt.ArrayLike, kernel_size: int | tuple[int, int],
                      stride: int | tuple[int, int] | None = None,
                      padding: int | tuple[int, int] = 0, ceil_mode: bool = False,
                      training: bool = True, rng: int | np.random.Generator | None = None,
                      return_indices: bool = False) -> (
        npt.NDArray[np.floating] | tuple[npt.NDArray[np.floating], npt.NDArray[np.int64]]):
    """2-D stochastic pooling, one window at a time.

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W) or (C, H, W), dtype float32 or float64
        Finite, non-negative activations.
    kernel_size, stride, padding, ceil_mode
        As in :func:`poolkit.stochastic_pool2d` (no dilation).
    training : bool, default True
        Sample a position per window (True) or output ``sum(a^2) / sum(a)`` (False).
    rng : None, int or numpy.random.Generator
        Training only: one 64-bit key is drawn from ``numpy.random.default_rng(rng)``.
    return_indices : bool, default False
        Training only: also return the chosen flat positions ``h * W + w`` (int64).

    Returns
    -------
    values : ndarray of shape (N, C, H_out, W_out), dtype of x
    indices : ndarray of shape (N, C, H_out, W_out), dtype int64
        Only with ``return_indices=True``.

    Raises
    ------
    ValueError
        For a negative, NaN or infinite activation (naming the first one), invalid
        parameters, or ``return_indices=True`` with ``training=False``.
    TypeError
        For a dtype other than float32/float64 or non-integer parameters.

    Examples
    --------
    >>> x = np.array([[[0.0, 1.0], [1.0, 2.0]]])
    >>> stochastic_pool2d(x, 2, training=False)
    array([[[1.5]]])
    """
    x4, added_batch = _as_4d(x, "x")
    N, C, H, W = x4.shape
    kernel, stride, padding, (H_out, W_out) = _window_params(
        (H, W), kernel_size, stride, padding, ceil_mode)
    if not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be a bool, got {training!r}")
    if return_indices and not training:
        raise ValueError("return_indices=True needs training=True")
    _check_activations(np.asarray(x), "x")

    scalar = x4.dtype.type
    out = np.zeros((N, C, H_out, W_out), dtype=x4.dtype)
    indices = np.zeros((N, C, H_out, W_out), dtype=np.int64)
    key = _draw_key(rng) if training else None
    with np.errstate(over="ignore"):  # a float32 window sum may overflow to inf
        for n in range(N):
            for c in range(C):
                plane = x4[n, c]
                for oh in range(H_out):
                    for ow in range(W_out):
                        positions = _window_positions(oh, ow, H, W, kernel, stride, padding)
                        if training:
                            g = ((n * C + c) * H_out + oh) * W_out + ow  # global position
                            u = stochastic_uniform(key, g, x4.dtype)
                            h, w = _sample_window(plane, positions, u, scalar)
                            # The chosen value (a zero-sum window outputs +0.0, even where its
                            # first value is -0.0).
                            out[n, c, oh, ow] = plane[h, w] + scalar(0)
                            indices[n, c, oh, ow] = h * W + w
                        else:
                            total, squares = _expectation(plane, positions)
                            out[n, c, oh, ow] = squares / total if total > 0 else 0.0
    if added_batch:
        out, indices = out[0], indices[0]
    return (out, indices) if return_indices else out


# ---------------------------------------------------------------------------
# Backward
# ---------------------------------------------------------------------------


def stochastic_pool2d_backward(grad_output: npt.ArrayLike,
                               input_shape: Sequence[int] | None = None,
                               indices: npt.ArrayLike | None = None, *,
                               x: npt.ArrayLike | None = None,
                               kernel_size: int | tuple[int, int] | None = None,
                               stride: int | tuple[int, int] | None = None,
                               padding: int | tuple[int, int] = 0,
                               ceil_mode: bool = False) -> npt.NDArray[np.floating]:
    """Gradient of :func:`stochastic_pool2d`; exactly one of ``indices`` and ``x``.

    * Training, ``stochastic_pool2d_backward(g, input_shape, indices)``: each output gradient
      is added at its chosen position.
    * Inference, ``stochastic_pool2d_backward(g, x=x, kernel_size=k, ...)``: each window with
      ``S = sum(a) > 0`` adds ``g * (2 a_j - y) / S`` at each of its input positions ``j``
      (``y = sum(a^2) / S``, in float64); outputs are visited in row-major order and the
      positions of a window in row-major order.

    Returns
    -------
    grad_input : ndarray of shape input_shape, dtype of grad_output

    Examples
    --------
    >>> g = np.ones((1, 1, 1))
    >>> stochastic_pool2d_backward(g, (1, 2, 2), np.array([[[3]]]))
    array([[[0., 0.],
            [0., 1.]]])
    >>> stochastic_pool2d_backward(g, x=np.array([[[0.0, 1.0], [1.0, 2.0]]]), kernel_size=2)
    array([[[-0.375,  0.125],
            [ 0.125,  0.625]]])
    """
    if (indices is None) == (x is None):
        raise ValueError("pass exactly one of indices= (training) and x= (inference)")
    grad_output = _check_float(grad_output, "grad_output")
    if grad_output.ndim not in (3, 4):
        raise ValueError(f"grad_output must be 3-D or 4-D, got shape {grad_output.shape}")
    added_batch = grad_output.ndim == 3

    if indices is not None:
        if kernel_size is not None or stride is not None:
            raise ValueError("window parameters only apply to the inference backward (x=...)")
        if input_shape is None:
            raise ValueError("the training backward needs input_shape")
        shape = _check_input_shape(input_shape)
        indices = np.asarray(indices)
        if not np.issubdtype(indices.dtype, np.integer):
            raise TypeError(f"indices must have an integer dtype, got dtype {indices.dtype}")
        if indices.shape != grad_output.shape:
            raise ValueError(
                f"grad_output and indices must have the same shape, got {grad_output.shape} "
                f"and {indices.shape}"
            )
        if len(shape) != grad_output.ndim or shape[:-2] != grad_output.shape[:-2]:
            raise ValueError(f"grad_output {grad_output.shape} does not match input_shape {shape}")
        H, W = shape[-2:]
        if indices.size and (indices.min() < 0 or indices.max() >= H * W):
            raise ValueError(f"indices must lie in [0, H * W) = [0, {H * W})")
        g4 = grad_output[np.newaxis] if added_batch else grad_output
        i4 = indices[np.newaxis] if added_batch else indices
        return _add_at_indices(g4, i4, H * W).reshape(shape)

    x4, _ = _as_4d(x, "x")
    x = np.asarray(x)
    shape = x.shape if input_shape is None else _check_input_shape(input_shape)
    if tuple(shape) != x.shape:
        raise ValueError(f"x must have shape input_shape {tuple(shape)}, got {x.shape}")
    if x4.dtype != grad_output.dtype:
        raise TypeError(
            f"x and grad_output must have the same dtype, got {x4.dtype} and {grad_output.dtype}"
        )
    if kernel_size is None:
        raise ValueError("the inference backward needs kernel_size")
    N, C, H, W = x4.shape
    kernel, stride, padding, (H_out, W_out) = _window_params(
        (H, W), kernel_size, stride, padding, ceil_mode)
    if grad_output.shape != x.shape[:-2] + (H_out, W_out):
        raise ValueError(
            f"grad_output must have shape {x.shape[:-2] + (H_out, W_out)}, got "
            f"{grad_output.shape}"
        )
    _check_activations(x, "x")

    g4 = grad_output[np.newaxis] if added_batch else grad_output
    scalar = g4.dtype.type
    grad_input = np.zeros((N, C, H, W), dtype=g4.dtype)
    for n in range(N):
        for c in range(C):
            plane = x4[n, c]
            for oh in range(H_out):
                for ow in range(W_out):
                    positions = _window_positions(oh, ow, H, W, kernel, stride, padding)
                    total, squares = _expectation(plane, positions)
                    if total == 0:
                        continue  # a zero-sum window passes no gradient
                    y = squares / total
                    r = float(g4[n, c, oh, ow]) / total
                    for h, w in positions:
                        share = scalar(r * (2.0 * float(plane[h, w]) - y))
                        grad_input[n, c, h, w] = grad_input[n, c, h, w] + share
    return grad_input.reshape(shape)
