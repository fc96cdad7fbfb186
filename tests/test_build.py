"""The build: OpenMP must not have been lost silently; show_config reports it."""

import os

import pytest

import poolkit


def test_openmp_parallelism_enabled():
    """Fails when the installed build is serial (the OpenMP probe fell back).

    Set POOLKIT_SKIP_CHECK_OPENMP=1 to skip, for builds that are serial on
    purpose (as scikit-learn's SKLEARN_SKIP_OPENMP_TEST).
    """
    if os.environ.get("POOLKIT_SKIP_CHECK_OPENMP", "0") not in ("", "0"):
        pytest.skip("POOLKIT_SKIP_CHECK_OPENMP is set")
    enabled = poolkit.openmp_enabled()
    assert isinstance(enabled, bool)
    assert enabled, (
        "poolkit was built without OpenMP support: its kernels run on one thread. "
        "Rebuild with an OpenMP-capable compiler, or set POOLKIT_SKIP_CHECK_OPENMP=1 "
        "if the serial build is intended."
    )


def test_version_is_a_string():
    assert isinstance(poolkit.__version__, str) and poolkit.__version__


def test_show_config_prints_version_and_openmp(capsys):
    assert poolkit.show_config() is None
    printed = capsys.readouterr().out
    assert poolkit.__version__ in printed
    assert "OpenMP" in printed
