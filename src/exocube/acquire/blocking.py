"""Large HTTP bodies received in a worker thread, from the socket into reused buffers.

On a fast link the event loop's per-read work (asyncio transport reads into
fresh ``bytes``, anyio's receive with a cancel scope per read, pause/resume of
the reader) costs about as much CPU as hashing. A file known to be large is
therefore fetched by a blocking :class:`httpx.Client` in its own thread: httpx
sends the request and parses the headers; the body is then read with
``recv_into`` straight into the buffers of a
:class:`~exocube.acquire.partial.BufferPipe`, whose workers write and hash them.
The event loop only waits, and can cancel (:class:`Cancel`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import httpcore
import httpx

from exocube.acquire.partial import BufferPipe

T = TypeVar("T")
Progress = Callable[[int], None]


def content_length(resp: httpx.Response) -> int | None:
    """The body length the headers announce; ``None`` if chunked or not given."""
    length = resp.headers.get("Content-Length", "")
    if not length.isdigit() or "chunked" in resp.headers.get("Transfer-Encoding", "").lower():
        return None
    return int(length)


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


class _SocketBody:
    """One response body, read into caller buffers: first what h11 already
    holds, then (when the length is known and the connection is a plain or TLS
    socket) straight from the socket; otherwise through httpx."""

    def __init__(self, resp: httpx.Response, read_timeout: float | None, cancel: Cancel) -> None:
        self._chunks: Iterator[bytes] = resp.iter_raw()
        self._pending = memoryview(b"")
        self._sock: socket.socket | None = None
        self._left = 0
        length = content_length(resp)
        sock = _socket_of(resp)
        if length is not None and sock is not None:
            first = next(self._chunks, b"")  # h11 hands over all it holds, up to the length
            self._pending = memoryview(first)
            self._left = length - len(first)
            self._sock = sock
            sock.settimeout(read_timeout)
            cancel.attach(sock)

    def read_into(self, view: memoryview) -> int:
        """Bytes placed at the start of ``view``; 0 at the end of the body."""
        while not self._pending and self._sock is None:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        if self._pending:
            n = min(len(view), len(self._pending))
            view[:n] = self._pending[:n]
            self._pending = self._pending[n:]
            return n
        if self._left <= 0:
            return 0
        try:
            n = self._sock.recv_into(view[: self._left])  # type: ignore[union-attr]
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc) or "read timed out") from exc
        except OSError as exc:
            raise httpcore.ReadError(f"{type(exc).__name__}: {exc}") from exc
        self._left -= n
        return n

    def close(self) -> None:
        self._chunks.close()  # type: ignore[attr-defined]


def _socket_of(resp: httpx.Response) -> socket.socket | None:
    """The connection's socket if reading it yields the body's bytes: a plain
    socket, or an ``SSLSocket`` for TLS to the host; ``None`` for TLS inside a
    proxy tunnel (a memory-BIO stream over the outer socket) and HTTP/2."""
    stream = resp.extensions.get("network_stream")
    if resp.http_version != "HTTP/1.1" or stream is None:
        return None
    sock = stream.get_extra_info("socket")
    if not isinstance(sock, socket.socket):
        return None
    if stream.get_extra_info("ssl_object") is not None and not isinstance(sock, ssl.SSLSocket):
        return None
    return sock


def receive(
    resp: httpx.Response,
    pipe: BufferPipe,
    read_timeout: float | None,
    cancel: Cancel,
    progress: Progress | None = None,
    take: Callable[[int], int] | None = None,
) -> int:
    """Move the body of ``resp`` through ``pipe``, a full buffer at a time; the
    bytes received, or -1 when ``take`` (the download quota) allowed only part
    of a read: that part is handed over, the rest dropped. Whatever arrived
    before is handed over, also when reading fails, so a resume loses at most
    the block being filled."""
    body = _SocketBody(resp, read_timeout, cancel)
    received = 0
    try:
        while True:
            view = pipe.buffer()
            filled = 0
            try:
                while filled < len(view):
                    n = body.read_into(view[filled:])
                    if n == 0:
                        break
                    if take is not None and (allowed := take(n)) < n:
                        filled += allowed
                        return -1
                    filled += n
                    if progress:
                        progress(n)
            finally:
                received += filled
                pipe.submit(view[:filled])
            if filled < len(view):
                return received
    finally:
        try:
            body.close()
        finally:
            pipe.close()
