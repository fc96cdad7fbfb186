"""Stochastic pooling (Zeiler & Fergus, ICLR 2013): functional API and the layer.

In every window of non-negative activations ``a``, position ``i`` has probability
``p_i = a_i / sum(a)``. Training samples one position per window and outputs its value (the
gradient then flows to that position only, as in max pooling); inference outputs the
expectation ``sum(p_i a_i) = sum(a^2) / sum(a)``.

Randomness (NumPy SPEC 7): ``rng`` is None, an int seed or a ``numpy.random.Generator``,
normalised with ``numpy.random.default_rng``. Each training call draws ONE 64-bit key from it
(``rng.integers(0, 2**64, dtype=np.uint64)``); the kernel derives the uniform of every output
element from that key and the element's flat position in the output with the counter-based
SplitMix64 stream documented in ``pyx/_stochastic_helpers.pxd`` and implemented again in
``poolkit.reference``. The same seed therefore gives bitwise the same result for any thread
count, and the reference reproduces every choice.

Why in the kernel and not ``Generator.random``: drawing one float32 uniform per output with
NumPy (6.4M for a (32, 64, 112, 112) input with 2x2 windows) costs about as much as a whole
max-pooling pass, and the array of uniforms must then be written and read again;
``benchmarks/bench_stochastic.py`` measures both designs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from . import _stochastic_pool
from ._arrays import (as_float_input, as_planes, check_input_shape, check_plane, native, output,
                      planes_of, split_out_pair)
from ._layers import Layer, _check_window
from ._params import as_flag, check_bool, pair, pool_params
from ._pooling import FloatArray, IndexArray, IntOrPair, max_pool2d_backward
from ._threads import resolve

__all__ = ["StochasticPool2d", "stochastic_pool2d", "stochastic_pool2d_backward"]


# ------------------------------------------------------------------------------ helpers


def _generator(rng) -> np.random.Generator:
    """SPEC 7: None (fresh OS entropy), an int seed, or a Generator (used as is)."""
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as exc:
        raise type(exc)(
            f"rng must be None, an int seed or a numpy.random.Generator, got {rng!r} ({exc})"
        ) from None


def _draw_key(rng) -> int:
    """The one 64-bit key a training call draws from ``rng``."""
    return int(_generator(rng).integers(0, 2**64, dtype=np.uint64))


def _raise_bad_activation(x: np.ndarray, name: str = "x"):
    """Raise the ValueError for the first (C order) negative, NaN or infinite value of x."""
    x = np.asarray(x)
    with np.errstate(invalid="ignore"):
        bad = ~((x >= 0) & (x <= np.finfo(x.dtype).max))
    flat = np.flatnonzero(bad)
    if flat.size == 0:  # pragma: no cover - the kernel and this check use the same rule
        raise ValueError(
            f"stochastic pooling needs finite, non-negative activations (such as ReLU outputs); "
            f"{name} holds a value that is not"
        )
    pos = tuple(int(i) for i in np.unravel_index(flat[0], x.shape))
    v = x[pos]
    what = "NaN" if np.isnan(v) else ("infinite" if np.isinf(v) else "negative")
    others = f" ({flat.size} such values in all)" if flat.size > 1 else ""
    raise ValueError(
        f"stochastic pooling needs finite, non-negative activations (such as ReLU outputs); "
        f"{name}[{', '.join(map(str, pos))}] = {v} is {what}{others}"
    )


def _is_zero_padding(padding) -> bool:
    try:
        return pair(padding, "padding") == (0, 0)
    except (TypeError, ValueError):
        return False


# ------------------------------------------------------------------------------ forward


def stochastic_pool2d(
    x: npt.ArrayLike,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    training: bool = True,
    rng: int | np.random.Generator | None = None,
    return_indices: bool = False,
    *,
    out: np.ndarray | tuple[np.ndarray, np.ndarray] | None = None,
    n_threads: int | None = None,
) -> FloatArray | tuple[FloatArray, IndexArray]:
    """2-D stochastic pooling (Zeiler & Fergus, 2013) over the last two axes.

    In a window of activations ``a`` (finite and >= 0), position ``i`` has probability
    ``p_i = a_i / sum(a)``; padded positions have probability 0.

    * ``training=True`` samples one position per window: with ``u`` uniform in ``[0, 1)``,
      the first position ``i`` (row-major window order) whose running sum exceeds
      ``u * sum(a)`` (the last positive position when rounding leaves every running sum at or
      below it), and outputs ``a_i``. Running sums are taken in x's dtype.
    * ``training=False`` outputs the expectation ``sum(a^2) / sum(a)`` (both sums in float64
      for either dtype, so squares of large float32 activations do not overflow).

    A window whose sum is 0 outputs 0 (and, in training, records its first input position).

    Parameters
    ----------
    x : ndarray of shape (N, C, H, W) or (C, H, W), dtype float32 or float64
        Non-negative, finite activations (ReLU outputs, for example), in any memory layout;
        never written to.
    kernel_size : int or (int, int)
        Window size ``(kh, kw)``.
    stride : int or (int, int), optional
        Window step; defaults to ``kernel_size``.
    padding : int or (int, int), default 0
        Implicit padding on both sides (probability 0); at most half the kernel.
    ceil_mode : bool, default False
        Round the output size up instead of down (as :func:`poolkit.max_pool2d`).
    training : bool, default True
        Sample (True) or take the probability-weighted average (False).
    rng : None, int or numpy.random.Generator, optional
        Source of randomness (NumPy SPEC 7), used in training only: each training call draws
        one 64-bit key from ``numpy.random.default_rng(rng)``. The same seed gives bitwise the
        same result for any ``n_threads``, and ``poolkit.reference.stochastic_pool2d`` makes
        the same choices.
    return_indices : bool, default False
        Also return the sampled positions as int64 flat indices ``h * W + w`` in the unpadded
        input plane (training only; the input of :func:`stochastic_pool2d_backward`).
    out : ndarray or (ndarray, ndarray), optional
        Where to write the values (and, with ``return_indices``, the indices): C-contiguous,
        writable, right shape and dtype, not overlapping ``x``. Unspecified after an error.
    n_threads : int, optional
        OpenMP threads; None uses OpenMP's default, -1 all CPUs. Results do not depend on it.

    Returns
    -------
    values : ndarray of shape (N, C, OH, OW) or (C, OH, OW), dtype of x
    indices : ndarray of shape (N, C, OH, OW) or (C, OH, OW), dtype int64
        Only with ``return_indices=True``.

    Raises
    ------
    ValueError
        For a negative, NaN or infinite value of ``x`` (the message names the first one, in C
        order); for ``return_indices=True`` with ``training=False``; for invalid parameters,
        shapes or ``out`` arrays.
    TypeError
        For a dtype other than float32/float64, non-integer parameters, a non-bool
        ``training`` or ``ceil_mode``, or an ``rng`` NumPy cannot seed from.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.array([[[[0., 1.], [1., 2.]]]])
    >>> poolkit.stochastic_pool2d(x, 2, training=False)         # (1 + 1 + 4) / 4
    array([[[[1.5]]]])
    >>> values, indices = poolkit.stochastic_pool2d(x, 2, rng=0, return_indices=True)
    >>> bool(values.flat[0] == x.flat[indices.flat[0]])
    True
    """
    x = as_float_input(x)
    check_plane(x.shape)
    prm = pool_params(x.shape[-2:], kernel_size, stride, padding, 1, ceil_mode)
    training = check_bool(training, "training")
    return_indices = as_flag(return_indices, "return_indices")
    if return_indices and not training:
        raise ValueError(
            "return_indices=True needs training=True: inference weights the whole window and "
            "samples no position"
        )
    shape = x.shape[:-2] + prm.out_hw
    dtype = native(x.dtype)
    out_v, out_i = split_out_pair(out, return_indices)
    values = output(out_v, shape, dtype, "out[0]" if return_indices else "out", (x,))
    (kh, kw), (sh, sw), (ph, pw) = prm[:3]
    if training:
        key = _draw_key(rng)
        # The kernel records the sampled positions whether or not they are returned.
        indices = output(out_i, shape, np.int64, "out[1]", (x, values))
    if values.size:
        planes = as_planes(x)
        nt = resolve(n_threads, planes.size + values.size)
        if training:
            code = _stochastic_pool.stochastic_pool2d_train(
                planes, planes_of(values), planes_of(indices), key, kh, kw, sh, sw, ph, pw, nt
            )
        else:
            code = _stochastic_pool.stochastic_pool2d_infer(
                planes, planes_of(values), kh, kw, sh, sw, ph, pw, nt
            )
        if code < 0:
            raise MemoryError("stochastic_pool2d could not allocate its scratch rows")
        if code:
            _raise_bad_activation(x)
    else:
        resolve(n_threads)
    return (values, indices) if return_indices else values


# ------------------------------------------------------------------------------ backward


def stochastic_pool2d_backward(
    grad_output: npt.ArrayLike,
    input_shape: Sequence[int] | None = None,
    indices: npt.ArrayLike | None = None,
    *,
    x: npt.ArrayLike | None = None,
    kernel_size: IntOrPair | None = None,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    out: np.ndarray | None = None,
    n_threads: int | None = None,
) -> FloatArray:
    """Gradient of :func:`stochastic_pool2d`, for either mode.

    The mode is chosen by what is passed -- exactly one of ``indices`` and ``x``:

    * training (``indices=``): ``stochastic_pool2d_backward(g, x.shape, indices)`` routes each
      output gradient to its sampled position,
      ``grad_input[n, c].flat[indices[n, c, i, j]] += g[n, c, i, j]`` (max pooling's rule:
      :func:`poolkit.max_pool2d_backward` does the work);
    * inference (``x=``): ``stochastic_pool2d_backward(g, x=x, kernel_size=k, ...)`` with the
      forward's window parameters gives, for each window with ``S = sum(a) > 0`` and each
      input position ``j`` in it, ``g * (2 a_j S - sum(a^2)) / S^2`` (computed in float64 as
      ``g * (2 a_j - y) / S`` with ``y = sum(a^2) / S``); a zero-sum window passes 0.
      Overlapping windows accumulate.

    Parameters
    ----------
    grad_output : ndarray of shape (N, C, OH, OW) or (C, OH, OW), dtype float32 or float64
        Gradient with respect to the pooled output.
    input_shape : tuple of int
        Shape of the forward input. Required in training; in inference it defaults to
        ``x.shape`` (and must equal it when given).
    indices : ndarray of int, same shape as grad_output, optional
        Training: the sampled positions from ``stochastic_pool2d(..., return_indices=True)``;
        each must lie in ``[0, H * W)``.
    x : ndarray of shape input_shape, dtype of grad_output, optional
        Inference: the forward input (finite and >= 0).
    kernel_size, stride, padding, ceil_mode
        Inference: the forward's window parameters (``kernel_size`` required). Not accepted
        with ``indices``, whose positions already say everything.
    out : ndarray, optional
        Where to write the input gradient (C-contiguous, writable, right shape and dtype).
    n_threads : int, optional
        OpenMP threads (see :func:`stochastic_pool2d`).

    Returns
    -------
    grad_input : ndarray of shape input_shape, dtype of grad_output

    Raises
    ------
    ValueError
        For neither or both of ``indices`` and ``x``; window parameters with ``indices``; an
        index outside ``[0, H * W)``; a negative, NaN or infinite value of ``x``; shapes that
        disagree.
    TypeError
        For dtypes other than float32/float64, or ``x`` and ``grad_output`` of different
        dtypes.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> x = np.array([[[[0., 1.], [1., 2.]]]])
    >>> g = np.ones((1, 1, 1, 1))
    >>> poolkit.stochastic_pool2d_backward(g, x=x, kernel_size=2)    # (2 a - 1.5) / 4
    array([[[[-0.375,  0.125],
             [ 0.125,  0.625]]]])
    >>> poolkit.stochastic_pool2d_backward(g, x.shape, np.array([[[[3]]]]))
    array([[[[0., 0.],
             [0., 1.]]]])
    """
    if (indices is None) == (x is None):
        raise ValueError(
            "pass exactly one of indices= (training: the sampled positions, with input_shape) "
            "and x= (inference: the forward input, with kernel_size and the other window "
            f"parameters); got {'both' if indices is not None else 'neither'}"
        )
    if indices is not None:
        given = [name for name, unset in (
            ("kernel_size", kernel_size is None), ("stride", stride is None),
            ("padding", _is_zero_padding(padding)),
            ("ceil_mode", isinstance(ceil_mode, (bool, np.bool_)) and not ceil_mode),
        ) if not unset]
        if given:
            raise ValueError(
                f"{', '.join(given)} only apply to the inference backward (x=...); the training "
                f"backward needs only input_shape and indices"
            )
        if input_shape is None:
            raise ValueError("the training backward (indices=...) needs input_shape")
        return max_pool2d_backward(grad_output, indices, input_shape, out=out,
                                   n_threads=n_threads)

    # Inference: the gradient of sum(a^2) / sum(a) over every window.
    g = as_float_input(grad_output, "grad_output")
    xa = as_float_input(x)
    if input_shape is None:
        input_shape = xa.shape
    shape = check_input_shape(input_shape, g)
    if xa.shape != shape:
        raise ValueError(f"x must have shape input_shape {shape}, got {xa.shape}")
    if xa.dtype.type is not g.dtype.type:
        raise TypeError(
            f"x and grad_output must have the same dtype, got {xa.dtype} and {g.dtype} "
            f"(poolkit never casts silently)"
        )
    if kernel_size is None:
        raise ValueError("the inference backward (x=...) needs the forward's kernel_size")
    prm = pool_params(shape[-2:], kernel_size, stride, padding, 1, ceil_mode)
    expected = shape[:-2] + prm.out_hw
    if g.shape != expected:
        raise ValueError(
            f"grad_output must have shape {expected} (the output of stochastic_pool2d on x of "
            f"shape {shape} with these parameters), got {g.shape}"
        )
    grad_input = output(out, shape, native(g.dtype), "out", (g, xa))
    if grad_input.size:
        gp = as_planes(g)
        xp = as_planes(xa)
        nt = resolve(n_threads, xp.size + gp.size)
        (kh, kw), (sh, sw), (ph, pw) = prm[:3]
        if _stochastic_pool.stochastic_pool2d_infer_backward(
            gp, xp, planes_of(grad_input), kh, kw, sh, sw, ph, pw, nt
        ):
            _raise_bad_activation(xa)
    else:
        resolve(n_threads)
    return grad_input


# ------------------------------------------------------------------------------ layer


class StochasticPool2d(Layer):
    """Stochastic pooling layer: ``train()`` samples, ``eval()`` weights by probability.

    Parameters are those of :func:`poolkit.stochastic_pool2d`. ``rng`` (None, an int seed or
    a Generator) becomes one ``numpy.random.Generator`` for the layer's life, and each
    training forward draws a fresh key from it: an int seed makes the whole sequence of
    forwards reproducible.

    ``forward`` caches what ``backward`` needs: the sampled indices in training, the input
    itself in inference (do not modify it in place before ``backward``). ``backward`` follows
    the mode of the cached forward, whatever the mode is by then. With
    ``return_indices=True``, ``forward`` returns ``(values, indices)`` in training and
    ``(values, None)`` in inference.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> pool = poolkit.StochasticPool2d(2, rng=0).eval()
    >>> pool(np.array([[[[0., 1.], [1., 2.]]]]))
    array([[[[1.5]]]])
    >>> pool.backward(np.ones((1, 1, 1, 1)))
    array([[[[-0.375,  0.125],
             [ 0.125,  0.625]]]])
    """

    _params = ("kernel_size", "stride", "padding", "ceil_mode", "return_indices")

    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None,
                 padding: IntOrPair = 0, ceil_mode: bool = False,
                 rng: int | np.random.Generator | None = None, return_indices: bool = False,
                 n_threads: int | None = None) -> None:
        _check_window(kernel_size, stride, padding, 1, ceil_mode)
        super().__init__(n_threads)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.return_indices = as_flag(return_indices, "return_indices")
        self.rng = _generator(rng)

    def _window_args(self):
        return self.kernel_size, self.stride, self.padding, self.ceil_mode

    def _forward(self, x):
        x = np.asarray(x)
        if self.training:
            values, indices = stochastic_pool2d(
                x, *self._window_args(), training=True, rng=self.rng, return_indices=True,
                n_threads=self.n_threads,
            )
            cache = ("train", indices, x.shape)
            return ((values, indices) if self.return_indices else values), cache
        values = stochastic_pool2d(x, *self._window_args(), training=False,
                                   n_threads=self.n_threads)
        cache = ("eval", x, values.shape)
        return ((values, None) if self.return_indices else values), cache

    def _backward(self, grad_output, cache):
        mode, saved, other = cache
        if mode == "train":
            indices, input_shape = saved, other
            self._check_grad_shape("StochasticPool2d", grad_output, indices.shape)
            return stochastic_pool2d_backward(grad_output, input_shape, indices,
                                              n_threads=self.n_threads)
        x, out_shape = saved, other
        self._check_grad_shape("StochasticPool2d", grad_output, out_shape)
        k, s, p, c = self._window_args()
        return stochastic_pool2d_backward(grad_output, x=x, kernel_size=k, stride=s, padding=p,
                                          ceil_mode=c, n_threads=self.n_threads)
