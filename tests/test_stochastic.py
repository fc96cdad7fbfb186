"""Stochastic pooling (issue 3): sampling statistics, gradients, zero windows, determinism,
agreement with the pure-Python reference, and every validation error.

Every random test uses fixed seeds, and results are bitwise reproducible for any thread count,
so the statistical thresholds below are checked once and cannot flake; they are also set far
out in the tails (6 standard deviations, or chi-square p-values around 1e-6), so that a
correct implementation passes for almost any seed one might choose instead.
"""

import numpy as np
import pytest
from _strategies import _draw_common
from hypothesis import assume, given
from hypothesis import strategies as st

import poolkit
from poolkit import reference
from poolkit._ref_stochastic import splitmix64, stochastic_uniform

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64])
IMPLS = pytest.mark.parametrize("impl", [poolkit, reference], ids=["poolkit", "reference"])
THREADS = (1, 2, None, -1)

# Window configurations: the fused 2x2/s2 path, and the general path with padding, overlap,
# ceil mode and non-square windows.
WINDOWS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1), ceil_mode=True),
    dict(kernel_size=(3, 1), stride=1),
]
WINDOW_IDS = ["2x2s2", "3x3s2p1", "2x3s1-2p1ceil", "3x1s1"]


def relu_input(shape, dtype, seed=0, zero_frac=0.0):
    """ReLU-like activations: |normal|, with about `zero_frac` of them set to exactly 0."""
    rng = np.random.default_rng(seed)
    x = np.abs(rng.standard_normal(shape))
    x[rng.random(shape) < zero_frac] = 0.0
    return x.astype(dtype)


def windows_first_position(shape_hw, out_hw, k, s, p):
    """Flat index of the first input position of every window, (OH, OW)."""
    W = shape_hw[1]
    OH, OW = out_hw
    h0 = np.maximum(np.arange(OH) * s[0] - p[0], 0)
    w0 = np.maximum(np.arange(OW) * s[1] - p[1], 0)
    return h0[:, None] * W + w0[None, :]


# ============================================================================ the stream


def test_splitmix64_known_answers():
    # Vigna's splitmix64.c seeded with 1234567 (the values other implementations test against).
    assert [splitmix64(1234567, n) for n in range(1, 6)] == [
        6457827717110365317, 3203168211198807973, 9817491932198370423,
        4593380528125082431, 16408922859458223821,
    ]


def test_uniforms_are_in_unit_interval_with_documented_resolution():
    for g in range(200):
        u32 = stochastic_uniform(99, g, np.float32)
        u64 = stochastic_uniform(99, g, np.float64)
        assert u32.dtype == np.float32 and u64.dtype == np.float64
        assert 0 <= u32 < 1 and 0 <= u64 < 1
        assert float(u32) * 2**24 == int(float(u32) * 2**24)   # 24 bits
        assert float(u64) * 2**53 == int(float(u64) * 2**53)   # 53 bits
    # float32 takes the low then the high 32-bit half of one 64-bit output.
    z = splitmix64(7, 1)
    assert stochastic_uniform(7, 0, np.float32) == np.float32((z & 0xFFFFFFFF) >> 8) * 2.0**-24
    assert stochastic_uniform(7, 1, np.float32) == np.float32((z >> 32) >> 8) * 2.0**-24


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_kernels_uniforms_are_the_stream(dtype):
    # The kernels make their uniforms in vector blocks (4 outputs for float64, 4 pairs of
    # halves for float32) with a scalar head and tail: every start parity and every length
    # up to a few blocks, outputs near the end of the 64-bit counter.
    from poolkit._stochastic_pool import uniform_stream
    for key in (0, 99, 2**64 - 1, 0x9E3779B97F4A7C15):
        for g0 in (0, 1, 2, 3, 7, 2**63 - 1, 2**64 - 40):
            for n in range(0, 40):
                u = np.full(n, np.nan, dtype)
                uniform_stream(key, g0, u)
                want = [stochastic_uniform(key, g0 + i, dtype) for i in range(n)]
                assert u.tobytes() == np.array(want, dtype).tobytes(), (key, g0, n)


# ============================================================================ worked examples


@IMPLS
@DTYPES
def test_worked_example_inference_and_gradient(impl, dtype):
    x = np.array([[[[0.0, 1.0], [1.0, 2.0]]]], dtype=dtype)
    y = impl.stochastic_pool2d(x, 2, training=False)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, [[[[1.5]]]])  # (0 + 1 + 1 + 4) / 4
    g = np.ones((1, 1, 1, 1), dtype=dtype)
    gi = impl.stochastic_pool2d_backward(g, x=x, kernel_size=2)
    # (2 a_j S - sum(a^2)) / S^2 = (8 a_j - 6) / 16
    np.testing.assert_array_equal(gi, [[[[-0.375, 0.125], [0.125, 0.625]]]])


@IMPLS
@DTYPES
def test_single_positive_value_is_always_chosen(impl, dtype):
    x = np.zeros((1, 3, 4, 4), dtype=dtype)
    x[0, :, 1, 2] = 5.0  # the only positive value of window (0, 1)
    for seed in range(5):
        v, i = impl.stochastic_pool2d(x, 2, rng=seed, return_indices=True)
        assert v[0, 0, 0, 1] == 5.0 and i[0, 0, 0, 1] == 1 * 4 + 2
    np.testing.assert_array_equal(impl.stochastic_pool2d(x, 2, training=False)[0, 0, 0, 1], 5.0)


@DTYPES
def test_training_output_is_a_value_of_its_window(dtype):
    x = relu_input((3, 4, 9, 10), dtype, seed=3, zero_frac=0.3)
    for kw in WINDOWS:
        v, idx = poolkit.stochastic_pool2d(x, rng=11, return_indices=True, **kw)
        planes = x.reshape(3, 4, -1)
        np.testing.assert_array_equal(v, np.take_along_axis(planes, idx.reshape(3, 4, -1),
                                                            -1).reshape(v.shape))
        # Only positive values are ever sampled from a window with a positive sum.
        ref_sum = poolkit.avg_pool2d(x, count_include_pad=False, **kw) > 0
        assert np.all(v[ref_sum] > 0)


# ============================================================================ statistics


@DTYPES
def test_sampling_frequencies_chi_square(dtype):
    """200 000 windows [[1, 2], [3, 4]]: position frequencies 0.1, 0.2, 0.3, 0.4."""
    M = 100_000
    x = np.tile(np.array([[1.0, 2.0], [3.0, 4.0]], dtype=dtype), (2, 1, 1, M))  # (2,1,2,2M)
    _, idx = poolkit.stochastic_pool2d(x, 2, rng=20130116, return_indices=True)
    W = 2 * M
    offset = idx - 2 * np.arange(M)  # position inside the window: 0, 1, W, W + 1
    counts = np.array([(offset == o).sum() for o in (0, 1, W, W + 1)])
    assert counts.sum() == 2 * M
    expected = 2 * M * np.array([0.1, 0.2, 0.3, 0.4])
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 30.0, (counts, chi2)  # 3 degrees of freedom: P(chi2 > 30) ~ 1.4e-6


@DTYPES
def test_sampling_frequencies_with_zeros_and_padding(dtype):
    """Blocks [0, 5, 0, 15] pooled by (1, 4) windows, stride 4, two padded columns each side:
    window o covers columns 4o - 2 ... 4o + 1. Padded and zero positions are never chosen."""
    M = 50_000
    x = np.tile(np.array([0.0, 5.0, 0.0, 15.0], dtype=dtype), M).reshape(1, 1, 1, 4 * M)
    _, idx = poolkit.stochastic_pool2d(x, (1, 4), stride=(1, 4), padding=(0, 2), rng=7,
                                       return_indices=True)
    pos = idx[0, 0, 0]
    assert pos.shape == (M + 1,)
    values = x[0, 0, 0, pos]
    assert np.all(values > 0)   # never a zero, and every index lies inside the plane
    assert values[0] == 5.0     # [pad, pad, 0, 5]
    assert values[M] == 15.0    # [0, 15, pad, pad]
    n = M - 1                   # the windows [0, 15, 0, 5]: 15 with probability 3/4
    n15 = (values[1:M] == 15.0).sum()
    z = (n15 - 0.75 * n) / np.sqrt(n * 0.75 * 0.25)
    assert abs(z) < 6, (n15, n, z)


@DTYPES
def test_sampling_frequencies_varied_windows(dtype):
    """Random windows (3x3, stride 2, padding 1): for each tap position the number of times it
    is chosen matches the sum of its probabilities (a z-score over ~100 000 windows)."""
    x = relu_input((4, 16, 32, 32), dtype, seed=5, zero_frac=0.4)
    kw = dict(kernel_size=3, stride=2, padding=1)
    _, idx = poolkit.stochastic_pool2d(x, rng=2013, return_indices=True, **kw)
    W = x.shape[-1]
    OH, OW = idx.shape[-2:]
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    taps = np.stack([xp[:, :, i:i + 2 * OH:2, j:j + 2 * OW:2]
                     for i in range(3) for j in range(3)], axis=-1)  # (N, C, OH, OW, 9)
    total = taps.sum(-1, keepdims=True)
    live = total[..., 0] > 0
    prob = np.where(total > 0, taps / np.where(total > 0, total, 1), 0)
    # Tap number of each chosen index (h, w) in its padded window.
    h, w = np.divmod(idx, W)
    tap = (h + 1 - 2 * np.arange(OH)[:, None]) * 3 + (w + 1 - 2 * np.arange(OW)[None, :])
    assert tap.min() >= 0 and tap.max() < 9
    for t in range(9):
        count = ((tap == t) & live).sum()
        mean = prob[..., t][live].sum()
        var = (prob[..., t] * (1 - prob[..., t]))[live].sum()
        if var > 0:
            assert abs(count - mean) < 6 * np.sqrt(var) + 1, (t, count, mean)
        else:
            assert count == round(mean)


@DTYPES
def test_mean_of_training_outputs_converges_to_inference(dtype):
    x = relu_input((3, 7, 8), dtype, seed=1, zero_frac=0.3)
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    y = poolkit.stochastic_pool2d(x, training=False, **kw).astype(np.float64)
    K = 4000
    tiled = np.broadcast_to(x, (K,) + x.shape)  # K independent draws in one call
    samples = poolkit.stochastic_pool2d(tiled, rng=12345, **kw).astype(np.float64)
    mean = samples.mean(axis=0)
    sd = samples.std(axis=0)
    assert np.all(np.abs(mean - y) <= 6 * sd / np.sqrt(K) + 1e-5 * y + 1e-12), (mean - y)


# ============================================================================ gradients


@DTYPES
@pytest.mark.parametrize("kw", WINDOWS, ids=WINDOW_IDS)
def test_training_backward_routes_to_sampled_position_only(kw, dtype):
    x = relu_input((2, 3, 7, 9), dtype, seed=2, zero_frac=0.2)
    v, idx = poolkit.stochastic_pool2d(x, rng=5, return_indices=True, **kw)
    g = np.random.default_rng(6).standard_normal(v.shape).astype(dtype)
    gi = poolkit.stochastic_pool2d_backward(g, x.shape, idx)
    want = np.zeros((2, 3, 7 * 9))
    for n in range(2):
        for c in range(3):
            np.add.at(want[n, c], idx[n, c].ravel(), g[n, c].ravel().astype(np.float64))
    want = want.reshape(x.shape)
    np.testing.assert_allclose(gi, want, rtol=1e-6, atol=1e-6)
    sampled = np.zeros(x.shape, bool).reshape(2, 3, -1)
    for n in range(2):
        for c in range(3):
            sampled[n, c, idx[n, c].ravel()] = True
    assert np.all(gi.reshape(2, 3, -1)[~sampled] == 0)  # nothing anywhere else
    if kw == WINDOWS[0]:  # non-overlapping windows: the gradient sum is conserved exactly
        np.testing.assert_allclose(gi.sum(dtype=np.float64), g.sum(dtype=np.float64),
                                   rtol=1e-6)


@pytest.mark.parametrize("kw", WINDOWS, ids=WINDOW_IDS)
def test_inference_backward_finite_differences(kw):
    rng = np.random.default_rng(8)
    x = rng.uniform(0.2, 2.0, size=(1, 2, 5, 6))  # away from 0: x +- eps stays valid
    y = poolkit.stochastic_pool2d(x, training=False, **kw)
    g = rng.standard_normal(y.shape)
    analytic = poolkit.stochastic_pool2d_backward(g, x=x, **kw)
    eps = 1e-6
    numeric = np.zeros_like(x)
    for pos in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[pos] += eps
        xm[pos] -= eps
        lp = (g * poolkit.stochastic_pool2d(xp, training=False, **kw)).sum()
        lm = (g * poolkit.stochastic_pool2d(xm, training=False, **kw)).sum()
        numeric[pos] = (lp - lm) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


# ============================================================================ zero windows


@IMPLS
@DTYPES
@pytest.mark.parametrize("kw", WINDOWS, ids=WINDOW_IDS)
def test_zero_windows(impl, kw, dtype):
    shape = (2, 2, 5, 7)
    x = np.zeros(shape, dtype=dtype)
    v, idx = impl.stochastic_pool2d(x, rng=1, return_indices=True, **kw)
    assert np.all(v == 0)
    k = kw["kernel_size"] if isinstance(kw["kernel_size"], tuple) else (kw["kernel_size"],) * 2
    s = kw.get("stride") or k
    s = s if isinstance(s, tuple) else (s, s)
    p = kw.get("padding", 0)
    p = p if isinstance(p, tuple) else (p, p)
    first = windows_first_position(shape[-2:], v.shape[-2:], k, s, p)
    np.testing.assert_array_equal(idx, np.broadcast_to(first, idx.shape))  # never padding
    # Inference: output 0, gradient 0.
    assert np.all(impl.stochastic_pool2d(x, training=False, **kw) == 0)
    g = np.ones(v.shape, dtype=dtype)
    assert np.all(impl.stochastic_pool2d_backward(g, x=x, **kw) == 0)
    # Training: the gradient goes to the recorded first input position.
    gi = impl.stochastic_pool2d_backward(g, shape, idx)
    assert gi.sum() == g.sum() and np.all(gi.reshape(2, 2, -1)[:, :, first.ravel()] > 0)


@DTYPES
def test_zero_windows_among_positive_ones(dtype):
    x = relu_input((2, 3, 8, 8), dtype, seed=4)
    x[:, :, 2:4, 4:6] = 0  # window (1, 2) of the 2x2 grid
    x[:, :, 0:3, 0:3] = 0  # windows (0, 0) of the 3x3/s2/p1 grid
    v, idx = poolkit.stochastic_pool2d(x, 2, rng=3, return_indices=True)
    assert np.all(v[:, :, 1, 2] == 0) and np.all(idx[:, :, 1, 2] == 2 * 8 + 4)
    zero = np.zeros((4, 4), bool)
    zero[1, 2] = zero[0, 0] = True  # x[0:3, 0:3] = 0 empties 2x2 window (0, 0) as well
    assert np.all(v[:, :, zero] == 0) and np.all(v[:, :, ~zero] > 0)
    y = poolkit.stochastic_pool2d(x, 3, 2, 1, training=False)
    assert np.all(y[:, :, 0, 0] == 0) and np.all(y[:, :, 1:, 1:] > 0)


def test_float32_window_sum_overflow():
    """Finite float32 values whose window sum overflows: the threshold u * inf = inf is never
    exceeded, so the last positive position is chosen (as the rule says); inference sums in
    float64 and stays finite."""
    big = np.float32(3e38)
    x = np.tile(np.array([[big, big], [0, 0]], dtype=np.float32), (1, 2, 1, 50))
    v, idx = poolkit.stochastic_pool2d(x, 2, rng=9, return_indices=True)
    rv, ridx = reference.stochastic_pool2d(x, 2, rng=9, return_indices=True)
    np.testing.assert_array_equal(idx, ridx)
    np.testing.assert_array_equal(v, rv)
    assert np.all(idx == 2 * np.arange(50) + 1)  # u == 0 (odds 2**-24) would pick position 0
    y = poolkit.stochastic_pool2d(x, 2, training=False)
    np.testing.assert_allclose(y, big, rtol=1e-6)


# ============================================================================ determinism


@DTYPES
@pytest.mark.parametrize("kw", WINDOWS, ids=WINDOW_IDS)
def test_bitwise_identical_for_every_thread_count(kw, dtype):
    x = relu_input((4, 8, 33, 35), dtype, seed=9, zero_frac=0.3)  # big enough for threads
    base_v, base_i = poolkit.stochastic_pool2d(x, rng=42, return_indices=True, n_threads=1,
                                               **kw)
    base_y = poolkit.stochastic_pool2d(x, training=False, n_threads=1, **kw)
    g = np.random.default_rng(1).standard_normal(base_y.shape).astype(dtype)
    base_g = poolkit.stochastic_pool2d_backward(g, x=x, n_threads=1, **kw)
    base_t = poolkit.stochastic_pool2d_backward(g, x.shape, base_i, n_threads=1)
    for nt in THREADS[1:]:
        v, i = poolkit.stochastic_pool2d(x, rng=42, return_indices=True, n_threads=nt, **kw)
        assert v.tobytes() == base_v.tobytes() and i.tobytes() == base_i.tobytes()
        y = poolkit.stochastic_pool2d(x, training=False, n_threads=nt, **kw)
        assert y.tobytes() == base_y.tobytes()
        assert poolkit.stochastic_pool2d_backward(
            g, x=x, n_threads=nt, **kw).tobytes() == base_g.tobytes()
        assert poolkit.stochastic_pool2d_backward(
            g, x.shape, base_i, n_threads=nt).tobytes() == base_t.tobytes()


@DTYPES
def test_rng_follows_spec7(dtype):
    x = relu_input((2, 4, 10, 10), dtype, seed=0)
    a = poolkit.stochastic_pool2d(x, 2, rng=5, return_indices=True)[1]
    b = poolkit.stochastic_pool2d(x, 2, rng=5, return_indices=True)[1]
    np.testing.assert_array_equal(a, b)  # same int seed, same result
    c = poolkit.stochastic_pool2d(x, 2, rng=np.random.default_rng(5), return_indices=True)[1]
    np.testing.assert_array_equal(a, c)  # an int seed means default_rng(seed)
    assert not np.array_equal(a, poolkit.stochastic_pool2d(x, 2, rng=6, return_indices=True)[1])
    gen = np.random.default_rng(5)
    first = poolkit.stochastic_pool2d(x, 2, rng=gen, return_indices=True)[1]
    second = poolkit.stochastic_pool2d(x, 2, rng=gen, return_indices=True)[1]
    np.testing.assert_array_equal(first, a)
    assert not np.array_equal(first, second)  # a Generator advances: one key per call
    # The key is rng.integers(0, 2**64, dtype=uint64): a Generator advanced by exactly that
    # draw gives the second result.
    g2 = np.random.default_rng(5)
    g2.integers(0, 2**64, dtype=np.uint64)
    np.testing.assert_array_equal(
        poolkit.stochastic_pool2d(x, 2, rng=g2, return_indices=True)[1], second)
    # None: fresh entropy, still a valid sample.
    v, i = poolkit.stochastic_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(v, np.take_along_axis(x.reshape(2, 4, -1),
                                                        i.reshape(2, 4, -1), -1).reshape(v.shape))
    # Inference ignores rng and does not advance a Generator.
    gen = np.random.default_rng(5)
    poolkit.stochastic_pool2d(x, 2, training=False, rng=gen)
    np.testing.assert_array_equal(poolkit.stochastic_pool2d(x, 2, rng=gen, return_indices=True)[1],
                                  a)


@DTYPES
def test_3d_input_matches_batch_of_one(dtype):
    x = relu_input((3, 9, 8), dtype, seed=2)
    v3, i3 = poolkit.stochastic_pool2d(x, 3, 2, 1, rng=4, return_indices=True)
    v4, i4 = poolkit.stochastic_pool2d(x[None], 3, 2, 1, rng=4, return_indices=True)
    assert v3.shape == (3, 5, 4)
    np.testing.assert_array_equal(v3, v4[0])
    np.testing.assert_array_equal(i3, i4[0])
    np.testing.assert_array_equal(
        poolkit.stochastic_pool2d_backward(np.ones_like(v3), x=x, kernel_size=3, stride=2,
                                           padding=1),
        poolkit.stochastic_pool2d_backward(np.ones_like(v4), x=x[None], kernel_size=3,
                                           stride=2, padding=1)[0])


# ============================================================================ vs the reference


@st.composite
def stochastic_cases(draw):
    shape, params, _ = _draw_common(draw, 1, 0, 3, 3, 12, True)
    if draw(st.booleans()):  # the fused 2x2/s2 path, on even and odd planes
        params.update(kernel_size=2, stride=None, padding=0, ceil_mode=False)
        shape = shape[:-2] + (draw(st.integers(2, 12)), draw(st.integers(2, 12)))
    try:
        reference.stochastic_pool2d(np.zeros((1, 1) + shape[-2:]), training=False, **params)
    except ValueError:
        assume(False)
    return shape, params


def hypothesis_input(shape, dtype, kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "relu":
        x = np.maximum(rng.standard_normal(shape), 0)
    elif kind == "sparse":
        x = np.where(rng.random(shape) < 0.8, 0.0, rng.random(shape))
    elif kind == "ties":
        x = rng.integers(0, 3, size=shape).astype(np.float64)
    else:  # "wide": many orders of magnitude
        x = np.exp(rng.uniform(-30, 30, size=shape))
    return x.astype(dtype)


kinds = st.sampled_from(["relu", "sparse", "ties", "wide"])


@given(case=stochastic_cases(), dtype=st.sampled_from([np.float32, np.float64]), kind=kinds,
       seed=st.integers(0, 2**32 - 1), rng_seed=st.integers(0, 2**63))
def test_training_forward_matches_reference_bitwise(case, dtype, kind, seed, rng_seed):
    shape, params = case
    x = hypothesis_input(shape, dtype, kind, seed)
    v, i = poolkit.stochastic_pool2d(x, rng=rng_seed, return_indices=True, **params)
    rv, ri = reference.stochastic_pool2d(x, rng=rng_seed, return_indices=True, **params)
    assert v.shape == rv.shape and v.dtype == dtype and i.dtype == np.int64
    assert v.tobytes() == rv.tobytes()
    assert i.tobytes() == ri.tobytes()
    g = hypothesis_input(v.shape, dtype, "relu", seed + 1) - 0.25
    np.testing.assert_allclose(poolkit.stochastic_pool2d_backward(g, shape, i),
                               reference.stochastic_pool2d_backward(g, shape, ri),
                               rtol=1e-6, atol=1e-6)


@given(case=stochastic_cases(), dtype=st.sampled_from([np.float32, np.float64]), kind=kinds,
       seed=st.integers(0, 2**32 - 1))
def test_inference_matches_reference(case, dtype, kind, seed):
    shape, params = case
    x = hypothesis_input(shape, dtype, kind, seed)
    y = poolkit.stochastic_pool2d(x, training=False, **params)
    ry = reference.stochastic_pool2d(x, training=False, **params)
    assert y.shape == ry.shape and y.dtype == dtype
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y, ry, rtol=rtol, atol=0)
    g = hypothesis_input(y.shape, dtype, "relu", seed + 1) - 0.25
    gi = poolkit.stochastic_pool2d_backward(g, x=x, **params)
    rgi = reference.stochastic_pool2d_backward(g, x=x, **params)
    scale = np.abs(rgi).max(initial=0) + np.abs(g).max(initial=0)
    np.testing.assert_allclose(gi, rgi, rtol=rtol, atol=rtol * 16 * scale)


# ============================================================================ layouts, out=


def _layouts(a):
    ro = a.copy()
    ro.setflags(write=False)
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    big[..., ::2] = a
    return {
        "strided": big[..., ::2],
        "fortran": np.asfortranarray(a),
        "negative": np.ascontiguousarray(a[..., ::-1, ::-1])[..., ::-1, ::-1],
        "readonly": ro,
        "byteswapped": a.astype(a.dtype.newbyteorder(">" if a.dtype.byteorder != ">" else "<")),
    }


@DTYPES
def test_any_layout_gives_the_same_result_and_is_never_written(dtype, tmp_path):
    a = relu_input((2, 3, 7, 6), dtype, seed=1, zero_frac=0.2)
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    base = poolkit.stochastic_pool2d(a, rng=3, return_indices=True, **kw)
    base_y = poolkit.stochastic_pool2d(a, training=False, **kw)
    g = np.ones(base_y.shape, dtype)
    base_g = poolkit.stochastic_pool2d_backward(g, x=a, **kw)
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=dtype, shape=a.shape)
    mm[...] = a
    mm.flush()
    variants = dict(_layouts(a), memmap=np.load(tmp_path / "x.npy", mmap_mode="r"))
    for name, v in variants.items():
        before = v.copy()
        got = poolkit.stochastic_pool2d(v, rng=3, return_indices=True, **kw)
        np.testing.assert_array_equal(got[0], base[0], err_msg=name)
        np.testing.assert_array_equal(got[1], base[1], err_msg=name)
        assert got[0].dtype == np.dtype(dtype) and got[0].flags.c_contiguous
        np.testing.assert_array_equal(poolkit.stochastic_pool2d(v, training=False, **kw), base_y)
        np.testing.assert_array_equal(poolkit.stochastic_pool2d_backward(g, x=v, **kw), base_g)
        np.testing.assert_array_equal(v, before)


@DTYPES
def test_out_arguments(dtype):
    x = relu_input((2, 3, 8, 8), dtype, seed=0)
    ov, oi = np.empty((2, 3, 4, 4), dtype), np.empty((2, 3, 4, 4), np.int64)
    v, i = poolkit.stochastic_pool2d(x, 2, rng=1, return_indices=True, out=(ov, oi))
    assert v is ov and i is oi
    want = poolkit.stochastic_pool2d(x, 2, rng=1, return_indices=True)
    np.testing.assert_array_equal(v, want[0])
    np.testing.assert_array_equal(i, want[1])
    oy = np.empty((2, 3, 4, 4), dtype)
    assert poolkit.stochastic_pool2d(x, 2, training=False, out=oy) is oy
    assert poolkit.stochastic_pool2d(x, 2, rng=1, out=oy) is oy
    np.testing.assert_array_equal(oy, want[0])
    og = np.empty(x.shape, dtype)
    assert poolkit.stochastic_pool2d_backward(np.ones_like(oy), x=x, kernel_size=2, out=og) is og
    assert poolkit.stochastic_pool2d_backward(np.ones_like(oy), x.shape, i, out=og) is og
    ro = np.empty((2, 3, 4, 4), dtype)
    ro.setflags(write=False)
    bad_outs = [np.empty((2, 3, 4, 5), dtype), np.empty((2, 3, 4, 4), np.float16),
                np.empty((2, 3, 4, 8), dtype)[..., ::2], ro]
    for bad in bad_outs:
        with pytest.raises(ValueError, match="out"):
            poolkit.stochastic_pool2d(x, 2, training=False, out=bad)
    with pytest.raises(ValueError, match="out"):  # overlapping the input
        poolkit.stochastic_pool2d(x, 2, training=False, out=x[:, :, :4, :4])
    with pytest.raises(ValueError, match="pair"):
        poolkit.stochastic_pool2d(x, 2, return_indices=True, out=ov)


@DTYPES
def test_empty_batches(dtype):
    for shape in [(0, 3, 6, 6), (2, 0, 6, 6), (0, 6, 6)]:
        x = np.zeros(shape, dtype)
        v, i = poolkit.stochastic_pool2d(x, 2, rng=0, return_indices=True)
        assert v.shape == shape[:-2] + (3, 3) and i.shape == v.shape and v.dtype == dtype
        assert poolkit.stochastic_pool2d(x, 2, training=False).shape == v.shape
        assert poolkit.stochastic_pool2d_backward(v, x=x, kernel_size=2).shape == shape
        assert poolkit.stochastic_pool2d_backward(v, shape, i).shape == shape


# ============================================================================ validation


BAD_VALUES = [(-0.5, "negative"), (np.nan, "NaN"), (np.inf, "infinite"), (-np.inf, "infinite")]


def _bad_input(dtype, value, pos=(1, 2, 3, 4), shape=(2, 3, 6, 7)):
    x = relu_input(shape, dtype, seed=0)
    x[pos] = value
    return x


def _message(pos, what):
    return (r"stochastic pooling needs finite, non-negative activations \(such as ReLU "
            rf"outputs\); x\[{', '.join(map(str, pos))}\] = .* is {what}")


@IMPLS
@DTYPES
@pytest.mark.parametrize("value,what", BAD_VALUES, ids=["neg", "nan", "inf", "-inf"])
def test_bad_activations_raise_naming_the_first(impl, dtype, value, what):
    x = _bad_input(dtype, value)
    msg = _message((1, 2, 3, 4), what)
    with pytest.raises(ValueError, match=msg):
        impl.stochastic_pool2d(x, 2, rng=0)
    with pytest.raises(ValueError, match=msg):
        impl.stochastic_pool2d(x, 3, 2, 1, training=False)
    with pytest.raises(ValueError, match=msg):
        impl.stochastic_pool2d_backward(np.ones((2, 3, 3, 4), dtype), x=x, kernel_size=2,
                                        ceil_mode=True)


@DTYPES
def test_bad_activation_reports_first_in_c_order_and_logical_position(dtype):
    x = _bad_input(dtype, -1.0, pos=(1, 0, 0, 0))
    x[0, 2, 5, 6] = np.nan
    with pytest.raises(ValueError, match=_message((0, 2, 5, 6), "NaN") + r" \(2 such values"):
        poolkit.stochastic_pool2d(x, 2)
    # A channels-last view: the position is the logical one, not the memory order.
    t = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    with pytest.raises(ValueError, match=_message((0, 2, 5, 6), "NaN")):
        poolkit.stochastic_pool2d(t, 2, training=False)
    # 3-D input: three indices.
    with pytest.raises(ValueError, match=_message((2, 5, 6), "NaN")):
        poolkit.stochastic_pool2d(x[0], 2)


@DTYPES
@pytest.mark.parametrize("H,W", [(5, 5), (5, 9), (6, 13), (9, 18), (2, 13)])
def test_bad_values_outside_every_window_are_still_rejected(dtype, H, W):
    # 2x2/s2 on an odd side leaves the last row or column outside every window; the input
    # must still be valid activations everywhere. Rows of 4 windows or more (W >= 8) go
    # through the vector blocks, which check only what they read: the uncovered row and
    # column are checked apart, for both dtypes.
    spots = [(H - 1, W // 2), (H // 2, W - 1), (H - 1, W - 1), (0, W - 1)]
    for h, w in spots:
        if h < 2 * (H // 2) and w < 2 * (W // 2):
            continue  # inside a window: not what this test is about
        pos = (0, 0, h, w)
        x = _bad_input(dtype, -1.0, pos=pos, shape=(1, 1, H, W))
        with pytest.raises(ValueError, match=_message(pos, "negative")):
            poolkit.stochastic_pool2d(x, 2, rng=0)
        with pytest.raises(ValueError, match=_message(pos, "negative")):
            poolkit.stochastic_pool2d(x, 2, training=False)


@DTYPES
@pytest.mark.parametrize("pair,what", [((np.inf, -np.inf), "infinite"), ((-2.0, 2.0), "negative"),
                                       ((-np.inf, np.nan), "infinite")])
def test_bad_values_whose_window_sum_looks_harmless(dtype, pair, what):
    # Two bad values in one 2x2 window (the fused path checks values as it reads them).
    x = relu_input((1, 2, 4, 4), dtype, seed=0)
    x[0, 1, 2, 2], x[0, 1, 3, 3] = pair
    with pytest.raises(ValueError, match=_message((0, 1, 2, 2), what)):
        poolkit.stochastic_pool2d(x, 2, rng=0)


@DTYPES
def test_bad_values_in_every_column_of_wide_2x2_rows_are_rejected(dtype):
    # Rows of 8 windows or more go through the vector blocks (8 float32 or 4 float64 windows,
    # the last block overlapping the one before), which check the values as they read them
    # (both dtypes): a bad value at any tap of any window, in the top or bottom row of the
    # pair, and two that cancel in one window's sum.
    for W in (16, 22, 34):
        for col in range(W):
            for row in (2, 3):
                value, what = BAD_VALUES[(col + row) % len(BAD_VALUES)]
                pos = (0, 1, row, col)
                x = _bad_input(dtype, value, pos=pos, shape=(1, 2, 6, W))
                with pytest.raises(ValueError, match=_message(pos, what)):
                    poolkit.stochastic_pool2d(x, 2, rng=0)
        x = relu_input((1, 2, 6, W), dtype, seed=1)
        x[0, 1, 2, W - 2], x[0, 1, 3, W - 1] = -2.0, 2.0
        with pytest.raises(ValueError, match=_message((0, 1, 2, W - 2), "negative")):
            poolkit.stochastic_pool2d(x, 2, rng=0)


@DTYPES
def test_negative_zero_is_accepted(dtype):
    x = np.full((1, 1, 2, 2), -0.0, dtype)
    v, i = poolkit.stochastic_pool2d(x, 2, rng=0, return_indices=True)
    assert v[0, 0, 0, 0] == 0 and i[0, 0, 0, 0] == 0
    assert poolkit.stochastic_pool2d(x, 2, training=False)[0, 0, 0, 0] == 0


@IMPLS
def test_parameter_errors(impl):
    x = relu_input((1, 2, 6, 6), np.float64)
    with pytest.raises(ValueError, match="kernel_size"):
        impl.stochastic_pool2d(x, 0)
    with pytest.raises(ValueError, match="stride"):
        impl.stochastic_pool2d(x, 2, stride=0)
    with pytest.raises(ValueError, match="padding"):
        impl.stochastic_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match="output size"):
        impl.stochastic_pool2d(x, 7)
    with pytest.raises(TypeError, match="float32"):
        impl.stochastic_pool2d(x.astype(np.int32), 2)
    with pytest.raises(ValueError, match="3-D|4-D"):
        impl.stochastic_pool2d(x[0, 0], 2)
    with pytest.raises(ValueError, match="H > 0"):
        impl.stochastic_pool2d(np.zeros((1, 1, 0, 3)), 2)
    with pytest.raises(TypeError, match="training"):
        impl.stochastic_pool2d(x, 2, training="yes")
    with pytest.raises(ValueError, match="return_indices"):
        impl.stochastic_pool2d(x, 2, training=False, return_indices=True)
    with pytest.raises(TypeError):
        impl.stochastic_pool2d(x, 2, rng=1.5)
    with pytest.raises(ValueError):
        impl.stochastic_pool2d(x, 2, rng=-1)


def test_rng_error_message_names_spec7_choices():
    with pytest.raises(TypeError, match="rng must be None, an int seed or a numpy.random.Gen"):
        poolkit.stochastic_pool2d(np.ones((1, 1, 2, 2)), 2, rng="seed")


@IMPLS
def test_backward_argument_errors(impl):
    x = relu_input((1, 2, 6, 6), np.float64)
    v, i = impl.stochastic_pool2d(x, 2, rng=0, return_indices=True)
    g = np.ones_like(v)
    with pytest.raises(ValueError, match="exactly one"):
        impl.stochastic_pool2d_backward(g, x.shape)
    with pytest.raises(ValueError, match="exactly one"):
        impl.stochastic_pool2d_backward(g, x.shape, i, x=x, kernel_size=2)
    with pytest.raises(ValueError, match="inference"):
        impl.stochastic_pool2d_backward(g, x.shape, i, kernel_size=2)
    with pytest.raises(ValueError, match="input_shape"):
        impl.stochastic_pool2d_backward(g, None, i)
    with pytest.raises(ValueError, match="kernel_size"):
        impl.stochastic_pool2d_backward(g, x=x)
    with pytest.raises(ValueError, match="input_shape"):
        impl.stochastic_pool2d_backward(g, (1, 2, 6, 7), x=x, kernel_size=2)
    with pytest.raises(TypeError, match="same dtype"):
        impl.stochastic_pool2d_backward(g.astype(np.float32), x=x, kernel_size=2)
    with pytest.raises(ValueError, match="grad_output"):
        impl.stochastic_pool2d_backward(np.ones((1, 2, 3, 2)), x=x, kernel_size=2)
    with pytest.raises(ValueError, match=r"\[0, 36\)"):
        impl.stochastic_pool2d_backward(g, x.shape, np.full(i.shape, 36))
    with pytest.raises(ValueError, match=r"\[0, 36\)"):
        impl.stochastic_pool2d_backward(g, x.shape, np.full(i.shape, -1))


def test_facade_backward_rejects_padding_with_indices():
    x = relu_input((1, 2, 6, 6), np.float64)
    v, i = poolkit.stochastic_pool2d(x, 2, rng=0, return_indices=True)
    with pytest.raises(ValueError, match="padding, ceil_mode only apply"):
        poolkit.stochastic_pool2d_backward(v, x.shape, i, padding=1, ceil_mode=True)
    poolkit.stochastic_pool2d_backward(v, x.shape, i, padding=(0, 0))  # the default is fine


# ============================================================================ the layer


@DTYPES
def test_layer_train_samples_and_backward_uses_cached_indices(dtype):
    x = relu_input((2, 3, 8, 8), dtype, seed=1, zero_frac=0.2)
    layer = poolkit.StochasticPool2d(3, stride=2, padding=1, rng=10, return_indices=True)
    assert layer.training
    v, i = layer(x)
    want_v, want_i = poolkit.stochastic_pool2d(x, 3, 2, 1, rng=np.random.default_rng(10),
                                               return_indices=True)
    np.testing.assert_array_equal(v, want_v)
    np.testing.assert_array_equal(i, want_i)
    g = np.random.default_rng(2).standard_normal(v.shape).astype(dtype)
    np.testing.assert_array_equal(layer.backward(g),
                                  poolkit.stochastic_pool2d_backward(g, x.shape, i))
    # The next forward draws a new key from the same Generator: a different sample, and the
    # same sequence for another layer with the same seed.
    _, i2 = layer(x)
    assert not np.array_equal(i, i2)
    twin = poolkit.StochasticPool2d(3, stride=2, padding=1, rng=10, return_indices=True)
    np.testing.assert_array_equal(twin(x)[1], i)
    np.testing.assert_array_equal(twin(x)[1], i2)


@DTYPES
def test_layer_eval_weights_and_backward_uses_cached_input(dtype):
    x = relu_input((2, 3, 8, 8), dtype, seed=1, zero_frac=0.2)
    layer = poolkit.StochasticPool2d(2).eval()
    assert not layer.training
    y = layer(x)
    np.testing.assert_array_equal(y, poolkit.stochastic_pool2d(x, 2, training=False))
    g = np.ones_like(y)
    np.testing.assert_array_equal(layer.backward(g),
                                  poolkit.stochastic_pool2d_backward(g, x=x, kernel_size=2))
    # return_indices in inference: (values, None).
    vi = poolkit.StochasticPool2d(2, return_indices=True).eval()(x)
    assert isinstance(vi, tuple) and vi[1] is None
    np.testing.assert_array_equal(vi[0], y)
    # backward follows the mode of the cached forward, even after switching.
    layer.train()
    np.testing.assert_array_equal(layer.backward(g),
                                  poolkit.stochastic_pool2d_backward(g, x=x, kernel_size=2))
    layer(x)
    assert layer.backward(g).sum() == pytest.approx(g.sum())  # routed, not weighted


def test_layer_errors_and_repr():
    layer = poolkit.StochasticPool2d(2, rng=0)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((1, 1, 1, 1)))
    layer(np.ones((1, 1, 4, 4)))
    with pytest.raises(ValueError, match="shape"):
        layer.backward(np.ones((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="kernel_size"):
        poolkit.StochasticPool2d(0)
    with pytest.raises(ValueError, match="padding"):
        poolkit.StochasticPool2d(2, padding=2)
    with pytest.raises(TypeError, match="rng"):
        poolkit.StochasticPool2d(2, rng="x")
    assert repr(poolkit.StochasticPool2d((2, 3), stride=1)) == (
        "StochasticPool2d(kernel_size=(2, 3), stride=1, padding=0, ceil_mode=False, "
        "return_indices=False)"
    )
    assert isinstance(layer, poolkit.Layer)


def test_public_names():
    for name in ("stochastic_pool2d", "stochastic_pool2d_backward", "StochasticPool2d"):
        assert name in poolkit.__all__ and hasattr(poolkit, name)
    for name in ("stochastic_pool2d", "stochastic_pool2d_backward"):
        assert name in reference.__all__ and hasattr(reference, name)
