"""asv suites of the memory roofline: the copy bandwidth and poolkit's time / roofline.

``track_time_over_roofline`` is issue 6's figure: poolkit's median time with preallocated
outputs divided by (bytes that must move / bandwidth of a large ``np.copyto``), both measured in
the same process. 1.0 means copy speed; lower is better.
"""

from ._common import C, SHAPES, THREADS, WINDOWED_OPS, WINDOWLESS_OPS, WINDOWS, callable_for


class CopyBandwidth:
    """``np.copyto`` of a 256 MiB float64 array: reads + writes per second."""

    timeout = 300
    unit = "GB/s"

    def track_copy_bandwidth(self):
        return C.copy_bandwidth(256)["bandwidth_Bps"] / 1e9

    track_copy_bandwidth.unit = "GB/s"


class TimeOverRoofline:
    """poolkit time (``out=``) / memory roofline, float32, per op, shape and thread count."""

    params = [WINDOWED_OPS + WINDOWLESS_OPS, SHAPES, WINDOWS, THREADS]
    param_names = ["op", "shape", "window", "threads"]
    timeout = 600
    repeats = 7

    def setup(self, op, shape, window, threads):
        if not C.OPS[op].windowed:
            if window != WINDOWS[0]:
                raise NotImplementedError("windowless op: one window column only")
            window = None
        self.fn = callable_for("poolkit_out", op, shape, window, "float32", threads)
        case = C.Case(op, C.SHAPES[shape], window, "float32", threads)
        self.bytes_moved = C.prepare(case, impls=()).bytes_moved
        self.bandwidth = C.copy_bandwidth(256)["bandwidth_Bps"]

    def track_time_over_roofline(self, *params):
        t = C.measure(self.fn, self.repeats).median
        return t / (self.bytes_moved / self.bandwidth)

    track_time_over_roofline.unit = "time/roofline"
