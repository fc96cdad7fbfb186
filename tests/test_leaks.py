"""No leaks: 10,000 calls of each public function and layer keep resident memory flat.

For every call below (successful calls, and calls that raise: bad indices found by a kernel,
bad activations, bad parameters, bad ``out=``, layer misuse), the test warms up, collects
garbage, reads the resident set size (``/proc/self/statm``), makes 10,000 more calls,
collects garbage again and requires the growth to stay under 2 MB -- 200 bytes a call. The
inputs are small but wide (a 512-column plane): a kernel that leaked its per-call scratch row
would leak kilobytes per call and show up at once. The count of live Python objects
(``gc.get_objects``) must not grow either, which catches leaked references.

``POOLKIT_LEAK_CALLS`` changes the number of calls (default 10000).
"""

import gc
import os
import sys

import numpy as np
import pytest

import poolkit

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm"),
    # tools/memcheck.sh: AddressSanitizer keeps freed memory in quarantine (resident), so
    # resident memory grows by design there
    pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                       reason="under AddressSanitizer (its quarantine keeps freed memory)"),
]

CALLS = int(os.environ.get("POOLKIT_LEAK_CALLS", "10000"))
WARMUP = 500
MAX_GROWTH = 2 << 20  # bytes
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

rng = np.random.default_rng(0)
X = rng.standard_normal((1, 2, 4, 512))
X32 = X.astype(np.float32)
XP = np.abs(X)                                       # activations for stochastic pooling
G = rng.standard_normal((1, 2, 2, 256))              # gradient of 2x2 pooling of X
V, IDX = poolkit.max_pool2d(X, 2, return_indices=True)
GV, GIDX = poolkit.global_max_pool2d(X, return_indices=True)
AV, AIDX = poolkit.adaptive_max_pool2d(X, (3, 5), return_indices=True)
SV, SIDX = poolkit.stochastic_pool2d(XP, 2, rng=0, return_indices=True)
BAD_IDX = IDX.copy()
BAD_IDX[0, 1, 1, 255] = X.shape[-2] * X.shape[-1]   # the last one: found after a full pass
NEG = XP.copy()
NEG[0, 1, 3, 511] = -1.0                             # the last activation is negative
OUT = np.empty_like(V)
OUT_BAD = np.empty((1, 2, 2, 255))
FEAT = rng.standard_normal((2, 8, 7, 7))
W8 = rng.standard_normal((10, 8))


def _raises(f, exc=(ValueError, TypeError, RuntimeError)):
    def call():
        try:
            f()
        except exc:
            return
        raise AssertionError("expected an error")
    return call


CASES = {
    # successful calls of every public function
    "max_pool2d": lambda: poolkit.max_pool2d(X, 2),
    "max_pool2d(indices, f32)": lambda: poolkit.max_pool2d(X32, 3, 1, 1, return_indices=True),
    "max_pool2d(out=)": lambda: poolkit.max_pool2d(X, 2, out=OUT),
    "max_pool2d_backward": lambda: poolkit.max_pool2d_backward(G, IDX, X.shape),
    "avg_pool2d": lambda: poolkit.avg_pool2d(X, 3, 2, 1, count_include_pad=False),
    "avg_pool2d_backward": lambda: poolkit.avg_pool2d_backward(G, X.shape, 2),
    "stochastic_pool2d": lambda: poolkit.stochastic_pool2d(XP, 2, rng=1, return_indices=True),
    "stochastic_pool2d(eval)": lambda: poolkit.stochastic_pool2d(XP, 2, training=False),
    "stochastic_pool2d_backward": lambda: poolkit.stochastic_pool2d_backward(G, X.shape, SIDX),
    "stochastic_pool2d_backward(eval)": lambda: poolkit.stochastic_pool2d_backward(
        G, x=XP, kernel_size=2),
    "global_avg_pool2d": lambda: poolkit.global_avg_pool2d(X),
    "global_avg_pool2d_backward": lambda: poolkit.global_avg_pool2d_backward(GV, X.shape),
    "global_max_pool2d": lambda: poolkit.global_max_pool2d(X, keepdims=True,
                                                           return_indices=True),
    "global_max_pool2d_backward": lambda: poolkit.global_max_pool2d_backward(GV, GIDX,
                                                                             X.shape),
    "adaptive_avg_pool2d": lambda: poolkit.adaptive_avg_pool2d(X, (3, 5)),
    "adaptive_avg_pool2d_backward": lambda: poolkit.adaptive_avg_pool2d_backward(AV, X.shape),
    "adaptive_max_pool2d": lambda: poolkit.adaptive_max_pool2d(X, (3, 5), return_indices=True),
    "adaptive_max_pool2d_backward": lambda: poolkit.adaptive_max_pool2d_backward(AV, AIDX,
                                                                                 X.shape),
    "max_unpool2d": lambda: poolkit.max_unpool2d(V, IDX, 2),
    "max_unpool2d_backward": lambda: poolkit.max_unpool2d_backward(X, IDX),
    "class_activation_map": lambda: poolkit.class_activation_map(FEAT, W8, [1, 2], size=14),
    "openmp_enabled": poolkit.openmp_enabled,
    # error paths: raised by the facade before any kernel, or after a kernel's pass
    "max_pool2d_backward(bad index)": _raises(
        lambda: poolkit.max_pool2d_backward(G, BAD_IDX, X.shape)),
    "max_unpool2d(bad index)": _raises(lambda: poolkit.max_unpool2d(V, BAD_IDX, 2, 2, 0, (3, 3))),
    "max_unpool2d_backward(bad index)": _raises(
        lambda: poolkit.max_unpool2d_backward(X[..., :2, :4], BAD_IDX)),
    "adaptive_max_pool2d_backward(bad index)": _raises(
        lambda: poolkit.adaptive_max_pool2d_backward(G, BAD_IDX, X.shape)),
    "global_max_pool2d_backward(bad index)": _raises(
        lambda: poolkit.global_max_pool2d_backward(GV, GIDX + 4096, X.shape)),
    "stochastic_pool2d(negative)": _raises(lambda: poolkit.stochastic_pool2d(NEG, 2, rng=0)),
    "stochastic_pool2d(eval, negative)": _raises(
        lambda: poolkit.stochastic_pool2d(NEG, 2, training=False)),
    "stochastic_pool2d_backward(negative)": _raises(
        lambda: poolkit.stochastic_pool2d_backward(G, x=NEG, kernel_size=2)),
    "max_pool2d(bad kernel)": _raises(lambda: poolkit.max_pool2d(X, 0)),
    "avg_pool2d(bad dtype)": _raises(lambda: poolkit.avg_pool2d(X.astype(np.int64), 2)),
    "avg_pool2d(bad out=)": _raises(lambda: poolkit.avg_pool2d(X, 2, out=OUT_BAD)),
    "max_pool2d(n_threads=0)": _raises(lambda: poolkit.max_pool2d(X, 2, n_threads=0)),
    "adaptive_avg_pool2d(bad size)": _raises(lambda: poolkit.adaptive_avg_pool2d(X, 0)),
    "class_activation_map(bad class)": _raises(
        lambda: poolkit.class_activation_map(FEAT, W8, 10)),
}


def _layer_cycle(layer, x, make_grad, backward=True):
    def call():
        y = layer(x)
        if backward:
            y = y[0] if isinstance(y, tuple) else y
            layer.backward(make_grad(y))
    return call


def _ones_like(y):
    return np.ones_like(y)


LAYERS = {
    "MaxPool2d": lambda: _layer_cycle(poolkit.MaxPool2d(2), X, _ones_like),
    "AvgPool2d": lambda: _layer_cycle(poolkit.AvgPool2d(3, 1, 1), X, _ones_like),
    "StochasticPool2d(train)": lambda: _layer_cycle(poolkit.StochasticPool2d(2, rng=0), XP,
                                                    _ones_like),
    "StochasticPool2d(eval)": lambda: _layer_cycle(poolkit.StochasticPool2d(2).eval(), XP,
                                                   _ones_like),
    "GlobalAvgPool2d": lambda: _layer_cycle(poolkit.GlobalAvgPool2d(), X, _ones_like),
    "GlobalMaxPool2d": lambda: _layer_cycle(poolkit.GlobalMaxPool2d(), X, _ones_like),
    "AdaptiveAvgPool2d": lambda: _layer_cycle(poolkit.AdaptiveAvgPool2d((3, 5)), X, _ones_like),
    "AdaptiveMaxPool2d": lambda: _layer_cycle(poolkit.AdaptiveMaxPool2d((3, 5)), X, _ones_like),
    "MaxUnpool2d": lambda: _unpool_cycle(poolkit.MaxUnpool2d(2)),
    # misuse: a wrong gradient shape, backward before forward, a bad input
    "MaxPool2d(bad grad)": lambda: _raises(_layer_cycle(poolkit.MaxPool2d(2), X,
                                                        lambda y: y[..., :1])),
    "AvgPool2d(backward first)": lambda: _raises(
        lambda: poolkit.AvgPool2d(2).backward(G)),
    "GlobalMaxPool2d(bad input)": lambda: _raises(
        _layer_cycle(poolkit.GlobalMaxPool2d(), X.astype(np.int32), _ones_like)),
}


def _unpool_cycle(layer):
    def call():
        layer(V, IDX)
        layer.backward(X)
    return call


def _rss():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


def _measure(call):
    for _ in range(WARMUP):
        call()
    gc.collect()
    objects0 = len(gc.get_objects())
    rss0 = _rss()
    for _ in range(CALLS):
        call()
    gc.collect()
    return _rss() - rss0, len(gc.get_objects()) - objects0


def _check(call, what):
    growth, objects = _measure(call)
    if growth >= MAX_GROWTH:  # one more round: a first-time arena can land in the window
        growth, objects = _measure(call)
    assert growth < MAX_GROWTH, (
        f"{what}: resident memory grew by {growth / 2**20:.2f} MB over {CALLS} calls")
    assert objects < 100, f"{what}: {objects} more live Python objects after {CALLS} calls"


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_leak_over_many_calls(name):
    _check(CASES[name], name)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_no_leak_in_layers(name):
    _check(LAYERS[name](), name)


def test_every_public_function_is_checked_for_leaks():
    functions = {n for n in poolkit.__all__ if callable(getattr(poolkit, n))
                 and not isinstance(getattr(poolkit, n), type)}
    checked = {n.split("(")[0] for n in CASES} | {"show_config"}  # show_config prints
    assert functions <= checked, f"not checked for leaks: {sorted(functions - checked)}"
    layers = {n for n in poolkit.__all__ if isinstance(getattr(poolkit, n), type)} - {"Layer"}
    assert layers <= {n.split("(")[0] for n in LAYERS}, sorted(layers - set(LAYERS))
