"""Max unpooling and its backward (a gather), and the MaxUnpool2d layer.

- Round trip: unpooling the values and indices of max pooling puts every maximum back at
  its place; the output size rule and ``output_size`` override follow PyTorch exactly
  (every candidate size PyTorch accepts is accepted, every one it rejects is rejected).
- Property tests against ``poolkit.reference`` (duplicate indices included: the later
  input wins), PyTorch parity (forward and autograd backward) when torch is importable.
- The backward is the adjoint of the forward when indices are distinct.
- Bad indices raise before anything is written; thread-count invariance; layouts; layer.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import poolkit
from poolkit import reference
from poolkit._unpool import unpool_output_size
from _strategies import distinct_input, dtypes, make_input, seeds

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64])


@st.composite
def unpool_cases(draw):
    """(x shape, kernel_size, stride, padding, output (H, W)) with random valid indices."""
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    n, c = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    h, w = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    default = tuple((v - 1) * s[d] - 2 * p[d] + k[d] for d, v in enumerate((h, w)))
    assume(min(default) >= 1)
    out_hw = tuple(
        draw(st.integers(max(1, default[d] - s[d] + 1), default[d] + s[d] - 1)) for d in range(2)
    )
    shape = (c, h, w) if draw(st.booleans()) else (n, c, h, w)
    return shape, k, s, p, out_hw, default


@given(case=unpool_cases(), dtype=dtypes, seed=seeds, give_size=st.booleans())
def test_matches_reference(case, dtype, seed, give_size):
    shape, k, s, p, out_hw, default = case
    if not give_size:
        out_hw = default
    rng = np.random.default_rng(seed)
    x = make_input(shape, dtype, "special", seed)
    idx = rng.integers(0, out_hw[0] * out_hw[1], size=shape)  # duplicates happen
    kw = {"output_size": out_hw if give_size else None}
    got = poolkit.max_unpool2d(x, idx, k, s, p, **kw)
    want = reference.max_unpool2d(x, idx, k, s, p, **kw)
    assert got.shape == want.shape == shape[:-2] + out_hw
    assert got.dtype == dtype and got.flags.c_contiguous
    np.testing.assert_array_equal(got, want)
    g = make_input(got.shape, dtype, "normal", seed + 1)
    gx = poolkit.max_unpool2d_backward(g, idx)
    assert gx.shape == shape and gx.dtype == dtype
    np.testing.assert_array_equal(gx, reference.max_unpool2d_backward(g, idx))


@DTYPES
@pytest.mark.parametrize("k,s,p", [(2, 2, 0), (3, 2, 1), (3, 3, 0), ((2, 3), (2, 1), (1, 0))])
def test_round_trip_of_max_pooling(k, s, p, dtype):
    x = distinct_input((2, 3, 9, 8), dtype, seed=1) + dtype(0.25)  # no zeros
    v, i = poolkit.max_pool2d(x, k, s, p, return_indices=True)
    u = poolkit.max_unpool2d(v, i, k, s, p, output_size=x.shape[-2:])
    assert u.shape == x.shape
    mask = u != 0
    np.testing.assert_array_equal(u[mask], x[mask])       # maxima back in place
    for n in range(2):
        for c in range(3):
            np.testing.assert_array_equal(np.flatnonzero(u[n, c]), np.unique(i[n, c]))
    # pooling the unpooled plane gives the pooled values back
    np.testing.assert_array_equal(poolkit.max_pool2d(np.where(mask, u, -np.inf), k, s, p), v)


@DTYPES
def test_backward_is_the_adjoint(dtype):
    # <unpool(x), g> == <x, unpool_backward(g)> for distinct indices.
    x = make_input((2, 3, 4, 5), dtype, "normal", 0)
    rng = np.random.default_rng(0)
    idx = np.stack([rng.permutation(8 * 10)[:20].reshape(4, 5) for _ in range(6)]).reshape(
        2, 3, 4, 5)
    g = make_input((2, 3, 8, 10), dtype, "normal", 1)
    u = poolkit.max_unpool2d(x, idx, 2)
    gx = poolkit.max_unpool2d_backward(g, idx)
    np.testing.assert_allclose((u * g).sum(dtype=np.float64), (x * gx).sum(dtype=np.float64),
                               rtol=1e-5)
    # and the gradient is conserved where it lands
    np.testing.assert_allclose(gx.sum(dtype=np.float64),
                               (g * (u != 0)).sum(dtype=np.float64), rtol=1e-5)


def test_duplicate_indices_last_wins():
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    idx = np.array([[[[0, 0], [5, 0]]]])
    u = poolkit.max_unpool2d(x, idx, 2)
    assert u[0, 0, 0, 0] == 4.0 and u[0, 0, 1, 1] == 3.0 and np.count_nonzero(u) == 2
    gx = poolkit.max_unpool2d_backward(np.arange(16.0).reshape(1, 1, 4, 4), idx)
    np.testing.assert_array_equal(gx, [[[[0.0, 0.0], [5.0, 0.0]]]])


# ----------------------------------------------------------------- output size, PyTorch


@pytest.mark.parametrize("h,w,k,s,p", [(3, 4, 2, 2, 0), (3, 3, 3, 2, 1), (2, 5, (3, 2), (3, 1),
                                                                         (1, 0)), (1, 1, 2, 2, 1)])
def test_output_size_rule_matches_torch(h, w, k, s, p):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.ones((1, 2, h, w), np.float32)
    idx = np.zeros((1, 2, h, w), np.int64)
    kk, ss = np.broadcast_to(k, 2), np.broadcast_to(s, 2)
    pp = np.broadcast_to(p, 2)
    default = [(x.shape[2 + d] - 1) * ss[d] - 2 * pp[d] + kk[d] for d in range(2)]
    if min(default) >= 1:
        assert poolkit.max_unpool2d(x, idx, k, s, p).shape[-2:] == tuple(default)
        assert F.max_unpool2d(torch.from_numpy(x), torch.from_numpy(idx), k, s,
                              p).shape[-2:] == tuple(default)
    for oh in range(default[0] - ss[0] - 1, default[0] + ss[0] + 2):
        for ow in range(default[1] - ss[1] - 1, default[1] + ss[1] + 2):
            try:
                want = F.max_unpool2d(torch.from_numpy(x), torch.from_numpy(idx), k, s, p,
                                      output_size=(oh, ow)).numpy()
            except (ValueError, RuntimeError):
                want = None
            if want is None or min(oh, ow) < 1:  # poolkit also rejects empty planes
                with pytest.raises(ValueError, match="output"):
                    poolkit.max_unpool2d(x, idx, k, s, p, output_size=(oh, ow))
            else:
                for size in [(oh, ow), (1, 2, oh, ow), np.array([oh, ow])]:
                    np.testing.assert_array_equal(
                        poolkit.max_unpool2d(x, idx, k, s, p, output_size=size), want)


def _torch_configs():
    rng = np.random.default_rng(7)
    for j in range(24):
        k = tuple(int(v) for v in rng.integers(1, 4, 2))
        s = tuple(int(v) for v in rng.integers(1, 4, 2))
        p = tuple(int(rng.integers(0, v // 2 + 1)) for v in k)
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 4)),
                 int(rng.integers(k[0], 12)), int(rng.integers(k[1], 12)))
        yield shape, k, s, p, (np.float32, np.float64)[j % 2]


@pytest.mark.parametrize("shape,k,s,p,dtype", list(_torch_configs()))
def test_torch_parity_through_max_pooling(shape, k, s, p, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = distinct_input(shape, dtype, seed=sum(shape))
    v, i = poolkit.max_pool2d(x, k, s, p, return_indices=True)
    size = shape[-2:]
    u = poolkit.max_unpool2d(v, i, k, s, p, output_size=size)
    vt = torch.from_numpy(v.copy()).requires_grad_()
    ut = F.max_unpool2d(vt, torch.from_numpy(i), k, s, p, output_size=size)
    np.testing.assert_array_equal(u, ut.detach().numpy())
    g = make_input(u.shape, dtype, "normal", 3)
    ut.backward(torch.from_numpy(g))
    np.testing.assert_array_equal(poolkit.max_unpool2d_backward(g, i), vt.grad.numpy())


def test_unpool_output_size_helper():
    assert unpool_output_size((1, 1, 2, 3), 2) == (4, 6)
    assert unpool_output_size((2, 3), (3, 2), (2, 1), (1, 0)) == (3, 4)
    assert unpool_output_size((1, 1, 2, 2), 2, output_size=(5, 3)) == (5, 3)


# ------------------------------------------------------------------------------- errors


def test_errors():
    x = np.ones((1, 2, 2, 2), np.float32)
    idx = np.zeros((1, 2, 2, 2), np.int64)
    with pytest.raises(ValueError, match="strictly between 2 and 6"):
        poolkit.max_unpool2d(x, idx, 2, output_size=(6, 4))
    with pytest.raises(ValueError, match="2 entries"):
        poolkit.max_unpool2d(x, idx, 2, output_size=(1, 4, 4))
    with pytest.raises(ValueError, match="leading"):
        poolkit.max_unpool2d(x, idx, 2, output_size=(1, 3, 4, 4))
    with pytest.raises(TypeError, match="output_size"):
        poolkit.max_unpool2d(x, idx, 2, output_size=(4.0, 4))
    with pytest.raises(ValueError, match="< 1"):
        poolkit.max_unpool2d(np.ones((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), int), 2, 2, 1)
    for name, kw in [("kernel_size", {"kernel_size": 0}),
                     ("stride", {"kernel_size": 2, "stride": 0}),
                     ("padding", {"kernel_size": 2, "padding": -1})]:
        with pytest.raises(ValueError, match=name):
            poolkit.max_unpool2d(x, idx, **kw)
    with pytest.raises(TypeError, match="integer"):
        poolkit.max_unpool2d(x, idx.astype(float), 2)
    with pytest.raises(ValueError, match="shape of x"):
        poolkit.max_unpool2d(x, idx[..., :1], 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        poolkit.max_unpool2d(x.astype(int), idx, 2)
    for bad in (16, -1, 2**40):
        b = idx.copy()
        b[0, 1, 1, 0] = bad
        out = np.full((1, 2, 4, 4), 5.0, np.float32)
        with pytest.raises(ValueError, match=r"\[0, 16\).*indices\(0, 1, 1, 0\)"):
            poolkit.max_unpool2d(x, b, 2, out=out)
        assert (out == 5.0).all()  # checked before anything is written
        g = np.ones((1, 2, 4, 4), np.float32)
        gout = np.full((1, 2, 2, 2), 5.0, np.float32)
        with pytest.raises(ValueError, match=r"\[0, 16\)"):
            poolkit.max_unpool2d_backward(g, b, out=gout)
        assert (gout == 5.0).all()
    with pytest.raises(ValueError, match="leading"):
        poolkit.max_unpool2d_backward(np.ones((1, 3, 4, 4)), idx)
    with pytest.raises(ValueError, match="leading"):
        poolkit.max_unpool2d_backward(np.ones((2, 4, 4)), idx)


# --------------------------------------------------------------- threads, layouts, layer


@DTYPES
def test_threads_layouts_empty_and_out(dtype):
    rng = np.random.default_rng(5)
    x = make_input((4, 8, 32, 30), dtype, "normal", 0)
    idx = rng.integers(0, 64 * 60, size=x.shape)
    g = make_input((4, 8, 64, 60), dtype, "normal", 1)
    runs = [(poolkit.max_unpool2d(x, idx, 2, n_threads=nt),
             poolkit.max_unpool2d_backward(g, idx, n_threads=nt)) for nt in (1, 2, None)]
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            assert a.tobytes() == b.tobytes()
    want = runs[0][0]
    for xv, iv in [(np.asfortranarray(x), idx.astype(np.int32)),
                   (x.astype(x.dtype.newbyteorder(">" if x.dtype.byteorder != ">" else "<")),
                    idx.astype(">i8")),
                   (np.ascontiguousarray(x[..., ::-1])[..., ::-1], idx.astype(np.uint16))]:
        np.testing.assert_array_equal(poolkit.max_unpool2d(xv, iv, 2), want)
    out = np.empty_like(want)
    assert poolkit.max_unpool2d(x, idx, 2, out=out) is out
    inside_g = g.reshape(-1)[: x.size].reshape(x.shape)  # C-contiguous, shares g's memory
    with pytest.raises(ValueError, match="overlap"):
        poolkit.max_unpool2d_backward(g, idx, out=inside_g)
    for shape in [(0, 2, 3, 3), (2, 0, 3, 3), (0, 3, 3)]:
        e = np.zeros(shape, dtype)
        u = poolkit.max_unpool2d(e, np.zeros(shape, int), 2)
        assert u.shape == shape[:-2] + (6, 6)
        assert poolkit.max_unpool2d_backward(u, np.zeros(shape, int)).shape == shape
    x3 = x[0]
    np.testing.assert_array_equal(poolkit.max_unpool2d(x3, idx[0], 2), want[0])
    np.testing.assert_array_equal(poolkit.max_unpool2d_backward(g[0], idx[0]), runs[0][1][0])


@DTYPES
def test_layer(dtype):
    x = distinct_input((2, 3, 8, 6), dtype, seed=2)
    pool, unpool = poolkit.MaxPool2d(2, return_indices=True), poolkit.MaxUnpool2d(2)
    v, i = pool(x)
    u = unpool(v, i)
    np.testing.assert_array_equal(u, poolkit.max_unpool2d(v, i, 2))
    i_saved = i.copy()
    i[...] = 0  # the layer keeps its own copy of the indices
    g = make_input(u.shape, dtype, "normal", 3)
    np.testing.assert_array_equal(unpool.backward(g), poolkit.max_unpool2d_backward(g, i_saved))
    assert unpool.forward(v, i_saved, output_size=(9, 7)).shape == (2, 3, 9, 7)
    with pytest.raises(ValueError, match="shape"):
        unpool.backward(g)  # the last forward had another output size
    with pytest.raises(RuntimeError, match="before forward"):
        poolkit.MaxUnpool2d(2).backward(g)
    assert repr(unpool) == "MaxUnpool2d(kernel_size=2, stride=2, padding=0)"
    with pytest.raises(ValueError, match="stride"):
        poolkit.MaxUnpool2d(2, stride=0)
    assert unpool.eval() is unpool and not unpool.training
