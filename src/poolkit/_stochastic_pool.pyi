"""Stochastic pooling kernels, Zeiler & Fergus 2013 (stub of ``pyx/_stochastic_pool.pyx``).

Internal: the facade (``poolkit._stochastic``) validates every argument and allocates every
array. Arrays are C-contiguous ``(P, H, W)`` planes (``P = N * C``); the float arrays of one
call share one dtype, float32 or float64 (the kernels' fused ``floating`` type). Inputs are
finite and non-negative; planes that are not are counted in the return value.
"""

from typing import TypeVar

import numpy as np
import numpy.typing as npt

_F = TypeVar("_F", np.float32, np.float64)

def uniform_stream(key: int, g0: int, u: npt.NDArray[_F]) -> None:
    """Fill ``u`` with the stream's uniforms of the outputs ``g0 .. g0 + len(u) - 1`` (for the
    tests)."""

def stochastic_pool2d_train(
    x: npt.NDArray[_F],  # IN  (P, H, W)
    out: npt.NDArray[_F],  # OUT (P, OH, OW): sampled values
    indices: npt.NDArray[np.int64],  # OUT (P, OH, OW): sampled positions
    key: int,  # uint64 key of the counter-based random stream
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    ph: int,
    pw: int,
    n_threads: int,
) -> int:
    """Training forward: sample one position per window, with probability proportional to its
    value, from the counter-based stream keyed by ``key``.

    Returns the number of planes holding a negative, NaN or infinite value, or -1 when scratch
    memory could not be allocated.
    """

def stochastic_pool2d_train_uniforms(
    x: npt.NDArray[_F],  # IN  (P, H, W)
    u: npt.NDArray[_F],  # IN  (P, OH, OW): uniforms in [0, 1)
    out: npt.NDArray[_F],  # OUT (P, OH, OW): sampled values
    indices: npt.NDArray[np.int64],  # OUT (P, OH, OW): sampled positions
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    ph: int,
    pw: int,
    n_threads: int,
) -> int:
    """Training forward with uniforms drawn by the caller. Returns as
    :func:`stochastic_pool2d_train`."""

def stochastic_pool2d_infer(
    x: npt.NDArray[_F],  # IN  (P, H, W)
    out: npt.NDArray[_F],  # OUT (P, OH, OW)
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    ph: int,
    pw: int,
    n_threads: int,
) -> int:
    """Inference forward: ``sum(a**2) / sum(a)`` per window, 0 for a zero-sum window.

    Returns the number of planes holding a negative, NaN or infinite value, or -1 when scratch
    memory could not be allocated.
    """

def stochastic_pool2d_infer_backward(
    grad_output: npt.NDArray[_F],  # IN  (P, OH, OW)
    x: npt.NDArray[_F],  # IN  (P, H, W)
    grad_input: npt.NDArray[_F],  # OUT (P, H, W)
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    ph: int,
    pw: int,
    n_threads: int,
) -> int:
    """Gradient of the inference forward; overlapping windows accumulate.

    Returns the number of planes skipped (left zeroed) for holding a negative, NaN or infinite
    value of ``x``.
    """
