"""Fixtures of the surrogate tests: a tiny store made by the real ingest and validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from ml_store import fit_cli, make_store, write_run_files

from exocube.catalog import upgrade

QUARANTINED = "run-0003"


@pytest.fixture(autouse=True)
def _seed_and_threads() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def store_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A catalogue that outlives single tests: the tiny store's datasets and run scores."""
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'catalog.sqlite'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory, dask_client, store_db: str) -> str:
    """12 runs on an 8 x 16 x 6 grid, 2 time steps; run-0003 is broken and quarantined."""
    root = tmp_path_factory.mktemp("tiny")
    files = write_run_files(root / "gcm", 12, broken=(3,))
    return make_store(str(root / "cube.zarr"), files, dask_client, store_db)


@pytest.fixture(scope="session")
def trained(tiny_store: str, store_db: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fit")
    fit_cli(tiny_store, store_db, root)
    return root


