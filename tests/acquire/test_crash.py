"""Crash test: the real CLI, killed with SIGKILL mid-transfer, then resumed.

Bytes fetched again per interrupted file must be at most one client write block
(``acquire.chunk_size``). The server's counters count bytes handed to the
kernel; so that they equal the bytes the client received, the server pauses
its writes just before the kill, and the test waits until the client has read
everything in flight (its ``.part`` sizes stop changing). The transfers are
still open, mid-body, when SIGKILL arrives.
"""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from fault_server import FaultServer

from conftest import index_line, md5
from exocube.catalog import AcquisitionRun, Artifact, session_scope
from exocube.config import get_settings

SERVER_WRITE = 16 * 1024
BLOCK = 64 * 1024  # EXOCUBE_ACQUIRE__CHUNK_SIZE set by the fast_settings fixture


def exocube() -> str:
    return str(Path(sys.executable).parent / "exocube")


def wait_until_parts_stable(out: Path, proc: subprocess.Popen) -> None:
    """Until the client's ``.part`` files stop growing (all sent bytes were read)."""
    last: dict[str, int] = {}
    stable_since = time.monotonic()
    while time.monotonic() - stable_since < 0.5:
        assert proc.poll() is None
        sizes = {p.name: p.stat().st_size for p in out.glob("*.part")}
        if sizes != last:
            last, stable_since = sizes, time.monotonic()
        time.sleep(0.05)


def test_sigkill_mid_transfer_then_resume(archives: FaultServer, tmp_path: Path) -> None:
    rel = "release/20130502"
    blobs = {f"ALL.chrY.big{i}.gz": gzip.compress(os.urandom(1_200_000), compresslevel=1,
                                                  mtime=0) for i in (1, 2)}
    paths = {}
    for name, data in blobs.items():
        path = f"/vol1/ftp/{rel}/{name}"
        archives.add(path, data, throttle=(SERVER_WRITE, 0.01))
        paths[name] = path
    archives.add("/vol1/ftp/current.tree", "\n".join(
        index_line(f"{rel}/{n}", d) for n, d in blobs.items()).encode() + b"\n")
    dest = tmp_path / "data"
    proc = subprocess.Popen([exocube(), "acquire", "--sources", "genomes1000", "--dest",
                             str(dest)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while min(archives.bytes_sent[p] for p in paths.values()) < 300_000:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "transfers did not start"
        time.sleep(0.02)
    archives.paused.set()
    wait_until_parts_stable(dest / "genomes1000" / rel, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    archives.abandon_connections()
    archives.paused.clear()
    sent_before = {p: archives.bytes_sent[p] for p in paths.values()}
    out = dest / "genomes1000" / rel
    for name, data in blobs.items():
        assert not (out / name).exists()  # never a partial file under a final name
        assert 0 < (out / f"{name}.part").stat().st_size < len(data)
    with session_scope(get_settings().database_url) as s:
        run_id = s.execute(sa.select(AcquisitionRun.id)).scalar_one()

    done = subprocess.run([exocube(), "acquire", "--resume", run_id], capture_output=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    for name, data in blobs.items():
        final = out / name
        assert md5(final.read_bytes()) == md5(data)
        assert not (out / f"{name}.part").exists()
        path = paths[name]
        refetched = archives.bytes_sent[path] - len(data)
        print(f"{name}: {len(data)} bytes, {sent_before[path]} sent before SIGKILL, "
              f"{refetched} sent again")
        assert refetched <= BLOCK, (name, sent_before[path], refetched)
        resumed = [r for r in archives.requests if r["path"] == path][-1]
        assert resumed["headers"]["Range"].startswith("bytes=")
    with session_scope(get_settings().database_url) as s:
        run = s.get(AcquisitionRun, run_id)
        assert run.status == "completed" and run.summary["totals"]["done"] == 2
        arts = s.execute(sa.select(Artifact)).scalars().all()
        assert {a.provenance["resumed_from"] > 0 for a in arts} == {True}


def test_resume_of_unknown_run_is_a_clear_error(archives: FaultServer) -> None:
    from exocube.cli import main

    with pytest.raises(SystemExit) as info:
        main(["acquire", "--resume", "no-such-run"])
    assert info.value.code == 1
