"""poolkit.torch: autograd functions and nn.Modules on poolkit's kernels.

Checked here: gradcheck of every function in float64; values, indices and gradients equal to
torch.nn.functional where PyTorch has the op; a small CNN trains to the same losses with
poolkit's modules as with torch.nn's; zero-copy hand-over (data_ptr); torch's thread count
reaches the kernels; state_dict and whole-module save/load; CUDA/meta tensors and other
dtypes rejected with clear errors; stochastic pooling's train/eval modes and randomness.
"""

import copy
import io
import subprocess
import sys

import numpy as np
import pytest

import poolkit

torch = pytest.importorskip("torch")
F = torch.nn.functional
pkt = pytest.importorskip("poolkit.torch")

needs_stochastic = pytest.mark.skipif(
    not hasattr(poolkit, "stochastic_pool2d"), reason="poolkit.stochastic_pool2d not built yet"
)
needs_global = pytest.mark.skipif(
    not hasattr(poolkit, "global_avg_pool2d"), reason="poolkit.global_avg_pool2d not built yet"
)
needs_adaptive = pytest.mark.skipif(
    not hasattr(poolkit, "adaptive_avg_pool2d"),
    reason="poolkit.adaptive_avg_pool2d not built yet",
)


def distinct(shape, dtype=torch.float64, seed=0, requires_grad=True):
    """A tensor of distinct values (no ties for max pooling), spaced far beyond gradcheck's eps."""
    n = int(np.prod(shape))
    g = torch.Generator().manual_seed(seed)
    x = (torch.randperm(n, generator=g).to(dtype) / n - 0.5).reshape(shape)
    return x.requires_grad_(requires_grad)


def positive(shape, dtype=torch.float64, seed=0, requires_grad=True):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=dtype) + 0.1
    return x.requires_grad_(requires_grad)


def grads(fn, x, g=None):
    """(output, input gradient) of fn at x for output gradient g (random when None)."""
    y = fn(x)
    y = y[0] if isinstance(y, tuple) else y
    if g is None:
        g = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype)
    (gx,) = torch.autograd.grad(y, x, g)
    return y.detach(), gx


MAX_CONFIGS = [  # kernel, stride, padding, dilation, ceil_mode
    (2, 2, 0, 1, False),
    (3, 2, 1, 1, False),
    (3, 1, 1, 1, False),
    ((2, 3), (1, 2), (1, 0), 1, True),
    (3, 2, 1, 2, False),
    (2, 3, 0, 1, True),
]
AVG_CONFIGS = [  # kernel, stride, padding, ceil_mode, count_include_pad, divisor_override
    (2, 2, 0, False, True, None),
    (3, 2, 1, False, True, None),
    (3, 2, 1, True, False, None),
    ((2, 3), (1, 2), (1, 1), True, True, None),
    (3, 1, 1, False, True, 5),
    (2, 3, 1, True, True, None),
]


# ------------------------------------------------------------------------------ import


def test_import_poolkit_alone_does_not_import_torch():
    code = "import sys, poolkit; assert 'torch' not in sys.modules, 'poolkit imported torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_modules_are_drop_in_subclasses():
    assert isinstance(pkt.MaxPool2d(2), torch.nn.MaxPool2d)
    assert isinstance(pkt.AvgPool2d(2), torch.nn.AvgPool2d)
    assert isinstance(pkt.AdaptiveAvgPool2d(2), torch.nn.AdaptiveAvgPool2d)
    assert isinstance(pkt.AdaptiveMaxPool2d(2), torch.nn.AdaptiveMaxPool2d)
    # Same constructor, positional order included (return_indices before ceil_mode).
    a = pkt.MaxPool2d(3, 2, 1, 1, True, True)
    b = torch.nn.MaxPool2d(3, 2, 1, 1, True, True)
    assert (a.return_indices, a.ceil_mode) == (True, True)
    assert repr(a) == repr(b)
    assert repr(pkt.AvgPool2d(3, 2, 1, True, False, 4)) == repr(
        torch.nn.AvgPool2d(3, 2, 1, True, False, 4))


# ---------------------------------------------------------------------------- gradcheck


@pytest.mark.parametrize("cfg", MAX_CONFIGS)
def test_gradcheck_max(cfg):
    x = distinct((1, 2, 7, 8))
    assert torch.autograd.gradcheck(lambda t: pkt.max_pool2d(t, *cfg), (x,))


@pytest.mark.parametrize("cfg", AVG_CONFIGS)
def test_gradcheck_avg(cfg):
    x = distinct((1, 2, 7, 8))
    assert torch.autograd.gradcheck(lambda t: pkt.avg_pool2d(t, *cfg), (x,))


@needs_stochastic
@pytest.mark.parametrize("cfg", [(2, 2, 0, False), (3, 2, 1, True), ((2, 3), 1, 0, False)])
def test_gradcheck_stochastic_inference(cfg):
    x = positive((1, 2, 7, 8))
    assert torch.autograd.gradcheck(
        lambda t: pkt.stochastic_pool2d(t, *cfg, training=False), (x,))


@needs_stochastic
@pytest.mark.parametrize("cfg", [(2, 2, 0, False), (3, 2, 1, True)])
def test_gradcheck_stochastic_training_fixed_seed(cfg):
    # An int generator reseeds every call, so the function is deterministic (piecewise linear).
    x = positive((1, 2, 7, 8))
    assert torch.autograd.gradcheck(
        lambda t: pkt.stochastic_pool2d(t, *cfg, training=True, generator=7), (x,))


@needs_global
@pytest.mark.parametrize("keepdims", [False, True])
def test_gradcheck_global_avg(keepdims):
    x = distinct((2, 3, 5, 6))
    assert torch.autograd.gradcheck(lambda t: pkt.global_avg_pool2d(t, keepdims), (x,))


@needs_adaptive
@pytest.mark.parametrize("size", [(3, 4), 1, (None, 2), 5])
def test_gradcheck_adaptive(size):
    x = distinct((1, 2, 7, 9))
    assert torch.autograd.gradcheck(lambda t: pkt.adaptive_avg_pool2d(t, size), (x,))
    assert torch.autograd.gradcheck(lambda t: pkt.adaptive_max_pool2d(t, size), (x,))


# --------------------------------------------------------------- parity with torch.nn.functional


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cfg", MAX_CONFIGS)
def test_max_matches_torch(cfg, dtype):
    x = distinct((3, 4, 11, 10), dtype)
    k, s, p, d, c = cfg
    v, i = pkt.max_pool2d(x, k, s, p, d, c, return_indices=True)
    rv, ri = F.max_pool2d(x, k, s, p, d, c, return_indices=True)
    assert v.dtype == dtype and i.dtype == torch.int64
    assert torch.equal(v, rv) and torch.equal(i, ri)
    y, gx = grads(lambda t: pkt.max_pool2d(t, *cfg), x)
    ry, rgx = grads(lambda t: F.max_pool2d(t, *cfg), x)
    assert torch.equal(y, ry)
    torch.testing.assert_close(gx, rgx)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cfg", AVG_CONFIGS)
def test_avg_matches_torch(cfg, dtype):
    x = distinct((3, 4, 11, 10), dtype)
    y, gx = grads(lambda t: pkt.avg_pool2d(t, *cfg), x)
    ry, rgx = grads(lambda t: F.avg_pool2d(t, *cfg), x)
    torch.testing.assert_close(y, ry)
    torch.testing.assert_close(gx, rgx)


@needs_global
def test_global_avg_matches_torch():
    x = distinct((3, 5, 9, 7), torch.float32)
    y, gx = grads(lambda t: pkt.GlobalAvgPool2d()(t), x)
    ry, rgx = grads(lambda t: F.adaptive_avg_pool2d(t, 1).flatten(1), x)
    assert y.shape == (3, 5)
    torch.testing.assert_close(y, ry)
    torch.testing.assert_close(gx, rgx)
    assert pkt.GlobalAvgPool2d(keepdims=True)(x).shape == (3, 5, 1, 1)


@needs_adaptive
@pytest.mark.parametrize("size", [(3, 4), 1, (None, 2), 5, (7, 1)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adaptive_matches_torch(size, dtype):
    x = distinct((2, 3, 11, 9), dtype)
    y, gx = grads(lambda t: pkt.AdaptiveAvgPool2d(size)(t), x)
    ry, rgx = grads(lambda t: torch.nn.AdaptiveAvgPool2d(size)(t), x)
    torch.testing.assert_close(y, ry)
    torch.testing.assert_close(gx, rgx)
    v, i = pkt.AdaptiveMaxPool2d(size, return_indices=True)(x)
    rv, ri = torch.nn.AdaptiveMaxPool2d(size, return_indices=True)(x)
    assert i.dtype == torch.int64
    assert torch.equal(v, rv) and torch.equal(i, ri)
    y, gx = grads(lambda t: pkt.AdaptiveMaxPool2d(size)(t), x)
    ry, rgx = grads(lambda t: torch.nn.AdaptiveMaxPool2d(size)(t), x)
    torch.testing.assert_close(gx, rgx)


def test_indices_work_with_max_unpool2d():
    x = distinct((2, 3, 8, 9), requires_grad=False)
    v, i = pkt.MaxPool2d(2, return_indices=True)(x)
    rv, ri = torch.nn.MaxPool2d(2, return_indices=True)(x)
    up = F.max_unpool2d(v, i, 2, output_size=x.shape[-2:])
    assert torch.equal(up, F.max_unpool2d(rv, ri, 2, output_size=x.shape[-2:]))
    assert torch.equal(torch.nn.MaxUnpool2d(2)(v, i, output_size=x.shape), up)


def test_three_d_input():
    x = distinct((4, 9, 8))
    y, gx = grads(lambda t: pkt.MaxPool2d(3, 2, 1)(t), x)
    ry, rgx = grads(lambda t: torch.nn.MaxPool2d(3, 2, 1)(t), x)
    assert y.shape == ry.shape == (4, 5, 4)
    assert torch.equal(y, ry) and torch.equal(gx, rgx)


# ----------------------------------------------------------- layouts, zero copy, threads


def test_non_contiguous_input_and_grad_output():
    base = distinct((2, 3, 12, 11))
    variants = {
        "channels_last": base.detach().to(memory_format=torch.channels_last),
        "slice": base.detach()[:, :, 1:, ::2],
        "transposed": base.detach().transpose(2, 3),
    }
    for name, x in variants.items():
        x = x.requires_grad_(True)
        for ours, theirs in [(pkt.MaxPool2d(3, 2, 1), torch.nn.MaxPool2d(3, 2, 1)),
                             (pkt.AvgPool2d(2), torch.nn.AvgPool2d(2))]:
            y, ry = ours(x), theirs(x)
            torch.testing.assert_close(y, ry, msg=name)
            # An expanded (stride-0) grad_output, as y.sum().backward() gives...
            (gx,) = torch.autograd.grad(y.sum(), x)
            (rgx,) = torch.autograd.grad(ry.sum(), x)
            torch.testing.assert_close(gx, rgx, msg=name)
            # ... and a transposed one.
            g = torch.randn(y.shape[:2] + y.shape[:1:-1], dtype=y.dtype).transpose(2, 3)
            assert not g.is_contiguous()
            (gx,) = torch.autograd.grad(ours(x), x, g)
            (rgx,) = torch.autograd.grad(theirs(x), x, g)
            torch.testing.assert_close(gx, rgx, msg=name)


def _spy(monkeypatch, name, calls):
    real = getattr(poolkit, name)

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        calls.append((args, kwargs, result))
        return result

    monkeypatch.setattr(poolkit, name, spy)


def _ptr(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def test_zero_copy_hand_over(monkeypatch):
    calls = []
    _spy(monkeypatch, "max_pool2d", calls)
    _spy(monkeypatch, "max_pool2d_backward", calls)
    x = distinct((2, 3, 8, 8), torch.float32)
    v, i = pkt.MaxPool2d(2, return_indices=True)(x)
    (args, _, (values, indices)), = calls
    assert _ptr(args[0]) == x.data_ptr()  # the kernels read the tensor's own memory
    assert v.data_ptr() == _ptr(values) and i.data_ptr() == _ptr(indices)
    g = torch.ones_like(v)  # contiguous: handed over as is
    (gx,) = torch.autograd.grad(v, x, g)
    args, _, grad_input = calls[1]
    assert _ptr(args[0]) == g.data_ptr() and _ptr(args[1]) == i.data_ptr()
    assert gx.data_ptr() == _ptr(grad_input)


def test_no_indices_computed_when_no_gradient_needed(monkeypatch):
    calls = []
    _spy(monkeypatch, "max_pool2d", calls)
    x = distinct((2, 3, 8, 8))
    with torch.no_grad():
        pkt.MaxPool2d(2)(x)
    pkt.MaxPool2d(2)(x.detach())
    assert [kw.get("return_indices", False) for _, kw, _ in calls] == [False, False]
    pkt.MaxPool2d(2)(x)
    assert calls[-1][1]["return_indices"] is True


def test_torch_thread_count_reaches_the_kernels(monkeypatch):
    calls = []
    _spy(monkeypatch, "max_pool2d", calls)
    _spy(monkeypatch, "avg_pool2d_backward", calls)
    old = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            pkt.MaxPool2d(2)(distinct((1, 2, 4, 4)))
            x = distinct((1, 2, 4, 4))
            torch.autograd.grad(pkt.AvgPool2d(2)(x).sum(), x)
            assert [kw["n_threads"] for _, kw, _ in calls[-2:]] == [n, n]
    finally:
        torch.set_num_threads(old)


def test_double_backward_is_refused():
    x = distinct((1, 2, 4, 4))
    (gx,) = torch.autograd.grad(pkt.AvgPool2d(2)(x).pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="twice|once_differentiable|double"):
        gx.sum().backward()


def test_torch_compile_runs_the_kernels_eagerly():
    # The functional entry points are torch.compiler.disable'd: Dynamo graph-breaks around
    # them instead of tracing into NumPy code, and the results stay poolkit's.
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), pkt.MaxPool2d(2), pkt.AvgPool2d(2))
    x = torch.randn(2, 2, 14, 14)
    compiled = torch.compile(model, backend="eager")
    y = compiled(x)
    torch.testing.assert_close(y, model(x))
    y.sum().backward()
    assert model[0].weight.grad is not None


# --------------------------------------------------------------------------------- errors


def _all_modules():
    mods = [pkt.MaxPool2d(2), pkt.AvgPool2d(2)]
    if hasattr(poolkit, "stochastic_pool2d"):
        mods += [pkt.StochasticPool2d(2, generator=0), pkt.StochasticPool2d(2).eval()]
    if hasattr(poolkit, "global_avg_pool2d"):
        mods += [pkt.GlobalAvgPool2d()]
    if hasattr(poolkit, "adaptive_avg_pool2d"):
        mods += [pkt.AdaptiveAvgPool2d(2), pkt.AdaptiveMaxPool2d(2)]
    return mods


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int64, torch.uint8,
                                   torch.complex64])
def test_unsupported_dtype_rejected(dtype):
    x = torch.ones(1, 2, 4, 4, dtype=dtype)
    for m in _all_modules():
        with pytest.raises(TypeError, match=r"float32 or torch\.float64"):
            m(x)


def test_non_cpu_tensor_rejected(monkeypatch):
    x = torch.ones(1, 2, 4, 4, device="meta")
    for m in _all_modules():
        with pytest.raises(RuntimeError, match="on device 'meta'.*CPU only"):
            m(x)
    if torch.cuda.is_available():  # pragma: no cover - CPU-only CI
        with pytest.raises(RuntimeError, match="CPU only"):
            pkt.MaxPool2d(2)(torch.ones(1, 2, 4, 4, device="cuda"))


def test_sparse_and_non_tensor_rejected():
    with pytest.raises(TypeError, match="strided"):
        pkt.MaxPool2d(2)(torch.ones(1, 2, 4, 4).to_sparse())
    with pytest.raises(TypeError, match="torch.Tensor"):
        pkt.max_pool2d(np.ones((1, 2, 4, 4)), 2)


def test_poolkit_errors_pass_through():
    with pytest.raises(ValueError, match="kernel_size"):
        pkt.MaxPool2d(0)(torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match="4-D"):
        pkt.AvgPool2d(2)(torch.ones(4, 4))


# ------------------------------------------------------------------ training equivalence


def _model(pool, global_pool, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), pool,
        torch.nn.Conv2d(8, 16, 3, padding=1), global_pool, torch.nn.Flatten(),
        torch.nn.Linear(16, 5),
    ).double()


def _train(model, steps=5):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(16, 3, 12, 12, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 5, (16,), generator=gen)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, model


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_small_cnn_trains_like_torch(kind):
    ours_pool = pkt.MaxPool2d(2) if kind == "max" else pkt.AvgPool2d(3, 2, 1)
    ref_pool = torch.nn.MaxPool2d(2) if kind == "max" else torch.nn.AvgPool2d(3, 2, 1)
    ours_global = (pkt.GlobalAvgPool2d(keepdims=True) if hasattr(poolkit, "global_avg_pool2d")
                   else torch.nn.AdaptiveAvgPool2d(1))
    ours, ours_model = _train(_model(ours_pool, ours_global))
    ref, ref_model = _train(_model(ref_pool, torch.nn.AdaptiveAvgPool2d(1)))
    assert ours[-1] < ours[0]
    np.testing.assert_allclose(ours, ref, rtol=1e-9)
    for p, q in zip(ours_model.parameters(), ref_model.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-12)
    # The parameters live in the convolutions: state dicts are interchangeable.
    assert ours_model.state_dict().keys() == ref_model.state_dict().keys()


@needs_stochastic
def test_small_cnn_trains_with_stochastic_pooling():
    model = _model(pkt.StochasticPool2d(2, generator=0), torch.nn.AdaptiveAvgPool2d(1))
    losses, model = _train(model, steps=8)
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    model.eval()
    x = torch.rand(2, 3, 12, 12, dtype=torch.float64)
    assert torch.equal(model(x), model(x))  # inference is deterministic


# ------------------------------------------------------------------------------ save / load


def _save_load(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


def test_state_dict_and_whole_module_round_trip():
    x = positive((2, 3, 9, 8), requires_grad=False)
    for m in _all_modules() + [pkt.MaxPool2d(3, 2, 1, return_indices=True, ceil_mode=True),
                               pkt.AvgPool2d(3, 2, 1, True, False, 4)]:
        fresh = copy.deepcopy(m)
        result = fresh.load_state_dict(_save_load(m.state_dict()))
        assert not result.missing_keys and not result.unexpected_keys
        loaded = _save_load(m)
        assert type(loaded) is type(m) and repr(loaded) == repr(m)
        assert loaded.training == m.training
        a, b = m(x), loaded(x)  # a stochastic module's generator state travels too
        for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,)):
            assert (u is None and v is None) or torch.equal(u, v)
    model = torch.nn.Sequential(pkt.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(48, 2))
    loaded = _save_load(model)
    assert isinstance(loaded[0], pkt.MaxPool2d)
    assert torch.equal(loaded(x.float()), model(x.float()))


# ------------------------------------------------------------------------ stochastic pooling


@needs_stochastic
def test_stochastic_training_routes_gradient_to_sampled_index():
    x = positive((2, 3, 8, 9))
    pool = pkt.StochasticPool2d(3, 2, 1, ceil_mode=True, generator=3, return_indices=True)
    v, i = pool(x)
    assert i.dtype == torch.int64
    flat = x.detach().flatten(2)
    assert torch.equal(v.detach(), flat.gather(2, i.flatten(2)).reshape(v.shape))
    g = torch.randn(v.shape, dtype=v.dtype)
    (gx,) = torch.autograd.grad(v, x, g)
    expected = torch.zeros_like(flat).scatter_add_(2, i.flatten(2), g.flatten(2))
    assert torch.equal(gx, expected.reshape(x.shape))
    # The indices are what max_unpool2d takes.
    assert F.max_unpool2d(v, i, 3, 2, 1, output_size=x.shape[-2:]).shape == x.shape


@needs_stochastic
def test_stochastic_eval_is_the_expectation():
    x = positive((2, 3, 8, 8))
    pool = pkt.StochasticPool2d(2).eval()
    y, gx = grads(pool, x)
    ry, rgx = grads(lambda t: F.avg_pool2d(t * t, 2) / F.avg_pool2d(t, 2), x)
    torch.testing.assert_close(y, ry)
    torch.testing.assert_close(gx, rgx)
    assert pkt.StochasticPool2d(2, return_indices=True).eval()(x)[1] is None


@needs_stochastic
def test_stochastic_train_eval_and_randomness():
    x = positive((2, 4, 16, 16), requires_grad=False)
    pool = pkt.StochasticPool2d(2)
    assert pool.training
    torch.manual_seed(5)  # generator=None: torch's default generator
    a, b = pool(x), pool(x)
    torch.manual_seed(5)
    assert torch.equal(pool(x), a) and torch.equal(pool(x), b)
    assert not torch.equal(a, b)  # successive forwards draw fresh seeds
    # Every sampled value is one of its window's values, never above the max.
    assert torch.all(a <= F.max_pool2d(x, 2))
    # An explicit generator, and an int seed, reproduce and are advanced per call.
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    assert torch.equal(pkt.StochasticPool2d(2, generator=g1)(x),
                       pkt.StochasticPool2d(2, generator=g2)(x))
    p1, p2 = pkt.StochasticPool2d(2, generator=4), pkt.StochasticPool2d(2, generator=4)
    assert torch.equal(p1(x), p2(x)) and torch.equal(p1(x), p2(x))
    # eval: deterministic and draws nothing from the generator.
    state = torch.get_rng_state()
    e = pool.eval()(x)
    assert torch.equal(torch.get_rng_state(), state) and torch.equal(e, pool(x))
    assert not torch.equal(e, a)
    pool.train()
    assert pool.training


@needs_stochastic
def test_stochastic_same_result_for_any_thread_count():
    x = positive((4, 8, 32, 32), dtype=torch.float32, requires_grad=False)
    old = torch.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append(pkt.StochasticPool2d(2, generator=11)(x))
    finally:
        torch.set_num_threads(old)
    assert torch.equal(*results)


@needs_stochastic
def test_stochastic_errors():
    with pytest.raises(ValueError, match="negative"):
        pkt.StochasticPool2d(2)(-positive((1, 1, 4, 4)))
    with pytest.raises(TypeError, match="generator"):
        pkt.StochasticPool2d(2, generator=1.5)
    with pytest.raises(TypeError, match="generator"):
        pkt.StochasticPool2d(2, generator=np.random.default_rng(0))
