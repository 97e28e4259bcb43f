"""Large bodies read straight from the connection (past h11) and written and hashed
in a worker thread: the same faults end the same way as on the h11 path.

``direct_min_bytes=0`` sends every body of these tests through the direct path;
``None`` keeps the default threshold (these bodies then take the h11 path).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_server import FaultServer

from exocube.acquire.partial import NOTHING_EXPECTED, BlockPipe, Expected, Hashes, PartFile
from exocube.acquire.transfer import HTTPDownloader, Politeness, make_client
from exocube.config import get_settings
from exocube.errors import ChecksumError

pytestmark = pytest.mark.usefixtures("fast_settings")

BODY = os.urandom(3_000_000)
SHA = hashlib.sha256(BODY).hexdigest()
MD5 = hashlib.md5(BODY).hexdigest()
PATHS = pytest.mark.parametrize("direct", [0, None], ids=["direct", "h11"])


def fetch(url: str, final: Path, direct: int | None, expected: Expected = NOTHING_EXPECTED):
    opts = get_settings().acquire

    async def go():
        async with make_client(opts) as client:
            extra = {} if direct is None else {"direct_min_bytes": direct}
            dl = HTTPDownloader(client, Politeness(opts), opts.chunk_size,
                                opts.resume_min_bytes, **extra)
            fetched = await dl.fetch(url, PartFile(final), expected)
            fetched.part.promote()
            return fetched

    return asyncio.run(go())


@PATHS
def test_body_is_written_and_hashed_in_order(server: FaultServer, tmp_path: Path,
                                             direct: int | None) -> None:
    server.add("/f.bin", BODY, throttle=(40_000, 0.0))  # many small server writes
    fetched = fetch(server.url + "/f.bin", tmp_path / "f.bin", direct,
                    Expected(size=len(BODY), sha256=SHA, md5=MD5))
    assert (tmp_path / "f.bin").read_bytes() == BODY
    assert fetched.md5 == MD5 and fetched.bytes_received == len(BODY)


@PATHS
@pytest.mark.parametrize("kind", ["reset", "truncate"])
def test_cut_body_keeps_what_arrived_and_resumes(server: FaultServer, tmp_path: Path,
                                                 direct: int | None, kind: str) -> None:
    server.add("/f.bin", BODY)
    server.faults["/f.bin"] = [{"kind": kind, "after": 1_500_000}]
    fetched = fetch(server.url + "/f.bin", tmp_path / "f.bin", direct, Expected(sha256=SHA))
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
                                              direct: int | None) -> None:
    # its own path: the server threads of timed-out attempts write on after the test
    server.add("/stall.bin", BODY, throttle=(1_200_000, 1.5))  # read timeout is 1 s
    fetched = fetch(server.url + "/stall.bin", tmp_path / "f.bin", direct, Expected(sha256=SHA))
    assert (tmp_path / "f.bin").read_bytes() == BODY
    assert fetched.attempts == 3 and fetched.resumed_from == 2_400_000


@PATHS
def test_wrong_published_md5_fails_after_the_whole_body(server: FaultServer, tmp_path: Path,
                                                        direct: int | None) -> None:
    server.add("/f.bin", BODY)
    with pytest.raises(ChecksumError, match="published MD5"):
        fetch(server.url + "/f.bin", tmp_path / "f.bin", direct, Expected(md5="0" * 32))
    assert not (tmp_path / "f.bin").exists()


@PATHS
def test_new_version_during_resume_restarts(server: FaultServer, tmp_path: Path,
                                            direct: int | None) -> None:
    v2 = os.urandom(2_000_000)
    server.add("/f.bin", BODY, etag='"v1"')
    server.faults["/f.bin"] = [{"kind": "reset", "after": 1_000_000},
                               {"kind": "new_version", "body": v2, "etag": '"v2"'}]
    fetched = fetch(server.url + "/f.bin", tmp_path / "f.bin", direct)
    assert (tmp_path / "f.bin").read_bytes() == v2 and fetched.resumed_from == 0


def test_connection_after_a_direct_body_is_not_reused_but_the_next_fetch_works(
    server: FaultServer, tmp_path: Path
) -> None:
    server.add("/a.bin", BODY)
    server.add("/b.bin", BODY[::-1])
    opts = get_settings().acquire

    async def go() -> None:
        async with make_client(opts) as client:
            dl = HTTPDownloader(client, Politeness(opts), opts.chunk_size,
                                opts.resume_min_bytes, direct_min_bytes=0)
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
from exocube.acquire.partial import PartFile
from exocube.acquire.transfer import HTTPDownloader, Politeness, make_client
from exocube.config import get_settings

async def go():
    opts = get_settings().acquire
    async with make_client(opts) as client:
        dl = HTTPDownloader(client, Politeness(opts), opts.chunk_size, opts.resume_min_bytes,
                            direct_min_bytes=0)
        await dl.fetch(sys.argv[1], PartFile(Path(sys.argv[2])))

asyncio.run(go())
"""


def test_sigkill_mid_direct_body_refetches_less_than_one_block(
    server: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Received bytes reach the part through the writer thread's queue: the part
    catches up to less than one block behind what was sent, and after a SIGKILL
    the resume fetches at most one block again."""
    server.add("/kill.bin", BODY, throttle=(16 * 1024, 0.002))
    final = tmp_path / "f.bin"
    part = PartFile(final).part
    env = dict(os.environ, EXOCUBE_ACQUIRE__READ_TIMEOUT="30")
    proc = subprocess.Popen([sys.executable, "-c", CHILD, server.url + "/kill.bin", str(final)],
                            env=env)
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
    fetched = fetch(server.url + "/kill.bin", final, 0, Expected(sha256=SHA))
    assert final.read_bytes() == BODY and fetched.resumed_from > 0
    refetched = server.bytes_sent["/kill.bin"] - len(BODY)
    assert refetched <= get_settings().acquire.chunk_size, (sent_before, refetched)
