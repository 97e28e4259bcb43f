"""IRIS EMC reference Earth models (planetary interiors): plan, fetch and
validate the recorded PREM table on the loopback server, and the checks that
catch a broken model."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from fault_server import FaultServer

from conftest import point_at, run_sources
from exocube.acquire.options import PREM_COLUMNS
from exocube.acquire.plan import PlannedFile
from exocube.acquire.run import plan_sources
from exocube.acquire.sources import iris_emc
from exocube.catalog import Artifact, Source, session_scope
from exocube.config import get_settings
from exocube.errors import ConfigError

PREM = Path(__file__).resolve().parent / "data" / "iris_emc" / "PREM_1s.csv"
META = {"columns": list(PREM_COLUMNS), "header_lines": 0, "surface_radius_km": 6371.0,
        "radius_tolerance_km": 5.0, "planet_mass_kg": 5.9722e24, "mass_tolerance": 0.01}






def check(path: Path, **meta: Any) -> Any:
    item = PlannedFile(source="iris_emc", domain="planetary_interiors", relpath="x",
                       url="http://x", meta={**META, **meta})
    return iris_emc.validate(path, item)


def prem_rows() -> list[str]:
    return PREM.read_text().splitlines()


def write(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "model.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_prem_plan_fetch_validate(archives: FaultServer, migrated: str, tmp_path: Path) -> None:
    summary = run_sources(tmp_path / "data", ["iris_emc"])
    assert summary["sources"]["iris_emc"]["done"] == 1
    got = tmp_path / "data" / "iris_emc" / "PREM" / "PREM_1s.csv"
    assert got.read_bytes() == PREM.read_bytes()
    assert [r["path"] for r in archives.requests if r["method"] == "GET"] == [
        "/emc/PREM/PREM_1s.csv"]
    with session_scope(migrated) as s:
        art = s.execute(sa.select(Artifact)).scalar_one()
        assert s.get(Source, art.source_id).domain == "planetary_interiors"
        assert art.status == "verified" and art.size == PREM.stat().st_size
        # PREM's density decreases slightly with depth in the LID/LVZ (80-220 km): a flag
        assert [r["check"] for r in art.quality_reasons] == ["emc.density_order"]
        assert art.quality_score == pytest.approx(0.98)


def test_non_monotonic_radius_is_quarantined(archives: FaultServer, migrated: str,
                                             tmp_path: Path) -> None:
    rows = prem_rows()
    rows[50], rows[51] = rows[51], rows[50]
    archives.add("/emc/PREM/PREM_1s.csv", ("\n".join(rows) + "\n").encode())
    summary = run_sources(tmp_path / "data", ["iris_emc"])
    src = summary["sources"]["iris_emc"]
    assert src["quarantined"] == 1
    assert "column 'radius' is not monotonic: row 51 has 6241 after 6231" in \
        src["reasons"][0]["reason"]
    assert list((tmp_path / "data" / "_quarantine").rglob("PREM_1s.csv"))
    assert not list((tmp_path / "data" / "iris_emc").rglob("*.csv"))


def test_domain_filter_plans_only_interiors(archives: FaultServer) -> None:
    plan = asyncio.run(plan_sources(get_settings(), None, ["planetary_interiors"]))
    assert [f.source for f in plan.files] == ["iris_emc"]
    assert plan.files[0].url == archives.url + "/emc/PREM/PREM_1s.csv"
    assert plan.files[0].size == PREM.stat().st_size  # from HEAD


def test_centre_outward_table_is_accepted(tmp_path: Path) -> None:
    forward = check(PREM)
    backward = check(write(tmp_path, prem_rows()[::-1]))
    assert [r["check"] for r in backward.reasons] == [r["check"] for r in forward.reasons]


def test_table_in_metres_fails_the_surface_check(tmp_path: Path) -> None:
    rows = [",".join([str(float(v) * 1000) if i < 2 else v
                      for i, v in enumerate(r.split(","))]) for r in prem_rows()]
    report = check(write(tmp_path, rows))
    surface = next(r for r in report.errors if r["check"] == "emc.surface")
    assert "top is at radius 6.371e+06 km, expected 6371 +- 5 km" in surface["message"]
    assert report.quarantined(0.5)


def test_shear_faster_than_allowed_by_the_bulk_modulus(tmp_path: Path) -> None:
    rows = prem_rows()
    f = rows[10].split(",")
    f[5] = f[6] = "5.1"  # Vs 5.1 km/s with Vp 5.8: Vp^2 < 4/3 Vs^2
    rows[10] = ",".join(f)
    report = check(write(tmp_path, rows))
    assert [r["check"] for r in report.errors] == ["emc.moduli", "emc.moduli"]
    assert "row 10: Vpv=5.8, Vsv=5.1" in report.errors[0]["message"]


def test_impossible_and_unusual_values(tmp_path: Path) -> None:
    rows = prem_rows()
    f = rows[100].split(",")
    f[2] = "0"  # zero density: impossible
    f[8] = "2e5"  # Q-mu of 200000: unusual, flagged
    rows[100] = ",".join(f)
    report = check(write(tmp_path, rows))
    errors = {r["column"] for r in report.errors if r["check"] == "emc.range"}
    flags = {r["column"] for r in report.flags if r["check"] == "emc.range"}
    assert errors == {"density"} and flags == {"Q-mu"}


def test_bad_rows_name_the_line(tmp_path: Path) -> None:
    rows = prem_rows()
    rows[3] = rows[3] + ",7"
    report = check(write(tmp_path, rows))
    assert report.score == 0.0
    assert "line 4 has 11 fields, expected 10" in report.errors[0]["message"]
    rows = prem_rows()
    rows[5] = rows[5].replace("2.6", "n/a")
    assert "line 6: not all fields are numbers" in check(write(tmp_path, rows)).errors[0][
        "message"]


def test_header_lines_are_skipped(tmp_path: Path) -> None:
    rows = ["PREM 1 s, isotropic", "radius km, depth km, ...", *prem_rows()]
    assert check(write(tmp_path, rows), header_lines=2).errors == []
    assert check(write(tmp_path, rows)).errors[0]["check"] == "emc.parse"


def test_mass_integral() -> None:
    r = np.linspace(0, 6371, 20001)
    rho = np.full_like(r, 5.5)
    exact = 4 / 3 * math.pi * (6371e3) ** 3 * 5500
    assert iris_emc.mass_kg(r[::-1], rho) == pytest.approx(exact, rel=1e-8)
    cols = iris_emc.read_model(PREM, list(PREM_COLUMNS), 0)
    # PREM's mass is 5.974e24 kg; the 199-row tabulation integrates to within 0.5%
    assert iris_emc.mass_kg(cols["radius"], cols["density"]) == pytest.approx(5.974e24,
                                                                               rel=5e-3)


def test_wrong_density_scale_is_flagged_not_rejected(tmp_path: Path) -> None:
    rows = []
    for r in prem_rows():
        f = r.split(",")
        f[2] = f"{float(f[2]) * 1.1:.5f}"
        rows.append(",".join(f))
    report = check(write(tmp_path, rows))
    mass = next(r for r in report.flags if r["check"] == "emc.mass")
    assert "9.6% from the expected 5.9722e+24 kg" in mass["message"] and not report.errors


def test_model_path_must_stay_below_the_base() -> None:
    assert iris_emc.model_path("AK135F/AK135F_AVG.csv") == "AK135F/AK135F_AVG.csv"
    for bad in ("../etc/passwd", "/PREM/PREM_1s.csv", ""):
        with pytest.raises(ConfigError, match="relative to the base URL"):
            iris_emc.model_path(bad)


def test_models_from_the_environment(archives: FaultServer,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    models = [{"path": "PREM/PREM_1s.csv"},
              {"path": "IASP91/IASP91.csv", "columns": ["depth", "radius", "Vp", "Vs"]}]
    point_at(monkeypatch, {"iris_emc__models": json.dumps(models)})
    plan = asyncio.run(plan_sources(get_settings(), ["iris_emc"]))
    assert [f.relpath for f in plan.files] == ["iris_emc/PREM/PREM_1s.csv",
                                               "iris_emc/IASP91/IASP91.csv"]
    assert plan.files[1].meta["columns"] == ["depth", "radius", "Vp", "Vs"]
    assert plan.files[1].size is None  # not on the server: HEAD answered 404
