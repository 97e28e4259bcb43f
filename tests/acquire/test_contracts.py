"""The typed contracts of the download path: the ``.part`` sidecar (round trip,
hostile and old files), the scope of the httpcore read-size patch, and the
source adapter protocol."""

from __future__ import annotations

import asyncio
import json
import types
from pathlib import Path
from typing import Any

import httpcore
import pytest
from hostile_server import HostileServer, raw

from exocube.acquire.client import make_client
from exocube.acquire.options import AcquireOptions
from exocube.acquire.partial import Hashes, PartFile, Sidecar
from exocube.acquire.retry import Politeness
from exocube.acquire.sources import SOURCES, kegg
from exocube.acquire.sources.adapter import SourceAdapter, adapters
from exocube.acquire.transfer import HTTPDownloader
from exocube.errors import InputDataError

BODY = bytes(range(256)) * 8  # 2 KiB
OPTS = AcquireOptions(backoff_base=0.01, backoff_max=0.02, max_attempts=3, read_timeout=2,
                      resume_min_bytes=16, read_size=1 << 18)


def test_a_sidecar_round_trips_through_json() -> None:
    hashes = Hashes(with_md5=True)
    hashes.update(b"abc")
    meta = Sidecar(url="https://h/f", etag='"v1"', last_modified="Tue, 01 Dec 2026 10:00:00 GMT",
                   expected_size=3, hash="sha256+md5", resumed=True).verified_as(hashes)
    assert Sidecar.from_json(meta.to_json()) == meta
    assert meta.verified and meta.size == 3
    assert meta.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert meta.md5 == "900150983cd24fb0d6963f7d28e17f72"


@pytest.mark.parametrize("text, named", [
    ("{", "not JSON"),
    (b"\xff\xfe\xfa", "not JSON"),
    ("[1, 2]", "a JSON list, not an object"),
    ('{"etag": "\\"v1\\""}', "no url"),
    ('{"url": 5}', "url 5 is a int"),
    ('{"url": "u", "etag": 5}', "etag 5 is a int"),
    ('{"url": "u", "expected_size": "2048"}', "expected_size '2048' is a str"),
    ('{"url": "u", "expected_size": true}', "expected_size True is a bool"),
    ('{"url": "u", "expected_size": -1}', "expected_size -1 is negative"),
    ('{"url": "u", "size": 1e400}', "size inf is a float"),
    ('{"url": "u", "verified": "yes"}', "verified 'yes' is a str"),
    ('{"url": "u", "verified": true, "sha256": 7}', "sha256 7 is a int"),
    ('{"url": "u", "owner": "x"}', "unknown fields ['owner']"),
    ('{"url": "u", "resumable": "no"}', "resumable 'no' is not a bool"),
])
def test_a_hostile_or_corrupt_sidecar_is_refused_naming_the_field(text: str | bytes,
                                                                  named: str) -> None:
    with pytest.raises(InputDataError, match="the sidecar") as info:
        Sidecar.from_json(text)
    assert named in str(info.value)


def test_sidecars_written_by_the_previous_release_load() -> None:
    """The dictionaries the previous release wrote (HTTP while receiving, HTTP
    verified, FTP), and the older ``resumable`` field: ``true`` changes nothing,
    ``false`` leaves no validator, so such a part is not resumed, as before."""
    receiving = {"url": "u", "etag": '"a"', "last_modified": None, "expected_size": 10,
                 "hash": "sha256", "resumed": False}
    verified = {**receiving, "verified": True, "sha256": "00" * 32, "size": 10, "md5": None}
    ftp = {"url": "ftp://h/f", "last_modified": "20261201000000", "expected_size": None,
           "hash": "sha256", "resumed": True}
    assert Sidecar.from_json(json.dumps(receiving)) == Sidecar(
        url="u", etag='"a"', expected_size=10, hash="sha256")
    assert Sidecar.from_json(json.dumps(verified)).sha256 == "00" * 32
    assert Sidecar.from_json(json.dumps(ftp)).validator() == "20261201000000"
    assert Sidecar.from_json(json.dumps({**receiving, "resumable": True})).validator() == '"a"'
    old = Sidecar.from_json(json.dumps({**receiving, "resumable": False}))
    assert old.validator() is None and old.expected_size == 10


def test_a_weak_etag_is_no_validator_but_last_modified_is() -> None:
    assert Sidecar(url="u", etag='W/"a"').validator() is None
    assert Sidecar(url="u", etag='W/"a"', last_modified="d").validator() == "d"


def fetch(url: str, part: PartFile) -> Any:
    async def go() -> Any:
        async with make_client(OPTS) as client:
            return await HTTPDownloader(client, Politeness(OPTS), resume_min_bytes=16).fetch(
                url, part)
    return asyncio.run(go())


def test_an_old_sidecar_marked_not_resumable_restarts_from_zero(tmp_path: Path) -> None:
    """On the wire: no ``Range`` is asked for, the part is replaced by the file."""
    with HostileServer() as hostile:
        hostile.routes["/f"] = lambda req, n: raw("200 OK", [("ETag", '"v1"')], BODY)
        url = hostile.url + "/f"
        part = PartFile(tmp_path / "f")
        part.part.write_bytes(b"x" * 1000)
        part.sidecar.write_text(json.dumps({"url": url, "etag": '"v1"', "expected_size": None,
                                            "hash": "sha256", "resumed": False,
                                            "resumable": False}))
        fetched = fetch(url, part)
        assert "Range" not in hostile.requests[-1][2]
    assert fetched.resumed_from == 0 and part.part.read_bytes() == BODY
    assert Sidecar.from_json(part.sidecar.read_text()).verified


def test_the_httpcore_read_size_is_set_only_while_a_client_is_open() -> None:
    """Two overlapping clients: the patch lasts until the last one closes, then
    httpcore's own value is back."""
    own = httpcore.AsyncHTTP11Connection.READ_NUM_BYTES
    assert own != OPTS.read_size

    async def go() -> list[int]:
        seen = []
        async with make_client(OPTS):
            seen.append(httpcore.AsyncHTTP11Connection.READ_NUM_BYTES)
            async with make_client(OPTS):
                seen.append(httpcore.AsyncHTTP11Connection.READ_NUM_BYTES)
            seen.append(httpcore.AsyncHTTP11Connection.READ_NUM_BYTES)
        return seen

    assert asyncio.run(go()) == [OPTS.read_size] * 3
    assert own == httpcore.AsyncHTTP11Connection.READ_NUM_BYTES


def test_every_source_module_is_a_source_adapter() -> None:
    assert SOURCES and all(isinstance(s, SourceAdapter) for s in SOURCES.values())
    assert SOURCES["kegg"].MAX_REQUESTS_PER_SECOND == 3.0
    assert SOURCES["mast"].MAX_REQUESTS_PER_SECOND is None


def fake_source(**members: Any) -> types.ModuleType:
    """A module with kegg's members, changed by ``members`` (``None``: removed)."""
    module = types.ModuleType("exocube_test_source")
    for key in ("NAME", "DOMAIN", "DESCRIPTION", "MAX_REQUESTS_PER_SECOND", "base_url",
                "plan", "validate"):
        setattr(module, key, getattr(kegg, key))
    for key, value in members.items():
        if value is None:
            delattr(module, key)
        else:
            setattr(module, key, value)
    return module


def sync_plan(ctx: Any) -> list[Any]:
    return []


@pytest.mark.parametrize("members, named", [
    ({"validate": None}, "lacks validate"),
    ({"MAX_REQUESTS_PER_SECOND": None}, "lacks MAX_REQUESTS_PER_SECOND"),
    ({"NAME": 5}, "NAME 5 is not a non-empty string"),
    ({"MAX_REQUESTS_PER_SECOND": "3"}, "MAX_REQUESTS_PER_SECOND '3'"),
    ({"MAX_REQUESTS_PER_SECOND": 0.0}, "MAX_REQUESTS_PER_SECOND 0.0"),
    ({"plan": sync_plan}, "plan is not an async function"),
    ({"base_url": "https://h"}, "base_url not callable"),
])
def test_a_module_that_is_not_a_source_adapter_is_refused_by_name(members: dict[str, Any],
                                                                  named: str) -> None:
    with pytest.raises(TypeError, match="exocube_test_source is not a SourceAdapter") as info:
        adapters(fake_source(**members))
    assert named in str(info.value)


def test_two_sources_with_one_name_are_refused() -> None:
    assert list(adapters(fake_source(NAME="a"), fake_source(NAME="b"))) == ["a", "b"]
    with pytest.raises(TypeError, match="NAME 'kegg' is already the name of another source"):
        adapters(kegg, fake_source())
