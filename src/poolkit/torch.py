"""poolkit for PyTorch: autograd functions and ``torch.nn`` modules running poolkit's kernels.

Import it explicitly (``import poolkit.torch``); ``import poolkit`` alone never imports
PyTorch. Every module takes the constructor arguments of its ``torch.nn`` namesake and is a
subclass of it where PyTorch has one, so swapping is a one-line change::

    import poolkit.torch as pkt
    model = torch.nn.Sequential(conv1, torch.nn.ReLU(), pkt.MaxPool2d(2), ...)

=====================================  ===========================================
poolkit.torch                          torch.nn
=====================================  ===========================================
``MaxPool2d``                          ``torch.nn.MaxPool2d`` (subclass)
``AvgPool2d``                          ``torch.nn.AvgPool2d`` (subclass)
``AdaptiveAvgPool2d``                  ``torch.nn.AdaptiveAvgPool2d`` (subclass)
``AdaptiveMaxPool2d``                  ``torch.nn.AdaptiveMaxPool2d`` (subclass)
``GlobalAvgPool2d(keepdims=False)``    ``AdaptiveAvgPool2d(1)`` (+ ``Flatten`` unless keepdims)
``StochasticPool2d``                   none: Zeiler & Fergus (2013) stochastic pooling
=====================================  ===========================================

The functional forms (``max_pool2d``, ``avg_pool2d``, ...) take the arguments of
``torch.nn.functional``; the ``torch.autograd.Function`` classes (``MaxPool2dFunction``, ...)
are public too.

Tensors
    CPU, strided, float32 or float64, shape ``(N, C, H, W)`` or ``(C, H, W)``. A CUDA (or any
    non-CPU) tensor raises ``RuntimeError``; another dtype raises ``TypeError`` (nothing is
    cast silently). A contiguous input is handed to the kernels without a copy
    (``Tensor.numpy()`` shares memory) and results come back without one
    (``torch.from_numpy``); a non-contiguous input (channels-last, a slice) is copied once by
    poolkit. Outputs are NCHW-contiguous whatever the input's memory format.

Indices
    ``return_indices=True`` gives int64 tensors of flat positions ``h * W + w`` in the
    unpadded input plane: what ``torch.nn.functional.max_unpool2d`` takes.

Threads
    Each call runs with ``torch.get_num_threads()`` OpenMP threads, so
    ``torch.set_num_threads`` controls poolkit too. Results do not depend on the thread count.

Gradients
    Every function has a backward pass (first order only: the functions are
    ``once_differentiable``, so double backward raises). A non-contiguous ``grad_output`` is
    made contiguous first; an input that does not need a gradient gets none computed.

torch.compile
    The functional entry points are wrapped in ``torch.compiler.disable``: a compiled model
    runs poolkit's kernels eagerly between its graphs (a graph break per pooling call).

Differences from PyTorch
    Max pooling: a window holding NaN points at its *first* NaN (PyTorch: the last);
    poolkit rejects dilated windows that hold no input position (PyTorch accepts some and
    returns an out-of-plane index), and allows padding up to half the *dilated* kernel.
"""

from __future__ import annotations

import torch as _torch
from torch.autograd.function import once_differentiable as _once_differentiable

import poolkit as _pk

__all__ = [
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool2dFunction",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool2dFunction",
    "AvgPool2d",
    "AvgPool2dFunction",
    "GlobalAvgPool2d",
    "GlobalAvgPool2dFunction",
    "MaxPool2d",
    "MaxPool2dFunction",
    "StochasticPool2d",
    "StochasticPool2dFunction",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "avg_pool2d",
    "global_avg_pool2d",
    "max_pool2d",
    "stochastic_pool2d",
]

_FLOAT_DTYPES = (_torch.float32, _torch.float64)


# ----------------------------------------------------------------------------- helpers


def _check_tensor(t, name: str, op: str) -> None:
    """Raise a clear error unless ``t`` is a dense float32/float64 CPU tensor."""
    if not isinstance(t, _torch.Tensor):
        raise TypeError(f"poolkit.torch.{op}: {name} must be a torch.Tensor, got "
                        f"{type(t).__name__}")
    if t.device.type != "cpu":
        raise RuntimeError(
            f"poolkit.torch.{op}: {name} is on device '{t.device}', but poolkit runs on the CPU "
            f"only; move it with .cpu(), or use torch.nn's pooling on that device"
        )
    if t.layout != _torch.strided:
        raise TypeError(f"poolkit.torch.{op}: {name} must be a dense (strided) tensor, got "
                        f"layout {t.layout}")
    if t.dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"poolkit.torch.{op}: {name} must have dtype torch.float32 or torch.float64, got "
            f"{t.dtype}; convert it explicitly (.float() or .double()): poolkit never casts "
            f"silently"
        )


def _array(t):
    """A NumPy view of a CPU tensor (no copy; strides kept, poolkit copies if it must)."""
    return t.detach().resolve_conj().resolve_neg().numpy()


def _tensor(a):
    """A tensor sharing memory with a NumPy array poolkit returned (no copy)."""
    return _torch.from_numpy(a)


def _grad_array(g):
    """grad_output as a C-contiguous NumPy view (autograd often hands in expanded views)."""
    return _array(g.contiguous())


def _requires_grad(t) -> bool:
    return isinstance(t, _torch.Tensor) and t.requires_grad


def _threads() -> int:
    return max(1, _torch.get_num_threads())


def _opaque(fn):
    """Keep ``torch.compile`` out of a functional entry point: poolkit's kernels are opaque
    to it, so Dynamo runs them eagerly (a graph break) instead of tracing into NumPy code."""
    return _torch.compiler.disable(fn, recursive=True)


def _need(name: str):
    """poolkit's function ``name``, or a clear error when this build does not have it."""
    fn = getattr(_pk, name, None)
    if fn is None:
        raise NotImplementedError(
            f"poolkit {_pk.__version__} has no {name}(); poolkit.torch needs it for this module"
        )
    return fn


# The shared parts of the autograd functions' ``forward`` and ``backward``.


def _begin(ctx, x, op: str) -> None:
    """Start the forward of ``op``: check ``x``, let backward see None for unused gradients
    (not zeros) and keep ``x``'s shape for it."""
    _check_tensor(x, "input", op)
    ctx.set_materialize_grads(False)
    ctx.input_shape = tuple(x.shape)


def _keep_argmax(ctx, values, indices, return_indices: bool):
    """Save the argmax of a max-like forward for backward; the forward's result: the values
    as a tensor, and with ``return_indices`` the (not differentiable) indices too."""
    values, indices = _tensor(values), _tensor(indices)
    # Saved as a tensor: autograd's version counter then catches in-place changes to the
    # returned indices before backward trusts them.
    ctx.save_for_backward(indices)
    if return_indices:
        ctx.mark_non_differentiable(indices)
        return values, indices
    return values


def _argmax_grad(ctx, grad_values, backward: str):
    """The input gradient of a max-like forward, from the argmax it saved:
    ``poolkit.<backward>(grad_values, indices, input_shape)``; None when none is needed."""
    if not (ctx.needs_input_grad[0] and grad_values is not None):
        return None
    (indices,) = ctx.saved_tensors
    # The indices are the forward's own, so the bounds check is skipped.
    return _tensor(_need(backward)(
        _grad_array(grad_values), indices.numpy(), ctx.input_shape,
        n_threads=_threads(), _trusted_indices=True,
    ))


def _input_grad(ctx, grad_output, backward: str, *args):
    """``poolkit.<backward>(grad_output, input_shape, *args)`` as a tensor: the input gradient
    of a forward whose backward needs only the input's shape; None when none is needed."""
    if not (ctx.needs_input_grad[0] and grad_output is not None):
        return None
    return _tensor(_need(backward)(
        _grad_array(grad_output), ctx.input_shape, *args, n_threads=_threads()
    ))


# ----------------------------------------------------------------------------- max pooling


def _max_values(x, *args):
    """Max pooling values only (no indices: the kernel then writes none)."""
    return _tensor(_pk.max_pool2d(_array(x), *args, n_threads=_threads()))


class MaxPool2dFunction(_torch.autograd.Function):
    """Autograd function of :func:`poolkit.max_pool2d`.

    ``apply(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)`` returns the
    values, or ``(values, indices)`` with ``return_indices`` (int64 flat positions in the input
    plane, not differentiable). When ``x`` needs no gradient and no indices are asked for,
    none are computed.
    """

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
        _begin(ctx, x, "max_pool2d")
        args = (kernel_size, stride, padding, dilation, ceil_mode)
        if not (return_indices or ctx.needs_input_grad[0]):
            return _max_values(x, *args)
        values, indices = _pk.max_pool2d(_array(x), *args, return_indices=True,
                                          n_threads=_threads())
        return _keep_argmax(ctx, values, indices, return_indices)

    @staticmethod
    @_once_differentiable
    def backward(ctx, grad_values, grad_indices=None):
        grad_input = _argmax_grad(ctx, grad_values, "max_pool2d_backward")
        return grad_input, None, None, None, None, None, None


@_opaque
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """``torch.nn.functional.max_pool2d`` on poolkit's kernels (same arguments).

    Without ``return_indices``, under ``torch.no_grad()`` / ``torch.inference_mode()`` or for
    an input that does not require grad, no indices are computed (a faster kernel path).
    """
    if not return_indices and not (_torch.is_grad_enabled() and _requires_grad(input)):
        _check_tensor(input, "input", "max_pool2d")
        return _max_values(input, kernel_size, stride, padding, dilation, ceil_mode)
    return MaxPool2dFunction.apply(input, kernel_size, stride, padding, dilation, ceil_mode,
                                   bool(return_indices))


class MaxPool2d(_torch.nn.MaxPool2d):
    """``torch.nn.MaxPool2d`` on poolkit's kernels.

    ``MaxPool2d(kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
    ceil_mode=False)``, exactly as ``torch.nn.MaxPool2d`` (of which this is a subclass).
    With ``return_indices=True`` the forward returns ``(values, indices)``, the indices
    int64 and accepted by ``torch.nn.MaxUnpool2d``.
    """

    def forward(self, input):
        return max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                          self.ceil_mode, self.return_indices)


# ------------------------------------------------------------------------- average pooling


class AvgPool2dFunction(_torch.autograd.Function):
    """Autograd function of :func:`poolkit.avg_pool2d`.

    ``apply(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)``.
    """

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override):
        _begin(ctx, x, "avg_pool2d")
        ctx.args = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
        return _tensor(_pk.avg_pool2d(_array(x), *ctx.args, n_threads=_threads()))

    @staticmethod
    @_once_differentiable
    def backward(ctx, grad_output):
        grad_input = _input_grad(ctx, grad_output, "avg_pool2d_backward", *ctx.args)
        return grad_input, None, None, None, None, None, None


@_opaque
def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """``torch.nn.functional.avg_pool2d`` on poolkit's kernels (same arguments)."""
    return AvgPool2dFunction.apply(input, kernel_size, stride, padding, ceil_mode,
                                   count_include_pad, divisor_override)


class AvgPool2d(_torch.nn.AvgPool2d):
    """``torch.nn.AvgPool2d`` on poolkit's kernels.

    ``AvgPool2d(kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
    divisor_override=None)``, exactly as ``torch.nn.AvgPool2d`` (of which this is a subclass).
    """

    def forward(self, input):
        return avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                          self.count_include_pad, self.divisor_override)


# ---------------------------------------------------------------------- stochastic pooling


def _seed_from(generator) -> int:
    """One 63-bit int seed for poolkit, drawn from a torch.Generator (None: torch's default).

    ``torch.randint(0, 2**63 - 1, (), generator=generator)``: the draw advances the generator
    like any other torch random op, so ``torch.manual_seed`` / ``Generator.manual_seed`` make a
    sequence of training forwards reproducible. poolkit then derives its 64-bit key from the
    seed (``numpy.random.default_rng(seed)``).
    """
    return int(_torch.randint(0, 2**63 - 1, (), dtype=_torch.int64, generator=generator))


def _as_generator(generator):
    """None (torch's default generator), an int seed (a new generator) or a CPU Generator."""
    if generator is None or isinstance(generator, _torch.Generator):
        if generator is not None and generator.device.type != "cpu":
            raise ValueError(
                f"poolkit.torch.StochasticPool2d: generator must be a CPU torch.Generator, got "
                f"one on device '{generator.device}'"
            )
        return generator
    if isinstance(generator, bool) or not isinstance(generator, int):
        raise TypeError(
            f"generator must be None, an int seed or a torch.Generator, got {generator!r}"
        )
    return _torch.Generator().manual_seed(generator)


class StochasticPool2dFunction(_torch.autograd.Function):
    """Autograd function of :func:`poolkit.stochastic_pool2d`.

    ``apply(x, kernel_size, stride, padding, ceil_mode, training, seed, return_indices)``
    with an int ``seed`` (used in training only). Training returns the sampled values (and,
    with ``return_indices``, the sampled positions as int64) and routes the gradient to the
    sampled positions; inference returns ``sum(a^2) / sum(a)`` per window and differentiates
    it.
    """

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode, training, seed, return_indices):
        _begin(ctx, x, "stochastic_pool2d")
        stochastic_pool2d_ = _need("stochastic_pool2d")
        ctx.training = bool(training)
        ctx.window = (kernel_size, stride, padding, ceil_mode)
        if not ctx.training:
            if return_indices:
                raise ValueError(
                    "poolkit.torch.stochastic_pool2d: return_indices=True needs training=True "
                    "(inference weights the whole window and samples no position)"
                )
            out = _tensor(stochastic_pool2d_(_array(x), *ctx.window, training=False,
                                             n_threads=_threads()))
            if ctx.needs_input_grad[0]:
                ctx.save_for_backward(x)
            return out
        values, indices = stochastic_pool2d_(_array(x), *ctx.window, training=True, rng=seed,
                                             return_indices=True, n_threads=_threads())
        return _keep_argmax(ctx, values, indices, return_indices)

    @staticmethod
    @_once_differentiable
    def backward(ctx, grad_values, grad_indices=None):
        grad_input = None
        if ctx.needs_input_grad[0] and grad_values is not None:
            backward_ = _need("stochastic_pool2d_backward")
            (saved,) = ctx.saved_tensors
            g = _grad_array(grad_values)
            if ctx.training:
                grad_input = backward_(g, ctx.input_shape, saved.numpy(), n_threads=_threads())
            else:
                k, s, p, c = ctx.window
                grad_input = backward_(g, x=_array(saved), kernel_size=k, stride=s, padding=p,
                                       ceil_mode=c, n_threads=_threads())
            grad_input = _tensor(grad_input)
        return grad_input, None, None, None, None, None, None, None


@_opaque
def stochastic_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
                      training=True, generator=None, return_indices=False):
    """Stochastic pooling (Zeiler & Fergus, 2013) of non-negative activations.

    ``training=True`` samples one position per window with probability proportional to its
    activation (the gradient flows to it alone); ``training=False`` outputs the expectation
    ``sum(a^2) / sum(a)``. Randomness: one seed drawn from ``generator`` (a CPU
    ``torch.Generator``, or None for torch's default generator, which ``torch.manual_seed``
    seeds) per training call; an int is taken as a seed. Inference draws nothing. Negative,
    NaN or infinite activations raise ``ValueError``.
    """
    seed = None
    if training:
        seed = _seed_from(_as_generator(generator))
    return StochasticPool2dFunction.apply(input, kernel_size, stride, padding, ceil_mode,
                                          bool(training), seed, bool(return_indices))


class StochasticPool2d(_torch.nn.Module):
    """Stochastic pooling (Zeiler & Fergus, ICLR 2013); PyTorch has no such module.

    ``StochasticPool2d(kernel_size, stride=None, padding=0, ceil_mode=False, generator=None,
    return_indices=False)``. Inputs must be finite and >= 0 (put it after a ReLU).

    * ``module.train()`` (the default): every window samples one position ``i`` with
      probability ``a_i / sum(a)`` and outputs ``a_i``; the gradient flows to that position.
    * ``module.eval()``: every window outputs the expectation ``sum(a^2) / sum(a)``
      (deterministic), with its exact gradient.

    ``generator``: None draws from torch's default CPU generator (so ``torch.manual_seed``
    makes training reproducible); a ``torch.Generator`` (CPU) is used and advanced as is; an
    int seeds a generator the module owns. Each training forward draws one 63-bit seed with
    ``torch.randint(0, 2**63 - 1, (), generator=...)`` and hands it to poolkit, whose result
    for a given seed is the same for any thread count. Pickling the module (``torch.save`` of
    the whole module) keeps its generator's state; the ``state_dict`` is empty, as for every
    pooling module.

    With ``return_indices=True`` the forward returns ``(values, indices)`` in training (int64
    sampled positions, as max pooling's) and ``(values, None)`` in eval mode.
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, generator=None,
                 return_indices=False):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.return_indices = return_indices
        self.generator = _as_generator(generator)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, ceil_mode={self.ceil_mode}")

    def forward(self, input):
        if self.training:
            return stochastic_pool2d(input, self.kernel_size, self.stride, self.padding,
                                     self.ceil_mode, True, self.generator, self.return_indices)
        values = stochastic_pool2d(input, self.kernel_size, self.stride, self.padding,
                                   self.ceil_mode, False)
        return (values, None) if self.return_indices else values


# ------------------------------------------------------------------------- global pooling


class GlobalAvgPool2dFunction(_torch.autograd.Function):
    """Autograd function of :func:`poolkit.global_avg_pool2d`: ``apply(x, keepdims)``."""

    @staticmethod
    def forward(ctx, x, keepdims):
        _begin(ctx, x, "global_avg_pool2d")
        return _tensor(_need("global_avg_pool2d")(_array(x), keepdims, n_threads=_threads()))

    @staticmethod
    @_once_differentiable
    def backward(ctx, grad_output):
        return _input_grad(ctx, grad_output, "global_avg_pool2d_backward"), None


@_opaque
def global_avg_pool2d(input, keepdims=False):
    """Mean of every plane: ``(N, C, H, W) -> (N, C)``, or ``(N, C, 1, 1)`` with keepdims.

    Sums are accumulated in float64 for both dtypes (see :func:`poolkit.global_avg_pool2d`).
    """
    return GlobalAvgPool2dFunction.apply(input, keepdims)


class GlobalAvgPool2d(_torch.nn.Module):
    """Global average pooling: ``GlobalAvgPool2d(keepdims=False)``.

    ``(N, C, H, W) -> (N, C)``: what ``torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1),
    torch.nn.Flatten())`` computes; with ``keepdims=True``, ``(N, C, 1, 1)`` like
    ``torch.nn.AdaptiveAvgPool2d(1)``.
    """

    def __init__(self, keepdims=False):
        super().__init__()
        self.keepdims = keepdims

    def extra_repr(self):
        return f"keepdims={self.keepdims}"

    def forward(self, input):
        return global_avg_pool2d(input, self.keepdims)


# ----------------------------------------------------------------------- adaptive pooling


class AdaptiveAvgPool2dFunction(_torch.autograd.Function):
    """Autograd function of :func:`poolkit.adaptive_avg_pool2d`: ``apply(x, output_size)``."""

    @staticmethod
    def forward(ctx, x, output_size):
        _begin(ctx, x, "adaptive_avg_pool2d")
        return _tensor(_need("adaptive_avg_pool2d")(_array(x), output_size,
                                                    n_threads=_threads()))

    @staticmethod
    @_once_differentiable
    def backward(ctx, grad_output):
        return _input_grad(ctx, grad_output, "adaptive_avg_pool2d_backward"), None


@_opaque
def adaptive_avg_pool2d(input, output_size):
    """``torch.nn.functional.adaptive_avg_pool2d`` on poolkit's kernels (same arguments)."""
    return AdaptiveAvgPool2dFunction.apply(input, output_size)


class AdaptiveAvgPool2d(_torch.nn.AdaptiveAvgPool2d):
    """``torch.nn.AdaptiveAvgPool2d(output_size)`` on poolkit's kernels (a subclass of it).

    ``output_size``: an int or an ``(h, w)`` pair whose entries may be None (keep the input's
    size along that axis).
    """

    def forward(self, input):
        return adaptive_avg_pool2d(input, self.output_size)


class AdaptiveMaxPool2dFunction(_torch.autograd.Function):
    """Autograd function of :func:`poolkit.adaptive_max_pool2d`.

    ``apply(x, output_size, return_indices)``: the values, or ``(values, indices)``.
    """

    @staticmethod
    def forward(ctx, x, output_size, return_indices):
        _begin(ctx, x, "adaptive_max_pool2d")
        values, indices = _need("adaptive_max_pool2d")(_array(x), output_size,
                                                       return_indices=True,
                                                       n_threads=_threads())
        return _keep_argmax(ctx, values, indices, return_indices)

    @staticmethod
    @_once_differentiable
    def backward(ctx, grad_values, grad_indices=None):
        return _argmax_grad(ctx, grad_values, "adaptive_max_pool2d_backward"), None, None


@_opaque
def adaptive_max_pool2d(input, output_size, return_indices=False):
    """``torch.nn.functional.adaptive_max_pool2d`` on poolkit's kernels (same arguments)."""
    return AdaptiveMaxPool2dFunction.apply(input, output_size, bool(return_indices))


class AdaptiveMaxPool2d(_torch.nn.AdaptiveMaxPool2d):
    """``torch.nn.AdaptiveMaxPool2d(output_size, return_indices=False)`` on poolkit's kernels
    (a subclass of it). Indices are int64 flat positions in the input plane, as PyTorch's.
    """

    def forward(self, input):
        return adaptive_max_pool2d(input, self.output_size, self.return_indices)
