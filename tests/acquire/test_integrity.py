"""Resumes never splice two versions, the download quota holds for files of
unknown size, and failure messages say what really happened: on every body
path (``h11``, ``direct``: read past h11 in the event loop, ``thread``: read
in a worker thread; see ``test_direct_body.py``)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from email.utils import formatdate
from pathlib import Path

import pytest
import sqlalchemy as sa
from fault_server import FaultServer

from conftest import PSCOMPPARS_SHA256, pscomppars_bytes, run_sources
from exocube.acquire.bodies import FastPaths
from exocube.acquire.breaker import CircuitOpenError
from exocube.acquire.budget import DownloadBudget
from exocube.acquire.client import make_client
from exocube.acquire.partial import NOTHING_EXPECTED, Expected, PartFile, Sidecar
from exocube.acquire.retry import Politeness
from exocube.acquire.run import Quotas
from exocube.acquire.transfer import HTTPDownloader
from exocube.acquire.units import format_bytes
from exocube.catalog import AcquisitionRun, Artifact, session_scope
from exocube.config import get_settings
from exocube.errors import ChecksumError, QuotaExceededError, TransferError

pytestmark = pytest.mark.usefixtures("fast_settings")

V1 = os.urandom(3_000_000)
V2 = os.urandom(3_000_000)
PATHS = pytest.mark.parametrize("path", ["direct", "thread", "h11"])
THRESHOLDS = {"direct": {"paths": FastPaths(direct_min_bytes=0)},
              "thread": {"paths": FastPaths(thread_min_bytes=0)}, "h11": {}}


def fetch(url: str, final: Path, path: str, expected: Expected = NOTHING_EXPECTED,
          budget: DownloadBudget | None = None, **polite: int):
    opts = get_settings().acquire.model_copy(update=polite)

    async def go():
        async with make_client(opts) as client:
            dl = HTTPDownloader(client, Politeness(opts), opts.chunk_size, opts.resume_min_bytes,
                                **THRESHOLDS[path])
            quota = {"allowance": budget.reserve(None)} if budget is not None else {}
            fetched = await dl.fetch(url, PartFile(final), expected, **quota)
            fetched.part.promote()
            return fetched

    return asyncio.run(go())


@PATHS
def test_206_with_a_new_etag_restarts_instead_of_splicing(server: FaultServer, tmp_path: Path,
                                                          path: str) -> None:
    """The server ignores If-Range: its 206 carries the new version from our offset."""
    server.add("/f.bin", V1, etag='"a"')
    server.faults["/f.bin"] = [{"kind": "reset", "after": 1_000_000},
                               {"kind": "splice", "body": V2, "etag": '"b"'}]
    fetched = fetch(server.url + "/f.bin", tmp_path / "f.bin", path, Expected(size=len(V2)))
    assert (tmp_path / "f.bin").read_bytes() == V2
    assert fetched.resumed_from == 0 and fetched.sha256 == hashlib.sha256(V2).hexdigest()
    second, third = [r for r in server.requests if r["path"] == "/f.bin"][1:]
    assert second["headers"]["If-Range"] == '"a"' and "Range" not in third["headers"]
    assert len(fetched.restarts) == 1
    assert fetched.restarts[0].startswith('restarted: validator changed (etag "a" -> "b")')
    assert fetched.provenance()["restarts"] == fetched.restarts


@PATHS
def test_206_with_a_new_last_modified_restarts(server: FaultServer, tmp_path: Path,
                                               path: str) -> None:
    """A weak ETag: the If-Range validator is Last-Modified, which the 206 changes."""
    server.add("/f.bin", V1, etag='W/"same"')
    newer = formatdate(1800000000, usegmt=True)
    server.faults["/f.bin"] = [{"kind": "reset", "after": 1_000_000},
                               {"kind": "splice", "body": V2, "etag": 'W/"same"',
                                "last_modified": newer}]
    fetched = fetch(server.url + "/f.bin", tmp_path / "f.bin", path, Expected(size=len(V2)))
    assert (tmp_path / "f.bin").read_bytes() == V2
    assert "last-modified" in fetched.restarts[0] and newer in fetched.restarts[0]


def test_206_with_another_total_size_restarts(server: FaultServer, tmp_path: Path) -> None:
    longer = V2 + b"tail"
    server.add("/f.bin", V1, etag='"a"')
    server.faults["/f.bin"] = [{"kind": "reset", "after": 1_000_000},
                               {"kind": "splice", "body": longer, "etag": '"a"'}]
    fetched = fetch(server.url + "/f.bin", tmp_path / "f.bin", "h11")
    assert (tmp_path / "f.bin").read_bytes() == longer
    assert f"size {len(V1)} -> {len(longer)}" in fetched.restarts[0]


@PATHS
def test_206_starting_elsewhere_is_not_appended(server: FaultServer, tmp_path: Path,
                                                path: str) -> None:
    server.add("/f.bin", V1)
    server.faults["/f.bin"] = [{"kind": "reset", "after": 1_000_000}, {"kind": "shifted",
                                                                      "shift": 7}]
    fetched = fetch(server.url + "/f.bin", tmp_path / "f.bin", path, Expected(size=len(V1)))
    assert (tmp_path / "f.bin").read_bytes() == V1
    assert "not starting at the requested offset" in fetched.restarts[0]


def test_a_200_to_a_range_request_is_recorded(server: FaultServer, tmp_path: Path) -> None:
    server.add("/f.bin", V1)
    server.faults["/f.bin"] = [{"kind": "reset", "after": 1_000_000}, {"kind": "ignore_range"}]
    fetched = fetch(server.url + "/f.bin", tmp_path / "f.bin", "h11")
    assert (tmp_path / "f.bin").read_bytes() == V1
    assert fetched.restarts[0].startswith("restarted: the server answered 200 to a range")


@pytest.mark.parametrize("path, chunked", [("direct", False), ("thread", False),
                                           ("thread", True), ("h11", False), ("h11", True)])
def test_a_transfer_stops_at_the_quota_and_keeps_its_part(
    server: FaultServer, tmp_path: Path, path: str, chunked: bool
) -> None:
    """Size unknown to the quota (and, chunked, to the client: no Content-Length;
    the direct path needs one): bytes are counted as they arrive and the
    transfer stops before the quota is passed."""
    server.add("/f.bin", V1, chunked=chunked, throttle=(100_000, 0.0))
    final = tmp_path / "f.bin"
    expected = Expected(size=len(V1)) if path == "thread" else NOTHING_EXPECTED
    with pytest.raises(QuotaExceededError, match="download quota reached") as info:
        fetch(server.url + "/f.bin", final, path, expected, DownloadBudget(500_000))
    part = PartFile(final)
    kept = part.part.stat().st_size
    assert kept == 500_000 and part.part.read_bytes() == V1[:kept]
    assert part.sidecar.exists() and not final.exists()
    assert info.value.kept == kept and str(part.part) in str(info.value)
    assert f"limit {format_bytes(500_000)}" in str(info.value)
    assert server.count("/f.bin") == 1  # not retried
    # a larger quota resumes the part
    fetched = fetch(server.url + "/f.bin", final, path, expected, DownloadBudget(10_000_000))
    assert final.read_bytes() == V1 and fetched.resumed_from == kept


def test_no_partial_file_is_claimed_when_there_is_none(server: FaultServer,
                                                       tmp_path: Path) -> None:
    server.add("/f.bin", V1)
    server.faults["/f.bin"] = [{"kind": "status", "code": 500}] * 10
    with pytest.raises(TransferError, match="gave up after 4 attempts") as info:
        fetch(server.url + "/f.bin", tmp_path / "f.bin", "h11")
    assert "is kept" not in str(info.value) and "No partial file was kept" in str(info.value)


def test_a_kept_partial_file_is_named_with_its_size(server: FaultServer, tmp_path: Path) -> None:
    server.add("/f.bin", V1)
    server.faults["/f.bin"] = [{"kind": "reset", "after": 1_000_000}] + [
        {"kind": "status", "code": 503}] * 10
    with pytest.raises(TransferError, match="gave up") as info:
        fetch(server.url + "/f.bin", tmp_path / "f.bin", "h11")
    kept = PartFile(tmp_path / "f.bin").part.stat().st_size
    assert kept > 0 and f"({format_bytes(kept)}) is kept" in str(info.value)


def test_a_circuit_opening_mid_retries_gives_the_real_error(server: FaultServer,
                                                            tmp_path: Path) -> None:
    server.add("/f.bin", V1)
    server.faults["/f.bin"] = [{"kind": "status", "code": 503}] * 10
    with pytest.raises(CircuitOpenError, match="circuit open") as info:
        fetch(server.url + "/f.bin", tmp_path / "f.bin", "h11", breaker_failures=2)
    assert "The last error of this transfer was: HTTP 503" in str(info.value)
    assert server.count("/f.bin") == 2


def test_a_checksum_restart_is_recorded(server: FaultServer, tmp_path: Path) -> None:
    """A resumed file that fails its hash is fetched once more from zero."""
    server.add("/f.bin", V1, etag='"a"')
    final = tmp_path / "f.bin"
    part = PartFile(final)
    part.part.write_bytes(b"x" * 1000)  # bytes that are not the file's
    part.save_meta(Sidecar(url=server.url + "/f.bin", etag='"a"', expected_size=len(V1),
                           hash="sha256", resumed=False))
    fetched = fetch(server.url + "/f.bin", final, "h11",
                    Expected(sha256=hashlib.sha256(V1).hexdigest()))
    assert final.read_bytes() == V1
    assert fetched.restarts[0].startswith("restarted: a resumed download failed its check")


def test_run_quota_stops_a_tap_answer_of_unknown_size(
    archives: FaultServer, migrated: str, tmp_path: Path
) -> None:
    """``--max-download-gb 0.00001``: the 3 MB TAP answer (chunked, no size
    announced) is stopped at 10 kB, reported and recorded; a later run without
    the quota resumes the part."""
    csv = pscomppars_bytes()
    archives.add("/TAP/sync", csv, content_type="text/csv", chunked=True,
                 throttle=(4096, 0.0))
    dest = tmp_path / "data"
    summary = run_sources(dest, ["nasa_exoplanet_archive"], Quotas(max_download_bytes=10_000))
    row = summary["sources"]["nasa_exoplanet_archive"]
    assert row["skipped"] == 1 and row["done"] == 0
    reason = row["reasons"][0]["reason"]
    assert reason.startswith("download quota reached") and f"limit {format_bytes(10_000)}" in reason
    part = PartFile(dest / "nasa_exoplanet_archive" / "pscomppars.csv")
    kept = part.part.stat().st_size
    assert kept == 10_000 and part.sidecar.exists()
    assert row["bytes"] == kept
    with session_scope(migrated) as s:
        run_row = s.get(AcquisitionRun, summary["run_id"])
        assert run_row.checkpoint["skipped"]["nasa_exoplanet_archive/pscomppars.csv"] == reason
        assert run_row.checkpoint["bytes_downloaded"] == kept
        assert s.scalar(sa.select(sa.func.count()).select_from(Artifact)) == 0
    again = run_sources(dest, ["nasa_exoplanet_archive"])
    assert again["totals"]["done"] == 1
    assert hashlib.sha256((dest / "nasa_exoplanet_archive" / "pscomppars.csv").read_bytes()
                          ).hexdigest() == PSCOMPPARS_SHA256
    with session_scope(migrated) as s:
        art = s.execute(sa.select(Artifact)).scalar_one()
        assert art.provenance["resumed_from"] == kept


def test_a_known_size_file_is_checked_before_it_starts(archives: FaultServer, migrated: str,
                                                       tmp_path: Path) -> None:
    summary = run_sources(tmp_path / "data", ["geocarb"], Quotas(max_download_bytes=10))
    reason = summary["sources"]["geocarb"]["reasons"][0]["reason"]
    assert reason.startswith("download quota: 0 B used or reserved, it needs ")
    assert "limit 10 B" in reason


@pytest.mark.parametrize("path", ["thread", "h11"])
def test_a_chunked_body_longer_than_expected_is_stopped(server: FaultServer, tmp_path: Path,
                                                        path: str) -> None:
    """No Content-Length bounds a chunked body: the expected size does."""
    server.add("/f.bin", V1, chunked=True, throttle=(100_000, 0.0))
    final = tmp_path / "f.bin"
    with pytest.raises(ChecksumError, match="sent more than the 1000000 bytes"):
        fetch(server.url + "/f.bin", final, path, Expected(size=1_000_000))
    assert not final.exists() and not PartFile(final).part.exists()


def test_budget_keeps_promises_and_never_passes_its_limit() -> None:
    budget = DownloadBudget(1000)
    known = budget.reserve(600)
    unknown = budget.reserve(None)
    assert isinstance(budget.reserve(401), str)  # 600 promised + 401 > 1000
    assert unknown.take(500) == 400  # what is neither promised nor used
    assert unknown.take(1) == 0
    assert known.take(700) == 600  # its promise, nothing beyond: the limit is reached
    assert budget.used == 1000 and budget.left() == 0
    refusal = budget.reserve(None)
    assert isinstance(refusal, str)
    assert f"{format_bytes(1000)} used or reserved, its size is unknown" in refusal
    known.release()
    unknown.release()
    assert budget.promised == 0 and DownloadBudget(None).reserve(None).take(10**12) == 10**12
