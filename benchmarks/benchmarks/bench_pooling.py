"""asv suites: every op of the case table, per implementation.

Parameters (asv takes the product): op, shape, window (``None`` for global and adaptive ops),
dtype, threads (1 and all usable CPUs). PyTorch combinations are skipped where PyTorch is not
importable, as in an asv virtualenv without it (``asv run --python=same`` uses this Python).
"""

from ._common import DTYPES, SHAPES, THREADS, WINDOWED_OPS, WINDOWLESS_OPS, WINDOWS, Suite

PARAM_NAMES = ["op", "shape", "window", "dtype", "threads"]


class PoolkitWindowed(Suite):
    """poolkit max, mean and stochastic pooling as a user calls them (outputs allocated)."""

    impl = "poolkit"
    params = [WINDOWED_OPS, SHAPES, WINDOWS, DTYPES, THREADS]
    param_names = PARAM_NAMES

    def time_op(self, *params):
        self.fn()


class PoolkitWindowedOut(PoolkitWindowed):
    """The same, writing into preallocated ``out=`` arrays (the roofline figure's time)."""

    impl = "poolkit_out"


class PoolkitWindowless(Suite):
    """poolkit global average/max and adaptive average pooling."""

    impl = "poolkit"
    params = [WINDOWLESS_OPS, SHAPES, [None], DTYPES, THREADS]
    param_names = PARAM_NAMES

    def time_op(self, *params):
        self.fn()


class PoolkitWindowlessOut(PoolkitWindowless):
    impl = "poolkit_out"


class TorchWindowed(PoolkitWindowed):
    """PyTorch CPU: torch.nn.functional forward, aten backward ops (threads matched)."""

    impl = "torch"


class TorchWindowless(PoolkitWindowless):
    impl = "torch"


class NumpyWindowed(Suite):
    """Vectorised NumPy baselines (single-threaded: no threads parameter)."""

    impl = "numpy"
    params = [WINDOWED_OPS, SHAPES, WINDOWS, DTYPES]
    param_names = PARAM_NAMES[:4]
    repeat = (1, 3, 20.0)

    def setup(self, op, shape, window, dtype):
        super().setup(op, shape, window, dtype, 1)

    def time_op(self, *params):
        self.fn()


class NumpyWindowless(NumpyWindowed):
    params = [WINDOWLESS_OPS, SHAPES, [None], DTYPES]
