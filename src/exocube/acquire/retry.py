"""When to retry a request and how long to wait: capped exponential backoff
with full jitter, honouring ``Retry-After``.

Retryable: 408, 425, 429 and every 5xx, connection resets, timeouts and short
bodies. Never retried: 401, 403, 404 and other 4xx (asking again gives the same
answer).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

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
