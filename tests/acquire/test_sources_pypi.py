"""PyPI release metadata (software/ops): plan, fetch and validate the recorded
``/pypi/httpx/0.28.1/json`` answer on the loopback server, a 404, an answer for
the wrong version, and the checks on digests."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fault_server import FaultServer
from packaging.version import Version

from conftest import point_at, run_sources
from exocube.acquire.plan import PlannedFile
from exocube.acquire.run import plan_sources
from exocube.acquire.sources import pypi
from exocube.catalog import Artifact, Source, session_scope
from exocube.config import get_settings
from exocube.errors import ConfigError

HTTPX = Path(__file__).resolve().parent / "data" / "pypi" / "httpx-0.28.1.json"
WHEEL_SHA256 = "d909fcccc110f8c7faf814ca82a9a4d816bc5a6dbfea25d6591d6985b8ba59ad"
SDIST_SHA256 = "75e98c5f16b0f35b567856f597f06ff2270a374470a5c2392242528e3e3e42fc"






def check(body: dict[str, Any], tmp_path: Path, version: str = "0.28.1",
          installed: str | None = None) -> Any:
    path = tmp_path / "answer.json"
    path.write_text(json.dumps(body))
    item = PlannedFile(source="pypi", domain="software_ops", relpath="x", url="http://x",
                       meta={"project": "httpx", "version": version, "installed": installed})
    return pypi.validate(path, item)


def answer() -> dict[str, Any]:
    return json.loads(HTTPX.read_text())


def test_release_plan_fetch_validate(archives: FaultServer, migrated: str,
                                     tmp_path: Path) -> None:
    summary = run_sources(tmp_path / "data", ["pypi"])
    assert summary["sources"]["pypi"]["done"] == 1
    got = tmp_path / "data" / "pypi" / "httpx" / "0.28.1.json"
    assert pypi.release_digests(got) == {"httpx-0.28.1-py3-none-any.whl": WHEEL_SHA256,
                                         "httpx-0.28.1.tar.gz": SDIST_SHA256}
    assert [r["path"] for r in archives.requests] == ["/pypi/httpx/0.28.1/json"]
    with session_scope(migrated) as s:
        art = s.execute(sa.select(Artifact)).scalar_one()
        assert s.get(Source, art.source_id).domain == "software_ops"
        assert art.status == "verified" and art.quality_score == 1.0
        assert art.quality_reasons == [] and art.media_type == "application/json"


def test_answer_for_another_version_is_rejected(
    archives: FaultServer, migrated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archives.add("/pypi/httpx/0.28.0/json", HTTPX.read_bytes(),
                 content_type="application/json")
    point_at(monkeypatch, {"pypi__packages": json.dumps(["httpx==0.28.0"])})
    summary = run_sources(tmp_path / "data", ["pypi"])
    src = summary["sources"]["pypi"]
    assert src["quarantined"] == 1
    assert src["reasons"][0]["reason"].startswith(
        "answer is for version '0.28.1', requested '0.28.0'")
    assert list((tmp_path / "data" / "_quarantine").rglob("0.28.0.json"))


def test_project_not_on_pypi_is_skipped(
    archives: FaultServer, migrated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point_at(monkeypatch, {"pypi__packages": json.dumps(["httpx==0.28.1",
                                                         "exocube-private==0.1.0"])})
    summary = run_sources(tmp_path / "data", ["pypi"])
    src = summary["sources"]["pypi"]
    assert src["done"] == 1 and src["skipped"] == 1
    assert src["reasons"][0]["reason"] == "no result (HTTP 404)"


def test_bare_name_means_the_installed_version(archives: FaultServer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    point_at(monkeypatch, {"pypi__packages": json.dumps(["httpx", "HTTPX==0.28.1", "netCDF4"])})
    plan = asyncio.run(plan_sources(get_settings(), ["pypi"]))
    httpx_v = importlib.metadata.version("httpx")
    nc_v = Version(importlib.metadata.version("netCDF4")).public
    urls = [f.url for f in plan.files]
    assert urls[0] == f"{archives.url}/pypi/httpx/{httpx_v}/json"
    assert urls[-1] == f"{archives.url}/pypi/netcdf4/{nc_v}/json"
    assert len(urls) == (2 if httpx_v == "0.28.1" else 3)  # the same release planned once
    assert plan.files[0].meta["installed"] == httpx_v


def test_resolve() -> None:
    assert pypi.resolve("torch==2.13.0+cpu") == ("torch", "2.13.0", None)
    assert pypi.resolve("Zope.Interface == 7.2") == ("zope-interface", "7.2", None)
    with pytest.raises(ConfigError, match="not installed here; pin it as"):
        pypi.resolve("surely-not-installed-here")
    with pytest.raises(ConfigError, match="not a PEP 440 version"):
        pypi.resolve("numpy==latest")
    with pytest.raises(ConfigError, match="is not 'name' or 'name==version'"):
        pypi.resolve("numpy>=2")


def test_malformed_digests_are_errors(tmp_path: Path) -> None:
    body = answer()
    body["urls"][0]["digests"]["sha256"] = WHEEL_SHA256[:-1]
    body["urls"][1]["digests"]["sha256"] = WHEEL_SHA256.upper()
    report = check(body, tmp_path)
    assert [r["check"] for r in report.errors] == ["pypi.digests"]
    assert "2 release file entries are malformed" in report.errors[0]["message"]
    assert report.quarantined(0.5)


def test_not_a_release_answer(tmp_path: Path) -> None:
    assert check({"message": "Not Found"}, tmp_path).errors[0]["check"] == "pypi.schema"
    (tmp_path / "answer.json").write_text("<html>rate limited</html>")
    item = PlannedFile(source="pypi", domain="software_ops", relpath="x", url="http://x",
                       meta={"project": "httpx", "version": "0.28.1", "installed": None})
    assert pypi.validate(tmp_path / "answer.json", item).score == 0.0
    body = answer()
    body["info"]["name"] = "httpcore"
    assert "answer is for project 'httpcore'" in check(body, tmp_path).errors[0]["message"]


def test_yanked_vulnerable_and_local_builds_are_flagged(tmp_path: Path) -> None:
    body = answer()
    body["info"]["yanked"], body["info"]["yanked_reason"] = True, "broken wheel"
    body["vulnerabilities"] = [{"id": "PYSEC-0000-0", "aliases": [], "details": "x"}]
    report = check(body, tmp_path, installed="0.28.1+local")
    assert [r["check"] for r in report.flags] == ["pypi.yanked", "pypi.vulnerabilities",
                                                 "pypi.local_version"]
    assert not report.errors and not report.quarantined(0.5)
    assert "yanked: broken wheel" in report.flags[0]["message"]


def test_version_compared_as_pep440(tmp_path: Path) -> None:
    assert check(answer(), tmp_path, version="0.28.1.0").errors == []
