"""Micro-batching with a bounded FIFO queue: concurrent requests share one model call.

A request becomes a job in one first-in, first-out queue of at most
``max_queue`` waiting jobs; one more is refused with :class:`ServiceBusyError`
(HTTP 503 with ``Retry-After``). One worker takes the oldest job, gathers
whatever else waits within ``max_wait``, oldest first, up to ``max_batch``
jobs of which at most ``max_batch_fields`` ask for fields (the 3-D U-Net on a
CPU costs more per request in larger batches), groups them by mode and answers
each group with one ``predict_many`` call: field predictions in a worker
thread, so the event loop keeps accepting requests meanwhile; scalar ones (the
small scalar head) on the loop itself. Requests are answered in arrival order,
batch by batch.

A job whose client has gone is cancelled by its request (see
``routes/predict.py``) and leaves the queue at once: it takes no queue place
and no model time. ``stats`` counts what was computed, dropped and refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from exocube.errors import ExocubeError, ModelUnavailableError, ServiceBusyError
from exocube.surrogate import Prediction, Surrogate

log = logging.getLogger(__name__)


@dataclass(eq=False)  # identity: a job leaves the queue by ``deque.remove``
class Job:
    """One queued request; cancel ``future`` to withdraw it."""

    mode: str
    params: Mapping[str, object]
    allow_extrapolation: bool
    future: asyncio.Future[Prediction]


@dataclass
class BatchStats:
    """Counters of the batcher's work since start.

    ``requests``: jobs computed (answered by a model call); ``calls``: model calls;
    ``dropped``: jobs withdrawn from the queue before computing (client gone);
    ``rejected``: jobs refused because the queue was full; ``discarded``: answers
    computed but not sent because the client had gone meanwhile (during the model
    call, or before encoding: counted by the route).
    """

    calls: int = 0
    requests: int = 0
    largest: int = 0
    dropped: int = 0
    rejected: int = 0
    discarded: int = 0
    sizes: dict[int, int] = field(default_factory=dict)


class MicroBatcher:
    """A bounded FIFO of jobs answered in batches of up to ``max_batch``, gathered for at
    most ``max_wait_s`` seconds."""

    def __init__(self, surrogate: Callable[[], Surrogate | None], max_batch: int,
                 max_wait_s: float, max_queue: int, max_batch_fields: int | None = None
                 ) -> None:
        self._surrogate = surrogate
        self.max_batch, self.max_wait_s, self.max_queue = max_batch, max_wait_s, max_queue
        self.max_batch_fields = max_batch_fields or max_batch
        self._waiting: deque[Job] = deque()
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._seconds_per_job = 0.0  # moving average of model time per job
        self.stats = BatchStats()

    @property
    def pending(self) -> int:
        """Jobs waiting in the queue (not yet taken for a model call)."""
        return len(self._waiting)

    async def start(self) -> None:
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(self._worker(), name="exocube-micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        while self._waiting:
            self._waiting.popleft().future.cancel()

    def enqueue(self, mode: str, params: Mapping[str, object],
                allow_extrapolation: bool) -> Job:
        """Queue one request; its ``future`` gets the answer (or the error).

        Raises ServiceBusyError, with a retry delay, when ``max_queue`` jobs wait already.
        """
        if self._arrived is None or self._task is None or self._task.done():
            raise RuntimeError("the micro-batcher is not running; start the app's lifespan")
        if len(self._waiting) >= self.max_queue:
            self.stats.rejected += 1
            raise ServiceBusyError(
                f"{len(self._waiting)} requests are waiting for the model already (the limit, "
                "setting serve.max_queue); retry later", retry_after_s=self.retry_after_s())
        job = Job(mode, params, allow_extrapolation,
                  asyncio.get_running_loop().create_future())
        job.future.add_done_callback(lambda _: self._withdraw(job))
        self._waiting.append(job)
        self._arrived.set()
        return job

    async def submit(self, mode: str, params: Mapping[str, object],
                     allow_extrapolation: bool) -> Prediction:
        """Queue one request and wait for its answer (cancelling the wait withdraws it)."""
        job = self.enqueue(mode, params, allow_extrapolation)
        return await job.future

    def retry_after_s(self) -> int:
        """Whole seconds the waiting jobs should take to answer, at least 1."""
        return max(1, math.ceil(len(self._waiting) * self._seconds_per_job))

    def _withdraw(self, job: Job) -> None:
        """A cancelled job leaves the queue (an answered one has left it already)."""
        if job.future.cancelled():
            with contextlib.suppress(ValueError):
                self._waiting.remove(job)
                self.stats.dropped += 1

    async def _next(self) -> Job:
        assert self._arrived is not None
        while not self._waiting:
            self._arrived.clear()
            await self._arrived.wait()
        return self._waiting.popleft()

    async def _gather(self) -> list[Job]:
        """The oldest job and those behind it, within ``max_wait_s``: up to ``max_batch``,
        of which up to ``max_batch_fields`` ask for fields."""
        assert self._arrived is not None
        jobs = [await self._next()]
        fields = int(jobs[0].mode != "scalar")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while len(jobs) < self.max_batch:
            if self._waiting:
                is_fields = self._waiting[0].mode != "scalar"
                if is_fields and fields >= self.max_batch_fields:
                    break
                jobs.append(self._waiting.popleft())
                fields += is_fields
                continue
            left = deadline - loop.time()
            if left <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                break
        return jobs

    async def _worker(self) -> None:
        while True:
            jobs = await self._gather()
            await asyncio.sleep(0)  # let disconnections seen meanwhile cancel their jobs
            groups: dict[tuple[str, bool], list[Job]] = {}
            for job in jobs:
                groups.setdefault((job.mode, job.allow_extrapolation), []).append(job)
            for (mode, allow), group in groups.items():
                live = self._live(group)  # a field call before may have taken a while
                if live:
                    await self._answer(mode, allow, live)

    def _live(self, jobs: list[Job]) -> list[Job]:
        """The jobs still wanted; the others (cancelled after leaving the queue) are dropped."""
        live = [j for j in jobs if not j.future.done()]
        self.stats.dropped += len(jobs) - len(live)
        return live

    async def _answer(self, mode: str, allow: bool, group: list[Job]) -> None:
        surrogate = self._surrogate()
        self._count(len(group))
        started = time.perf_counter()
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
        per_job = (time.perf_counter() - started) / len(group)
        self._seconds_per_job = per_job if self._seconds_per_job == 0 else (
            0.8 * self._seconds_per_job + 0.2 * per_job)
        for job, res in zip(group, results, strict=True):
            if job.future.done():  # the client left during the model call
                self.stats.discarded += 1
                continue
            if isinstance(res, Exception):
                job.future.set_exception(res)
            else:
                job.future.set_result(res)

    def _count(self, n: int) -> None:
        self.stats.calls += 1
        self.stats.requests += n
        self.stats.largest = max(self.stats.largest, n)
        self.stats.sizes[n] = self.stats.sizes.get(n, 0) + 1
