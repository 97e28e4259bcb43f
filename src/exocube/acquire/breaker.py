"""A circuit breaker per host, so one dead archive does not stall a run.

Closed: requests flow and consecutive failures are counted. After ``threshold``
consecutive failures the circuit opens: requests to that host fail at once with
:class:`CircuitOpenError`, which names the host and the last real failure that
tripped it (error type and message). After ``cooldown`` seconds one probe
request is let through (half-open); its success closes the circuit, its failure
reopens it.

:class:`HostUnreachableError` is the other verdict about a host: a connection
to it could not be made at all (refused, unknown name, no route).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from exocube.errors import TransferError


def describe(cause: BaseException | str) -> str:
    """An exception as ``"<type>: <message>"``, plus the operating system's error at the
    root of its chain when the message hides it; a string is kept as it is.

    httpx says ``ConnectError: All connection attempts failed`` for a refused
    connection; this gives ``... (ConnectionRefusedError: [Errno 111] Connection
    refused)``.
    """
    if isinstance(cause, str):
        return cause
    text = str(cause).strip()
    out = f"{type(cause).__name__}: {text}" if text else type(cause).__name__
    root = _root_os_error(cause)
    if root is not None and root is not cause:
        detail = os.strerror(root.errno) if root.errno > 0 else (root.strerror or str(root))
        if detail not in out:
            out += f" ({type(root).__name__}: [Errno {root.errno}] {detail})"
    return out


def _root_os_error(exc: BaseException) -> OSError | None:
    """The innermost ``OSError`` with an error number in ``exc``'s cause/context chain."""
    found = None
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if isinstance(node, OSError) and isinstance(node.errno, int):
            found = node
        node = node.__cause__ or node.__context__
    return found


class CircuitOpenError(TransferError):
    """The host's circuit is open: it failed too often and is left alone for a while.

    ``host``, ``failures`` and ``last_error`` (the exception, or a description
    such as ``"HTTP 503 from GET <url>"``, of the failure that opened it) say why.
    """

    def __init__(self, host: str, failures: int, wait: float,
                 last_error: BaseException | str | None, transfer_error: str = "") -> None:
        self.host = host
        self.failures = failures
        self.wait = wait
        self.last_error = last_error
        last = f"; last error: {describe(last_error)}" if last_error is not None else ""
        mine = f". The last error of this transfer was: {transfer_error}" if transfer_error else ""
        super().__init__(
            f"circuit open for host {host!r} after {failures} consecutive failures{last}; "
            f"next probe in {max(wait, 0):.0f} s{mine}. Check the archive's status, your "
            "network, or the base URL in the settings"
        )
        if isinstance(last_error, BaseException):
            self.__cause__ = last_error


class HostUnreachableError(TransferError):
    """No connection to the host could be made (refused, unknown name, unreachable)."""

    def __init__(self, host: str, what: str, cause: BaseException) -> None:
        self.host = host
        super().__init__(f"cannot connect to host {host!r}: {describe(cause)} ({what})")
        self.__cause__ = cause


@dataclass
class _HostState:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False
    last_error: BaseException | str | None = None


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
        raise CircuitOpenError(host, st.failures, wait, st.last_error)

    def success(self, host: str) -> None:
        self._hosts[host] = _HostState()

    def failure(self, host: str, cause: BaseException | str | None = None) -> None:
        """Count a failure of ``host``; ``cause`` (the exception or a description) is
        kept for the error raised while the circuit is open."""
        st = self._hosts.setdefault(host, _HostState())
        st.failures += 1
        st.probing = False
        if cause is not None:
            st.last_error = cause
        if st.failures >= self.threshold:
            st.opened_at = time.monotonic()
