"""The batcher's bounded FIFO queue on a live server: a full queue answers 503 with
Retry-After, and the jobs of clients that went away are withdrawn, not computed.

The model is held busy with its own lock (the real ``threading.Lock`` every model call
takes), so requests queue up deterministically behind one call in progress; datacube
requests only, since their model calls run in a worker thread (a scalar call would block
the event loop on the held lock)."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from serve_helpers import LiveServer, settings_for, training_params
from tiny_model import TinyModel

from exocube.serve import create_app
from exocube.serve.batching import BatchStats, MicroBatcher


def wait_until(cond: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.01)


@contextmanager
def server(tiny_model: TinyModel, tmp: Path, **serve: object) -> Iterator[LiveServer]:
    app = create_app(settings_for(tmp, serve={"cache_size": 0, **serve}),
                     database_url=tiny_model.database_url)
    with LiveServer(app) as live:
        yield live


@contextmanager
def model_held(live: LiveServer, pool: ThreadPoolExecutor, body: dict[str, float]
               ) -> Iterator[Future[httpx.Response]]:
    """One datacube request whose model call is in progress and blocked until the block
    ends; yields that request's response future."""
    state = live.app.state.service
    lock = state.surrogate._lock
    calls = state.batcher.stats.calls
    lock.acquire()
    try:
        first = pool.submit(post, live.url, body)
        wait_until(lambda: state.batcher.stats.calls == calls + 1, "the first call started")
        yield first
    finally:
        lock.release()


def post(url: str, body: dict[str, float], timeout: float = 60) -> httpx.Response:
    with httpx.Client(base_url=url, timeout=timeout) as http:
        return http.post("/predict/datacube", json=body)


def raw_request(port: int, body: dict[str, float]) -> socket.socket:
    """A datacube request sent on a plain socket, left waiting for its answer."""
    data = json.dumps(body).encode()
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /predict/datacube HTTP/1.1\r\nHost: 127.0.0.1\r\n"
              b"Content-Type: application/json\r\nContent-Length: "
              + str(len(data)).encode() + b"\r\n\r\n" + data)
    return s


def variant(base: dict[str, float], i: int) -> dict[str, float]:
    return {**base, "pco2_bar": base["pco2_bar"] * (1.0 + 1e-4 * i)}


def test_abandoned_requests_are_not_computed(tiny_model: TinyModel, tmp_path: Path) -> None:
    """32 clients that leave while queued cost no model time: the next request is the
    only one computed after the call in progress."""
    with server(tiny_model, tmp_path) as live, ThreadPoolExecutor(2) as pool:
        batcher: MicroBatcher = live.app.state.service.batcher
        base = training_params(live.app)
        with model_held(live, pool, base) as first:
            before = BatchStats(**vars(batcher.stats))
            sockets = [raw_request(live.port, variant(base, i + 1)) for i in range(32)]
            wait_until(lambda: batcher.pending == 32, "32 requests wait in the queue")
            for s in sockets:
                s.close()
            wait_until(lambda: batcher.pending == 0, "the departed clients' jobs left")
        assert first.result().status_code == 200
        nxt = post(live.url, variant(base, 100))
        assert nxt.status_code == 200
        assert nxt.json()["params"]["pco2_bar"] == pytest.approx(variant(base, 100)["pco2_bar"])
        stats = batcher.stats
        # Counted when a call begins, so "before" holds the first request already: after
        # it, only the next request was computed, in its own call.
        assert (stats.requests - before.requests, stats.calls - before.calls) == (1, 1)
        assert stats.dropped - before.dropped == 32


def test_full_queue_answers_503_with_retry_after(tiny_model: TinyModel,
                                                 tmp_path: Path) -> None:
    with server(tiny_model, tmp_path, max_queue=4) as live, ThreadPoolExecutor(6) as pool:
        batcher: MicroBatcher = live.app.state.service.batcher
        base = training_params(live.app)
        with model_held(live, pool, base) as first:
            queued = [pool.submit(post, live.url, variant(base, i + 1)) for i in range(4)]
            wait_until(lambda: batcher.pending == 4, "4 requests wait in the queue")
            refused = post(live.url, variant(base, 10), timeout=10)
            assert refused.status_code == 503
            assert int(refused.headers["Retry-After"]) >= 1
            assert "serve.max_queue" in refused.json()["detail"]
            assert batcher.stats.rejected == 1
        assert first.result().status_code == 200
        assert [f.result().status_code for f in queued] == [200] * 4
        assert post(live.url, variant(base, 11)).status_code == 200  # room again


def test_field_requests_are_batched_by_max_batch_fields(
        tiny_model: TinyModel, tmp_path: Path) -> None:
    """10 queued datacube requests, at most 4 per call: calls of 4, 4 and 2, in order."""
    with server(tiny_model, tmp_path, max_batch_fields=4) as live, \
            ThreadPoolExecutor(11) as pool:
        batcher: MicroBatcher = live.app.state.service.batcher
        base = training_params(live.app)
        with model_held(live, pool, base) as first:
            before = BatchStats(**{**vars(batcher.stats), "sizes": dict(batcher.stats.sizes)})
            queued = [pool.submit(post, live.url, variant(base, i + 1)) for i in range(10)]
            wait_until(lambda: batcher.pending == 10, "10 requests wait in the queue")
        answers = [f.result() for f in queued]
        assert first.result().status_code == 200
        assert [a.status_code for a in answers] == [200] * 10
        assert [a.json()["params"]["pco2_bar"] for a in answers] == pytest.approx(
            [variant(base, i + 1)["pco2_bar"] for i in range(10)])
        assert batcher.stats.calls - before.calls == 3
        new_sizes = {k: v - before.sizes.get(k, 0) for k, v in batcher.stats.sizes.items()}
        assert {k: v for k, v in new_sizes.items() if v} == {4: 2, 2: 1}
