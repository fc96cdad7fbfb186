"""The GIL and threads: kernels release the GIL, concurrent calls stay correct, and a layer
object shared between threads fails clearly instead of mixing state.

* GIL release (one test per kernel): a worker thread runs the kernel (``n_threads=1``, a few
  milliseconds a call, contiguous inputs so that the facade copies nothing) for 0.15 s while
  the interpreter's switch interval is 2 s: the GIL changes hands only when the worker lets
  go of it, so the main thread can take steps (counting, with 0.1 ms sleeps) only while a
  kernel runs without the GIL. Releasing kernels give hundreds of steps; a C call that keeps
  the GIL gives 0, whatever the load on the machine (a rate-based version of this test
  broke under load; ``test_the_gil_check_detects_a_call_that_holds_the_gil`` checks the
  method itself).
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


SWITCH_S = 2.0  # no forced GIL hand-over while the worker runs (it stops after BUSY_S)
BUSY_S = 0.15
MIN_STEPS = 5


def _steps_while_running(kernel, busy_s=BUSY_S, max_calls=30):
    """How many steps the main thread takes while a worker thread runs ``kernel`` repeatedly
    (for ``busy_s`` seconds at most), and how many calls the worker made.

    The switch interval is set longer than the worker runs, so the interpreter never takes
    the GIL from the worker: the main thread can run only while the worker has let go of it
    -- inside a call that releases the GIL. ``Thread.start`` itself returns only then. A
    kernel that holds the GIL leaves the main thread at 0 steps (1 at most, when the worker
    thread ends), whatever the load on the machine; one that releases it gives hundreds.
    Each step sleeps 0.1 ms, so the worker gets the GIL back at once between its calls.
    """
    calls = []

    def worker():
        t0 = time.perf_counter()
        while len(calls) < max_calls and time.perf_counter() - t0 < busy_s:
            kernel()
            calls.append(1)

    old = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_S)
    try:
        thread = threading.Thread(target=worker)
        steps = 0
        thread.start()
        while thread.is_alive():
            steps += 1
            time.sleep(1e-4)
        thread.join()
    finally:
        sys.setswitchinterval(old)
    return steps, len(calls)


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_kernel_releases_the_gil(name):
    kernel = KERNELS[name]
    kernel()  # warm up (first call of a fused specialisation, page faults of the output)
    best = (0, 0)
    for _ in range(3):  # a starved main thread can miss a short run: retry
        best = max(best, _steps_while_running(kernel))
        if best[0] >= MIN_STEPS:
            break
    assert best[0] >= MIN_STEPS, (
        f"{name}: the main thread took {best[0]} steps while {best[1]} kernel calls ran in "
        f"another thread: the kernel seems to hold the GIL")


def test_the_gil_check_detects_a_call_that_holds_the_gil():
    """The check itself: ``sum(range(200000))`` is a C loop of a few milliseconds (like a
    short kernel) that keeps the GIL; the main thread must not get a single step in (at most
    one, as the worker thread ends)."""
    for _ in range(3):
        steps, calls = _steps_while_running(lambda: sum(range(200_000)))
        assert calls >= 2 and steps <= 1, (steps, calls)


# --------------------------------------------------------------------------- concurrency

def _inputs(seed):
    r = np.random.default_rng(seed)
    x = r.standard_normal((4, 16, 48, 44))  # above the one-thread size (2**17 elements)
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
