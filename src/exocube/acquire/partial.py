"""Partial downloads: ``<name>.part`` plus a JSON sidecar ``<name>.part.json``.

The sidecar records what the bytes in the ``.part`` file are (URL, ETag,
Last-Modified, expected size, hash algorithm), so a later process can resume
them with ``Range``/``If-Range`` or throw them away. A file only ever reaches its
final name through :func:`os.replace` after its size and hashes were checked.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exocube.acquire.units import size_problem
from exocube.errors import ChecksumError

log = logging.getLogger(__name__)

HASH_BLOCK = 1 << 20
WRITE_BYTES = 16 << 10  # see PartWriter.write_chunks


@dataclass(frozen=True)
class Expected:
    """What a file must be: any of size, sha256 and a published MD5."""

    size: int | None = None
    sha256: str | None = None
    md5: str | None = None


NOTHING_EXPECTED = Expected()

_TEXT = (str, type(None))
# what each sidecar value may be; "size" is a byte count (units.size_problem) or None
SIDECAR_FIELDS: dict[str, tuple[type, ...] | str] = {
    "url": (str,), "etag": _TEXT, "last_modified": _TEXT, "hash": _TEXT, "sha256": _TEXT,
    "md5": _TEXT, "resumed": (bool,), "verified": (bool,), "resumable": (bool,),
    "expected_size": "size", "size": "size",
}


def sidecar_problem(meta: dict[str, Any]) -> str:
    """Why a sidecar's values cannot be trusted (``""`` if they can)."""
    for key, kind in SIDECAR_FIELDS.items():
        if key not in meta:
            continue
        value = meta[key]
        if kind == "size":
            why = "" if value is None else size_problem(value)
        else:
            why = "" if isinstance(value, kind) else f"is a {type(value).__name__}"
        if why:
            return f"its {key} {value!r:.40} {why}"
    return ""


class Hashes:
    """sha256 always; MD5 too when the source publishes one."""

    def __init__(self, with_md5: bool) -> None:
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False) if with_md5 else None
        self.size = 0

    def update_all(self, chunks: Sequence[bytes]) -> None:
        """``update`` with each chunk in order."""
        for chunk in chunks:
            self.update(chunk)

    def update(self, data: bytes | memoryview) -> None:
        self.sha256.update(data)
        if self.md5 is not None:
            self.md5.update(data)
        self.size += len(data)

    def update_from_file(self, path: Path, length: int) -> None:
        """Hash the first ``length`` bytes of ``path`` (the part kept for a resume)."""
        with path.open("rb") as fh:
            left = length
            while left:
                block = fh.read(min(HASH_BLOCK, left))
                if not block:
                    break
                self.update(block)
                left -= len(block)


def check(hashes: Hashes, expected: Expected, what: str) -> None:
    """Raise :class:`ChecksumError` unless size and hashes match ``expected``."""
    if expected.size is not None and hashes.size != expected.size:
        raise ChecksumError(
            f"{what}: size {hashes.size} bytes, expected {expected.size}; "
            "the transfer was cut short or the file changed on the server"
        )
    got = hashes.sha256.hexdigest()
    if expected.sha256 and got != expected.sha256.lower():
        raise ChecksumError(f"{what}: sha256 {got}, expected {expected.sha256}")
    if expected.md5 and hashes.md5 is not None:
        md5 = hashes.md5.hexdigest()
        if md5 != expected.md5.lower():
            raise ChecksumError(
                f"{what}: MD5 {md5} does not match the published MD5 {expected.md5}; "
                "the source's index or the file is wrong. Report it to the archive"
            )


class PartFile:
    """The ``.part`` file and sidecar that stand in for ``final`` until it is verified."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.part = final.with_name(final.name + ".part")
        self.sidecar = final.with_name(final.name + ".part.json")

    def meta(self, url: str) -> dict[str, Any] | None:
        """The sidecar, if it exists, describes ``url``, holds only values of the types
        :data:`SIDECAR_FIELDS` gives (it is read back from disk, where anything may
        have edited it), and its part file exists, no larger than the size it expects."""
        try:
            meta = json.loads(self.sidecar.read_text())
        except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
            return None  # no sidecar (a file where its folder would be: none either)
        if not isinstance(meta, dict) or meta.get("url") != url or not self.part.exists():
            return None
        why = sidecar_problem(meta)
        expected = meta.get("expected_size")
        if not why and expected is not None and self.offset() > expected:
            why = f"the part is larger than the expected {expected} bytes"
        if why:
            log.warning("%s: %s; the part is not trusted and the file is fetched from zero",
                        self.sidecar, why)
            return None
        return meta

    def offset(self) -> int:
        return self.part.stat().st_size if self.part.exists() else 0

    def save_meta(self, meta: dict[str, Any]) -> None:
        """Write the sidecar atomically."""
        self.sidecar.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.sidecar.with_name(self.sidecar.name + ".tmp")
        tmp.write_text(json.dumps(meta, sort_keys=True))
        os.replace(tmp, self.sidecar)

    def discard(self) -> None:
        self.part.unlink(missing_ok=True)
        self.sidecar.unlink(missing_ok=True)

    def open(self, offset: int) -> PartWriter:
        """A writer positioned at ``offset`` (the part is truncated there).

        At offset 0 the part is created afresh rather than truncated: on ext4 a
        truncate to size 0 marks the file for a flush of all its dirty pages on
        close (``auto_da_alloc``), 0.4 s per GiB here (``benchmarks/acquire.py``).
        """
        self.part.parent.mkdir(parents=True, exist_ok=True)
        if offset and self.part.exists():
            fh = self.part.open("r+b", buffering=0)
            fh.truncate(offset)
            fh.seek(offset)
            return PartWriter(fh)
        self.part.unlink(missing_ok=True)
        return PartWriter(self.part.open("wb", buffering=0))

    def promote(self, target: Path | None = None) -> Path:
        """Rename the verified part to ``target`` (default: its final name)."""
        target = target or self.final
        if target.parent != self.part.parent:
            target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.part, target)
        self.sidecar.unlink(missing_ok=True)
        return target


class PartWriter:
    """Appends blocks to an open part file, unbuffered: a written block is on disk
    (in the page cache) even if the process is killed right after."""

    def __init__(self, fh: Any) -> None:
        self.fh = fh

    def write(self, block: bytes, hashes: Hashes | None = None) -> None:
        self.write_chunks((block,))
        if hashes is not None:
            hashes.update(block)

    def write_chunks(self, chunks: Sequence[bytes | memoryview]) -> None:
        """Append ``chunks`` in order, :data:`WRITE_BYTES` per ``write`` call.

        Small writes make the kernel fill the page cache with small folios; a
        1 MiB write asks for large ones, and on the benchmark machine (a VM,
        Linux 6.18, ext4) filling those was measured 2-3x slower whenever
        another process's file had just been freed (``dd bs=1M`` after
        ``curl``: 0.5-1.3 GB/s; ``bs=16K``: 2.9 GB/s). curl writes 16 KiB too.
        """
        fd = self.fh.fileno()
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view[:WRITE_BYTES]):]

    def close(self, sync: bool) -> None:
        if sync:
            self.fh.flush()
            os.fsync(self.fh.fileno())
        self.fh.close()


class InlineBlocks:
    """:class:`BlockPipe`'s interface, writing and hashing in the caller's thread.

    For small bodies, where starting a thread costs more than it overlaps.
    """

    def __init__(self, writer: PartWriter, hashes: Hashes) -> None:
        self.writer = writer
        self.hashes = hashes

    async def put(self, chunks: Sequence[bytes]) -> None:
        self.writer.write_chunks(chunks)
        self.hashes.update_all(chunks)

    async def close(self, last: Sequence[bytes] = ()) -> None:
        try:
            if last:
                await self.put(last)
        finally:
            self.writer.close(sync=False)


class _Worker:
    """One thread applying ``fn`` to queued blocks in order, at most ``depth`` queued.

    After ``fn`` fails, the rest is drained without calling it; :meth:`check`
    raises the failure in the caller.
    """

    def __init__(self, name: str, fn: Callable[[Sequence[bytes]], None], depth: int) -> None:
        self.fn = fn
        self.queue: queue.SimpleQueue[Sequence[bytes] | None] = queue.SimpleQueue()
        self.slots = threading.Semaphore(depth)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (chunks := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.fn(chunks)
                except BaseException as exc:  # raised in the event loop by check()
                    self.error = exc
            self.slots.release()

    def check(self) -> None:
        if self.error is not None:
            raise self.error


class _WriteAndHash:
    """A part's writer and hasher threads, fed the same blocks in the same order."""

    def __init__(self, writer: PartWriter, hashes: Hashes, depth: int) -> None:
        self.writer = writer
        self.workers = (
            _Worker("exocube-part-writer", writer.write_chunks, depth),
            _Worker("exocube-part-hasher", hashes.update_all, depth),
        )
        self._closing = threading.Lock()

    def check(self) -> None:
        for worker in self.workers:
            worker.check()

    def put(self, chunks: Sequence[bytes | memoryview] | None) -> None:
        """Queue ``chunks`` for both workers (``None``: stop); takes no slot."""
        for worker in self.workers:
            worker.queue.put(chunks)

    def join(self) -> None:
        """Wait for both workers (after a ``None``), then close the file once."""
        try:
            for worker in self.workers:
                worker.thread.join()
        finally:
            with self._closing:  # a cancelled close() joins again in the event loop
                if not self.writer.fh.closed:
                    self.writer.close(sync=False)


class BlockPipe:
    """Writes and hashes blocks of chunks in two worker threads, each in arrival order.

    The event loop only receives; ``os.write`` and hashlib release the GIL, so
    writing and hashing run beside the network and beside each other. At most
    ``depth`` blocks wait per worker, so a killed process loses at most those and
    the block being gathered. A write error stops writing; the next :meth:`put`
    or :meth:`close` raises it.
    """

    def __init__(self, writer: PartWriter, hashes: Hashes, depth: int = 4) -> None:
        self._pair = _WriteAndHash(writer, hashes, depth)

    async def put(self, chunks: Sequence[bytes]) -> None:
        """Queue ``chunks``; wait (off the event loop) while ``depth`` blocks are queued."""
        self._pair.check()
        for worker in self._pair.workers:
            if not worker.slots.acquire(blocking=False):
                await asyncio.to_thread(worker.slots.acquire)
        self._pair.put(chunks)

    async def close(self, last: Sequence[bytes] = ()) -> None:
        """Write and hash what is queued and ``last``, stop the workers, close the file.

        ``last`` is queued without waiting for a slot, so received bytes are kept
        for a resume even when the transfer is failing or being cancelled. No fsync.
        """
        if last:
            self._pair.put(last)
        self._pair.put(None)
        try:
            await asyncio.to_thread(self._pair.join)
        except asyncio.CancelledError:
            self._pair.join()  # bounded: at most ``depth`` blocks per worker
            raise
        self._pair.check()


class BufferPipe:
    """:class:`BlockPipe` for a blocking reader: a ring of reused buffers.

    The caller's thread takes a buffer (:meth:`buffer`), fills it (``recv_into``)
    and hands a prefix of it over (:meth:`submit`); two workers write and hash it.
    :meth:`buffer` first waits until both workers have at most ``depth - 1``
    blocks left, so the buffer it returns, used ``depth`` blocks ago, is free.
    No bytes are copied between the socket and the file.
    """

    def __init__(self, writer: PartWriter, hashes: Hashes, block_size: int, depth: int = 4) -> None:
        self._pair = _WriteAndHash(writer, hashes, depth)
        self._buffers = [bytearray(block_size) for _ in range(depth)]
        self._next = 0
        self._taken = False

    def buffer(self) -> memoryview:
        """The next buffer to fill; blocks while the workers still need it."""
        self._pair.check()
        for worker in self._pair.workers:
            worker.slots.acquire()
        self._taken = True
        view = memoryview(self._buffers[self._next])
        self._next = (self._next + 1) % len(self._buffers)
        return view

    def submit(self, filled: memoryview) -> None:
        """Write and hash ``filled`` (a prefix of the last buffer, maybe empty)."""
        self._taken = False
        if filled:
            self._pair.put((filled,))
        else:
            for worker in self._pair.workers:
                worker.slots.release()

    def close(self) -> None:
        """Write and hash what is queued, stop the workers, close the file (no fsync)."""
        if self._taken:
            self.submit(memoryview(b""))
        self._pair.put(None)
        self._pair.join()
        self._pair.check()
