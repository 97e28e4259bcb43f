"""HTTP transfers against the fault-injecting server: every fault ends either in
a verified file under its final name or in a failure with the reason, and never
in a partial file under a final name."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from pathlib import Path

import pytest
from fault_server import FaultServer

from exocube.acquire.client import make_client
from exocube.acquire.partial import NOTHING_EXPECTED, Expected, PartFile
from exocube.acquire.retry import Politeness
from exocube.acquire.transfer import HTTPDownloader, HTTPStatusError
from exocube.config import get_settings
from exocube.errors import ChecksumError, TransferError

pytestmark = pytest.mark.usefixtures("fast_settings")

BODY = os.urandom(300_000)
SHA = hashlib.sha256(BODY).hexdigest()


def fetch(url: str, final: Path, expected: Expected = NOTHING_EXPECTED):
    """Download like a run does: fetch into the part, promote only when verified."""
    opts = get_settings().acquire

    async def go():
        async with make_client(opts) as client:
            dl = HTTPDownloader(client, Politeness(opts), opts.chunk_size, opts.resume_min_bytes)
            fetched = await dl.fetch(url, PartFile(final), expected)
            fetched.part.promote()
            return fetched

    return asyncio.run(go())


def assert_no_partial_final(final: Path) -> None:
    assert not final.exists() or hashlib.sha256(final.read_bytes()).hexdigest() == SHA


def test_clean_download_is_verified_and_renamed(server: FaultServer, tmp_path: Path) -> None:
    server.add("/f.bin", BODY)
    final = tmp_path / "f.bin"
    fetched = fetch(server.url + "/f.bin", final, Expected(size=len(BODY), sha256=SHA))
    assert final.read_bytes() == BODY
    assert fetched.sha256 == SHA and fetched.attempts == 1
    assert not PartFile(final).part.exists() and not PartFile(final).sidecar.exists()


@pytest.mark.parametrize("kind", ["reset", "truncate"])
def test_cut_body_resumes_from_offset(server: FaultServer, tmp_path: Path, kind: str) -> None:
    server.add("/f.bin", BODY)
    server.faults["/f.bin"] = [{"kind": kind, "after": 200_000}]
    final = tmp_path / "f.bin"
    fetched = fetch(server.url + "/f.bin", final, Expected(sha256=SHA))
    assert final.read_bytes() == BODY
    assert fetched.attempts == 2 and fetched.resumed_from > 0
    second = [r for r in server.requests if r["path"] == "/f.bin"][1]
    assert second["headers"]["Range"] == f"bytes={fetched.resumed_from}-"
    assert second["headers"]["If-Range"].startswith('"')
    # only the missing tail was sent again (plus what was lost unwritten)
    assert server.bytes_sent["/f.bin"] - len(BODY) <= 200_000 - fetched.resumed_from + 1


def test_server_ignoring_range_restarts_cleanly(server: FaultServer, tmp_path: Path) -> None:
    server.add("/f.bin", BODY)
    server.faults["/f.bin"] = [{"kind": "reset", "after": 150_000}, {"kind": "ignore_range"}]
    final = tmp_path / "f.bin"
    fetched = fetch(server.url + "/f.bin", final, Expected(sha256=SHA))
    assert final.read_bytes() == BODY and fetched.resumed_from == 0 and fetched.status == 200


def test_mismatched_content_range_restarts(server: FaultServer, tmp_path: Path) -> None:
    server.add("/f.bin", BODY)
    server.faults["/f.bin"] = [{"kind": "reset", "after": 150_000}, {"kind": "bad_range"}]
    final = tmp_path / "f.bin"
    fetch(server.url + "/f.bin", final, Expected(sha256=SHA))
    assert final.read_bytes() == BODY
    assert server.count("/f.bin") == 3


def test_etag_change_between_attempts_restarts_with_new_version(
    server: FaultServer, tmp_path: Path
) -> None:
    v2 = os.urandom(250_000)
    server.add("/f.bin", BODY, etag='"v1"')
    server.faults["/f.bin"] = [{"kind": "reset", "after": 100_000},
                               {"kind": "new_version", "body": v2, "etag": '"v2"'}]
    final = tmp_path / "f.bin"
    fetched = fetch(server.url + "/f.bin", final)
    assert final.read_bytes() == v2
    assert fetched.headers["etag"] == '"v2"' and fetched.resumed_from == 0
    second = [r for r in server.requests if r["path"] == "/f.bin"][1]
    assert second["headers"]["If-Range"] == '"v1"'


def test_retry_after_is_honoured(server: FaultServer, tmp_path: Path) -> None:
    server.add("/f.bin", BODY)
    server.faults["/f.bin"] = [{"kind": "status", "code": 503, "retry_after": 1}]
    t0 = time.monotonic()
    fetch(server.url + "/f.bin", tmp_path / "f.bin", Expected(sha256=SHA))
    assert time.monotonic() - t0 >= 0.95  # backoff_max is 0.05 s: only Retry-After waits 1 s
    assert (tmp_path / "f.bin").read_bytes() == BODY


@pytest.mark.parametrize("code", [429, 408, 500, 502])
def test_transient_status_is_retried(server: FaultServer, tmp_path: Path, code: int) -> None:
    server.add("/f.bin", BODY)
    server.faults["/f.bin"] = [{"kind": "status", "code": code}] * 2
    fetched = fetch(server.url + "/f.bin", tmp_path / "f.bin", Expected(sha256=SHA))
    assert fetched.attempts == 3


def test_persistent_500_fails_with_reason_and_no_final(server: FaultServer,
                                                        tmp_path: Path) -> None:
    server.add("/f.bin", BODY)
    server.faults["/f.bin"] = [{"kind": "status", "code": 500}] * 10
    final = tmp_path / "f.bin"
    with pytest.raises(TransferError, match=r"gave up after 4 attempts.*HTTP 500"):
        fetch(server.url + "/f.bin", final)
    assert not final.exists()
    assert server.count("/f.bin") == 4


@pytest.mark.parametrize("code", [401, 403, 404])
def test_client_errors_are_never_retried(server: FaultServer, tmp_path: Path, code: int) -> None:
    server.add("/f.bin", BODY)
    server.faults["/f.bin"] = [{"kind": "status", "code": code}] * 5
    with pytest.raises(HTTPStatusError, match=f"HTTP {code}") as info:
        fetch(server.url + "/f.bin", tmp_path / "f.bin")
    assert info.value.status == code
    assert server.count("/f.bin") == 1
    assert not (tmp_path / "f.bin").exists()


def test_slow_response_past_timeout_is_retried(server: FaultServer, tmp_path: Path) -> None:
    server.add("/f.bin", BODY)
    server.faults["/f.bin"] = [{"kind": "slow", "seconds": 1.6}]
    fetched = fetch(server.url + "/f.bin", tmp_path / "f.bin", Expected(sha256=SHA))
    assert fetched.attempts == 2


def test_always_slow_fails_with_timeout_reason(server: FaultServer, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXOCUBE_ACQUIRE__MAX_ATTEMPTS", "2")
    monkeypatch.setenv("EXOCUBE_ACQUIRE__READ_TIMEOUT", "0.3")
    get_settings.cache_clear()
    server.add("/f.bin", BODY)
    server.faults["/f.bin"] = [{"kind": "slow", "seconds": 0.8}] * 3
    final = tmp_path / "f.bin"
    with pytest.raises(TransferError, match="timeout"):
        fetch(server.url + "/f.bin", final)
    assert not final.exists()


def test_wrong_published_checksum_fails_and_discards(server: FaultServer,
                                                     tmp_path: Path) -> None:
    server.add("/f.bin", BODY)
    final = tmp_path / "f.bin"
    with pytest.raises(ChecksumError, match="published MD5"):
        fetch(server.url + "/f.bin", final, Expected(md5="0" * 32))
    assert not final.exists()
    assert not PartFile(final).part.exists()
    assert server.count("/f.bin") == 1


def test_wrong_size_fails(server: FaultServer, tmp_path: Path) -> None:
    server.add("/f.bin", BODY)
    with pytest.raises(ChecksumError, match="expected 12"):
        fetch(server.url + "/f.bin", tmp_path / "f.bin", Expected(size=12))
    assert not (tmp_path / "f.bin").exists()


def test_redirect_is_followed_and_recorded(server: FaultServer, tmp_path: Path) -> None:
    server.add("/new/f.bin", BODY)
    server.faults["/old/f.bin"] = [{"kind": "redirect", "location": "/new/f.bin"}]
    fetched = fetch(server.url + "/old/f.bin", tmp_path / "f.bin", Expected(sha256=SHA))
    assert fetched.final_url.endswith("/new/f.bin")
    assert fetched.redirects == [server.url + "/old/f.bin"]
    assert fetched.provenance()["final_url"].endswith("/new/f.bin")


def test_verified_part_left_by_a_crash_is_not_downloaded_again(
    server: FaultServer, tmp_path: Path
) -> None:
    server.add("/f.bin", BODY)
    final = tmp_path / "f.bin"
    opts = get_settings().acquire

    async def only_fetch() -> None:
        async with make_client(opts) as client:
            dl = HTTPDownloader(client, Politeness(opts), opts.chunk_size, opts.resume_min_bytes)
            await dl.fetch(server.url + "/f.bin", PartFile(final), Expected(sha256=SHA))

    asyncio.run(only_fetch())  # verified, then "crashed" before the rename
    assert not final.exists() and PartFile(final).part.exists()
    fetch(server.url + "/f.bin", final, Expected(sha256=SHA))
    assert final.read_bytes() == BODY
    assert server.count("/f.bin") == 1
