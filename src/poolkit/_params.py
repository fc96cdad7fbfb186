"""Parameter normalisation and output-shape arithmetic, shared by every pooling function.

Everything here is plain Python integer arithmetic (unbounded), so that huge or hostile
values produce a clear ``ValueError``/``TypeError`` before anything is allocated, and every
number handed to a kernel is known to be valid and to fit in 64 bits.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import NamedTuple

import numpy as np

# Every size, count and parameter that reaches a kernel is below this bound, so products such
# as ``oh * stride`` or ``h * W + w`` fit in a signed 64-bit integer with room to spare.
_MAX_DIM = 2**31 - 1
# Padded window placements checked for holding an input position (see _check_windows_hit_input).
_MAX_WINDOW_CHECK = 2**24


def as_int(value, name: str) -> int:
    """``value`` as a Python int; TypeError for bools, floats and anything not integral."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got the bool {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an int or a pair of ints, got {value!r} of type "
            f"{type(value).__name__}"
        ) from None


def pair(value, name: str) -> tuple[int, int]:
    """Normalise an int or an ``(h, w)`` pair to a pair of Python ints."""
    if isinstance(value, (tuple, list, np.ndarray)):
        seq = list(value) if not isinstance(value, np.ndarray) else value.tolist()
        if isinstance(value, np.ndarray) and value.ndim != 1:
            raise ValueError(f"{name} must be an int or a pair (h, w), got {value!r}")
        if len(seq) != 2:
            raise ValueError(
                f"{name} must be an int or a pair (h, w), got a sequence of length {len(seq)}: "
                f"{value!r}"
            )
        return as_int(seq[0], name), as_int(seq[1], name)
    v = as_int(value, name)
    return v, v


class Pool2dParams(NamedTuple):
    """Validated window parameters and the output size they give on a given input."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    ceil_mode: bool
    out_hw: tuple[int, int]


def output_size(L: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """DESIGN.md's output size along one axis (integer arithmetic, no floats)."""
    e = d * (k - 1) + 1
    span = L + 2 * p - e      # may be negative: then only ceil mode can give an output
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= L + p:
        out -= 1
    return out


def as_flag(value, name: str) -> bool:
    """``bool(value)`` for a truthy-flag parameter (``return_indices``), with an error that
    names it instead of NumPy's "truth value of an array ... is ambiguous"."""
    try:
        return bool(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a bool, got {value!r}") from None


def check_bool(value, name: str) -> bool:
    """``value`` as a bool; TypeError naming ``name`` unless it is a Python or NumPy bool (for
    switches such as ``ceil_mode`` and ``keepdims``, where a truthy stand-in is a mistake)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def pool_params(in_hw, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Validate sliding-window parameters against an input plane of size ``in_hw``.

    Raises ValueError naming the parameter and its value for: kernel, stride or dilation < 1;
    padding < 0 or more than half the effective kernel; an output size < 1; a window that holds
    no input position. Results for hashable arguments are memoised: a training loop calls this
    with the same few configurations over and over, and the facade's per-call overhead matters
    for small inputs.
    """
    try:
        return _pool_params_cached(in_hw, kernel_size, stride, padding, dilation, ceil_mode,
                                   _types(kernel_size), _types(stride), _types(padding),
                                   _types(dilation), type(ceil_mode))
    except TypeError as exc:
        if "unhashable" not in str(exc):
            raise
    return _pool_params(in_hw, kernel_size, stride, padding, dilation, ceil_mode)


def _types(value):
    """The cache-key part that tells apart equal values of different types: ``2`` / ``2.0``
    / ``True``, and also ``(2, 2)`` / ``(2.0, 2)`` / ``(True, 2)`` (equal, equally hashed
    tuples whose entries differ in type)."""
    if isinstance(value, tuple):
        return (tuple,) + tuple(map(_types, value))
    return type(value)


@functools.lru_cache(maxsize=512)
def _pool_params_cached(in_hw, kernel_size, stride, padding, dilation, ceil_mode, *types):
    # ``types`` keeps 2 and 2.0, or (2, 2) and (2.0, 2) (equal and of equal hash), from
    # sharing an entry: only the int forms are valid.
    return _pool_params(in_hw, kernel_size, stride, padding, dilation, ceil_mode)


def _pool_params(
    in_hw: tuple[int, int],
    kernel_size,
    stride=None,
    padding=0,
    dilation=1,
    ceil_mode=False,
) -> Pool2dParams:
    k = pair(kernel_size, "kernel_size")
    s = k if stride is None else pair(stride, "stride")
    p = pair(padding, "padding")
    d = pair(dilation, "dilation")
    ceil_mode = check_bool(ceil_mode, "ceil_mode")
    for name, vals, low in (("kernel_size", k, 1), ("stride", s, 1), ("dilation", d, 1),
                            ("padding", p, 0)):
        for v in vals:
            if v < low:
                raise ValueError(f"{name} must be >= {low}, got {_show(vals)}")
            if v > _MAX_DIM:
                raise ValueError(f"{name} must be at most {_MAX_DIM}, got {_show(vals)}")
    out = []
    for axis, L in enumerate(in_hw):
        e = d[axis] * (k[axis] - 1) + 1
        if 2 * p[axis] > e:
            raise ValueError(
                f"padding must be at most half the effective kernel size "
                f"(dilation * (kernel_size - 1) + 1 = {e} along {'HW'[axis]}), got padding="
                f"{_show(p)}"
            )
        o = output_size(L, k[axis], s[axis], p[axis], d[axis], ceil_mode)
        if o < 1:
            raise ValueError(
                f"output size along {'HW'[axis]} would be {o} < 1 for input size {L} with "
                f"kernel_size={_show(k)}, stride={_show(s)}, padding={_show(p)}, "
                f"dilation={_show(d)}, ceil_mode={ceil_mode}"
            )
        _check_windows_hit_input(L, k[axis], s[axis], p[axis], d[axis], o, axis)
        out.append(o)
    return Pool2dParams(k, s, p, d, ceil_mode, (out[0], out[1]))


def _check_windows_hit_input(L, k, s, p, d, n_out, axis):
    """Every window along this axis must hold at least one input position.

    A window starting at ``start >= 0`` holds ``start`` itself (starts never reach ``L``: the
    output-size rule sees to that). A window starting at ``start < 0`` first reaches the input
    at ``start mod d`` — within its ``k`` taps, since padding is at most half the effective
    kernel — so it misses the input exactly when ``start mod d >= L``. The starts of those
    windows form the progression ``o * s - p``, whose residues mod ``d`` repeat every
    ``d / gcd(s, d)`` windows: checking one period (vectorised) decides every window.
    """
    if d == 1 or p == 0 or L >= d:
        return
    n_neg = min(n_out, -(-p // s))          # windows whose start is negative
    n_check = min(n_neg, d // math.gcd(s, d))
    if n_check > _MAX_WINDOW_CHECK:
        raise ValueError(
            f"dilation={d} with padding={p} along {'HW'[axis]} gives {n_check} distinct "
            f"padded window placements to validate; poolkit supports at most "
            f"{_MAX_WINDOW_CHECK}"
        )
    starts = np.arange(n_check, dtype=np.int64) * s - p
    missing = np.flatnonzero(np.mod(starts, d) >= L)
    if missing.size:
        o = int(missing[0])
        start = o * s - p
        raise ValueError(
            f"the window of output {o} along {'HW'[axis]} (positions {start}, "
            f"{start + d}, ..., {start + (k - 1) * d}) holds no input position of the "
            f"{L} there (kernel_size={k}, stride={s}, padding={p}, dilation={d}); "
            f"reduce padding or dilation"
        )


def _show(vals):
    return vals[0] if vals[0] == vals[1] else vals


def check_divisor_override(divisor_override):
    if divisor_override is None:
        return 0
    v = as_int(divisor_override, "divisor_override")
    if v == 0:
        raise ValueError("divisor_override must not be 0 (use None for the window size)")
    if abs(v) > _MAX_DIM:
        raise ValueError(f"divisor_override must be at most {_MAX_DIM} in magnitude, got {v}")
    return v
