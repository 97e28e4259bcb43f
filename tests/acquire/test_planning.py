"""Planning source by source: a source that cannot be planned is listed with its
real cause and the others are planned and fetched; unreachable hosts fail fast;
the breaker's error names what tripped it."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fault_server import FaultServer
from test_cli_acquire import cli

from conftest import point_at, run_sources
from exocube.acquire.breaker import CircuitBreaker, CircuitOpenError, HostUnreachableError
from exocube.acquire.client import make_client
from exocube.acquire.partial import PartFile
from exocube.acquire.plan import PlanContext, PlanningError
from exocube.acquire.retry import Politeness
from exocube.acquire.run import plan_sources
from exocube.acquire.sources import SOURCES
from exocube.acquire.transfer import HTTPDownloader
from exocube.catalog import AcquisitionRun, Source, session_scope
from exocube.config import get_settings
from exocube.errors import TransferError


def dead_url(scheme: str = "http") -> str:
    """A URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"{scheme}://127.0.0.1:{s.getsockname()[1]}"


def test_dead_source_is_listed_and_the_live_one_is_planned_fetched_and_catalogued(
    archives: FaultServer, migrated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = dead_url()
    point_at(monkeypatch, {"mast__base_url": dead})
    summary = run_sources(tmp_path / "data", ["mast", "nasa_exoplanet_archive"])
    nasa, mast = summary["sources"]["nasa_exoplanet_archive"], summary["sources"]["mast"]
    assert nasa["done"] == 1 and nasa["planned"]
    assert (tmp_path / "data" / "nasa_exoplanet_archive" / "pscomppars.csv").stat().st_size
    assert mast["planned"] is False and mast["done"] == 0
    host = dead.removeprefix("http://")
    assert f"cannot connect to host '{host}'" in mast["plan_error"]
    assert "ConnectError" in mast["plan_error"] and "refused" in mast["plan_error"].lower()
    assert summary["totals"]["sources_not_planned"] == 1
    assert summary["status"] == "completed_with_failures"
    with session_scope(migrated) as s:
        run = s.get(AcquisitionRun, summary["run_id"])
        failures = run.config["plan_failures"]
        assert [(f["source"], f["domain"], f["error"]) for f in failures] == [
            ("mast", "astrophysics", "HostUnreachableError")]
        assert failures[0]["reason"] == mast["plan_error"]
        assert run.config["planned_sources"] == ["nasa_exoplanet_archive"]
        assert run.summary["sources"]["mast"]["planned"] is False
        assert run.status == "completed_with_failures"
        assert s.execute(sa.select(Source).where(Source.name == "mast")).scalar_one()


def test_cli_run_with_a_dead_source_fetches_the_live_one_and_exits_2(
    archives: FaultServer, migrated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    point_at(monkeypatch, {"mast__base_url": dead_url()})
    code, out, err = cli(["acquire", "--sources", "mast,geocarb", "--dest",
                          str(tmp_path / "data")], capsys)
    assert code == 2, err
    summary = json.loads(out)
    assert summary["sources"]["geocarb"]["done"] == 1
    assert "not planned: mast: cannot connect to host" in err
    assert "exocube acquire --sources mast" in err
    assert "--resume" not in err  # no file of the run failed: nothing to resume


def test_offline_dry_run_lists_every_default_source(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Default settings (retries, backoff, timeouts), every archive on a closed port."""
    point_at(monkeypatch, {
        "nasa_exoplanet_archive__base_url": dead_url(),
        "mast__base_url": dead_url(),
        "phoenix__base_url": dead_url() + "/data/HiResFITS",
        "kegg__base_url": dead_url(),
        "genomes1000__base_url": dead_url("ftp") + "/vol1/ftp",
        "gcm_outputs__listings": json.dumps([dead_url() + "/ROCKE-3D/"]),
        "geocarb__url": dead_url() + "/paleo/geocarb3-co2.txt",
        "iris_emc__base_url": dead_url() + "/emc/data",
        "pypi__base_url": dead_url(),
    })
    code, out, err = cli(["acquire", "--dry-run"], capsys)
    assert code == 0, err
    plan = json.loads(out)
    planned = set(plan["plan"]["source"])
    not_planned = {f["source"]: f["reason"] for f in plan["not_planned"]}
    assert planned | set(not_planned) == set(SOURCES) and not planned & set(not_planned)
    assert planned  # the TAP query and the PyPI release URLs need no request to plan
    assert {"mast", "kegg", "genomes1000", "gcm_outputs"} <= set(not_planned)
    for reason in not_planned.values():
        assert "127.0.0.1:" in reason and "refused" in reason.lower(), reason
    assert plan["plan"]["total"]["sources_not_planned"] == len(not_planned)
    assert plan["plan"]["total"]["files"] == len(plan["files"])
    assert "circuit open" not in err and "resume" not in err
    assert "not planned" in err and "mast" in err


def test_no_plannable_source_is_an_error_with_every_reason(
    archives: FaultServer, migrated: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    point_at(monkeypatch, {"mast__base_url": dead_url(), "kegg__base_url": dead_url()})
    code, out, err = cli(["acquire", "--sources", "mast,kegg"], capsys)
    assert code == 1 and out == ""
    assert "no source could be planned" in err and "mast: cannot connect" in err
    assert "kegg: cannot connect" in err and "resume" not in err
    with session_scope(migrated) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(AcquisitionRun)) == 0
    with pytest.raises(PlanningError) as info:
        asyncio.run(plan_sources(get_settings(), ["mast", "kegg"]))
    assert [f.source for f in info.value.failures] == ["mast", "kegg"]


def test_garbage_answer_fails_that_source_only(archives: FaultServer) -> None:
    archives.handlers["/api/v0/invoke"] = lambda form: (200, "application/json", b"<html>")
    plan = asyncio.run(plan_sources(get_settings(), ["mast", "kegg"]))
    assert plan.sources == ["kegg"] and len(plan.files) == 3
    (failure,) = plan.failures
    assert failure.source == "mast" and failure.error == "JSONDecodeError"
    assert "unexpected JSONDecodeError" in failure.reason and archives.url in failure.reason


def test_host_that_refuses_fails_at_once_during_planning(
    server: FaultServer, fast_settings: None
) -> None:
    """One connection attempt for a refused host; a stalled one keeps its retries."""
    opts = get_settings().acquire
    assert opts.plan_connect_attempts == 1 and opts.max_attempts == 4
    server.add("/slow", b"x")
    server.faults["/slow"] = [{"kind": "slow", "seconds": 1.5}] * 2

    async def plan_requests() -> tuple[BaseException, int]:
        polite = Politeness(opts)
        async with make_client(opts) as client:
            ctx = PlanContext(opts, client, polite)
            with pytest.raises(HostUnreachableError) as refused:
                await ctx.get(dead_url() + "/list")
            resp = await ctx.get(server.url + "/slow")
            assert resp.content == b"x"
        return refused.value, server.count("/slow")

    refused, slow_requests = asyncio.run(plan_requests())
    assert "1 attempt(s)" in str(refused) and isinstance(refused.__cause__, httpx.ConnectError)
    assert slow_requests == 3  # two timeouts, then the answer


def test_breaker_error_carries_the_failure_that_opened_it(
    server: FaultServer, fast_settings: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    point_at(monkeypatch, {"breaker_failures": "2"})  # opens before the 4 attempts end
    opts = get_settings().acquire
    server.add("/down", b"y" * 100)
    server.faults["/down"] = [{"kind": "status", "code": 503}] * 10
    dead = dead_url()

    async def fetch(url: str) -> TransferError:
        async with make_client(opts) as client:
            http = HTTPDownloader(client, Politeness(opts), opts.chunk_size)
            with pytest.raises(CircuitOpenError) as info:
                await http.fetch(url, PartFile(tmp_path / "f"))
        return info.value

    refused = asyncio.run(fetch(dead + "/file"))
    assert refused.host == dead.removeprefix("http://")
    assert isinstance(refused.last_error, httpx.ConnectError)
    assert "last error: ConnectError:" in str(refused) and "refused" in str(refused).lower()
    assert "resume" not in str(refused)
    unavailable = asyncio.run(fetch(server.url + "/down"))
    assert f"last error: HTTP 503 from GET {server.url}/down" in str(unavailable)


def test_breaker_keeps_the_last_cause() -> None:
    breaker = CircuitBreaker(threshold=2, cooldown=60)
    first, last = ConnectionResetError("reset by peer"), TimeoutError()
    breaker.failure("a.example", first)
    breaker.failure("a.example", last)
    with pytest.raises(CircuitOpenError) as info:
        breaker.check("a.example")
    assert info.value.last_error is last and info.value.__cause__ is last
    assert "after 2 consecutive failures; last error: TimeoutError;" in str(info.value)
    breaker.success("a.example")
    breaker.check("a.example")
