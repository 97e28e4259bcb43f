"""Large bodies read past h11 (in the event loop, or in a worker thread straight
from the socket) and written and hashed in worker threads: the same faults end
the same way as on the h11 path.

Paths (:class:`~exocube.acquire.bodies.FastPaths`): ``direct``
(``direct_min_bytes=0``) reads every body from the connection in the event
loop; ``thread`` (``thread_min_bytes=0``) fetches every file of known size in a
worker thread; ``h11`` keeps the default thresholds, which these bodies are below.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from fault_server import FaultServer

from exocube.acquire.bodies import FastPaths, _socket_of
from exocube.acquire.client import make_client
from exocube.acquire.partial import NOTHING_EXPECTED, Expected, Hashes, PartFile, PartWriter
from exocube.acquire.pipes import BlockPipe, BufferPipe
from exocube.acquire.retry import Politeness
from exocube.acquire.transfer import HTTPDownloader
from exocube.config import get_settings
from exocube.errors import ChecksumError

pytestmark = pytest.mark.usefixtures("fast_settings")

BODY = os.urandom(3_000_000)
SHA = hashlib.sha256(BODY).hexdigest()
MD5 = hashlib.md5(BODY).hexdigest()
PATHS = pytest.mark.parametrize("path", ["direct", "thread", "h11"])
THRESHOLDS = {"direct": {"paths": FastPaths(direct_min_bytes=0)},
              "thread": {"paths": FastPaths(thread_min_bytes=0)}, "h11": {}}
THREADED = "(body read in a thread)"


def downloader(client, path: str) -> HTTPDownloader:
    opts = get_settings().acquire
    return HTTPDownloader(client, Politeness(opts), opts.chunk_size, opts.resume_min_bytes,
                          **THRESHOLDS[path])


def fetch(url: str, final: Path, path: str, expected: Expected = NOTHING_EXPECTED):
    async def go():
        async with make_client(get_settings().acquire) as client:
            fetched = await downloader(client, path).fetch(url, PartFile(final), expected)
            fetched.part.promote()
            return fetched

    fetched = asyncio.run(go())
    if expected.size is not None:
        assert fetched.client.endswith(THREADED) == (path == "thread")
    return fetched


@PATHS
def test_body_is_written_and_hashed_in_order(server: FaultServer, tmp_path: Path,
                                             path: str) -> None:
    server.add("/f.bin", BODY, throttle=(40_000, 0.0))  # many small server writes
    fetched = fetch(server.url + "/f.bin", tmp_path / "f.bin", path,
                    Expected(size=len(BODY), sha256=SHA, md5=MD5))
    assert (tmp_path / "f.bin").read_bytes() == BODY
    assert fetched.md5 == MD5 and fetched.bytes_received == len(BODY)


@PATHS
def test_chunked_body_of_known_size(server: FaultServer, tmp_path: Path, path: str) -> None:
    """No Content-Length: every path reads the body through httpx's decoder."""
    server.add("/f.bin", BODY, chunked=True, throttle=(100_000, 0.0))
    fetched = fetch(server.url + "/f.bin", tmp_path / "f.bin", path,
                    Expected(size=len(BODY), sha256=SHA))
    assert (tmp_path / "f.bin").read_bytes() == BODY and fetched.bytes_received == len(BODY)


@PATHS
def test_https_body_resumes_after_a_reset(https_server: FaultServer, tmp_path: Path,
                                          path: str) -> None:
    """Over TLS the thread path reads the ``SSLSocket`` (decrypted bytes) directly."""
    https_server.add("/f.bin", BODY)
    https_server.faults["/f.bin"] = [{"kind": "reset", "after": 1_500_000}]
    fetched = fetch(https_server.url + "/f.bin", tmp_path / "f.bin", path,
                    Expected(size=len(BODY), sha256=SHA))
    assert (tmp_path / "f.bin").read_bytes() == BODY
    assert fetched.attempts == 2 and fetched.final_url.startswith("https://")


def test_the_thread_path_reads_a_tls_socket_directly(https_server: FaultServer) -> None:
    https_server.add("/f.bin", BODY)
    with (
        httpx.Client() as client,
        client.stream("GET", https_server.url + "/f.bin") as resp,
    ):
        assert isinstance(_socket_of(resp), ssl.SSLSocket)
        assert hashlib.sha256(resp.read()).hexdigest() == SHA


@PATHS
@pytest.mark.parametrize("kind", ["reset", "truncate"])
def test_cut_body_keeps_what_arrived_and_resumes(server: FaultServer, tmp_path: Path,
                                                 path: str, kind: str) -> None:
    server.add("/f.bin", BODY)
    server.faults["/f.bin"] = [{"kind": kind, "after": 1_500_000}]
    fetched = fetch(server.url + "/f.bin", tmp_path / "f.bin", path,
                    Expected(size=len(BODY), sha256=SHA))
    assert (tmp_path / "f.bin").read_bytes() == BODY
    assert fetched.attempts == 2
    # a reset may drop bytes still in the client's socket buffer; a close does not
    if kind == "reset":
        assert 0 < fetched.resumed_from <= 1_500_000
    else:
        assert fetched.resumed_from == 1_500_000
    assert server.bytes_sent["/f.bin"] == len(BODY) + 1_500_000 - fetched.resumed_from


@PATHS
def test_stall_mid_body_times_out_and_resumes(server: FaultServer, tmp_path: Path,
                                              path: str) -> None:
    # its own path: the server threads of timed-out attempts write on after the test
    server.add("/stall.bin", BODY, throttle=(1_200_000, 1.5))  # read timeout is 1 s
    fetched = fetch(server.url + "/stall.bin", tmp_path / "f.bin", path,
                    Expected(size=len(BODY), sha256=SHA))
    assert (tmp_path / "f.bin").read_bytes() == BODY
    assert fetched.attempts == 3 and fetched.resumed_from == 2_400_000


@PATHS
def test_wrong_published_md5_fails_after_the_whole_body(server: FaultServer, tmp_path: Path,
                                                        path: str) -> None:
    server.add("/f.bin", BODY)
    with pytest.raises(ChecksumError, match="published MD5"):
        fetch(server.url + "/f.bin", tmp_path / "f.bin", path,
              Expected(size=len(BODY), md5="0" * 32))
    assert not (tmp_path / "f.bin").exists()


@PATHS
def test_new_version_during_resume_restarts(server: FaultServer, tmp_path: Path,
                                            path: str) -> None:
    """Size unknown: on the thread path the first attempt takes the event loop and
    the second (the sidecar now knows a size) a worker thread."""
    v2 = os.urandom(2_000_000)
    server.add("/f.bin", BODY, etag='"v1"')
    server.faults["/f.bin"] = [{"kind": "reset", "after": 1_000_000},
                               {"kind": "new_version", "body": v2, "etag": '"v2"'}]
    fetched = fetch(server.url + "/f.bin", tmp_path / "f.bin", path)
    assert (tmp_path / "f.bin").read_bytes() == v2 and fetched.resumed_from == 0
    assert server.count("/f.bin") == 2
    assert fetched.client.endswith(THREADED) == (path == "thread")


def test_connection_after_a_direct_body_is_not_reused_but_the_next_fetch_works(
    server: FaultServer, tmp_path: Path
) -> None:
    server.add("/a.bin", BODY)
    server.add("/b.bin", BODY[::-1])
    opts = get_settings().acquire

    async def go() -> None:
        async with make_client(opts) as client:
            dl = HTTPDownloader(client, Politeness(opts), opts.chunk_size,
                                opts.resume_min_bytes, paths=FastPaths(direct_min_bytes=0))
            for name in ("a.bin", "b.bin"):
                fetched = await dl.fetch(f"{server.url}/{name}", PartFile(tmp_path / name))
                fetched.part.promote()

    asyncio.run(go())
    assert (tmp_path / "a.bin").read_bytes() == BODY
    assert (tmp_path / "b.bin").read_bytes() == BODY[::-1]


def test_block_pipe_raises_a_write_error(tmp_path: Path) -> None:
    target = tmp_path / "ro.bin"
    target.write_bytes(b"")
    part = PartFile(tmp_path / "x")
    writer = part.open(0)
    writer.fh.close()
    writer.fh = target.open("rb", buffering=0)  # writes fail with EBADF

    async def go() -> None:
        pipe = BlockPipe(writer, Hashes(with_md5=False), depth=1)
        try:
            for _ in range(4):
                await pipe.put([b"x" * 1000])
        finally:
            await pipe.close()

    with pytest.raises(OSError):
        asyncio.run(go())
    assert writer.fh.closed


def test_block_pipe_writes_the_last_block_on_close(tmp_path: Path) -> None:
    part = PartFile(tmp_path / "x")
    hashes = Hashes(with_md5=False)

    async def go() -> None:
        pipe = BlockPipe(part.open(0), hashes, depth=2)
        for i in range(10):
            await pipe.put([bytes([i]) * 100, bytes([i]) * 50])
        await pipe.close(last=[b"end"])

    asyncio.run(go())
    expected = b"".join(bytes([i]) * 150 for i in range(10)) + b"end"
    assert part.part.read_bytes() == expected
    assert hashes.sha256.hexdigest() == hashlib.sha256(expected).hexdigest()


CHILD = """
import asyncio, sys
from pathlib import Path
from exocube.acquire.bodies import FastPaths
from exocube.acquire.client import make_client
from exocube.acquire.partial import Expected, PartFile
from exocube.acquire.retry import Politeness
from exocube.acquire.transfer import HTTPDownloader
from exocube.config import get_settings

async def go():
    opts = get_settings().acquire
    size = int(sys.argv[3]) if sys.argv[3] else None
    async with make_client(opts) as client:
        dl = HTTPDownloader(client, Politeness(opts), opts.chunk_size, opts.resume_min_bytes,
                            paths=FastPaths(direct_min_bytes=0, thread_min_bytes=0))
        await dl.fetch(sys.argv[1], PartFile(Path(sys.argv[2])), Expected(size=size))

asyncio.run(go())
"""


@pytest.mark.parametrize("path", ["direct", "thread"])
def test_sigkill_mid_body_refetches_less_than_one_block(
    server: FaultServer, tmp_path: Path, path: str
) -> None:
    """Received bytes reach the part through the writer thread's queue: the part
    catches up to less than one block behind what was sent, and after a SIGKILL
    the resume fetches at most one block again. The child knows the size (and so
    takes a worker thread) only on the thread path."""
    server.add("/kill.bin", BODY, throttle=(16 * 1024, 0.002))
    final = tmp_path / "f.bin"
    part = PartFile(final).part
    env = dict(os.environ, EXOCUBE_ACQUIRE__READ_TIMEOUT="30")
    size = str(len(BODY)) if path == "thread" else ""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, server.url + "/kill.bin", str(final), size], env=env)
    deadline = time.monotonic() + 60
    while server.bytes_sent["/kill.bin"] < 1_000_000:
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    server.paused.set()
    sent, block = server.bytes_sent["/kill.bin"], get_settings().acquire.chunk_size
    deadline = time.monotonic() + 30  # generous: the machine may be loaded
    while not part.exists() or part.stat().st_size <= sent - block:
        assert proc.poll() is None
        assert time.monotonic() < deadline, (sent, part.stat().st_size if part.exists() else 0)
        time.sleep(0.02)
    time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    server.abandon_connections()
    server.paused.clear()
    sent_before = server.bytes_sent["/kill.bin"]
    fetched = fetch(server.url + "/kill.bin", final, path, Expected(sha256=SHA))
    assert final.read_bytes() == BODY and fetched.resumed_from > 0
    assert fetched.client.endswith(THREADED) == (path == "thread")
    refetched = server.bytes_sent["/kill.bin"] - len(BODY)
    assert refetched <= get_settings().acquire.chunk_size, (sent_before, refetched)


def test_cancelling_a_threaded_fetch_stops_its_thread_and_keeps_the_bytes(
    server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelling the task shuts the worker thread's socket down: it returns well
    before the 30 s read timeout, and what arrived is in the part for a resume."""
    monkeypatch.setenv("EXOCUBE_ACQUIRE__READ_TIMEOUT", "30")
    get_settings.cache_clear()
    server.add("/c.bin", BODY, throttle=(16 * 1024, 0.001))
    final = tmp_path / "f.bin"

    async def go() -> float:
        async with make_client(get_settings().acquire) as client:
            dl = downloader(client, "thread")
            task = asyncio.create_task(
                dl.fetch(server.url + "/c.bin", PartFile(final), Expected(size=len(BODY))))
            while server.bytes_sent["/c.bin"] < 500_000:
                await asyncio.sleep(0.01)
            server.paused.set()
            await asyncio.sleep(0.2)
            t0 = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return time.monotonic() - t0

    try:
        waited = asyncio.run(go())
    finally:
        server.paused.clear()
    assert waited < 5
    kept = PartFile(final).part.stat().st_size
    assert 0 < kept <= server.bytes_sent["/c.bin"]
    assert PartFile(final).part.read_bytes() == BODY[:kept]


def test_buffer_pipe_reuses_a_buffer_only_after_it_was_written_and_hashed(
    tmp_path: Path
) -> None:
    """The writer is a pipe drained slowly by another thread, so the reader runs
    far ahead; had a buffer been refilled before it was written, the bytes read
    back would differ."""
    read_end, write_end = os.pipe()
    out = bytearray()

    def drain() -> None:
        while chunk := os.read(read_end, 4096):
            out.extend(chunk)
            time.sleep(0.0005)

    drainer = threading.Thread(target=drain)
    drainer.start()
    hashes = Hashes(with_md5=False)
    pipe = BufferPipe(PartWriter(os.fdopen(write_end, "wb", buffering=0)), hashes,
                      block_size=8192, depth=2)
    blocks = [os.urandom(8192) for _ in range(40)] + [b"tail"]
    for data in blocks:
        view = pipe.buffer()
        view[: len(data)] = data
        pipe.submit(view[: len(data)])
    pipe.close()
    drainer.join()
    os.close(read_end)
    expected = b"".join(blocks)
    assert bytes(out) == expected
    assert hashes.sha256.hexdigest() == hashlib.sha256(expected).hexdigest()
