"""poolkit: fast, trustworthy 2-D pooling for NCHW NumPy arrays, forward and backward.

Functions (``poolkit.max_pool2d`` ...) validate their inputs and run OpenMP-parallel Cython
kernels; layer classes (``poolkit.MaxPool2d`` ...) cache what their ``backward`` needs;
``poolkit.reference`` holds the same operations as plain Python loops, the definition the fast
path is tested against.
"""

from ._version import __version__
from ._config import openmp_enabled, show_config
from ._pooling import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from ._layers import AvgPool2d, Layer, MaxPool2d
from . import reference

__all__ = [
    "__version__",
    "show_config",
    "openmp_enabled",
    "max_pool2d",
    "max_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "Layer",
    "MaxPool2d",
    "AvgPool2d",
    "reference",
]
