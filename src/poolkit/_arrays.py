"""Input conversion and output checks shared by every function of the facade.

Kernels see ``(P, H, W)`` C-contiguous native-endian planes (``P = N * C``) of float32 or
float64; this module gets arrays into that form, copying only when it must, checks what the
backward functions are given (``input_shape``, argmax ``indices``) and checks user-supplied
``out=`` arrays.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ._params import _MAX_DIM, as_int

FLOAT_TYPES = (np.float32, np.float64)


# ------------------------------------------------------------------------------- inputs


def native(dtype) -> np.dtype:
    """``dtype`` in native byte order (the dtype of every result)."""
    dtype = np.dtype(dtype)
    return dtype if dtype.isnative else dtype.newbyteorder("=")  # (newbyteorder: 0.25 us)


def _check_float_dtype(a: np.ndarray, name: str) -> None:
    if a.dtype.type not in FLOAT_TYPES:
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {a.dtype}; convert it explicitly "
            f"(poolkit never casts silently)"
        )


def as_float_array(a, name: str) -> np.ndarray:
    """A float32/float64 ndarray of any shape (no copy here)."""
    a = np.asarray(a)
    _check_float_dtype(a, name)
    return a


def as_float_input(x, name: str = "x") -> np.ndarray:
    """``x`` as a float32/float64 3-D or 4-D ndarray (any layout; no copy made here)."""
    if not isinstance(x, np.ndarray):
        x = np.asarray(x)
    _check_float_dtype(x, name)
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


_INTP_MAX = int(np.iinfo(np.intp).max)     # (np.iinfo costs a microsecond a call)
_INT64_MAX = int(np.iinfo(np.int64).max)


def check_nbytes(shape, dtype, name: str) -> None:
    """ValueError when an array of ``shape`` and ``dtype`` could not exist: its size overflows
    what a NumPy array can address (NumPy's own rule: zero-length axes count as 1)."""
    if min(shape, default=1) >= 1:
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
    else:
        nbytes = math.prod([max(int(v), 1) for v in shape]) * np.dtype(dtype).itemsize
    if nbytes > _INTP_MAX:
        raise ValueError(
            f"{name} {tuple(shape)} is too large: an array of that shape and dtype "
            f"{np.dtype(dtype)} would need {nbytes} bytes, more than a NumPy array can address"
        )


def as_planes(x: np.ndarray) -> np.ndarray:
    """A C-contiguous, native-endian ``(P, H, W)`` view or copy of a 3-D/4-D array."""
    if not x.dtype.isnative:
        x = x.astype(x.dtype.newbyteorder("="), order="C")
    return planes_of(np.ascontiguousarray(x))


def planes_of(arr: np.ndarray) -> np.ndarray:
    """A ``(P, h, w)`` view of a C-contiguous 3-D or 4-D array (for the kernels); P spelled
    out, since NumPy cannot infer -1 for an array whose planes have no elements."""
    return arr.reshape((math.prod(arr.shape[:-2]),) + arr.shape[-2:])


def flat_planes(x: np.ndarray) -> np.ndarray:
    """``x`` as C-contiguous native ``(P, H * W)`` rows (a view when ``x`` already is one)."""
    hw = x.shape[-2] * x.shape[-1]
    if hw and x.flags.c_contiguous and x.dtype.isnative:  # the usual case: one reshape
        return x.reshape(x.size // hw, hw)
    planes = as_planes(x)
    return planes.reshape(planes.shape[0], planes.shape[1] * planes.shape[2])


# ------------------------------------------------------------- what backward functions get


def as_input_shape(input_shape: Sequence[int], ndim: int | None = None) -> tuple[int, ...]:
    """A backward function's ``input_shape`` as a tuple of non-negative Python ints.

    It must have ``ndim`` entries (the number of dimensions of ``grad_output``), or 3 or 4 when
    ``ndim`` is None. :func:`check_input_size` checks the plane and the size.
    """
    if type(input_shape) is tuple and all(type(v) is int for v in input_shape):
        shape = input_shape  # the common case, a shape tuple (a microsecond saved a call)
    else:
        try:
            shape = tuple([as_int(v, "input_shape") for v in input_shape])
        except TypeError:
            raise TypeError(f"input_shape must be a tuple of ints, got {input_shape!r}") from None
    if ndim is None and len(shape) not in (3, 4):
        raise ValueError(
            f"input_shape must be (N, C, H, W) or (C, H, W), got {len(shape)} dimensions: "
            f"{shape}"
        )
    if ndim is not None and len(shape) != ndim:
        raise ValueError(
            f"input_shape must have as many dimensions as grad_output ({ndim}), got {shape}"
        )
    if shape and min(shape) < 0:
        raise ValueError(f"input_shape must not be negative, got {shape}")
    return shape


def check_input_size(shape: tuple[int, ...], dtype) -> None:
    """ValueError for an ``input_shape`` with an empty or oversized plane, or whose gradient of
    ``dtype`` would be too large to exist (checked before any input is copied)."""
    check_plane(shape, "input_shape")
    check_nbytes(shape, dtype, "input_shape")


def check_input_shape(input_shape: Sequence[int], grad_output: np.ndarray) -> tuple[int, ...]:
    """Validate ``input_shape`` of a backward function against its ``grad_output``."""
    shape = as_input_shape(input_shape, grad_output.ndim)
    if shape[:-2] != grad_output.shape[:-2]:
        raise ValueError(
            f"input_shape {shape} and grad_output shape {grad_output.shape} disagree on the "
            f"leading (batch, channel) dimensions"
        )
    check_input_size(shape, grad_output.dtype)
    return shape


def check_indices(indices, shape: Sequence[int], what: str = "grad_output") -> np.ndarray:
    """User indices as an integer ndarray of the shape of ``what`` (no copy, no bounds check)."""
    indices = np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise TypeError(f"indices must have an integer dtype, got {indices.dtype}")
    if indices.shape != tuple(shape):
        raise ValueError(
            f"indices must have the shape of {what} {tuple(shape)}, got {indices.shape}"
        )
    return indices


def check_int64_range(indices: np.ndarray) -> None:
    """ValueError for unsigned indices too large for the kernels' int64."""
    if indices.dtype.kind == "u" and indices.size and indices.max() > _INT64_MAX:
        raise ValueError("indices hold values above the int64 range")


def as_indices(indices, shape: Sequence[int]) -> np.ndarray:
    """User indices as C-contiguous native int64 of the given shape (not yet bounds-checked)."""
    indices = check_indices(indices, shape)
    check_int64_range(indices)
    return np.ascontiguousarray(indices, dtype=np.int64)


def raise_bad_indices(indices: np.ndarray, plane_size: int) -> None:
    """Raise the ValueError for the first (C order) index outside ``[0, plane_size)``."""
    bad = np.flatnonzero((indices < 0) | (indices >= plane_size))
    pos = np.unravel_index(bad[0], indices.shape)
    raise ValueError(
        f"indices must lie in [0, H * W) = [0, {plane_size}); indices{tuple(map(int, pos))} "
        f"= {int(indices[pos])} does not"
    )


# ------------------------------------------------------------------------------- outputs


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
    if not np.may_share_memory(a, b):  # disjoint address ranges: the usual case, cheap
        return False
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


def split_out_pair(out: Any, return_indices: bool) -> tuple[Any, Any]:
    """``out=`` is an array, or a pair (values, indices) when indices are returned (each part
    is checked later, by ``output``)."""
    if out is None:
        return None, None
    if return_indices:
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise ValueError(
                "with return_indices=True, out must be a pair (values, indices), got "
                f"{type(out).__name__}"
            )
        return out[0], out[1]
    return out, None


def argmax_outputs(out, shape: tuple, x: np.ndarray, return_indices: bool,
                   with_indices: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """The values (dtype of ``x``) and int64 indices arrays of a max pooling of ``x``.

    Each is taken from ``out`` (a pair when ``return_indices``) once checked, or made new;
    indices are None when ``with_indices`` is False (the kernel then writes none).
    """
    out_v, out_i = split_out_pair(out, return_indices)
    values = output(out_v, shape, native(x.dtype), "out[0]" if return_indices else "out", (x,))
    if not with_indices:
        return values, None
    return values, output(out_i, shape, np.int64, "out[1]", (x, values))
