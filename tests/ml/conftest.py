"""Fixtures of the surrogate tests: tiny stores and a datamodule over them."""

from __future__ import annotations

import pytest
import torch
from ml_store import make_store


@pytest.fixture(autouse=True)
def _seed_and_threads() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_store(tmp_path_factory.mktemp("stores") / "tiny.zarr",
                      quarantined=("run-0003",))
