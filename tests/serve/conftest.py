"""Fixtures of the service tests: the session's tiny model, an in-process client and a
real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from fastapi import FastAPI
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "surrogate"))

from serve_helpers import LiveServer, settings_for
from tiny_model import TinyEnsemble, TinyModel, build_tiny_ensemble, build_tiny_model

from exocube.serve import create_app
from exocube.surrogate import ModelChoice


@pytest.fixture(autouse=True)
def _threads() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory, dask_client: object) -> TinyModel:
    return build_tiny_model(tmp_path_factory, dask_client)


@pytest.fixture(scope="module")
def app(tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    """An app without API keys over the tiny model's catalogue."""
    return create_app(settings_for(tmp_path_factory.mktemp("app")),
                      database_url=tiny_model.database_url)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def live_server(tiny_model: TinyModel, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[LiveServer]:
    """A live server whose batcher waits up to 20 ms for requests to join a batch."""
    app = create_app(settings_for(tmp_path_factory.mktemp("live"),
                                  serve={"max_wait_ms": 20.0}),
                     database_url=tiny_model.database_url)
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="session")
def tiny_ensemble(tmp_path_factory: pytest.TempPathFactory, tiny_model: TinyModel
                  ) -> TinyEnsemble:
    return build_tiny_ensemble(tmp_path_factory, tiny_model)


@pytest.fixture(scope="module")
def ensemble_client(tiny_ensemble: TinyEnsemble, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[TestClient]:
    """A client of an app answering with the tiny ensemble."""
    app = create_app(settings_for(tmp_path_factory.mktemp("ens")),
                     database_url=tiny_ensemble.database_url,
                     choice=ModelChoice("model", str(tiny_ensemble.ensemble_id)))
    with TestClient(app) as c:
        yield c
