"""Helpers of the service tests: settings, training parameters, a live uvicorn server."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from exocube.config import Settings
from exocube.params import MODEL_INPUT_NAMES_V1

API_KEY = "test-key-1"


def settings_for(tmp: Path, **kwargs: Any) -> Settings:
    return Settings(home=tmp / "home", **kwargs)


def training_params(app: FastAPI, k: int = 0) -> dict[str, float]:
    """The k-th training run's parameters of the model serving datacube requests."""
    spec = app.state.service.surrogate.models["datacube"].task.hparams.data_spec
    row = spec["params"]["runs"].index(spec["split"]["train"][k])
    return dict(zip(MODEL_INPUT_NAMES_V1, spec["params"]["values"][row], strict=True))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """A real uvicorn server for ``app`` in a thread on a free loopback port."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.url}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


