"""Max unpooling kernels (stub of ``pyx/_max_unpool.pyx``).

Internal: the facade (``poolkit._unpool``) validates every argument and allocates every array.
Arrays are C-contiguous flattened planes: ``(P, M)`` on the pooled side (values, indices,
input gradient), ``(P, OHW)`` on the unpooled side (``P = N * C``). The float arrays of one
call share one dtype, float32 or float64 (the kernels' fused ``floating`` type).
"""

from typing import TypeVar

import numpy as np
import numpy.typing as npt

_F = TypeVar("_F", np.float32, np.float64)

def max_unpool2d_forward(
    x: npt.NDArray[_F],  # IN  (P, M)
    indices: npt.NDArray[np.int64],  # IN  (P, M)
    out: npt.NDArray[_F],  # OUT (P, OHW)
    check_indices: bool,
    n_threads: int,
) -> int:
    """``out[p] = 0; out[p, indices[p, i]] = x[p, i]`` for i in order.

    Returns the number of planes holding an index outside ``[0, OHW)`` (then nothing has been
    written); 0 on success.
    """

def max_unpool2d_backward(
    grad_output: npt.NDArray[_F],  # IN  (P, OHW)
    indices: npt.NDArray[np.int64],  # IN  (P, M)
    grad_input: npt.NDArray[_F],  # OUT (P, M)
    check_indices: bool,
    n_threads: int,
) -> int:
    """``grad_input[p, i] = grad_output[p, indices[p, i]]``.

    Returns the number of planes holding an index outside ``[0, OHW)`` (then nothing has been
    written); 0 on success.
    """
