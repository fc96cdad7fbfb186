"""Adaptive average and adaptive max pooling kernels (stub of ``pyx/_adaptive_pool.pyx``).

Internal: the facade (``poolkit._adaptive``) validates every argument and allocates every
array. Arrays are C-contiguous ``(P, H, W)`` planes (``P = N * C``); the float arrays of one
call share one dtype, float32 or float64 (the kernels' fused ``floating`` type); the output
size is the shape of ``out`` / ``grad_output``. Inputs may be read-only; outputs are written.
"""

from typing import TypeVar

import numpy as np
import numpy.typing as npt

_F = TypeVar("_F", np.float32, np.float64)

def adaptive_avg_pool2d_forward(
    x: npt.NDArray[_F],  # IN  (P, H, W)
    out: npt.NDArray[_F],  # OUT (P, OH, OW)
    n_threads: int,
) -> int:
    """Window means (each window summed in double, rounded once).

    Returns the number of output rows skipped for want of scratch memory (0 on success).
    """

def adaptive_avg_pool2d_backward(
    grad_output: npt.NDArray[_F],  # IN  (P, OH, OW)
    grad_input: npt.NDArray[_F],  # OUT (P, H, W)
    n_threads: int,
) -> None:
    """Spread ``grad_output / window size`` over each window; overlaps accumulate."""

def adaptive_max_pool2d_forward(
    x: npt.NDArray[_F],  # IN  (P, H, W)
    out: npt.NDArray[_F],  # OUT (P, OH, OW)
    indices: npt.NDArray[np.int64],  # OUT (P, OH, OW): flat h * W + w of the winner
    n_threads: int,
) -> None:
    """Window maxima and their argmax (ties: first position; the first NaN wins)."""
