"""Average (mean) pooling kernels (stub of ``pyx/_avg_pool.pyx``).

Internal: the facade (``poolkit._pooling``) validates every argument and allocates every
array. Arrays are C-contiguous ``(P, H, W)`` planes (``P = N * C``); the arrays of one call
share one dtype, float32 or float64 (the kernels' fused ``floating`` type). The input may be
read-only; the output is written.
"""

from typing import TypeVar

import numpy as np
import numpy.typing as npt

_F = TypeVar("_F", np.float32, np.float64)

def avg_pool2d_forward(
    x: npt.NDArray[_F],  # IN  (P, H, W)
    out: npt.NDArray[_F],  # OUT (P, OH, OW)
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    ph: int,
    pw: int,
    count_include_pad: bool,
    divisor_override: int,  # 0: none
    n_threads: int,
) -> int:
    """Average pooling forward.

    Returns the number of planes skipped for want of scratch memory (0 on success).
    """

def avg_pool2d_backward(
    grad_output: npt.NDArray[_F],  # IN  (P, OH, OW)
    grad_input: npt.NDArray[_F],  # OUT (P, H, W)
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    ph: int,
    pw: int,
    count_include_pad: bool,
    divisor_override: int,  # 0: none
    n_threads: int,
    stream: int = ...,  # -1 (default): stream large 2x2 / 3x3-s2 outputs; 0 never; 1 if possible
) -> int:
    """Spread each output gradient over its window, divided by the window's divisor.

    Returns the number of planes skipped for want of scratch memory (0 on success).
    """
