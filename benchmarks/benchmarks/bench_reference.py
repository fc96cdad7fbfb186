"""asv suites on the small reference shape: the pure-Python reference against poolkit."""

from ._common import C, DTYPES, WINDOWED_OPS, WINDOWLESS_OPS, WINDOWS, Suite

REF = "x".join(map(str, C.REF_SHAPE))


class ReferenceSmall(Suite):
    """``poolkit.reference`` on (1, 4, 16, 16), and poolkit on the same input for the ratio."""

    params = [WINDOWED_OPS + WINDOWLESS_OPS, WINDOWS, DTYPES, ["reference", "poolkit"]]
    param_names = ["op", "window", "dtype", "impl"]
    repeat = (3, 10, 10.0)

    def setup(self, op, window, dtype, impl):
        if not C.OPS[op].windowed:
            if window != WINDOWS[0]:
                raise NotImplementedError("windowless op: one window column only")
            window = None
        self.impl = impl
        super().setup(op, C.REF_SHAPE, window, dtype, 1)

    def time_op(self, *params):
        self.fn()
