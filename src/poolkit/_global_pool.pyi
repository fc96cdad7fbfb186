"""Global average and global max pooling kernels (stub of ``pyx/_global_pool.pyx``).

Internal: the facade (``poolkit._global``) validates every argument and allocates every array,
scratch included. Inputs are C-contiguous flattened planes ``(P, HW)`` (``P = N * C``,
``HW >= 1``); per-plane results are ``(P,)``. The float arrays of one call share one dtype,
float32 or float64 (the kernels' fused ``floating`` type). Results are bitwise the same for
every thread count.
"""

from typing import TypeVar

import numpy as np
import numpy.typing as npt

_F = TypeVar("_F", np.float32, np.float64)

CHUNK: int
"""Most elements of one plane a chunk holds; chunks start at multiples of it."""

PLANES_PER_THREAD: int
"""With at least this many planes per thread the forward kernels take whole planes and never
read their scratch arrays (which may then be None)."""

def n_chunks(hw: int) -> int:
    """Number of chunks a plane of ``hw`` elements is cut into (the scratch size per plane)."""

def global_avg_pool2d_forward(
    x: npt.NDArray[_F],  # IN  (P, HW)
    out: npt.NDArray[_F],  # OUT (P,)
    partial: npt.NDArray[np.float64] | None,  # SCRATCH (P * n_chunks(HW),) or None
    n_threads: int,
) -> None:
    """``out[p] = sum(x[p]) / HW``, the sum taken in double."""

def global_avg_pool2d_backward(
    grad_output: npt.NDArray[_F],  # IN  (P,)
    grad_input: npt.NDArray[_F],  # OUT (P, HW)
    n_threads: int,
) -> None:
    """``grad_input[p, :] = grad_output[p] / HW`` (divided in double, rounded once)."""

def global_max_pool2d_forward(
    x: npt.NDArray[_F],  # IN  (P, HW)
    out: npt.NDArray[_F],  # OUT (P,)
    indices: npt.NDArray[np.int64],  # OUT (P,): flat h * W + w of the winner
    part_v: npt.NDArray[_F] | None,  # SCRATCH (P * n_chunks(HW),) or None
    part_i: npt.NDArray[np.int64] | None,  # SCRATCH (P * n_chunks(HW),) or None
    n_threads: int,
) -> None:
    """Maximum of each plane and the position of its first occurrence (or first NaN)."""

def global_max_pool2d_backward(
    grad_output: npt.NDArray[_F],  # IN  (P,)
    indices: npt.NDArray[np.int64],  # IN  (P,): each in [0, HW), checked by the facade
    grad_input: npt.NDArray[_F],  # OUT (P, HW)
    n_threads: int,
) -> None:
    """Zero every plane, then put ``grad_output[p]`` at ``indices[p]``."""
