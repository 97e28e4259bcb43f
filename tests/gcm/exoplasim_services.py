"""Skip, or fail under EXOCUBE_REQUIRE_SERVICES=1, when ExoPlaSim's system tools or SLURM
are missing: the rule of ``service_unavailable`` in tests/conftest.py, which these modules
cannot import by name (``conftest`` is ambiguous once tests/cubes is collected too)."""

from __future__ import annotations

import os

import pytest


def service_unavailable(name: str, reason: str) -> None:
    msg = f"{name} unreachable: {reason}"
    if os.environ.get("EXOCUBE_REQUIRE_SERVICES") == "1":
        pytest.fail(msg + " (EXOCUBE_REQUIRE_SERVICES=1 makes this a failure)")
    pytest.skip(msg)
