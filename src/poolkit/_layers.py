"""Layer classes: Caffe-style stateful objects (forward caches what backward needs) with
PyTorch-style names and parameters."""

from __future__ import annotations

import contextlib
import threading
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from ._params import _MAX_DIM, as_flag, check_divisor_override, pool_params
from ._threads import resolve
from ._pooling import (
    FloatArray,
    IntOrPair,
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
)

__all__ = ["Layer", "MaxPool2d", "AvgPool2d"]

_L = TypeVar("_L", bound="Layer")


class Layer:
    """Base of poolkit's layers: ``forward``/``__call__``, ``backward``, ``train``/``eval``.

    ``forward`` caches what ``backward`` needs, so one layer object holds the state of one
    forward/backward pair at a time: share layers between threads only with your own locking
    (a forward or backward that finds another one running on the same object raises
    RuntimeError instead of mixing their state).
    """

    _params: tuple = ()

    def __init__(self, n_threads: int | None = None) -> None:
        resolve(n_threads)  # a bad n_threads fails here, not at the first forward
        self.n_threads = n_threads
        self.training = True
        self._cache = None
        self._busy = threading.Lock()

    # -- the public protocol -------------------------------------------------------------
    def __call__(self, x: npt.ArrayLike) -> Any:
        return self.forward(x)

    def forward(self, x: npt.ArrayLike) -> Any:
        with self._exclusive("forward"):
            result, cache = self._forward(x)
            self._cache = cache
            return result

    def backward(self, grad_output: npt.ArrayLike) -> FloatArray:
        with self._exclusive("backward"):
            if self._cache is None:
                raise RuntimeError(
                    f"{type(self).__name__}.backward() called before forward(): there is no "
                    f"cached forward pass to differentiate"
                )
            return self._backward(grad_output, self._cache)

    def train(self: _L, mode: bool = True) -> _L:
        """Switch to training mode (``mode=False``: inference); returns self."""
        self.training = as_flag(mode, "mode")
        return self

    def eval(self: _L) -> _L:
        """Switch to inference mode; returns self."""
        return self.train(False)

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._params)
        return f"{type(self).__name__}({args})"

    # -- helpers for subclasses ----------------------------------------------------------
    @contextlib.contextmanager
    def _exclusive(self, what):
        if not self._busy.acquire(blocking=False):
            raise RuntimeError(
                f"{type(self).__name__}.{what}() called while another forward or backward "
                f"runs on the same layer object in another thread; layers cache state between "
                f"forward and backward, so use one layer object per thread"
            )
        try:
            yield
        finally:
            self._busy.release()

    @staticmethod
    def _check_grad_shape(layer_name, grad_output, expected):
        shape = np.shape(grad_output)
        if tuple(shape) != tuple(expected):
            raise ValueError(
                f"{layer_name}.backward: grad_output must have the shape of the last forward "
                f"output {tuple(expected)}, got {tuple(shape)}"
            )

    def _forward(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _backward(self, grad_output, cache):  # pragma: no cover - abstract
        raise NotImplementedError


class _AveragingLayer(Layer):
    """Base of the average-pooling layers, whose ``backward`` needs only the input's shape.

    Subclasses define ``_pool(x)``, the forward function called with the layer's parameters,
    and ``_pool_backward(grad_output, input_shape)``, its gradient.
    """

    def _forward(self, x):
        result = self._pool(x)
        return result, (np.shape(x), result.shape)

    def _backward(self, grad_output, cache):
        input_shape, out_shape = cache
        self._check_grad_shape(type(self).__name__, grad_output, out_shape)
        return self._pool_backward(grad_output, input_shape)

    def _pool(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _pool_backward(self, grad_output, input_shape):  # pragma: no cover - abstract
        raise NotImplementedError


class _ArgmaxLayer(Layer):
    """Base of the max-pooling layers: ``forward`` caches the argmax, ``backward`` routes the
    gradient to it.

    Subclasses define ``_pool(x)``, the forward function called with the layer's parameters
    and ``return_indices=True``, and ``_pool_backward(grad_output, indices, input_shape)``,
    its gradient. The indices are the layer's own, made by its forward, so ``_pool_backward``
    need not check them again (``_trusted_indices=True``). ``forward`` returns the indices too
    when the layer's ``return_indices`` is true.
    """

    return_indices: bool

    def _forward(self, x):
        values, indices = self._pool(x)
        cache = (indices, np.shape(x))
        return ((values, indices) if self.return_indices else values), cache

    def _backward(self, grad_output, cache):
        indices, input_shape = cache
        self._check_grad_shape(type(self).__name__, grad_output, indices.shape)
        return self._pool_backward(grad_output, indices, input_shape)

    def _pool(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _pool_backward(self, grad_output, indices, input_shape):  # pragma: no cover - abstract
        raise NotImplementedError


def _check_window(kernel_size, stride, padding, dilation, ceil_mode):
    """Construction-time validation of what can be checked without an input."""
    pool_params((_MAX_DIM, _MAX_DIM), kernel_size, stride, padding, dilation, ceil_mode)


class MaxPool2d(_ArgmaxLayer):
    """Max pooling layer; caches the argmax for ``backward``.

    Parameters are those of :func:`poolkit.max_pool2d`. ``forward(x)`` returns the pooled
    values (and the indices with ``return_indices=True``); ``backward(grad_output)`` routes
    the gradient to the cached argmax.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> pool = poolkit.MaxPool2d(2)
    >>> pool(np.array([[[[1., 3.], [2., 2.]]]]))
    array([[[[3.]]]])
    >>> pool.backward(np.array([[[[3.]]]]))
    array([[[[0., 3.],
             [0., 0.]]]])
    """

    _params = ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")

    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None,
                 padding: IntOrPair = 0, dilation: IntOrPair = 1, ceil_mode: bool = False,
                 return_indices: bool = False, n_threads: int | None = None) -> None:
        _check_window(kernel_size, stride, padding, dilation, ceil_mode)
        super().__init__(n_threads)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self.ceil_mode = ceil_mode
        self.return_indices = as_flag(return_indices, "return_indices")

    def _pool(self, x):
        return max_pool2d(
            x, self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode,
            return_indices=True, n_threads=self.n_threads,
        )

    def _pool_backward(self, grad_output, indices, input_shape):
        return max_pool2d_backward(grad_output, indices, input_shape, n_threads=self.n_threads,
                                   _trusted_indices=True)


class AvgPool2d(_AveragingLayer):
    """Average pooling layer; parameters are those of :func:`poolkit.avg_pool2d`.

    Examples
    --------
    >>> import numpy as np, poolkit
    >>> pool = poolkit.AvgPool2d(2)
    >>> pool(np.array([[[[1., 3.], [2., 2.]]]]))
    array([[[[2.]]]])
    >>> pool.backward(np.array([[[[2.]]]]))
    array([[[[0.5, 0.5],
             [0.5, 0.5]]]])
    """

    _params = ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
               "divisor_override")

    def __init__(self, kernel_size: IntOrPair, stride: IntOrPair | None = None,
                 padding: IntOrPair = 0, ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: int | None = None, n_threads: int | None = None) -> None:
        _check_window(kernel_size, stride, padding, 1, ceil_mode)
        check_divisor_override(divisor_override)
        super().__init__(n_threads)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override

    def _window_args(self):
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode,
                self.count_include_pad, self.divisor_override)

    def _pool(self, x):
        return avg_pool2d(x, *self._window_args(), n_threads=self.n_threads)

    def _pool_backward(self, grad_output, input_shape):
        return avg_pool2d_backward(grad_output, input_shape, *self._window_args(),
                                   n_threads=self.n_threads)
