"""FTP (pyftpdlib server on loopback, REST resume) and an S3 destination (moto)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from fault_server import FaultServer

from conftest import fits_bytes, index_line, mast_handler, md5, point_at, vcf_gz
from exocube.acquire.ftp import FTPDownloader, FTPPermanentError
from exocube.acquire.partial import Expected, PartFile, Sidecar
from exocube.acquire.plan import PlanningError
from exocube.acquire.retry import Politeness
from exocube.acquire.run import Quotas, destination_for, plan_sources, run_acquisition, start_run
from exocube.catalog import db as catalog_db
from exocube.config import get_settings

pytestmark = pytest.mark.usefixtures("fast_settings")


class FTPLog:
    commands: ClassVar[list[str]] = []


@pytest.fixture(scope="session")
def ftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """An anonymous read-only FTP server (pyftpdlib) on 127.0.0.1 for the session."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler
    from pyftpdlib.servers import ThreadedFTPServer

    root = tmp_path_factory.mktemp("ftp")
    auth = DummyAuthorizer()
    auth.add_anonymous(str(root), perm="elr")

    class Handler(FTPHandler):
        authorizer = auth

        def pre_process_command(self, line: str, cmd: str, arg: str) -> None:
            FTPLog.commands.append(line)
            super().pre_process_command(line, cmd, arg)

    server = ThreadedFTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.1},
                              daemon=True)
    thread.start()
    yield f"ftp://127.0.0.1:{server.address[1]}", root
    server.close_all()


@pytest.fixture
def ftp_root(ftp_server: tuple[str, Path], tmp_path: Path) -> tuple[str, Path]:
    """A fresh directory on the FTP server for one test, and its URL."""
    url, root = ftp_server
    sub = root / tmp_path.name
    sub.mkdir()
    FTPLog.commands = []
    return f"{url}/{tmp_path.name}", sub


def ftp_fetch(url: str, final: Path, expected: Expected) -> object:
    opts = get_settings().acquire
    dl = FTPDownloader(Politeness(opts), timeout=5)
    fetched = asyncio.run(dl.fetch(url, PartFile(final), expected))
    fetched.part.promote()
    return fetched


def test_ftp_download_verifies_published_md5(ftp_root: tuple[str, Path], tmp_path: Path
                                             ) -> None:
    url, root = ftp_root
    data = os.urandom(200_000)
    (root / "a.bin").write_bytes(data)
    fetched = ftp_fetch(f"{url}/a.bin", tmp_path / "out" / "a.bin",
                        Expected(size=len(data), md5=md5(data)))
    assert (tmp_path / "out" / "a.bin").read_bytes() == data
    assert fetched.md5 == md5(data) and fetched.client == "ftplib"


def test_ftp_resumes_a_part_with_rest(ftp_root: tuple[str, Path], tmp_path: Path) -> None:
    url, root = ftp_root
    data = os.urandom(300_000)
    (root / "a.bin").write_bytes(data)
    final = tmp_path / "out" / "a.bin"
    part = PartFile(final)
    # a first attempt that got 120000 bytes, as a killed process would leave it
    mdtm_probe = FTPDownloader(Politeness(get_settings().acquire))
    import ftplib

    with ftplib.FTP() as ftp:
        ftp.connect("127.0.0.1", int(url.split(":")[2].split("/")[0]))
        ftp.login()
        mdtm = ftp.sendcmd(f"MDTM /{root.name}/a.bin").split()[-1]
    del mdtm_probe
    final.parent.mkdir(parents=True)
    part.part.write_bytes(data[:120_000])
    part.save_meta(Sidecar(url=f"{url}/a.bin", last_modified=mdtm, expected_size=len(data),
                           hash="sha256", resumed=False))
    fetched = ftp_fetch(f"{url}/a.bin", final, Expected(md5=md5(data)))
    assert final.read_bytes() == data
    assert "REST 120000" in FTPLog.commands
    assert fetched.resumed_from == 120_000 and fetched.bytes_received == 180_000


def test_ftp_part_of_another_version_restarts_and_is_recorded(
    ftp_root: tuple[str, Path], tmp_path: Path
) -> None:
    """The sidecar's MDTM/SIZE are not the file's any more: no REST, the kept
    bytes are dropped, and the provenance says why."""
    url, root = ftp_root
    data = os.urandom(300_000)
    (root / "a.bin").write_bytes(data)
    final = tmp_path / "out" / "a.bin"
    part = PartFile(final)
    final.parent.mkdir(parents=True)
    part.part.write_bytes(os.urandom(120_000))
    part.save_meta(Sidecar(url=f"{url}/a.bin", last_modified="19990101000000",
                           expected_size=250_000, hash="sha256", resumed=False))
    fetched = ftp_fetch(f"{url}/a.bin", final, Expected(md5=md5(data)))
    assert final.read_bytes() == data and fetched.resumed_from == 0
    assert not [c for c in FTPLog.commands if c.startswith("REST")]
    assert fetched.restarts[0].startswith("restarted: validator changed (MDTM 19990101000000")
    assert "SIZE 250000 -> 300000" in fetched.restarts[0]


def test_ftp_transfer_stops_at_the_download_quota(ftp_root: tuple[str, Path],
                                                  tmp_path: Path) -> None:
    from exocube.acquire.budget import DownloadBudget
    from exocube.errors import QuotaExceededError

    url, root = ftp_root
    data = os.urandom(400_000)
    (root / "a.bin").write_bytes(data)
    final = tmp_path / "a.bin"
    dl = FTPDownloader(Politeness(get_settings().acquire), timeout=5)
    with pytest.raises(QuotaExceededError, match="limit 100 kB"):
        asyncio.run(dl.fetch(f"{url}/a.bin", PartFile(final), Expected(),
                             allowance=DownloadBudget(100_000).reserve(None)))
    kept = PartFile(final).part.stat().st_size
    assert kept == 100_000 and PartFile(final).part.read_bytes() == data[:kept]
    fetched = asyncio.run(dl.fetch(f"{url}/a.bin", PartFile(final), Expected(md5=md5(data)),
                                   allowance=DownloadBudget(1_000_000).reserve(None)))
    assert fetched.resumed_from == kept and f"REST {kept}" in FTPLog.commands


def test_ftp_wrong_md5_and_missing_file_fail(ftp_root: tuple[str, Path], tmp_path: Path
                                             ) -> None:
    from exocube.errors import ChecksumError

    url, root = ftp_root
    (root / "a.bin").write_bytes(b"x" * 5000)
    with pytest.raises(ChecksumError):
        ftp_fetch(f"{url}/a.bin", tmp_path / "a.bin", Expected(md5="f" * 32))
    assert not (tmp_path / "a.bin").exists() and not PartFile(tmp_path / "a.bin").part.exists()
    with pytest.raises(FTPPermanentError, match="550"):
        ftp_fetch(f"{url}/missing.bin", tmp_path / "m.bin", Expected())
    assert sum(c.startswith("SIZE /") and c.endswith("/missing.bin")
               for c in FTPLog.commands) == 1


def test_genomes1000_over_ftp_run(ftp_root: tuple[str, Path], tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    url, root = ftp_root
    rel = "release/20130502"
    base = root / "vol1" / "ftp"
    (base / rel).mkdir(parents=True)
    vcf = vcf_gz()
    (base / rel / "ALL.chrY.phase3.genotypes.vcf.gz").write_bytes(vcf)
    (base / "current.tree").write_text(
        index_line(f"{rel}/ALL.chrY.phase3.genotypes.vcf.gz", vcf) + "\n")
    point_at(monkeypatch, {"genomes1000__base_url": url + "/vol1/ftp"})
    settings = get_settings()
    catalog_db.upgrade(settings.database_url)
    plan = asyncio.run(plan_sources(settings, ["genomes1000"]))
    assert plan.files[0].md5 == md5(vcf) and plan.files[0].size == len(vcf)
    dest = destination_for(settings, str(tmp_path / "data"))
    run_id = start_run(settings, plan, dest, Quotas(), {})
    summary = asyncio.run(run_acquisition(settings, plan, dest, Quotas(), run_id))
    assert summary["totals"]["done"] == 1
    out = tmp_path / "data" / "genomes1000" / rel / "ALL.chrY.phase3.genotypes.vcf.gz"
    assert out.read_bytes() == vcf


def test_s3_destination(archives: FaultServer, s3_bucket: str, tmp_path: Path) -> None:
    import boto3

    settings = get_settings()
    catalog_db.upgrade(settings.database_url)
    plan = asyncio.run(plan_sources(settings, ["genomes1000", "geocarb"]))
    dest = destination_for(settings, f"s3://{s3_bucket}/raw")
    run_id = start_run(settings, plan, dest, Quotas(), {})
    summary = asyncio.run(run_acquisition(settings, plan, dest, Quotas(), run_id))
    assert summary["totals"]["done"] == 3
    s3 = boto3.client("s3", endpoint_url=settings.s3.endpoint_url, region_name="us-east-1")
    keys = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    vcf_key = "raw/genomes1000/release/20130502/ALL.chrY.phase3.genotypes.vcf.gz"
    assert keys[vcf_key] == len(vcf_gz())
    assert not [k for k in keys if k.endswith((".part", ".json"))]
    body = s3.get_object(Bucket=s3_bucket, Key=vcf_key)["Body"].read()
    assert hashlib.md5(body).hexdigest() == md5(vcf_gz())
    assert not [p for p in dest.staging.rglob("*") if p.is_file()]
    again = asyncio.run(run_acquisition(settings, plan, dest, Quotas(),
                                        start_run(settings, plan, dest, Quotas(), {})))
    assert again["totals"]["skipped"] == 3


def test_cancelling_an_ftp_fetch_stops_its_thread(tmp_path: Path) -> None:
    """A throttled server (100 kB/s): cancelling the task shuts the data connection
    down, so the thread ends long before the 30 s timeout, with the bytes kept."""
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler, ThrottledDTPHandler
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import ThreadedFTPServer

    root = tmp_path / "root"
    root.mkdir()
    data = os.urandom(2_000_000)
    (root / "slow.bin").write_bytes(data)
    auth = DummyAuthorizer()
    auth.add_anonymous(str(root), perm="elr")

    class Slow(ThrottledDTPHandler):
        write_limit = 100_000

    class Handler(FTPHandler):
        authorizer = auth
        dtp_handler = Slow

    class OwnServer(ThreadedFTPServer):
        _exit = threading.Event()  # ThreadedFTPServer's is shared by every instance

    # an IOLoop and exit event of its own: close_all() would otherwise stop the
    # session's FTP server for every later test
    server = OwnServer(("127.0.0.1", 0), Handler, ioloop=IOLoop())
    threading.Thread(target=server.serve_forever, kwargs={"timeout": 0.1}, daemon=True).start()
    final = tmp_path / "out" / "slow.bin"
    final.parent.mkdir()
    part = PartFile(final)

    async def go() -> float:
        dl = FTPDownloader(Politeness(get_settings().acquire), timeout=30)
        url = f"ftp://127.0.0.1:{server.address[1]}/slow.bin"
        task = asyncio.create_task(dl.fetch(url, part, Expected(size=len(data))))
        while not part.part.exists() or part.part.stat().st_size < 100_000:
            await asyncio.sleep(0.02)
        t0 = asyncio.get_running_loop().time()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return asyncio.get_running_loop().time() - t0

    try:
        waited = asyncio.run(go())
    finally:
        server.close_all()
    assert waited < 5
    assert not [t for t in threading.enumerate() if t.name == "exocube-ftp"]
    kept = part.part.read_bytes()
    assert 100_000 <= len(kept) < len(data) and kept == data[: len(kept)]
    time.sleep(0.3)  # a thread left running would still be writing at 100 kB/s
    assert part.part.stat().st_size == len(kept)


def test_hostile_ftp_index_names_are_refused(ftp_root: tuple[str, Path], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The 1000 Genomes index read over FTP: its names go through the same check."""
    from fault_server import HOSTILE_NAMES, hostile_index

    from exocube.errors import UnsafeNameError

    url, root = ftp_root
    data = b"pwned\n"
    (root / "PWNED.txt").write_bytes(data)
    (root / "vol1" / "ftp").mkdir(parents=True)
    point_at(monkeypatch, {"genomes1000__base_url": url + "/vol1/ftp",
                           "genomes1000__include": '["*"]'})
    from exocube.acquire.client import make_client
    from exocube.acquire.plan import PlanContext
    from exocube.acquire.sources import genomes1000

    opts = get_settings().acquire

    async def plan() -> None:
        async with make_client(opts) as client:
            await genomes1000.plan(PlanContext(opts, client, Politeness(opts)))

    for name in HOSTILE_NAMES:
        (root / "vol1" / "ftp" / "current.tree").write_bytes(hostile_index((name,), data,
                                                                           md5(data)))
        with pytest.raises(UnsafeNameError, match="refused the remote name"):
            asyncio.run(plan())
    assert not list(tmp_path.rglob("*PWNED*"))


def test_hostile_names_never_reach_an_s3_destination(archives: FaultServer, s3_bucket: str,
                                                     tmp_path: Path) -> None:
    """MAST product names that try to leave the prefix: nothing is uploaded, and the
    staging folder stays empty."""
    import boto3
    from fault_server import HOSTILE_NAMES

    from exocube.acquire.plan import PlanningError
    from exocube.errors import UnsafeNameError

    settings = get_settings()
    catalog_db.upgrade(settings.database_url)
    x1d = fits_bytes("EXTRACT1D")
    dest = destination_for(settings, f"s3://{s3_bucket}/raw")
    for name in HOSTILE_NAMES:
        archives.handlers["/api/v0/invoke"] = mast_handler([
            {"obsid": "1", "productFilename": name, "dataURI": "mast:JWST/product/x_x1d.fits",
             "size": len(x1d), "productSubGroupDescription": "X1D"}])
        try:  # refused while planning (raised, or recorded when planning is per source)
            plan = asyncio.run(plan_sources(settings, ["mast"]))
        except UnsafeNameError:
            continue
        except PlanningError as exc:
            assert "refused the remote name" in str(exc)
            continue
        assert plan.files == []
        asyncio.run(run_acquisition(settings, plan, dest, Quotas(),
                                    start_run(settings, plan, dest, Quotas(), {})))
    s3 = boto3.client("s3", endpoint_url=settings.s3.endpoint_url, region_name="us-east-1")
    assert s3.list_objects_v2(Bucket=s3_bucket).get("KeyCount", 0) == 0
    assert not dest.staging.exists() or not list(dest.staging.rglob("*"))


def test_genomes1000_index_over_ftp_is_read_only_up_to_plan_max_bytes(
        ftp_root: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The FTP index is read in a thread the planning deadline cannot stop; it
    stops itself at acquire.plan_max_bytes (and after acquire.plan_timeout)."""
    url, root = ftp_root
    base = root / "vol1" / "ftp"
    base.mkdir(parents=True)
    line = index_line("release/x.vcf.gz", b"x" * 10)
    (base / "current.tree").write_text((line + "\n") * 2000)
    point_at(monkeypatch, {"genomes1000__base_url": url + "/vol1/ftp", "plan_max_bytes": "4096"})
    with pytest.raises(PlanningError, match="plan_max_bytes"):
        asyncio.run(plan_sources(get_settings(), ["genomes1000"]))
