"""The root modules sit below every stage: importing one loads no stage package."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT_MODULES = ("config", "errors", "grid", "parallel", "params", "physics", "planet")
STAGES = ("acquire", "catalog", "cli", "cubes", "gcm", "ifu", "ml", "serve", "surrogate")
PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
print(json.dumps(sorted(m for m in sys.modules if m.startswith("exocube."))))
"""


def loaded_by(module: str) -> list[str]:
    """The exocube modules a fresh interpreter holds after importing ``module``."""
    out = subprocess.run([sys.executable, "-c", PROBE, module], capture_output=True,
                         text=True, check=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    return list(json.loads(out.stdout))


@pytest.mark.parametrize("name", ROOT_MODULES)
def test_a_root_module_imports_no_stage(name: str) -> None:
    stages = [m for m in loaded_by(f"exocube.{name}") if m.split(".")[1] in STAGES]
    assert stages == [], f"exocube.{name} imports the stage module(s) {stages}"


def test_the_probe_sees_a_stage_import() -> None:
    assert "exocube.acquire.options" in loaded_by("exocube.acquire.options")
