#!/usr/bin/env bash
# Run the test suite against poolkit built with AddressSanitizer (gcc, Linux).
#
# The kernels run with Cython's bounds checks off; this catches what those checks cannot: an
# out-of-bounds read or write, a use after free or a double free anywhere in the compiled
# code (the C helpers in pyx/*.pxd included), at the -O3 of a release build.
#
#   tools/memcheck.sh                          # the whole suite
#   tools/memcheck.sh tests/test_fuzz.py -x    # some of it
#   POOLKIT_FUZZ_EXAMPLES=200 tools/memcheck.sh tests/test_fuzz.py   # a longer fuzz
#   KEEP=1 tools/memcheck.sh                   # keep the temporary folder (path printed)
#
# How: a copy of the working tree (tracked and untracked-but-not-ignored files) is installed
# into a fresh virtual environment with CC and LDSHARED carrying -fsanitize=address (setup.py
# adds its own flags through extra_compile_args; CFLAGS would replace Python's). Python itself
# is not instrumented, so the ASan runtime is preloaded (LD_PRELOAD) into the test process;
# leak detection is off (CPython's interned objects and caches would drown it; tests/
# test_leaks.py measures leaks instead), and allocations that fail return NULL, so that the
# tests of enormous requests see NumPy's MemoryError instead of an ASan abort. Any error
# ASan finds aborts the run with its report on stderr and a non-zero exit status.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
cc=${CC_BASE:-gcc}
start=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/tmp}/poolkit-asan.XXXXXX")
if [[ "${KEEP:-0}" == "1" ]]; then
    echo "keeping $work"
else
    trap 'rm -rf "$work"' EXIT
fi

libasan=$("$cc" -print-file-name=libasan.so)
if [[ ! -e "$libasan" ]]; then
    echo "memcheck: $cc has no libasan.so (install libasan / gcc's sanitizer runtime)" >&2
    exit 2
fi

# ---- a copy of the working tree
# shellcheck source=tools/copy_worktree.sh
. "$repo/tools/copy_worktree.sh"
copy_worktree "$repo" "$work/src"

# ---- build with AddressSanitizer
"$python" -m venv "$work/venv"
# shellcheck disable=SC1091
. "$work/venv/bin/activate"
echo "=== build with -fsanitize=address ==="
CC="$cc -fsanitize=address -fno-omit-frame-pointer -g" \
LDSHARED="$cc -shared -fsanitize=address" \
    python -m pip install --quiet "$work/src[test]"
build_done=$(date +%s)

# libstdc++ too: ASan intercepts __cxa_throw and aborts ("real___cxa_throw != 0") when a C++
# extension (matplotlib's ft2font, imported by the benchmark tests) throws, unless libstdc++
# was loaded before it.
libstdcxx=$("$cc" -print-file-name=libstdc++.so)
export LD_PRELOAD="$libasan${libstdcxx:+:$libstdcxx}${LD_PRELOAD:+:$LD_PRELOAD}"
# log_path: pytest captures file descriptor 2 while a test runs, and a report written there
# would be lost with the process; ASan writes it to $work/asan.<pid> instead (printed below).
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:abort_on_error=0:halt_on_error=1:exitcode=86:detect_stack_use_after_return=0:log_path=$work/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

python - "$work/venv" <<'EOF'
import glob, os, sys
import poolkit
venv = os.path.realpath(sys.argv[1])
where = os.path.realpath(os.path.dirname(poolkit.__file__))
assert where.startswith(venv), f"poolkit imported from {where}, not from the venv {venv}"
so = glob.glob(os.path.join(where, "_max_pool*.so"))[0]
with open(so, "rb") as fh:
    assert b"__asan_" in fh.read(), f"{so} is not instrumented"
print(f"poolkit {poolkit.__version__} from {where}: AddressSanitizer instrumented")
EOF

# ---- the canary: a kernel driven out of bounds on purpose (raw kernel, index check off) must
# be caught, or this run proves nothing
canary=0
python - <<'EOF' >"$work/canary.log" 2>&1 || canary=$?
import numpy as np
from poolkit import _max_pool
g = np.ones((1, 1, 1))
idx = np.array([[[4 + 64]]], dtype=np.int64)   # past the end of a 2x2 plane
_max_pool.max_pool2d_backward(g, idx, np.zeros((1, 2, 2)), False, 1)
EOF
if [[ $canary != 86 ]] || ! cat "$work"/asan.* 2>/dev/null | grep -q "heap-buffer-overflow"; then
    cat "$work/canary.log" "$work"/asan.* >&2 2>/dev/null || true
    echo "memcheck: AddressSanitizer did not catch the canary overflow (exit $canary)" >&2
    exit 3
fi
echo "canary: AddressSanitizer caught a deliberate out-of-bounds access in a raw kernel"
rm -f "$work"/asan.*

echo "=== tests under AddressSanitizer ==="
cd "$work/src"
status=0
python -m pytest -p no:cacheprovider "$@" || status=$?
end=$(date +%s)
if compgen -G "$work/asan.*" >/dev/null; then
    # warnings too (an allocation refused on purpose by the tests of enormous requests:
    # "failed to allocate 0x... bytes"); an "ERROR:" report fails the run
    echo "=== AddressSanitizer output ===" >&2
    cat "$work"/asan.* >&2
    if cat "$work"/asan.* | grep -q "ERROR: AddressSanitizer"; then
        status=86
    fi
fi
if [[ $status == 86 ]]; then
    echo "=== AddressSanitizer found a memory error (report above) ===" >&2
fi
echo "=== memcheck: $((build_done - start)) s build, $((end - build_done)) s tests (exit $status) ==="
exit $status
