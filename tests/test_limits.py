"""Integer limits: huge parameters and sizes fail fast and clearly; big planes keep int64 indices.

What is tested, and how (nothing here allocates more than a few MB unless POOLKIT_BIGMEM=1):

* Window parameters of ``2**31``, ``2**62``, ``2**63``, ``2**100`` (and their negatives) give
  a ValueError naming the parameter, within milliseconds, with a tracemalloc peak under
  1 MB -- for every function and layer that takes them.
* Results whose size overflows 64 bits (a backward's ``input_shape`` of ``(2**20, 2**20,
  2**30, 2**30)``, ``output_size=2**31 - 1`` on a batch) give a ValueError naming the shape,
  without allocating; inputs declaring such sizes through zero strides
  (``numpy.lib.stride_tricks.as_strided``) are rejected before the facade copies them.
* The shape arithmetic (``poolkit._params.pool_params``, ``output_size``, the adaptive windows,
  ``unpool_output_size``) is exact for planes up to ``2**31 - 1`` per side, where ``H * W``
  and every window position pass ``2**31`` (compared with the reference's formulas in Python
  integers).
* The max kernel keeps each window's winner as an int32 offset when that is safe and falls
  back to int64 when it is not: windows whose taps span more than 2**30 rows or columns
  (huge dilation) run through the int64 path, checked against the expected argmax.
* Indices handed in by users are widened to int64 (int32, uint64); a uint64 above the int64
  range is a ValueError, never a wrap-around.
* A plane with ``H * W >= 2**31`` needs 8 GiB even in float32 (a zero-stride view is copied
  to contiguous memory by the facade), so the end-to-end check of int64 argmax indices above
  2**31 is ``test_int64_indices_on_a_plane_above_2_31`` and runs only with POOLKIT_BIGMEM=1
  (about 25 GiB of memory).
"""

import math
import os
import time
import tracemalloc

import numpy as np
import pytest

import poolkit
from poolkit import _params, reference
from poolkit._adaptive import adaptive_windows, output_hw
from poolkit._unpool import unpool_output_size

MAX = _params._MAX_DIM  # 2**31 - 1
HUGE = [2**31, 2**32 + 1, 2**62, 2**63, 2**64, 2**100]
NEG_HUGE = [-(2**31), -(2**62), -(2**100)]


def zero_stride(shape, dtype=np.float64):
    """A read-only view of ``shape`` over one element (no memory behind the declared size)."""
    return np.lib.stride_tricks.as_strided(np.ones(1, dtype), shape=shape,
                                           strides=(0,) * len(shape), writeable=False)


def fails_fast(f, exc_types=(ValueError,), match=None, max_s=0.5, max_bytes=1 << 20):
    """``f()`` raises one of ``exc_types`` within ``max_s`` seconds, allocating at most
    ``max_bytes`` on the way (tracemalloc peak, which NumPy's allocations report to)."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(exc_types, match=match) as info:
            f()
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < max_s, f"took {elapsed:.3f} s to raise {info.value!r}"
    assert peak < max_bytes, f"allocated {peak} bytes before raising {info.value!r}"
    return info.value


X = np.zeros((2, 3, 6, 6))
G = np.zeros((2, 3, 3, 3))
IDX = np.zeros((2, 3, 3, 3), dtype=np.int64)

WINDOW_CALLS = {
    "max_pool2d": lambda **kw: poolkit.max_pool2d(X, **kw),
    "max_pool2d(return_indices)": lambda **kw: poolkit.max_pool2d(X, return_indices=True, **kw),
    "avg_pool2d": lambda **kw: poolkit.avg_pool2d(X, **kw),
    "avg_pool2d_backward": lambda **kw: poolkit.avg_pool2d_backward(G, X.shape, **kw),
    "stochastic_pool2d": lambda **kw: poolkit.stochastic_pool2d(X, rng=0, **kw),
    "stochastic_pool2d(eval)": lambda **kw: poolkit.stochastic_pool2d(X, training=False, **kw),
    "stochastic_pool2d_backward": lambda **kw: poolkit.stochastic_pool2d_backward(
        G, x=X, **kw),
    "MaxPool2d": lambda **kw: poolkit.MaxPool2d(**kw),
    "AvgPool2d": lambda **kw: poolkit.AvgPool2d(**kw),
    "StochasticPool2d": lambda **kw: poolkit.StochasticPool2d(**kw),
}
UNPOOL_CALLS = {
    "max_unpool2d": lambda **kw: poolkit.max_unpool2d(G, IDX, **kw),
    "MaxUnpool2d": lambda **kw: poolkit.MaxUnpool2d(**kw),
}
HAS_DILATION = {"max_pool2d", "max_pool2d(return_indices)", "MaxPool2d"}


def _huge_param_cases():
    for name in WINDOW_CALLS:
        for v in HUGE + NEG_HUGE:
            yield name, dict(kernel_size=v), "kernel_size"
            yield name, dict(kernel_size=(2, v)), "kernel_size"
            yield name, dict(kernel_size=2, stride=v), "stride"
            yield name, dict(kernel_size=2, padding=v), "padding"
            if name in HAS_DILATION:
                yield name, dict(kernel_size=2, dilation=v), "dilation"
    for name in UNPOOL_CALLS:
        for v in HUGE + NEG_HUGE:
            yield name, dict(kernel_size=v), "kernel_size"
            yield name, dict(kernel_size=2, stride=(1, v)), "stride"
            yield name, dict(kernel_size=2, padding=v), "padding"


@pytest.mark.parametrize("name,kwargs,param", list(_huge_param_cases()),
                         ids=lambda v: str(v) if not isinstance(v, dict) else
                         ",".join(f"{k}={w}" for k, w in v.items()))
def test_huge_window_parameters_fail_fast_without_allocating(name, kwargs, param):
    calls = WINDOW_CALLS if name in WINDOW_CALLS else UNPOOL_CALLS
    exc = fails_fast(lambda: calls[name](**kwargs))
    assert param in str(exc)


@pytest.mark.parametrize("v", HUGE + [-(2**62)])
def test_huge_divisor_override_fails_fast(v):
    fails_fast(lambda: poolkit.avg_pool2d(X, 2, divisor_override=v), match="divisor_override")
    fails_fast(lambda: poolkit.AvgPool2d(2, divisor_override=v), match="divisor_override")


@pytest.mark.parametrize("size", [2**31, 2**62, 2**100, (2, 2**63), -(2**62)])
def test_huge_output_size_fails_fast(size):
    x = np.zeros((1, 1, 4, 4))
    for f in (lambda: poolkit.adaptive_avg_pool2d(x, size),
              lambda: poolkit.adaptive_max_pool2d(x, size, return_indices=True),
              lambda: poolkit.AdaptiveAvgPool2d(size), lambda: poolkit.AdaptiveMaxPool2d(size)):
        fails_fast(f, match="output_size")


@pytest.mark.parametrize("size", [(2**31, 4), (2**62, 4), (4, 2**100), 2**63])
def test_huge_cam_size_fails_fast(size):
    f = np.zeros((1, 2, 3, 3))
    w = np.zeros((4, 2))
    fails_fast(lambda: poolkit.class_activation_map(f, w, 0, size=size), match="size")


@pytest.mark.parametrize("n_threads", [2**62, 2**100, np.uint64(2**64 - 1)])
def test_huge_n_threads_is_capped_not_passed_to_openmp(n_threads):
    # libgomp crashed (SIGSEGV) when asked for a team of 65536 threads; poolkit caps the team
    # at max(256, 8 * CPUs). A big enough input that a team is really started:
    x = np.random.default_rng(0).standard_normal((4, 8, 64, 64))
    np.testing.assert_array_equal(poolkit.max_pool2d(x, 2, n_threads=n_threads),
                                  poolkit.max_pool2d(x, 2, n_threads=1))
    assert poolkit._threads.resolve(n_threads, 1 << 30) == poolkit._threads.max_team()


@pytest.mark.parametrize("n_threads", [-(2**62), -(2**100)])
def test_huge_negative_n_threads_is_a_value_error(n_threads):
    fails_fast(lambda: poolkit.max_pool2d(X, 2, n_threads=n_threads), match="n_threads")
    fails_fast(lambda: poolkit.MaxPool2d(2, n_threads=n_threads), match="n_threads")


# --------------------------------------------------------------- sizes overflowing 64 bits

OVERFLOW_SHAPES = [(2**20, 2**20, 2**30, 2**30), (1, 1, MAX, MAX), (MAX, MAX, 4, 4)]


@pytest.mark.parametrize("shape", OVERFLOW_SHAPES)
def test_backward_input_shape_overflowing_64_bits_is_a_value_error(shape):
    lead = shape[:2]
    g_global = zero_stride(lead) if math.prod(lead) * 8 < 2**63 else None
    cases = [
        lambda: poolkit.max_pool2d_backward(zero_stride(lead + (1, 1)),
                                            zero_stride(lead + (1, 1), np.int64), shape),
        lambda: poolkit.avg_pool2d_backward(zero_stride(lead + (1, 1)), shape,
                                            shape[-1], ceil_mode=True),
        lambda: poolkit.adaptive_avg_pool2d_backward(zero_stride(lead + (1, 1)), shape),
        lambda: poolkit.adaptive_max_pool2d_backward(
            zero_stride(lead + (1, 1)), zero_stride(lead + (1, 1), np.int64), shape),
        lambda: poolkit.stochastic_pool2d_backward(
            zero_stride(lead + (1, 1)), shape, zero_stride(lead + (1, 1), np.int64)),
    ]
    if g_global is not None:
        cases += [lambda: poolkit.global_avg_pool2d_backward(g_global, shape)]
    for f in cases:
        exc = fails_fast(f, max_s=2.0)
        assert "shape" in str(exc) or "size" in str(exc), exc


def test_global_max_backward_input_shape_overflowing_64_bits_is_a_value_error():
    lead = (2**20, 2**20)
    fails_fast(lambda: poolkit.global_max_pool2d_backward(
        zero_stride(lead), zero_stride(lead, np.int64), lead + (2**30, 2**30)), max_s=2.0)


def test_output_size_overflowing_64_bits_is_a_value_error():
    x = zero_stride((2**20, 2**20, 4, 4))
    for f in (lambda: poolkit.adaptive_avg_pool2d(x, MAX),
              lambda: poolkit.adaptive_max_pool2d(x, (MAX, MAX))):
        exc = fails_fast(f)
        assert "shape" in str(exc)


def test_unpool_output_overflowing_64_bits_is_a_value_error():
    x = zero_stride((2**16, 2**16, 1, 1))
    idx = zero_stride((2**16, 2**16, 1, 1), np.int64)
    fails_fast(lambda: poolkit.max_unpool2d(x, idx, (2**30, 2**30)), match="shape")


@pytest.mark.parametrize("shape", [(1, 1, 2**31, 4), (1, 1, 4, 2**40), (2**10, 2**10, 2**31, 1)])
def test_input_planes_above_the_limit_are_rejected_before_copying(shape):
    x = zero_stride(shape)
    for f in (lambda: poolkit.max_pool2d(x, 2), lambda: poolkit.avg_pool2d(x, 2),
              lambda: poolkit.stochastic_pool2d(x, 2, rng=0),
              lambda: poolkit.global_avg_pool2d(x), lambda: poolkit.global_max_pool2d(x),
              lambda: poolkit.adaptive_avg_pool2d(x, 1),
              lambda: poolkit.adaptive_max_pool2d(x, 1)):
        fails_fast(f, match="2147483647|plane")


def test_huge_batches_with_bad_parameters_fail_before_copying():
    # 2**40 planes declared: the parameter check comes before the contiguous copy.
    x = zero_stride((2**20, 2**20, 4, 4))
    for f in (lambda: poolkit.max_pool2d(x, 5), lambda: poolkit.avg_pool2d(x, 2, padding=2),
              lambda: poolkit.stochastic_pool2d(x, 0), lambda: poolkit.max_pool2d(x, 2**62),
              lambda: poolkit.max_pool2d(x, 2, out=np.zeros(3))):
        fails_fast(f)


def test_empty_batches_with_huge_declared_sizes_return_empty_results():
    x = zero_stride((0, 2**40, 4, 4))
    assert poolkit.max_pool2d(x, 2).shape == (0, 2**40, 2, 2)
    assert poolkit.global_avg_pool2d(x).shape == (0, 2**40)
    v, i = poolkit.adaptive_max_pool2d(x, 3, return_indices=True)
    assert v.shape == i.shape == (0, 2**40, 3, 3) and i.dtype == np.int64


# ------------------------------------------------------------------- the shape arithmetic

BIG_L = [1, 2, 3, 2**31 - 1, 2**31 - 2, 2**30 + 3]
WINDOWS = [(1, 1, 0, 1), (2, 2, 0, 1), (3, 1, 1, 1), (3, 2, 1, 2), (2**30, 2**30, 2**29, 1),
           (MAX, 1, 2**30, 1), (MAX, MAX, 2**30 - 1, 1), (3, MAX, 2**30, 2**30),
           (5, 7, 3, 2**29 - 1)]


@pytest.mark.parametrize("L", BIG_L)
@pytest.mark.parametrize("k,s,p,d", WINDOWS)
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pool_params_exact_on_planes_up_to_the_limit(L, k, s, p, d, ceil_mode):
    """pool_params on a (L, L) plane: the output size of DESIGN.md's formula, in unbounded
    integers (the reference's), or a ValueError naming the problem; fast either way."""
    t0 = time.perf_counter()
    try:
        prm = _params.pool_params((L, L), k, s, p, d, ceil_mode)
    except ValueError as exc:
        assert time.perf_counter() - t0 < 0.5
        e = d * (k - 1) + 1
        n = reference.pool_output_size(L, k, s, p, d, ceil_mode)
        assert 2 * p > e or n < 1 or "holds no input" in str(exc) or "validate" in str(exc), exc
        return
    assert time.perf_counter() - t0 < 0.5
    n = reference.pool_output_size(L, k, s, p, d, ceil_mode)
    assert prm.out_hw == (n, n)
    assert _params.output_size(L, k, s, p, d, ceil_mode) == n
    # every position a kernel computes fits int64 with room to spare
    assert (n - 1) * s + (k - 1) * d < 2**63 // 4
    assert L * L < 2**63 and n * n < 2**63


def test_window_hit_check_decides_huge_dilations_in_bounded_time():
    # d = 2**31 - 1 > L: each padded window holds at most one input tap; the check looks at
    # one period of window starts, not at every window.
    for L in (1, 2, 5):
        for p in (1, 2**29, 2**30 - 1):
            t0 = time.perf_counter()
            try:
                _params.pool_params((L, L), 3, 1, p, MAX - 1, False)
            except ValueError:
                pass
            assert time.perf_counter() - t0 < 0.5


@pytest.mark.parametrize("L,d,p,s", [(1, 2, 1, 1), (3, 4, 2, 3), (2, 5, 4, 2), (4, 7, 5, 3),
                                     (5, 9, 9, 4)])
def test_window_hit_check_agrees_with_brute_force(L, d, p, s):
    k = 3
    ok = True
    try:
        n = reference.pool_output_size(L, k, s, p, d, False)
        if 2 * p > d * (k - 1) + 1 or n < 1:
            pytest.skip("invalid for another reason")
        for o in range(n):
            start = o * s - p
            ok &= any(0 <= start + i * d < L for i in range(k))
    except ValueError:
        pytest.skip("invalid")
    if ok:
        _params.pool_params((L, L), k, s, p, d, False)
    else:
        with pytest.raises(ValueError, match="holds no input position"):
            _params.pool_params((L, L), k, s, p, d, False)


@pytest.mark.parametrize("L", [1, 7, 2**31 - 1, 2**30 + 1])
@pytest.mark.parametrize("n_out", [1, 3, 7, 2**31 - 1])
def test_adaptive_windows_exact_near_the_limit(L, n_out):
    if n_out > 1000:  # the windows themselves are many; check the ends
        first, last = ((0 * L) // n_out, -((-1 * L) // n_out)), (
            ((n_out - 1) * L) // n_out, L)
        assert reference.adaptive_window(0, L, n_out) == first
        assert reference.adaptive_window(n_out - 1, L, n_out) == last
        return
    wins = adaptive_windows(L, n_out)
    assert wins == [reference.adaptive_window(o, L, n_out) for o in range(n_out)]
    assert all(0 <= a < b <= L for a, b in wins)


def test_output_hw_limits():
    assert output_hw((MAX, None), (3, 5)) == (MAX, 5)
    with pytest.raises(ValueError, match="output_size"):
        output_hw(MAX + 1)


@pytest.mark.parametrize("in_hw,k,s,p", [((1, 1), MAX, 1, 0), ((2, 2), 2**30, 2**30, 0),
                                        ((3, 3), 2**30 - 1, 1, 2**29)])
def test_unpool_output_size_near_the_limit(in_hw, k, s, p):
    shape = (1, 1) + in_hw
    expect = tuple((in_hw[d] - 1) * s - 2 * p + k for d in range(2))
    if all(1 <= e <= MAX for e in expect):
        assert unpool_output_size(shape, k, s, p) == expect
    else:
        with pytest.raises(ValueError):
            unpool_output_size(shape, k, s, p)


# ------------------------------------------------------- int64 fallback of compact indices

def test_max_pool_int64_fallback_for_taps_spanning_2_30_rows():
    """(kh - 1) * dh >= 2**30 // W: the kernel cannot keep int32 window offsets and takes the
    int64 path. kernel (3, 1), dilation (2**19, 1), padding (2**19, 0): each window's only
    input tap is its middle one, row oh -- so the result is x itself, index oh * W + ow."""
    H, W = 4, 1024
    x = np.random.default_rng(0).standard_normal((2, 1, H, W))
    v, i = poolkit.max_pool2d(x, (3, 1), 1, (2**19, 0), (2**19, 1), return_indices=True)
    np.testing.assert_array_equal(v, x)
    np.testing.assert_array_equal(i[0, 0], np.arange(H * W).reshape(H, W))
    assert i.dtype == np.int64
    g = poolkit.max_pool2d_backward(v, i, x.shape)
    np.testing.assert_array_equal(g, x)


def test_max_pool_int64_fallback_for_taps_spanning_2_30_columns():
    """(kw - 1) * dw + W >= 2**30: the int64 path along W."""
    H, W = 3, 5
    x = np.random.default_rng(1).standard_normal((1, 2, H, W)).astype(np.float32)
    v, i = poolkit.max_pool2d(x, (1, 3), 1, (0, 2**29), (1, 2**29), return_indices=True)
    np.testing.assert_array_equal(v, x)
    np.testing.assert_array_equal(i[0, 1], np.arange(H * W).reshape(H, W))


def test_user_indices_are_widened_to_int64_never_wrapped():
    g = np.ones((1, 1, 1, 2))
    shape = (1, 1, 2, 2)
    for dt in (np.int8, np.int16, np.int32, np.uint8, np.uint32, np.uint64):
        out = poolkit.max_pool2d_backward(g, np.array([[[[3, 0]]]], dtype=dt), shape)
        np.testing.assert_array_equal(out, [[[[1.0, 0.0], [0.0, 1.0]]]])
    # a uint64 index of 2**64 - 1 is not -1, and 2**32 + 1 is not 1
    for bad in (np.uint64(2**64 - 1), np.uint64(2**63), np.int64(2**32 + 1)):
        idx = np.array([[[[bad, 0]]]], dtype=type(bad))
        with pytest.raises(ValueError, match="indices"):
            poolkit.max_pool2d_backward(g, idx, shape)
        with pytest.raises(ValueError, match="indices"):
            poolkit.max_unpool2d(g, idx, 2)


def test_indices_dtype_is_int64_everywhere():
    x = np.random.default_rng(2).standard_normal((1, 2, 5, 5))
    for r in (poolkit.max_pool2d(x, 2, return_indices=True),
              poolkit.global_max_pool2d(x, return_indices=True),
              poolkit.adaptive_max_pool2d(x, 2, return_indices=True),
              poolkit.stochastic_pool2d(np.abs(x), 2, rng=0, return_indices=True)):
        assert r[1].dtype == np.int64


# ---------------------------------------------------------------------------- known issue

def test_huge_valid_kernel_is_fast():
    # The kernels visit only the taps that reach the input: visiting all 2**30 taps of these
    # windows would take minutes (a hang check with a wide margin, not a performance test).
    x = np.ones((1, 1, 3, 3))
    t0 = time.perf_counter()
    assert poolkit.avg_pool2d(x, (3, 2**30), ceil_mode=True)[0, 0, 0, 0] == 1.0
    assert poolkit.avg_pool2d_backward(np.ones((1, 1, 1, 1)), (1, 1, 3, 3), (3, 2**30),
                                       ceil_mode=True)[0, 0, 2, 2] == 1.0 / 9
    v, i = poolkit.max_pool2d(x, 2**28, padding=2**27, return_indices=True)
    assert v[0, 0, 0, 0] == 1.0 and i[0, 0, 0, 0] == 0
    assert poolkit.max_pool2d(x, (2**28, 3), padding=(2**27, 1))[0, 0, 0, 0] == 1.0
    v, i = poolkit.max_pool2d(x, 2**28, padding=(2**27, 2**28 - 1), dilation=(1, 2),
                            return_indices=True)
    assert v[0, 0, 0, 0] == 1.0
    assert poolkit.stochastic_pool2d(x, (3, 2**30), ceil_mode=True, training=False)[
        0, 0, 0, 0] == 1.0
    assert time.perf_counter() - t0 < 2.0


# ------------------------------------------------------------------------ big planes (opt-in)

@pytest.mark.skipif(os.environ.get("POOLKIT_BIGMEM") != "1",
                    reason="needs ~25 GiB of memory: set POOLKIT_BIGMEM=1")
def test_int64_indices_on_a_plane_above_2_31():
    """H * W = 2**31 + 2**16: argmax positions above 2**31 come back exact (int64), and the
    backward passes route to them."""
    H, W = 2**16 + 2, 2**15
    assert H * W > 2**31
    x = np.zeros((1, 1, H, W), dtype=np.float32)
    h, w = H - 1, W - 3              # flat position 2**31 + 2**16 + 2**15 - 3 > 2**31
    x[0, 0, h, w] = 5.0
    x[0, 0, 0, 1] = 4.0
    pos = h * W + w
    assert pos > 2**31
    v, i = poolkit.max_pool2d(x, 2, return_indices=True)
    assert i.dtype == np.int64 and i[0, 0, h // 2, w // 2] == pos and v[0, 0, h // 2, w // 2] == 5
    assert i[0, 0, 0, 0] == 1
    g = np.zeros_like(v)
    g[0, 0, h // 2, w // 2] = 1.0
    gi = poolkit.max_pool2d_backward(g, i, x.shape)
    assert gi[0, 0, h, w] == 1.0 and gi.sum() == 1.0
    del gi, g, v, i
    gv, gidx = poolkit.global_max_pool2d(x, return_indices=True)
    assert gidx[0, 0] == pos and gv[0, 0] == 5.0
    _, aidx = poolkit.adaptive_max_pool2d(x, (2, 2), return_indices=True)
    assert aidx[0, 0, 1, 1] == pos
    grad = poolkit.global_max_pool2d_backward(np.ones((1, 1), np.float32), gidx, x.shape)
    assert grad[0, 0, h, w] == 1.0
    del grad
    up = poolkit.max_unpool2d(np.array([[[[7.0]]]], np.float32),
                              np.array([[[[pos]]]]), 1, output_size=(H, W))
    assert up[0, 0, h, w] == 7.0 and up.sum() == 7.0
