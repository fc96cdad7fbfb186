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


def test_fast_calls_are_repeated_for_min_time():
    # measure: the warm-up call, then repeats calls; fast calls get more, up to min_time
    # seconds' worth (max_repeats at most); slow ones stop at max_time.
    sys.path.insert(0, str(RUNNER.parent))
    try:
        import cases as C
    finally:
        sys.path.pop(0)
    count = [0]

    def call():
        count[0] += 1
        return count[0]

    tm = C.measure(call, repeats=4, min_time=1.0, max_repeats=50, keep_result=True)
    assert len(tm.times) == 50 and count[0] == 51 and tm.result == 1
    count[0] = 0
    tm = C.measure(call, repeats=4)
    assert len(tm.times) == 4 and count[0] == 5


def test_small_rows_repeat_fast_calls(tmp_path):
    # A 1x64x56x56 row's poolkit calls take tens of microseconds: they are repeated for
    # 50 ms (at most 400 times), far more than --tiny's 2 repeats.
    out = tmp_path / "bench.json"
    run_runner(["--ops", "max_fwd", "--windows", "2x2s2", "--shapes", "1x64x56x56",
                "--threads", "1", "--no-numpy", "--no-reference", "--json", str(out)],
               tmp_path)
    rows = [r for r in json.loads(out.read_text())["rows"] if not r["reference_row"]]
    assert rows
    for row in rows:
        assert row["times"]["poolkit"]["n"] > 2, row["label"]
        assert row["times"]["poolkit_out"]["n"] > 2, row["label"]
