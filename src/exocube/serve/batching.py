"""Micro-batching: concurrent requests share one batched model call.

Requests wait in an asyncio queue. One worker takes the first, gathers
whatever else arrives within ``max_wait`` (up to ``max_batch`` requests),
groups them by mode and answers each group with one ``predict_many`` call:
field predictions in a worker thread, so the event loop keeps accepting
requests meanwhile; scalar ones (the small scalar head) on the loop itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from exocube.errors import ExocubeError, ModelUnavailableError
from exocube.surrogate import Prediction, Surrogate

log = logging.getLogger(__name__)


@dataclass
class _Job:
    mode: str
    params: Mapping[str, object]
    allow_extrapolation: bool
    future: asyncio.Future[Prediction]


@dataclass
class BatchStats:
    calls: int = 0
    requests: int = 0
    largest: int = 0
    sizes: dict[int, int] = field(default_factory=dict)


class MicroBatcher:
    """Collects requests for ``max_wait_s`` seconds (or ``max_batch`` of them) per call."""

    def __init__(self, surrogate: Callable[[], Surrogate | None], max_batch: int,
                 max_wait_s: float) -> None:
        self._surrogate = surrogate
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self.stats = BatchStats()

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._worker(), name="exocube-micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def submit(self, mode: str, params: Mapping[str, object],
                     allow_extrapolation: bool) -> Prediction:
        """Queue one request and wait for its answer (or its error)."""
        if self._queue is None or self._task is None or self._task.done():
            raise RuntimeError("the micro-batcher is not running; start the app's lifespan")
        fut: asyncio.Future[Prediction] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(mode, params, allow_extrapolation, fut))
        return await fut

    async def _gather(self) -> list[_Job]:
        assert self._queue is not None
        jobs = [await self._queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while len(jobs) < self.max_batch:
            try:
                jobs.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                jobs.append(await asyncio.wait_for(self._queue.get(), left))
            except TimeoutError:
                break
        return jobs

    async def _worker(self) -> None:
        while True:
            jobs = await self._gather()
            groups: dict[tuple[str, bool], list[_Job]] = {}
            for job in jobs:
                if not job.future.cancelled():
                    groups.setdefault((job.mode, job.allow_extrapolation), []).append(job)
            for (mode, allow), group in groups.items():
                await self._answer(mode, allow, group)

    async def _answer(self, mode: str, allow: bool, group: list[_Job]) -> None:
        surrogate = self._surrogate()
        self.stats.calls += 1
        self.stats.requests += len(group)
        self.stats.largest = max(self.stats.largest, len(group))
        self.stats.sizes[len(group)] = self.stats.sizes.get(len(group), 0) + 1
        try:
            if surrogate is None:
                raise ModelUnavailableError("no models are loaded yet; wait for /ready")
            rows = [j.params for j in group]
            if mode == "scalar":  # well under a millisecond: a thread hop would cost more
                results = surrogate.predict_many(rows, mode, allow)
            else:
                results = await asyncio.to_thread(surrogate.predict_many, rows, mode, allow)
        except Exception as exc:  # every waiting request gets the error, the worker goes on
            if not isinstance(exc, ExocubeError):
                log.exception("batched prediction of %d %s requests failed", len(group), mode)
            for job in group:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        for job, res in zip(group, results, strict=True):
            if job.future.done():
                continue
            if isinstance(res, Exception):
                job.future.set_exception(res)
            else:
                job.future.set_result(res)
