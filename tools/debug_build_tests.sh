#!/usr/bin/env bash
# Run the test suite against a build with Cython's bounds, wraparound and initialisation
# checks turned back on (POOLKIT_CYTHON_DEBUG=1, see setup.py).
#
# The build happens in a fresh virtual environment, from a copy of this working tree (the
# files git tracks or would track: no build/ folder, no in-place .so files), so that neither
# a stale build/ nor the editable install of a developer can leak into it. An out-of-bounds
# index in a kernel then raises IndexError in the test that caused it instead of corrupting
# memory silently.
#
#   tools/debug_build_tests.sh                 # the whole suite (pyproject.toml's addopts)
#   tools/debug_build_tests.sh tests/test_fuzz.py -x -s
#   KEEP=1 tools/debug_build_tests.sh          # keep the temporary folder (path printed)
#
# Extras installed: .[test] (PyTorch's parity tests skip without PyTorch). pip uses its usual
# configuration and index; the build runs in pip's isolated build environment.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
start=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/poolkit-debug.XXXXXX")
if [[ "${KEEP:-0}" == "1" ]]; then
    echo "keeping $work"
else
    trap 'rm -rf "$work"' EXIT
fi

# ---- a copy of the working tree (tracked and untracked-but-not-ignored files that exist)
# shellcheck source=tools/copy_worktree.sh
. "$repo/tools/copy_worktree.sh"
copy_worktree "$repo" "$work/src"

# ---- a fresh virtual environment with the debug build
"$python" -m venv "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"
echo "=== build with POOLKIT_CYTHON_DEBUG=1 ==="
POOLKIT_CYTHON_DEBUG=1 python -m pip install --quiet "$work/src[test]"
build_done=$(date +%s)

# ---- make sure the suite will test this build, and that it is the debug one
python - "$work/venv" <<'EOF'
import glob, os, sys
import poolkit
venv = os.path.realpath(sys.argv[1])
where = os.path.realpath(os.path.dirname(poolkit.__file__))
assert where.startswith(venv), f"poolkit imported from {where}, not from the venv {venv}"
sos = glob.glob(os.path.join(where, "_max_pool*.so")) + glob.glob(os.path.join(where, "_max_pool*.pyd"))
assert sos, "no compiled _max_pool module"
with open(sos[0], "rb") as fh:
    data = fh.read()
# Cython's bounds-check error message is compiled in only when boundscheck is on.
assert b"Out of bounds on buffer access" in data, "not a POOLKIT_CYTHON_DEBUG=1 build"
print(f"poolkit {poolkit.__version__} from {where}: bounds checks compiled in")
poolkit.show_config()
EOF

echo "=== tests against the debug build ==="
cd "$work/src"
status=0
python -m pytest "$@" || status=$?
end=$(date +%s)
echo "=== debug build: $((build_done - start)) s build, $((end - build_done)) s tests, $((end - start)) s in all (exit $status) ==="
exit $status
