#!/usr/bin/env python3
"""poolkit benchmark runner: poolkit against PyTorch CPU, NumPy, the pure-Python reference and
the memory roofline, in one table. Needs only NumPy and poolkit; PyTorch, tqdm, matplotlib and
threadpoolctl are used when importable and skipped with a one-line note otherwise.

    python benchmarks/run.py                      # quick set (under 90 s on 2 cores)
    python benchmarks/run.py --full               # every op, window, shape, dtype, thread count
    python benchmarks/run.py --json out.json --plot out.png
    python benchmarks/run.py --ops max_fwd,avg_bwd --shapes 32x64x112x112 --repeats 20
    python benchmarks/run.py --list               # print the selected cases and exit

The cases (ops, windows, shapes, the callables of every implementation, the bytes that must
move) live in ``benchmarks/cases.py``, shared with the asv suites in ``benchmarks/benchmarks/``.
See ``benchmarks/README.md`` for what each column means.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import cases as C  # noqa: E402

NOTES: list = []


def note(msg: str) -> None:
    """A one-line note, printed with the machine information and kept in the JSON."""
    if msg not in NOTES:
        NOTES.append(msg)


# ----------------------------------------------------------------------------- machine


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def physical_cores():
    try:
        pairs = set()
        phys = core = None
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("physical id"):
                    phys = line.split(":", 1)[1].strip()
                elif line.startswith("core id"):
                    core = line.split(":", 1)[1].strip()
                elif not line.strip():
                    if core is not None:
                        pairs.add((phys, core))
                    phys = core = None
        return len(pairs) or None
    except OSError:
        return None


def _cpu_seconds() -> float:
    """User + system CPU time of this process so far (all its threads)."""
    t = os.times()
    return t.user + t.system


def _loadavg():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def machine_info(poolkit, threads_used) -> dict:
    info = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": physical_cores(),
        "usable_cpus": C.all_threads(),
        "threads_used": sorted(set(threads_used)),
        "openmp": bool(poolkit.openmp_enabled()),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "poolkit": poolkit.__version__,
        "numpy": np.__version__,
        "torch": None,
        "torch_default_threads": None,
        "threadpoolctl": None,
        "threadpool_info": None,
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "load_average": _loadavg(),
    }
    try:
        cfg = poolkit._config.config()  # compiler and OpenMP version, as show_config prints
        info["compiler"] = cfg.get("compiler")
        info["openmp_version"] = cfg.get("openmp_version")
    except Exception:  # noqa: BLE001 - informational only
        pass
    torch = C.torch_module()
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_default_threads"] = torch.get_num_threads()
    try:
        import threadpoolctl  # noqa: PLC0415

        info["threadpoolctl"] = threadpoolctl.__version__
        info["threadpool_info"] = threadpoolctl.threadpool_info()
    except ImportError:
        note("threadpoolctl not installed: no thread-pool report (pip install threadpoolctl)")
    return info


def print_machine(info: dict, bw: dict, out=sys.stdout) -> None:
    p = lambda *a: print(*a, file=out)  # noqa: E731
    p("poolkit benchmark")
    p(f"  date           {info['date']}")
    p(f"  CPU            {info['cpu_model']}")
    cores = info["physical_cores"]
    p(f"  cores          {info['logical_cpus']} logical"
      + (f", {cores} physical" if cores else "") + f", {info['usable_cpus']} usable")
    p(f"  threads used   {', '.join(map(str, info['threads_used']))}"
      + (f"  (OMP_NUM_THREADS={info['omp_num_threads_env']})"
         if info["omp_num_threads_env"] else ""))
    if info.get("load_average"):
        one = info["load_average"][0]
        p(f"  load average   {one:.2f} at start (1 min)"
          + (f"  <- other processes are using the CPUs: rows with {info['usable_cpus']} "
             f"threads will be noisy" if one > 0.5 else ""))
    omp = "on" if info["openmp"] else "OFF (serial build: every poolkit row runs on 1 thread)"
    if info["openmp"] and info.get("openmp_version"):
        omp += f" (OpenMP {info['openmp_version']})"
    p(f"  OpenMP         {omp}")
    if info.get("compiler"):
        p(f"  compiler       {info['compiler']}")
    p(f"  versions       python {info['python']}, poolkit {info['poolkit']}, "
      f"numpy {info['numpy']}, torch {info['torch'] or '(not installed)'}"
      + (f", threadpoolctl {info['threadpoolctl']}" if info["threadpoolctl"] else ""))
    for pool in info["threadpool_info"] or []:
        lib = os.path.basename(str(pool.get("filepath", "")))
        p(f"  threadpool     {pool.get('user_api')}/{pool.get('internal_api')} "
          f"{pool.get('version') or ''} num_threads={pool.get('num_threads')}  {lib}")
    p(f"  copy roofline  np.copyto of {bw['bytes'] / 2**20:.0f} MiB: "
      f"{bw['bandwidth_Bps'] / 1e9:.2f} GB/s (reads + writes, median of {bw['repeats']})")
    for n in NOTES:
        p(f"  note: {n}")


# ----------------------------------------------------------------------------- selection


def _csv(value):
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def parse_shape(text: str):
    if text in C.SHAPES:
        return C.SHAPES[text]
    try:
        shape = tuple(int(v) for v in text.lower().replace(",", "x").split("x"))
    except ValueError:
        raise SystemExit(f"--shapes: cannot read {text!r} (use e.g. 32x64x112x112)") from None
    if len(shape) != 4:
        raise SystemExit(f"--shapes: {text!r} is not an N x C x H x W shape")
    return shape


def select_cases(args) -> list:
    if args.tiny:
        chosen = C.tiny_cases()
    elif args.full:
        chosen = C.full_cases()
    else:
        chosen = C.quick_cases()
    ops = _csv(args.ops)
    if ops:
        unknown = [o for o in ops if not any(name.startswith(o) for name in C.OPS)]
        if unknown:
            raise SystemExit(f"--ops: unknown {unknown}; choose from {', '.join(C.OPS)}")
        chosen = [c for c in chosen if any(c.op == o or c.op.startswith(o) for o in ops)]
    shapes = _csv(args.shapes)
    if shapes:
        wanted = {parse_shape(s) for s in shapes}
        present = {tuple(c.shape) for c in chosen}
        # A shape outside the set runs the set's (op, window, dtype, threads) rows on it.
        extra = wanted - present - {C.REF_SHAPE}
        base = [c for c in chosen if not c.is_ref]
        combos = sorted({(c.op, c.window, c.dtype, c.threads) for c in base},
                        key=lambda t: (list(C.OPS).index(t[0]), str(t[1]), t[2], t[3]))
        chosen = [c for c in chosen if tuple(c.shape) in wanted]
        chosen += [C.Case(o, s, w, d, t) for s in sorted(extra) for (o, w, d, t) in combos]
    windows = _csv(args.windows)
    if windows:
        bad = [w for w in windows if w not in C.WINDOWS]
        if bad:
            raise SystemExit(f"--windows: unknown {bad}; choose from {', '.join(C.WINDOWS)}")
        chosen = [c for c in chosen if c.window is None or c.window in windows]
    dtypes = _csv(args.dtypes)
    if dtypes:
        bad = [d for d in dtypes if d not in C.DTYPES]
        if bad:
            raise SystemExit(f"--dtypes: unknown {bad}; choose from {', '.join(C.DTYPES)}")
        # The set's rows, each in every dtype asked for.
        chosen = [C.Case(c.op, c.shape, c.window, d, c.threads) for c in chosen for d in dtypes]
    threads = _csv(args.threads)
    if threads:
        nall = C.all_threads()
        try:
            want = sorted({nall if t == "all" else int(t) for t in threads})
        except ValueError:
            raise SystemExit(f"--threads: cannot read {args.threads!r} (e.g. 1,2 or all)") from None
        if any(t < 1 for t in want):
            raise SystemExit("--threads: thread counts must be at least 1")
        # The set's rows at every thread count asked for (reference rows stay on 1 thread).
        chosen = [c for c in chosen if c.is_ref] + [
            C.Case(c.op, c.shape, c.window, c.dtype, t) for c in chosen if not c.is_ref
            for t in want]
    if args.no_reference_rows:
        chosen = [c for c in chosen if not c.is_ref]
    # Unique, in table order: op, window, shape (as listed), dtype, threads.
    shape_order = {s: i for i, s in enumerate(list(C.SHAPES.values()) + [C.TINY_SHAPE])}
    seen, result = set(), []
    for c in sorted(chosen, key=lambda c: (
            c.is_ref, list(C.OPS).index(c.op), str(c.window),
            shape_order.get(tuple(c.shape), 99), tuple(c.shape), c.dtype, c.threads)):
        if c not in seen:
            seen.add(c)
            result.append(c)
    return result


# ----------------------------------------------------------------------------- running


def _progress(items, enabled):
    items = list(items)
    if not enabled:
        return items, None
    try:
        from tqdm import tqdm  # noqa: PLC0415
    except ImportError:
        note("tqdm not installed: no progress bar (pip install tqdm)")
        return items, None
    bar = tqdm(items, desc="benchmark", unit="case", file=sys.stderr, dynamic_ncols=True,
               leave=False)
    return bar, bar


def run_cases(cases, args, bw, poolkit) -> list:
    impls = ["poolkit", "poolkit_out"]
    if not args.no_torch:
        impls.append("torch")
        if C.torch_module() is None:
            note(f"PyTorch not importable ({C.torch_missing_reason()}): PyTorch columns "
                 f"left empty")
    if not args.no_numpy:
        impls.append("numpy")
    if not args.no_reference:
        impls.append("reference")
    data = C.DataCache()
    numpy_cache = {}  # NumPy is single-threaded: time it once per (op, window, shape, dtype)
    rows = {}
    # Run grouped by input (one input alive at a time); report in table order.
    order = sorted(range(len(cases)), key=lambda i: (tuple(cases[i].shape), cases[i].dtype))
    iterable, bar = _progress([cases[i] for i in order], not args.no_progress)
    if bar is None and not args.no_progress:
        print(f"running {len(cases)} cases ...", file=sys.stderr, flush=True)
    current = None
    for case in iterable:
        if bar is not None:
            bar.set_postfix_str(case.label(), refresh=False)
        key_in = (tuple(case.shape), case.dtype)
        if key_in != current:
            data.clear()
            current = key_in
        rows[case] = run_case(case, impls, data, numpy_cache, args, bw, poolkit)
    if bar is not None:
        bar.close()
    return [rows[c] for c in cases]


def run_case(case, impls, data, numpy_cache, args, bw, poolkit) -> dict:
    row = {
        "op": case.op,
        "title": C.OPS[case.op].title,
        "window": case.window,
        "shape": list(case.shape),
        "dtype": case.dtype,
        "threads": case.threads,
        "reference_row": case.is_ref,
        "label": case.label(),
        "skipped": None,
        "bytes_moved": None,
        "times": {},
        "notes": {},
    }
    for impl in C.IMPLS:
        row[f"{impl}_s"] = None
    try:
        prep = C.prepare(case, data, impls, poolkit=poolkit)
    except Exception as exc:  # noqa: BLE001 - a broken op must not stop the run
        row["skipped"] = f"setup failed: {type(exc).__name__}: {exc}".splitlines()[0]
        note(f"{case.label()}: {row['skipped']}")
        return _finish(row, bw)
    row["bytes_moved"] = prep.bytes_moved or None
    if prep.skipped:
        row["skipped"] = prep.skipped
        return _finish(row, bw)
    row["notes"] = dict(prep.notes)
    results = {}
    for impl in impls:
        fn = prep.calls.get(impl)
        if fn is None:
            continue
        if impl == "numpy":
            in_mb = np.prod(case.shape) * np.dtype(case.dtype).itemsize / 2**20
            if args.numpy_max_mb is not None and in_mb > args.numpy_max_mb:
                row["notes"][impl] = (f"NumPy baseline on inputs over {args.numpy_max_mb:g} MiB "
                                      f"only with --full")
                continue
            key = (case.op, case.window, tuple(case.shape), case.dtype)
            if key in numpy_cache:
                tm = numpy_cache[key]
                row["times"][impl] = _timing_dict(tm)
                row[f"{impl}_s"] = tm.median
                continue
        if impl == "torch":
            C.set_torch_threads(case.threads)
        if impl in ("poolkit", "poolkit_out"):
            # All --repeats calls unless they would take over 2 budgets (a slow op); more
            # when they are fast (MIN_TIME_S).
            opts = {"max_time": 2 * args.budget, "min_repeats": 3, "min_time": MIN_TIME_S}
        elif impl == "torch":
            opts = {"max_time": args.budget, "min_repeats": 3, "min_time": MIN_TIME_S}
        else:  # NumPy and the reference: slow baselines
            opts = {"max_time": args.budget, "single_shot_over": args.single_shot}
        keep = prep.compare and impl in ("poolkit", "torch", "numpy", "reference")
        try:
            tm = C.measure(fn, args.repeats, keep_result=keep, **opts)
        except Exception as exc:  # noqa: BLE001 - e.g. an op written without out= yet
            msg = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
            row["notes"][impl] = f"failed: {msg}"
            note(f"{case.label()}: {impl} failed: {msg}")
            continue
        if impl == "numpy":
            numpy_cache[(case.op, case.window, tuple(case.shape), case.dtype)] = C.Timing(
                tm.times, tm.warmup)
        results[impl] = tm.result
        row["times"][impl] = _timing_dict(tm)
        row[f"{impl}_s"] = tm.median
    # Do the implementations compute the same thing? (poolkit against the first available of
    # reference, PyTorch, NumPy; stochastic pooling uses different random streams.)
    row["match"] = None
    row["match_against"] = None
    if prep.compare and results.get("poolkit") is not None:
        for other in ("reference", "torch", "numpy"):
            if results.get(other) is not None:
                row["match"] = bool(C.agree(results["poolkit"], results[other], case.dtype))
                row["match_against"] = other
                if not row["match"]:
                    note(f"{case.label()}: poolkit and {other} disagree")
                break
    return _finish(row, bw)


#: Fast calls (poolkit, PyTorch) are repeated for at least this many seconds, up to 400
#: calls: a median of 5 samples of a 20-microsecond call measures the machine's noise more
#: than the call. (Timing poolkit and PyTorch in alternation instead was tried: after each
#: PyTorch call its OpenMP runtime's worker kept spinning on the second CPU, and the next
#: 2-thread poolkit call waited for it, up to 4x on the small rows; timing a copy beside the
#: large rows' out= calls, for the roofline, kept 512 MiB alive, which sent the fresh
#: outputs of the other calls to new pages of the virtual machine, slow to first touch.)
MIN_TIME_S = 0.05


def _timing_dict(tm) -> dict:
    return {"median_s": tm.median, "best_s": tm.best, "n": len(tm.times),
            "warmup_s": tm.warmup}


def _ratio(a, b):
    return a / b if a is not None and b else None


def _finish(row, bw) -> dict:
    pk = row["poolkit_s"]
    row["speedup_torch"] = _ratio(row["torch_s"], pk)
    row["speedup_numpy"] = _ratio(row["numpy_s"], pk)
    row["speedup_reference"] = _ratio(row["reference_s"], pk)
    t_roof = row["poolkit_out_s"]
    row["roofline_from"] = "poolkit_out" if t_roof else None
    if not t_roof and pk:
        t_roof, row["roofline_from"] = pk, "poolkit"  # no out= variant: allocation included
    if row["bytes_moved"] and t_roof:
        roof = row["bytes_moved"] / bw["bandwidth_Bps"]
        row["time_over_roofline"] = t_roof / roof
        row["roofline_s"] = roof
        row["roofline_share"] = roof / t_roof
        row["achieved_GBps"] = row["bytes_moved"] / t_roof / 1e9
    else:
        row["roofline_s"] = row["time_over_roofline"] = None
        row["roofline_share"] = row["achieved_GBps"] = None
    return row


# ----------------------------------------------------------------------------- targets (issue 6)

#: (op, metric, comparison, threshold). Checked on the large shapes with all threads.
TARGETS = [
    ("max_fwd", "speedup_torch", ">=", 4.0),
    ("max_fwd", "time_over_roofline", "<=", 1.5),
    ("max_bwd", "speedup_torch", ">=", 2.0),
    ("max_bwd", "time_over_roofline", "<=", 1.5),
    ("avg_fwd", "speedup_torch", ">=", 2.0),
    ("avg_fwd", "time_over_roofline", "<=", 1.3),
    ("avg_bwd", "speedup_torch", ">=", 4.0),
    ("avg_bwd", "time_over_roofline", "<=", 1.5),
    ("global_avg", "speedup_torch", ">=", 1.0),
    ("stochastic_fwd", "stochastic_over_max", "<=", 2.0),
]
METRIC_TEXT = {
    "speedup_torch": "x faster than PyTorch",
    "time_over_roofline": "time / roofline",
    "stochastic_over_max": "time / max forward time",
    "threads_speedup": "x faster with all threads than 1",
}


def evaluate_targets(rows) -> list:
    nall = C.all_threads()
    large = {C.SHAPES[s] for s in C.LARGE_SHAPES}
    ran = [r for r in rows if not r["skipped"] and r["poolkit_s"]]
    by_key = {(r["op"], r["window"], tuple(r["shape"]), r["dtype"], r["threads"]): r for r in ran}
    out = []

    def add(target, row, value, cmp, threshold, status=None):
        ok = None if value is None else (value >= threshold if cmp == ">=" else value <= threshold)
        out.append({
            "target": target, "case": row["label"], "value": value,
            "threshold": threshold, "ok": ok,
            "status": status or ("n/a" if ok is None else "PASS" if ok else "MISS"),
        })

    for op, metric, cmp, thr in TARGETS:
        text = f"{op} {METRIC_TEXT[metric]} {cmp} {thr:g}"
        for r in ran:
            if r["op"] != op or tuple(r["shape"]) not in large or r["threads"] != nall:
                continue
            if metric == "stochastic_over_max":
                m = by_key.get(("max_fwd", r["window"], tuple(r["shape"]), r["dtype"],
                                r["threads"]))
                a = r["poolkit_out_s"] or r["poolkit_s"]
                b = m and (m["poolkit_out_s"] or m["poolkit_s"])
                value = _ratio(a, b)
            else:
                value = r[metric]
            add(text, r, value, cmp, thr)
    small = C.SHAPES["1x64x56x56"]
    for r in ran:
        if tuple(r["shape"]) == small and r["threads"] == nall and r["speedup_torch"]:
            add("every op on 1x64x56x56 faster than PyTorch", r, r["speedup_torch"], ">", 1.0)
            out[-1]["ok"] = r["speedup_torch"] > 1.0
            out[-1]["status"] = "PASS" if out[-1]["ok"] else "MISS"
    if nall > 1:
        for r in ran:
            if tuple(r["shape"]) not in large or r["threads"] != nall:
                continue
            one = by_key.get((r["op"], r["window"], tuple(r["shape"]), r["dtype"], 1))
            if one is None:
                continue
            t1 = one["poolkit_out_s"] or one["poolkit_s"]
            tn = r["poolkit_out_s"] or r["poolkit_s"]
            value = _ratio(t1, tn)
            # "Where the roofline allows it": 1 thread already within 1.7x of the copy roofline
            # leaves no room for a 1.7x gain from threads alone.
            bound = one["roofline_s"] and t1 / one["roofline_s"] < 1.7
            status = None
            if value is not None and value < 1.7 and bound:
                status = "bound"
            add(f"{nall} threads >= 1.7x faster than 1 thread", r, value, ">=", 1.7, status)
    return out


# ----------------------------------------------------------------------------- output


def fmt_ms(s):
    if s is None:
        return "-"
    ms = s * 1e3
    if ms >= 100:
        return f"{ms:.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.3f}"


def fmt_x(v):
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:.0f}x"
    if v >= 10:
        return f"{v:.1f}x"
    return f"{v:.2f}x"


def fmt_r(v):
    return "-" if v is None else f"{v:.2f}"


COLUMNS = [
    ("op", "<", lambda r: r["title"]),
    ("window", "<", lambda r: r["window"] or "-"),
    ("shape", "<", lambda r: C.shape_label(r["shape"])),
    ("dtype", "<", lambda r: r["dtype"].replace("float", "f")),
    ("thr", ">", lambda r: str(r["threads"])),
    ("poolkit ms", ">", lambda r: fmt_ms(r["poolkit_s"])),
    ("out= ms", ">", lambda r: fmt_ms(r["poolkit_out_s"])),
    ("torch ms", ">", lambda r: fmt_ms(r["torch_s"])),
    ("numpy ms", ">", lambda r: fmt_ms(r["numpy_s"])),
    ("vs torch", ">", lambda r: fmt_x(r["speedup_torch"])),
    ("vs numpy", ">", lambda r: fmt_x(r["speedup_numpy"])),
    ("t/roof", ">", lambda r: fmt_r(r["time_over_roofline"])
     + ("*" if r.get("roofline_from") == "poolkit" else "")),
    ("GB/s", ">", lambda r: "-" if r["achieved_GBps"] is None else f"{r['achieved_GBps']:.1f}"),
    ("same", ">", lambda r: {True: "yes", False: "NO", None: "-"}[r.get("match")]),
]
REF_COLUMNS = COLUMNS[:5] + [
    ("poolkit ms", ">", lambda r: fmt_ms(r["poolkit_s"])),
    ("ref ms", ">", lambda r: fmt_ms(r["reference_s"])),
    ("torch ms", ">", lambda r: fmt_ms(r["torch_s"])),
    ("numpy ms", ">", lambda r: fmt_ms(r["numpy_s"])),
    ("vs ref", ">", lambda r: fmt_x(r["speedup_reference"])),
    ("vs torch", ">", lambda r: fmt_x(r["speedup_torch"])),
    ("same", ">", lambda r: {True: "yes", False: "NO", None: "-"}[r.get("match")]),
]


def table(rows, columns, markdown=False) -> str:
    cells = [[f(r) for _, _, f in columns] for r in rows]
    heads = [h for h, _, _ in columns]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(heads)]

    def line(values):
        parts = [f"{v:{al}{w}}" for v, (_, al, _), w in zip(values, columns, widths)]
        return ("| " + " | ".join(parts) + " |") if markdown else "  ".join(parts)

    out = [line(heads)]
    if markdown:
        out.append("|" + "|".join(("-" * (w + 1) + ":" if al == ">" else "-" * (w + 2))
                                  for (_, al, _), w in zip(columns, widths)) + "|")
    else:
        out.append("  ".join("-" * w for w in widths))
    out += [line(c) for c in cells]
    return "\n".join(out)


def print_results(rows, targets, markdown=False, out=sys.stdout) -> None:
    p = lambda *a: print(*a, file=out)  # noqa: E731
    main = [r for r in rows if not r["reference_row"] and not r["skipped"]]
    ref = [r for r in rows if r["reference_row"] and not r["skipped"]]
    skipped = sorted({(r["op"], r["skipped"]) for r in rows if r["skipped"]})
    if main:
        p("")
        p(table(main, COLUMNS, markdown))
    if ref:
        p("")
        p(f"Small shape {C.shape_label(C.REF_SHAPE)}: poolkit against its pure-Python reference")
        p(table(ref, REF_COLUMNS, markdown))
    for op, why in skipped:
        p(f"skipped {op}: {why}")
    if targets:
        p("")
        p("Issue 6 targets (large shapes, all threads; ratios from this run):")
        width = max(len(t["target"]) for t in targets)
        for t in targets:
            v = "-" if t["value"] is None else f"{t['value']:.2f}"
            p(f"  {t['status']:5}  {t['target']:{width}}  {v:>7}  {t['case']}")


def plot(rows, path) -> bool:
    try:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        print("note: matplotlib not installed: no plot written (pip install matplotlib)",
              file=sys.stderr)
        return False
    main = [r for r in rows if not r["reference_row"] and not r["skipped"]]
    if not main:
        main = [r for r in rows if not r["skipped"]]
    if not main:
        print("note: no rows to plot", file=sys.stderr)
        return False
    labels = [f"{r['op']} {r['window'] or ''} {C.shape_label(r['shape'])} "
              f"{r['dtype'].replace('float', 'f')} T{r['threads']}" for r in main]
    y = np.arange(len(main))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 1.2 + 0.28 * len(main)), sharey=True)
    sp = [r["speedup_torch"] for r in main]
    # Diverging bars from 1x: right = faster than PyTorch, left = slower.
    ax1.barh(y, [(v - 1) if v else 0 for v in sp], left=1,
             color=["tab:green" if v and v >= 1 else "tab:red" for v in sp])
    ax1.axvline(1.0, color="k", lw=1)
    ax1.set_xscale("log")
    ax1.set_xlabel("speedup vs PyTorch CPU (same threads; higher is better)")
    ax1.set_yticks(y, labels, fontsize=7)
    ax1.invert_yaxis()
    for yi, v in zip(y, sp):
        if v:
            ax1.text(v, yi, f" {v:.1f}x " if v >= 1 else f" {v:.2f}x ", va="center",
                     ha="left" if v >= 1 else "right", fontsize=6)
        else:
            ax1.text(1, yi, " no PyTorch op", va="center", fontsize=6, color="0.4")
    tr = [r["time_over_roofline"] for r in main]
    ax2.barh(y, [(v - 1) if v else 0 for v in tr], left=1,
             color=["tab:blue" if v and v <= 1.5 else "tab:orange" for v in tr])
    ax2.axvline(1.0, color="k", lw=1)
    ax2.axvline(1.5, color="tab:orange", lw=1, ls="--", label="1.5 (issue 6)")
    ax2.set_xscale("log")
    ax2.set_xlabel("poolkit time (out=) / memory roofline (lower is better; 1 = copy speed)")
    ax2.legend(fontsize=7, loc="lower right")
    for yi, v in zip(y, tr):
        if v:
            ax2.text(v, yi, f" {v:.2f} " if v >= 1 else f" {v:.2f} ", va="center",
                     ha="left" if v >= 1 else "right", fontsize=6)
    fig.suptitle("poolkit vs PyTorch CPU and the memory roofline", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


# ----------------------------------------------------------------------------- main


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description="Benchmark poolkit against PyTorch CPU, NumPy, the pure-Python reference "
                    "and the memory roofline.")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--full", action="store_true",
                   help="every op, window, shape, dtype (float32, float64) and thread count")
    g.add_argument("--tiny", action="store_true",
                   help="tiny shapes, 2 repeats, small copy: a smoke test in seconds")
    ap.add_argument("--ops", help=f"comma-separated ops (or prefixes): {', '.join(C.OPS)}")
    ap.add_argument("--shapes", help="comma-separated NxCxHxW shapes (others than the set's "
                                     "run the set's rows on that shape)")
    ap.add_argument("--windows", help=f"comma-separated windows: {', '.join(C.WINDOWS)}")
    ap.add_argument("--dtypes", help="comma-separated dtypes: float32, float64")
    ap.add_argument("--threads", help="comma-separated thread counts, 'all' = usable CPUs")
    ap.add_argument("--repeats", type=int,
                    help="timed calls per implementation after the warm-up "
                         "(default 5 quick, 10 full, 2 tiny)")
    ap.add_argument("--budget", type=float, default=None,
                    help="cap on the seconds of timed calls per row: PyTorch, NumPy and the "
                         "reference get this much (PyTorch at least 3 calls, the others at "
                         "least 1), poolkit twice this (at least 3 calls); default 1 quick, "
                         "4 full")
    ap.add_argument("--numpy-max-mb", type=float, default=None,
                    help="time the NumPy baseline only on inputs up to this size in MiB "
                         "(default 64 in the quick set, which leaves the 98 MiB shape to "
                         "--full; 0 = no limit)")
    ap.add_argument("--copy-mb", type=int, default=None,
                    help="size of the np.copyto roofline array in MiB (default 256; 32 tiny)")
    ap.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    ap.add_argument("--no-numpy", action="store_true", help="leave the NumPy baseline out")
    ap.add_argument("--no-reference", action="store_true",
                    help="do not time the pure-Python reference")
    ap.add_argument("--no-reference-rows", action="store_true",
                    help=f"drop the rows on the reference shape {C.shape_label(C.REF_SHAPE)}")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    ap.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    ap.add_argument("--json", metavar="PATH", help="write machine info and rows as JSON")
    ap.add_argument("--plot", metavar="PATH", help="write a PNG of speedups and roofline shares")
    ap.add_argument("--list", action="store_true", help="list the selected cases and exit")
    args = ap.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.tiny else 10 if args.full else 5
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    if args.budget is None:
        args.budget = 4.0 if args.full else 1.0
    # Quick set: a NumPy/reference call slower than this is timed once (the warm-up).
    args.single_shot = None if args.full else 0.3
    if args.numpy_max_mb is None:
        args.numpy_max_mb = None if (args.full or args.tiny) else 64.0
    elif args.numpy_max_mb <= 0:
        args.numpy_max_mb = None
    if args.copy_mb is None:
        args.copy_mb = 32 if args.tiny else 256
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        import poolkit  # noqa: PLC0415
    except ImportError as exc:
        print(f"error: poolkit is not importable ({exc}); install it first: "
              f"pip install -e '.[bench]'", file=sys.stderr)
        return 2
    cases = select_cases(args)
    if args.list:
        for c in cases:
            print(c.label())
        print(f"{len(cases)} cases")
        return 0
    if not cases:
        print("error: the filters select no case (see --list)", file=sys.stderr)
        return 2
    available = [name for name in ("stochastic_pool2d", "global_avg_pool2d",
                                   "global_max_pool2d", "adaptive_avg_pool2d")
                 if not hasattr(poolkit, name)]
    if available:
        note(f"poolkit {poolkit.__version__} has no {', '.join(available)}: those rows are "
             f"skipped")
    if not args.no_torch:
        C.torch_module()  # import before threadpool_info so its OpenMP runtime is listed
    if not args.no_numpy and args.numpy_max_mb is not None and any(
            np.prod(c.shape) * np.dtype(c.dtype).itemsize / 2**20 > args.numpy_max_mb
            for c in cases):
        note(f"the NumPy baseline is timed on inputs up to {args.numpy_max_mb:g} MiB here "
             f"(--full or --numpy-max-mb 0 for all)")
    info = machine_info(poolkit, [c.threads for c in cases])
    bw = C.copy_bandwidth(args.copy_mb, repeats=7 if not args.tiny else 3)
    print_machine(info, bw)
    sys.stdout.flush()
    n_notes = len(NOTES)
    rows = run_cases(cases, args, bw, poolkit)
    targets = evaluate_targets(rows)
    elapsed = time.perf_counter() - started
    info["load_average_end"] = _loadavg()
    cpu = _cpu_seconds()
    print_results(rows, targets, markdown=args.markdown)
    for n in NOTES[n_notes:]:
        print(f"note: {n}")
    which = "full" if args.full else "tiny" if args.tiny else "quick"
    print(f"\n{len(cases)} cases in {elapsed:.0f} s wall, {cpu:.0f} s CPU ({which} set, "
          f"{args.repeats} repeats or 50 ms of calls after a warm-up; times are medians)")
    if args.json:
        doc = {
            "schema": 1,
            "machine": info,
            "config": {
                "set": "full" if args.full else "tiny" if args.tiny else "quick",
                "repeats": args.repeats,
                "baseline_budget_s": args.budget,
                "single_shot_over_s": args.single_shot,
                "numpy_max_mb": args.numpy_max_mb,
                "argv": sys.argv[1:] if argv is None else list(argv),
                "elapsed_s": elapsed,
                "cpu_s": cpu,
            },
            "copy": bw,
            "rows": rows,
            "targets": targets,
            "notes": NOTES,
        }
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(_jsonable(doc), f, indent=1)
        print(f"wrote {args.json}")
    if args.plot and plot(rows, args.plot):
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
