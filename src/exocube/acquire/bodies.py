"""How a response body gets from the connection into its part file: three readers
and the one choice between them (:class:`FastPaths`).

The protocol (:mod:`exocube.acquire.transfer`) calls :func:`receive` once per
attempt with a :class:`Receiver`, which checks the response's headers and says
where the body goes (:class:`Target`), then checks what arrived. In between,
the body is read by one of:

* ``thread``: a file known before the request to hold at least
  ``thread_min_bytes`` (its planned size, or the size an earlier attempt
  recorded in the sidecar) is fetched by a blocking :class:`httpx.Client` in a
  thread of its own. httpx sends the request and parses the headers; the body
  is then read with ``recv_into`` straight from the socket (plain or TLS) into
  the reused buffers of a :class:`~exocube.acquire.pipes.BufferPipe`. On a fast
  link the event loop's per-read work (asyncio reads into fresh ``bytes``,
  anyio's cancel scope per read, pause/resume of the transport) costs about as
  much CPU as hashing; here the event loop only waits, and can cancel
  (:class:`~exocube.acquire.threads.Cancel`). Without a ``Content-Length``, or
  through a proxy tunnel, the body goes through httpx in that thread;
* ``direct``: any other HTTP/1.1 body announcing a ``Content-Length`` of at
  least ``direct_min_bytes`` is read in the event loop straight from the
  response's ``network_stream`` (the httpx/httpcore extension, TLS included)
  once h11 has handed over what it buffered with the headers. h11 would copy
  every byte several times (its receive buffer, its slices, ``bytes()``). The
  connection is closed afterwards, not reused;
* ``h11``: every other body, through httpx's own iterator in the event loop.

Bodies read in the event loop that are large (``direct_min_bytes`` or more) or
of unknown length are written and hashed by worker threads
(:class:`~exocube.acquire.pipes.BlockPipe`), small ones in the event loop. The
defaults were measured with ``benchmarks/acquire.py``.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

import httpcore
import httpx

from exocube.acquire.partial import Hashes, PartFile
from exocube.acquire.pipes import BlockPipe, BufferPipe, InlineBlocks
from exocube.acquire.threads import Cancel, run_in_thread

T_co = TypeVar("T_co", covariant=True)
Progress = Callable[[int], None]
Take = Callable[[int], int]

THREAD_MIN_BYTES = 64 << 20  # a connection of its own costs little next to 64 MiB
DIRECT_MIN_BYTES = 4 << 20
DIRECT_READ_BYTES = 1 << 20


class Reader(StrEnum):
    """The reader a body took (see the module docstring)."""

    THREAD = "thread"
    DIRECT = "direct"
    H11 = "h11"


@dataclass(frozen=True)
class FastPaths:
    """The one choice of body reader: the two sizes that send a body past httpx's
    own reader (see the module docstring). ``thread_min_bytes=0`` sends every file
    of known size to a thread, ``direct_min_bytes=0`` reads every other body with
    a ``Content-Length`` directly."""

    thread_min_bytes: int = THREAD_MIN_BYTES
    direct_min_bytes: int = DIRECT_MIN_BYTES

    def in_thread(self, known_size: int | None) -> bool:
        """Before the request: is the file fetched by the thread reader?"""
        return known_size is not None and known_size >= self.thread_min_bytes

    def event_loop_reader(self, resp: httpx.Response) -> Reader:
        """After the headers of an event-loop request: ``direct`` or ``h11``."""
        length = content_length(resp)
        direct = (
            resp.http_version == "HTTP/1.1"
            and length is not None
            and length >= self.direct_min_bytes
            and resp.extensions.get("network_stream") is not None
        )
        return Reader.DIRECT if direct else Reader.H11

    def threaded_writes(self, resp: httpx.Response) -> bool:
        """Is an event-loop body written and hashed in worker threads?"""
        length = content_length(resp)
        return length is None or length >= self.direct_min_bytes


DEFAULT_PATHS = FastPaths()


@dataclass(frozen=True)
class Target:
    """Where one body goes: ``part`` from offset ``start`` (the bytes before it are
    kept from an earlier attempt and hashed first), the running ``hashes``, and
    ``take``, asked before each read is written: how many of ``n`` bytes may be
    (fewer: write those, then stop; ``None``: nothing limits the body)."""

    part: PartFile
    start: int
    hashes: Hashes
    take: Take | None = None


class Receiver(Protocol[T_co]):
    """What the protocol does around one body (``transfer._Attempt``)."""

    def begin(self, resp: httpx.Response) -> Target:
        """Check the status and headers (raising to retry or fail); where the body goes."""
        ...

    def end(self, resp: httpx.Response, received: int, reader: Reader) -> T_co:
        """Check what arrived: ``received`` bytes, or -1 when ``take`` stopped the body."""
        ...


def content_length(resp: httpx.Response) -> int | None:
    """The body length the headers announce; ``None`` if chunked or not given."""
    length = resp.headers.get("Content-Length", "")
    if not length.isdigit() or "chunked" in resp.headers.get("Transfer-Encoding", "").lower():
        return None
    return int(length)


async def receive(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], known_size: int | None,
    receiver: Receiver[T_co], paths: FastPaths, chunk_size: int,
    progress: Progress | None = None,
) -> T_co:
    """GET ``url`` with ``headers`` and move its body into ``receiver``'s target
    with the reader ``paths`` picks, in blocks of ``chunk_size``; ``receiver.end``'s
    result. ``client``'s timeouts, headers and redirects also apply in a thread."""
    if paths.in_thread(known_size):
        return await run_in_thread(
            lambda cancel: _in_thread(client, url, headers, receiver, chunk_size, progress,
                                      cancel),
            name="exocube-http-body")
    async with client.stream("GET", url, headers=headers) as resp:
        return await _in_event_loop(resp, receiver, paths, chunk_size, client.timeout.read,
                                    progress)


def _in_thread(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], receiver: Receiver[T_co],
    chunk_size: int, progress: Progress | None, cancel: Cancel,
) -> T_co:
    """The thread reader: one request on a connection of its own."""
    with (
        httpx.Client(timeout=client.timeout, headers=client.headers,
                     follow_redirects=client.follow_redirects) as blocking,
        blocking.stream("GET", url, headers=headers) as resp,
    ):
        target = receiver.begin(resp)
        if target.start:
            target.hashes.update_from_file(target.part.part, target.start)
        pipe = BufferPipe(target.part.open(target.start), target.hashes, chunk_size)
        received = _read_socket(resp, pipe, client.timeout.read, cancel, progress, target.take)
        return receiver.end(resp, received, Reader.THREAD)


async def _in_event_loop(
    resp: httpx.Response, receiver: Receiver[T_co], paths: FastPaths, chunk_size: int,
    read_timeout: float | None, progress: Progress | None,
) -> T_co:
    """The ``direct`` and ``h11`` readers: blocks of ``chunk_size`` handed to a pipe
    as soon as they are full, so a killed process loses at most the queued blocks
    and the one being gathered; on errors what arrived is written. The bytes
    received, or -1 when ``take`` allowed only part of a chunk (that part is written)."""
    target = receiver.begin(resp)
    if target.start:
        await asyncio.to_thread(target.hashes.update_from_file, target.part.part, target.start)
    reader = paths.event_loop_reader(resp)
    writer = target.part.open(target.start)
    pipe: BlockPipe | InlineBlocks = (BlockPipe(writer, target.hashes)
                                      if paths.threaded_writes(resp)
                                      else InlineBlocks(writer, target.hashes))
    take = target.take
    block: list[bytes] = []
    pending = received = 0
    try:
        async for chunk in _chunks(resp, reader, read_timeout):
            if take is not None and (allowed := take(len(chunk))) < len(chunk):
                block.append(chunk[:allowed])
                received = -1
                break
            block.append(chunk)
            pending += len(chunk)
            received += len(chunk)
            if progress:
                progress(len(chunk))
            if pending >= chunk_size:
                await pipe.put(block)
                block, pending = [], 0
    finally:
        await pipe.close(last=block)
    return receiver.end(resp, received, reader)


async def _chunks(
    resp: httpx.Response, reader: Reader, read_timeout: float | None
) -> AsyncIterator[bytes]:
    """The raw body: through h11, or (``direct``) h11's first chunk, which holds
    everything it buffered up to the content length, then the network stream."""
    raw = resp.aiter_raw()
    try:
        if reader is not Reader.DIRECT:
            async for chunk in raw:
                yield chunk
            return
        left = content_length(resp) or 0
        stream = resp.extensions["network_stream"]
        async for chunk in raw:  # what h11 buffered with the headers, then leave h11
            left -= len(chunk)
            yield chunk
            break
        while left > 0:
            chunk = await stream.read(min(DIRECT_READ_BYTES, left), timeout=read_timeout)
            if not chunk:
                return  # the caller sees the short body
            left -= len(chunk)
            yield chunk
    finally:
        await raw.aclose()


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


def _read_socket(
    resp: httpx.Response, pipe: BufferPipe, read_timeout: float | None, cancel: Cancel,
    progress: Progress | None, take: Take | None,
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
