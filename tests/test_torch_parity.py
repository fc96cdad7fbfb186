"""Parity with PyTorch's CPU pooling over ~200 random configurations per op.

Values and argmax indices of max pooling must equal
``torch.nn.functional.max_pool2d(..., return_indices=True)`` exactly; average
pooling to a tight tolerance; both backward passes must equal PyTorch's
autograd gradients. Inputs have no ties (a scaled permutation of ``arange``)
and no NaN: PyTorch picks the last NaN by design, poolkit the first.

Where the two disagree on validity it must be by design, never by accident:

- poolkit rejects max-pooling windows that hold no input position (PyTorch
  2.13 accepts them and returns an out-of-plane index);
- PyTorch's max_pool2d limits padding to half the *plain* kernel, DESIGN.md
  to half the *effective* (dilated) kernel, so poolkit accepts more there.

Every other configuration PyTorch rejects, poolkit rejects too.
"""

import numpy as np
import pytest

import poolkit
from _strategies import distinct_input, every_window_has_input, expected_out_hw, pair, rtol_for

torch = pytest.importorskip("torch")
F = torch.nn.functional

N_CONFIGS = 200


def _config(seed, kind):
    rng = np.random.default_rng([seed, 0 if kind == "max" else 1])
    k = tuple(int(v) for v in rng.integers(1, 5, 2))
    d = tuple(int(v) for v in rng.integers(1, 4, 2)) if kind == "max" else (1, 1)
    e = tuple(d[i] * (k[i] - 1) + 1 for i in range(2))
    # Mostly within PyTorch's limit (half the plain kernel), sometimes up to one
    # more than DESIGN.md's (half the effective kernel).
    p = tuple(
        int(rng.integers(0, (k[i] // 2 if rng.random() < 0.8 else e[i] // 2 + 1) + 1))
        for i in range(2)
    )
    s = tuple(int(v) for v in rng.integers(1, 4, 2))
    shape = (
        int(rng.integers(1, 3)),
        int(rng.integers(1, 4)),
        int(rng.integers(1, 13)),
        int(rng.integers(1, 13)),
    )
    params = dict(
        kernel_size=k,
        stride=None if rng.random() < 0.25 else s,
        padding=p,
        ceil_mode=bool(rng.random() < 0.5),
    )
    if kind == "max":
        params["dilation"] = d
    else:
        params["count_include_pad"] = bool(rng.random() < 0.5)
        params["divisor_override"] = None if rng.random() < 0.6 else int(rng.integers(1, 6))
    dtype = np.float32 if seed % 2 else np.float64
    return seed, shape, dtype, params


MAX_CONFIGS = [_config(i, "max") for i in range(N_CONFIGS)]
AVG_CONFIGS = [_config(i, "avg") for i in range(N_CONFIGS)]


def _id(cfg):
    seed, shape, dtype, params = cfg
    ps = ",".join(f"{k[0]}{v}" for k, v in params.items())
    return f"{seed}-{'x'.join(map(str, shape))}-{np.dtype(dtype).name}-{ps}".replace(" ", "")


def _torch_kwargs(params):
    kw = dict(params)
    if kw.get("stride") is None:
        kw["stride"] = kw["kernel_size"]  # torch's default, spelled out
    return kw


def _design_valid(shape, params):
    """Validity straight from DESIGN.md, independent of both libraries."""
    k, p, d = pair(params["kernel_size"]), pair(params["padding"]), pair(params.get("dilation", 1))
    if any(p[i] > (d[i] * (k[i] - 1) + 1) // 2 for i in range(2)):
        return False
    if min(expected_out_hw(shape[-2:], params)) < 1:
        return False
    return every_window_has_input(shape[-2:], params)


def _torch_pad_rule_only(params):
    """True when PyTorch's narrower padding rule (half the plain kernel) is broken."""
    k, p = pair(params["kernel_size"]), pair(params["padding"])
    return any(p[i] > k[i] // 2 for i in range(2))


def _torch_forward(fn, x, params, **extra):
    try:
        return fn(x, **_torch_kwargs(params), **extra)
    except RuntimeError:
        return None


@pytest.mark.parametrize("cfg", MAX_CONFIGS, ids=_id)
def test_max_pool_matches_torch(cfg):
    seed, shape, dtype, params = cfg
    x = distinct_input(shape, dtype, seed)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    out_t = _torch_forward(F.max_pool2d, xt, params, return_indices=True)
    if not _design_valid(shape, params):
        with pytest.raises(ValueError):
            poolkit.max_pool2d(x, return_indices=True, **params)
        return
    if out_t is None:
        # DESIGN.md accepts it, so PyTorch may only object to the padding.
        assert _torch_pad_rule_only(params), "torch rejects a configuration DESIGN.md calls valid"
        y, idx = poolkit.max_pool2d(x, return_indices=True, **params)
        assert y.shape == shape[:2] + expected_out_hw(shape[-2:], params)
        return
    yt, it = out_t
    y, idx = poolkit.max_pool2d(x, return_indices=True, **params)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(idx, it.numpy())

    g = np.random.default_rng(seed + 1000).standard_normal(y.shape).astype(dtype)
    yt.backward(torch.from_numpy(g))
    gx = poolkit.max_pool2d_backward(g, idx, shape)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=rtol_for(dtype), atol=1e-6)


@pytest.mark.parametrize("cfg", AVG_CONFIGS, ids=_id)
def test_avg_pool_matches_torch(cfg):
    seed, shape, dtype, params = cfg
    x = distinct_input(shape, dtype, seed, spacing=0.01)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = _torch_forward(F.avg_pool2d, xt, params)
    assert (yt is not None) == _design_valid(shape, params), "torch and DESIGN.md disagree"
    if yt is None:
        with pytest.raises(ValueError):
            poolkit.avg_pool2d(x, **params)
        return
    y = poolkit.avg_pool2d(x, **params)
    scale = float(np.abs(x).max()) if x.size else 1.0
    tol = dict(rtol=rtol_for(dtype) * 10, atol=rtol_for(dtype) * 10 * max(scale, 1.0))
    np.testing.assert_allclose(y, yt.detach().numpy(), **tol)

    g = np.random.default_rng(seed + 1000).standard_normal(y.shape).astype(dtype)
    yt.backward(torch.from_numpy(g))
    gx = poolkit.avg_pool2d_backward(g, shape, **params)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=rtol_for(dtype) * 10, atol=rtol_for(dtype) * 10)


@pytest.mark.parametrize("configs", [MAX_CONFIGS, AVG_CONFIGS], ids=["max", "avg"])
def test_parity_configurations_are_mostly_compared(configs):
    """Guard against a generator that mostly produces rejected configurations."""
    compared = sum(
        _design_valid(shape, params) and not _torch_pad_rule_only(params)
        for _, shape, _, params in configs
    )
    assert compared > 0.5 * len(configs)


def test_window_without_input_is_rejected_where_torch_accepts():
    x = np.zeros((2, 1, 2, 2))
    yt, it = F.max_pool2d(torch.from_numpy(x), 2, 1, 1, 3, return_indices=True)
    assert int(it.max()) >= 4  # torch points outside the 2x2 plane
    with pytest.raises(ValueError):
        poolkit.max_pool2d(x, 2, stride=1, padding=1, dilation=3, return_indices=True)
