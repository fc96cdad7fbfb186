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

# ``check_indices`` of max_pool2d_backward
CHECK_NONE: int  # indices from poolkit's own forward
CHECK_BEFORE: int  # all checked before anything is written (a user's out=)
CHECK_WHILE: int  # each plane's checked as it is scattered (a fresh output)

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
    check_indices: int,
    n_threads: int,
    stream: int = ...,  # -1 (default): stream large outputs; 0 never; 1 always
    gather: int = ...,  # 3x3 stride-2 windows' float32 planes: -1 (default) gather planes
    # larger than 32 KiB; 0 never; 1 whenever their indices allow
) -> int:
    """Scatter-add ``grad_output`` into ``grad_input`` at ``indices``.

    Returns the number of planes holding an index outside ``[0, H * W)`` (with CHECK_BEFORE,
    nothing has been written then); 0 on success.
    """

def win3_gather_plane(
    grad_output: npt.NDArray[np.float32],  # IN  (OH, OW)
    indices: npt.NDArray[np.int64],  # IN  (OH, OW), in [0, H * W)
    grad_input: npt.NDArray[np.float32],  # OUT (H, W): W == 2 OW >= 4, H == 2 OH - 1, 2 OH
    stream: bool = ...,
) -> tuple[bool, bool]:
    """The 3x3 windows' gather of max_pool2d_backward on one float32 plane (tests).

    Returns whether the first window row passes the kernel's probe, and whether the plane
    was gathered (False: an index lies outside its window).
    """
