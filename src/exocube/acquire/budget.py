"""The download quota of a run, drawn as bytes arrive.

Before a file starts, :meth:`DownloadBudget.reserve` checks that the bytes
downloaded so far, the bytes promised to running transfers and this file's
remaining bytes fit the quota, and promises them. While the file is received,
its :class:`FileAllowance` is asked before each read is written
(:meth:`FileAllowance.take`): bytes within the file's promise are always
allowed; bytes beyond it (a file of unknown size, or a server sending more
than announced) are drawn from what is left of the quota. The read that would
pass the quota is written up to the quota and the transfer stops there.
Transfers run in the event loop and in worker threads, so the counters are
guarded by a lock (one acquire per read). Without a limit nothing needs
guarding while a file runs: each allowance counts its own bytes (one writer)
and adds them to the run's total when it is released.
"""

from __future__ import annotations

import threading

from exocube.acquire.units import format_bytes


class DownloadBudget:
    """The run's download quota (``limit`` bytes, ``None``: no limit)."""

    def __init__(self, limit: int | None, used: int = 0) -> None:
        self.limit = limit
        self.used = used  # bytes received by this run (every attempt), kept in parts/files
        self.promised = 0  # bytes reserved for running transfers, not yet received
        self._lock = threading.Lock()

    def reserve(self, need: int | None) -> FileAllowance | str:
        """An allowance promising ``need`` bytes (``None``: size unknown), or the
        reason the file does not fit."""
        with self._lock:
            committed = self.used + self.promised
            if self.limit is not None and (
                committed + (need or 0) > self.limit or (need is None and committed >= self.limit)
            ):
                needs = "its size is unknown" if need is None else f"it needs {format_bytes(need)}"
                return (f"download quota: {format_bytes(committed)} used or reserved, {needs}, "
                        f"limit {format_bytes(self.limit)}")
            self.promised += need or 0
            return FileAllowance(self, need or 0)

    def left(self) -> int | None:
        """Bytes of the quota neither received nor promised (``None``: no limit)."""
        with self._lock:
            return None if self.limit is None else self.limit - self.used - self.promised


class FileAllowance:
    """One file's share of a :class:`DownloadBudget`; see the module docstring."""

    def __init__(self, budget: DownloadBudget, promised: int) -> None:
        self.budget = budget
        self.promised = promised
        self.received = 0

    def take(self, nbytes: int) -> int:
        """How many of ``nbytes`` about to be written fit the quota (all of them
        unless it is reached); those are counted."""
        b = self.budget
        if b.limit is None:
            self.received += nbytes
            return nbytes
        with b._lock:
            own = min(nbytes, self.promised)
            extra = nbytes - own
            if extra and b.limit is not None:
                extra = max(min(extra, b.limit - b.used - b.promised), 0)
            self.promised -= own
            b.promised -= own
            b.used += own + extra
            self.received += own + extra
            return own + extra

    def release(self) -> None:
        """Give back what was promised and not received (the transfer ended); without
        a limit, add this file's bytes to the run's total."""
        with self.budget._lock:
            self.budget.promised -= self.promised
            self.promised = 0
            if self.budget.limit is None:
                self.budget.used += self.received

    def describe(self) -> str:
        """The quota's numbers, for a message."""
        b = self.budget
        return (f"limit {format_bytes(b.limit or 0)}, {format_bytes(b.used)} downloaded by this "
                f"run, {format_bytes(self.received)} of them by this file")
