"""An outside test of acquisition with a hostile server written for it
(``hostile_server.py``, raw responses): redirects exocube must not follow,
sidecars edited on disk, a 206 reaching past the size it announces, manifest
sizes that are not byte counts, names that only look safe, and a listing that
trickles during planning."""

from __future__ import annotations

import asyncio
import json
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile_server import HostileServer, raw

from conftest import mast_handler, point_at
from exocube.acquire.budget import DownloadBudget
from exocube.acquire.client import make_client
from exocube.acquire.names import collisions, safe_relpath
from exocube.acquire.options import AcquireOptions
from exocube.acquire.partial import NOTHING_EXPECTED, Expected, PartFile, Sidecar
from exocube.acquire.plan import PlanningError
from exocube.acquire.retry import Politeness
from exocube.acquire.run import plan_sources
from exocube.acquire.transfer import HTTPDownloader
from exocube.config import get_settings
from exocube.errors import TransferError, UnsafeNameError

BODY = bytes(range(256)) * 8  # 2 KiB
OPTS = AcquireOptions(backoff_base=0.01, backoff_max=0.02, max_attempts=3, read_timeout=2,
                      resume_min_bytes=16)


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as server:
        yield server


def fetch(url: str, part: PartFile, expected: Expected = NOTHING_EXPECTED) -> Any:
    async def go() -> Any:
        async with make_client(OPTS) as client:
            return await HTTPDownloader(client, Politeness(OPTS), resume_min_bytes=16).fetch(
                url, part, expected)
    return asyncio.run(go())


def ok(etag: str = '"v1"') -> Any:
    return lambda req, n: raw("200 OK", [("ETag", etag)], BODY)


@pytest.mark.parametrize("location, reason", [
    ("file:///etc/passwd", "file://"),
    ("/loop", "redirects"),
])
def test_a_redirect_exocube_cannot_follow_fails_the_file_with_the_reason(
    hostile: HostileServer, tmp_path: Path, location: str, reason: str
) -> None:
    hostile.routes["/loop"] = lambda req, n: raw("302 Found", [("Location", location)])
    with pytest.raises(TransferError, match=reason) as info:
        fetch(hostile.url + "/loop", PartFile(tmp_path / "f"))
    assert "redirect" in str(info.value)
    assert not (tmp_path / "f").exists()


SIDECARS = [
    "[1, 2]",
    '"a string"',
    '{"url": URL, "etag": 5}',
    '{"url": URL, "etag": "\\"v1\\"", "expected_size": "2048"}',
    '{"url": URL, "etag": "\\"v1\\"", "expected_size": true}',
    '{"url": URL, "etag": "\\"v1\\"", "expected_size": -1}',
    '{"url": URL, "etag": "\\"v1\\"", "expected_size": 1e400}',
    '{"url": URL, "etag": "\\"v1\\"", "expected_size": 100000000000000000000000000000}',
    '{"url": URL, "verified": true, "sha256": 7}',
    '{"url": URL, "verified": "yes", "sha256": "00"}',
    '{"url": URL, "etag": "\\"v1\\"", "expected_size": 100}',  # the part is larger
]


@pytest.mark.parametrize("sidecar", SIDECARS)
def test_a_sidecar_edited_on_disk_is_ignored_and_the_file_fetched_from_zero(
    hostile: HostileServer, tmp_path: Path, sidecar: str
) -> None:
    """The sidecar is read back from disk: any value of the wrong type or range means
    the kept bytes are not described, so they are dropped, not trusted or crashed on."""
    hostile.routes["/f"] = ok()
    url = hostile.url + "/f"
    part = PartFile(tmp_path / "f")
    part.part.write_bytes(BODY[:1000])
    part.sidecar.write_text(sidecar.replace("URL", json.dumps(url)))
    fetched = fetch(url, part, Expected(size=len(BODY)))
    assert fetched.resumed_from == 0
    assert part.part.read_bytes() == BODY
    assert "Range" not in hostile.requests[-1][2]


def test_a_206_reaching_past_its_announced_total_is_not_kept(
    hostile: HostileServer, tmp_path: Path
) -> None:
    """``Content-Range: bytes 1000-2047/1100``: the file would be 2048 bytes though the
    server says 1100; the spliced file must not be verified."""
    def route(req: Any, n: int) -> bytes:
        if "Range" in req.headers:
            return raw("206 Partial Content", [("ETag", '"v1"'),
                                               ("Content-Range", "bytes 1000-2047/1100")],
                       BODY[1000:])
        return raw("200 OK", [("ETag", '"v1"')], BODY[:1100])

    hostile.routes["/f"] = route
    url = hostile.url + "/f"
    part = PartFile(tmp_path / "f")
    part.part.write_bytes(BODY[:1000])
    part.save_meta(Sidecar(url=url, etag='"v1"', last_modified=None, expected_size=None,
                           hash="sha256", resumed=False))
    fetched = fetch(url, part)
    assert fetched.size == 1100
    assert part.part.read_bytes() == BODY[:1100]
    assert any("more" in r for r in fetched.restarts), fetched.restarts


def manifest_env(monkeypatch: pytest.MonkeyPatch, url: str, **extra: str) -> None:
    point_at(monkeypatch, {"GCM_OUTPUTS__LISTINGS": json.dumps([url]), "READ_TIMEOUT": "2",
                           "MAX_ATTEMPTS": "2", "BACKOFF_BASE": "0.01", **extra})


@pytest.mark.parametrize("size", [-5, "2048", 1.5, 10**30, True])
def test_a_manifest_size_that_is_not_a_byte_count_is_refused_with_the_value(
    hostile: HostileServer, monkeypatch: pytest.MonkeyPatch, size: object
) -> None:
    body = json.dumps([{"name": "a.nc", "size": size}]).encode()
    hostile.routes["/m.json"] = lambda req, n: raw("200 OK", [], body)
    manifest_env(monkeypatch, hostile.url + "/m.json")
    with pytest.raises(PlanningError, match="size") as info:
        asyncio.run(plan_sources(get_settings(), ["gcm_outputs"]))
    assert repr(size) in str(info.value)


@pytest.mark.parametrize("name", [
    "s/\u2024\u2024/x.nc",  # ONE DOT LEADER twice
    "s/\u2025/x.nc",  # TWO DOT LEADER
    "s/\uff0e\uff0e/x.nc",  # FULLWIDTH FULL STOP
    "s/\uff0e\uff0e\uff0fx.nc",  # FULLWIDTH SOLIDUS
    "s/a\uff3cb.nc",  # FULLWIDTH REVERSE SOLIDUS
])
def test_a_name_that_becomes_unsafe_under_unicode_compatibility_is_refused(name: str) -> None:
    with pytest.raises(UnsafeNameError, match="NFKC"):
        safe_relpath(name)


@pytest.mark.parametrize("first, second", [
    ("s/caf\u00e9.nc", "s/cafe\u0301.nc"),  # NFC and NFD: one name on macOS
    ("s/x.nc", "s/x.nc."),  # Windows and SMB drop trailing dots and spaces
    ("s/x.nc", "s/x.nc "),
    ("s/\uff21.nc", "s/a.nc"),  # FULLWIDTH A
])
def test_names_one_file_system_would_fold_together_collide(first: str, second: str) -> None:
    assert unicodedata.normalize("NFC", first) != unicodedata.normalize("NFC", second) or (
        first != second)
    assert list(collisions([first, second])) == [1]


def test_a_listing_that_trickles_is_given_up_in_bounded_time(
    hostile: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A byte every 0.2 s never trips the read timeout; planning must still end."""
    def trickle(wfile: Any) -> None:
        wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(100):
            wfile.write(b"<")
            wfile.flush()
            time.sleep(0.2)

    hostile.routes["/slow/"] = lambda req, n: trickle
    manifest_env(monkeypatch, hostile.url + "/slow/", PLAN_TIMEOUT="1")
    t0 = time.monotonic()
    with pytest.raises(PlanningError, match="plan_timeout") as info:
        asyncio.run(plan_sources(get_settings(), ["gcm_outputs"]))
    assert time.monotonic() - t0 < 5
    assert "gcm_outputs" in str(info.value)


def test_a_listing_of_garbage_is_not_planned_as_an_empty_folder(
    hostile: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    garbage = bytes(range(256)) * 4
    hostile.routes["/junk/"] = lambda req, n: raw("200 OK", [], garbage)
    manifest_env(monkeypatch, hostile.url + "/junk/")
    with pytest.raises(PlanningError, match="no links"):
        asyncio.run(plan_sources(get_settings(), ["gcm_outputs"]))


def test_files_of_unknown_size_started_together_stay_within_the_quota() -> None:
    """Held: 20 transfers of unknown size start while the quota is not used up, each
    drawing reads from many threads; together they never pass the quota."""
    budget = DownloadBudget(10_000)
    allowances = [budget.reserve(None) for _ in range(20)]
    assert not any(isinstance(a, str) for a in allowances)

    def drain(a: Any) -> None:
        while a.take(333) == 333:
            pass

    async def go() -> None:
        await asyncio.gather(*(asyncio.to_thread(drain, a) for a in allowances))

    asyncio.run(go())
    assert budget.used == sum(a.received for a in allowances) == 10_000
    assert isinstance(budget.reserve(None), str)


def test_an_off_site_link_in_a_listing_is_navigation_and_dot_slash_is_dropped(
    hostile: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An HTML page around the files may link elsewhere (``http://169.254.169.254/x.nc``):
    not a file of the listing, never requested, and the listing's files are still
    planned; Apache writes ``./a:b.nc`` for a name with a colon."""
    page = (b'<a href="../">up</a><a href="http://169.254.169.254/latest/x.nc">x</a>'
            b'<a href="./a:b.nc">a:b.nc</a><a href="ok.nc">ok</a>')
    hostile.routes["/gcm/"] = lambda req, n: raw("200 OK", [("Content-Type", "text/html")], page)
    for name in ("/gcm/a:b.nc", "/gcm/ok.nc"):
        hostile.routes[name] = lambda req, n: raw("200 OK", [], BODY)
    manifest_env(monkeypatch, hostile.url + "/gcm/")
    plan = asyncio.run(plan_sources(get_settings(), ["gcm_outputs"]))
    assert sorted(f.relpath.rsplit("/", 1)[1] for f in plan.files) == ["a:b.nc", "ok.nc"]
    assert all(f.url.startswith(hostile.url) and f.size == len(BODY) for f in plan.files)


@pytest.mark.parametrize("size", [-5, 1.5, "12"])
def test_a_mast_product_size_that_is_not_a_byte_count_is_refused(
    archives: Any, size: object
) -> None:
    archives.handlers["/api/v0/invoke"] = mast_handler([
        {"obsid": "1", "productFilename": "x_x1d.fits", "dataURI": "mast:JWST/product/x_x1d.fits",
         "size": size, "productSubGroupDescription": "X1D"}])
    with pytest.raises(PlanningError, match="size") as info:
        asyncio.run(plan_sources(get_settings(), ["mast"]))
    assert repr(size) in str(info.value)


@pytest.mark.parametrize("column", ["\u00b2", "\u0661\u0662"])  # superscript two, Arabic 12
def test_an_index_size_in_other_digits_is_not_a_size(column: str) -> None:
    from exocube.acquire.sources.genomes1000 import parse_index

    line = f"vol1/ftp/a.vcf.gz\tfile\t{column}\t2015-06-01\t{'a' * 32}"
    assert parse_index(line, "/vol1/ftp") == [("a.vcf.gz", None, "a" * 32)]


def test_a_listing_that_never_ends_is_not_read_into_memory(
    hostile: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fast, endless answer (no Content-Length) stops at acquire.plan_max_bytes,
    long before plan_timeout."""
    def endless(wfile: Any) -> None:
        wfile.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        block = b'<a href="x.nc">' * 4096
        for _ in range(100_000):  # 6 GB, unless the client stops
            wfile.write(block)

    hostile.routes["/big/"] = lambda req, n: endless
    manifest_env(monkeypatch, hostile.url + "/big/", PLAN_MAX_BYTES=str(4 << 20))
    t0 = time.monotonic()
    with pytest.raises(PlanningError, match="plan_max_bytes"):
        asyncio.run(plan_sources(get_settings(), ["gcm_outputs"]))
    assert time.monotonic() - t0 < 10
