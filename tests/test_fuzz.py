"""Fuzzing every public function and layer of poolkit with random, mostly invalid arguments.

Each test draws one call of one public name of ``poolkit.__all__``: input shapes (0-sized,
3-D/4-D and the wrong number of dimensions, zero-stride views declaring terabytes), dtypes,
memory layouts, window parameters (0, negative, floats, bools, ``2**62``, ``2**100``, wrong
tuple lengths, None, strings, arrays), indices out of range, mismatched gradient shapes and
``out=`` arrays of every wrong kind, plus ``n_threads``. The same call (without ``out=`` and
``n_threads=``) goes to ``poolkit.reference``. The contract checked:

* if the reference returns, poolkit returns the same thing (type, shape, dtype; values equal
  or allclose, indices equal) -- unless poolkit rejects, with a ValueError/TypeError naming
  it, something the reference does not check: a bad ``out=`` or ``n_threads``, a value of a
  non-canonical type (a float ``2.0``, a bool, a string ...) or above poolkit's limit
  ``2**31 - 1``;
* if the reference raises, poolkit raises too;
* poolkit raises only ValueError or TypeError, with a message naming the problem (MemoryError
  only for a valid request too large for the machine -- a 1 GiB+ allocation refused under the
  address-space limit set while a call runs -- RuntimeError only for the documented layer
  misuse: backward before forward);
* nothing hangs (each call is timed; ``faulthandler`` kills a hung run with a traceback);
* the inputs are unchanged afterwards, ``out=`` buffers are returned as the result, and the
  guard regions around them (and, for rejected ``out=`` arrays, the whole buffer) are
  unchanged.

Large window parameters that are still valid (``kernel_size=2**16`` with ``padding=2**15``)
make the pure-Python reference far too slow; those calls are checked against
``_window_oracle`` below, which computes the same windows from their few input positions.
Valid windows of more than 2**20 taps are not run at all (KNOWN ISSUE, see ``known_slow``):
the kernels loop over every tap and take minutes for 2**31 - 1 of them.

Profiles: the default ``ci`` profile runs ``N_EXAMPLES`` (20) examples per target, about 560
in all, in well under a minute; ``--hypothesis-profile=long`` (or
``HYPOTHESIS_PROFILE=long``) runs the profile's ``max_examples`` (2000) per target;
``POOLKIT_FUZZ_EXAMPLES=N`` overrides both. ``-s`` prints how many examples were tried and
their outcomes; ``POOLKIT_FUZZ_SUMMARY=path.json`` also writes them to a file.
"""

from __future__ import annotations

import collections
import dataclasses
import faulthandler
import inspect
import io
import json
import math
import os
import time
from decimal import Decimal
from fractions import Fraction

try:
    import resource
except ImportError:  # not on Windows
    resource = None

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import poolkit
from poolkit import reference

_MAX_DIM = 2**31 - 1  # poolkit's documented limit for every size and window parameter
LIMIT = str(_MAX_DIM)  # named by every message about that limit

# ------------------------------------------------------------------------------ settings

_PROFILE_EXAMPLES = settings.default.max_examples
N_EXAMPLES = int(os.environ.get("POOLKIT_FUZZ_EXAMPLES", "0")) or (
    20 if _PROFILE_EXAMPLES <= 100 else _PROFILE_EXAMPLES
)
FUZZ = settings(
    max_examples=N_EXAMPLES,
    deadline=None,  # timed by hand below: a deadline is flaky on a loaded 2-core machine
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
SLOW_CALL_S = float(os.environ.get("POOLKIT_FUZZ_SLOW_S", "10"))  # one poolkit call
HANG_S = 300  # faulthandler aborts the whole run (with tracebacks) after this

STATS: collections.Counter = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def _fuzz_summary():
    yield
    total = sum(v for (t, o), v in STATS.items() if o == "examples")
    per_target = collections.defaultdict(dict)
    for (target, outcome), v in sorted(STATS.items()):
        per_target[target][outcome] = v
    print(f"\n[poolkit fuzz] {total} examples tried over {len(per_target)} targets "
          f"({N_EXAMPLES} per target asked)")
    outcomes = collections.Counter()
    for target, d in per_target.items():
        for o, v in d.items():
            if o != "examples":
                outcomes[o] += v
    for o, v in sorted(outcomes.items()):
        print(f"[poolkit fuzz]   {o:<28} {v}")
    path = os.environ.get("POOLKIT_FUZZ_SUMMARY")
    if path:
        with open(path, "w") as fh:
            json.dump({"total_examples": total, "per_target": per_target,
                       "examples_per_target": N_EXAMPLES}, fh, indent=1, sort_keys=True)


# ------------------------------------------------------------------------- value pools

HUGE_INTS = [2**31 - 1, 2**31, 2**32 + 1, 2**62, 2**63, 2**64, 2**100,
             -(2**31), -(2**62), -(2**100)]


class _Opaque:
    def __repr__(self):
        return "<opaque object>"


WEIRD = [None, 0.0, 2.0, 2.5, -1.5, float("nan"), float("inf"), True, False, np.True_,
         "2", "", b"2", 2 + 0j, np.float64(2.0), np.float32(1.0), [], (), {}, _Opaque(),
         Fraction(2, 1), Decimal(2), np.array(2), np.array([[2, 2]]),
         np.array([2.0, 2.0]), range(2), {2, 3}]

small = st.integers(-1, 5)


def _np_int(v):
    return np.int64(v)


def _weighted(good, bad, n_good=3, n_bad=1):
    """``good`` with probability n_good / (n_good + n_bad), else ``bad``."""
    return st.integers(0, n_good + n_bad - 1).flatmap(lambda i: good if i < n_good else bad)


def _plausible(lo, hi):
    v = st.integers(lo, hi)
    return st.one_of(v, v, v.map(_np_int), st.tuples(v, v), st.lists(v, min_size=2, max_size=2))


_plausible_param = _plausible(1, 4)
_wild_param = st.one_of(
    small, small, small.map(_np_int),
    st.tuples(small, small),
    st.tuples(small, small).map(lambda t: np.array(t)),
    st.sampled_from(HUGE_INTS),
    st.tuples(small, st.sampled_from(HUGE_INTS)),
    st.sampled_from(WEIRD),
    st.tuples(small, st.sampled_from(WEIRD)),
    st.lists(small, min_size=0, max_size=4).filter(lambda v: len(v) != 2).map(tuple),
)
window_param = _weighted(_plausible_param, _wild_param, 5, 1)
PARAM_ST = {
    "kernel_size": window_param,
    "stride": _weighted(_plausible(1, 3), _wild_param, 5, 1),
    "padding": _weighted(_plausible(0, 1), _wild_param, 5, 1),
    "dilation": _weighted(_plausible(1, 2), _wild_param, 5, 1),
}
flag = _weighted(st.booleans(), st.sampled_from(
    [0, 1, None, "yes", np.True_, np.array([True, False]), 1.0]), 6, 1)
N_THREADS_GOOD = [None, 1, 2, -1, 3, 8, 2**62, 2**100, np.int64(2), np.uint64(2**64 - 1),
                  np.int32(-1)]
N_THREADS_BAD = [0, -3, -(2**62), 1.5, "2", True, [2], np.float64(2.0)]
n_threads_st = _weighted(st.sampled_from(N_THREADS_GOOD), st.sampled_from(N_THREADS_BAD), 2, 1)


def canonical_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def canonical(v, allow_none=False) -> bool:
    """An int, or a tuple/list of two ints, within poolkit's limit."""
    if v is None:
        return allow_none
    if isinstance(v, (tuple, list)):
        return len(v) == 2 and all(canonical_int(e) and abs(int(e)) <= _MAX_DIM for e in v)
    return canonical_int(v) and abs(int(v)) <= _MAX_DIM


def is_bool(v) -> bool:
    return isinstance(v, (bool, np.bool_))


def n_threads_valid(v) -> bool:
    if v is None:
        return True
    if is_bool(v) or not isinstance(v, (int, np.integer)):
        return False
    v = int(v)
    if v > 0:
        return True
    return v < 0 and poolkit._threads.cpu_count() + 1 + v >= 1


# ------------------------------------------------------------------------------ arrays

GOOD_DTYPES = [np.float64, np.float32]
BAD_DTYPES = [np.float16, np.int64, np.int32, np.uint8, np.bool_, np.complex128, object,
              np.longdouble, "U1"]
HUGE_DIMS = [2**16, 2**20, 2**24, 2**31 - 1, 2**31, 2**33, 2**40]


def _values(rng, shape, kind):
    return np.array(_values_any(rng, shape, kind), dtype=np.float64, ndmin=0)


def _values_any(rng, shape, kind):
    shape = tuple(shape) or (1,)  # 0-d arrays are drawn as (1,) and reshaped by the caller
    if kind == "normal":
        return rng.standard_normal(shape)
    if kind == "ties":
        return rng.integers(-2, 3, size=shape).astype(np.float64)
    if kind == "nonneg":  # activations for stochastic pooling, some zero windows
        v = np.abs(rng.standard_normal(shape))
        v[rng.random(shape) < 0.3] = 0.0
        return v
    if kind == "int":  # exact sums (class activation maps)
        return rng.integers(-3, 4, size=shape).astype(np.float64)
    v = rng.standard_normal(shape)  # "special"
    u = rng.random(shape)
    v[u < 0.1] = np.nan
    v[(u >= 0.1) & (u < 0.2)] = -np.inf
    v[(u >= 0.2) & (u < 0.25)] = np.inf
    if kind == "special-nonneg":
        v = np.abs(v)
        v[(u >= 0.25) & (u < 0.3)] = -1.0
    return v


@dataclasses.dataclass
class Arr:
    """A drawn array argument: ``value`` goes to the call; ``owners`` are the arrays that own
    its memory (checked unchanged afterwards); ``huge``: declared bytes too many to allocate."""

    value: object
    owners: list
    huge: bool = False


def _shape_st(ndims=(4,) * 6 + (3,) * 3 + (2, 5, 0, 1), max_nc=3, max_hw=7, zero_ok=True):
    lo_nc = 0 if zero_ok else 1

    @st.composite
    def shape(draw):
        ndim = draw(st.sampled_from(ndims))
        dims = []
        for i in range(ndim):
            if i >= ndim - 2:  # H, W
                d = draw(st.integers(1, max_hw))
                if zero_ok and draw(st.integers(0, 15)) == 0:
                    d = 0
            else:
                d = draw(st.integers(lo_nc, max_nc))
            dims.append(d)
        return tuple(dims)

    return shape()


@st.composite
def arrays(draw, shape=None, kind=None, dtype=None, layouts=True, huge_ok=True,
           bad_dtype_ok=True, list_ok=True):
    """A float array argument in any layout, sometimes of a bad dtype, sometimes huge."""
    if shape is None:
        if huge_ok and draw(st.integers(0, 9)) == 0:
            return draw(huge_arrays())
        shape = draw(_shape_st())
    if dtype is None:
        if bad_dtype_ok and draw(st.integers(0, 11)) == 0:
            dtype = draw(st.sampled_from(BAD_DTYPES))
        else:
            dtype = draw(st.sampled_from(GOOD_DTYPES))
            if draw(st.integers(0, 9)) == 0:
                dtype = np.dtype(dtype).newbyteorder(">")
    kind = kind or draw(st.sampled_from(["normal", "ties", "special"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    base = _values(rng, shape, kind).reshape(shape)
    dt = np.dtype(dtype)
    if dt.kind in "iub":
        base = np.nan_to_num(base, nan=0, posinf=3, neginf=-3).round()
    with np.errstate(all="ignore"):
        if dt.kind == "U":
            a = np.asarray(np.nan_to_num(base).astype(int)).astype(dt)
        else:
            a = np.asarray(base).astype(dt)
    layout = draw(st.sampled_from(["C", "C", "C", "F", "strided", "reversed", "readonly",
                                   "broadcast", "list"])) if layouts else "C"
    if a.ndim == 0 and layout == "F":
        layout = "C"  # np.asfortranarray makes a 0-d array 1-D
    if layout == "F":
        a = np.asfortranarray(a)
    elif layout == "strided" and a.ndim:
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1] + 1,), dtype=a.dtype)
        big[..., 1::2] = a
        a = big[..., 1::2]
        return Arr(a, [big])
    elif layout == "reversed" and a.ndim:
        a = np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    elif layout == "readonly":
        a.flags.writeable = False
    elif layout == "broadcast" and a.ndim and a.shape[0] > 0:
        src = np.ascontiguousarray(a[:1])
        return Arr(np.broadcast_to(src, a.shape), [src])
    elif layout == "list" and list_ok and dt in (np.dtype(np.float64),) and a.size < 50:
        return Arr(a.tolist(), [])
    return Arr(a, [a])


@st.composite
def huge_arrays(draw, ndim=None, dtype=None):
    """A zero-stride view declaring at least 2**40 bytes (or none at all): anything that
    tries to materialise it fails at once instead of swapping the machine to death."""
    ndim = ndim or draw(st.sampled_from([4, 4, 3]))
    dims = [draw(st.sampled_from([0, 1, 2, 3] + HUGE_DIMS)) for _ in range(ndim)]
    dt = np.dtype(dtype or draw(st.sampled_from(GOOD_DTYPES)))
    # numpy refuses shapes whose product of non-zero dimensions overflows, even when empty
    nbytes = math.prod(max(d, 1) for d in dims) * dt.itemsize
    if nbytes >= 2**63 or (0 not in dims and nbytes < 2**40):
        dims[-1] = 2**40
        if math.prod(max(d, 1) for d in dims) * dt.itemsize >= 2**63:
            dims = [1] * (ndim - 2) + [2**20, 2**21]
    src = np.full(1, 1.5, dtype=dt)
    view = np.lib.stride_tricks.as_strided(src, shape=tuple(dims), strides=(0,) * ndim,
                                           writeable=False)
    return Arr(view, [src], huge=True)


def declared_nbytes(a) -> int:
    return int(np.prod(np.shape(a), dtype=object)) * 8 if isinstance(a, np.ndarray) else 0


# -------------------------------------------------------------------------- the call

@dataclasses.dataclass
class Call:
    """One fuzzed call of ``poolkit.<name>`` (and of ``reference.<name>``)."""

    name: str
    args: list
    kwargs: dict
    arrays: list = dataclasses.field(default_factory=list)  # Arr of the array arguments
    out_ok: bool = True          # takes out= and n_threads=
    pair_out: bool = False       # out= is a pair (values, indices)
    exact: bool = False          # values compare exactly (max, unpool, sampling)
    tol_scale: float = 1.0
    ref: str = "call"            # "call", "oracle" (large windows), "skip" (no comparison)
    oracle: object = None
    huge: bool = False           # declared sizes that cannot be materialised
    primary: object = 0          # index/key of the main float input (for overlapping out=)
    rng_seed: object = "none"    # stochastic training: the seed to rebuild a Generator from
    lenient: tuple = ()          # parameters the reference reads more leniently than poolkit


def _noncanonical_names(call: Call) -> set:
    """Names of the arguments poolkit may reject although the reference accepts them."""
    names = set()
    try:
        sig = inspect.signature(getattr(poolkit, call.name))
        bound = sig.bind_partial(*call.args, **call.kwargs).arguments
    except TypeError:
        return set(call.lenient)
    for pname, v in bound.items():
        if pname in ("kernel_size", "stride", "padding", "dilation", "output_size", "size"):
            if v is not None and not canonical(v) and not (
                    pname == "output_size" and _canonical_output_size(v)):
                names.add(pname)
        elif pname in ("ceil_mode", "count_include_pad", "keepdims", "training",
                       "return_indices", "normalize"):
            if not is_bool(v) and not (pname == "normalize" and v is None):
                names.add(pname)
        elif pname == "divisor_override":
            if v is not None and not canonical(v):
                names.add(pname)
        elif pname == "input_shape":
            try:
                ok = all(canonical_int(e) and 0 <= int(e) for e in v)
            except TypeError:
                ok = False
            if not ok or any(int(e) > _MAX_DIM for e in v if canonical_int(e)):
                names.add(pname)
    names.update(call.lenient)
    return names


def _canonical_output_size(v):
    if isinstance(v, (tuple, list)):
        return len(v) in (2, 3, 4) and all(e is None or (canonical_int(e) and
                                                        abs(int(e)) <= _MAX_DIM) for e in v)
    return canonical(v)


# ------------------------------------------------------------------ window oracle (large)

def _axis_windows(L, k, s, p, d, ceil_mode):
    """Output count and, per output, the input positions of its window (tap order) and its
    start, for canonical int parameters of any size: what ``reference`` computes, in time
    independent of the kernel size. Raises ValueError where the reference does."""
    if k < 1 or s < 1 or d < 1:
        raise ValueError("kernel_size, stride and dilation must be >= 1")
    e = d * (k - 1) + 1
    if p < 0 or 2 * p > e:
        raise ValueError("padding must be at most half the effective kernel")
    n = reference.pool_output_size(L, k, s, p, d, ceil_mode)
    if n < 1:
        raise ValueError("output size < 1")
    wins = []
    for o in range(n):
        start = o * s - p
        taps = [q for q in range(L) if (q - start) % d == 0 and 0 <= (q - start) // d < k]
        if not taps:
            raise ValueError("window holds no input position")
        wins.append((start, taps))
    return n, wins


def _window_oracle(name, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                   count_include_pad=True, divisor_override=None, return_indices=False,
                   grad=None, input_shape=None):
    """max_pool2d / avg_pool2d / avg_pool2d_backward for canonical parameters of any size."""
    for a in (x, grad):
        if a is not None:
            a = np.asarray(a)
            if a.dtype.type not in (np.float32, np.float64):
                raise TypeError("dtype must be float32 or float64")
            if a.ndim not in (3, 4) or 0 in a.shape[-2:]:
                raise ValueError("bad shape")
    if grad is not None and (len(input_shape) != np.ndim(grad)
                             or tuple(input_shape[:-2]) != np.shape(grad)[:-2]):
        raise ValueError("input_shape does not match grad_output")
    for v in (kernel_size, padding, dilation) + (() if stride is None else (stride,)):
        if not (canonical_int(v) or (isinstance(v, (tuple, list)) and len(v) == 2
                                     and all(canonical_int(e) for e in v))):
            raise TypeError("window parameters must be ints or pairs of ints")
    if not is_bool(ceil_mode) or not is_bool(count_include_pad):
        raise TypeError("flags must be bools")
    if divisor_override is not None and not canonical_int(divisor_override):
        raise TypeError("divisor_override must be an int")
    if divisor_override == 0:
        raise ValueError("divisor_override must not be 0")
    pr = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    k, p, d = pr(kernel_size), pr(padding), pr(dilation)
    s = k if stride is None else pr(stride)
    k, s, p, d = ([int(e) for e in t] for t in (k, s, p, d))
    shape = tuple(input_shape) if input_shape is not None else np.shape(x)
    H, W = shape[-2:]
    if grad is not None:  # a gradient of the wrong shape: no need to list windows
        n_out = tuple(reference.pool_output_size(L, k[i], s[i], p[i], d[i], ceil_mode)
                      for i, L in enumerate((H, W)))
        if np.shape(grad)[-2:] != n_out:
            raise ValueError("grad_output has the wrong shape")
    (nh, wh), (nw, ww) = (_axis_windows(L, k[i], s[i], p[i], d[i], ceil_mode)
                          for i, L in enumerate((H, W)))
    if name == "max_pool2d":
        x4 = np.asarray(x).reshape((-1, H, W))
        vals = np.empty((x4.shape[0], nh, nw), dtype=np.asarray(x).dtype)
        idx = np.empty(vals.shape, dtype=np.int64)
        for pl in range(x4.shape[0]):
            for oh, (_, rows) in enumerate(wh):
                for ow, (_, cols) in enumerate(ww):
                    best, bi = None, -1
                    for r in rows:
                        for c in cols:
                            v = x4[pl, r, c]
                            if bi < 0 or v > best or (math.isnan(v) and not math.isnan(best)):
                                best, bi = v, r * W + c
                    vals[pl, oh, ow], idx[pl, oh, ow] = best, bi
        out_shape = shape[:-2] + (nh, nw)
        vals, idx = vals.reshape(out_shape), idx.reshape(out_shape)
        return (vals, idx) if return_indices else vals

    def divisor(hw, ww_):
        if divisor_override is not None:
            return int(divisor_override)
        (hs, hr), (ws, wc) = hw, ww_
        if count_include_pad:
            return ((min(hs + k[0], H + p[0]) - hs) * (min(ws + k[1], W + p[1]) - ws))
        return len(hr) * len(wc)

    if name == "avg_pool2d":
        xa = np.asarray(x)
        x4 = xa.reshape((-1, H, W))
        out = np.empty((x4.shape[0], nh, nw), dtype=xa.dtype)
        for pl in range(x4.shape[0]):
            for oh, hw in enumerate(wh):
                for ow, w_ in enumerate(ww):
                    acc = xa.dtype.type(0)
                    for r in hw[1]:
                        for c in w_[1]:
                            acc = acc + x4[pl, r, c]
                    with np.errstate(all="ignore"):
                        out[pl, oh, ow] = acc / xa.dtype.type(divisor(hw, w_))
        return out.reshape(shape[:-2] + (nh, nw))
    # avg_pool2d_backward
    g = np.asarray(grad)
    if g.shape != tuple(shape[:-2]) + (nh, nw):
        raise ValueError("grad_output has the wrong shape")
    g4 = g.reshape((-1, nh, nw))
    gi = np.zeros((g4.shape[0], H, W), dtype=g.dtype)
    for pl in range(g4.shape[0]):
        for oh, hw in enumerate(wh):
            for ow, w_ in enumerate(ww):
                with np.errstate(all="ignore"):
                    share = g4[pl, oh, ow] / g.dtype.type(divisor(hw, w_))
                for r in hw[1]:
                    for c in w_[1]:
                        gi[pl, r, c] += share
    return gi.reshape(shape)


# ----------------------------------------------------------------------- draw helpers

@st.composite
def big_window(draw, dilation=False):
    """Large, often valid, window parameters: kernel 2**8 .. 2**16 with padding about half
    the effective kernel (kh * kw can pass 2**31)."""
    ks, ps, ss, ds = [], [], [], []
    for _ in range(2):
        k = draw(st.sampled_from([2**8, 2**8 + 1, 2**12 + 3, 2**15, 2**16, 2**16 - 1]))
        dl = draw(st.sampled_from([1, 1, 2, 3])) if dilation else 1
        e = dl * (k - 1) + 1
        p = draw(st.sampled_from([e // 2, e // 2, e // 2 - 1, e // 2 + 1, e // 2 - 3]))
        s = draw(st.sampled_from([1, 2, 3, k, 2**20]))
        ks.append(k), ps.append(p), ss.append(s), ds.append(dl)
    return tuple(ks), tuple(ss), tuple(ps), tuple(ds)


def _small_plane_array(draw, kind=None):
    shape = draw(_shape_st(ndims=(4, 3), max_nc=2, max_hw=5, zero_ok=False))
    return draw(arrays(shape=shape, kind=kind, dtype=draw(st.sampled_from(GOOD_DTYPES)),
                       huge_ok=False, bad_dtype_ok=False))


def _try(f, *a, **k):
    try:
        return f(*a, **k)
    except Exception:
        return None


@st.composite
def mutated_shape(draw, shape):
    shape = tuple(shape)
    op = draw(st.sampled_from(["same"] * 4 + ["plus", "minus", "drop", "add", "swap",
                                             "zero"]))
    if op == "same" or not shape:
        return shape
    i = draw(st.integers(0, len(shape) - 1))
    s = list(shape)
    if op == "plus":
        s[i] += 1
    elif op == "minus":
        s[i] = max(0, s[i] - 1)
    elif op == "drop":
        del s[i]
    elif op == "add":
        s.insert(i, draw(st.integers(1, 2)))
    elif op == "swap" and len(s) >= 2:
        s[-1], s[-2] = s[-2], s[-1]
    elif op == "zero":
        s[i] = 0
    if math.prod(s) > 2**22:
        # a zero-size result (0, 1, 1, 2**31 - 1) mutated into one with elements: the test
        # would build a 16 GiB array. Shrink it (it still differs from the original).
        s = [min(d, 8) for d in s]
    return tuple(s)


@st.composite
def input_shape_arg(draw, shape):
    op = draw(st.sampled_from(["same"] * 5 + ["mutate", "float", "huge", "negative", "str",
                                             "none", "int", "list", "array", "overflow"]))
    shape = tuple(shape)
    if op == "same":
        return shape
    if op == "mutate":
        return draw(mutated_shape(shape))
    if op == "list":
        return list(shape)
    if op == "array":
        return np.array(shape)
    if op == "none":
        return None
    if op == "int":
        return 4
    if op == "str":
        return "1, 1, 4, 4"
    if not shape:
        return shape
    i = draw(st.integers(0, len(shape) - 1))
    s = list(shape)
    if op == "float":
        s[i] = float(s[i])
    elif op == "huge":
        s[i] = draw(st.sampled_from(HUGE_INTS[:7]))
    elif op == "negative":
        s[i] = -1 - s[i]
    elif op == "overflow":  # every entry large: the product overflows 64 bits
        s = [2**40] * (len(s) - 2) + [2**30, 2**30]
    return tuple(s)


@st.composite
def indices_arg(draw, idx, plane_size):
    """Mostly valid indices (from a forward), sometimes out of range, of a wrong dtype or
    shape."""
    idx = np.array(idx, dtype=np.int64, copy=True)
    op = draw(st.sampled_from(["same"] * 4 + ["value", "value", "dtype", "shape", "float",
                                             "list"]))
    if op == "same":
        return idx
    if op in ("value",) and idx.size:
        bad = draw(st.sampled_from([-1, plane_size, plane_size + 1, 2**31, 2**40, -(2**62),
                                    np.iinfo(np.int64).max, np.iinfo(np.int64).min]))
        idx.flat[draw(st.integers(0, idx.size - 1))] = bad
        return idx
    if op == "dtype":
        dt = draw(st.sampled_from([np.int32, np.uint64, np.int16, np.uint8, np.bool_]))
        with np.errstate(all="ignore"):
            out = idx.astype(dt)
        if dt == np.uint64 and idx.size and draw(st.booleans()):
            out.flat[0] = np.uint64(2**64 - 1)
        return out
    if op == "float":
        return idx.astype(np.float64)
    if op == "list":
        return idx.tolist()
    return np.zeros(draw(mutated_shape(idx.shape)), dtype=np.int64)


@st.composite
def grad_arg(draw, shape, dtype):
    """A gradient of (mostly) the given shape and dtype."""
    shape = draw(mutated_shape(shape))
    if draw(st.integers(0, 7)) == 0:
        dtype = draw(st.sampled_from(BAD_DTYPES[:5] + [np.float32, np.float64]))
    return draw(arrays(shape=shape, dtype=dtype, huge_ok=False))


# ------------------------------------------------------------------- per-function draws

def _window_kwargs(draw, dilation=True):
    kw = dict(kernel_size=draw(PARAM_ST["kernel_size"]))
    if draw(st.booleans()):
        kw["stride"] = draw(st.one_of(st.none(), PARAM_ST["stride"]))
    if draw(st.booleans()):
        kw["padding"] = draw(PARAM_ST["padding"])
    if dilation and draw(st.booleans()):
        kw["dilation"] = draw(PARAM_ST["dilation"])
    if draw(st.booleans()):
        kw["ceil_mode"] = draw(flag)
    return kw


def _draw_window_call(draw, name, x_kind=None):
    """kwargs of max/avg/stochastic pooling, with the input; large valid windows sometimes."""
    dil = name == "max_pool2d"
    if draw(st.integers(0, 7)) == 0:
        x = _small_plane_array(draw, kind=x_kind)
        k, s, p, d = draw(big_window(dilation=dil))
        kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=draw(st.booleans()))
        if dil:
            kw["dilation"] = d
        return x, kw, True
    x = draw(arrays(kind=x_kind))
    return x, _window_kwargs(draw, dilation=dil), False


@st.composite
def call_max_pool2d(draw):
    x, kw, big = _draw_window_call(draw, "max_pool2d")
    kw["return_indices"] = draw(flag)
    c = Call("max_pool2d", [x.value], kw, [x], exact=True, huge=x.huge,
             pair_out=bool(_try(bool, kw["return_indices"])))
    if big:
        c.ref, c.oracle = "oracle", lambda: _window_oracle("max_pool2d", x.value, **kw)
    return c


def _avg_extra(draw, kw):
    if draw(st.booleans()):
        kw["count_include_pad"] = draw(flag)
    if draw(st.booleans()):
        kw["divisor_override"] = draw(st.one_of(
            st.none(), st.integers(-3, 5), st.sampled_from(HUGE_INTS + WEIRD[:8])))


@st.composite
def call_avg_pool2d(draw):
    x, kw, big = _draw_window_call(draw, "avg_pool2d")
    _avg_extra(draw, kw)
    c = Call("avg_pool2d", [x.value], kw, [x], huge=x.huge)
    if big:
        c.ref, c.oracle = "oracle", lambda: _window_oracle("avg_pool2d", x.value, **kw)
    return c


def _forward_of(name, x, **kw):
    """The reference forward on a drawn input (None if it raises), to build the gradients
    and indices of backward calls; the window oracle where the reference would be slow."""
    with np.errstate(all="ignore"):
        if _largest_param(kw) > 64:
            if name in ORACLE_FUNCTIONS:
                return _try(_window_oracle, name, np.asarray(x), **kw)
            return None
        return _try(getattr(reference, name), np.asarray(x), **kw)


@st.composite
def call_max_pool2d_backward(draw):
    x = _small_plane_array(draw)
    kw = _window_kwargs(draw)
    fwd = _forward_of("max_pool2d", x.value, return_indices=True, **kw)
    if fwd is None:  # fall back to a valid 2x2 pooling
        fwd = reference.max_pool2d(np.asarray(x.value), 1, return_indices=True)
    vals, idx = fwd
    shape = np.shape(x.value)
    g = draw(grad_arg(vals.shape, vals.dtype))
    ind = draw(indices_arg(idx, shape[-2] * shape[-1]))
    return Call("max_pool2d_backward", [g.value, ind, draw(input_shape_arg(shape))], {},
                [g], exact=True)


@st.composite
def call_avg_pool2d_backward(draw):
    x = _small_plane_array(draw)
    shape = np.shape(x.value)
    if draw(st.integers(0, 7)) == 0:
        k, s, p, _ = draw(big_window())
        kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=draw(st.booleans()))
        big = True
    else:
        kw = _window_kwargs(draw, dilation=False)
        big = False
    _avg_extra(draw, kw)
    if big:
        fwd = _try(_window_oracle, "avg_pool2d", x.value, **kw)
    else:
        fwd = _forward_of("avg_pool2d", x.value, **kw)
    out_shape = fwd.shape if fwd is not None else shape
    g = draw(grad_arg(out_shape, np.asarray(x.value).dtype))
    ishape = draw(input_shape_arg(shape))
    c = Call("avg_pool2d_backward", [g.value, ishape], kw, [g])
    if big:
        c.ref = "oracle"
        c.oracle = lambda: _window_oracle("avg_pool2d_backward", None, grad=g.value,
                                          input_shape=_checked_shape(ishape), **kw)
    return c


def _checked_shape(s):
    """An input_shape as the oracle reads it (any sequence of ints, as the reference)."""
    if isinstance(s, np.ndarray):
        s = s.tolist()
    if not isinstance(s, (tuple, list)) or not all(canonical_int(e) for e in s):
        raise TypeError("input_shape must be a sequence of ints")
    s = tuple(int(e) for e in s)
    if len(s) not in (3, 4) or not all(0 <= e <= _MAX_DIM for e in s) or 0 in s[-2:]:
        raise ValueError("bad input_shape")
    return s


RNG_CHOICES = ["seed", "seed", "seed", "generator", "none", "bad"]


@st.composite
def call_stochastic_pool2d(draw):
    x, kw, _ = _draw_window_call(
        draw, "stochastic_pool2d",
        x_kind=draw(st.sampled_from(["nonneg", "nonneg", "nonneg", "special-nonneg",
                                     "normal"])))
    assume_small = x.huge
    kw.pop("dilation", None)
    if draw(st.booleans()):
        kw["training"] = draw(flag)
    kw["return_indices"] = draw(flag)
    rng_kind = draw(st.sampled_from(RNG_CHOICES))
    seed = draw(st.integers(0, 2**64 - 1))
    if rng_kind == "seed":
        kw["rng"] = seed
    elif rng_kind == "generator":
        kw["rng"] = np.random.default_rng(seed)
    elif rng_kind == "bad":
        kw["rng"] = draw(st.sampled_from([-1, 1.5, "seed", "RandomState", [-1], [1, 2]]))
        if kw["rng"] == "RandomState":  # stateful: a fresh one here, another for the reference
            kw["rng"] = np.random.RandomState(0)
    c = Call("stochastic_pool2d", [x.value], kw, [x], exact=True, huge=assume_small,
             pair_out=bool(_try(bool, kw["return_indices"])),
             rng_seed=seed if rng_kind in ("seed", "generator") else rng_kind)
    if _largest_param(kw) > 64:
        c.ref = "skip"  # the reference loops over every tap of a window
    return c


def _largest_param(kw):
    m = 0
    for key in ("kernel_size", "stride", "padding"):
        v = kw.get(key)
        vals = v if isinstance(v, (tuple, list)) else [v]
        for e in vals:
            if canonical_int(e):
                m = max(m, abs(int(e)))
    return m


@st.composite
def call_stochastic_pool2d_backward(draw):
    x = _small_plane_array(draw, kind="nonneg")
    shape = np.shape(x.value)
    kw = _window_kwargs(draw, dilation=False)
    kw.pop("dilation", None)
    mode = draw(st.sampled_from(["train", "train", "infer", "infer", "both", "neither"]))
    if mode in ("train", "both", "neither"):
        fwd = _forward_of("stochastic_pool2d", x.value, rng=0, return_indices=True, **kw)
        if fwd is None:
            fwd = reference.stochastic_pool2d(np.asarray(x.value), 1, rng=0,
                                              return_indices=True)
        vals, idx = fwd
        g = draw(grad_arg(vals.shape, vals.dtype))
        ind = draw(indices_arg(idx, shape[-2] * shape[-1]))
        args = [g.value, draw(input_shape_arg(shape))]
        kwargs = {"indices": ind}
        if mode == "both":
            kwargs["x"] = x.value
        if mode == "neither":
            del kwargs["indices"]
        if draw(st.integers(0, 5)) == 0:  # window parameters with indices: rejected
            kwargs.update(kw)
        return Call("stochastic_pool2d_backward", args, kwargs, [g, x], exact=False)
    fwd = _forward_of("stochastic_pool2d", x.value, training=False, **kw)
    out_shape = fwd.shape if fwd is not None else shape
    g = draw(grad_arg(out_shape, np.asarray(x.value).dtype))
    xx = x
    if draw(st.integers(0, 4)) == 0:
        xx = draw(arrays(kind=draw(st.sampled_from(["special-nonneg", "normal"])),
                         shape=draw(mutated_shape(shape))))
    kwargs = dict(kw, x=xx.value)
    args = [g.value]
    if draw(st.booleans()):
        args.append(draw(input_shape_arg(shape)))
    return Call("stochastic_pool2d_backward", args, kwargs, [g, xx])


@st.composite
def call_global_avg_pool2d(draw):
    x = draw(arrays())
    kw = {}
    if draw(st.booleans()):
        kw["keepdims"] = draw(flag)
    return Call("global_avg_pool2d", [x.value], kw, [x], huge=x.huge)


@st.composite
def call_global_max_pool2d(draw):
    x = draw(arrays())
    kw = {}
    if draw(st.booleans()):
        kw["keepdims"] = draw(flag)
    kw["return_indices"] = draw(flag)
    return Call("global_max_pool2d", [x.value], kw, [x], exact=True, huge=x.huge,
                pair_out=bool(_try(bool, kw["return_indices"])))


@st.composite
def call_global_avg_pool2d_backward(draw):
    x = _small_plane_array(draw)
    shape = np.shape(x.value)
    keep = draw(st.booleans())
    gshape = shape[:-2] + ((1, 1) if keep else ())
    g = draw(grad_arg(gshape, np.asarray(x.value).dtype))
    return Call("global_avg_pool2d_backward", [g.value, draw(input_shape_arg(shape))], {},
                [g])


@st.composite
def call_global_max_pool2d_backward(draw):
    x = _small_plane_array(draw)
    shape = np.shape(x.value)
    keep = draw(st.booleans())
    _, idx = reference.global_max_pool2d(np.asarray(x.value), keepdims=keep,
                                         return_indices=True)
    g = draw(grad_arg(idx.shape, np.asarray(x.value).dtype))
    ind = draw(indices_arg(idx, shape[-2] * shape[-1]))
    return Call("global_max_pool2d_backward", [g.value, ind, draw(input_shape_arg(shape))],
                {}, [g], exact=True)


output_size_st = st.one_of(
    st.integers(-1, 6), st.tuples(st.integers(0, 6), st.integers(0, 6)),
    st.tuples(st.one_of(st.none(), st.integers(1, 6)), st.one_of(st.none(), st.integers(1, 6))),
    st.sampled_from(HUGE_INTS), st.sampled_from(WEIRD),
    st.tuples(st.integers(1, 4), st.sampled_from(HUGE_INTS + WEIRD[:6])),
    st.lists(st.integers(1, 4), min_size=0, max_size=4).map(tuple),
)


@st.composite
def call_adaptive_avg_pool2d(draw):
    x = draw(arrays())
    os_ = draw(output_size_st)
    c = Call("adaptive_avg_pool2d", [x.value, os_], {}, [x], huge=x.huge)
    return c


@st.composite
def call_adaptive_max_pool2d(draw):
    x = draw(arrays())
    kw = {"return_indices": draw(flag)}
    c = Call("adaptive_max_pool2d", [x.value, draw(output_size_st)], kw, [x], exact=True,
             huge=x.huge, pair_out=bool(_try(bool, kw["return_indices"])))
    return c


def _adaptive_fwd(name, x, draw, **kw):
    os_ = draw(st.one_of(st.integers(1, 6), st.tuples(st.integers(1, 6), st.integers(1, 6))))
    fwd = _forward_of(name, x, output_size=os_, **kw)
    return fwd


@st.composite
def call_adaptive_avg_pool2d_backward(draw):
    x = _small_plane_array(draw)
    shape = np.shape(x.value)
    fwd = _adaptive_fwd("adaptive_avg_pool2d", x.value, draw)
    g = draw(grad_arg(fwd.shape, fwd.dtype))
    return Call("adaptive_avg_pool2d_backward", [g.value, draw(input_shape_arg(shape))], {},
                [g])


@st.composite
def call_adaptive_max_pool2d_backward(draw):
    x = _small_plane_array(draw)
    shape = np.shape(x.value)
    vals, idx = _adaptive_fwd("adaptive_max_pool2d", x.value, draw, return_indices=True)
    g = draw(grad_arg(vals.shape, vals.dtype))
    ind = draw(indices_arg(idx, shape[-2] * shape[-1]))
    return Call("adaptive_max_pool2d_backward", [g.value, ind, draw(input_shape_arg(shape))],
                {}, [g], exact=True)


@st.composite
def call_max_unpool2d(draw):
    # Mostly the output of a max pooling, unpooled with that pooling's parameters.
    src = _small_plane_array(draw)
    kw = _window_kwargs(draw, dilation=False)
    kw.pop("dilation", None)
    kw.pop("ceil_mode", None)
    fwd = _forward_of("max_pool2d", src.value, return_indices=True, **kw)
    if fwd is None:
        fwd = reference.max_pool2d(np.asarray(src.value), 1, return_indices=True)
        kw = dict(kernel_size=1)
    vals, idx = fwd
    x = draw(grad_arg(vals.shape, vals.dtype))  # mutated shape/dtype sometimes
    hw = np.shape(src.value)[-2:]
    ind = draw(indices_arg(idx, hw[0] * hw[1]))
    args = [x.value, ind]
    if draw(st.booleans()):
        kw["output_size"] = draw(st.one_of(
            st.just(hw), st.just(np.shape(src.value)), output_size_st,
            st.tuples(st.integers(0, 12), st.integers(0, 12))))
    return Call("max_unpool2d", args, kw, [x], exact=True)


@st.composite
def call_max_unpool2d_backward(draw):
    src = _small_plane_array(draw)
    vals, idx = reference.max_pool2d(np.asarray(src.value), draw(st.integers(1, 3)),
                                     return_indices=True) if min(np.shape(src.value)[-2:]) >= 3 \
        else reference.max_pool2d(np.asarray(src.value), 1, return_indices=True)
    shape = np.shape(src.value)
    g = draw(grad_arg(shape, vals.dtype))
    ind = draw(indices_arg(idx, shape[-2] * shape[-1]))
    return Call("max_unpool2d_backward", [g.value, ind], {}, [g], exact=True)


@st.composite
def call_class_activation_map(draw):
    n, k, h, w = (draw(st.integers(0, 3)), draw(st.integers(0, 3)), draw(st.integers(0, 5)),
                  draw(st.integers(0, 5)))
    fshape = draw(st.sampled_from([(n, k, h, w), (k, h, w), (n, k, h, w), (h, w)]))
    f = draw(arrays(shape=fshape, kind="int"))
    classes = draw(st.integers(0, 4))
    wshape = draw(mutated_shape((classes, k)))
    wt = draw(arrays(shape=wshape, kind="int", layouts=False))
    ci = draw(st.one_of(st.integers(-1, 4), st.lists(st.integers(-1, 4), max_size=4).map(
        np.array), st.sampled_from([1.0, None, True, "0", 2**70, np.array([[0]])])))
    kw = {}
    if draw(st.booleans()):
        kw["size"] = draw(st.one_of(st.integers(-1, 6),
                                    st.tuples(st.integers(1, 6), st.integers(1, 6)),
                                    st.sampled_from(HUGE_INTS + [(2**25, 2**25)] + WEIRD[:5])))
    if draw(st.booleans()):
        kw["normalize"] = draw(st.one_of(st.none(), flag))
    c = Call("class_activation_map", [f.value, wt.value, ci], kw, [f, wt], out_ok=False,
             tol_scale=1e3)
    sz = kw.get("size")
    big = [e for e in (sz if isinstance(sz, tuple) else (sz,)) if canonical_int(e) and e > 64]
    if big:
        c.ref, c.huge = "skip", True
    return c


@st.composite
def call_show_config(draw):
    # file= is any object with a write method, as for print(); print's own AttributeError
    # for other objects is not poolkit's to change.
    args = draw(st.sampled_from([[], [io.StringIO()], [None], [io.StringIO(), 2]]))
    return Call("show_config", args, {}, [], out_ok=False, ref="skip")


@st.composite
def call_openmp_enabled(draw):
    args = draw(st.sampled_from([[], [1], ["x"]]))
    return Call("openmp_enabled", args, {}, [], out_ok=False, ref="skip")


FUNCTIONS = {
    "max_pool2d": call_max_pool2d,
    "max_pool2d_backward": call_max_pool2d_backward,
    "avg_pool2d": call_avg_pool2d,
    "avg_pool2d_backward": call_avg_pool2d_backward,
    "stochastic_pool2d": call_stochastic_pool2d,
    "stochastic_pool2d_backward": call_stochastic_pool2d_backward,
    "global_avg_pool2d": call_global_avg_pool2d,
    "global_avg_pool2d_backward": call_global_avg_pool2d_backward,
    "global_max_pool2d": call_global_max_pool2d,
    "global_max_pool2d_backward": call_global_max_pool2d_backward,
    "adaptive_avg_pool2d": call_adaptive_avg_pool2d,
    "adaptive_avg_pool2d_backward": call_adaptive_avg_pool2d_backward,
    "adaptive_max_pool2d": call_adaptive_max_pool2d,
    "adaptive_max_pool2d_backward": call_adaptive_max_pool2d_backward,
    "max_unpool2d": call_max_unpool2d,
    "max_unpool2d_backward": call_max_unpool2d_backward,
    "class_activation_map": call_class_activation_map,
    "show_config": call_show_config,
    "openmp_enabled": call_openmp_enabled,
}
LAYERS = ["Layer", "MaxPool2d", "AvgPool2d", "StochasticPool2d", "GlobalAvgPool2d",
          "GlobalMaxPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d", "MaxUnpool2d"]
NOT_CALLABLE = {"__version__", "reference"}


# ------------------------------------------------------------------------- the checks

ALLOWED = (ValueError, TypeError)
VOCAB = ("shape", "dtype", "indices", "size", "window", "input", "output", "padding",
         "activation", "rng", "seed", "kernel", "stride", "dilation", "out", "n_threads",
         "argument", "positional", "class", "grad", "features", "weights", "bool", "int")


def check_message(exc, call_name, extra=()):
    msg = str(exc)
    assert len(msg) >= 10, f"{type(exc).__name__} without a useful message: {msg!r}"
    try:
        params = list(inspect.signature(getattr(poolkit, call_name)).parameters)
    except (TypeError, ValueError):
        params = []
    words = tuple(params) + VOCAB + tuple(extra)
    assert any(w in msg for w in words), f"the message names nothing we passed: {msg!r}"


def _snapshot(arrs):
    snaps = []
    for a in arrs:
        for owner in a.owners:
            snaps.append((owner, owner.tobytes(), owner.dtype))
    return snaps


def _check_unchanged(snaps, what="input"):
    for owner, data, _ in snaps:
        assert owner.tobytes() == data, f"poolkit wrote into its {what}"


def _copy_arg(v):
    if isinstance(v, np.ndarray):
        return v.copy()
    if isinstance(v, np.random.Generator):
        return v  # replaced by the caller
    return v


def _ref_args(call: Call):
    args = [_copy_arg(a) for a in call.args]
    kwargs = {k: _copy_arg(v) for k, v in call.kwargs.items()}
    if "rng" in kwargs and isinstance(kwargs["rng"], np.random.Generator):
        kwargs["rng"] = np.random.default_rng(call.rng_seed)
    if "rng" in kwargs and isinstance(kwargs["rng"], np.random.RandomState):
        kwargs["rng"] = np.random.RandomState(0)
    return args, kwargs


def _vm_bytes():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


class _AddressSpaceLimit:
    """RLIMIT_AS at the current size plus ``HEADROOM`` while a fuzzed call runs, so that a
    valid request for tens of gigabytes (``adaptive_avg_pool2d(x, (2**31 - 1, 1))``) fails
    at once with MemoryError instead of being granted lazily and swapping the machine.
    POOLKIT_FUZZ_NO_RLIMIT=1 turns it off."""

    HEADROOM = 4 << 30

    def __enter__(self):
        self.old = None
        if resource is None or os.environ.get("POOLKIT_FUZZ_NO_RLIMIT"):
            return self
        try:
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            want = _vm_bytes() + self.HEADROOM
            if hard != resource.RLIM_INFINITY:
                want = min(want, hard)
            if soft == resource.RLIM_INFINITY or soft > want:
                resource.setrlimit(resource.RLIMIT_AS, (want, hard))
                self.old = (soft, hard)
        except (OSError, ValueError):
            self.old = None
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            resource.setrlimit(resource.RLIMIT_AS, self.old)
        return False


def too_large(exc) -> bool:
    """A MemoryError for a request of at least 1 GiB (numpy's error carries its size): what
    a valid but enormous request gets under the fuzz's address-space limit."""
    size = getattr(exc, "_total_size", None)
    return isinstance(exc, MemoryError) and size is not None and size >= 1 << 30


def _outcome(f):
    t0 = time.perf_counter()
    faulthandler.dump_traceback_later(HANG_S, exit=True)
    try:
        with _AddressSpaceLimit():
            return f(), None, time.perf_counter() - t0
    except Exception as exc:
        return None, exc, time.perf_counter() - t0
    finally:
        faulthandler.cancel_dump_traceback_later()


def _tolerances(dtype, scale):
    if np.dtype(dtype) == np.float32:
        return 2e-5 * scale, 1e-5 * scale
    return 1e-11 * scale, 1e-12 * scale


def assert_same(res, ref, call: Call, what="result"):
    if isinstance(ref, tuple):
        assert isinstance(res, tuple) and len(res) == len(ref), (
            f"{what}: expected a tuple of {len(ref)}, got {type(res).__name__}")
        for i, (a, b) in enumerate(zip(res, ref)):
            assert_same(a, b, call, f"{what}[{i}]")
        return
    if ref is None:
        assert res is None, f"{what}: expected None, got {type(res).__name__}"
        return
    assert isinstance(res, np.ndarray), f"{what}: expected an ndarray, got {type(res)}"
    ref = np.asarray(ref)
    assert res.shape == ref.shape, f"{what}: shape {res.shape} != reference {ref.shape}"
    assert res.dtype == ref.dtype, f"{what}: dtype {res.dtype} != reference {ref.dtype}"
    if res.dtype.kind in "iub" or call.exact:
        np.testing.assert_array_equal(res, ref, err_msg=f"{what} differs from the reference")
        return
    scale = 1.0
    finite = ref[np.isfinite(ref)]
    if finite.size:
        scale = max(1.0, float(np.max(np.abs(finite))))
    atol, rtol = _tolerances(res.dtype, call.tol_scale)
    np.testing.assert_allclose(res, ref, rtol=rtol, atol=atol * scale, equal_nan=True,
                               err_msg=f"{what} differs from the reference")


# ------------------------------------------------------------------------- out= arrays

SENTINEL = {np.dtype(np.float64): -7.25e300, np.dtype(np.float32): -3.5e37,
            np.dtype(np.int64): 0x5A5A5A5A5A5A5A5A}


@dataclasses.dataclass
class Guard:
    buf: np.ndarray
    inside: np.ndarray  # positions of buf that the out= view covers
    whole: bool         # the view must not be written at all (a rejected out=)
    before: bytes = b""

    def check(self, wrote_ok):
        after = self.buf.copy()
        before = np.frombuffer(self.before, dtype=self.buf.dtype)
        mask = np.ones(self.buf.size, dtype=bool)
        if wrote_ok and not self.whole:
            mask[self.inside] = False
        changed = after.view(np.uint8).reshape(self.buf.size, -1)[mask] != \
            before.view(np.uint8).reshape(self.buf.size, -1)[mask]
        assert not changed.any(), (
            "poolkit wrote outside its output: guard region of an out= buffer changed"
            if not self.whole else "poolkit wrote into an out= array it should have rejected")


def _guarded(shape, dtype, kind, guards):
    """An out= array of ``shape``/``dtype`` in a sentinel-filled buffer; kind: "C", "strided",
    "F", "readonly"."""
    dtype = np.dtype(dtype)
    n = math.prod(shape)
    G = 16
    step = 2 if kind == "strided" else 1
    buf = np.empty(step * n + 2 * G, dtype=dtype)
    sentinel = SENTINEL.get(dtype.newbyteorder("="), 7)
    buf[...] = np.array(sentinel).astype(dtype)
    inside = np.arange(G, G + step * n, step)
    if kind == "readonly":
        buf.flags.writeable = False
    if kind == "strided":
        view = buf[G:G + step * n:step].reshape(shape)
    elif kind == "F":
        view = buf[G:G + n].reshape(tuple(reversed(shape))).T
    else:
        view = buf[G:G + n].reshape(shape)
    g = Guard(buf, inside, whole=False, before=buf.tobytes())
    guards.append(g)
    return view, g


@st.composite
def out_arrays(draw, expected, call: Call, guards):
    """(out, good): an out= argument for a call whose reference result is ``expected``
    (None when unknown) and whether poolkit must accept it."""
    if expected is None:
        # The right result is unknown, so the array must be wrong for certain: 5-D (no
        # poolkit result has five dimensions; a guessed 2-D (1, 0) matched a global pooling
        # of a (1, 0, 1, 1) input, which poolkit rightly accepted).
        shape = draw(st.tuples(*[st.integers(0, 3)] * 5))
        kind = draw(st.sampled_from(["C", "C", "list", "scalar", "pair"]))
        if kind == "list":
            return [0.0], False
        if kind == "scalar":
            return 1.0, False
        arr, _ = _guarded(shape, np.float64, "C", guards)
        return ((arr, arr) if kind == "pair" else arr), False
    if isinstance(expected, tuple):
        if not call.pair_out:
            return None, True
        (v, vg), (i, ig) = (draw(_one_out(e, call, guards)) for e in expected)
        shape_kind = draw(st.sampled_from(["pair", "pair", "pair", "list", "single", "triple",
                                           "shared"]))
        if shape_kind == "list":
            return [v, i], vg and ig
        if shape_kind == "single":
            return v, False
        if shape_kind == "triple":
            return (v, i, i), False
        if shape_kind == "shared" and isinstance(v, np.ndarray) and v.nbytes >= 8 and \
                v.flags.c_contiguous and vg and \
                v.dtype.itemsize == 8 and v.dtype.isnative:
            # indices overlapping the values: must be rejected
            i2 = v.view(np.int64)
            _mark_whole(guards, v)
            return (v, i2), False
        return (v, i), vg and ig
    return draw(_one_out(expected, call, guards))


def _mark_whole(guards, view):
    for g in guards:
        if np.shares_memory(g.buf, view):
            g.whole = True


@st.composite
def _one_out(draw, expected, call, guards):
    shape, dtype = expected.shape, expected.dtype
    kind = draw(st.sampled_from(["good"] * 6 + ["shape", "dtype", "strided", "F", "readonly",
                                                "list", "scalar", "nonnative", "overlap"]))
    STATS[(call.name, f"out= kind {kind}")] += 1
    if kind == "good":
        v, _ = _guarded(shape, dtype, "C", guards)
        return v, True
    if kind == "shape":
        s = draw(mutated_shape(shape).filter(lambda s: s != tuple(shape)))
        v, g = _guarded(s, dtype, "C", guards)
        g.whole = True
        return v, False
    if kind == "dtype":
        dt = draw(st.sampled_from([np.float64, np.float32, np.int64]).filter(
            lambda d: np.dtype(d) != dtype))
        v, g = _guarded(shape, dt, "C", guards)
        g.whole = True
        return v, False
    if kind == "nonnative":
        v, g = _guarded(shape, dtype.newbyteorder(">"), "C", guards)
        g.whole = True
        return v, False
    if kind in ("strided", "F", "readonly"):
        v, g = _guarded(shape, dtype, kind, guards)
        good = v.flags.c_contiguous and v.flags.writeable
        g.whole = not good
        return v, good
    if kind == "list":
        return np.zeros(shape, dtype).tolist(), False
    if kind == "scalar":
        return 0.0, False
    # "overlap": the primary input and out= share memory
    return _overlapping_out(call, shape, dtype, guards)


def _overlapping_out(call, shape, dtype, guards):
    """Rebind the call's primary input to a view in a shared buffer and return an out= view
    overlapping it (rejected by poolkit; the input must stay unchanged)."""
    key = call.primary
    src = call.args[key] if isinstance(key, int) else call.kwargs.get(key)
    n_out = math.prod(shape) * np.dtype(dtype).itemsize
    if not isinstance(src, np.ndarray) or src.dtype.kind != "f" or src.nbytes < 8 or \
            n_out == 0 or src.dtype.itemsize < 4:
        v, _ = _guarded(shape, dtype, "C", guards)
        return v, True
    src = np.ascontiguousarray(src)
    buf = np.zeros(src.nbytes + n_out + 64, dtype=np.uint8)
    vin = buf[:src.nbytes].view(src.dtype).reshape(src.shape)
    vin[...] = src
    off = (src.nbytes // 2) // 8 * 8
    vout = buf[off:off + n_out].view(dtype).reshape(shape)
    if isinstance(key, int):
        call.args[key] = vin
    else:
        call.kwargs[key] = vin
    call.arrays.append(Arr(vin, [buf]))
    return vout, False


# --------------------------------------------------------------------------- the driver

WINDOW_FUNCTIONS = {"max_pool2d", "avg_pool2d", "avg_pool2d_backward", "stochastic_pool2d",
                    "stochastic_pool2d_backward"}
ORACLE_FUNCTIONS = {"max_pool2d", "avg_pool2d", "avg_pool2d_backward"}


def _choose_reference(call: Call):
    """The reference loops over every tap of a window (and, validating, up to ``padding``
    positions per window): for large window parameters use the window oracle, or skip."""
    if call.name not in WINDOW_FUNCTIONS or call.ref != "call":
        return
    size = _largest_param(call.kwargs)
    if call.name == "avg_pool2d_backward":  # the reference validates windows before shapes
        ishape = call.args[1]
        if isinstance(ishape, (tuple, list, np.ndarray)) and len(ishape) >= 2:
            size = max([size] + [int(e) for e in list(ishape)[-2:] if canonical_int(e)])
    if size <= 64:
        return
    if call.name not in ORACLE_FUNCTIONS:
        call.ref = "skip"
        return
    kw = {k: v for k, v in call.kwargs.items()}
    if call.name == "avg_pool2d_backward":
        g, ishape = call.args
        call.oracle = lambda: _window_oracle(call.name, None, grad=g,
                                             input_shape=_checked_shape(ishape), **kw)
    else:
        call.oracle = lambda: _window_oracle(call.name, call.args[0], **kw)
    call.ref = "oracle"


def _ref_outcome(call: Call):
    _choose_reference(call)
    if call.ref == "skip":
        return None, None, False
    if call.ref == "oracle":
        with np.errstate(all="ignore"):
            res, exc, _ = _outcome(call.oracle)
        return res, exc, True
    args, kwargs = _ref_args(call)
    with np.errstate(all="ignore"):  # the reference's inf - inf in float sums
        res, exc, _ = _outcome(lambda: getattr(reference, call.name)(*args, **kwargs))
    return res, exc, True


# KNOWN ISSUE (kernels, pyx/): the tap loops of max/avg/stochastic pooling visit every one of
# kh (and kw) taps of a window, also those that can never land inside the input, so a VALID
# window of 2**31 - 1 taps (kernel_size=(3, 2**31 - 1), ceil_mode=True; or kernel 2**30 with
# padding 2**29) runs for minutes. Until the kernels clamp their tap ranges to the input,
# such calls are not made here (they are counted); tests/test_limits.py holds the xfail.
SLOW_TAPS = 2**20


def known_slow(kw, hw) -> bool:
    """Valid window parameters with more than SLOW_TAPS taps along an axis (see above)."""
    k = kw.get("kernel_size")
    ks = k if isinstance(k, (tuple, list)) else (k,)
    if not ks or not all(canonical_int(e) for e in ks) or max(int(e) for e in ks) <= SLOW_TAPS:
        return False
    hw = tuple(hw)
    if len(hw) != 2 or not all(canonical_int(e) and 0 < int(e) <= 4096 for e in hw):
        return True  # cannot tell cheaply: do not risk it
    try:
        p = _window_oracle_params(kw)
        for i in range(2):
            _axis_windows(int(hw[i]), *(v[i] for v in p[:4]), bool(kw.get("ceil_mode", False)))
    except (TypeError, ValueError):
        return False
    return True


def _window_oracle_params(kw):
    pr = lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v, v)
    k = pr(kw["kernel_size"])
    s = k if kw.get("stride") is None else pr(kw["stride"])
    p, d = pr(kw.get("padding", 0)), pr(kw.get("dilation", 1))
    for t in (k, s, p, d):
        if len(t) != 2 or not all(canonical_int(e) for e in t):
            raise TypeError
    if not is_bool(kw.get("ceil_mode", False)):
        raise TypeError
    return [tuple(int(e) for e in t) for t in (k, s, p, d)]


def _plane_of(call):
    if call.name in ("avg_pool2d_backward",):
        ishape = call.args[1]
        return tuple(ishape)[-2:] if isinstance(ishape, (tuple, list)) else ()
    if call.name == "stochastic_pool2d_backward":
        x = call.kwargs.get("x")
        return np.shape(x)[-2:] if x is not None else ()
    return np.shape(call.args[0])[-2:] if call.args else ()


def run_call(data, call: Call):
    STATS[(call.name, "examples")] += 1
    if call.name in WINDOW_FUNCTIONS and known_slow(call.kwargs, _plane_of(call)):
        return _record(call, "KNOWN ISSUE: slow tap loop, not called")
    note(f"call: poolkit.{call.name}(*{call.args!r}, **{call.kwargs!r})")
    if call.huge:
        ref, ref_exc, ran = None, None, False
    else:
        ref, ref_exc, ran = _ref_outcome(call)
    note(f"reference: {ref_exc!r}" if ref_exc else "reference returned")
    guards = []
    kwargs = dict(call.kwargs)
    out_good, threads_good, out_given = True, True, False
    if call.out_ok:
        if data.draw(st.integers(0, 3)) == 0:
            out, out_good = data.draw(out_arrays(ref if ran and ref_exc is None else None,
                                                 call, guards))
            if out is not None:
                kwargs["out"], out_given = out, True
            kwargs.update({k: v for k, v in call.kwargs.items() if k not in kwargs})
        if data.draw(st.integers(0, 3)) == 0:
            kwargs["n_threads"] = data.draw(n_threads_st)
            threads_good = n_threads_valid(kwargs["n_threads"])
    snaps = _snapshot(call.arrays)
    res, exc, dt = _outcome(lambda: getattr(poolkit, call.name)(*call.args, **kwargs))
    note(f"poolkit: {exc!r}" if exc else "poolkit returned")
    assert dt < SLOW_CALL_S, f"poolkit.{call.name} took {dt:.1f} s"
    _check_unchanged(snaps)
    for g in guards:
        g.check(wrote_ok=exc is None)

    if exc is not None:
        if isinstance(exc, MemoryError) and (call.huge or too_large(exc)):
            return _record(call, "MemoryError (request too large)")
        assert isinstance(exc, ALLOWED), (
            f"poolkit.{call.name} raised {type(exc).__name__}: {exc}")
        check_message(exc, call.name)
    if (not out_good or not threads_good) and (ref_exc is None or not ran):
        assert exc is not None, (
            f"poolkit.{call.name} accepted a bad "
            f"{'out=' if not out_good else 'n_threads='} argument")
        named = (["out"] if not out_good else []) + (["n_threads"] if not threads_good else [])
        if ran and ref_exc is None and not too_large(exc):
            named += sorted(_noncanonical_names(call)) + [LIMIT]
            assert any(n in str(exc) for n in named), (
                f"expected an error about {named}, got {exc!r}")
        return _record(call, "bad out/n_threads rejected")
    if call.huge or not ran:
        if exc is None and call.huge:
            assert all(np.size(r) == 0 for r in (res if isinstance(res, tuple) else (res,))), (
                "a huge input gave a non-empty result without running out of memory")
            return _record(call, "huge: empty result")
        if exc is None:
            _self_consistent(call, res)
        return _record(call, "huge/unchecked: " + ("raised" if exc else "returned"))
    if ref_exc is not None and exc is None and _has_array_pairs(call):
        # poolkit reads a 1-D integer array of two entries as a pair (as PyTorch reads any
        # iterable); the reference wants a tuple: ask it again with tuples.
        ref, ref_exc, ran = _ref_outcome(_with_tuple_pairs(call))
        if ref_exc is None:
            if call.name == "stochastic_pool2d" and call.rng_seed == "none":
                _self_consistent(call, res)
            else:
                assert_same(res, ref, call)
            return _record(call, "equal to reference (array pairs)")
    if ref_exc is not None:
        assert exc is not None, (
            f"poolkit.{call.name} returned although the reference raised {ref_exc!r}")
        kind = "both raised" if type(exc) is type(ref_exc) else "both raised (types differ)"
        if type(exc) is not type(ref_exc):
            STATS[(call.name, f"  types: poolkit {type(exc).__name__}, reference "
                              f"{type(ref_exc).__name__}: {exc}"[:150])] += 1
            event(f"{call.name}: poolkit {type(exc).__name__} / reference "
                  f"{type(ref_exc).__name__}")
        return _record(call, kind)
    # the reference returned
    if exc is not None:
        stricter = _noncanonical_names(call)
        # DESIGN: an H or W of 0 is a ValueError (the CAM reference lets 0-sized maps through)
        stricter.update({LIMIT, "H > 0 and W > 0", "h > 0 and w > 0"})
        assert any(n in str(exc) for n in stricter), (
            f"poolkit.{call.name} raised {exc!r} where the reference returned")
        return _record(call, "poolkit stricter")
    if call.name == "stochastic_pool2d" and call.rng_seed == "none":
        _self_consistent(call, res)
        return _record(call, "returned (unseeded)")
    assert_same(res, ref, call)
    if out_given:
        outs = kwargs["out"]
        if isinstance(res, tuple) and call.pair_out:
            assert res[0] is outs[0] and res[1] is outs[1], "out= pair not returned"
        elif not isinstance(res, tuple):
            assert res is outs, "out= not returned as the result"
    return _record(call, "equal to reference" if call.ref == "call" else "equal to oracle")


PAIR_NAMES = ("kernel_size", "stride", "padding", "dilation", "output_size", "size")


def _is_int_array(v):
    return isinstance(v, np.ndarray) and v.dtype.kind in "iu"


def _is_array_pair(v):
    """A 1-D integer array of two entries, or a pair holding a 0-d integer array: poolkit
    reads both as a pair of ints (``operator.index``), the reference wants Python ints."""
    if _is_int_array(v):
        return v.shape == (2,)
    return isinstance(v, (tuple, list)) and len(v) == 2 and any(
        _is_int_array(e) and e.ndim == 0 for e in v) and all(
        canonical_int(e) or (_is_int_array(e) and e.ndim == 0) for e in v)


def _as_tuple_pair(v):
    return tuple(int(e) for e in v) if _is_array_pair(v) else v


def _has_array_pairs(call):
    return any(_is_array_pair(v) for k, v in call.kwargs.items() if k in PAIR_NAMES) or \
        any(_is_array_pair(v) for v in call.args[1:])


def _with_tuple_pairs(call):
    conv = _as_tuple_pair
    return dataclasses.replace(
        call, args=[call.args[0]] + [conv(v) for v in call.args[1:]],
        kwargs={k: (conv(v) if k in PAIR_NAMES else v) for k, v in call.kwargs.items()},
        ref="call")


def _self_consistent(call, res):
    """Checks that need no reference: sampled values are the input at the sampled index."""
    if call.name == "stochastic_pool2d" and isinstance(res, tuple) and res[1] is not None:
        x = np.asarray(call.args[0])
        vals, idx = res
        if idx.size == 0:
            return
        hw = x.shape[-2] * x.shape[-1]
        plane = x.reshape((-1, hw))
        assert idx.min() >= 0 and idx.max() < hw
        np.testing.assert_array_equal(
            vals.reshape(plane.shape[0], -1),
            np.take_along_axis(plane, idx.reshape(plane.shape[0], -1), axis=1) + 0.0)


def _record(call, outcome):
    STATS[(call.name, outcome)] += 1
    event(outcome)


# ------------------------------------------------------------------------------- tests

def test_every_public_name_is_fuzzed():
    """A public name added to poolkit.__all__ must get a fuzz target here."""
    missing = [n for n in poolkit.__all__
               if n not in FUNCTIONS and n not in LAYERS and n not in NOT_CALLABLE]
    assert not missing, f"public names without a fuzz target in tests/test_fuzz.py: {missing}"
    assert all(hasattr(reference, n) for n in FUNCTIONS
               if n not in ("show_config", "openmp_enabled")), "reference is missing a function"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
@FUZZ
@given(data=st.data())
def test_fuzz_function(name, data):
    if name not in poolkit.__all__:
        pytest.skip(f"{name} is not public yet")
    call = data.draw(FUNCTIONS[name](), label="call")
    run_call(data, call)


# ------------------------------------------------------------------------------ layers

@dataclasses.dataclass
class LayerSpec:
    make: object      # draw -> (ctor args, ctor kwargs)
    forward: object   # (ref-args builder) -> function name and kwargs for the reference
    backward: object


def _layer_window_kwargs(draw, dilation):
    kw = _window_kwargs(draw, dilation=dilation)
    return kw


def _layer_ctor(draw, cls_name):
    kw = {}
    if cls_name in ("MaxPool2d", "AvgPool2d", "StochasticPool2d", "MaxUnpool2d"):
        kw = _layer_window_kwargs(draw, dilation=cls_name == "MaxPool2d")
        if cls_name == "MaxUnpool2d":
            kw.pop("ceil_mode", None)
    if cls_name == "AvgPool2d":
        _avg_extra(draw, kw)
    if cls_name in ("MaxPool2d", "StochasticPool2d", "GlobalMaxPool2d", "AdaptiveMaxPool2d"):
        if draw(st.booleans()):
            kw["return_indices"] = draw(flag)
    if cls_name in ("GlobalAvgPool2d", "GlobalMaxPool2d") and draw(st.booleans()):
        kw["keepdims"] = draw(flag)
    if cls_name in ("AdaptiveAvgPool2d", "AdaptiveMaxPool2d"):
        kw["output_size"] = draw(output_size_st)
    if cls_name == "StochasticPool2d":
        kw["rng"] = draw(st.sampled_from([0, 1, 12345, None, "bad"]))
    if draw(st.integers(0, 3)) == 0:
        kw["n_threads"] = draw(n_threads_st)
    return kw


def _reference_forward(cls_name, kw, x, training, ref_rng):
    """The functional reference call a layer's forward must match: (name, args, kwargs)."""
    kw = {k: (_as_tuple_pair(v) if k in PAIR_NAMES else v)
          for k, v in kw.items() if k not in ("n_threads", "rng")}
    ri = kw.pop("return_indices", False)
    if cls_name == "MaxPool2d":
        return reference.max_pool2d(x, return_indices=True, **kw), ri
    if cls_name == "AvgPool2d":
        return reference.avg_pool2d(x, **kw), False
    if cls_name == "StochasticPool2d":
        if training:
            return reference.stochastic_pool2d(x, training=True, rng=ref_rng,
                                               return_indices=True, **kw), ri
        return reference.stochastic_pool2d(x, training=False, **kw), ri
    if cls_name == "GlobalAvgPool2d":
        return reference.global_avg_pool2d(x, **kw), False
    if cls_name == "GlobalMaxPool2d":
        return reference.global_max_pool2d(x, return_indices=True, **kw), ri
    if cls_name == "AdaptiveAvgPool2d":
        return reference.adaptive_avg_pool2d(x, **kw), False
    if cls_name == "AdaptiveMaxPool2d":
        return reference.adaptive_max_pool2d(x, return_indices=True, **kw), ri
    raise AssertionError(cls_name)


def _reference_backward(cls_name, kw, x, fwd, g, training):
    kw = {k: (_as_tuple_pair(v) if k in PAIR_NAMES else v)
          for k, v in kw.items() if k not in ("n_threads", "rng", "return_indices")}
    shape = np.shape(x)
    if cls_name in ("MaxPool2d", "GlobalMaxPool2d", "AdaptiveMaxPool2d") or (
            cls_name == "StochasticPool2d" and training):
        idx = fwd[1]
        f = {"MaxPool2d": reference.max_pool2d_backward,
             "StochasticPool2d": reference.max_pool2d_backward,
             "GlobalMaxPool2d": reference.global_max_pool2d_backward,
             "AdaptiveMaxPool2d": reference.adaptive_max_pool2d_backward}[cls_name]
        return f(g, idx, shape)
    if cls_name == "AvgPool2d":
        return reference.avg_pool2d_backward(g, shape, **kw)
    if cls_name == "StochasticPool2d":
        return reference.stochastic_pool2d_backward(g, x=x, **kw)
    if cls_name == "GlobalAvgPool2d":
        return reference.global_avg_pool2d_backward(g, shape)
    if cls_name == "AdaptiveAvgPool2d":
        return reference.adaptive_avg_pool2d_backward(g, shape)
    raise AssertionError(cls_name)


def _expect_allowed(exc, where, runtime_ok=False):
    if runtime_ok and isinstance(exc, RuntimeError) or too_large(exc):
        return
    assert isinstance(exc, ALLOWED), f"{where} raised {type(exc).__name__}: {exc}"
    cls_name = where.split(".")[0].split("(")[0]
    check_message(exc, cls_name if cls_name in LAYERS else "max_pool2d",
                  extra=("output_size", "keepdims", "return_indices", "mode", "training"))


@pytest.mark.parametrize("cls_name", LAYERS)
@FUZZ
@given(data=st.data())
def test_fuzz_layer(cls_name, data):
    if cls_name not in poolkit.__all__:
        pytest.skip(f"{cls_name} is not public yet")
    STATS[(cls_name, "examples")] += 1
    cls = getattr(poolkit, cls_name)
    ctor = data.draw(layer_ctor(cls_name), label="ctor")
    note(f"{cls_name}(**{ctor!r})")
    layer, exc, _ = _outcome(lambda: cls(**ctor))
    if exc is not None:
        _expect_allowed(exc, f"{cls_name}(...)")
        return _record_layer(cls_name, "constructor rejected")
    repr(layer)
    if cls_name == "Layer":
        # The abstract base: forward/backward have nothing to run.
        x = np.zeros((1, 1, 2, 2))
        for f in (lambda: layer.forward(x), lambda: layer.backward(x)):
            _, exc, _ = _outcome(f)
            assert isinstance(exc, (NotImplementedError, RuntimeError)), exc
        return _record_layer(cls_name, "abstract base")
    # backward before forward: a clear RuntimeError
    _, exc, _ = _outcome(lambda: layer.backward(np.zeros((1, 1, 1, 1))))
    assert isinstance(exc, RuntimeError), f"backward before forward: {exc!r}"
    if data.draw(st.booleans()):
        layer.eval()
    training = layer.training
    ref_rng = np.random.default_rng(ctor["rng"]) if cls_name == "StochasticPool2d" and \
        ctor.get("rng") is not None else None
    n_fwd = data.draw(st.integers(1, 2))
    for _ in range(n_fwd):
        if cls_name == "MaxUnpool2d":
            _layer_unpool_round(data, layer, ctor)
            continue
        kind = "nonneg" if cls_name == "StochasticPool2d" else None
        x = data.draw(arrays(kind=kind, huge_ok=False) if data.draw(st.integers(0, 3)) == 0
                      else _small_st(kind))
        xs = _snapshot([x])
        big = _largest_param(ctor) > 64
        if cls_name in ("MaxPool2d", "AvgPool2d", "StochasticPool2d") and \
                known_slow(ctor, np.shape(x.value)[-2:]):
            _record_layer(cls_name, "KNOWN ISSUE: slow tap loop, not called")
            continue
        ref, ref_exc = None, None
        if not big:
            ref, ref_exc, _ = _outcome(lambda: _reference_forward(
                cls_name, ctor, np.asarray(x.value).copy(), training,
                ref_rng if ref_rng is not None else 0))
        res, exc, dt = _outcome(lambda: layer.forward(x.value))
        assert dt < SLOW_CALL_S
        _check_unchanged(xs)
        if exc is not None:
            _expect_allowed(exc, f"{cls_name}.forward")
            if not big and ref_exc is None and not too_large(exc):
                assert any(n in str(exc) for n in _noncanonical_layer(ctor)) or \
                    LIMIT in str(exc) or "n_threads" in str(exc), (
                        f"{cls_name}.forward raised {exc!r} where the reference returned")
            _record_layer(cls_name, "forward rejected")
            continue
        if big:
            _record_layer(cls_name, "forward unchecked (large window)")
            continue
        assert ref_exc is None, f"{cls_name}.forward returned; the reference raised {ref_exc!r}"
        (rv, ri) = ref
        ref_vals = rv[0] if isinstance(rv, tuple) else rv
        call = Call(cls_name, [], {}, exact=cls_name in ("MaxPool2d", "GlobalMaxPool2d",
                                                         "AdaptiveMaxPool2d"))
        if cls_name == "StochasticPool2d" and not training:
            expect = (ref_vals, None) if ri else ref_vals
        elif ri:
            expect = rv
        else:
            expect = ref_vals
        if cls_name == "StochasticPool2d" and ctor.get("rng") is None:
            pass  # unseeded: nothing to compare values with
        else:
            assert_same(res, expect, call, f"{cls_name}.forward")
        # backward with a gradient of the right shape, or not
        gshape = data.draw(mutated_shape(ref_vals.shape))
        g = data.draw(arrays(shape=gshape, dtype=ref_vals.dtype, layouts=True,
                             huge_ok=False, bad_dtype_ok=data.draw(st.integers(0, 5)) == 0))
        gs = _snapshot([g])
        gi, exc, _ = _outcome(lambda: layer.backward(g.value))
        _check_unchanged(gs)
        if gshape != ref_vals.shape:
            assert exc is not None, f"{cls_name}.backward accepted a gradient of shape {gshape}"
        if exc is not None:
            _expect_allowed(exc, f"{cls_name}.backward")
            _record_layer(cls_name, "backward rejected")
            continue
        if cls_name == "StochasticPool2d" and training and ctor.get("rng") is None:
            continue
        expect_g, gexc, _ = _outcome(lambda: _reference_backward(
            cls_name, ctor, np.asarray(x.value).copy(), rv, np.asarray(g.value).copy(),
            training))
        assert gexc is None, f"{cls_name}.backward returned; the reference raised {gexc!r}"
        assert_same(gi, expect_g, Call(cls_name, [], {}), f"{cls_name}.backward")
        _record_layer(cls_name, "forward+backward equal to reference")


def _small_st(kind):
    @st.composite
    def s(draw):
        shape = draw(_shape_st(ndims=(4, 4, 3), max_nc=2, max_hw=6, zero_ok=True))
        return draw(arrays(shape=shape, kind=kind, huge_ok=False,
                           bad_dtype_ok=draw(st.integers(0, 9)) == 0))
    return s()


def _noncanonical_layer(ctor):
    names = set()
    for k, v in ctor.items():
        if k in ("kernel_size", "stride", "padding", "dilation", "divisor_override") and \
                v is not None and not canonical(v):
            names.add(k)
        if k in ("ceil_mode", "count_include_pad", "keepdims") and not is_bool(v):
            names.add(k)
        if k == "output_size" and not _canonical_output_size(v):
            names.add(k)
    return names


@st.composite
def layer_ctor(draw, cls_name):
    return _layer_ctor(draw, cls_name)


def _layer_unpool_round(data, layer, ctor):
    src = data.draw(_small_st(None))
    xs = np.asarray(src.value)
    if xs.dtype.type not in (np.float32, np.float64) or xs.ndim not in (3, 4) or \
            0 in xs.shape[-2:]:
        res, exc, _ = _outcome(lambda: layer.forward(xs, np.zeros(np.shape(xs), np.int64)))
        assert exc is not None
        _expect_allowed(exc, "MaxUnpool2d.forward")
        return
    fwd = _try(reference.max_pool2d, np.asarray(xs), layer.kernel_size, layer.stride,
               layer.padding, return_indices=True)
    if fwd is None:
        _record_layer("MaxUnpool2d", "no pooling to undo")
        return
    vals, idx = fwd
    ind = data.draw(indices_arg(idx, xs.shape[-2] * xs.shape[-1]))
    ref, ref_exc, _ = _outcome(lambda: reference.max_unpool2d(
        vals.copy(), np.array(ind, copy=True) if isinstance(ind, np.ndarray) else ind,
        layer.kernel_size, layer.stride, layer.padding, xs.shape[-2:]))
    res, exc, _ = _outcome(lambda: layer.forward(vals, ind, xs.shape[-2:]))
    if exc is not None:
        _expect_allowed(exc, "MaxUnpool2d.forward")
        assert ref_exc is not None or _noncanonical_layer(ctor), (
            f"MaxUnpool2d.forward raised {exc!r}; the reference returned")
        return _record_layer("MaxUnpool2d", "forward rejected")
    assert ref_exc is None, f"MaxUnpool2d.forward returned; the reference raised {ref_exc!r}"
    assert_same(res, ref, Call("MaxUnpool2d", [], {}, exact=True), "MaxUnpool2d.forward")
    g = np.random.default_rng(0).standard_normal(data.draw(mutated_shape(ref.shape)))
    gi, exc, _ = _outcome(lambda: layer.backward(g.astype(ref.dtype)))
    if g.shape != ref.shape:
        assert exc is not None and isinstance(exc, ValueError), exc
        return _record_layer("MaxUnpool2d", "backward rejected")
    assert exc is None, exc
    assert_same(gi, reference.max_unpool2d_backward(g.astype(ref.dtype), ind),
                Call("MaxUnpool2d", [], {}, exact=True), "MaxUnpool2d.backward")
    _record_layer("MaxUnpool2d", "forward+backward equal to reference")


def _record_layer(cls_name, outcome):
    STATS[(cls_name, outcome)] += 1
    event(outcome)


# ------------------------------------------------- what the fuzz found, pinned as examples

def test_regression_cached_window_parameters_keep_their_types():
    # pool_params memoises on the arguments; (2, 2) == (2.0, 2) == (True, 2) with equal
    # hashes, so a tuple holding a float or a bool was accepted once the int tuple was cached.
    x = np.zeros((1, 1, 4, 4))
    poolkit.max_pool2d(x, (2, 2))
    poolkit.avg_pool2d(x, (1, 1), padding=(0, 0))
    with pytest.raises(TypeError, match="kernel_size"):
        poolkit.max_pool2d(x, (2.0, 2))
    with pytest.raises(TypeError, match="kernel_size"):
        poolkit.max_pool2d(x, (True, 2))
    with pytest.raises(TypeError, match="padding"):
        poolkit.avg_pool2d(x, (1, 1), padding=(False, False))


def test_regression_empty_gradient_planes_give_zero_gradients():
    # a grad_output with 0 output rows or columns hit NumPy's "cannot reshape array of size 0"
    for g_shape, in_shape in (((1, 0, 1), (1, 1, 1)), ((2, 3, 0, 4), (2, 3, 5, 5))):
        g = np.zeros(g_shape)
        idx = np.zeros(g_shape, dtype=np.int64)
        expect = reference.max_pool2d_backward(g, idx, in_shape)
        np.testing.assert_array_equal(poolkit.max_pool2d_backward(g, idx, in_shape), expect)
        np.testing.assert_array_equal(poolkit.stochastic_pool2d_backward(g, in_shape, idx),
                                      expect)


def test_regression_array_flags_are_named():
    # bool(np.array([True, False])) raised NumPy's "truth value ... is ambiguous"
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises(TypeError, match="return_indices"):
        poolkit.max_pool2d(x, 2, return_indices=np.array([True, False]))
    with pytest.raises(TypeError, match="return_indices"):
        poolkit.MaxPool2d(2, return_indices=np.array([True, False]))
    with pytest.raises(TypeError, match="mode"):
        poolkit.AvgPool2d(2).train(np.array([True, False]))
    for f in (poolkit.global_max_pool2d, lambda x, return_indices: poolkit.adaptive_max_pool2d(
            x, 2, return_indices=return_indices)):
        with pytest.raises(TypeError, match="return_indices"):
            f(x, return_indices=np.array([True, False]))
    for cls, args in ((poolkit.GlobalMaxPool2d, ()), (poolkit.AdaptiveMaxPool2d, (2,))):
        with pytest.raises(TypeError, match="return_indices"):
            cls(*args, return_indices=np.array([True, False]))


@pytest.mark.parametrize("cls", ["MaxPool2d", "AvgPool2d", "GlobalAvgPool2d",
                                 "AdaptiveMaxPool2d", "MaxUnpool2d", "StochasticPool2d"])
def test_regression_layers_check_n_threads_when_built(cls):
    args = {"GlobalAvgPool2d": (), "AdaptiveMaxPool2d": (2,)}.get(cls, (2,))
    with pytest.raises(ValueError, match="n_threads"):
        getattr(poolkit, cls)(*args, n_threads=0)
    with pytest.raises(TypeError, match="n_threads"):
        getattr(poolkit, cls)(*args, n_threads=1.5)
