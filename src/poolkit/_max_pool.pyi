"""Max pooling kernels (stub of ``pyx/_max_pool.pyx``).

Internal: the facade (``poolkit._pooling``) validates every argument and allocates every
array. Arrays are C-contiguous ``(P, H, W)`` planes (``P = N * C``); the float arrays of one
call share one dtype, float32 or float64 (the kernels' fused ``floating`` type). ``x`` and
``grad_output`` may be read-only; the other arrays are written.
"""

from typing import TypeVar

import numpy as np
import numpy.typing as npt

_F = TypeVar("_F", np.float32, np.float64)

def max_pool2d_forward(
    x: npt.NDArray[_F],  # IN  (P, H, W)
    out: npt.NDArray[_F],  # OUT (P, OH, OW)
    indices: npt.NDArray[np.int64] | None,  # OUT (P, OH, OW), or None: values only
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    ph: int,
    pw: int,
    dh: int,
    dw: int,
    n_threads: int,
) -> int:
    """Max pooling forward, with the argmax (flat ``h * W + w``) when ``indices`` is given.

    Returns the number of planes skipped for want of scratch memory (0 on success).
    """

def max_pool2d_backward(
    grad_output: npt.NDArray[_F],  # IN  (P, OH, OW)
    indices: npt.NDArray[np.int64],  # IN  (P, OH, OW)
    grad_input: npt.NDArray[_F],  # OUT (P, H, W)
    check_indices: bool,
    n_threads: int,
) -> int:
    """Scatter-add ``grad_output`` into ``grad_input`` at ``indices``.

    Returns the number of planes holding an index outside ``[0, H * W)`` (then nothing has
    been written); 0 on success.
    """
