#!/usr/bin/env python3
"""Global average pooling against NumPy, PyTorch and the memory roofline (issue 4's target).

    python benchmarks/bench_global.py                       # (32, 64, 112, 112) float32, 1 and all threads
    python benchmarks/bench_global.py --threads 1,2 --repeats 31
    python benchmarks/bench_global.py --shape 64,2048,7,7 --dtype float64 --max

Target: ``poolkit.global_avg_pool2d`` runs at the memory roofline, no slower than
``x.mean(axis=(2, 3))`` and within 10% of PyTorch's ``adaptive_avg_pool2d(x, 1)`` on
(32, 64, 112, 112) float32. Rows, all on the same input in one process:

``poolkit``
    ``poolkit.global_avg_pool2d(x, n_threads=t)``, as a user calls it (allocates its output).
``numpy mean``
    ``x.mean(axis=(2, 3))`` (single-threaded; float32 accumulates in float32, pairwise).
``torch adaptive_avg_pool2d``
    ``torch.nn.functional.adaptive_avg_pool2d(xt, 1)`` with ``torch.set_num_threads(t)`` on a
    tensor sharing the input's memory (skipped when torch is not importable).
``torch mean``
    ``xt.mean(dim=(2, 3))``, for information.
``read roofline``
    not a call: the time to read the input once at the bandwidth of a large ``np.copyto``
    (which reads and writes), i.e. half the copy's time. Global pooling reads every byte once
    and writes almost nothing, so this is the floor.

With ``--max`` the global max pooling rows (``poolkit.global_max_pool2d(x, return_indices=True)``,
``x.max(axis=(2, 3))`` and torch's ``adaptive_max_pool2d(x, 1, return_indices=True)``) are timed
too, for information.

The machines this runs on are shared and noisy, so the rows are timed round-robin (one call of
each per round, after a warm-up round) and reported as medians; the ratio columns are medians
over rounds of (row time / reference row time in the same round), which cancels slow drifts of
the machine's load. poolkit and PyTorch each bring their own OpenMP runtime; their idle worker
threads spin for a while after a parallel region, so at n_threads > 1 the rows can disturb each
other on a machine with few cores (the comparison is still fair: it falls on both).

The accuracy of float32 results against a float64 mean is printed as well (poolkit accumulates
in double; NumPy and PyTorch in float32).

The module also holds an asv-style class (``GlobalPool``: ``params``, ``setup``, ``time_*``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys

import numpy as np

import poolkit

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import cases as C  # noqa: E402

SHAPE = (32, 64, 112, 112)


def make_input(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape, dtype=np.float32).astype(dtype, copy=False)


def rows(x, n_threads, with_max=False, torch=None):
    """The timed rows: name -> zero-argument callable."""
    calls = {
        "poolkit": lambda: poolkit.global_avg_pool2d(x, n_threads=n_threads),
        "numpy mean": lambda: x.mean(axis=(2, 3)),
    }
    if torch is not None:
        xt = torch.from_numpy(x)
        F = torch.nn.functional
        calls["torch adaptive_avg_pool2d"] = lambda: F.adaptive_avg_pool2d(xt, 1)
        calls["torch mean"] = lambda: xt.mean(dim=(2, 3))
    if with_max:
        calls["poolkit max (indices)"] = lambda: poolkit.global_max_pool2d(
            x, return_indices=True, n_threads=n_threads)
        calls["numpy max"] = lambda: x.max(axis=(2, 3))
        if torch is not None:
            calls["torch adaptive_max (indices)"] = lambda: torch.nn.functional.adaptive_max_pool2d(
                xt, 1, return_indices=True)
    return calls


def copy_time(nbytes: int, repeats: int) -> float:
    """Median time of an ``np.copyto`` of ``nbytes`` (reads + writes ``nbytes`` each)."""
    src = np.ones(nbytes // 8, np.float64)
    dst = np.empty_like(src)
    return C.measure(lambda: np.copyto(dst, src), repeats).median


def accuracy(x, torch=None):
    exact = x.astype(np.float64).mean(axis=(2, 3))

    def rel(a):
        return float((np.abs(np.asarray(a, np.float64) - exact) / np.maximum(np.abs(exact),
                                                                              1e-300)).max())

    out = {"poolkit": rel(poolkit.global_avg_pool2d(x)), "numpy mean": rel(x.mean(axis=(2, 3)))}
    if torch is not None:
        out["torch adaptive_avg_pool2d"] = rel(
            torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(x), 1)[..., 0, 0].numpy())
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default=",".join(map(str, SHAPE)), help="N,C,H,W")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--threads", default=None,
                    help="comma-separated thread counts (default: 1 and all CPUs)")
    ap.add_argument("--repeats", type=int, default=21, help="timed rounds (default 21)")
    ap.add_argument("--max", action="store_true", help="also time global max pooling")
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    args = ap.parse_args(argv)

    shape = tuple(int(v) for v in args.shape.split(","))
    dtype = np.dtype(args.dtype)
    nall = C.all_threads()
    threads = ([int(t) for t in args.threads.split(",")] if args.threads
               else sorted({1, nall}))
    torch = None if args.no_torch else C.torch_module()

    x = make_input(shape, dtype)
    print(f"poolkit {poolkit.__version__}, numpy {np.__version__}"
          f"{', torch ' + torch.__version__ if torch is not None else ' (no torch)'}, Python "
          f"{platform.python_version()}, {platform.machine()}, {nall} usable CPUs, "
          f"OpenMP {'on' if poolkit.openmp_enabled() else 'OFF'}")
    print(f"threadpools: {C.threadpool_summary()}")
    print(f"input {shape} {dtype} ({x.nbytes / 1e6:.0f} MB), {args.repeats} rounds, medians\n")

    verdicts = []
    for t in threads:
        if torch is not None:
            torch.set_num_threads(t)
        times = C.measure_round_robin(rows(x, t, args.max, torch), args.repeats)
        t_copy = copy_time(x.nbytes, max(5, args.repeats // 2))
        roof = t_copy / 2
        has_torch = "torch adaptive_avg_pool2d" in times
        print(f"n_threads={t}  (np.copyto of {x.nbytes / 1e6:.0f} MB: {1e3 * t_copy:.1f} ms, "
              f"{2 * x.nbytes / t_copy / 1e9:.1f} GB/s read+write; read roofline "
              f"{1e3 * roof:.1f} ms)")
        head = f"  {'row':30s} {'median ms':>10s} {'min ms':>8s} {'x roofline':>11s} " \
               f"{'x numpy':>8s}" + (f" {'x torch':>8s}" if has_torch else "")
        print(head)
        for name, ts in times.items():
            vs_numpy = C.median_ratio(times, name, "numpy mean")
            line = (f"  {name:30s} {1e3 * statistics.median(ts):10.2f} {1e3 * min(ts):8.2f} "
                    f"{statistics.median(ts) / roof:11.2f} {vs_numpy:8.2f}")
            if has_torch:
                line += f" {C.median_ratio(times, name, 'torch adaptive_avg_pool2d'):8.2f}"
            print(line)
        r_np = C.median_ratio(times, "poolkit", "numpy mean")
        r_th = C.median_ratio(times, "poolkit", "torch adaptive_avg_pool2d") if has_torch else None
        verdicts.append((t, r_np, r_th, statistics.median(times["poolkit"]) / roof))
        print()

    print("accuracy of float32-style results (max relative error vs a float64 mean):"
          if dtype == np.float32 else "accuracy (max relative error vs a float64 mean):")
    for name, err in accuracy(x, torch).items():
        print(f"  {name:30s} {err:.2e}")
    print()
    for t, r_np, r_th, r_roof in verdicts:
        ok_np = r_np <= 1.0
        msg = (f"target, n_threads={t}: poolkit / numpy mean = {r_np:.2f} "
               f"({'met' if ok_np else 'NOT met'}: <= 1)")
        if r_th is not None:
            msg += (f", poolkit / torch = {r_th:.2f} "
                    f"({'met' if r_th <= 1.10 else 'NOT met'}: <= 1.10)")
        msg += f", {r_roof:.2f}x the read roofline"
        print(msg)
    return 0


class GlobalPool:
    """asv-style benchmark (``setup`` / ``time_*`` over dtype and thread count)."""

    params = (("float32", "float64"), (1, -1))
    param_names = ("dtype", "n_threads")
    shape = SHAPE

    def setup(self, dtype, n_threads):
        self.x = make_input(self.shape, np.dtype(dtype))
        self.g = make_input(self.shape[:2], np.dtype(dtype), seed=1)
        self.n_threads = n_threads
        _, self.idx = poolkit.global_max_pool2d(self.x, return_indices=True)

    def time_global_avg_forward(self, dtype, n_threads):
        poolkit.global_avg_pool2d(self.x, n_threads=n_threads)

    def time_global_avg_backward(self, dtype, n_threads):
        poolkit.global_avg_pool2d_backward(self.g, self.shape, n_threads=n_threads)

    def time_global_max_forward(self, dtype, n_threads):
        poolkit.global_max_pool2d(self.x, return_indices=True, n_threads=n_threads)

    def time_global_max_backward(self, dtype, n_threads):
        poolkit.global_max_pool2d_backward(self.g, self.idx, self.shape, n_threads=n_threads)

    def time_numpy_mean(self, dtype, n_threads):
        self.x.mean(axis=(2, 3))


if __name__ == "__main__":
    sys.exit(main())
