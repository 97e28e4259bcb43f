"""ExoPlaSim driver without running the model: design rows, configuration mapping, bad
input, ensemble directories, missing tools, equilibrium diagnostics."""

from __future__ import annotations

import math
from pathlib import Path

import netCDF4
import numpy as np
import pytest

from exocube.errors import InputDataError, MissingToolError
from exocube.gcm.equilibrium import EquilibriumCriteria, diagnose, global_mean
from exocube.gcm.exoplasim import check_tools
from exocube.gcm.exoplasim_config import ExoPlaSimRunConfig, RunLength, read_design
from exocube.gcm.exoplasim_ensemble import claim_directory, run_configs
from exocube.parallel import check_slurm
from exocube.physics import S_EARTH

HEADER = ("run_id,radius_earth,mass_earth,orbital_period_days,insolation_earth,stellar_teff_k,"
          "stellar_logg_cgs,stellar_metallicity_dex,host_mass_msun")
LOCKED = "m1,1.1,1.3,12.0,0.9,3100,5.0,0.0,0.2"


def design(tmp_path: Path, *lines: str, header: str = HEADER) -> Path:
    path = tmp_path / "design.csv"
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def test_locked_row_maps_onto_synchronous_exoplasim(tmp_path: Path) -> None:
    (row,) = read_design(design(tmp_path, LOCKED))
    assert row.tidally_locked and row.params["rotation_period_days"] == 12.0
    kw = ExoPlaSimRunConfig(row, RunLength(years=2, year_days=12, write_days=1)) \
        .configure_kwargs(None)
    assert kw["synchronous"] and kw["rotationperiod"] == 12.0 and kw["aquaplanet"]
    assert kw["flux"] == pytest.approx(0.9 * S_EARTH)
    assert kw["gravity"] == pytest.approx(9.82 * 1.3 / 1.1**2, rel=2e-3)
    assert kw["startemp"] == 3100.0 and kw["radius"] == 1.1
    assert kw["pN2"] + kw["pCO2"] == pytest.approx(kw["pressure"])
    assert kw["timestep"] == 30.0 and kw["runsteps"] == 12 * 48
    assert kw["otherargs"] == {"NSTPW@plasim_namelist": "48"}
    assert kw["restartfile"] is None


def test_rotating_land_row_with_ch4_and_no_co2(tmp_path: Path) -> None:
    header = HEADER + ",rotation_period_days,surface,pco2_bar,pch4_bar,surface_pressure_bar"
    (row,) = read_design(design(tmp_path, "e," + "1,1,365,1,5772,4.44,0,1" +
                                ",1.0,land,1e-6,0.01,1.5", header=header))
    assert not row.tidally_locked and row.obliquity_deg == 23.441
    kw = ExoPlaSimRunConfig(row, RunLength()).configure_kwargs(Path("/r/MOST_REST.00003"))
    assert kw["desertplanet"] and "synchronous" not in kw and kw["rotationperiod"] == 1.0
    assert kw["pCH4"] == 0.01 and kw["pN2"] == pytest.approx(1.5 - 0.01 - 1e-6)
    assert kw["restartfile"] == "/r/MOST_REST.00003"


@pytest.mark.parametrize(("line", "names"), [
    ("m1,1.1,1.3,12.0,0.9,abc,5.0,0.0,0.2", ["stellar_teff_k='abc'", "row 2", "'m1'"]),
    ("m1,1.1,1.3,12.0,0.9,3100,5.0,0.0,", ["host_mass_msun", "missing"]),
    ("m1,9.0,1.3,12.0,0.9,3100,5.0,0.0,0.2", ["radius_earth='9.0'", "[0.25, 3.0]"]),
    ("bad id!,1.1,1.3,12.0,0.9,3100,5.0,0.0,0.2", ["run_id='bad id!'"]),
])
def test_bad_design_value_names_field_and_value(tmp_path: Path, line: str,
                                                names: list[str]) -> None:
    with pytest.raises(InputDataError) as info:
        read_design(design(tmp_path, line))
    for name in names:
        assert name in str(info.value)


ATMOSPHERE = HEADER + ",surface_pressure_bar,pco2_bar,pch4_bar"


@pytest.mark.parametrize(("atmosphere", "names"), [
    ("200,0.1,0", ["surface_pressure_bar='200'", "[0.01, 100.0] bar", "'m1'"]),
    ("1,1.5,0", ["pco2_bar=1.5", "at most surface_pressure_bar = 1 bar", "row 2"]),
    ("1,0.1,-0.01", ["pch4_bar='-0.01'", "[0.0, 100.0] bar"]),
    ("2,1.5,0.6", ["pch4_bar=0.6", "at most surface_pressure_bar - pco2_bar = 0.5 bar"]),
])
def test_design_rows_outside_the_validity_bounds_are_refused(
        tmp_path: Path, atmosphere: str, names: list[str]) -> None:
    with pytest.raises(InputDataError) as info:
        read_design(design(tmp_path, f"{LOCKED},{atmosphere}", header=ATMOSPHERE))
    for name in names:
        assert name in str(info.value)


def test_real_atmospheres_map_onto_exoplasim(tmp_path: Path) -> None:
    """A 3-bar run, a CO2-free one, a CH4-bearing one and a pure-CO2 one (all outside the
    built-in generator's ranges) map onto ExoPlaSim's pressure and gas keywords."""
    thick, dry, methane, pure = read_design(design(
        tmp_path, "t," + LOCKED[3:] + ",3,0.01,", "d," + LOCKED[3:] + ",1,0,",
        "c," + LOCKED[3:] + ",1.2,0.001,0.002", "p," + LOCKED[3:] + ",5,5,", header=ATMOSPHERE))
    kw = {r.run_id: ExoPlaSimRunConfig(r, RunLength()).configure_kwargs(None)
          for r in (thick, dry, methane, pure)}
    assert kw["t"]["pressure"] == 3.0 and kw["t"]["pCO2"] == 0.01
    assert kw["t"]["pN2"] == pytest.approx(2.99) and "pCH4" not in kw["t"]
    assert "pCO2" not in kw["d"] and kw["d"]["otherargs"]["CO2@radmod_namelist"] == "0.0"
    assert kw["d"]["pN2"] == 1.0
    assert kw["c"]["pCH4"] == 0.002 and kw["c"]["pCO2"] == 0.001
    assert kw["c"]["pN2"] == pytest.approx(1.2 - 0.003)
    assert kw["p"]["pCO2"] == 5.0 and kw["p"]["pN2"] == 0.0
    assert methane.pch4_bar == 0.002 and "pch4_bar" not in methane.params
    assert methane.planet_params["pch4_bar"] == 0.002 and thick.planet_params["pch4_bar"] == 0.0


def test_zero_co2_is_zero_not_exoplasims_default(tmp_path: Path) -> None:
    (row,) = read_design(design(tmp_path, LOCKED))
    row = type(row)(**{**row.to_dict(), "params": {**row.params, "pco2_bar": 0.0}})
    kw = ExoPlaSimRunConfig(row, RunLength()).configure_kwargs(None)
    assert "pCO2" not in kw and kw["otherargs"]["CO2@radmod_namelist"] == "0.0"
    assert kw["pN2"] == kw["pressure"]


def test_bad_extras_and_duplicates_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="surface='lava'"):
        read_design(design(tmp_path, LOCKED + ",lava", header=HEADER + ",surface"))
    with pytest.raises(InputDataError, match="pco2_bar \\+ pch4_bar"):
        read_design(design(tmp_path, LOCKED + ",0.5,0.6", header=HEADER + ",pco2_bar,pch4_bar"))
    with pytest.raises(InputDataError, match="appears twice"):
        read_design(design(tmp_path, LOCKED, LOCKED))
    with pytest.raises(InputDataError, match="unknown: \\['colour'\\]"):
        read_design(design(tmp_path, LOCKED + ",red", header=HEADER + ",colour"))


def test_default_model_year_is_the_orbit_or_360_days_when_locked(tmp_path: Path) -> None:
    header = HEADER + ",rotation_period_days"
    locked, rotating = read_design(design(tmp_path, LOCKED + ",12.0",
                                          "e,1,1,365.6,1,5772,4.44,0,1,1.0", header=header))
    assert ExoPlaSimRunConfig(locked, RunLength()).configure_kwargs(None)["runsteps"] \
        == 360 * 48
    assert ExoPlaSimRunConfig(rotating, RunLength()).year_days == 365.0  # ExoPlaSim's int()
    assert ExoPlaSimRunConfig(rotating, RunLength()).configure_kwargs(None)["runsteps"] \
        == 365 * 32
    with pytest.raises(InputDataError, match="would write no output"):
        ExoPlaSimRunConfig(locked, RunLength(write_days=400)).configure_kwargs(None)


def test_run_length_must_be_whole_time_steps(tmp_path: Path) -> None:
    (row,) = read_design(design(tmp_path, LOCKED))
    with pytest.raises(InputDataError, match=r"write_days=0\.01 days"):
        ExoPlaSimRunConfig(row, RunLength(year_days=2, write_days=0.01)).configure_kwargs(None)


def test_directory_holding_another_ensemble_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("exoplasim")
    rows = read_design(design(tmp_path, LOCKED))
    out = tmp_path / "out"
    ident = claim_directory(out, run_configs(rows, RunLength(years=2)), EquilibriumCriteria())
    assert claim_directory(out, run_configs(rows, RunLength(years=2)),
                           EquilibriumCriteria()) == ident
    assert claim_directory(out, run_configs(rows, RunLength(years=5)),  # extended: same one
                           EquilibriumCriteria()) == ident
    with pytest.raises(InputDataError, match=f"holds another ExoPlaSim ensemble \\(id {ident}"):
        claim_directory(out, run_configs(rows, RunLength(years=2, year_days=10)),
                        EquilibriumCriteria())
    with pytest.raises(InputDataError, match="holds another ExoPlaSim ensemble"):
        claim_directory(out, run_configs(rows, RunLength(years=2)), EquilibriumCriteria(2.0))
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(InputDataError, match=r"not empty and has no ensemble\.json"):
        claim_directory(other, run_configs(rows, RunLength()), EquilibriumCriteria())


def test_missing_gfortran_and_slurm_name_the_debian_package(tmp_path: Path,
                                                            monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingToolError, match="Debian package gfortran"):
        check_tools(1)
    with pytest.raises(MissingToolError, match="slurm-wlm"):
        check_slurm()
    (tmp_path / "gfortran").write_text("#!/bin/sh\n")
    (tmp_path / "gfortran").chmod(0o755)
    check_tools(1)
    with pytest.raises(MissingToolError, match="openmpi-bin and libopenmpi-dev"):
        check_tools(4)


def _year_file(path: Path, ntr: float, ts: np.ndarray | float) -> Path:
    lat = np.linspace(-85, 85, 18)
    with netCDF4.Dataset(path, "w") as ds:
        for name, size in (("time", 2), ("lat", lat.size), ("lon", 8)):
            ds.createDimension(name, size)
        ds.createVariable("lat", "f8", ("lat",))[:] = lat
        ds.createVariable("ntr", "f4", ("time", "lat", "lon"))[:] = ntr
        ds.createVariable("ts", "f4", ("time", "lat", "lon"))[:] = ts
    return path


def test_global_mean_is_area_weighted() -> None:
    lat = np.linspace(-89.5, 89.5, 180)
    field = np.broadcast_to(np.sin(np.deg2rad(lat))[:, None] ** 2, (180, 4))
    assert global_mean(field, lat) == pytest.approx(1 / 3, rel=1e-3)


def test_equilibrium_flag_follows_the_thresholds(tmp_path: Path) -> None:
    y0 = _year_file(tmp_path / "MOST.00000.nc", 0.5, 280.0)
    y1 = _year_file(tmp_path / "MOST.00001.nc", 0.5, 280.05)
    diag = diagnose([y0, y1], year_days=360.0)
    assert diag.toa_net_flux_w_m2 == pytest.approx(0.5)
    assert diag.ts_drift_k_per_year == pytest.approx(0.05, abs=1e-4)
    assert diag.equilibrated
    assert not diagnose([y0, y1], 36.0).equilibrated  # ten such years per year: 0.5 K/yr
    assert not diagnose([y0, y1], 360.0, EquilibriumCriteria(0.4, 0.1)).equilibrated
    alone = diagnose([y1], 360.0)
    assert math.isnan(alone.ts_drift_k_per_year) and not alone.equilibrated


def test_cli_bad_design_row_is_one_line_naming_the_field(tmp_path: Path, capsys) -> None:
    from exocube.cli import main

    csv = design(tmp_path, "m1,1.1,1.3,-12.0,0.9,3100,5.0,0.0,0.2")
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "exoplasim", "--design", str(csv), "--out", str(tmp_path / "o")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "orbital_period_days='-12.0' is invalid" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_out_path_the_shell_would_split_is_refused(tmp_path: Path) -> None:
    from exocube.gcm.exoplasim_ensemble import check_out_path

    check_out_path(tmp_path / "ens-1")
    with pytest.raises(InputDataError, match="passes paths to the shell unquoted"):
        check_out_path(tmp_path / "my runs")
