#!/usr/bin/env bash
# CI's packaging checks (issue 8), meant to be called from .ci/run *before* its final pytest,
# so that pytest's summary stays the last line of the run:
#   1. [tool.cibuildwheel] selects exactly the intended wheels on Linux, macOS and Windows;
#   2. one CPython's wheel built from the sdist, checked, auditwheel-repaired, installed in a
#      fresh venv and tested from outside the source tree (tools/build_wheels.py).
# POOLKIT_CI_WHEEL_PYTHON picks that CPython (default 3.11); needs PyPI access.
set -euo pipefail
cd "$(dirname "$0")/.."

# cibuildwheel needs Python >= 3.11: use python3 when it is new enough, else pyenv's 3.11+.
py=python3
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    py=$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[1-9]*/bin/python3 2>/dev/null | tail -1)
fi

echo "=== packaging: cibuildwheel build identifiers ==="
"$py" tools/check_build_identifiers.py --install

echo "=== packaging: sdist -> wheel -> auditwheel -> fresh venv -> tests ==="
out=$(mktemp -d)
"$py" tools/build_wheels.py --python "${POOLKIT_CI_WHEEL_PYTHON:-3.11}" --outdir "$out/wheelhouse"
rm -rf "$out"
