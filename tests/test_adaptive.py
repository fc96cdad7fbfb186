"""Adaptive average and adaptive max pooling: forward, backward, layers.

- The window rule (PyTorch's ``floor(o * L / out)`` .. ``ceil((o + 1) * L / out)``, in
  integers): windows are non-empty, cover the axis, and match a float computation.
- Property tests against ``poolkit.reference`` with output sizes up to larger than the
  input, both dtypes, ties, NaN and infinities.
- PyTorch parity (forward values and indices, autograd backward) when torch is importable.
- Finite differences, gradient conservation, thread-count invariance, errors, layers.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import poolkit
from poolkit import reference
from poolkit._adaptive import adaptive_windows
from _strategies import atol_for, distinct_input, dtypes, input_kinds, make_input, rtol_for, seeds

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64])


@st.composite
def adaptive_cases(draw, max_nc=3, max_hw=10, max_out=14):
    n, c = draw(st.integers(0, max_nc)), draw(st.integers(0, max_nc))
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    shape = (c, h, w) if draw(st.sampled_from([False, False, True])) else (n, c, h, w)
    oh, ow = draw(st.integers(1, max_out)), draw(st.integers(1, max_out))
    form = draw(st.sampled_from(["pair", "int", "none_h", "none_w"]))
    if form == "int":
        return shape, oh, (oh, oh)
    if form == "none_h":
        return shape, (None, ow), (h, ow)
    if form == "none_w":
        return shape, (oh, None), (oh, w)
    return shape, (oh, ow), (oh, ow)


# ---------------------------------------------------------------------------- the rule


@given(L=st.integers(1, 300), n_out=st.integers(1, 300))
def test_window_rule(L, n_out):
    wins = adaptive_windows(L, n_out)
    assert wins == [reference.adaptive_window(o, L, n_out) for o in range(n_out)]
    assert wins[0][0] == 0 and wins[-1][1] == L
    covered = set()
    for o, (s, e) in enumerate(wins):
        assert 0 <= s < e <= L
        assert s == math.floor(o * L / n_out) and e == math.ceil((o + 1) * L / n_out)
        covered.update(range(s, e))
    assert covered == set(range(L))


def test_window_rule_in_integers_for_large_sizes():
    # Float arithmetic would round here; the kernels and the facade use integers.
    L, n_out = 2**31 - 1, 2**31 - 3
    s, e = reference.adaptive_window(n_out - 1, L, n_out)
    assert (s, e) == (((n_out - 1) * L) // n_out, L)


# ----------------------------------------------------------------------- vs the reference


@given(case=adaptive_cases(), dtype=dtypes, kind=input_kinds, seed=seeds)
def test_adaptive_avg_matches_reference(case, dtype, kind, seed):
    shape, output_size, out_hw = case
    x = make_input(shape, dtype, kind, seed)
    got = poolkit.adaptive_avg_pool2d(x, output_size)
    want = reference.adaptive_avg_pool2d(x, output_size)
    assert got.shape == want.shape == shape[:-2] + out_hw
    assert got.dtype == dtype and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=rtol_for(dtype), atol=atol_for(dtype))


@given(case=adaptive_cases(), dtype=dtypes, kind=input_kinds, seed=seeds)
def test_adaptive_max_matches_reference(case, dtype, kind, seed):
    shape, output_size, out_hw = case
    x = make_input(shape, dtype, kind, seed)
    vals, idx = poolkit.adaptive_max_pool2d(x, output_size, return_indices=True)
    ref_vals, ref_idx = reference.adaptive_max_pool2d(x, output_size, return_indices=True)
    assert vals.shape == idx.shape == shape[:-2] + out_hw
    assert vals.dtype == dtype and idx.dtype == np.int64
    np.testing.assert_array_equal(vals, ref_vals)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(poolkit.adaptive_max_pool2d(x, output_size), vals)


@given(case=adaptive_cases(), dtype=dtypes, seed=seeds)
def test_adaptive_backward_matches_reference(case, dtype, seed):
    shape, output_size, out_hw = case
    g = make_input(shape[:-2] + out_hw, dtype, "normal", seed)
    got = poolkit.adaptive_avg_pool2d_backward(g, shape)
    assert got.shape == shape and got.dtype == dtype
    # Same divisions, same order of accumulation: equal bit for bit.
    np.testing.assert_array_equal(got, reference.adaptive_avg_pool2d_backward(g, shape))
    x = make_input(shape, dtype, "ties", seed + 1)
    _, idx = poolkit.adaptive_max_pool2d(x, output_size, return_indices=True)
    got = poolkit.adaptive_max_pool2d_backward(g, idx, shape)
    np.testing.assert_allclose(got, reference.adaptive_max_pool2d_backward(g, idx, shape),
                               rtol=rtol_for(dtype), atol=atol_for(dtype, 4))


@DTYPES
def test_semantics_nan_ties_and_minus_inf(dtype):
    x = np.array([[[[1.0, np.nan, 2.0, np.nan, 7.0, 7.0],
                    [-np.inf, -np.inf, -np.inf, -np.inf, 3.0, 7.0]]]], dtype)
    v, i = poolkit.adaptive_max_pool2d(x, (2, 3), return_indices=True)
    # windows along W: [0, 2), [2, 4), [4, 6); along H: rows 0 and 1
    np.testing.assert_array_equal(v, [[[[np.nan, np.nan, 7.0], [-np.inf, -np.inf, 7.0]]]])
    np.testing.assert_array_equal(i, [[[[1, 3, 4], [6, 8, 11]]]])


@DTYPES
def test_output_size_one_is_global_pooling(dtype):
    x = make_input((2, 3, 75, 61), dtype, "special", 5)  # several kernel chunks per plane
    np.testing.assert_array_equal(poolkit.adaptive_avg_pool2d(x, 1),
                                  poolkit.global_avg_pool2d(x, keepdims=True))
    v, i = poolkit.adaptive_max_pool2d(x, (1, 1), return_indices=True)
    gv, gi = poolkit.global_max_pool2d(x, keepdims=True, return_indices=True)
    np.testing.assert_array_equal(v, gv)
    np.testing.assert_array_equal(i, gi)
    g = make_input((2, 3, 1, 1), dtype, "normal", 6)
    np.testing.assert_array_equal(poolkit.adaptive_avg_pool2d_backward(g, x.shape),
                                  poolkit.global_avg_pool2d_backward(g, x.shape))


@DTYPES
@pytest.mark.parametrize("shape,output_size", [((4, 8, 40, 36), (7, 5)),
                                               ((1, 1, 200, 190), (3, 64)),
                                               ((2, 3, 30, 30), (45, 47))])
def test_results_do_not_depend_on_thread_count(shape, output_size, dtype):
    x = make_input(shape, dtype, "ties", 3)
    g = make_input(shape[:2] + output_size, dtype, "normal", 4)
    runs = []
    for nt in (1, 2, 3, None):
        v, i = poolkit.adaptive_max_pool2d(x, output_size, True, n_threads=nt)
        runs.append((poolkit.adaptive_avg_pool2d(x, output_size, n_threads=nt), v, i,
                     poolkit.adaptive_avg_pool2d_backward(g, shape, n_threads=nt),
                     poolkit.adaptive_max_pool2d_backward(g, i, shape, n_threads=nt)))
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert a.tobytes() == b.tobytes()


# ------------------------------------------------------------------------------- PyTorch


def _torch_configs():
    rng = np.random.default_rng(2024)
    for k in range(40):
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)),
                 int(rng.integers(1, 13)), int(rng.integers(1, 13)))
        out = (int(rng.integers(1, 17)), int(rng.integers(1, 17)))
        yield shape, out, (np.float32, np.float64)[k % 2]


@pytest.mark.parametrize("shape,output_size,dtype", list(_torch_configs()))
def test_torch_parity(shape, output_size, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = distinct_input(shape, dtype, seed=sum(shape))
    g = make_input(shape[:2] + output_size, dtype, "normal", 1)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    ta = F.adaptive_avg_pool2d(xt, output_size)
    ta.backward(torch.from_numpy(g))
    np.testing.assert_allclose(poolkit.adaptive_avg_pool2d(x, output_size),
                               ta.detach().numpy(), rtol=rtol_for(dtype), atol=atol_for(dtype))
    np.testing.assert_allclose(poolkit.adaptive_avg_pool2d_backward(g, shape), xt.grad.numpy(),
                               rtol=rtol_for(dtype), atol=atol_for(dtype))
    xt.grad = None
    tv, ti = F.adaptive_max_pool2d(xt, output_size, return_indices=True)
    tv.backward(torch.from_numpy(g))
    v, i = poolkit.adaptive_max_pool2d(x, output_size, return_indices=True)
    np.testing.assert_array_equal(v, tv.detach().numpy())
    np.testing.assert_array_equal(i, ti.numpy())
    np.testing.assert_allclose(poolkit.adaptive_max_pool2d_backward(g, i, shape),
                               xt.grad.numpy(), rtol=rtol_for(dtype), atol=atol_for(dtype, 4))


def test_torch_parity_none_and_3d():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = distinct_input((3, 7, 9), np.float64, seed=3)
    for size in [(None, 4), (5, None), 3]:
        np.testing.assert_allclose(poolkit.adaptive_avg_pool2d(x, size),
                                   F.adaptive_avg_pool2d(torch.from_numpy(x), size).numpy())
        np.testing.assert_array_equal(
            poolkit.adaptive_max_pool2d(x, size, True)[1],
            F.adaptive_max_pool2d(torch.from_numpy(x), size, return_indices=True)[1].numpy())


# ---------------------------------------------------------------------------- gradients


def _numerical_grad(f, x, g, eps=1e-6):
    num = np.zeros_like(x)
    for i in range(x.size):
        d = np.zeros_like(x)
        d.flat[i] = eps
        num.flat[i] = ((f(x + d) - f(x - d)) * g).sum() / (2 * eps)
    return num


@pytest.mark.parametrize("shape,output_size", [((1, 2, 5, 7), (3, 4)), ((2, 1, 4, 3), (6, 5)),
                                               ((1, 1, 6, 6), (4, 1))])
def test_finite_differences(shape, output_size):
    x = distinct_input(shape, np.float64, seed=9)
    g = make_input(shape[:2] + output_size, np.float64, "normal", 10)
    num = _numerical_grad(lambda a: poolkit.adaptive_avg_pool2d(a, output_size), x, g)
    np.testing.assert_allclose(poolkit.adaptive_avg_pool2d_backward(g, shape), num, atol=1e-8)
    _, idx = poolkit.adaptive_max_pool2d(x, output_size, return_indices=True)
    num = _numerical_grad(lambda a: poolkit.adaptive_max_pool2d(a, output_size), x, g)
    np.testing.assert_allclose(poolkit.adaptive_max_pool2d_backward(g, idx, shape), num,
                               atol=1e-8)


@given(n=st.integers(1, 3), c=st.integers(1, 3), oh=st.integers(1, 4), ow=st.integers(1, 4),
       mh=st.integers(1, 4), mw=st.integers(1, 4), dtype=dtypes, seed=seeds)
@settings(max_examples=30)
def test_backward_conserves_gradient(n, c, oh, ow, mh, mw, dtype, seed):
    shape = (n, c, oh * mh, ow * mw)
    g = make_input((n, c, oh, ow), dtype, "normal", seed)
    # Windows tile the input when the output size divides it: the sum is preserved.
    ga = poolkit.adaptive_avg_pool2d_backward(g, shape)
    np.testing.assert_allclose(ga.sum(axis=(2, 3), dtype=np.float64),
                               g.sum(axis=(2, 3), dtype=np.float64), rtol=1e-5, atol=1e-5)
    # Max routes every output gradient to one position, tiling or not.
    for size in [(oh, ow), (oh + 2, ow + 3)]:
        x = make_input(shape, dtype, "ties", seed + 1)
        gg = make_input((n, c) + size, dtype, "normal", seed + 2)
        _, idx = poolkit.adaptive_max_pool2d(x, size, return_indices=True)
        gm = poolkit.adaptive_max_pool2d_backward(gg, idx, shape)
        np.testing.assert_allclose(gm.sum(axis=(2, 3), dtype=np.float64),
                                   gg.sum(axis=(2, 3), dtype=np.float64), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------ shapes, errors


@DTYPES
def test_empty_batches_layouts_and_out(dtype):
    for shape in [(0, 3, 4, 4), (2, 0, 4, 4), (0, 5, 5)]:
        x = np.zeros(shape, dtype)
        assert poolkit.adaptive_avg_pool2d(x, (2, 3)).shape == shape[:-2] + (2, 3)
        v, i = poolkit.adaptive_max_pool2d(x, 2, True)
        assert v.shape == i.shape == shape[:-2] + (2, 2)
        assert poolkit.adaptive_max_pool2d_backward(v, i, shape).shape == shape
        assert poolkit.adaptive_avg_pool2d_backward(v, shape).shape == shape
    x = make_input((2, 3, 7, 6), dtype, "special", 1)
    want = poolkit.adaptive_avg_pool2d(x, (3, 4))
    want_i = poolkit.adaptive_max_pool2d(x, (3, 4), True)[1]
    views = [np.asfortranarray(x), np.ascontiguousarray(x[..., ::-1])[..., ::-1],
             x.astype(x.dtype.newbyteorder(">" if x.dtype.byteorder != ">" else "<"))]
    ro = x.copy()
    ro.flags.writeable = False
    for v in views + [ro]:
        np.testing.assert_array_equal(poolkit.adaptive_avg_pool2d(v, (3, 4)), want)
        np.testing.assert_array_equal(poolkit.adaptive_max_pool2d(v, (3, 4), True)[1], want_i)
    out = np.empty((2, 3, 3, 4), dtype)
    assert poolkit.adaptive_avg_pool2d(x, (3, 4), out=out) is out
    pair = (np.empty((2, 3, 3, 4), dtype), np.empty((2, 3, 3, 4), np.int64))
    assert poolkit.adaptive_max_pool2d(x, (3, 4), True, out=pair)[1] is pair[1]
    ro_out = np.empty((2, 3, 3, 4), dtype)
    ro_out.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        poolkit.adaptive_avg_pool2d(x, (3, 4), out=ro_out)
    with pytest.raises(ValueError, match="shape"):
        poolkit.adaptive_avg_pool2d(x, (3, 4), out=np.empty((2, 3, 4, 3), dtype))


def test_errors():
    x = np.zeros((1, 2, 5, 5), np.float32)
    for bad in (0, (0, 3), (3, -1)):
        with pytest.raises(ValueError, match="output_size must be >= 1"):
            poolkit.adaptive_avg_pool2d(x, bad)
        with pytest.raises(ValueError, match="output_size must be >= 1"):
            poolkit.adaptive_max_pool2d(x, bad)
    with pytest.raises(ValueError, match="pair"):
        poolkit.adaptive_avg_pool2d(x, (2, 2, 2))
    for bad in (2.0, None, "3", True):
        with pytest.raises(TypeError, match="output_size"):
            poolkit.adaptive_max_pool2d(x, bad)
    with pytest.raises(ValueError, match="at most"):
        poolkit.adaptive_avg_pool2d(x, 2**31)
    with pytest.raises(TypeError, match="float32 or float64"):
        poolkit.adaptive_avg_pool2d(x.astype(np.int64), 2)
    with pytest.raises(ValueError, match="4-D"):
        poolkit.adaptive_max_pool2d(x[0, 0], 2)
    with pytest.raises(ValueError, match="H > 0"):
        poolkit.adaptive_avg_pool2d(np.zeros((1, 1, 0, 4)), 2)
    g = np.ones((1, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="leading"):
        poolkit.adaptive_avg_pool2d_backward(g, (1, 3, 5, 5))
    with pytest.raises(ValueError, match="dimensions"):
        poolkit.adaptive_avg_pool2d_backward(g, (2, 5, 5))
    with pytest.raises(ValueError, match="output size >= 1"):
        poolkit.adaptive_avg_pool2d_backward(np.ones((1, 2, 0, 3), np.float32), (1, 2, 5, 5))
    idx = np.zeros((1, 2, 3, 3), np.int64)
    with pytest.raises(ValueError, match="shape of grad_output"):
        poolkit.adaptive_max_pool2d_backward(g, idx[..., :2], (1, 2, 5, 5))
    with pytest.raises(TypeError, match="integer"):
        poolkit.adaptive_max_pool2d_backward(g, idx.astype(float), (1, 2, 5, 5))
    for bad in (25, -1):
        bad_idx = idx.copy()
        bad_idx[0, 1, 2, 0] = bad
        out = np.full((1, 2, 5, 5), 3.0, np.float32)
        with pytest.raises(ValueError, match=r"\[0, 25\)"):
            poolkit.adaptive_max_pool2d_backward(g, bad_idx, (1, 2, 5, 5), out=out)
        assert (out == 3.0).all()  # checked before anything is written


# -------------------------------------------------------------------------------- layers


@DTYPES
def test_layers(dtype):
    x = make_input((2, 3, 9, 7), dtype, "ties", 0)
    avg = poolkit.AdaptiveAvgPool2d((4, None), n_threads=2)
    y = avg(x)
    np.testing.assert_array_equal(y, poolkit.adaptive_avg_pool2d(x, (4, 7)))
    g = make_input(y.shape, dtype, "normal", 1)
    np.testing.assert_array_equal(avg.backward(g), poolkit.adaptive_avg_pool2d_backward(g, x.shape))
    mx = poolkit.AdaptiveMaxPool2d(5)
    y = mx(x)
    v, i = poolkit.adaptive_max_pool2d(x, 5, True)
    np.testing.assert_array_equal(y, v)
    g = make_input(y.shape, dtype, "normal", 2)
    np.testing.assert_array_equal(mx.backward(g),
                                  poolkit.adaptive_max_pool2d_backward(g, i, x.shape))
    np.testing.assert_array_equal(poolkit.AdaptiveMaxPool2d(5, return_indices=True)(x)[1], i)
    assert mx(x[0]).shape == (3, 5, 5) and mx.backward(g[0]).shape == (3, 9, 7)
    for layer in (avg, mx):
        with pytest.raises(ValueError, match="shape"):
            layer.backward(g[:, :1])
    with pytest.raises(RuntimeError, match="before forward"):
        poolkit.AdaptiveAvgPool2d(2).backward(g)
    assert repr(avg) == "AdaptiveAvgPool2d(output_size=(4, None))"
    assert repr(mx) == "AdaptiveMaxPool2d(output_size=5, return_indices=False)"
    with pytest.raises(ValueError):
        poolkit.AdaptiveMaxPool2d(0)
    with pytest.raises(TypeError):
        poolkit.AdaptiveAvgPool2d(1.5)
