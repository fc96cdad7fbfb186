"""Smoke test of the benchmark harness: ``benchmarks/run.py --tiny`` in a subprocess.

It checks the JSON the runner writes (machine information, one row per case with positive
times and roofline figures, poolkit agreeing with the other implementations), and that missing
optional dependencies (PyTorch, tqdm, matplotlib, threadpoolctl) are one-line notes, never a
traceback. The runner lives in the source tree, not in the installed package: the test is
skipped where ``benchmarks/`` is absent.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"

pytestmark = pytest.mark.skipif(not RUNNER.exists(), reason="benchmarks/run.py not present")

# Ops the harness must always be able to run (the others are skipped with a note until poolkit
# has them).
CORE_OPS = {"max_fwd", "max_bwd", "avg_fwd", "avg_bwd"}


def run_runner(args, tmp_path, env=None, timeout=300):
    cmd = [sys.executable, str(RUNNER), "--tiny", "--no-progress", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, f"runner failed:\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return proc


def positive(value):
    return isinstance(value, (int, float)) and value > 0


def test_tiny_run_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    args = ["--json", str(out)]
    try:
        import matplotlib  # noqa: F401

        png = tmp_path / "bench.png"
        args += ["--plot", str(png)]
    except ImportError:
        png = None
    proc = run_runner(args, tmp_path)
    doc = json.loads(out.read_text())

    # Machine information, printed first and kept in the JSON.
    assert proc.stdout.lstrip().startswith("poolkit benchmark")
    machine = doc["machine"]
    for key in ("cpu_model", "logical_cpus", "usable_cpus", "threads_used", "openmp",
                "poolkit", "numpy", "torch", "threadpool_info", "date"):
        assert key in machine, key
    assert isinstance(machine["openmp"], bool)
    assert machine["cpu_model"]
    assert machine["threads_used"] and all(isinstance(t, int) and t >= 1
                                           for t in machine["threads_used"])
    assert positive(doc["copy"]["bandwidth_Bps"])
    assert doc["config"]["set"] == "tiny"

    rows = doc["rows"]
    assert rows
    ran = [r for r in rows if not r["skipped"]]
    assert CORE_OPS <= {r["op"] for r in ran}
    assert any(r["reference_row"] for r in ran), "no rows on the reference shape"
    for r in rows:
        assert r["op"] and r["dtype"] in ("float32", "float64")
        assert len(r["shape"]) == 4 and all(isinstance(v, int) for v in r["shape"])
        assert isinstance(r["threads"], int) and r["threads"] >= 1
    for r in ran:
        label = r["label"]
        assert positive(r["poolkit_s"]), label
        assert positive(r["bytes_moved"]), label
        for key in ("roofline_s", "time_over_roofline", "roofline_share", "achieved_GBps"):
            assert positive(r[key]), (label, key)
        assert r["match"] is not False, f"{label}: poolkit and {r['match_against']} disagree"
        if r["torch_s"] is not None:
            assert positive(r["speedup_torch"]), label
        if r["reference_row"] and r["reference_s"] is not None:
            assert positive(r["speedup_reference"]), label
    # The core ops have a poolkit out= time (what the roofline uses) and a NumPy baseline.
    for r in ran:
        if r["op"] in CORE_OPS:
            assert positive(r["poolkit_out_s"]), r["label"]
            assert r["roofline_from"] == "poolkit_out", r["label"]
            assert positive(r["numpy_s"]), r["label"]
    if png is not None:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_optional_dependencies_are_notes(tmp_path):
    """With torch, tqdm, matplotlib and threadpoolctl unimportable the runner still runs."""
    blocker = tmp_path / "blocked"
    for name in ("torch", "tqdm", "matplotlib", "threadpoolctl"):
        pkg = blocker / name
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text(f"raise ImportError('{name} hidden by the test')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(blocker)] + [p for p in
                                         env.get("PYTHONPATH", "").split(os.pathsep) if p])
    out = tmp_path / "bench.json"
    proc = run_runner(["--ops", "max_fwd", "--no-reference-rows", "--json", str(out),
                       "--plot", str(tmp_path / "bench.png")], tmp_path, env=env)
    text = proc.stdout + proc.stderr
    assert "PyTorch not importable" in text
    assert "threadpoolctl not installed" in text
    assert "matplotlib not installed" in text
    doc = json.loads(out.read_text())
    assert doc["machine"]["torch"] is None
    rows = [r for r in doc["rows"] if not r["skipped"]]
    assert rows and all(r["torch_s"] is None and positive(r["poolkit_s"]) for r in rows)


def test_rounds_time_each_call_once_per_round_and_ratios_pair_the_rounds():
    # measure_rounds: one warm-up call each, then rounds of one call of each; a call that
    # raises is reported, not timed; round_ratio pairs the i-th samples.
    sys.path.insert(0, str(RUNNER.parent))
    try:
        import cases as C
    finally:
        sys.path.pop(0)
    counts = {"a": 0, "b": 0}

    def call(name):
        def f():
            counts[name] += 1
            return name
        return f

    def broken():
        raise RuntimeError("no such op")

    timings, errors = C.measure_rounds({"a": call("a"), "b": call("b"), "x": broken},
                                       repeats=4, keep=("a",))
    assert counts == {"a": 5, "b": 5}            # warm-up + 4 rounds
    assert set(timings) == {"a", "b"} and list(errors) == ["x"]
    assert timings["a"].result == "a" and timings["b"].result is None
    assert len(timings["a"].times) == len(timings["b"].times) == 4
    timings["a"].times[:] = [1.0, 2.0, 3.0, 4.0]
    timings["b"].times[:] = [2.0, 2.0, 2.0, 40.0]
    # per-round ratios 0.5, 1, 1.5, 0.1: median 0.75 (the medians' ratio would be 1.25)
    assert C.round_ratio(timings, "a", "b") == pytest.approx(0.75)
    # Fast calls get more rounds, up to min_time seconds' worth (and max_rounds at most).
    timings, _ = C.measure_rounds({"a": call("a")}, repeats=4, min_time=1.0, max_rounds=50)
    assert len(timings["a"].times) == 50


def test_small_rows_time_poolkit_and_torch_in_rounds(tmp_path):
    # Rows moving under 64 MiB time poolkit, poolkit out= and PyTorch in rounds, as many as
    # fit in 50 ms; "vs torch" is then the median of per-round ratios.
    out = tmp_path / "bench.json"
    run_runner(["--ops", "max_fwd", "--windows", "2x2s2", "--shapes", "1x64x56x56",
                "--threads", "1", "--no-numpy", "--no-reference", "--json", str(out)],
               tmp_path)
    rows = [r for r in json.loads(out.read_text())["rows"] if not r["reference_row"]]
    assert rows
    for row in rows:
        rounds = row["rounds"]
        assert rounds["n"] > 2, row["label"]          # more than --tiny's 2 repeats
        assert row["times"]["poolkit"]["n"] == row["times"]["poolkit_out"]["n"] == rounds["n"]
        if row["torch_s"] is not None:
            assert row["speedup_torch"] == rounds["speedup_torch"]
