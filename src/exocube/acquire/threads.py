"""Blocking work in a thread of its own that the event loop can cancel.

:func:`run_in_thread` runs a function in a new thread (not the default executor:
a transfer may take hours) and hands it a :class:`Cancel`; the function attaches
its socket to it, and cancelling the awaiting task shuts that socket down, so a
blocking ``recv`` returns at once. Used by the HTTP thread reader
(:mod:`exocube.acquire.bodies`) and by FTP (:mod:`exocube.acquire.ftp`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Cancel:
    """Stops a body being received in a worker thread: shuts its socket down."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def attach(self, sock: socket.socket) -> None:
        with self._lock:
            self._sock = sock
            if self.cancelled.is_set():
                self._shutdown()

    def cancel(self) -> None:
        with self._lock:
            self.cancelled.set()
            if self._sock is not None:
                self._shutdown()

    def _shutdown(self) -> None:
        with contextlib.suppress(OSError):  # already closed by its owner: nothing to stop
            self._sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr]


async def run_in_thread(fn: Callable[[Cancel], T], name: str) -> T:
    """``fn(cancel)`` in a new thread (not the default executor: a transfer may
    take hours). If the awaiting task is cancelled, ``cancel`` stops ``fn`` and
    the task waits for the thread before it re-raises."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[T] = loop.create_future()
    cancel = Cancel()

    def settle(result: T | None, error: BaseException | None) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result = fn(cancel)
        except BaseException as exc:  # handed to the awaiting task
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, result, None)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        done.cancel()  # its outcome is no longer wanted
        cancel.cancel()
        await asyncio.to_thread(thread.join)
        raise
