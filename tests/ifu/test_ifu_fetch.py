"""``exocube ifu fetch --program 3149``: the MAST program query and plan from recorded
answers on a loopback server, a real download through the acquisition engine (verified,
catalogued, skipped on a re-run), bad program numbers, and planning answers recorded
online and replayed with the server stopped (missing and changed answers refused)."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "acquire"))
from fault_server import FaultServer
from ifu_helpers import small_template

from exocube.acquire.plan import PlanningError
from exocube.cli import main
from exocube.config import get_settings
from exocube.errors import ConfigError, TransferError
from exocube.ifu.cube import read_s3d, sha256_of, write_s3d
from exocube.ifu.fetch import plan_program, program_id, program_settings

DATA = Path(__file__).resolve().parent / "data" / "mast_3149"
S3D = "jw03149-o001_t001_nirspec_g140m-f100lp_s3d.fits"


@pytest.fixture
def mast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[FaultServer, list]]:
    """A loopback MAST answering from the recorded files; the requests it got."""
    server = FaultServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    cube = write_s3d(small_template(), tmp_path / "served_s3d.fits")
    server.add("/api/v0.1/Download/file", cube, content_type="application/fits")
    requests: list[dict] = []

    def invoke(form: dict[str, list[str]]) -> tuple[int, str, bytes]:
        req = json.loads(form["request"][0])
        requests.append(req)
        if req["service"] == "Mast.Caom.Filtered":
            return 200, "application/json", (DATA / "observations.json").read_bytes()
        body = json.loads((DATA / f"products_{req['params']['obsid']}.json").read_text())
        for row in body["data"]:
            if row["productFilename"] == S3D:
                row["size"] = cube.stat().st_size  # the file this server serves
        return 200, "application/json", json.dumps(body).encode()

    server.handlers["/api/v0/invoke"] = invoke
    for key, value in {"MAST__BASE_URL": server.url, "BACKOFF_BASE": "0.01",
                       "MAX_ATTEMPTS": "2", "READ_TIMEOUT": "5"}.items():
        monkeypatch.setenv(f"EXOCUBE_ACQUIRE__{key}", value)
    get_settings.cache_clear()
    yield server, requests
    server.shutdown()
    server.server_close()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    try:
        main(["ifu", "fetch", *args])
    except SystemExit as exc:
        assert exc.code in (0, None), capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_dry_run_plans_the_program_products(mast, capsys: pytest.CaptureFixture[str]) -> None:
    _, requests = mast
    got = run(capsys, "--program", "03149", "--dry-run")
    assert got["program"] == "3149"
    names = sorted(Path(f["relpath"]).name for f in got["files"])
    assert names == sorted([S3D, "jw03149-o001_t001_nirspec_g140m-f100lp_x1d.fits",
                            "jw03149001001_03101_00001_nrs1_cal.fits",
                            "jw03149001001_03101_00001_nrs2_cal.fits"])
    assert all(f["relpath"].startswith("mast/jw03149-o001_t001_nirspec_g140m-f100lp/")
               for f in got["files"])
    filters = {f["paramName"]: f["values"] for f in requests[0]["params"]["filters"]}
    assert filters == {"obs_collection": ["JWST"], "proposal_id": ["3149"]}


def test_fetch_downloads_verifies_and_skips_on_rerun(
        mast, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "data"
    summary = run(capsys, "--program", "3149", "--products", "S3D", "--dest", str(dest))
    assert summary["sources"]["mast"]["done"] == 1, summary
    (path,) = dest.rglob(S3D)
    cube = read_s3d(path)
    assert cube.shape == small_template().shape
    assert cube.sha256 == sha256_of(tmp_path / "served_s3d.fits")
    again = run(capsys, "--program", "3149", "--products", "S3D", "--dest", str(dest))
    assert again["sources"]["mast"]["skipped"] == 1 and again["sources"]["mast"]["done"] == 0


def test_bad_program_and_products() -> None:
    with pytest.raises(ConfigError, match="'31x9' is not a JWST program number"):
        program_id("31x9")
    assert program_id(" 3149 ") == "3149"
    with pytest.raises(ConfigError, match=r"product subgroups \['S4D'\]"):
        program_settings(get_settings(), "3149", ["S4D"])


def stop(server: FaultServer) -> None:
    server.shutdown()
    server.server_close()


def test_recorded_answers_replay_the_dry_run_offline(
        mast, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server, requests = mast
    folder = tmp_path / "answers"
    online = run(capsys, "--program", "3149", "--dry-run", "--record", str(folder))
    index = json.loads((folder / "index.json").read_text())
    assert len(index) == len(requests) == 2
    services = sorted(e["request"]["request"]["service"] for e in index.values())
    assert services == ["Mast.Caom.Filtered", "Mast.Caom.Products"]
    for digest, entry in index.items():
        body = (folder / f"{digest}.json").read_bytes()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"]
        assert entry["url"] == f"{server.url}/api/v0/invoke" and entry["time"]
    stop(server)
    offline = run(capsys, "--program", "3149", "--dry-run", "--answers", str(folder))
    assert offline == online and len(online["files"]) == 4
    assert len(requests) == 2  # nothing reached the (stopped) server


def test_missing_and_tampered_answers_are_refused(
        mast, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server, _ = mast
    folder = tmp_path / "answers"
    run(capsys, "--program", "3149", "--dry-run", "--record", str(folder))
    stop(server)
    other = program_settings(get_settings(), "3149", max_observations=7)  # another request
    with pytest.raises(PlanningError, match=r"no recorded answer for Mast\.Caom\.Filtered .*"
                       rf"in {re.escape(str(folder))}; record it with --record"):
        plan_program(other, answers=folder)
    index = json.loads((folder / "index.json").read_text())
    (digest,) = [d for d, e in index.items()
                 if e["request"]["request"]["service"] == "Mast.Caom.Products"]
    answer = folder / f"{digest}.json"
    answer.write_text(answer.read_text().replace('"size"', '"size" ', 1))
    settings = program_settings(get_settings(), "3149")
    with pytest.raises(PlanningError, match=rf"recorded answer {re.escape(str(answer))} for "
                       r"Mast\.Caom\.Products .* the file was changed; refused"):
        plan_program(settings, answers=folder)
    with pytest.raises(ConfigError, match="--record and --answers together"):
        plan_program(settings, record=tmp_path / "r", answers=folder)
    (folder / "index.json").unlink()
    with pytest.raises(TransferError, match=r"no index\.json; it is not a folder of recorded"):
        plan_program(settings, answers=folder)
