#!/usr/bin/env python3
"""Check that ``[tool.cibuildwheel]`` in pyproject.toml selects exactly the intended wheels.

Runs ``cibuildwheel --print-build-identifiers`` for each platform, once with the archs the
configuration lists and once per single arch (as each CI runner builds only its native arch),
and compares with the list below. This needs no container engine and no macOS or Windows
machine: printing identifiers only reads the configuration.

Usage::

    python tools/check_build_identifiers.py            # cibuildwheel must be importable
    python tools/check_build_identifiers.py --install  # pip-installs it into a temporary venv

cibuildwheel needs Python >= 3.11. Exit status 0 when every list matches, 1 otherwise.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# cibuildwheel 3 made PyPy opt-in and changed a few identifiers; 5 may change them again.
CIBUILDWHEEL_REQUIREMENT = "cibuildwheel>=3.0,<5"

PYTHONS = ("cp310", "cp311", "cp312", "cp313")
# platform -> {arch given to --archs: identifier suffix}
ARCHS = {
    "linux": {"x86_64": "manylinux_x86_64", "aarch64": "manylinux_aarch64"},
    "macos": {"x86_64": "macosx_x86_64", "arm64": "macosx_arm64"},
    "windows": {"AMD64": "win_amd64"},
}


def expected(platform: str, archs: list[str]) -> list[str]:
    return sorted(f"{py}-{ARCHS[platform][arch]}" for py in PYTHONS for arch in archs)


def cibuildwheel_python(install: bool, tmp: str) -> str:
    """An interpreter that can run ``-m cibuildwheel``."""
    try:
        import cibuildwheel  # noqa: F401  (only: is it importable?)

        return sys.executable
    except ImportError:
        if not install:
            sys.exit(
                "cibuildwheel is not installed here: pip install "
                f"'{CIBUILDWHEEL_REQUIREMENT}', or rerun with --install"
            )
    if sys.version_info < (3, 11):
        sys.exit("cibuildwheel needs Python >= 3.11; run this script with a newer Python")
    env_dir = Path(tmp) / "cibw-venv"
    venv.create(env_dir, with_pip=True)
    py = str(env_dir / ("Scripts" if os.name == "nt" else "bin") / "python")
    subprocess.run([py, "-m", "pip", "install", "--quiet", CIBUILDWHEEL_REQUIREMENT], check=True)
    return py


def print_identifiers(py: str, platform: str, archs: list[str] | None) -> list[str]:
    cmd = [py, "-m", "cibuildwheel", "--print-build-identifiers", "--platform", platform]
    if archs is not None:
        cmd += ["--archs", ",".join(archs)]
    # Only pyproject.toml may decide: drop any CIBW_* settings of the calling environment.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")}
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stdout}{result.stderr}")
    return sorted(line.strip() for line in result.stdout.splitlines() if line.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--install", action="store_true",
                        help=f"pip install {CIBUILDWHEEL_REQUIREMENT} into a temporary venv")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="poolkit-cibw-") as tmp:
        py = cibuildwheel_python(args.install, tmp)
        version = subprocess.run([py, "-c", "import cibuildwheel; print(cibuildwheel.__version__)"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        print(f"cibuildwheel {version}: build identifiers selected by pyproject.toml")
        failures = 0
        for platform, arch_map in ARCHS.items():
            runs = [(None, list(arch_map))] + [([a], [a]) for a in arch_map]
            for given, archs in runs:
                got = print_identifiers(py, platform, given)
                want = expected(platform, archs)
                label = f"--platform {platform} " + (
                    f"--archs {','.join(given)}" if given else "(archs from pyproject.toml)"
                )
                if got == want:
                    print(f"  ok  {label}: {' '.join(got)}")
                else:
                    failures += 1
                    print(f"  FAIL {label}")
                    print(f"       missing: {sorted(set(want) - set(got)) or '-'}")
                    print(f"       extra:   {sorted(set(got) - set(want)) or '-'}")
        total = sum(len(expected(p, list(a))) for p, a in ARCHS.items())
        if failures:
            print(f"{failures} identifier list(s) differ from the intended set")
            return 1
        print(f"all identifier lists match: {total} wheels in all")
        return 0


if __name__ == "__main__":
    sys.exit(main())
