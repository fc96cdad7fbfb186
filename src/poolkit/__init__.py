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
from ._stochastic import StochasticPool2d, stochastic_pool2d, stochastic_pool2d_backward
from ._global import (GlobalAvgPool2d, GlobalMaxPool2d, global_avg_pool2d,
                      global_avg_pool2d_backward, global_max_pool2d, global_max_pool2d_backward)
from ._adaptive import (AdaptiveAvgPool2d, AdaptiveMaxPool2d, adaptive_avg_pool2d,
                        adaptive_avg_pool2d_backward, adaptive_max_pool2d,
                        adaptive_max_pool2d_backward)
from ._unpool import MaxUnpool2d, max_unpool2d, max_unpool2d_backward
from ._cam import class_activation_map
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
    "stochastic_pool2d",
    "stochastic_pool2d_backward",
    "StochasticPool2d",
    "global_avg_pool2d",
    "global_avg_pool2d_backward",
    "global_max_pool2d",
    "global_max_pool2d_backward",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "adaptive_max_pool2d",
    "adaptive_max_pool2d_backward",
    "max_unpool2d",
    "max_unpool2d_backward",
    "GlobalAvgPool2d",
    "GlobalMaxPool2d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "MaxUnpool2d",
    "class_activation_map",
    "reference",
]
