"""Per-host politeness: a token bucket (requests per second with a burst) and a
cap on concurrent connections. KEGG, for example, asks for at most 3 requests/s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` stored; ``take`` waits for one."""

    rate: float
    burst: int
    _tokens: float = field(init=False)
    _stamp: float = field(init=False)
    _lock: asyncio.Lock = field(init=False, default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        self._tokens = float(self.burst)
        self._stamp = time.monotonic()

    async def take(self) -> None:
        async with self._lock:
            while True:
                now = time.monotonic()
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
                self._stamp = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self.rate)


class HostLimiter:
    """One token bucket and one connection semaphore per host."""

    def __init__(
        self,
        rate: float,
        burst: int,
        connections: int,
        host_rates: dict[str, float] | None = None,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.connections = connections
        self.host_rates = dict(host_rates or {})
        self._buckets: dict[str, TokenBucket] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}

    def _bucket(self, host: str) -> TokenBucket:
        if host not in self._buckets:
            rate = self.host_rates.get(host, self.rate)
            burst = 1 if host in self.host_rates else self.burst
            self._buckets[host] = TokenBucket(rate, burst)
        return self._buckets[host]

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """Hold one of the host's connections, after waiting for a request token."""
        sem = self._slots.setdefault(host, asyncio.Semaphore(self.connections))
        async with sem:
            await self._bucket(host).take()
            yield
