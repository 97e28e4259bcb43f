"""Write paths of a response body: blocks of chunks into a part file, hashed on the way.

* :class:`InlineBlocks`: written and hashed in the event loop (small bodies,
  where starting threads costs more than it overlaps);
* :class:`BlockPipe`: the event loop hands blocks to two worker threads, one
  writing and one hashing, each in arrival order (large bodies read in the
  event loop);
* :class:`BufferPipe`: the same two workers fed from a ring of reused buffers
  that a blocking reader fills with ``recv_into`` (the thread reader).

Which one a body takes is decided with its reader (:mod:`exocube.acquire.bodies`).
All of them write through :class:`~exocube.acquire.partial.PartWriter`
(unbuffered), so what was handed over is in the part file even if the process
is killed right after; at most the queued blocks are lost.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Sequence

from exocube.acquire.partial import Hashes, PartWriter


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
