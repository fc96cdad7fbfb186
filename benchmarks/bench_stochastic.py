#!/usr/bin/env python3
"""Stochastic pooling: the cost target of issue 3, and the random-stream design choice.

    python benchmarks/bench_stochastic.py                    # (32, 64, 112, 112) float32, 2x2
    python benchmarks/bench_stochastic.py --repeats 31 --threads 1,2
    python benchmarks/bench_stochastic.py --shape 8,64,56,56 --dtype float64 --window 3,2,1

Target: a stochastic TRAINING forward (values and sampled indices) costs at most 2x a max
pooling forward with indices on the same input. Rows, all on the same input in one process:

``max_pool2d``
    ``poolkit.max_pool2d(x, k, s, p, return_indices=True)``: the yardstick.
``stochastic (counter)``
    ``poolkit.stochastic_pool2d(x, k, s, p, training=True, rng=seed, return_indices=True)``:
    what poolkit ships; uniforms come from a counter-based SplitMix64 stream inside the kernel.
``stochastic (Generator)``
    the alternative design: the facade draws one uniform per output with
    ``Generator.random(dtype=x.dtype)`` and the kernel reads them (the private kernel entry
    ``stochastic_pool2d_train_uniforms``; outputs allocated as the facade does).
``Generator.random only``
    the cost of drawing those uniforms alone.
``stochastic inference``
    ``training=False`` (``sum(a^2) / sum(a)`` per window, sums in float64), for information.

The machines this runs on are shared and noisy, so the rows are timed round-robin (one call of
each per round, after a warm-up round) and reported as medians; the ``x max_pool2d`` column is
the median over rounds of (row time / max_pool2d time in the same round), which cancels slow
drifts of the machine's load, and ``x (mins)`` the ratio of the fastest runs (the least
disturbed ones). ``threadpoolctl.threadpool_info()`` is printed when threadpoolctl is
installed.

The module also holds an asv-style class (``StochasticPool``: ``params``, ``setup``,
``time_*``), so an asv suite can import it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys

import numpy as np

import poolkit
from poolkit import _stochastic_pool
from poolkit._arrays import as_planes
from poolkit._threads import resolve

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import cases as C  # noqa: E402

SHAPE = (32, 64, 112, 112)
SEED = 20130116


def make_input(shape, dtype, seed=0):
    """ReLU-like activations: |normal| with about half of them exactly 0."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=np.float32 if dtype == np.float32 else np.float64)
    return np.maximum(x, 0).astype(dtype, copy=False)


def _out_hw(shape, k, s, p):
    return tuple((L + 2 * p - k) // s + 1 for L in shape[-2:])


def generator_variant(x, k, s, p, seed, n_threads):
    """Training forward with uniforms drawn by NumPy in the facade (the design not shipped)."""
    out_shape = x.shape[:-2] + _out_hw(x.shape, k, s, p)
    u = np.random.default_rng(seed).random(out_shape, dtype=x.dtype)
    values = np.empty(out_shape, x.dtype)
    indices = np.empty(out_shape, np.int64)
    planes = as_planes(x)
    n_threads = resolve(n_threads, planes.size + values.size)  # as the facade does
    plane_shape = (-1,) + out_shape[-2:]
    code = _stochastic_pool.stochastic_pool2d_train_uniforms(
        planes, u.reshape(plane_shape), values.reshape(plane_shape),
        indices.reshape(plane_shape), k, k, s, s, p, p, n_threads,
    )
    assert code == 0
    return values, indices


def rows(x, k, s, p, n_threads):
    """The timed rows: name -> zero-argument callable."""
    out_shape = x.shape[:-2] + _out_hw(x.shape, k, s, p)
    return {
        "max_pool2d": lambda: poolkit.max_pool2d(x, k, s, p, return_indices=True,
                                                 n_threads=n_threads),
        "stochastic (counter)": lambda: poolkit.stochastic_pool2d(
            x, k, s, p, training=True, rng=SEED, return_indices=True, n_threads=n_threads),
        "stochastic (Generator)": lambda: generator_variant(x, k, s, p, SEED, n_threads),
        "Generator.random only": lambda: np.random.default_rng(SEED).random(out_shape,
                                                                            dtype=x.dtype),
        "stochastic inference": lambda: poolkit.stochastic_pool2d(
            x, k, s, p, training=False, n_threads=n_threads),
    }


def measure(calls: dict, repeats: int, base: str = "max_pool2d"):
    """Round-robin timing (:func:`cases.measure_round_robin`): ``{name: [seconds per
    round]}``, and each row's median ratio to ``base`` over the rounds."""
    times = C.measure_round_robin(calls, repeats)
    ratios = {name: C.median_ratio(times, name, base) for name in times}
    return times, ratios


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default=",".join(map(str, SHAPE)), help="N,C,H,W")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--window", default="2,2,0", help="kernel,stride,padding (square)")
    ap.add_argument("--threads", default=None,
                    help="comma-separated thread counts (default: 1 and all CPUs)")
    ap.add_argument("--repeats", type=int, default=15, help="timed rounds (default 15)")
    args = ap.parse_args(argv)

    shape = tuple(int(v) for v in args.shape.split(","))
    k, s, p = (int(v) for v in args.window.split(","))
    dtype = np.dtype(args.dtype)
    nall = C.all_threads()
    threads = ([int(t) for t in args.threads.split(",")] if args.threads
               else sorted({1, nall}))

    x = make_input(shape, dtype)
    print(f"poolkit {poolkit.__version__}, numpy {np.__version__}, Python "
          f"{platform.python_version()}, {platform.machine()}, {nall} usable CPUs, "
          f"OpenMP {'on' if poolkit.openmp_enabled() else 'OFF'}")
    print(f"threadpools: {C.threadpool_summary()}")
    print(f"input {shape} {dtype} ({x.nbytes / 1e6:.0f} MB), window k={k} s={s} p={p}, "
          f"{args.repeats} rounds, medians\n")
    verdicts = []
    for t in threads:
        times, ratios = measure(rows(x, k, s, p, t), args.repeats)
        print(f"n_threads={t}")
        print(f"  {'row':26s} {'median ms':>10s} {'min ms':>8s} {'x max_pool2d':>13s} "
              f"{'x (mins)':>9s}")
        base_min = min(times["max_pool2d"])
        for name, ts in times.items():
            print(f"  {name:26s} {1e3 * statistics.median(ts):10.1f} {1e3 * min(ts):8.1f} "
                  f"{ratios[name]:13.2f} {min(ts) / base_min:9.2f}")
        r = ratios["stochastic (counter)"]
        verdicts.append((t, r, min(times["stochastic (counter)"]) / base_min))
        print()
    for t, r, rmin in verdicts:
        print(f"target (stochastic training forward <= 2x max_pool2d forward), n_threads={t}: "
              f"{r:.2f}x (ratio of minimum times {rmin:.2f}x) -> "
              f"{'met' if r <= 2.0 else 'NOT met'}")
    return 0


class StochasticPool:
    """asv-style benchmark (``setup`` / ``time_*`` over dtype and thread count)."""

    params = (("float32", "float64"), (1, -1))
    param_names = ("dtype", "n_threads")
    shape = SHAPE

    def setup(self, dtype, n_threads):
        self.x = make_input(self.shape, np.dtype(dtype))
        self.n_threads = n_threads

    def time_max_pool2d_forward(self, dtype, n_threads):
        poolkit.max_pool2d(self.x, 2, return_indices=True, n_threads=n_threads)

    def time_stochastic_train_counter(self, dtype, n_threads):
        poolkit.stochastic_pool2d(self.x, 2, rng=SEED, return_indices=True, n_threads=n_threads)

    def time_stochastic_train_generator(self, dtype, n_threads):
        generator_variant(self.x, 2, 2, 0, SEED, n_threads)

    def time_stochastic_inference(self, dtype, n_threads):
        poolkit.stochastic_pool2d(self.x, 2, training=False, n_threads=n_threads)


if __name__ == "__main__":
    sys.exit(main())
