"""Real planets outside the built-in generator's ranges go through ``exocube ingest`` and
``exocube validate``: a 3-bar run, a CO2-free run and a CH4-bearing run, in ExoPlaSim's
post-processed shape with the attributes the ExoPlaSim driver writes; out-of-bounds
parameters are refused naming the field, the value and the bound."""

from __future__ import annotations

import json
from pathlib import Path

import netCDF4
import numpy as np
import pytest
from builders import PARAMS, SMALL_GRID, exoplasim_file

from exocube.cubes import open_store
from exocube.gcm.exoplasim import RunState, write_output
from exocube.gcm.exoplasim_config import ExoPlaSimRunConfig, RunLength, design_row
from exocube.grid import DEFAULT_GRID, parse_levels

PLANET = {k: str(v) for k, v in PARAMS.items() if k not in ("surface_pressure_bar", "pco2_bar")}
ATMOSPHERES = {  # run id -> (surface pressure, design columns)
    "thick": (3.0, {"surface_pressure_bar": "3.0", "pco2_bar": "0.01"}),
    "dry": (1.0, {"surface_pressure_bar": "1.0", "pco2_bar": "0"}),
    "methane": (0.8, {"surface_pressure_bar": "0.8", "pco2_bar": "4e-4", "pch4_bar": "0.005"}),
}
# the store's horizontal grid is the files' own (as T21 output on the default 32 x 64 grid)
SAME_GRID = ("--nlat", str(SMALL_GRID.nlat), "--nlon", str(SMALL_GRID.nlon))
EQUILIBRATED = {"equilibrated": True, "toa_net_flux_w_m2": 0.2, "ts_drift_k_per_year": 0.01,
                "ts_global_mean_k": 288.0, "years_evaluated": 1,
                "max_toa_imbalance_w_m2": 1.0, "max_ts_drift_k_per_year": 0.1}


def driver_file(folder: Path, run_id: str, ps_bar: float, columns: dict[str, str],
                seed: int) -> str:
    """The model's post-processed file, given the driver's global attributes by the driver's
    own ``write_output`` from a design row."""
    row = design_row({"run_id": run_id, **PLANET, **columns}, f"test row {run_id}")
    config = ExoPlaSimRunConfig(row, RunLength(years=1))
    state = RunState(run_id=run_id, config_digest=config.digest(), years_target=1,
                     years_done=1)
    raw = exoplasim_file(folder / f"{run_id}.raw.nc", seed=seed, surface_pressure_bar=ps_bar)
    target = folder / f"{run_id}.nc"
    write_output(raw, target, config, state, EQUILIBRATED)
    return str(target)


@pytest.fixture
def real_runs(tmp_path: Path) -> list[str]:
    folder = tmp_path / "exoplasim"
    folder.mkdir()
    return [driver_file(folder, run_id, ps, cols, seed)
            for seed, (run_id, (ps, cols)) in enumerate(ATMOSPHERES.items())]


def cli(*args: str) -> int:
    from exocube.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    return int(exit_info.value.code or 0)


def ingest_and_validate(files: list[str], store: str, address: str, capsys,
                        *options: str) -> dict:
    assert cli("ingest", *files, "--store", store, "--scheduler", address, *options) == 0
    assert f"{len(files)} runs added" in capsys.readouterr().out
    assert cli("validate", store, "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_thick_co2_free_and_methane_runs_ingest_and_validate(real_runs, tmp_path, dask_client,
                                                              catalog_url, capsys) -> None:
    store = str(tmp_path / "default.zarr")
    report = ingest_and_validate(real_runs, store, dask_client.scheduler.address, capsys,
                                 *SAME_GRID)
    assert report["schema_problems"] == [] and report["quarantined"] == [], [
        (r["run_id"], r["reasons"], {k: v for k, v in r["metrics"].items() if v})
        for r in report["runs"]]
    assert {r["run_id"] for r in report["runs"]} == set(ATMOSPHERES)
    for run in report["runs"]:
        assert run["score"] > 0.95, run
        assert run["metrics"]["supersaturation"] == 0.0  # hus remapped geometrically
        assert run["metrics"]["equilibrated"] == 1.0
    ds = open_store(store)
    np.testing.assert_allclose(ds["plev"].values, DEFAULT_GRID.plev)  # today's default levels
    p = ds.sel(run="thick")
    assert float(p["surface_pressure_bar"]) == 3.0 and float(p["pco2_bar"]) == 0.01
    assert float(ds.sel(run="dry")["pco2_bar"]) == 0.0
    assert float(ds.sel(run="methane")["pch4_bar"]) == 0.005
    assert float(p["pch4_bar"]) == 0.0 and ds["pch4_bar"].attrs["units"] == "bar"
    # the 3-bar run's lowest store level (2 bar) is above its ground: every column valid
    assert np.isfinite(p["ta"].isel(plev=0).values).all()
    assert float(p["ps"].min()) > 2.5e5


def test_store_levels_chosen_at_creation_mask_what_a_run_lacks(real_runs, tmp_path,
                                                               dask_client, catalog_url,
                                                               capsys) -> None:
    """Levels down to 5 bar: below each run's ground they are NaN (masked), not refused."""
    store = str(tmp_path / "deep.zarr")
    levels = "log:5e5:1e3:12"
    report = ingest_and_validate(real_runs, store, dask_client.scheduler.address, capsys,
                                 "--levels", levels, *SAME_GRID)
    assert report["quarantined"] == [] and report["schema_problems"] == []
    ds = open_store(store)
    assert tuple(ds["plev"].values) == parse_levels(levels)
    assert json.loads((Path(store) / "store.json").read_text())["layout"]["plev"] == list(
        parse_levels(levels))
    for run_id in ATMOSPHERES:
        run = ds.sel(run=run_id).load()
        below = ds["plev"].values[None, :, None, None] > run["ps"].values[:, None]
        assert below.any()  # every run has store levels under its ground ...
        assert np.isnan(run["ta"].values[below]).all()  # ... and they are NaN
        first_above = int(np.argmax(~below.any(axis=(0, 2, 3))))
        assert np.isfinite(run["ta"].values[:, first_above]).all()
    # a later ingest asking for other levels is told the store's
    assert cli("ingest", real_runs[0], "--store", store, "--levels", "1e5,1e4",
               "--scheduler", dask_client.scheduler.address) == 1
    assert "the store was created with plev=" in " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize(("attrs", "message"), [
    ({"surface_pressure_bar": 200.0},
     "surface_pressure_bar=200.0 is invalid: expected a finite number in [0.01, 100.0] bar"),
    ({"pco2_bar": 1.2}, "pco2_bar=1.2 is invalid: expected at most surface_pressure_bar = 1 bar"),
    ({"pch4_bar": -0.01}, "pch4_bar=-0.01 is invalid: expected a finite number in [0.0, 100.0]"),
])
def test_out_of_bounds_parameters_are_refused_at_ingest(real_runs, tmp_path, dask_client,
                                                        catalog_url, capsys, attrs,
                                                        message) -> None:
    path = real_runs[1]  # the 1-bar run; its attributes edited as a user might
    with netCDF4.Dataset(path, "a") as nc:
        for key, value in attrs.items():
            nc.setncattr(key, np.float64(value))
    store = str(tmp_path / "refused.zarr")
    assert cli("ingest", path, "--store", store, "--scheduler",
               dask_client.scheduler.address) == 1
    err = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert message in err and "run 'dry'" in err and "Traceback" not in err


@pytest.mark.parametrize(("text", "message"), [
    ("log:1e3:5e5:12", "P_BOTTOM=1000 Pa must exceed P_TOP=500000 Pa"),
    ("log:5e5:1e3", "expected log:P_BOTTOM:P_TOP:N"),
    ("1e5,-3,1e3", "'-3' is not a pressure > 0 in Pa"),
    ("1e5,1e4,1e5", "appear twice"),
    ("1e5", "1 level(s)"),
])
def test_bad_levels_text_is_refused(text: str, message: str) -> None:
    from exocube.errors import InputDataError

    with pytest.raises(InputDataError) as info:
        parse_levels(text)
    assert message in str(info.value)
    assert parse_levels("log:2e5:1e2:20") == DEFAULT_GRID.plev  # the default grid's syntax
    assert parse_levels("1e3, 3e5,1e5") == (3e5, 1e5, 1e3)


def test_a_store_made_before_pch4_bar_takes_new_runs_and_validates(make_runs, store_dir,
                                                                   dask_client, catalog_url,
                                                                   real_runs) -> None:
    """A store whose manifest runs lack pch4_bar (as every store made before it) takes a CH4
    run: its old runs read pch4_bar 0; a version without the variable has no schema
    problem."""
    from exocube.cubes import ingest, validate_store
    from exocube.cubes.store import StoreLocation
    from exocube.cubes.validate import schema_problems
    from exocube.cubes.versions import latest_id

    ingest(make_runs(2), store_dir, client=dask_client)
    loc = StoreLocation.parse(store_dir)
    path = f"versions/{latest_id(loc)}/manifest.json"
    manifest = loc.read_json(path)
    for run in manifest["runs"]:
        del run["params"]["pch4_bar"]
    loc.write_json(path, manifest)  # what the code before pch4_bar wrote
    old = open_store(store_dir)
    assert schema_problems(old.drop_vars("pch4_bar")) == []
    methane = real_runs[2]
    ingest([methane], store_dir, client=dask_client)  # regridded onto the store's grid
    ds = open_store(store_dir)
    assert list(ds["run"].values) == ["run000", "run001", "methane"]
    assert list(ds["pch4_bar"].values) == [0.0, 0.0, 0.005]
    report = validate_store(store_dir)
    assert report.schema_problems == [] and {r.run_id for r in report.runs} == {
        "methane", "run000", "run001"}


def test_levels_setting_is_the_default_of_new_stores(make_runs, tmp_path, dask_client,
                                                     catalog_url, monkeypatch) -> None:
    from exocube.config import get_settings
    from exocube.cubes import ingest
    from exocube.errors import ConfigError

    monkeypatch.setenv("EXOCUBE_INGEST__LEVELS", "1.2e5,8e4,5e4,2e4,1e4")
    get_settings.cache_clear()
    files = make_runs(1)
    ingest(files, str(tmp_path / "a.zarr"), client=dask_client)
    assert tuple(open_store(str(tmp_path / "a.zarr"))["plev"].values) == (
        1.2e5, 8e4, 5e4, 2e4, 1e4)
    ingest(files, str(tmp_path / "b.zarr"), client=dask_client, levels=[3e5, 1e5, 1e4])
    assert tuple(open_store(str(tmp_path / "b.zarr"))["plev"].values) == (3e5, 1e5, 1e4)
    monkeypatch.setenv("EXOCUBE_INGEST__LEVELS", "log:1e3:1e5:3")
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match=r"ingest: .*log:1e3:1e5:3.*P_BOTTOM=1000 Pa"):
        get_settings()
