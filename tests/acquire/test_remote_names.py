"""Names chosen by the remote side (index lines, listing hrefs, manifests, MAST
product names, KEGG ids) never place a file outside the destination: each one
goes through ``safe_relpath`` where a planned file is made, and the destination
checks the joined path again. The fault server serves every hostile name and
answers any path they resolve to, so without the checks the files would be
fetched, written beside the destination and catalogued as verified."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from fault_server import (
    HOSTILE_NAMES,
    FaultServer,
    hostile_index,
    hostile_listing,
    hostile_manifest,
)

from conftest import (
    fits_bytes,
    index_line,
    mast_handler,
    netcdf_bytes,
    point_at,
    run_sources,
    vcf_gz,
)
from exocube.acquire.destination import Destination
from exocube.acquire.names import MAX_SEGMENT_BYTES, collisions, inside, safe_relpath
from exocube.acquire.plan import Plan, PlannedFile, PlanningError
from exocube.catalog import Artifact, session_scope
from exocube.errors import UnsafeNameError

NAMES = pytest.mark.parametrize("name", HOSTILE_NAMES)


@pytest.mark.parametrize("name, reason", [
    ("s/../../x", "made only of dots"),
    ("s/%2e%2e/x", "made only of dots"),
    ("s/..%2fx", "made only of dots"),
    ("s/%252e%252e/x", "made only of dots"),
    ("s/%2525252e/x", "still percent-encoded"),
    ("/etc/passwd", "absolute"),
    ("s//etc/passwd", "empty segment"),
    ("s/x/", "empty segment"),
    ("", "empty"),
    ("s/..\\x", "backslash"),
    ("C:/x", "drive letter"),
    ("s/a\x00b", "control character"),
    ("s/a%0ab", "control character"),
    ("s/%ff", "not UTF-8"),
    ("s/.", "made only of dots"),
    ("s/...", "made only of dots"),
    ("_quarantine/x", "quarantine"),
    ("_Quarantine/x", "quarantine"),
    ("s/" + "x" * (MAX_SEGMENT_BYTES + 1), "longer than"),
    ("s/" + "x/" * 600 + "x", "longer than"),
    ("s/a.nc.part", "partial download"),
    ("s/a.nc.PART.json", "partial download"),
])
def test_unsafe_names_are_refused_with_the_reason(name: str, reason: str) -> None:
    with pytest.raises(UnsafeNameError, match=reason) as info:
        safe_relpath(name, source="gcm_outputs")
    assert info.value.name == name and "gcm_outputs" in str(info.value)


@pytest.mark.parametrize("name, safe", [
    ("phoenix/Z-0.0/lte05800-4.50-0.0.PHOENIX-HiRes.fits",
     "phoenix/Z-0.0/lte05800-4.50-0.0.PHOENIX-HiRes.fits"),
    ("gcm_outputs/r/ANN%201850.nc", "gcm_outputs/r/ANN 1850.nc"),
    ("kegg/pathway/path_map00010.txt", "kegg/pathway/path_map00010.txt"),
    ("s/100%.txt", "s/100%.txt"),
    ("s/.hidden", "s/.hidden"),
    ("s/2020-01-01T00:00.nc", "s/2020-01-01T00:00.nc"),
])
def test_plain_names_are_kept_as_decoded(name: str, safe: str) -> None:
    assert safe_relpath(name) == safe


def test_a_planned_file_and_a_stored_plan_are_checked() -> None:
    with pytest.raises(UnsafeNameError, match="made only of dots"):
        PlannedFile("genomes1000", "genomics", "genomes1000/../../x", "http://h/x")
    good = PlannedFile("geocarb", "geochemistry", "geocarb/%41.txt", "http://h/x")
    assert good.relpath == "geocarb/A.txt"
    rows = Plan([good]).to_json()
    rows[0]["relpath"] = "geocarb/../../../x"  # a tampered run config, resumed
    with pytest.raises(UnsafeNameError):
        Plan.from_json(rows)


@pytest.mark.parametrize("root", ["LOCAL", "s3://bucket/raw"])
def test_the_destination_checks_every_path_it_makes(root: str, tmp_path: Path) -> None:
    dest = Destination.from_string(str(tmp_path / "d") if root == "LOCAL" else root,
                                   tmp_path / "staging")
    base = dest.root
    assert dest.uri("s/a.nc") == f"{base}/s/a.nc"
    assert dest.uri("s/a.nc", quarantined=True) == f"{base}/_quarantine/s/a.nc"
    assert dest.part_for("s/a.nc").part.parent == Path(dest.staging) / "s"
    for bad in ("../x", "s/../../x", "/abs", "_quarantine/x", "s/%2e%2e/%2e%2e/x"):
        with pytest.raises(UnsafeNameError):
            dest.uri(bad)
        with pytest.raises(UnsafeNameError):
            dest.uri(bad, quarantined=True)
        with pytest.raises(UnsafeNameError):
            dest.part_for(bad)


def attempt(dest: Path, sources: list[str]) -> str:
    """Run ``sources`` into ``dest``; the refusal's text (raised, or recorded in the
    summary when planning failures are recorded per source)."""
    try:
        summary = run_sources(dest, sources)
    except (UnsafeNameError, PlanningError) as exc:
        return str(exc)
    return json.dumps(summary)


def assert_contained(box: Path, dest: Path, catalog_url: str, text: str) -> None:
    """Nothing beside ``dest`` in ``box``, no hostile file anywhere, none catalogued."""
    assert {p.name for p in box.iterdir()} <= {dest.name}
    assert not [p for p in box.parent.rglob("*PWNED*")]
    assert "refused the remote name" in text
    with session_scope(catalog_url) as s:
        uris = s.scalars(sa.select(Artifact.uri)).all()
    assert not [u for u in uris if "PWNED" in u]


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """An empty folder holding only the destination (``box/dest``)."""
    (tmp_path / "box").mkdir()
    return tmp_path / "box"


@NAMES
def test_genomes1000_index_names_stay_inside(archives: FaultServer, migrated: str, box: Path,
                                             monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    data = b"pwned\n"
    archives.catch_all = archives.add("/PWNED", data)
    archives.add("/vol1/ftp/current.tree",
                 hostile_index((name,), data, hashlib.md5(data).hexdigest()))
    point_at(monkeypatch, {"genomes1000__include": '["*"]'})
    text = attempt(box / "dest", ["genomes1000"])
    assert_contained(box, box / "dest", migrated, text)


@NAMES
@pytest.mark.parametrize("form", ["html", "json"])
def test_gcm_listing_names_stay_inside(archives: FaultServer, migrated: str, box: Path,
                                       monkeypatch: pytest.MonkeyPatch, name: str,
                                       form: str) -> None:
    data = netcdf_bytes()
    archives.catch_all = archives.add("/PWNED", data)
    if form == "html":
        archives.add("/rocke3d/", hostile_listing((name, "ANN1850.aij.nc")),
                     content_type="text/html")
    else:
        archives.add("/rocke3d/manifest.json", hostile_manifest((name, "ANN1850.aij.nc"), data),
                     content_type="application/json")
        point_at(monkeypatch, {"gcm_outputs__listings":
                               json.dumps([archives.url + "/rocke3d/manifest.json"])})
    point_at(monkeypatch, {"gcm_outputs__include": '["*"]'})
    text = attempt(box / "dest", ["gcm_outputs"])
    if form == "html" and name.startswith(("/", "..")):
        # an autoindex's parent and absolute links are navigation, never followed
        assert "refused" not in text and json.loads(text)["totals"]["done"] == 1
        assert {p.name for p in box.iterdir()} == {"dest"}
        assert not list(box.rglob("*PWNED*"))
        return
    assert_contained(box, box / "dest", migrated, text)


@NAMES
def test_mast_product_names_stay_inside(archives: FaultServer, migrated: str, box: Path,
                                        name: str) -> None:
    x1d = fits_bytes("EXTRACT1D")
    archives.add("/api/v0.1/Download/file", x1d, content_type="application/fits")
    archives.handlers["/api/v0/invoke"] = mast_handler([
        {"obsid": "1", "productFilename": name, "dataURI": "mast:JWST/product/x_x1d.fits",
         "size": len(x1d), "productSubGroupDescription": "X1D"}])
    text = attempt(box / "dest", ["mast"])
    assert_contained(box, box / "dest", migrated, text)


@pytest.mark.parametrize("entry", ["../../../PWNED", "%2e%2e/%2e%2e/%2e%2e/PWNED"])
def test_kegg_list_ids_stay_inside(archives: FaultServer, migrated: str, box: Path,
                                   entry: str) -> None:
    archives.catch_all = archives.add(
        "/PWNED", b"ENTRY       x                      Pathway\nNAME        x\n///\n")
    archives.add("/kegg/list/pathway", f"{entry}\tHostile\n".encode())
    text = attempt(box / "dest", ["kegg"])
    assert_contained(box, box / "dest", migrated, text)


def test_collisions_in_one_plan() -> None:
    names = ["g/a.nc", "g/A.NC", "g/a.nc/x", "g", "h/b", "h/c", "h/b"]
    assert collisions(names) == {
        1: "its name 'g/A.NC' collides with 'g/a.nc', planned before it",
        2: "its name 'g/a.nc/x' collides with 'g/a.nc', planned before it",
        3: "its name 'g' collides with 'g/a.nc', planned before it",
        6: "its name 'h/b' collides with 'h/b', planned before it"}
    assert inside("", "a/b") == "/a/b"  # the destination "/" has the root ""


def test_names_that_collide_are_not_fetched_over_each_other(
    archives: FaultServer, migrated: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An index listing a file twice, in another case, and as a directory: the file
    is fetched once, the clashes fail with the reason, nothing is overwritten."""
    rel = "release/20130502/ALL.chrY.phase3.genotypes.vcf.gz"
    vcf = vcf_gz()
    archives.add("/vol1/ftp/current.tree", "\n".join([
        index_line(rel, vcf), index_line(rel, vcf), index_line(rel.upper(), vcf),
        index_line(rel + "/x", vcf)]).encode() + b"\n")
    point_at(monkeypatch, {"genomes1000__include": '["*"]'})
    summary = run_sources(tmp_path / "data", ["genomes1000"])
    row = summary["sources"]["genomes1000"]
    assert (row["done"], row["skipped"], row["failed"]) == (1, 1, 2)
    reasons = sorted(r["reason"] for r in row["reasons"])
    assert reasons[0].startswith("its name 'genomes1000/RELEASE/")
    assert reasons[1].startswith(f"its name 'genomes1000/{rel}/x' collides with")
    assert reasons[2].startswith("planned twice")
    assert (tmp_path / "data" / "genomes1000" / rel).read_bytes() == vcf
    assert archives.count(f"/vol1/ftp/{rel}") == 1
