#!/usr/bin/env python3
"""poolkit.torch modules against torch.nn modules: forward + backward through autograd.

    python benchmarks/bench_torch_modules.py                     # (32, 64, 112, 112) float32, 1 and 2 threads
    python benchmarks/bench_torch_modules.py --threads 1,2,4 --repeats 11
    python benchmarks/bench_torch_modules.py --shape 8x64x56x56 --cases max_k2s2,avg_k2s2

Every timed call is what a training step pays for one pooling layer: ``y = module(x)`` on an
input that requires grad, then ``torch.autograd.grad(y, x, g)`` with a fixed contiguous
``g`` (no ``.grad`` accumulation). Both modules run with the same ``torch.set_num_threads``
(poolkit.torch passes ``torch.get_num_threads()`` to its kernels). poolkit and torch calls
alternate so that load from other processes falls on both; the table gives medians.

For the main harness (``benchmarks/run.py``), :func:`torch_module_cases` returns
``(name, poolkit_callable, torch_callable, setup)`` tuples:

``setup(shape=SHAPE, dtype=torch.float32)``
    builds the state (input tensor requiring grad, output gradient, the two modules);
``poolkit_callable(state)`` / ``torch_callable(state)``
    run one forward + backward and return the input gradient.

Set the threads with ``torch.set_num_threads(n)`` before calling; both sides honour it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

SHAPE = (32, 64, 112, 112)

# name -> (module class name, constructor args)
_CASES = {
    "max_k2s2": ("MaxPool2d", {"kernel_size": 2, "stride": 2}),
    "max_k3s2p1": ("MaxPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
    "avg_k2s2": ("AvgPool2d", {"kernel_size": 2, "stride": 2}),
    "avg_k3s2p1": ("AvgPool2d", {"kernel_size": 3, "stride": 2, "padding": 1}),
}


class _State:
    __slots__ = ("g", "pk", "th", "x")


def _make_setup(cls_name: str, kwargs: dict):
    def setup(shape=SHAPE, dtype=None):
        import torch

        import poolkit.torch as pkt

        dtype = torch.float32 if dtype is None else dtype
        gen = torch.Generator().manual_seed(0)
        s = _State()
        # Gaussian values: ties have probability ~0, so both sides pick the same argmax.
        s.x = torch.randn(shape, generator=gen, dtype=dtype).requires_grad_(True)
        s.pk = getattr(pkt, cls_name)(**kwargs)
        s.th = getattr(torch.nn, cls_name)(**kwargs)
        with torch.no_grad():
            out_shape = s.th(s.x).shape
        s.g = torch.randn(out_shape, generator=gen, dtype=dtype)
        return s

    return setup


def _fwd_bwd(attr: str):
    def run(state):
        import torch

        y = getattr(state, attr)(state.x)
        return torch.autograd.grad(y, state.x, state.g)[0]

    return run


def torch_module_cases():
    """``(name, poolkit_callable, torch_callable, setup)`` for every case of this file.

    ``setup(shape=SHAPE, dtype=torch.float32)`` returns a state; each callable takes it and runs
    one forward + backward through autograd (returning the input gradient). Thread count:
    whatever ``torch.set_num_threads`` was given last, for both callables.
    """
    return [
        (f"torch_module_{name}", _fwd_bwd("pk"), _fwd_bwd("th"), _make_setup(cls, kw))
        for name, (cls, kw) in _CASES.items()
    ]


def _times(fns, repeats: int):
    """(median, min) seconds of each zero-argument callable, calls interleaved, one warm-up."""
    for f in fns:
        f()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for t, f in zip(times, fns):
            t0 = time.perf_counter()
            f()
            t.append(time.perf_counter() - t0)
    return [(statistics.median(t), min(t)) for t in times]


def _row(label, n, pk, th):
    (pk_med, pk_min), (th_med, th_min) = pk, th
    return (f"{label:<12} {n:>7} {pk_med * 1e3:>10.2f} {th_med * 1e3:>10.2f} "
            f"{th_med / pk_med:>7.2f}x {pk_min * 1e3:>10.2f} {th_min * 1e3:>10.2f} "
            f"{th_min / pk_min:>7.2f}x")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shape", default="x".join(map(str, SHAPE)), help="NxCxHxW")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--cases", default=",".join(_CASES), help="comma-separated case names")
    p.add_argument("--inference", action="store_true",
                   help="also time the forward alone under torch.no_grad() (no indices kept)")
    p.add_argument("--check", action="store_true",
                   help="also check the two input gradients agree (allclose)")
    args = p.parse_args(argv)

    try:
        import torch
    except ImportError as exc:
        print(f"PyTorch is not importable ({exc}); nothing to compare against.")
        return 0
    import poolkit

    shape = tuple(int(v) for v in args.shape.lower().split("x"))
    dtype = getattr(torch, args.dtype)
    wanted = args.cases.split(",")
    cases = [c for c in torch_module_cases() if c[0].removeprefix("torch_module_") in wanted]
    thread_counts = [int(v) for v in args.threads.split(",")]

    print(f"poolkit {poolkit.__version__}, torch {torch.__version__}, shape {shape} "
          f"{args.dtype}, forward+backward through autograd, median of {args.repeats}"
          + ("; no_grad rows: forward alone under torch.no_grad()" if args.inference else ""))
    header = (f"{'case':<12} {'threads':>7} {'poolkit ms':>10} {'torch ms':>10} {'speedup':>8} "
              f"{'pk min ms':>10} {'th min ms':>10} {'min sp.':>8}")
    print("medians first, then minima (less sensitive to other processes' load)")
    print(header)
    print("-" * len(header))
    old_threads = torch.get_num_threads()
    try:
        for name, pk_fn, th_fn, setup in cases:
            state = setup(shape, dtype)
            if args.check:
                ok = torch.allclose(pk_fn(state), th_fn(state), rtol=1e-5, atol=1e-6)
                if not ok:
                    print(f"{name}: input gradients DIFFER", file=sys.stderr)
            for n in thread_counts:
                torch.set_num_threads(n)
                pk, th = _times([lambda s=state, f=pk_fn: f(s), lambda s=state, f=th_fn: f(s)],
                                args.repeats)
                print(_row(name.removeprefix("torch_module_"), n, pk, th), flush=True)
                if args.inference:
                    with torch.no_grad():
                        pk, th = _times([lambda s=state: s.pk(s.x), lambda s=state: s.th(s.x)],
                                        args.repeats)
                    print(_row("  no_grad", n, pk, th), flush=True)
            state = None  # free the ~200 MB of this case before the next one
    finally:
        torch.set_num_threads(old_threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
