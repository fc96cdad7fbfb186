#!/usr/bin/env python3
"""Check the members of a poolkit sdist: Cython sources in, generated and built files out.

Usage::

    python tools/check_sdist.py dist/poolkit-0.1.0.tar.gz [--list]

The sdist must hold every ``pyx/*.pyx`` and ``pyx/*.pxd`` of the source tree it was made from
(when run from a checkout, the tree around this script), the facade, the stubs and
``py.typed``, the build files and the tests; it must hold no generated C/C++, no compiled
object or extension, no ``build/`` tree and no annotation HTML. ``tools/build_wheels.py`` runs
it on every sdist it builds, and then builds every wheel from that sdist alone.
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
import tarfile
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parent.parent

REQUIRED = [
    "PKG-INFO",
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "README.md",
    "LICENSE",
    "src/poolkit/__init__.py",
    "src/poolkit/_version.py",
    "src/poolkit/py.typed",
    "pyx/_typedefs.pxd",
    "pyx/_openmp_helpers.pxd",
    "tests/conftest.py",
]
FORBIDDEN = ["*.c", "*.cpp", "*.so", "*.pyd", "*.o", "*.obj", "*.dll", "*.dylib", "*.html",
             "*.pyc", "build/*", "*/build/*"]


def members(sdist: Path) -> list[str]:
    """Member paths relative to the sdist's top folder (``poolkit-X.Y.Z/``)."""
    with tarfile.open(sdist) as tar:
        names = [m.name for m in tar.getmembers() if m.isfile()]
    return sorted(str(PurePosixPath(*PurePosixPath(n).parts[1:])) for n in names)


def problems(names: list[str], source_root: Path | None = ROOT) -> list[str]:
    """What is wrong with an sdist holding ``names``; empty when it is fine."""
    found = set(names)
    out = [f"missing {req}" for req in REQUIRED if req not in found]
    for pattern in FORBIDDEN:
        out += [f"should not ship {n} (matches {pattern})" for n in names
                if fnmatch.fnmatch(n, pattern)]
    if source_root is not None and (source_root / "pyx").is_dir():
        sources = [*(source_root / "pyx").glob("*.pyx"), *(source_root / "pyx").glob("*.pxd")]
        for path in sorted(sources):
            rel = f"pyx/{path.name}"
            if rel not in found:
                out.append(f"missing {rel} (present in {source_root / 'pyx'})")
        # every extension module has its stub (they are built from pyx/<name>.pyx)
        for path in sorted((source_root / "pyx").glob("*.pyx")):
            stub = f"src/poolkit/{path.stem}.pyi"
            if stub not in found:
                out.append(f"missing {stub} (the stub of poolkit.{path.stem})")
    if not any(n.startswith("pyx/") and n.endswith(".pyx") for n in names):
        out.append("no pyx/*.pyx at all")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sdist", type=Path)
    parser.add_argument("--list", action="store_true", help="print every member")
    parser.add_argument("--source-root", type=Path, default=ROOT,
                        help="tree whose pyx/ the sdist must match (default: this checkout)")
    args = parser.parse_args(argv)

    names = members(args.sdist)
    if args.list:
        print("\n".join(names))
    bad = problems(names, args.source_root)
    pyx = [n for n in names if n.startswith("pyx/")]
    print(f"{args.sdist.name}: {len(names)} files, {len(pyx)} in pyx/ "
          f"({', '.join(Path(n).name for n in pyx)})")
    for p in bad:
        print(f"  FAIL {p}")
    if not bad:
        print("  ok: Cython sources and stubs present, no generated C or build products")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
