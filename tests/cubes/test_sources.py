"""ExoPlaSim- and ROCKE-3D-shaped files onto pressure levels, checked against the
analytic atmosphere they were built from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from builders import PARAMS, SMALL_GRID, exoplasim_file, height, rocke3d_file, surface

from exocube.cubes import ingest, open_store
from exocube.cubes.sources import read_source
from exocube.physics import surface_gravity

G = float(surface_gravity(1.0, 1.0))


def analytic_ta(ps: np.ndarray, ts: np.ndarray, p: float) -> np.ndarray:
    """Independent calculation: T(p) = ts - 30 ln(ps / p), NaN below ground."""
    return np.where(p > ps, np.nan, ts - 30.0 * np.log(ps / p))


def write_sidecar(path: Path) -> None:
    path.with_suffix(".params.json").write_text(pd.Series(PARAMS).to_json())


def test_exoplasim_file_maps_by_aliases_and_converts_units(tmp_path: Path) -> None:
    path = exoplasim_file(tmp_path / "exo.nc")
    src = read_source(path, "exoplasim")
    assert src.format == "exoplasim"
    assert src.levels["ta"].kind == "sigma" and src.levels["zg"].kind == "sigma"
    raw = xr.open_dataset(path, decode_times=False)
    np.testing.assert_allclose(src.fields["ps"], raw["ps"].values * 100.0, rtol=1e-6)
    assert src.time_units == "timesteps"


def test_exoplasim_run_is_remapped_to_pressure_levels(tmp_path: Path, dask_client) -> None:
    path = exoplasim_file(tmp_path / "exo.nc")
    write_sidecar(path)
    store = str(tmp_path / "store")
    ingest([str(path)], store, grid=SMALL_GRID, client=dask_client)
    run = open_store(store).isel(run=0).load()
    assert str(run["run"].values) == "exo"
    # independent calculation on the store grid (lat ascending: the file ran north to south)
    ps, ts, q = surface(SMALL_GRID.lat[::-1], SMALL_GRID.lon, 2, seed=1)
    ps, ts, q = ps[:, ::-1], ts[:, ::-1], q[:, ::-1]
    np.testing.assert_allclose(run["ps"].values, ps, rtol=1e-6)
    for k, p in enumerate(SMALL_GRID.plev):
        np.testing.assert_allclose(run["ta"].values[:, k], analytic_ta(ps, ts, p), rtol=2e-6)
    level = 3
    p = SMALL_GRID.plev[level]
    z_true = height(np.full((1, 1, 1, 1), p), ps, ts, q, G)[:, 0]
    np.testing.assert_allclose(run["zg"].values[:, level], z_true, rtol=2e-3)
    below = SMALL_GRID.plev_array[None, :, None, None] > ps[:, None]
    assert below.any() and np.isnan(run["ta"].values[below]).all()
    assert np.isfinite(run["ta"].values[~below]).all()


def test_rocke3d_run_with_csv_parameters(tmp_path: Path, dask_client) -> None:
    path = rocke3d_file(tmp_path / "rocke.nc")
    csv = tmp_path / "params.csv"
    pd.DataFrame([{"run_id": "rocke", **PARAMS, "mass_earth": 2.0}]).to_csv(csv, index=False)
    store = str(tmp_path / "store")
    ingest([str(path)], store, grid=SMALL_GRID, params_csv=str(csv), client=dask_client)
    run = open_store(store).isel(run=0).load()
    assert float(run["mass_earth"]) == 2.0
    assert float(run["gravity_m_s2"]) == pytest.approx(float(surface_gravity(2.0, 1.0)))
    ps, ts, _ = surface(SMALL_GRID.lat, SMALL_GRID.lon, 2, seed=2)
    np.testing.assert_allclose(run["ts"].values, ts, atol=1e-4)  # degC -> K
    p = SMALL_GRID.plev[2]
    np.testing.assert_allclose(run["ta"].values[:, 2], analytic_ta(ps, ts, p), rtol=2e-6)
    # zg recomputed with the run's own gravity (g = 2 g_earth), not the file's
    assert np.nanmax(run["zg"].values[:, 2]) < 0.6 * np.nanmax(
        xr.open_dataset(path)["z"].values)


def test_auto_detection_prefers_standard_names(tmp_path: Path) -> None:
    path = exoplasim_file(tmp_path / "exo.nc")
    ds = xr.open_dataset(path, decode_times=False).load()
    ds = ds.rename({"ta": "air_temp"})
    ds["air_temp"].attrs["standard_name"] = "air_temperature"
    ds.to_netcdf(tmp_path / "renamed.nc")
    src = read_source(tmp_path / "renamed.nc")
    np.testing.assert_array_equal(src.fields["ta"], read_source(path).fields["ta"])


def test_cf_hybrid_levels_use_formula_terms(tmp_path: Path) -> None:
    from exocube.cubes.process import build_run
    from exocube.cubes.runparams import resolve
    from exocube.cubes.schema import Layout

    path = exoplasim_file(tmp_path / "exo.nc")
    ds = xr.open_dataset(path, decode_times=False).load()
    ps_pa = ds["ps"].values.astype(np.float64) * 100.0
    # the same pressures as p = ap + b ps with ap = 2000 Pa (1 - sigma) - an arbitrary split
    sigma = ds["lev"].values
    ap = 2000.0 * (1.0 - sigma) * sigma
    b = sigma - ap / 1.0e5
    p_full = ap[None, :, None, None] + b[None, :, None, None] * ps_pa[:, None]
    ps, ts = ps_pa, ds["ts"].values.astype(np.float64)
    ds["ta"] = (ds["ta"].dims, (ts[:, None] - 30.0 * np.log(ps[:, None] / p_full)).astype(
        np.float32), {"units": "K", "standard_name": "air_temperature"})
    ds["lev"].attrs = {"standard_name": "atmosphere_hybrid_sigma_pressure_coordinate",
                       "formula_terms": "ap: hyam b: hybm ps: ps"}
    ds["hyam"] = ("lev", ap, {"units": "Pa"})
    ds["hybm"] = ("lev", b)
    ds.to_netcdf(tmp_path / "hybrid.nc")
    src = read_source(tmp_path / "hybrid.nc")
    assert src.levels["ta"].kind == "hybrid"
    layout = Layout.from_grid(SMALL_GRID, 2, None)
    cube = build_run(src, layout, "h", resolve("h", str(path), {}, {"h": PARAMS}, None))
    ps_sorted = ps[:, ::-1]
    ts_sorted = ts[:, ::-1]
    k = 4
    expected = analytic_ta(ps_sorted, ts_sorted, SMALL_GRID.plev[k])
    np.testing.assert_allclose(cube.fields["ta"][:, k], expected, rtol=2e-6)
