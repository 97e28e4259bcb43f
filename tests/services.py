"""Tests that need a service or a system tool skip with the reason when it is missing,
except under ``EXOCUBE_REQUIRE_SERVICES=1`` (set by ``.ci/run``), where they fail.

A plain module, not a conftest: ``from conftest import ...`` is ambiguous once several
test folders with their own conftest are collected in one run.
"""

from __future__ import annotations

import os

import pytest

REQUIRE_SERVICES = os.environ.get("EXOCUBE_REQUIRE_SERVICES") == "1"


def service_unavailable(name: str, reason: str) -> None:
    """Skip, or fail under EXOCUBE_REQUIRE_SERVICES=1, because ``name`` is unreachable."""
    msg = f"{name} unreachable: {reason}"
    if REQUIRE_SERVICES:
        pytest.fail(msg + " (EXOCUBE_REQUIRE_SERVICES=1 makes this a failure)")
    pytest.skip(msg)
