"""The HTTP client of every acquisition request and download, and the one change
it makes to httpcore while it is open.

:func:`make_client` is the only place an ``httpx.AsyncClient`` is made for
acquisition: explicit timeouts, redirects followed, identity encoding, exocube's
``User-Agent``, optionally a cap on the bytes of any body it reads (planning),
and, for as long as it is open, the larger HTTP/1.1 reads of
:func:`http11_read_size`.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpcore
import httpx

from exocube import __version__
from exocube.acquire.options import AcquireOptions
from exocube.acquire.units import format_bytes
from exocube.errors import TransferError

USER_AGENT = f"exocube/{__version__} (+https://github.com/exocube; httpx/{httpx.__version__})"

_READS = threading.Lock()
_readers = 0  # open http11_read_size blocks
_HTTPCORE_READ_NUM_BYTES = httpcore.AsyncHTTP11Connection.READ_NUM_BYTES


@contextmanager
def http11_read_size(nbytes: int) -> Iterator[None]:
    """Let httpcore read up to ``nbytes`` per ``recv`` on async HTTP/1.1 connections
    while the block runs. This is a patch of httpcore, scoped as follows.

    What it changes: ``httpcore.AsyncHTTP11Connection.READ_NUM_BYTES``, a class
    attribute (64 KiB; httpcore has no constructor option for it), so while any
    such block is open every async HTTP/1.1 connection of the process reads up
    to ``nbytes`` per call. It bounds one read and changes nothing else about
    the protocol. Why: with 64 KiB reads the per-read Python overhead caps
    throughput on fast links (``benchmarks/acquire.py``). How it is undone: when
    the last open block exits, httpcore's own value is put back, so code that
    runs while no acquisition client is open sees httpcore unchanged.
    :func:`make_client` opens one block for the life of each client.
    """
    global _readers
    with _READS:
        _readers += 1
        httpcore.AsyncHTTP11Connection.READ_NUM_BYTES = nbytes
    try:
        yield
    finally:
        with _READS:
            _readers -= 1
            if not _readers:
                httpcore.AsyncHTTP11Connection.READ_NUM_BYTES = _HTTPCORE_READ_NUM_BYTES


def make_timeout(opts: AcquireOptions) -> httpx.Timeout:
    """The explicit timeout object used by every client."""
    return httpx.Timeout(
        connect=opts.connect_timeout,
        read=opts.read_timeout,
        write=opts.write_timeout,
        pool=opts.pool_timeout,
    )


class _CappedBody(httpx.AsyncByteStream):
    """A response body that raises :class:`TransferError` once it passes ``max_bytes``."""

    def __init__(self, stream: Any, max_bytes: int, url: str) -> None:
        self.stream = stream
        self.max_bytes = max_bytes
        self.url = url

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self.stream:
            seen += len(chunk)
            if seen > self.max_bytes:
                raise TransferError(
                    f"{short(self.url)}: the answer is larger than acquire.plan_max_bytes "
                    f"({format_bytes(self.max_bytes)}); stopped reading it. Raise the setting "
                    "if the archive's index or listing really is that large")
            yield chunk

    async def aclose(self) -> None:
        await self.stream.aclose()


def _cap_bodies(max_bytes: int) -> Callable[[httpx.Response], Any]:
    """A response hook bounding every body the client reads (before it is read)."""

    async def hook(resp: httpx.Response) -> None:
        resp.stream = _CappedBody(resp.stream, max_bytes, str(resp.request.url))

    return hook


@asynccontextmanager
async def make_client(opts: AcquireOptions, max_body: int | None = None,
                      transport: httpx.AsyncBaseTransport | None = None,
                      ) -> AsyncIterator[httpx.AsyncClient]:
    """``async with make_client(opts) as client``: an ``AsyncClient`` that follows
    redirects and asks for identity encoding, with httpcore reading
    ``acquire.read_size`` bytes per call while it is open (:func:`http11_read_size`).

    With ``max_body``, reading a body past that many bytes raises
    :class:`TransferError` (planning: indexes and listings are read into memory).
    A ``transport`` (e.g. one replaying recorded answers) carries every request:
    proxies from the environment are then not used, as they would bypass it."""
    limits = httpx.Limits(
        max_connections=max(opts.max_parallel_files, opts.connections_per_host) * 2,
        max_keepalive_connections=max(opts.max_parallel_files, opts.connections_per_host),
    )
    with http11_read_size(opts.read_size):
        async with httpx.AsyncClient(
            timeout=make_timeout(opts),
            limits=limits,
            follow_redirects=True,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
            event_hooks={"response": [_cap_bodies(max_body)]} if max_body is not None else None,
            transport=transport,
            trust_env=transport is None,
        ) as client:
            yield client


def short(url: str, limit: int = 120) -> str:
    """``url`` for a message: a TAP query URL can hold kilobytes."""
    return url if len(url) <= limit else url[: limit - 3] + "..."
