"""How many examples a wire property test draws: its own count, or the profile's under mutation.

An explicit ``@settings(max_examples=N)`` overrides any Hypothesis profile, so the property
tests here ask ``examples(N)``: N normally, the ``mutation`` profile's count (see
``tests/conftest.py``) when ``scripts/mutate.py`` runs the folder once per mutant.
"""

from __future__ import annotations

import os

from hypothesis import settings


def examples(count: int) -> int:
    """``count`` normally; the mutation profile's smaller count under ``make mutate``."""
    if os.environ.get("HYPOTHESIS_PROFILE") == "mutation":
        return min(count, settings.get_profile("mutation").max_examples)
    return count
