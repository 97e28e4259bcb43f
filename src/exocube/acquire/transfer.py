"""The download protocol over HTTP(S): request, resume, verify, retry.

:meth:`HTTPDownloader.fetch` moves one URL into a verified ``.part`` file
(:class:`~exocube.acquire.partial.PartFile`); the caller renames it to its final
name after the quality checks (:meth:`PartFile.promote`, or the destination's
upload), so no partial or unverified file is ever visible under a final name.
Each attempt:

1. request: reads the sidecar. A part verified before a crash is hashed again
   instead of downloaded. A part with a strong ETag or a Last-Modified date is
   resumed with ``Range`` + ``If-Range``; any other part is dropped;
2. resume: the answer's headers decide whether the kept bytes are continued
   (:meth:`_Attempt.begin`). Only a 206 whose ``Content-Range`` starts at our
   offset and whose validators (ETag, Last-Modified, total size) equal the
   sidecar's continues them: a server that ignores ``If-Range`` would otherwise
   splice two versions. Any mismatch discards the part and restarts from zero,
   as a 200 does; each restart is recorded in the provenance (``restarts``).
   The validators are then saved in the sidecar;
3. the body is read by the reader :mod:`exocube.acquire.bodies` picks, drawing
   the run's download quota as bytes arrive (``allowance``): a transfer stops
   with :class:`~exocube.errors.QuotaExceededError` before a read would pass
   it, keeping the part and its sidecar for a later resume;
4. verify: size, sha256 and any published MD5 are checked
   (:meth:`_Attempt.end`) and the sidecar marked verified.

Attempts are repeated by :meth:`~exocube.acquire.retry.Politeness.attempts`
(the loop FTP uses too): 408/425/429/5xx, resets, timeouts and short bodies are
retried with capped, jittered exponential backoff that honours ``Retry-After``;
401/403/404 and other 4xx fail at once with :class:`HTTPStatusError`; every
request goes through the per-host rate limiter and circuit breaker.
:func:`request` is the same loop for small requests read into memory.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpcore
import httpx

from exocube import __version__
from exocube.acquire.bodies import (
    DEFAULT_PATHS,
    FastPaths,
    Progress,
    Reader,
    Target,
    content_length,
    receive,
)
from exocube.acquire.breaker import HostUnreachableError, describe
from exocube.acquire.client import short
from exocube.acquire.partial import NOTHING_EXPECTED, Expected, Hashes, PartFile, Sidecar, check
from exocube.acquire.retry import Politeness, Retry, is_retryable_status, parse_retry_after
from exocube.acquire.units import format_bytes
from exocube.errors import ChecksumError, QuotaExceededError, TransferError

log = logging.getLogger(__name__)

CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
# redirects that cannot be followed (to file://, ftp:// or another scheme; a loop or
# a chain longer than httpx's 20): asking again gives the same answer
NOT_FOLLOWED = (httpx.UnsupportedProtocol, httpx.TooManyRedirects)


class HTTPStatusError(TransferError):
    """The server answered with a status that asking again will not change."""

    def __init__(self, url: str, status: int) -> None:
        self.url = url
        self.status = status
        super().__init__(
            f"{url}: HTTP {status} ({httpx.codes.get_reason_phrase(status) or 'error'}); "
            "not retried. Check the URL, the source's base URL setting, or your access rights"
        )


class Allowance(Protocol):
    """What a transfer may still download: ``take(n)`` is how many of ``n`` bytes
    about to be written fit the quota (fewer: write those, then stop)."""

    def take(self, nbytes: int) -> int: ...

    def describe(self) -> str: ...


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


def host_of(url: str) -> str:
    return urlsplit(url).netloc.lower()


def not_followed(method: str, url: str, exc: Exception) -> TransferError:
    """The error for a request whose redirect exocube does not follow; not retried."""
    return TransferError(
        f"{method} {short(url)}: redirect not followed: {exc} Only http:// and https:// "
        "redirects are followed, at most 20; check the URL or the source's base URL setting")


def kept_part(part: PartFile) -> str:
    """What a failure message says about the part file: kept (with its size) only
    when there is one."""
    size = part.offset()
    if not size:
        return "No partial file was kept"
    return (f"The partial file {part.part} ({format_bytes(size)}) is kept; resume the run to "
            "continue it")


def quota_stopped(url: str, part: PartFile, allowance: Allowance) -> QuotaExceededError:
    """The error for a transfer the download quota stopped (its part is kept)."""
    kept = part.offset()
    return QuotaExceededError(
        url, str(part.part), kept,
        f"download quota reached: stopped {short(url)} after {format_bytes(kept)} in the part "
        f"file ({allowance.describe()}). The part file {part.part} and its sidecar are "
        "kept: run again with a larger --max-download-gb to resume it")


def check_status(url: str, resp: httpx.Response) -> None:
    """:class:`Retry` for an error status a later attempt may not get (5xx also
    counts against the host), :class:`HTTPStatusError` for one it will."""
    status = resp.status_code
    if status < 400:
        return
    if is_retryable_status(status):
        raise Retry(f"HTTP {status}", parse_retry_after(resp.headers.get("Retry-After")),
                    host_fault=status >= 500)
    raise HTTPStatusError(url, status)


async def request(
    polite: Politeness, client: httpx.AsyncClient, method: str, url: str,
    connect_attempts: int | None = None, **kwargs: Any,
) -> httpx.Response:
    """A small, fully read request (queries, listings, indexes) with retries.

    ``connect_attempts`` bounds the attempts whose connection cannot be made at
    all (refused, unknown host name, no route: ``httpx.ConnectError``); after
    them :class:`HostUnreachableError` is raised. Planning passes
    ``acquire.plan_connect_attempts``; timeouts and 5xx keep ``max_attempts``.
    """
    host = host_of(url)

    async def attempt(n: int) -> httpx.Response:
        try:
            async with polite.limiter.slot(host):
                resp = await client.request(method, url, **kwargs)
        except NOT_FOLLOWED as exc:
            raise not_followed(method, url, exc) from exc
        except (httpx.TransportError, httpx.DecodingError) as exc:
            if (isinstance(exc, httpx.ConnectError) and connect_attempts is not None
                    and n >= connect_attempts):
                polite.breaker.failure(host, exc)
                raise HostUnreachableError(host, f"{method} {url}, {n} attempt(s)", exc) from exc
            raise Retry(describe(exc)) from exc
        check_status(url, resp)
        return resp

    done = await polite.attempts(host, f"{method} {url}", attempt, answered=(HTTPStatusError,))
    return done.result


def _restart(reason: str) -> Retry:
    """The kept bytes cannot be continued: the part was discarded, start from zero."""
    return Retry(f"restarted: {reason}", 0, host_fault=False, restart=f"restarted: {reason}")


class HTTPDownloader:
    """Streams URLs into verified ``.part`` files; see the module docstring.

    ``chunk_size`` is the write block; a body announcing fewer than
    ``resume_min_bytes`` gets no sidecar (it restarts); ``paths`` picks the body
    reader (:class:`~exocube.acquire.bodies.FastPaths`).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        politeness: Politeness,
        chunk_size: int = 1 << 20,
        resume_min_bytes: int = 1 << 20,
        paths: FastPaths = DEFAULT_PATHS,
    ) -> None:
        self.client = client
        self.polite = politeness
        self.chunk_size = chunk_size
        self.resume_min_bytes = resume_min_bytes
        self.paths = paths

    async def fetch(
        self,
        url: str,
        part: PartFile,
        expected: Expected = NOTHING_EXPECTED,
        progress: Progress | None = None,
        allowance: Allowance | None = None,
    ) -> Fetched:
        """Download ``url`` into ``part`` and verify it; raise :class:`TransferError` if
        not, :class:`~exocube.errors.QuotaExceededError` when ``allowance`` runs out.

        A resumed part that fails its checks is fetched once more from zero."""
        checksum_restarted = False

        async def attempt(n: int) -> Fetched:
            nonlocal checksum_restarted
            try:
                return await self._attempt(url, part, expected, progress, allowance)
            except ChecksumError as exc:
                meta = part.meta(url)
                part.discard()
                if not (meta and meta.resumed) or checksum_restarted:
                    raise
                checksum_restarted = True
                log.warning("%s; a resumed download is suspect, starting over", exc)
                raise Retry(str(exc), 0, host_fault=False,
                            restart=f"restarted: a resumed download failed its check ({exc})"
                            ) from exc

        done = await self.polite.attempts(host_of(url), f"GET {url}", attempt,
                                          answered=(HTTPStatusError,),
                                          kept=lambda: kept_part(part))
        fetched = done.result
        fetched.attempts = done.attempts
        fetched.restarts = done.restarts + fetched.restarts
        return fetched

    async def _attempt(
        self, url: str, part: PartFile, expected: Expected, progress: Progress | None,
        allowance: Allowance | None,
    ) -> Fetched:
        """One request: resume headers from the sidecar, then the body (bodies.receive)."""
        meta = part.meta(url)
        if meta is None:
            part.part.unlink(missing_ok=True)
        elif meta.verified:
            return self._reverify(url, part, meta, expected)
        offset = part.offset() if meta else 0
        validator = meta.validator() if meta else None
        headers = {}
        if offset and validator:
            headers = {"Range": f"bytes={offset}-", "If-Range": validator}
        elif offset:
            offset = 0
        known = meta.expected_size if meta else None
        size = expected.size if expected.size is not None else known
        attempt = _Attempt(url, part, offset, expected, allowance, self.resume_min_bytes)
        try:
            async with self.polite.limiter.slot(host_of(url)):
                return await receive(self.client, url, headers, size, attempt, self.paths,
                                     self.chunk_size, progress)
        except NOT_FOLLOWED as exc:
            raise not_followed("GET", url, exc) from exc
        except (httpx.TimeoutException, httpcore.TimeoutException) as exc:
            raise Retry(f"timeout ({type(exc).__name__})") from exc
        except (httpx.NetworkError, httpx.RemoteProtocolError, httpcore.NetworkError) as exc:
            raise Retry(f"connection failed: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _reverify(url: str, part: PartFile, meta: Sidecar, expected: Expected) -> Fetched:
        """A part verified before a crash: hash it again instead of downloading it again."""
        hashes = Hashes(with_md5=bool(expected.md5))
        hashes.update_from_file(part.part, part.offset())
        check(hashes, expected, url)
        if hashes.sha256.hexdigest() != meta.sha256:
            raise ChecksumError(f"{part.part} changed on disk since it was verified")
        return Fetched(
            url=url, part=part, size=hashes.size, sha256=hashes.sha256.hexdigest(),
            md5=meta.md5, final_url=url, status=200,
            headers={k: v for k, v in (("ETag", meta.etag),
                                       ("Last-Modified", meta.last_modified)) if v},
            retrieved_at=datetime.now(UTC).isoformat(), bytes_received=0,
        )


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


class _Attempt:
    """One GET of :class:`HTTPDownloader`: checks the answer's headers against the
    kept bytes, then what arrived (a :class:`~exocube.acquire.bodies.Receiver`)."""

    def __init__(self, url: str, part: PartFile, offset: int, expected: Expected,
                 allowance: Allowance | None, resume_min_bytes: int) -> None:
        self.url = url
        self.part = part
        self.offset = offset
        self.expected = expected
        self.resume_min_bytes = resume_min_bytes
        self.limit = _Limit(allowance, None)
        self.start = 0
        self.total: int | None = None
        self.resumable = False
        self.restarted = ""
        self.hashes = Hashes(with_md5=bool(expected.md5))

    def begin(self, resp: httpx.Response) -> Target:
        """Check the status and announced size, record the validators in the sidecar."""
        url, part, offset, expected = self.url, self.part, self.offset, self.expected
        if resp.status_code == 416 and offset:
            part.discard()
            raise Retry("server refused the range (416); restarting from zero", 0, False)
        check_status(url, resp)
        start, total = _start_and_total(resp, offset)
        if start is None:
            part.discard()
            raise _restart(f"206 with Content-Range {resp.headers.get('Content-Range')!r}, "
                           f"not starting at the requested offset {offset}")
        if start:
            changed = changed_validators(part.meta(url), resp, total)
            if changed:
                part.discard()
                raise _restart(f"validator changed ({changed}); the {format_bytes(offset)} "
                               "kept were of another version")
        if offset and not start:
            self.restarted = (f"restarted: the server answered {resp.status_code} to a range "
                              f"request from offset {offset}")
        if expected.size is not None and total is not None and total != expected.size:
            raise ChecksumError(
                f"{url}: server announces {total} bytes, expected {expected.size}"
            )
        self.start, self.total = start, total
        self.resumable = total is None or total >= self.resume_min_bytes
        if self.resumable:
            part.save_meta(Sidecar(
                url=url, etag=resp.headers.get("ETag"),
                last_modified=resp.headers.get("Last-Modified"),
                expected_size=expected.size if expected.size is not None else total,
                hash="sha256" + ("+md5" if expected.md5 else ""), resumed=start > 0))
        # a body with a Content-Length is bounded by it already (h11 and the direct
        # readers stop there); one without is capped at the expected size
        size = total if total is not None else expected.size
        if size is not None and content_length(resp) is None:
            self.limit.cap = size - start
        return Target(part, start, self.hashes, self.limit.taker())

    def end(self, resp: httpx.Response, received: int, reader: Reader) -> Fetched:
        """Check the body's size and hashes, mark the sidecar verified."""
        if received < 0:
            raise self._stopped()
        hashes, part = self.hashes, self.part
        if self.total is not None and hashes.size < self.total:
            raise Retry(f"short body: got {hashes.size} of {self.total} bytes")
        if self.total is not None and hashes.size > self.total:
            part.discard()  # a 206 whose Content-Range reaches past its own total
            raise _restart(f"{hashes.size} bytes after resuming at {self.start}, more than "
                           f"the {self.total} the server announced")
        check(hashes, self.expected, self.url)
        if self.resumable:
            part.save_meta((part.meta(self.url) or Sidecar(url=self.url)).verified_as(hashes))
        return Fetched(
            url=self.url,
            part=part,
            size=hashes.size,
            sha256=hashes.sha256.hexdigest(),
            md5=hashes.md5.hexdigest() if hashes.md5 else None,
            final_url=str(resp.url),
            status=resp.status_code,
            headers=dict(resp.headers),
            redirects=[str(r.url) for r in resp.history],
            resumed_from=self.start,
            bytes_received=received,
            retrieved_at=datetime.now(UTC).isoformat(),
            restarts=[self.restarted] if self.restarted else [],
            client=f"httpx {httpx.__version__}"
            + (" (body read in a thread)" if reader is Reader.THREAD else ""),
        )

    def _stopped(self) -> Exception:
        """The error for a body that the limit stopped: too long, or over the quota."""
        if self.limit.over_cap:
            self.part.discard()
            return ChecksumError(
                f"{short(self.url)}: the server sent more than the {self.limit.cap} bytes it "
                "announced or the plan expected; stopped and discarded. The file changed on "
                "the server or the server is misbehaving")
        assert self.limit.allowance is not None  # below its cap, only the quota stops a body
        return quota_stopped(self.url, self.part, self.limit.allowance)


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


def changed_validators(saved: Sidecar | None, resp: httpx.Response, total: int | None) -> str:
    """How a 206 differs from the sidecar the kept bytes were written under (ETag,
    Last-Modified, total size), e.g. ``etag "a" -> "b"``; ``""`` when it does not."""
    if not saved:
        return ""
    diffs = []
    for name, old, header in (("etag", saved.etag, "ETag"),
                              ("last-modified", saved.last_modified, "Last-Modified")):
        new = resp.headers.get(header)
        if old and old != new:
            diffs.append(f"{name} {old} -> {new or '(none)'}")
    if saved.expected_size is not None and total is not None and saved.expected_size != total:
        diffs.append(f"size {saved.expected_size} -> {total}")
    return ", ".join(diffs)
