"""asv benchmark suites for poolkit (``asv run`` from ``benchmarks/``; see ../README.md).

The cases come from ``benchmarks/cases.py``, the table the runner ``benchmarks/run.py`` uses.
"""
