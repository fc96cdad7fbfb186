#!/usr/bin/env bash
# Print the macOS deployment target that matches the OpenMP runtime poolkit's wheels bundle.
#
# Used by [tool.cibuildwheel.macos] in pyproject.toml (MACOSX_DEPLOYMENT_TARGET). Homebrew's
# libomp is built for the macOS release of the machine that built the bottle, and delocate
# refuses (or, in old versions, silently ships) a bundled library whose minimum macOS is newer
# than the wheel's tag. So the wheel targets exactly the version libomp.dylib was built for:
# the `minos` of its LC_BUILD_VERSION load command (or `version` of the older
# LC_VERSION_MIN_MACOSX). Without libomp yet (cibuildwheel evaluates the environment once
# before `before-all` installs it) it falls back to this machine's macOS release, which is
# what a Homebrew bottle for this machine targets.
#
# OPENMP_PREFIX (as setup.py reads it) overrides `brew --prefix libomp`.
set -euo pipefail

prefix=${OPENMP_PREFIX:-}
if [[ -z $prefix ]] && command -v brew >/dev/null 2>&1; then
    prefix=$(brew --prefix libomp 2>/dev/null || true)
fi
lib="$prefix/lib/libomp.dylib"

target=""
if [[ -n $prefix && -f $lib ]] && command -v otool >/dev/null 2>&1; then
    target=$(otool -l "$lib" | awk '
        $1 == "cmd" { cmd = $2 }
        cmd == "LC_BUILD_VERSION" && $1 == "minos" { print $2; exit }
        cmd == "LC_VERSION_MIN_MACOSX" && $1 == "version" { print $2; exit }
    ')
fi
if [[ -z $target ]]; then
    target=$(sw_vers -productVersion 2>/dev/null | cut -d. -f1)
    [[ -n $target ]] || { echo "libomp_deployment_target.sh: not on macOS?" >&2; exit 1; }
    target="$target.0"
fi
# "14" -> "14.0"; "10.13.4" -> "10.13"
case $target in
    *.*.*) target=${target%.*} ;;
    *.*) ;;
    *) target="$target.0" ;;
esac
echo "$target"
