"""The one table of benchmark cases, shared by the runner (``run.py``) and the asv suites.

A *case* is one operation on one input: ``Case(op, shape, window, dtype, threads)``. For each
case :func:`prepare` builds zero-argument callables, one per *implementation*:

``poolkit``
    the public function as a user calls it (it allocates its outputs);
``poolkit_out``
    the same call writing into preallocated ``out=`` arrays (used for the roofline figure);
``torch``
    PyTorch CPU: ``torch.nn.functional`` for forward passes, the aten backward ops
    (``torch.ops.aten.max_pool2d_with_indices_backward``, ``torch.ops.aten.avg_pool2d_backward``)
    called directly so that only the backward is timed;
``numpy``
    a vectorised NumPy baseline (a reshape for non-overlapping windows, ``sliding_window_view``
    or one slice per window offset otherwise);
``reference``
    the pure-Python ``poolkit.reference`` (only on the small :data:`REF_SHAPE`).

An implementation that does not exist for a case (no PyTorch, an op not yet in poolkit, no
NumPy formulation) is left out with a one-line reason in ``Prepared.notes``; nothing here
raises for a missing optional dependency.

The bytes that must move (every input read once, every output written once, int64 indices
counted at 8 bytes) are in ``Prepared.bytes_moved``; the runner divides them by the bandwidth of
a large ``np.copyto`` (reads + writes) to get the memory roofline.
"""

from __future__ import annotations

import contextlib
import gc
import os
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# ----------------------------------------------------------------------------- the table

#: Benchmark shapes (N, C, H, W), by label.
SHAPES = {
    "32x64x112x112": (32, 64, 112, 112),  # early ResNet/VGG stage, 103 MB in float32
    "64x256x28x28": (64, 256, 28, 28),  # deep stage: many small planes
    "1x64x56x56": (1, 64, 56, 56),  # one image: per-call overhead and few planes
}
#: The small shape on which the pure-Python reference is timed (its own rows).
REF_SHAPE = (1, 4, 16, 16)
#: The shape of ``--tiny`` (smoke test): everything runs, in well under a second per row.
TINY_SHAPE = (2, 8, 16, 16)


@dataclass(frozen=True)
class Window:
    kernel: int
    stride: int
    padding: int

    def args(self):
        return self.kernel, self.stride, self.padding


WINDOWS = {
    "2x2s2": Window(2, 2, 0),
    "3x3s2p1": Window(3, 2, 1),
}

#: Output size of the adaptive-average rows (torchvision's VGG/AlexNet head).
ADAPTIVE_OUT = (7, 7)
#: Seed handed to stochastic pooling (``rng=``) on every call.
STOCHASTIC_SEED = 1234


@dataclass(frozen=True)
class Op:
    name: str
    title: str
    needs: tuple  # poolkit attributes the op needs (skipped with a note when one is missing)
    windowed: bool  # uses WINDOWS; otherwise window is None


OPS = {
    op.name: op
    for op in (
        Op("max_fwd", "max forward + indices", ("max_pool2d",), True),
        Op("max_bwd", "max backward", ("max_pool2d", "max_pool2d_backward"), True),
        Op("avg_fwd", "mean forward", ("avg_pool2d",), True),
        Op("avg_bwd", "mean backward", ("avg_pool2d_backward",), True),
        Op("stochastic_fwd", "stochastic train fwd + idx", ("stochastic_pool2d",), True),
        Op("global_avg", "global average", ("global_avg_pool2d",), False),
        Op("global_max", "global max + indices", ("global_max_pool2d",), False),
        Op("adaptive_avg", "adaptive average ->7x7", ("adaptive_avg_pool2d",), False),
    )
}

IMPLS = ("poolkit", "poolkit_out", "torch", "numpy", "reference")
DTYPES = ("float32", "float64")


def all_threads() -> int:
    """The 'all threads' count: the CPUs this process may use."""
    if hasattr(os, "process_cpu_count"):
        n = os.process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        n = len(os.sched_getaffinity(0))
    else:
        n = os.cpu_count()
    return max(1, n or 1)


def thread_counts() -> tuple:
    n = all_threads()
    return (1,) if n == 1 else (1, n)


def shape_label(shape) -> str:
    return "x".join(str(v) for v in shape)


@dataclass(frozen=True, order=True)
class Case:
    op: str
    shape: tuple
    window: str | None
    dtype: str
    threads: int

    @property
    def is_ref(self) -> bool:
        """Reference rows run on REF_SHAPE (also the rows where the reference is timed)."""
        return tuple(self.shape) == REF_SHAPE

    def label(self) -> str:
        win = self.window or "-"
        return f"{self.op} {win} {shape_label(self.shape)} {self.dtype} T{self.threads}"


def _windows_for(op):
    return tuple(WINDOWS) if OPS[op].windowed else (None,)


def _grid(ops, shapes, dtypes, threads):
    return [
        Case(op, tuple(shape), win, dt, t)
        for op in ops
        for win in _windows_for(op)
        for shape in shapes
        for dt in dtypes
        for t in threads
    ]


#: Ops whose 1-thread rows the quick set keeps (issue 6's "2 threads >= 1.7x faster than 1").
SCALING_OPS = ("max_fwd", "max_bwd", "avg_fwd", "avg_bwd")
LARGE_SHAPES = ("32x64x112x112", "64x256x28x28")


def quick_cases() -> list:
    """Every op and every issue-6 target on float32 with all threads, plus the 1-thread rows the
    scaling target needs (2x2 windows, large shapes) and the reference rows."""
    nall = all_threads()
    cases = _grid(OPS, SHAPES.values(), ("float32",), (nall,))
    if nall > 1:
        cases += [
            Case(op, SHAPES[s], "2x2s2", "float32", 1) for op in SCALING_OPS for s in LARGE_SHAPES
        ]
    cases += _grid(OPS, [REF_SHAPE], ("float32",), (1,))
    return cases


def full_cases() -> list:
    """Every op, window, shape, dtype and thread count, plus reference rows in both dtypes."""
    return _grid(OPS, SHAPES.values(), DTYPES, thread_counts()) + _grid(
        OPS, [REF_SHAPE], DTYPES, (1,)
    )


def tiny_cases() -> list:
    """The smoke-test configuration: every op on TINY_SHAPE and REF_SHAPE, float32."""
    return _grid(OPS, [TINY_SHAPE], ("float32",), (all_threads(),)) + _grid(
        OPS, [REF_SHAPE], ("float32",), (1,)
    )


# ----------------------------------------------------------------------------- optional deps


_TORCH = []


def torch_module():
    """``torch`` or None (never raises); imported once."""
    if not _TORCH:
        try:
            import torch  # noqa: PLC0415

            _TORCH.append(torch)
        except Exception as exc:  # ImportError, or a broken install  # noqa: BLE001
            _TORCH.append(None)
            _TORCH.append(f"{type(exc).__name__}: {exc}")
    return _TORCH[0]


def torch_missing_reason() -> str:
    torch_module()
    return _TORCH[1] if len(_TORCH) > 1 else ""


def set_torch_threads(n: int) -> None:
    torch = torch_module()
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def threadpool_summary() -> str:
    """One line on the thread pools loaded (``threadpoolctl.threadpool_info()``), or a note
    that threadpoolctl is not installed."""
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415
    except ImportError:
        return "threadpoolctl not installed"
    return "; ".join(f"{d.get('internal_api')} {d.get('num_threads')} threads "
                     f"({os.path.basename(d.get('filepath', ''))})" for d in threadpool_info())


# ----------------------------------------------------------------------------- inputs


class DataCache:
    """Random inputs in [0, 1) (valid for every op, stochastic pooling included), by shape and
    dtype; keep one alive while running cases of the same shape."""

    def __init__(self, seed: int = 0):
        self.seed = seed
        self._data = {}

    def get(self, shape, dtype, salt: int = 0) -> np.ndarray:
        key = (tuple(shape), np.dtype(dtype).name, salt)
        if key not in self._data:
            rng = np.random.default_rng([self.seed, salt])
            self._data[key] = rng.random(tuple(shape), dtype=np.dtype(dtype))
        return self._data[key]

    def clear(self):
        self._data.clear()


def out_size(L, k, s, p):
    return (L + 2 * p - k) // s + 1


# ----------------------------------------------------------------------------- NumPy baselines


def _windows(x, win: Window, fill):
    """``(N, C, OH, OW, k*k)`` array of every window (a copy), row-major window order."""
    k, s, p = win.args()
    N, C, H, W = x.shape
    OH, OW = out_size(H, k, s, p), out_size(W, k, s, p)
    if p == 0 and k == s and H % k == 0 and W % k == 0:
        v = x.reshape(N, C, OH, k, OW, k).transpose(0, 1, 2, 4, 3, 5)
    else:
        if p:
            x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=fill)
        v = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::s, ::s][:, :, :OH, :OW]
    return v.reshape(N, C, OH, OW, k * k)


def _flat_index(offset, win: Window, W):
    """Window offsets (row-major in the window) to flat ``h * W + w`` in the unpadded plane."""
    k, s, p = win.args()
    OH, OW = offset.shape[-2:]
    dh, dw = np.divmod(offset, k)
    h = (np.arange(OH) * s - p)[:, None] + dh
    w = (np.arange(OW) * s - p)[None, :] + dw
    return h * W + w


def np_max_fwd(x, win: Window):
    wins = _windows(x, win, -np.inf)
    arg = wins.argmax(axis=-1)
    values = np.take_along_axis(wins, arg[..., None], axis=-1)[..., 0]
    return values, _flat_index(arg, win, x.shape[-1])


def np_max_bwd(g, idx, input_shape):
    N, C, H, W = input_shape
    base = (np.arange(N * C, dtype=np.int64) * (H * W)).reshape(N, C, 1, 1)
    gi = np.bincount((base + idx).ravel(), weights=g.ravel(), minlength=N * C * H * W)
    return gi.reshape(input_shape).astype(g.dtype, copy=False)


def np_avg_fwd(x, win: Window):
    # count_include_pad=True: every window of these configurations holds k*k padded positions.
    k = win.kernel
    return _windows(x, win, 0).sum(axis=-1) / x.dtype.type(k * k)


def np_avg_bwd(g, input_shape, win: Window):
    k, s, p = win.args()
    N, C, H, W = input_shape
    OH, OW = g.shape[-2:]
    gd = g / g.dtype.type(k * k)
    if p == 0 and k == s and H == OH * k and W == OW * k:
        return np.broadcast_to(gd[:, :, :, None, :, None], (N, C, OH, k, OW, k)).reshape(
            input_shape
        )
    # Overlapping windows: one strided slice-add per window offset.
    gp = np.zeros((N, C, H + 2 * p, W + 2 * p), dtype=g.dtype)
    for i in range(k):
        for j in range(k):
            gp[:, :, i : i + s * OH : s, j : j + s * OW : s] += gd
    return gp[:, :, p : p + H, p : p + W]


def np_stochastic_fwd(x, win: Window, seed):
    wins = _windows(x, win, 0)
    total = wins.sum(axis=-1)
    u = np.random.default_rng(seed).random(total.shape, dtype=x.dtype)
    running = np.cumsum(wins, axis=-1)
    arg = (running > (u * total)[..., None]).argmax(axis=-1)
    values = np.take_along_axis(wins, arg[..., None], axis=-1)[..., 0]
    return values, _flat_index(arg, win, x.shape[-1])


def np_global_max(x):
    N, C, H, W = x.shape
    planes = x.reshape(N, C, H * W)
    arg = planes.argmax(axis=-1)
    return np.take_along_axis(planes, arg[..., None], axis=-1)[..., 0], arg


def np_adaptive_avg(x, size):
    N, C, H, W = x.shape
    oh, ow = size
    if H % oh or W % ow:
        return None  # uneven windows: no simple vectorised form
    return x.reshape(N, C, oh, H // oh, ow, W // ow).mean(axis=(3, 5))


# ----------------------------------------------------------------------------- preparing a case


@dataclass
class Prepared:
    case: Case
    calls: dict = field(default_factory=dict)  # impl -> zero-argument callable
    notes: dict = field(default_factory=dict)  # impl -> why it is missing
    bytes_moved: int = 0
    compare: bool = True  # outputs of the implementations should agree (not stochastic)
    skipped: str = ""  # why the whole case cannot run (an op poolkit does not have yet)


def _nbytes(*arrays_or_counts):
    total = 0
    for a in arrays_or_counts:
        total += a.nbytes if isinstance(a, np.ndarray) else int(a)
    return total


def prepare(case: Case, data: DataCache | None = None, impls=IMPLS, poolkit=None) -> Prepared:
    """Build the callables of ``case`` for the implementations in ``impls``."""
    if poolkit is None:
        import poolkit  # noqa: PLC0415
    pk = poolkit
    data = data or DataCache()
    prep = Prepared(case)
    op = OPS[case.op]
    missing = [name for name in op.needs if not hasattr(pk, name)]
    if missing:
        prep.skipped = f"poolkit has no {', '.join(missing)} yet"
        for impl in impls:
            prep.notes[impl] = prep.skipped
        return prep
    t = case.threads
    dtype = np.dtype(case.dtype)
    x = data.get(case.shape, dtype)
    N, C, H, W = x.shape
    win = WINDOWS[case.window] if case.window else None
    torch = torch_module() if ("torch" in impls) else None
    if "torch" in impls and torch is None:
        prep.notes["torch"] = f"PyTorch not importable ({torch_missing_reason()})"
    want = {impl for impl in impls if impl not in prep.notes}
    if "reference" in want and not case.is_ref:
        want.discard("reference")
        prep.notes["reference"] = f"reference timed on {shape_label(REF_SHAPE)} only"
    ref = pk.reference
    calls = prep.calls

    def tt(a):
        return torch.from_numpy(a)

    if win is not None:
        k, s, p = win.args()
        OH, OW = out_size(H, k, s, p), out_size(W, k, s, p)
    out_shape = (N, C, OH, OW) if win is not None else None

    if case.op == "max_fwd":
        prep.bytes_moved = _nbytes(x, N * C * OH * OW * (dtype.itemsize + 8))
        if "poolkit" in want:
            calls["poolkit"] = lambda: pk.max_pool2d(x, k, s, p, return_indices=True, n_threads=t)
        if "poolkit_out" in want:
            ov, oi = np.empty(out_shape, dtype), np.empty(out_shape, np.int64)
            calls["poolkit_out"] = lambda: pk.max_pool2d(
                x, k, s, p, return_indices=True, out=(ov, oi), n_threads=t
            )
        if "torch" in want:
            xt = tt(x)
            calls["torch"] = lambda: torch.nn.functional.max_pool2d(
                xt, k, s, p, return_indices=True
            )
        if "numpy" in want:
            calls["numpy"] = lambda: np_max_fwd(x, win)
        if "reference" in want:
            calls["reference"] = lambda: ref.max_pool2d(x, k, s, p, return_indices=True)

    elif case.op == "max_bwd":
        g = data.get(out_shape, dtype, salt=1)
        idx = None
        if want & {"poolkit", "poolkit_out", "numpy", "reference"}:
            idx = pk.max_pool2d(x, k, s, p, return_indices=True, n_threads=t)[1]
        prep.bytes_moved = _nbytes(g, g.size * 8, x)
        if "poolkit" in want:
            calls["poolkit"] = lambda: pk.max_pool2d_backward(g, idx, x.shape, n_threads=t)
        if "poolkit_out" in want:
            gi = np.empty(x.shape, dtype)
            calls["poolkit_out"] = lambda: pk.max_pool2d_backward(
                g, idx, x.shape, out=gi, n_threads=t
            )
        if "torch" in want:
            set_torch_threads(t)
            xt, gt = tt(x), tt(g)
            it = torch.nn.functional.max_pool2d(xt, k, s, p, return_indices=True)[1]
            bwd = torch.ops.aten.max_pool2d_with_indices_backward
            calls["torch"] = lambda: bwd(gt, xt, [k, k], [s, s], [p, p], [1, 1], False, it)
        if "numpy" in want:
            calls["numpy"] = lambda: np_max_bwd(g, idx, x.shape)
        if "reference" in want:
            calls["reference"] = lambda: ref.max_pool2d_backward(g, idx, x.shape)

    elif case.op == "avg_fwd":
        prep.bytes_moved = _nbytes(x, N * C * OH * OW * dtype.itemsize)
        if "poolkit" in want:
            calls["poolkit"] = lambda: pk.avg_pool2d(x, k, s, p, n_threads=t)
        if "poolkit_out" in want:
            o = np.empty(out_shape, dtype)
            calls["poolkit_out"] = lambda: pk.avg_pool2d(x, k, s, p, out=o, n_threads=t)
        if "torch" in want:
            xt = tt(x)
            calls["torch"] = lambda: torch.nn.functional.avg_pool2d(xt, k, s, p)
        if "numpy" in want:
            calls["numpy"] = lambda: np_avg_fwd(x, win)
        if "reference" in want:
            calls["reference"] = lambda: ref.avg_pool2d(x, k, s, p)

    elif case.op == "avg_bwd":
        g = data.get(out_shape, dtype, salt=1)
        prep.bytes_moved = _nbytes(g, x)
        if "poolkit" in want:
            calls["poolkit"] = lambda: pk.avg_pool2d_backward(g, x.shape, k, s, p, n_threads=t)
        if "poolkit_out" in want:
            gi = np.empty(x.shape, dtype)
            calls["poolkit_out"] = lambda: pk.avg_pool2d_backward(
                g, x.shape, k, s, p, out=gi, n_threads=t
            )
        if "torch" in want:
            xt, gt = tt(x), tt(g)
            bwd = torch.ops.aten.avg_pool2d_backward
            calls["torch"] = lambda: bwd(gt, xt, [k, k], [s, s], [p, p], False, True, None)
        if "numpy" in want:
            calls["numpy"] = lambda: np_avg_bwd(g, x.shape, win)
        if "reference" in want:
            calls["reference"] = lambda: ref.avg_pool2d_backward(g, x.shape, k, s, p)

    elif case.op == "stochastic_fwd":
        prep.compare = False  # different random streams
        prep.bytes_moved = _nbytes(x, N * C * OH * OW * (dtype.itemsize + 8))
        seed = STOCHASTIC_SEED
        if "poolkit" in want:
            calls["poolkit"] = lambda: pk.stochastic_pool2d(
                x, k, s, p, training=True, rng=seed, return_indices=True, n_threads=t
            )
        if "poolkit_out" in want:
            ov, oi = np.empty(out_shape, dtype), np.empty(out_shape, np.int64)
            calls["poolkit_out"] = lambda: pk.stochastic_pool2d(
                x, k, s, p, training=True, rng=seed, return_indices=True, out=(ov, oi),
                n_threads=t,
            )
        if "torch" in want:
            prep.notes["torch"] = "PyTorch has no stochastic pooling"
        if "numpy" in want:
            calls["numpy"] = lambda: np_stochastic_fwd(x, win, seed)
        if "reference" in want:
            if hasattr(ref, "stochastic_pool2d"):
                calls["reference"] = lambda: ref.stochastic_pool2d(
                    x, k, s, p, training=True, rng=seed, return_indices=True
                )
            else:
                prep.notes["reference"] = "poolkit.reference has no stochastic_pool2d yet"

    elif case.op == "global_avg":
        prep.bytes_moved = _nbytes(x, N * C * dtype.itemsize)
        if "poolkit" in want:
            calls["poolkit"] = lambda: pk.global_avg_pool2d(x, n_threads=t)
        if "poolkit_out" in want:
            o = np.empty((N, C), dtype)
            calls["poolkit_out"] = lambda: pk.global_avg_pool2d(x, out=o, n_threads=t)
        if "torch" in want:
            xt = tt(x)
            calls["torch"] = lambda: torch.nn.functional.adaptive_avg_pool2d(xt, 1)
        if "numpy" in want:
            calls["numpy"] = lambda: x.mean(axis=(2, 3))
        if "reference" in want:
            if hasattr(ref, "global_avg_pool2d"):
                calls["reference"] = lambda: ref.global_avg_pool2d(x)
            else:
                prep.notes["reference"] = "poolkit.reference has no global_avg_pool2d yet"

    elif case.op == "global_max":
        prep.bytes_moved = _nbytes(x, N * C * (dtype.itemsize + 8))
        if "poolkit" in want:
            calls["poolkit"] = lambda: pk.global_max_pool2d(x, return_indices=True, n_threads=t)
        if "poolkit_out" in want:
            ov, oi = np.empty((N, C), dtype), np.empty((N, C), np.int64)
            calls["poolkit_out"] = lambda: pk.global_max_pool2d(
                x, return_indices=True, out=(ov, oi), n_threads=t
            )
        if "torch" in want:
            xt = tt(x)
            calls["torch"] = lambda: torch.nn.functional.adaptive_max_pool2d(
                xt, 1, return_indices=True
            )
        if "numpy" in want:
            calls["numpy"] = lambda: np_global_max(x)
        if "reference" in want:
            if hasattr(ref, "global_max_pool2d"):
                calls["reference"] = lambda: ref.global_max_pool2d(x, return_indices=True)
            else:
                prep.notes["reference"] = "poolkit.reference has no global_max_pool2d yet"

    elif case.op == "adaptive_avg":
        size = ADAPTIVE_OUT
        prep.bytes_moved = _nbytes(x, N * C * size[0] * size[1] * dtype.itemsize)
        if "poolkit" in want:
            calls["poolkit"] = lambda: pk.adaptive_avg_pool2d(x, size, n_threads=t)
        if "poolkit_out" in want:
            o = np.empty((N, C) + size, dtype)
            calls["poolkit_out"] = lambda: pk.adaptive_avg_pool2d(x, size, out=o, n_threads=t)
        if "torch" in want:
            xt = tt(x)
            calls["torch"] = lambda: torch.nn.functional.adaptive_avg_pool2d(xt, size)
        if "numpy" in want:
            if H % size[0] or W % size[1]:
                prep.notes["numpy"] = "uneven adaptive windows: no reshape baseline"
            else:
                calls["numpy"] = lambda: np_adaptive_avg(x, size)
        if "reference" in want:
            if hasattr(ref, "adaptive_avg_pool2d"):
                calls["reference"] = lambda: ref.adaptive_avg_pool2d(x, size)
            else:
                prep.notes["reference"] = "poolkit.reference has no adaptive_avg_pool2d yet"
    else:  # pragma: no cover - the table and this function disagree
        raise KeyError(case.op)

    for impl in impls:
        if impl not in calls and impl not in prep.notes:
            prep.notes[impl] = "not applicable"
    return prep


# ----------------------------------------------------------------------------- measuring


def as_arrays(result) -> tuple:
    """A call's result as a tuple of NumPy arrays (torch tensors converted)."""
    if not isinstance(result, (tuple, list)):
        result = (result,)
    out = []
    for r in result:
        if hasattr(r, "detach"):
            r = r.detach().numpy()
        out.append(np.asarray(r))
    return tuple(out)


def agree(a, b, dtype) -> bool:
    """Same values (float tolerance by dtype; indices exactly), shapes up to size-1 axes."""
    a, b = as_arrays(a), as_arrays(b)
    if len(a) != len(b):
        return False
    rtol, atol = (1e-3, 1e-5) if np.dtype(dtype) == np.float32 else (1e-9, 1e-12)
    for u, v in zip(a, b):
        if u.size != v.size:
            return False
        u, v = u.reshape(-1), v.reshape(-1)
        if u.dtype.kind in "iu" or v.dtype.kind in "iu":
            if not np.array_equal(u, v):
                return False
        elif not np.allclose(u, v, rtol=rtol, atol=atol, equal_nan=True):
            return False
    return True


@dataclass
class Timing:
    times: list  # seconds, after the warm-up
    warmup: float
    result: object = None  # the warm-up call's result

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def best(self) -> float:
        return min(self.times)


@contextlib.contextmanager
def gc_paused():
    """The garbage collector off for the block (and back on after it if it was on)."""
    gc_was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc_was:
            gc.enable()


def measure(fn, repeats: int, max_time: float | None = None, min_repeats: int = 1,
            single_shot_over: float | None = None, keep_result=False,
            min_time: float = 0.0, max_repeats: int = 400) -> Timing:
    """Warm-up call, then ``repeats`` timed calls; the garbage collector is off while timing.

    ``max_time``: fewer calls (but at least ``min_repeats``) when ``repeats`` of them would take
    longer than that many seconds. ``single_shot_over``: a call slower than that many seconds
    is timed once, the warm-up being the sample (for slow baselines in the quick set, where
    one call of a second or more says what there is to say). ``min_time``: more calls (up to
    ``max_repeats``) when ``repeats`` of them would take under that many seconds: a median
    of 5 samples of a 20-microsecond call measures the machine's noise more than the call.
    """
    with gc_paused():
        t0 = time.perf_counter()
        result = fn()
        warm = time.perf_counter() - t0
        if not keep_result:
            result = None
        if single_shot_over is not None and warm >= single_shot_over:
            return Timing([warm], warm, result)
        n = max(1, int(repeats))
        if max_time is not None and warm > 0:
            n = max(min(n, max(1, int(min_repeats))), min(n, int(max_time / warm)))
        if min_time > 0 and warm > 0 and n * warm < min_time:
            n = max(n, min(int(max_repeats), int(min_time / warm)))
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return Timing(times, warm, result)


def measure_round_robin(calls: dict, repeats: int) -> dict:
    """Time several calls in turn: ``{name: [seconds per round]}``.

    One warm-up round, then ``repeats`` rounds of one call of each (the garbage collector off
    while timing). On a shared, noisy machine this keeps the calls' samples side by side, so
    that :func:`median_ratio` cancels slow drifts of the machine's load.
    """
    for f in calls.values():
        f()
    times = {name: [] for name in calls}
    with gc_paused():
        for _ in range(repeats):
            for name, f in calls.items():
                t0 = time.perf_counter()
                f()
                times[name].append(time.perf_counter() - t0)
    return times


def median_ratio(times: dict, name: str, base: str) -> float:
    """The median over rounds of ``times[name] / times[base]`` (see
    :func:`measure_round_robin`)."""
    return statistics.median(a / b for a, b in zip(times[name], times[base]))


def copy_bandwidth(megabytes: int = 256, repeats: int = 7) -> dict:
    """Bandwidth of ``np.copyto`` on a ``megabytes`` float64 array, reads plus writes, in B/s.

    Both arrays are written once before timing (first touch), so the figure is the steady-state
    memory bandwidth one NumPy thread sees: the denominator of the roofline. The size
    matters: on the reference machine glibc copies 192 MiB and more with non-temporal stores
    (24-33 GB/s) and 32-128 MiB at 15-17 GB/s; the default 256 MiB gives the faster, stricter
    figure. The arrays are freed afterwards (kept alive, they sent later allocations to
    fresh pages of the virtual machine, whose first touch is slow).
    """
    n = max(1, int(megabytes) * (1 << 20) // 8)
    src = np.ones(n)
    dst = np.ones(n)
    tm = measure(lambda: np.copyto(dst, src), repeats)
    moved = 2 * src.nbytes
    return {
        "bytes": int(src.nbytes),
        "median_s": tm.median,
        "best_s": tm.best,
        "bandwidth_Bps": moved / tm.median,
        "repeats": len(tm.times),
    }
