"""The GIL and threads: kernels release the GIL, concurrent calls stay correct, and a layer
object shared between threads fails clearly instead of mixing state.

* GIL release (one test per kernel): a worker thread runs the kernel (``n_threads=1``, inputs
  big enough for each call to take tens of milliseconds) over and over for a short while;
  meanwhile the main thread counts in a Python loop. A kernel that held the GIL would stop
  the counter for as long as it runs (it could only move in the few microseconds of Python
  between calls, plus at most one switch interval per call); a kernel that releases it lets
  the counter run on the other core. With a 0.1 ms switch interval the test requires the
  counter to reach 30% of the rate it has with no worker (measured just before), best of
  three attempts: releasing kernels give 100-200%, a GIL-holding C call of 2 ms about 6%
  (checked by ``test_the_gil_check_detects_a_call_that_holds_the_gil``).
* Concurrency: four Python threads call every function on their own inputs, repeatedly and
  with ``n_threads`` 1 and 2 (OpenMP teams inside Python threads); every result must equal,
  bit for bit, the one computed beforehand on one thread.
* Layers: one layer object holds the state of one forward/backward pair, so a forward or
  backward that finds another one running on the same object raises RuntimeError. Tested
  deterministically: thread A's forward is held inside the layer by an input whose
  ``__array__`` waits on an event; thread B's forward and backward must raise RuntimeError;
  then A finishes, and A's backward is exactly what a layer used by A alone gives.
"""

import sys
import threading
import time

import numpy as np
import pytest

import poolkit

rng = np.random.default_rng(0)


# --------------------------------------------------------------------------- GIL release

def _big(shape=(4, 16, 256, 256), dtype=np.float32, nonneg=False):
    x = rng.standard_normal(shape).astype(dtype)
    return np.abs(x) if nonneg else x


XB = _big()
XBP = np.abs(XB)
VB, IB = poolkit.max_pool2d(XB, 2, return_indices=True)
GB = np.ones_like(VB)
GV, GI = poolkit.global_max_pool2d(XB, return_indices=True)
AV, AI = poolkit.adaptive_max_pool2d(XB, (7, 7), return_indices=True)
SV, SI = poolkit.stochastic_pool2d(XBP, 2, rng=0, return_indices=True)

KERNELS = {
    "max_pool2d": lambda: poolkit.max_pool2d(XB, 3, 1, 1, n_threads=1),
    "max_pool2d(indices)": lambda: poolkit.max_pool2d(XB, 3, 1, 1, return_indices=True,
                                                      n_threads=1),
    "max_pool2d_backward": lambda: poolkit.max_pool2d_backward(GB, IB, XB.shape, n_threads=1),
    "avg_pool2d": lambda: poolkit.avg_pool2d(XB, 3, 1, 1, n_threads=1),
    "avg_pool2d_backward": lambda: poolkit.avg_pool2d_backward(GB, XB.shape, 2, n_threads=1),
    "stochastic_pool2d": lambda: poolkit.stochastic_pool2d(XBP, 3, 1, 1, rng=0, n_threads=1),
    "stochastic_pool2d(eval)": lambda: poolkit.stochastic_pool2d(XBP, 3, 1, 1, training=False,
                                                                 n_threads=1),
    "stochastic_pool2d_backward(eval)": lambda: poolkit.stochastic_pool2d_backward(
        GB, x=XBP, kernel_size=2, n_threads=1),
    "global_avg_pool2d": lambda: poolkit.global_avg_pool2d(XB, n_threads=1),
    "global_avg_pool2d_backward": lambda: poolkit.global_avg_pool2d_backward(
        GV, XB.shape, n_threads=1),
    "global_max_pool2d": lambda: poolkit.global_max_pool2d(XB, return_indices=True,
                                                           n_threads=1),
    "global_max_pool2d_backward": lambda: poolkit.global_max_pool2d_backward(
        GV, GI, XB.shape, n_threads=1),
    "adaptive_avg_pool2d": lambda: poolkit.adaptive_avg_pool2d(XB, (7, 7), n_threads=1),
    "adaptive_avg_pool2d_backward": lambda: poolkit.adaptive_avg_pool2d_backward(
        AV, XB.shape, n_threads=1),
    "adaptive_max_pool2d": lambda: poolkit.adaptive_max_pool2d(XB, (7, 7), return_indices=True,
                                                               n_threads=1),
    "adaptive_max_pool2d_backward": lambda: poolkit.adaptive_max_pool2d_backward(
        AV, AI, XB.shape, n_threads=1),
    "max_unpool2d": lambda: poolkit.max_unpool2d(VB, IB, 2, n_threads=1),
    "max_unpool2d_backward": lambda: poolkit.max_unpool2d_backward(XB, IB, n_threads=1),
}


# With a 0.1 ms switch interval a GIL-holding call of 2 ms lets the counter run ~6% of the
# time (measured: 0.06-0.07; 0.22-0.29 with a 1 ms interval); kernels that release the GIL
# give 1.0-2.0 (the counter has a core of its own).
SWITCH_S = 1e-4
THRESHOLD = 0.3


def _count_for(seconds):
    """Increments of a Python counter in ``seconds`` of wall time."""
    n = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        n += 1
    return n


def _counter_progress(kernel, busy_s=0.4):
    """(counter rate while the worker runs ``kernel`` repeatedly) / (rate alone), and the
    mean duration of one kernel call."""
    alone = _count_for(0.1) / 0.1
    started = threading.Event()
    done = threading.Event()
    calls = []

    def worker():
        started.set()
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < busy_s:
            kernel()
            calls.append(1)
        done.set()

    t = threading.Thread(target=worker)
    t.start()
    started.wait()
    n = 0
    t0 = time.perf_counter()
    while not done.is_set():
        n += 1
    elapsed = time.perf_counter() - t0
    t.join()
    return (n / elapsed) / alone, elapsed / max(len(calls), 1)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_releases_the_gil(name):
    kernel = KERNELS[name]
    kernel()  # warm up (first call of a fused specialisation, page faults of the output)
    old = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_S)
    try:
        best, per_call = 0.0, 0.0
        for _ in range(3):
            ratio, per_call = _counter_progress(kernel)
            best = max(best, ratio)
            if best > THRESHOLD:
                break
    finally:
        sys.setswitchinterval(old)
    assert best > THRESHOLD, (
        f"{name}: a Python thread ran at {best:.0%} of its speed while the kernel ran "
        f"({per_call * 1e3:.1f} ms a call): the kernel seems to hold the GIL")


def test_the_gil_check_detects_a_call_that_holds_the_gil():
    """The check itself: ``sum(range(200000))`` is a C loop of a few milliseconds (like a
    short kernel) that keeps the GIL; the counter must fall far below the threshold."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_S)
    try:
        ratio = min(_counter_progress(lambda: sum(range(200_000)), busy_s=0.3)[0]
                    for _ in range(2))
    finally:
        sys.setswitchinterval(old)
    assert ratio < THRESHOLD, ratio


# --------------------------------------------------------------------------- concurrency

def _inputs(seed):
    r = np.random.default_rng(seed)
    x = r.standard_normal((3, 8, 40, 36))
    xp = np.abs(x)
    v, i = poolkit.max_pool2d(x, 2, return_indices=True)
    gv, gi = poolkit.global_max_pool2d(x, return_indices=True)
    av, ai = poolkit.adaptive_max_pool2d(x, (5, 6), return_indices=True)
    _, si = poolkit.stochastic_pool2d(xp, 2, rng=seed, return_indices=True)
    g = r.standard_normal(v.shape)
    return dict(x=x, xp=xp, v=v, i=i, gv=gv, gi=gi, av=av, ai=ai, si=si, g=g)


def _all_results(d, nt):
    x, xp, g = d["x"], d["xp"], d["g"]
    return [
        poolkit.max_pool2d(x, 3, 2, 1, return_indices=True, n_threads=nt),
        poolkit.max_pool2d_backward(g, d["i"], x.shape, n_threads=nt),
        poolkit.avg_pool2d(x, 3, 1, 1, count_include_pad=False, n_threads=nt),
        poolkit.avg_pool2d_backward(g, x.shape, 2, n_threads=nt),
        poolkit.stochastic_pool2d(xp, 2, rng=7, return_indices=True, n_threads=nt),
        poolkit.stochastic_pool2d(xp, 3, 1, 1, training=False, n_threads=nt),
        poolkit.stochastic_pool2d_backward(g, x.shape, d["si"], n_threads=nt),
        poolkit.stochastic_pool2d_backward(g, x=xp, kernel_size=2, n_threads=nt),
        poolkit.global_avg_pool2d(x, n_threads=nt),
        poolkit.global_avg_pool2d_backward(d["gv"], x.shape, n_threads=nt),
        poolkit.global_max_pool2d(x, return_indices=True, n_threads=nt),
        poolkit.global_max_pool2d_backward(d["gv"], d["gi"], x.shape, n_threads=nt),
        poolkit.adaptive_avg_pool2d(x, (5, 6), n_threads=nt),
        poolkit.adaptive_avg_pool2d_backward(d["av"], x.shape, n_threads=nt),
        poolkit.adaptive_max_pool2d(x, (5, 6), return_indices=True, n_threads=nt),
        poolkit.adaptive_max_pool2d_backward(d["av"], d["ai"], x.shape, n_threads=nt),
        poolkit.max_unpool2d(d["v"], d["i"], 2, output_size=x.shape[-2:], n_threads=nt),
        poolkit.max_unpool2d_backward(x, d["i"], n_threads=nt),
    ]


def _flat(results):
    out = []
    for r in results:
        out.extend(r if isinstance(r, tuple) else (r,))
    return out


def test_concurrent_calls_from_several_threads_give_single_thread_results():
    seeds = [1, 2, 3, 4]
    data = {s: _inputs(s) for s in seeds}
    expected = {s: _flat(_all_results(data[s], 1)) for s in seeds}
    errors = []
    barrier = threading.Barrier(len(seeds))

    def worker(seed):
        try:
            barrier.wait()
            for rep in range(6):
                got = _flat(_all_results(data[seed], 1 + rep % 2))
                for j, (a, b) in enumerate(zip(got, expected[seed])):
                    if a.dtype != b.dtype or a.shape != b.shape or \
                            a.tobytes() != b.tobytes():
                        errors.append(f"thread {seed}, repeat {rep}, result {j} differs")
        except Exception as exc:
            errors.append(f"thread {seed}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(s,)) for s in seeds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors[:5]


def test_concurrent_layers_one_per_thread():
    x = {s: np.abs(np.random.default_rng(s).standard_normal((2, 4, 17, 19))) for s in range(4)}

    def run(seed):
        out = []
        for cls in (lambda: poolkit.MaxPool2d(3, 2, 1), lambda: poolkit.AvgPool2d(2),
                    lambda: poolkit.StochasticPool2d(2, rng=seed),
                    lambda: poolkit.GlobalMaxPool2d(), lambda: poolkit.AdaptiveAvgPool2d(3)):
            layer = cls()
            y = layer(x[seed])
            out += [y, layer.backward(np.ones_like(y))]
        return out

    expected = {s: run(s) for s in x}
    errors = []

    def worker(seed):
        for _ in range(5):
            for a, b in zip(run(seed), expected[seed]):
                if a.tobytes() != b.tobytes():
                    errors.append(seed)

    threads = [threading.Thread(target=worker, args=(s,)) for s in x]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors


# ------------------------------------------------------------------ a layer shared by threads

class SlowArray:
    """An array-like whose conversion blocks until ``release`` is set: holds a layer's
    forward (or backward) inside the layer for as long as the test wants."""

    def __init__(self, a):
        self.a = a
        self.entered = threading.Event()
        self.release = threading.Event()

    def __array__(self, dtype=None, copy=None):
        self.entered.set()
        assert self.release.wait(30), "test hung"
        return self.a if dtype is None else self.a.astype(dtype)


X4 = np.abs(np.random.default_rng(5).standard_normal((2, 3, 8, 8)))

LAYER_FACTORIES = {
    "MaxPool2d": lambda: poolkit.MaxPool2d(2),
    "AvgPool2d": lambda: poolkit.AvgPool2d(3, 1, 1),
    "StochasticPool2d": lambda: poolkit.StochasticPool2d(2, rng=3),
    "GlobalAvgPool2d": lambda: poolkit.GlobalAvgPool2d(),
    "GlobalMaxPool2d": lambda: poolkit.GlobalMaxPool2d(keepdims=True),
    "AdaptiveAvgPool2d": lambda: poolkit.AdaptiveAvgPool2d((3, 2)),
    "AdaptiveMaxPool2d": lambda: poolkit.AdaptiveMaxPool2d((3, 2)),
}


def _in_thread(f):
    box = {}

    def run():
        try:
            box["result"] = f()
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    return t, box


@pytest.mark.parametrize("name", sorted(LAYER_FACTORIES))
def test_layer_shared_between_threads_fails_clearly(name):
    layer = LAYER_FACTORIES[name]()
    slow = SlowArray(X4)
    ta, box = _in_thread(lambda: layer.forward(slow))          # thread A, held in forward
    assert slow.entered.wait(30)
    # thread B (here): forward and backward on the same object are refused, not interleaved
    with pytest.raises(RuntimeError, match="another thread"):
        layer.forward(X4[:1])
    with pytest.raises(RuntimeError, match="another thread"):
        layer.backward(np.ones((2, 3, 4, 4)))
    slow.release.set()
    ta.join(30)
    assert "error" not in box, box.get("error")
    y = box["result"]
    y = y[0] if isinstance(y, tuple) else y
    g = np.random.default_rng(6).standard_normal(y.shape)
    # A's forward is the one cached: backward equals that of a layer A used alone
    alone = LAYER_FACTORIES[name]()
    y_alone = alone.forward(X4)
    y_alone = y_alone[0] if isinstance(y_alone, tuple) else y_alone
    np.testing.assert_array_equal(y, y_alone)
    np.testing.assert_array_equal(layer.backward(g), alone.backward(g))


def test_layer_backward_in_flight_blocks_other_threads():
    layer = poolkit.MaxPool2d(2)
    y = layer(X4)
    slow = SlowArray(np.ones_like(y))
    ta, box = _in_thread(lambda: layer.backward(slow))
    assert slow.entered.wait(30)
    with pytest.raises(RuntimeError, match="another thread"):
        layer.forward(X4)
    slow.release.set()
    ta.join(30)
    assert "error" not in box, box.get("error")
    expected = poolkit.max_pool2d_backward(
        np.ones_like(y), poolkit.max_pool2d(X4, 2, return_indices=True)[1], X4.shape)
    np.testing.assert_array_equal(box["result"], expected)


def test_max_unpool_layer_shared_between_threads_fails_clearly():
    layer = poolkit.MaxUnpool2d(2)
    v, i = poolkit.max_pool2d(X4, 2, return_indices=True)
    slow = SlowArray(v)
    ta, box = _in_thread(lambda: layer.forward(slow, i))
    assert slow.entered.wait(30)
    with pytest.raises(RuntimeError, match="another thread"):
        layer.forward(v, i)
    with pytest.raises(RuntimeError, match="another thread"):
        layer.backward(np.ones(X4.shape))
    slow.release.set()
    ta.join(30)
    assert "error" not in box, box.get("error")
    np.testing.assert_array_equal(box["result"], poolkit.max_unpool2d(v, i, 2))


def test_layer_is_usable_again_after_a_refused_call():
    layer = poolkit.AvgPool2d(2)
    layer._busy.acquire()  # as if another thread were inside forward
    try:
        with pytest.raises(RuntimeError):
            layer(X4)
    finally:
        layer._busy.release()
    y = layer(X4)
    np.testing.assert_array_equal(layer.backward(np.ones_like(y)),
                                  poolkit.avg_pool2d_backward(np.ones_like(y), X4.shape, 2))


# ---------------------------------------------------------------------- processes

def _child_pool(x):
    import poolkit as pk
    return pk.max_pool2d(x, 2, n_threads=2)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="forkserver: POSIX")
def test_forkserver_children_pool_after_the_parent_used_openmp():
    """docs/robustness.md: after OpenMP work, ``fork`` children can deadlock in libgomp; the
    documented way out, a forkserver (or spawn) context, works."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    x = np.random.default_rng(9).standard_normal((4, 16, 64, 64))  # above the 1-thread size
    expected = poolkit.max_pool2d(x, 2, n_threads=2)               # the parent's team exists
    with ProcessPoolExecutor(1, mp_context=mp.get_context("forkserver")) as pool:
        got = pool.submit(_child_pool, x).result(timeout=120)
    np.testing.assert_array_equal(got, expected)
