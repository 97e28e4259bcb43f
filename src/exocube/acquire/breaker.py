"""A circuit breaker per host, so one dead archive does not stall a run.

Closed: requests flow and consecutive failures are counted. After ``threshold``
consecutive failures the circuit opens: requests to that host fail at once with
:class:`CircuitOpenError`. After ``cooldown`` seconds one probe request is let
through (half-open); its success closes the circuit, its failure reopens it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from exocube.errors import TransferError


class CircuitOpenError(TransferError):
    """The host's circuit is open: it failed too often and is left alone for a while."""


@dataclass
class _HostState:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


class CircuitBreaker:
    """Per-host breaker: ``check`` before a request, then ``success`` or ``failure``."""

    def __init__(self, threshold: int, cooldown: float) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._hosts: dict[str, _HostState] = {}

    def state(self, host: str) -> str:
        """``closed``, ``open`` or ``half-open``."""
        st = self._hosts.get(host)
        if st is None or st.opened_at is None:
            return "closed"
        if time.monotonic() - st.opened_at >= self.cooldown:
            return "half-open"
        return "open"

    def check(self, host: str) -> None:
        """Raise :class:`CircuitOpenError` unless a request to ``host`` may go out now."""
        st = self._hosts.setdefault(host, _HostState())
        state = self.state(host)
        if state == "closed":
            return
        if state == "half-open" and not st.probing:
            st.probing = True
            return
        wait = self.cooldown - (time.monotonic() - (st.opened_at or 0.0))
        raise CircuitOpenError(
            f"circuit open for host {host!r} after {st.failures} consecutive failures; "
            f"next probe in {max(wait, 0):.0f} s. Check the archive's status or the base URL "
            "in the settings, then resume the run"
        )

    def success(self, host: str) -> None:
        self._hosts[host] = _HostState()

    def failure(self, host: str) -> None:
        st = self._hosts.setdefault(host, _HostState())
        st.failures += 1
        st.probing = False
        if st.failures >= self.threshold:
            st.opened_at = time.monotonic()
