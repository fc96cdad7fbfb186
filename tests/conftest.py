"""Shared pytest configuration for the poolkit test suite.

Hypothesis profiles
-------------------
``ci`` (the default)
    About 60 examples per property, no deadline (the first call of a compiled
    kernel and the pure-Python reference are both slow enough to trip one).
``long``
    2000 examples per property, for a soak run before a release.

Select a profile with ``HYPOTHESIS_PROFILE=long python -m pytest tests`` or with
the option Hypothesis' own pytest plugin provides,
``python -m pytest tests --hypothesis-profile=long`` (the option wins).

Shared strategies and helpers live in ``tests/_strategies.py``. The suite runs
with ``--import-mode=importlib``, which does not put ``tests/`` on ``sys.path``,
so this file adds it once, before any test module is imported.
"""

import os
import sys

from hypothesis import HealthCheck, settings

_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

# Valid configurations are drawn and then filtered by asking the reference
# whether it raises; a small share is rejected, which is expected.
_COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    print_blob=True,
)
settings.register_profile("ci", max_examples=60, **_COMMON)
settings.register_profile("long", max_examples=2000, **_COMMON)
# The ``--hypothesis-profile`` option is applied later, in Hypothesis'
# pytest_configure hook, so it overrides this default.
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
