"""Fixtures of the surrogate tests: the session's tiny trained model."""

from __future__ import annotations

import pytest
import torch
from tiny_model import (
    TinyEnsemble,
    TinyModel,
    TinyStdHead,
    build_tiny_ensemble,
    build_tiny_model,
    build_tiny_std_head,
)


@pytest.fixture(autouse=True)
def _threads() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, dask_client: object) -> TinyModel:
    return build_tiny_model(tmp_path_factory, dask_client)


@pytest.fixture(scope="session")
def tiny_ensemble(tmp_path_factory: pytest.TempPathFactory, tiny_model: TinyModel
                  ) -> TinyEnsemble:
    return build_tiny_ensemble(tmp_path_factory, tiny_model)


@pytest.fixture(scope="session")
def tiny_std_head(tmp_path_factory: pytest.TempPathFactory, tiny_model: TinyModel
                  ) -> TinyStdHead:
    return build_tiny_std_head(tmp_path_factory, tiny_model)
