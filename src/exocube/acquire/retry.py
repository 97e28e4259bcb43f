"""Retrying: when to try again, how long to wait, and the one loop that does it.

Retryable: 408, 425, 429 and every 5xx, connection resets, timeouts and short
bodies. Never retried: 401, 403, 404 and other 4xx (asking again gives the same
answer).

:class:`Politeness` is what every transfer of a run shares: the per-host rate
limiter, the circuit breaker, the backoff and the number of attempts. Its
:meth:`~Politeness.attempts` is the retry loop of small HTTP requests, HTTP
downloads and FTP downloads alike: an attempt that may succeed later raises
:class:`Retry`; anything else it raises ends the loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Generic, TypeVar

from exocube.acquire.breaker import CircuitBreaker, CircuitOpenError
from exocube.acquire.options import AcquireOptions
from exocube.acquire.ratelimit import HostLimiter
from exocube.errors import TransferError

log = logging.getLogger(__name__)

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({408, 425, 429})


def is_retryable_status(status: int) -> bool:
    """True for statuses where a later attempt may succeed."""
    return status in RETRYABLE_STATUS or 500 <= status <= 599


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with full jitter (AWS architecture blog style)."""

    base: float = 1.0
    cap: float = 60.0
    retry_after_cap: float = 300.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to sleep before attempt ``attempt + 1`` (``attempt`` counts from 1).

        A server's ``Retry-After`` wins over the computed delay (bounded by
        ``retry_after_cap`` so a hostile header cannot park a run for a day).
        """
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        ceiling = min(self.cap, self.base * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)


class Retry(Exception):
    """One attempt failed in a way worth trying again.

    ``retry_after``: the wait the server asked for (``None``: the backoff's);
    ``host_fault``: counts as a failure of the host for the circuit breaker (its
    ``__cause__``, or the message, is what the breaker reports); ``restart``: the
    provenance line when the bytes kept so far were dropped (``""``: none were).
    """

    def __init__(self, reason: str, retry_after: float | None = None,
                 host_fault: bool = True, restart: str = "") -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.host_fault = host_fault
        self.restart = restart


@dataclass
class Attempted(Generic[T]):
    """What :meth:`Politeness.attempts` returns: the result, the attempts it took
    and the restarts (:attr:`Retry.restart`) on the way."""

    result: T
    attempts: int
    restarts: list[str] = field(default_factory=list)


def check_breaker(breaker: CircuitBreaker, host: str, last: str) -> None:
    """``breaker.check(host)``; when the circuit opened during this transfer's
    retries, the message also gives the transfer's last real error."""
    try:
        breaker.check(host)
    except CircuitOpenError as exc:
        if not last:
            raise
        raise CircuitOpenError(exc.host, exc.failures, exc.wait, exc.last_error,
                               transfer_error=last) from exc


class Politeness:
    """The rate limiter, circuit breaker and backoff shared by every transfer of a run."""

    def __init__(self, opts: AcquireOptions) -> None:
        self.limiter = HostLimiter(
            opts.requests_per_second, opts.burst, opts.connections_per_host,
            opts.host_requests_per_second,
        )
        self.breaker = CircuitBreaker(opts.breaker_failures, opts.breaker_cooldown)
        self.backoff = Backoff(opts.backoff_base, opts.backoff_max, opts.retry_after_max)
        self.max_attempts = opts.max_attempts

    async def attempts(
        self, host: str, what: str, attempt: Callable[[int], Awaitable[T]],
        answered: tuple[type[BaseException], ...] = (), kept: Callable[[], str] | None = None,
    ) -> Attempted[T]:
        """``await attempt(n)`` for n = 1, 2, ... up to ``max_attempts``, until it returns.

        Before each attempt the host's circuit is checked. An attempt raising
        :class:`Retry` is followed by the backoff's delay (or the server's
        ``Retry-After``); one raising an exception of ``answered`` (the host
        answered: 404, FTP 550) ends the loop and counts as the host's success,
        as a result does; any other exception ends it as it is. After the last
        attempt, :class:`~exocube.errors.TransferError` names ``what`` (e.g.
        ``GET <url>``), the last error and, with ``kept``, what became of the
        part file.
        """
        last = ""
        restarts: list[str] = []
        for n in range(1, self.max_attempts + 1):
            check_breaker(self.breaker, host, last)
            try:
                result = await attempt(n)
            except Retry as exc:
                last = str(exc)
                if exc.restart:
                    restarts.append(exc.restart)
                if exc.host_fault:
                    self.breaker.failure(host, exc.__cause__ or f"{exc} from {what}")
                if n < self.max_attempts:
                    delay = self.backoff.delay(n, exc.retry_after)
                    log.info("%s: %s; retry %d in %.2f s", what, last, n, delay)
                    await asyncio.sleep(delay)
                continue
            except answered:
                self.breaker.success(host)
                raise
            self.breaker.success(host)
            return Attempted(result, n, restarts)
        after = f". {kept()}" if kept is not None else ""
        raise TransferError(
            f"{what}: gave up after {self.max_attempts} attempts; last error: {last}{after}")
