"""Shared plumbing of the asv suites: import the case table and turn a case into a callable."""

import os
import sys

_BENCH_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _BENCH_ROOT not in sys.path:
    sys.path.insert(0, _BENCH_ROOT)

import cases as C  # noqa: E402

THREADS = list(C.thread_counts())
WINDOWED_OPS = [name for name, op in C.OPS.items() if op.windowed]
WINDOWLESS_OPS = [name for name, op in C.OPS.items() if not op.windowed]
SHAPES = list(C.SHAPES)
WINDOWS = list(C.WINDOWS)
DTYPES = list(C.DTYPES)


def callable_for(impl, op, shape, window, dtype, threads):
    """The warmed-up zero-argument callable of one implementation of one case.

    Raises NotImplementedError (asv then skips the combination) when the implementation does
    not exist here: PyTorch missing, an op not yet in poolkit, no NumPy formulation, or an op
    that does not take ``out=`` yet.
    """
    shape = C.SHAPES.get(shape, shape)
    case = C.Case(op, tuple(shape), window, dtype, threads)
    prep = C.prepare(case, impls=(impl,))
    fn = prep.calls.get(impl)
    if fn is None:
        raise NotImplementedError(prep.notes.get(impl, "not applicable"))
    if impl == "torch":
        C.set_torch_threads(threads)
    try:
        fn()  # warm-up (first touch of the outputs, thread pools started)
    except TypeError as exc:
        raise NotImplementedError(f"{impl} {op}: {exc}") from None
    return fn


class Suite:
    """Base of every suite: one implementation (``impl``) timed over the case grid."""

    impl = "poolkit"
    timeout = 600
    number = 1  # calls take 0.1 ms to 2 s: one call per sample
    repeat = (3, 10, 20.0)  # (min, max, seconds) samples, asv's adaptive repeat
    warmup_time = 0.0  # setup already made a warm-up call

    def setup(self, op, shape, window, dtype, threads):
        self.fn = callable_for(self.impl, op, shape, window, dtype, threads)

    def teardown(self, *params):
        self.fn = None
