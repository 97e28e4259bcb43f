"""Fixtures for cube-store tests: small contract files and a store directory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from builders import contract_file


@pytest.fixture
def make_runs(tmp_path: Path) -> Callable[..., list[str]]:
    """Write ``n`` contract files run<start>..run<start+n-1>; return their paths."""
    folder = tmp_path / "gcm"
    folder.mkdir(exist_ok=True)

    def make(n: int, start: int = 0, **kwargs: object) -> list[str]:
        return [str(contract_file(folder / f"run{i:03d}.nc", f"run{i:03d}", seed=i, **kwargs))
                for i in range(start, start + n)]

    return make


@pytest.fixture
def store_dir(tmp_path: Path) -> str:
    return str(tmp_path / "cube.zarr")
