"""Input conversion and output checks shared by every function of the facade.

Kernels see ``(P, H, W)`` C-contiguous native-endian planes (``P = N * C``) of float32 or
float64; this module gets arrays into that form, copying only when it must, and checks
user-supplied ``out=`` arrays.
"""

from __future__ import annotations

import math

import numpy as np

from ._params import _MAX_DIM

FLOAT_TYPES = (np.float32, np.float64)


def as_float_input(x, name: str = "x") -> np.ndarray:
    """``x`` as a float32/float64 3-D or 4-D ndarray (any layout; no copy made here)."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    if x.dtype.type not in FLOAT_TYPES:
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {x.dtype}; convert it explicitly "
            f"(poolkit never casts silently)"
        )
    if x.ndim not in (3, 4):
        raise ValueError(
            f"{name} must be 4-D (N, C, H, W) or 3-D (C, H, W), got {x.ndim}-D with shape "
            f"{x.shape}"
        )
    return x


def check_plane(shape, name: str = "x") -> None:
    H, W = shape[-2], shape[-1]
    if H == 0 or W == 0:
        raise ValueError(f"{name} must have H > 0 and W > 0, got shape {tuple(shape)}")
    if H > _MAX_DIM or W > _MAX_DIM:
        raise ValueError(f"{name} has a plane side above {_MAX_DIM}: shape {tuple(shape)}")


def check_nbytes(shape, dtype, name: str) -> None:
    """ValueError when an array of ``shape`` and ``dtype`` could not exist: its size overflows
    what a NumPy array can address (NumPy's own rule: zero-length axes count as 1)."""
    nbytes = math.prod(max(int(v), 1) for v in shape) * np.dtype(dtype).itemsize
    if nbytes > np.iinfo(np.intp).max:
        raise ValueError(
            f"{name} {tuple(shape)} is too large: an array of that shape and dtype "
            f"{np.dtype(dtype)} would need {nbytes} bytes, more than a NumPy array can address"
        )


def as_planes(x: np.ndarray) -> np.ndarray:
    """A C-contiguous, native-endian ``(P, H, W)`` view or copy of a 3-D/4-D array."""
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="), order="C")
    x = np.ascontiguousarray(x)
    # P spelled out, not -1: NumPy cannot infer -1 when a plane has no elements
    return x.reshape((math.prod(x.shape[:-2]),) + x.shape[-2:])


def check_out(out, shape: tuple, dtype, name: str = "out", inputs=()) -> np.ndarray:
    """Validate a user-supplied output array; return it unchanged."""
    if not isinstance(out, np.ndarray):
        raise ValueError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    if out.dtype != np.dtype(dtype):
        raise ValueError(f"{name} must have dtype {np.dtype(dtype)}, got {out.dtype}")
    if not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writable (got a read-only array)")
    for arr in inputs:
        if arr is not None and may_overlap(out, arr):
            raise ValueError(f"{name} must not overlap the input arrays")
    return out


def may_overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays share memory (True also when that is too costly to decide)."""
    try:
        return np.shares_memory(a, b, max_work=max(a.size, 1) * 4)
    except np.exceptions.TooHardError:
        return True


def output(out, shape, dtype, name="out", inputs=()) -> np.ndarray:
    """``out`` checked, or a new C-contiguous array when ``out`` is None."""
    if out is None:
        try:
            return np.empty(shape, dtype=dtype)
        except ValueError:
            # NumPy's "array is too big": a result whose size overflows 64 bits (from a huge
            # input_shape or output_size). Say which shape.
            raise ValueError(
                f"the result would have shape {tuple(shape)} and dtype {np.dtype(dtype)}: more "
                f"bytes than a NumPy array can address (2**63 - 1)"
            ) from None
    return check_out(out, shape, dtype, name, inputs)
