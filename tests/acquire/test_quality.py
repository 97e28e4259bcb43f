"""Validators per format, on the real pscomppars snapshot and on small files
with known defects."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from conftest import PSCOMPPARS, fits_bytes, netcdf_bytes, pscomppars_bytes, vcf_gz
from exocube.acquire.options import PSCOMPPARS_COLUMNS
from exocube.acquire.quality.fits import validate_fits
from exocube.acquire.quality.gzipcheck import validate_gzip
from exocube.acquire.quality.netcdf import validate_netcdf
from exocube.acquire.quality.table import validate_table
from exocube.acquire.sources import nasa_exoplanet_archive as nea

SCHEMA = nea.schema(list(PSCOMPPARS_COLUMNS))


def test_real_pscomppars_passes_with_extremes_flagged_not_rejected() -> None:
    pscomppars_bytes()
    report = validate_table(PSCOMPPARS, SCHEMA)
    assert report.errors == []
    assert report.score >= 0.8 and not report.quarantined(0.5)
    flagged = {r["column"]: r for r in report.flags}
    assert {"st_teff", "pl_orbper"} <= set(flagged)
    teff = {e["key"]: e["value"] for e in flagged["st_teff"]["examples"]}
    assert teff["WISE J033605.05-014350.4 b"] == 415.0
    assert 57000.0 in teff.values()  # NN Ser, a white dwarf
    period = {e["key"]: e["value"] for e in flagged["pl_orbper"]["examples"]}
    assert period["COCONUTS-2 b"] == 4.02e8
    assert period["PSR J1719-1438 b"] == pytest.approx(0.0907, abs=1e-4)


def corrupt(tmp_path: Path, transform) -> Path:
    text = pscomppars_bytes().decode()
    out = tmp_path / "bad.csv"
    out.write_text(transform(text))
    return out


def test_impossible_values_are_errors(tmp_path: Path) -> None:
    def negative_period(text: str) -> str:
        lines = text.splitlines(keepends=True)
        header = next(i for i, line in enumerate(lines) if not line.startswith("#"))
        cols = lines[header].rstrip("\n").split(",")
        i = cols.index("pl_orbeccen")
        for j in range(header + 1, header + 40):
            row = lines[j].rstrip("\n").split(",")
            row[i] = "1.7"
            lines[j] = ",".join(row) + "\n"
        return "".join(lines)

    report = validate_table(corrupt(tmp_path, negative_period), SCHEMA)
    errors = [r for r in report.errors if r.get("column") == "pl_orbeccen"]
    assert errors and "physical range" in errors[0]["message"]
    assert report.score < 0.95


def test_missing_column_and_truncated_table(tmp_path: Path) -> None:
    dropped = corrupt(tmp_path, lambda t: t.replace("st_teff,", "st_tef_x,", 1))
    report = validate_table(dropped, SCHEMA)
    assert any(r["check"] == "table.schema" and r["column"] == "st_teff" for r in report.errors)
    empty = tmp_path / "empty.csv"
    empty.write_text("# nothing\n")
    assert validate_table(empty, SCHEMA).score == 0.0


def test_text_in_numeric_column_is_an_error(tmp_path: Path) -> None:
    bad = corrupt(tmp_path, lambda t: t.replace(",323.21000000,", ",<html>,", 1))
    report = validate_table(bad, SCHEMA)
    assert any(r["check"] == "table.type" for r in report.errors)


def test_fits_checksum_datasum_and_extensions(tmp_path: Path) -> None:
    good = tmp_path / "good.fits"
    good.write_bytes(fits_bytes("EXTRACT1D"))
    assert validate_fits(good, ["EXTRACT1D"]).score == 1.0
    assert validate_fits(good, ["SCI"]).errors[0]["check"] == "fits.extension"
    bad = tmp_path / "bad.fits"
    bad.write_bytes(fits_bytes("EXTRACT1D", corrupt=True))
    report = validate_fits(bad)
    assert {r["check"] for r in report.errors} & {"fits.datasum", "fits.checksum"}
    assert report.quarantined(0.5)
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"<html>not fits</html>")
    assert validate_fits(junk).score == 0.0


def test_netcdf_cf_checks(tmp_path: Path) -> None:
    import netCDF4

    good = tmp_path / "good.nc"
    good.write_bytes(netcdf_bytes())
    assert validate_netcdf(good, ["ts"]).score == 1.0
    assert validate_netcdf(good, ["ta"]).errors[0]["check"] == "netcdf.variable"
    with netCDF4.Dataset(good, "a") as ds:
        ds.variables["lat"][0] = 123.0
        del ds.Conventions
    report = validate_netcdf(good)
    assert [r["check"] for r in report.errors] == ["cf.range"]
    assert [r["check"] for r in report.flags] == ["cf.conventions"]
    truncated = tmp_path / "cut.nc"
    truncated.write_bytes(netcdf_bytes()[:200])
    assert validate_netcdf(truncated).score == 0.0


@pytest.mark.parametrize("cut", [10, 200, -8])
def test_gzip_truncation_is_caught(tmp_path: Path, cut: int) -> None:
    data = vcf_gz()
    path = tmp_path / "x.vcf.gz"
    path.write_bytes(data[:cut])
    assert validate_gzip(path).score == 0.0
    path.write_bytes(data)
    assert validate_gzip(path, b"##fileformat=VCF").score == 1.0
    path.write_bytes(gzip.compress(b"hello\n"))
    assert validate_gzip(path, b"##fileformat=VCF").errors
