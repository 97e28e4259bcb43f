"""Schemathesis against a live server: every check it has, a fixed seed, few examples.

The server has API keys (so the authentication checks apply) and no training-hull
limit (a schema-valid planet far from the training runs would otherwise be a 422
the schema cannot predict). The one cross-field rule the schema cannot state is
filtered in ``schemathesis_hooks.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from serve_helpers import API_KEY, LiveServer, settings_for
from tiny_model import TinyModel

from exocube.serve import create_app

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def keyed_server(tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[LiveServer]:
    settings = settings_for(tmp_path_factory.mktemp("st"), api_keys=[API_KEY],
                            serve={"max_hull_distance": 1e9})
    with LiveServer(create_app(settings, database_url=tiny_model.database_url)) as server:
        yield server


def run_schemathesis(url: str, tmp: Path, seed: int, examples: int) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
           "-H", f"X-API-Key: {API_KEY}", "--checks", "all", "--seed", str(seed),
           "--max-examples", str(examples), "--workers", "1", "--request-timeout", "60",
           "--suppress-health-check", "all"]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "schemathesis_hooks", "HOME": str(tmp),
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)


def test_schemathesis_finds_no_failure(keyed_server: LiveServer, tmp_path: Path) -> None:
    """Examples, coverage and fuzzing phases, all checks: no 5xx, no undocumented status,
    no schema-invalid request accepted, no schema-valid one refused, answers match their
    schemas, keys enforced."""
    r = run_schemathesis(keyed_server.url, tmp_path, seed=1, examples=10)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
    assert "No issues found" in r.stdout
    spec = httpx.get(f"{keyed_server.url}/openapi.json").json()
    operations = sum(len(methods) for methods in spec["paths"].values())
    assert operations >= 7 and f"Tested: {operations}" in r.stdout
