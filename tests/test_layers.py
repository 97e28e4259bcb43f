"""The layer map of docs/architecture.md, checked on the import graph.

The contracts are import-linter's, in ``[tool.importlinter]`` of pyproject.toml: a
``layers`` contract (stages import only stages below them; the root modules import no
stage) and one ``protected`` contract per stage (other stages import it only through
its package, i.e. the names its ``__init__`` exports). The second test proves that the
check can fail: a copy of the package with one forbidden import added is refused.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(src: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src), "COLUMNS": "200"}
    return subprocess.run([str(LINT), "--no-logo", "--no-cache"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def _copy_project(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "src" / "exocube", tmp_path / "src" / "exocube",
                    ignore=shutil.ignore_patterns("__pycache__", "*.csv"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_layer_contracts_hold() -> None:
    if not LINT.exists():
        pytest.fail(f"{LINT} is missing: install the dev extra (pip install -e '.[dev]')")
    done = _lint(ROOT / "src", ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("grid.py", "import exocube.serve", "Stages import only stages below them"),
    ("serve/main.py", "from exocube.surrogate import loading",
     "exocube.surrogate is imported"),
])
def test_a_forbidden_import_is_refused(tmp_path: Path, module: str, line: str,
                                       contract: str) -> None:
    project = _copy_project(tmp_path)
    path = project / "src" / "exocube" / module
    path.write_text(path.read_text() + f"\n{line}  # deliberately forbidden\n")
    done = _lint(project / "src", project)
    assert done.returncode != 0, done.stdout
    broken = [ln for ln in done.stdout.splitlines() if "BROKEN" in ln]
    assert any(contract in ln for ln in broken), done.stdout
