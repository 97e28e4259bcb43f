"""Asynchronous HTTP(S) downloads that resume, verify and retry (httpx).

One call, :meth:`HTTPDownloader.fetch`, moves one URL into a verified
``.part`` file (see :mod:`exocube.acquire.partial`):

* it resumes with ``Range`` + ``If-Range`` only when the sidecar holds a strong
  ETag or a Last-Modified date, and keeps the bytes only when the server answers
  206 with a ``Content-Range`` starting at our offset and the same validators
  (ETag, Last-Modified, total size) as the sidecar: a server that ignores
  ``If-Range`` would otherwise splice two versions. Any mismatch discards the
  part and restarts from zero; a 200 restarts from zero too. Each restart is
  recorded in the provenance (``restarts``);
* a run's download quota is drawn as bytes arrive (``allowance``): a transfer
  stops with :class:`~exocube.errors.QuotaExceededError` before a read would
  pass it, keeping the part and its sidecar for a later resume;
* it retries 408/425/429/5xx, resets, timeouts and short bodies with capped,
  jittered exponential backoff that honours ``Retry-After``; 401/403/404 and other
  4xx fail at once with :class:`HTTPStatusError`;
* every request goes through the per-host rate limiter and circuit breaker;
* before it returns, size, sha256 and any published MD5 are checked.

The caller renames the part to its final name (after quality checks), so no
partial or unverified file is ever visible under a final name.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpcore
import httpx

from exocube import __version__
from exocube.acquire import blocking
from exocube.acquire.blocking import Cancel, content_length, run_in_thread
from exocube.acquire.breaker import CircuitBreaker, CircuitOpenError, HostUnreachableError, describe
from exocube.acquire.options import AcquireOptions
from exocube.acquire.partial import (
    NOTHING_EXPECTED,
    BlockPipe,
    BufferPipe,
    Expected,
    Hashes,
    InlineBlocks,
    PartFile,
    check,
)
from exocube.acquire.ratelimit import HostLimiter
from exocube.acquire.retry import Backoff, is_retryable_status, parse_retry_after
from exocube.acquire.units import format_bytes
from exocube.errors import ChecksumError, QuotaExceededError, TransferError

log = logging.getLogger(__name__)

USER_AGENT = f"exocube/{__version__} (+https://github.com/exocube; httpx/{httpx.__version__})"
DIRECT_MIN_BYTES = 4 << 20
DIRECT_READ_BYTES = 1 << 20
THREAD_MIN_BYTES = 64 << 20  # a connection of its own costs little next to 64 MiB
CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
Progress = Callable[[int], None]


class HTTPStatusError(TransferError):
    """The server answered with a status that asking again will not change."""

    def __init__(self, url: str, status: int) -> None:
        self.url = url
        self.status = status
        super().__init__(
            f"{url}: HTTP {status} ({httpx.codes.get_reason_phrase(status) or 'error'}); "
            "not retried. Check the URL, the source's base URL setting, or your access rights"
        )


class _Retry(Exception):
    """One attempt failed in a way worth retrying."""

    def __init__(self, reason: str, retry_after: float | None = None, host_fault: bool = True):
        super().__init__(reason)
        self.retry_after = retry_after
        self.host_fault = host_fault


class _Restart(_Retry):
    """The kept bytes cannot be continued: the part was discarded, start from zero."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"restarted: {reason}", 0, host_fault=False)


class Allowance(Protocol):
    """What a transfer may still download: ``take(n)`` is how many of ``n`` bytes
    about to be written fit the quota (fewer: write those, then stop)."""

    def take(self, nbytes: int) -> int: ...

    def describe(self) -> str: ...


class _Limit:
    """What one response body may still bring: the quota ``allowance`` and at most
    ``cap`` bytes (the announced or expected size, so a server streaming more
    than it announced is stopped, not followed until the disk is full)."""

    def __init__(self, allowance: Allowance | None, cap: int | None) -> None:
        self.allowance = allowance
        self.cap = cap
        self.seen = 0
        self.over_cap = False

    def take(self, nbytes: int) -> int:
        """How many of ``nbytes`` to write (fewer: stop after them)."""
        self.seen += nbytes
        if self.cap is not None and self.seen > self.cap:
            self.over_cap = True
            return 0
        return nbytes if self.allowance is None else self.allowance.take(nbytes)

    def taker(self) -> Callable[[int], int] | None:
        """``take``, or ``None`` when nothing limits the body (no per-read work)."""
        return self.take if self.allowance is not None or self.cap is not None else None


@dataclass
class _Body:
    """Where a response body goes: its offset in the file, the file's size
    (``None``: unknown), whether the part may be resumed, the running hashes,
    and why kept bytes were dropped (a 200 to a range request)."""

    start: int
    total: int | None
    resumable: bool
    hashes: Hashes
    restarted: str = ""


@dataclass
class Fetched:
    """A verified download waiting in its ``.part`` file, with its provenance."""

    url: str
    part: PartFile
    size: int
    sha256: str
    md5: str | None
    final_url: str
    status: int
    headers: dict[str, str]
    redirects: list[str] = field(default_factory=list)
    attempts: int = 1
    resumed_from: int = 0
    bytes_received: int = 0
    retrieved_at: str = ""
    client: str = f"httpx {httpx.__version__}"
    restarts: list[str] = field(default_factory=list)

    def provenance(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "final_url": self.final_url,
            "redirects": self.redirects,
            "retrieved_at": self.retrieved_at,
            "status": self.status,
            "response_headers": self.headers,
            "sha256": self.sha256,
            "md5": self.md5,
            "size": self.size,
            "attempts": self.attempts,
            "resumed_from": self.resumed_from,
            "bytes_received": self.bytes_received,
            "restarts": self.restarts,
            "tool": f"exocube {__version__}",
            "client": self.client,
        }


def make_timeout(opts: AcquireOptions) -> httpx.Timeout:
    """The explicit timeout object used by every client."""
    return httpx.Timeout(
        connect=opts.connect_timeout,
        read=opts.read_timeout,
        write=opts.write_timeout,
        pool=opts.pool_timeout,
    )


def set_read_size(nbytes: int) -> None:
    """Let httpcore read up to ``nbytes`` per ``recv`` on HTTP/1.1 connections.

    httpcore reads 64 KiB at a time (``AsyncHTTP11Connection.READ_NUM_BYTES``, a
    class attribute with no constructor option); on fast links the per-read
    Python overhead then caps throughput (``benchmarks/acquire.py`` measures it).
    This sets the attribute process-wide; it bounds one read and changes nothing
    else about the protocol.
    """
    httpcore.AsyncHTTP11Connection.READ_NUM_BYTES = nbytes


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
                    f"{_short(self.url)}: the answer is larger than acquire.plan_max_bytes "
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


def make_client(opts: AcquireOptions, max_body: int | None = None,
                transport: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncClient:
    """An ``AsyncClient`` that follows redirects and asks for identity encoding;
    with ``max_body``, reading a body past that many bytes raises
    :class:`TransferError` (planning: indexes and listings are read into memory).
    A ``transport`` (e.g. one replaying recorded answers) carries every request:
    proxies from the environment are then not used, as they would bypass it."""
    set_read_size(opts.read_size)
    limits = httpx.Limits(
        max_connections=max(opts.max_parallel_files, opts.connections_per_host) * 2,
        max_keepalive_connections=max(opts.max_parallel_files, opts.connections_per_host),
    )
    return httpx.AsyncClient(
        timeout=make_timeout(opts),
        limits=limits,
        follow_redirects=True,
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
        event_hooks={"response": [_cap_bodies(max_body)]} if max_body is not None else None,
        transport=transport,
        trust_env=transport is None,
    )


def host_of(url: str) -> str:
    return urlsplit(url).netloc.lower()


# redirects that cannot be followed (to file://, ftp:// or another scheme; a loop or
# a chain longer than httpx's 20): asking again gives the same answer
NOT_FOLLOWED = (httpx.UnsupportedProtocol, httpx.TooManyRedirects)


def not_followed(method: str, url: str, exc: Exception) -> TransferError:
    """The error for a request whose redirect exocube does not follow; not retried."""
    return TransferError(
        f"{method} {_short(url)}: redirect not followed: {exc} Only http:// and https:// "
        "redirects are followed, at most 20; check the URL or the source's base URL setting")


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


def kept_part(part: PartFile) -> str:
    """What a failure message says about the part file: kept (with its size) only
    when there is one."""
    size = part.offset()
    if not size:
        return "No partial file was kept"
    return (f"The partial file {part.part} ({format_bytes(size)}) is kept; resume the run to "
            "continue it")


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

    async def request(
        self, client: httpx.AsyncClient, method: str, url: str,
        connect_attempts: int | None = None, **kwargs: Any,
    ) -> httpx.Response:
        """A small, fully read request (queries, listings, indexes) with retries.

        ``connect_attempts`` bounds the attempts whose connection cannot be made at
        all (refused, unknown host name, no route: ``httpx.ConnectError``); after
        them :class:`HostUnreachableError` is raised. Planning passes
        ``acquire.plan_connect_attempts``; timeouts and 5xx keep ``max_attempts``.
        """
        host = host_of(url)
        last = ""
        for attempt in range(1, self.max_attempts + 1):
            check_breaker(self.breaker, host, last)
            try:
                async with self.limiter.slot(host):
                    resp = await client.request(method, url, **kwargs)
            except NOT_FOLLOWED as exc:
                raise not_followed(method, url, exc) from exc
            except (httpx.TransportError, httpx.DecodingError) as exc:
                self.breaker.failure(host, exc)
                if (isinstance(exc, httpx.ConnectError) and connect_attempts is not None
                        and attempt >= connect_attempts):
                    raise HostUnreachableError(
                        host, f"{method} {url}, {attempt} attempt(s)", exc) from exc
                last = describe(exc)
                retry_after = None
            else:
                if resp.status_code < 400:
                    self.breaker.success(host)
                    return resp
                if not is_retryable_status(resp.status_code):
                    self.breaker.success(host)
                    raise HTTPStatusError(url, resp.status_code)
                if resp.status_code >= 500:
                    self.breaker.failure(host, f"HTTP {resp.status_code} from {method} {url}")
                last = f"HTTP {resp.status_code}"
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if attempt < self.max_attempts:
                delay = self.backoff.delay(attempt, retry_after)
                log.info("%s %s: %s; retry %d in %.2f s", method, url, last, attempt, delay)
                await asyncio.sleep(delay)
        raise TransferError(f"{method} {url}: gave up after {self.max_attempts} attempts: {last}")


class HTTPDownloader:
    """Streams URLs into verified ``.part`` files; see the module docstring.

    ``chunk_size`` is the write block. A file known beforehand (expected size,
    or the sidecar of an earlier attempt) to hold ``thread_min_bytes`` or more is
    fetched in a worker thread straight from the socket
    (:mod:`exocube.acquire.blocking`); other bodies announcing ``direct_min_bytes``
    or more are read past h11 in the event loop (see :func:`_body_chunks`).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        politeness: Politeness,
        chunk_size: int = 1 << 20,
        resume_min_bytes: int = 1 << 20,
        direct_min_bytes: int = DIRECT_MIN_BYTES,
        thread_min_bytes: int = THREAD_MIN_BYTES,
    ) -> None:
        self.client = client
        self.polite = politeness
        self.chunk_size = chunk_size
        self.resume_min_bytes = resume_min_bytes
        self.read_timeout = client.timeout.read
        self.direct_min_bytes = direct_min_bytes
        self.thread_min_bytes = thread_min_bytes

    async def fetch(
        self,
        url: str,
        part: PartFile,
        expected: Expected = NOTHING_EXPECTED,
        progress: Progress | None = None,
        allowance: Allowance | None = None,
    ) -> Fetched:
        """Download ``url`` into ``part`` and verify it; raise :class:`TransferError` if
        not, :class:`~exocube.errors.QuotaExceededError` when ``allowance`` runs out."""
        host = host_of(url)
        last = ""
        restarts: list[str] = []
        restarted_after_checksum = False
        attempt = 0
        while attempt < self.polite.max_attempts:
            attempt += 1
            check_breaker(self.polite.breaker, host, last)
            try:
                fetched = await self._attempt(url, part, expected, progress, allowance)
            except _Retry as exc:
                last = str(exc)
                if isinstance(exc, _Restart):
                    restarts.append(last)
                if exc.host_fault:
                    self.polite.breaker.failure(host, exc.__cause__ or f"{exc} from GET {url}")
                if attempt < self.polite.max_attempts:
                    delay = self.polite.backoff.delay(attempt, exc.retry_after)
                    log.info("GET %s: %s; retry %d in %.2f s", url, last, attempt, delay)
                    await asyncio.sleep(delay)
                continue
            except ChecksumError as exc:
                resumed = bool((part.meta(url) or {}).get("resumed"))
                part.discard()
                if not resumed or restarted_after_checksum:
                    raise
                restarted_after_checksum = True
                last = str(exc)
                restarts.append(f"restarted: a resumed download failed its check ({exc})")
                log.warning("%s; a resumed download is suspect, starting over", exc)
                continue
            except HTTPStatusError:
                self.polite.breaker.success(host)
                raise
            self.polite.breaker.success(host)
            fetched.attempts = attempt
            fetched.restarts = restarts + fetched.restarts
            return fetched
        raise TransferError(
            f"GET {url}: gave up after {self.polite.max_attempts} attempts; last error: {last}. "
            f"{kept_part(part)}"
        )

    async def _attempt(
        self, url: str, part: PartFile, expected: Expected, progress: Progress | None,
        allowance: Allowance | None,
    ) -> Fetched:
        meta = part.meta(url)
        if meta is None:
            part.part.unlink(missing_ok=True)
        elif meta.get("verified"):
            return self._reverify(url, part, meta, expected)
        offset = part.offset() if meta else 0
        validator = _validator(meta) if meta else None
        headers = {}
        if offset and validator:
            headers = {"Range": f"bytes={offset}-", "If-Range": validator}
        elif offset:
            offset = 0
        size = expected.size if expected.size is not None else (meta or {}).get("expected_size")
        try:
            async with self.polite.limiter.slot(host_of(url)):
                if size is not None and size >= self.thread_min_bytes:
                    return await run_in_thread(
                        lambda cancel: self._attempt_blocking(
                            url, part, headers, offset, expected, progress, allowance, cancel),
                        name="exocube-http-body",
                    )
                async with self.client.stream("GET", url, headers=headers) as resp:
                    return await self._receive(url, part, resp, offset, expected, progress,
                                               allowance)
        except NOT_FOLLOWED as exc:
            raise not_followed("GET", url, exc) from exc
        except (httpx.TimeoutException, httpcore.TimeoutException) as exc:
            raise _Retry(f"timeout ({type(exc).__name__})") from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpcore.NetworkError) as exc:
            raise _Retry(f"connection failed: {type(exc).__name__}: {exc}") from exc

    def _attempt_blocking(
        self, url: str, part: PartFile, headers: dict[str, str], offset: int,
        expected: Expected, progress: Progress | None, allowance: Allowance | None,
        cancel: Cancel,
    ) -> Fetched:
        """One attempt in a worker thread (see :mod:`exocube.acquire.blocking`), on a
        connection of its own with the async client's timeouts and headers."""
        with (
            httpx.Client(timeout=self.client.timeout, headers=self.client.headers,
                         follow_redirects=self.client.follow_redirects) as client,
            client.stream("GET", url, headers=headers) as resp,
        ):
            body = self._begin(url, part, resp, offset, expected)
            if body.start:
                body.hashes.update_from_file(part.part, body.start)
            pipe = BufferPipe(part.open(body.start), body.hashes, self.chunk_size)
            limit = self._limit(resp, body, expected, allowance)
            received = blocking.receive(resp, pipe, self.read_timeout, cancel, progress,
                                        limit.taker())
            if received < 0:
                raise self._stopped(url, part, limit)
            fetched = self._finish(url, part, resp, expected, body, received)
        fetched.client += " (body read in a thread)"
        return fetched

    async def _receive(
        self,
        url: str,
        part: PartFile,
        resp: httpx.Response,
        offset: int,
        expected: Expected,
        progress: Progress | None,
        allowance: Allowance | None,
    ) -> Fetched:
        body = self._begin(url, part, resp, offset, expected)
        if body.start:
            await asyncio.to_thread(body.hashes.update_from_file, part.part, body.start)
        limit = self._limit(resp, body, expected, allowance)
        received = await self._stream_body(resp, part, body.start, body.hashes, progress,
                                           limit.taker())
        if received < 0:
            raise self._stopped(url, part, limit)
        return self._finish(url, part, resp, expected, body, received)

    @staticmethod
    def _limit(
        resp: httpx.Response, body: _Body, expected: Expected, allowance: Allowance | None
    ) -> _Limit:
        """A body with a Content-Length is bounded by it already (h11 and the direct
        readers stop there); one without is capped at the expected size."""
        size = body.total if body.total is not None else expected.size
        if size is None or content_length(resp) is not None:
            return _Limit(allowance, None)
        return _Limit(allowance, size - body.start)

    @classmethod
    def _stopped(cls, url: str, part: PartFile, limit: _Limit) -> Exception:
        """The error for a body that ``limit`` stopped: too long, or over the quota."""
        if limit.over_cap:
            part.discard()
            return ChecksumError(
                f"{_short(url)}: the server sent more than the {limit.cap} bytes it announced or "
                "the plan expected; stopped and discarded. The file changed on the server "
                "or the server is misbehaving")
        return cls._quota_stop(url, part, limit.allowance)

    @staticmethod
    def _quota_stop(url: str, part: PartFile, allowance: Any) -> QuotaExceededError:
        kept = part.offset()
        return QuotaExceededError(
            url, str(part.part), kept,
            f"download quota reached: stopped {_short(url)} after {format_bytes(kept)} in the part "
            f"file ({allowance.describe()}). The part file {part.part} and its sidecar are "
            "kept: run again with a larger --max-download-gb to resume it")

    def _begin(
        self, url: str, part: PartFile, resp: httpx.Response, offset: int, expected: Expected
    ) -> _Body:
        """Check the status and announced size, record the validators in the sidecar."""
        status = resp.status_code
        if status == 416 and offset:
            part.discard()
            raise _Retry("server refused the range (416); restarting from zero", 0, False)
        if status >= 400:
            if is_retryable_status(status):
                raise _Retry(
                    f"HTTP {status}",
                    parse_retry_after(resp.headers.get("Retry-After")),
                    host_fault=status >= 500,
                )
            raise HTTPStatusError(url, status)
        start, total = self._start_and_total(resp, offset)
        if start is None:
            part.discard()
            raise _Restart(f"206 with Content-Range {resp.headers.get('Content-Range')!r}, "
                           f"not starting at the requested offset {offset}")
        if start:
            changed = changed_validators(part.meta(url), resp, total)
            if changed:
                part.discard()
                raise _Restart(f"validator changed ({changed}); the {format_bytes(offset)} "
                               "kept were of another version")
        dropped = (f"restarted: the server answered {status} to a range request from "
                   f"offset {offset}" if offset and not start else "")
        if expected.size is not None and total is not None and total != expected.size:
            raise ChecksumError(
                f"{url}: server announces {total} bytes, expected {expected.size}"
            )
        resumable = total is None or total >= self.resume_min_bytes
        if resumable:
            part.save_meta({
                "url": url,
                "etag": resp.headers.get("ETag"),
                "last_modified": resp.headers.get("Last-Modified"),
                "expected_size": expected.size if expected.size is not None else total,
                "hash": "sha256" + ("+md5" if expected.md5 else ""),
                "resumed": start > 0,
            })
        return _Body(start, total, resumable, Hashes(with_md5=bool(expected.md5)), dropped)

    def _finish(
        self, url: str, part: PartFile, resp: httpx.Response, expected: Expected,
        body: _Body, received: int,
    ) -> Fetched:
        """Check the body's size and hashes, mark the sidecar verified."""
        hashes = body.hashes
        if body.total is not None and hashes.size < body.total:
            raise _Retry(f"short body: got {hashes.size} of {body.total} bytes")
        if body.total is not None and hashes.size > body.total:
            part.discard()  # a 206 whose Content-Range reaches past its own total
            raise _Restart(f"{hashes.size} bytes after resuming at {body.start}, more than the "
                           f"{body.total} the server announced")
        check(hashes, expected, url)
        if body.resumable:
            meta = part.meta(url) or {}
            meta.update(verified=True, sha256=hashes.sha256.hexdigest(), size=hashes.size,
                        md5=hashes.md5.hexdigest() if hashes.md5 else None)
            part.save_meta(meta)
        return Fetched(
            url=url,
            part=part,
            size=hashes.size,
            sha256=hashes.sha256.hexdigest(),
            md5=hashes.md5.hexdigest() if hashes.md5 else None,
            final_url=str(resp.url),
            status=resp.status_code,
            headers=dict(resp.headers),
            redirects=[str(r.url) for r in resp.history],
            resumed_from=body.start,
            bytes_received=received,
            retrieved_at=datetime.now(UTC).isoformat(),
            restarts=[body.restarted] if body.restarted else [],
        )

    @staticmethod
    def _start_and_total(resp: httpx.Response, offset: int) -> tuple[int | None, int | None]:
        """Where the body starts in the file and the file's total size (``None``: unknown)."""
        if resp.status_code == 206:
            match = CONTENT_RANGE.fullmatch(resp.headers.get("Content-Range", "").strip())
            if not match or int(match.group(1)) != offset:
                return None, None
            total = match.group(3)
            return offset, None if total == "*" else int(total)
        length = resp.headers.get("Content-Length")
        return 0, int(length) if length and length.isdigit() else None

    async def _stream_body(
        self,
        resp: httpx.Response,
        part: PartFile,
        start: int,
        hashes: Hashes,
        progress: Progress | None,
        take: Callable[[int], int] | None = None,
    ) -> int:
        """Write and hash the body in blocks of ``chunk_size``; the bytes received, or
        -1 when ``take`` allowed only part of a chunk (that part and what came
        before are written).

        A large body (``direct_min_bytes`` or unknown length) is written and hashed
        in a worker thread (:class:`~exocube.acquire.partial.BlockPipe`) while the
        event loop only receives; a small one in the event loop. A block is handed
        over as soon as it is full, so a killed process loses at most the queued
        blocks and the one being gathered; on errors what arrived is written.
        """
        length = content_length(resp)
        pipe: BlockPipe | InlineBlocks
        if length is None or length >= self.direct_min_bytes:
            pipe = BlockPipe(part.open(start), hashes)
        else:
            pipe = InlineBlocks(part.open(start), hashes)
        block: list[bytes] = []
        pending = 0
        received = 0
        try:
            async for chunk in _body_chunks(resp, self.read_timeout, self.direct_min_bytes):
                if take is not None and (allowed := take(len(chunk))) < len(chunk):
                    block.append(chunk[:allowed])
                    return -1
                block.append(chunk)
                pending += len(chunk)
                received += len(chunk)
                if progress:
                    progress(len(chunk))
                if pending >= self.chunk_size:
                    await pipe.put(block)
                    block, pending = [], 0
        finally:
            await pipe.close(last=block)
        return received

    def _reverify(
        self, url: str, part: PartFile, meta: dict[str, Any], expected: Expected
    ) -> Fetched:
        """A part verified before a crash: hash it again instead of downloading it again."""
        hashes = Hashes(with_md5=bool(expected.md5))
        hashes.update_from_file(part.part, part.offset())
        check(hashes, expected, url)
        if hashes.sha256.hexdigest() != meta.get("sha256"):
            raise ChecksumError(f"{part.part} changed on disk since it was verified")
        return Fetched(
            url=url, part=part, size=hashes.size, sha256=hashes.sha256.hexdigest(),
            md5=meta.get("md5"), final_url=url, status=200,
            headers={k: v for k, v in (("ETag", meta.get("etag")),
                                       ("Last-Modified", meta.get("last_modified"))) if v},
            retrieved_at=datetime.now(UTC).isoformat(), bytes_received=0,
        )


async def _body_chunks(
    resp: httpx.Response, read_timeout: float | None, direct_min_bytes: int
) -> AsyncIterator[bytes]:
    """The raw body, read past h11 from the connection when that is safe and worth it.

    httpcore's HTTP/1.1 body path copies every byte several times (h11's receive
    buffer, its slices, ``bytes()``). A body with a ``Content-Length`` of at least
    :data:`DIRECT_MIN_BYTES` is read instead straight from the response's
    ``network_stream`` (the httpx/httpcore extension, TLS included) once h11 has
    handed over what it buffered: h11 returns everything it holds, up to the
    content length, as the first chunk. The connection is then closed, not reused.
    """
    raw = resp.aiter_raw()
    length = content_length(resp)
    stream = resp.extensions.get("network_stream")
    direct = (
        resp.http_version == "HTTP/1.1"
        and length is not None
        and length >= direct_min_bytes
        and stream is not None
    )
    try:
        if not direct:
            async for chunk in raw:
                yield chunk
            return
        left = length
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


def _short(url: str, limit: int = 120) -> str:
    """``url`` for a message: a TAP query URL can hold kilobytes."""
    return url if len(url) <= limit else url[: limit - 3] + "..."


def _validator(meta: dict[str, Any]) -> str | None:
    """A strong ETag or a Last-Modified date, usable in ``If-Range``; else ``None``."""
    if not meta.get("resumable", True):
        return None
    etag = meta.get("etag")
    if etag and not etag.startswith("W/"):
        return etag
    return meta.get("last_modified")


def changed_validators(
    saved: dict[str, Any] | None, resp: httpx.Response, total: int | None
) -> str:
    """How a 206 differs from the sidecar the kept bytes were written under (ETag,
    Last-Modified, total size), e.g. ``etag "a" -> "b"``; ``""`` when it does not."""
    if not saved:
        return ""
    diffs = []
    for key, header in (("etag", "ETag"), ("last_modified", "Last-Modified")):
        old, new = saved.get(key), resp.headers.get(header)
        if old and old != new:
            diffs.append(f"{key.replace('_', '-')} {old} -> {new or '(none)'}")
    old_size = saved.get("expected_size")
    if old_size is not None and total is not None and old_size != total:
        diffs.append(f"size {old_size} -> {total}")
    return ", ".join(diffs)
