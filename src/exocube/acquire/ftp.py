"""FTP downloads with resume (``REST``), for archives such as 1000 Genomes.

:mod:`ftplib` is blocking, so each attempt runs in a thread of its own
(:func:`~exocube.acquire.threads.run_in_thread`: cancelling the task shuts the
data connection down); retries (the one loop,
:meth:`~exocube.acquire.retry.Politeness.attempts`), the rate limit and the
circuit breaker are the same as for HTTP. The sidecar's validator is the
file's ``MDTM`` time and ``SIZE``: a part is resumed only if both are unchanged (otherwise it is
discarded and the provenance's ``restarts`` says why). The run's download
quota is drawn per received block, as for HTTP.
"""

from __future__ import annotations

import dataclasses
import ftplib
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import unquote, urlsplit

from exocube.acquire.bodies import Progress
from exocube.acquire.partial import NOTHING_EXPECTED, Expected, Hashes, PartFile, Sidecar, check
from exocube.acquire.retry import Politeness, Retry
from exocube.acquire.threads import Cancel, run_in_thread
from exocube.acquire.transfer import Allowance, Fetched, host_of, kept_part, quota_stopped
from exocube.errors import ChecksumError, TransferError


class FTPPermanentError(TransferError):
    """The FTP server gave a permanent (5xx) reply, e.g. 550 no such file."""


class _ShortFile(Exception):
    pass


class _QuotaStop(Exception):
    """The download quota refused the next block."""


class FTPDownloader:
    """Downloads ``ftp://`` URLs into verified ``.part`` files."""

    def __init__(self, politeness: Politeness, timeout: float = 60.0) -> None:
        self.polite = politeness
        self.timeout = timeout

    async def fetch(
        self,
        url: str,
        part: PartFile,
        expected: Expected = NOTHING_EXPECTED,
        progress: Progress | None = None,
        allowance: Allowance | None = None,
    ) -> Fetched:
        """Download ``url`` into ``part`` and verify it, retrying as HTTP does
        (:meth:`~exocube.acquire.retry.Politeness.attempts`); a permanent (5xx)
        reply raises :class:`FTPPermanentError` at once."""
        host = host_of(url)

        async def attempt(n: int) -> Fetched:
            try:
                async with self.polite.limiter.slot(host):
                    return await run_in_thread(
                        lambda cancel: self._attempt(url, part, expected, progress, allowance,
                                                     cancel),
                        name="exocube-ftp")
            except ftplib.error_perm as exc:
                raise FTPPermanentError(f"{url}: FTP server replied {exc}; not retried") from exc
            except (ftplib.error_temp, ftplib.error_reply, OSError, EOFError, _ShortFile) as exc:
                raise Retry(f"{type(exc).__name__}: {exc}") from exc

        done = await self.polite.attempts(host, f"FTP {url}", attempt,
                                          answered=(FTPPermanentError,),
                                          kept=lambda: kept_part(part))
        done.result.attempts = done.attempts
        return done.result

    def _attempt(
        self, url: str, part: PartFile, expected: Expected, progress: Progress | None,
        allowance: Allowance | None, cancel: Cancel,
    ) -> Fetched:
        parts = urlsplit(url)
        path = unquote(parts.path)
        ftp = ftplib.FTP(timeout=self.timeout)
        try:
            ftp.connect(parts.hostname or "", parts.port or 21)
            ftp.login(parts.username or "anonymous", parts.password or "exocube@")
            ftp.voidcmd("TYPE I")
            size = ftp.size(path)
            mdtm = ftp.sendcmd(f"MDTM {path}").split()[-1]
            offset, restarted = self._offset(url, part, size, mdtm)
            hashes = Hashes(with_md5=bool(expected.md5))
            if offset:
                hashes.update_from_file(part.part, offset)
            writer = part.open(offset)
            received = 0

            def sink(block: bytes) -> None:
                nonlocal received
                allowed = len(block) if allowance is None else allowance.take(len(block))
                if allowed < len(block):
                    writer.write(block[:allowed], hashes)
                    raise _QuotaStop
                writer.write(block, hashes)
                received += len(block)
                if progress:
                    progress(len(block))

            try:
                if size is None or offset < size:
                    self._retrieve(ftp, path, offset, sink, cancel)
            except _QuotaStop:
                assert allowance is not None  # only the allowance stops a block
                raise quota_stopped(url, part, allowance) from None
            finally:
                writer.close(sync=False)
            ftp.quit()
        finally:
            ftp.close()
        if size is not None and hashes.size < size:
            raise _ShortFile(f"short transfer: got {hashes.size} of {size} bytes")
        try:
            check(hashes, expected, url)
        except ChecksumError:
            part.discard()
            raise
        fetched = self._verified(url, part, hashes, offset, received, mdtm)
        fetched.restarts = [restarted] if restarted else []
        return fetched

    @staticmethod
    def _retrieve(
        ftp: ftplib.FTP, path: str, offset: int, sink: Callable[[bytes], None], cancel: Cancel
    ) -> None:
        """``RETR`` from ``offset`` (``REST``) into ``sink``: ``retrbinary`` with the
        data connection handed to ``cancel``."""
        with ftp.transfercmd(f"RETR {path}", offset or None) as conn:
            cancel.attach(conn)
            while data := conn.recv(1 << 16):
                sink(data)
        if cancel.cancelled.is_set():
            raise _ShortFile("cancelled")
        ftp.voidresp()

    @staticmethod
    def _offset(url: str, part: PartFile, size: int | None, mdtm: str) -> tuple[int, str]:
        """Bytes to keep from an earlier attempt (0 unless MDTM and SIZE are unchanged),
        and why kept bytes were dropped (``""``: none were)."""
        meta = part.meta(url)
        kept = part.offset() if meta else 0
        if not meta or meta.last_modified != mdtm or meta.expected_size != size:
            restarted = ""
            if meta and kept:
                restarted = (f"restarted: validator changed (MDTM {meta.last_modified} -> "
                             f"{mdtm}, SIZE {meta.expected_size} -> {size})")
            part.discard()
            part.save_meta(Sidecar(url=url, last_modified=mdtm, expected_size=size,
                                   hash="sha256"))
            return 0, restarted
        if size is not None and kept > size:
            part.discard()
            part.save_meta(dataclasses.replace(meta, resumed=False))
            return 0, f"restarted: the part ({kept} bytes) is longer than SIZE {size}"
        part.save_meta(dataclasses.replace(meta, resumed=kept > 0))
        return kept, ""

    @staticmethod
    def _verified(
        url: str, part: PartFile, hashes: Hashes, offset: int, received: int, mdtm: str
    ) -> Fetched:
        sha = hashes.sha256.hexdigest()
        md5 = hashes.md5.hexdigest() if hashes.md5 else None
        part.save_meta((part.meta(url) or Sidecar(url=url)).verified_as(hashes))
        return Fetched(
            url=url, part=part, size=hashes.size, sha256=sha, md5=md5, final_url=url,
            status=226, headers={"MDTM": mdtm, "SIZE": str(hashes.size)},
            resumed_from=offset, bytes_received=received, client="ftplib",
            retrieved_at=datetime.now(UTC).isoformat(),
        )
