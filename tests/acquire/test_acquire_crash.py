"""Crash test: the real CLI, killed with SIGKILL mid-transfer, then resumed.

Bytes fetched again per interrupted file must be at most one client write block
(``acquire.chunk_size``). The server's counters count bytes handed to the
kernel; so that they equal the bytes the client received, the server pauses
its writes just before the kill, and the test waits until the client has read
everything in flight (its ``.part`` sizes stop changing). The transfers are
still open, mid-body, when SIGKILL arrives.
"""

from __future__ import annotations

import asyncio
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
from exocube.acquire.run import load_for_resume, run_acquisition
from exocube.catalog import AcquisitionRun, Artifact, session_scope
from exocube.config import get_settings

SERVER_WRITE = 16 * 1024
BLOCK = 64 * 1024  # EXOCUBE_ACQUIRE__CHUNK_SIZE set by the fast_settings fixture
REL = "release/20130502"


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


RUN_SCRIPT = """
import asyncio, sys
from exocube.acquire.run import Quotas, destination_for, plan_sources, run_acquisition, start_run
from exocube.catalog import db
from exocube.config import get_settings
settings = get_settings()
db.upgrade(settings.database_url)
plan = asyncio.run(plan_sources(settings, ["genomes1000"]))
dest = destination_for(settings, sys.argv[1])
run_id = start_run(settings, plan, dest, Quotas(), {})
asyncio.run(run_acquisition(settings, plan, dest, Quotas(), run_id))
"""


def big_files(archives: FaultServer) -> tuple[dict[str, bytes], dict[str, str]]:
    blobs = {f"ALL.chrY.big{i}.gz": gzip.compress(os.urandom(1_200_000), compresslevel=1,
                                                  mtime=0) for i in (1, 2)}
    paths = {}
    for name, data in blobs.items():
        path = f"/vol1/ftp/{REL}/{name}"
        archives.add(path, data, throttle=(SERVER_WRITE, 0.01))
        paths[name] = path
    archives.add("/vol1/ftp/current.tree", "\n".join(
        index_line(f"{REL}/{n}", d) for n, d in blobs.items()).encode() + b"\n")
    return blobs, paths


def kill_mid_transfer(archives: FaultServer, cmd: list[str], out: Path,
                      paths: dict[str, str]) -> dict[str, int]:
    """Start ``cmd``, SIGKILL it once every file is partly sent; bytes sent per path."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while min(archives.bytes_sent[p] for p in paths.values()) < 300_000:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "transfers did not start"
        time.sleep(0.02)
    archives.paused.set()
    wait_until_parts_stable(out, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    archives.abandon_connections()
    archives.paused.clear()
    return {p: archives.bytes_sent[p] for p in paths.values()}


def check_resumed(archives: FaultServer, out: Path, blobs: dict[str, bytes],
                  paths: dict[str, str], sent_before: dict[str, int], run_id: str) -> None:
    for name, data in blobs.items():
        assert md5((out / name).read_bytes()) == md5(data)
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


def killed_state(out: Path, blobs: dict[str, bytes]) -> str:
    for name, data in blobs.items():
        assert not (out / name).exists()  # never a partial file under a final name
        assert 0 < (out / f"{name}.part").stat().st_size < len(data)
    with session_scope(get_settings().database_url) as s:
        return s.execute(sa.select(AcquisitionRun.id)).scalar_one()


def test_sigkill_mid_transfer_then_resume(archives: FaultServer, tmp_path: Path) -> None:
    """The library run in a subprocess, killed; the resume runs in this process."""
    blobs, paths = big_files(archives)
    dest, out = tmp_path / "data", tmp_path / "data" / "genomes1000" / REL
    sent = kill_mid_transfer(archives, [sys.executable, "-c", RUN_SCRIPT, str(dest)], out,
                             paths)
    run_id = killed_state(out, blobs)
    settings = get_settings()
    plan, destination, quotas, checkpoint = load_for_resume(settings, run_id)
    asyncio.run(run_acquisition(settings, plan, destination, quotas, run_id, checkpoint))
    check_resumed(archives, out, blobs, paths, sent, run_id)


@pytest.mark.slow
def test_cli_sigkill_mid_transfer_then_cli_resume(archives: FaultServer, tmp_path: Path
                                                  ) -> None:
    """The same with the real ``exocube acquire`` command both times (slow: the CLI
    imports every stage)."""
    blobs, paths = big_files(archives)
    dest, out = tmp_path / "data", tmp_path / "data" / "genomes1000" / REL
    sent = kill_mid_transfer(archives, [exocube(), "acquire", "--sources", "genomes1000",
                                        "--dest", str(dest)], out, paths)
    run_id = killed_state(out, blobs)
    done = subprocess.run([exocube(), "acquire", "--resume", run_id], capture_output=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    check_resumed(archives, out, blobs, paths, sent, run_id)


def test_resume_of_unknown_run_is_a_clear_error(archives: FaultServer) -> None:
    from exocube.cli import main

    with pytest.raises(SystemExit) as info:
        main(["acquire", "--resume", "no-such-run"])
    assert info.value.code == 1
