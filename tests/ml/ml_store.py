"""Tiny cube stores for the surrogate tests, made by the real ingest.

Run files follow the generator's NetCDF contract; their fields are analytic
and physically consistent: hydrostatic ``zg`` from ``ta`` and ``hus``, ``hus``
at half of saturation, zonal winds plus a meridional circulation, NaN below
ground. The parameters are drawn inside their valid ranges.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from exocube import physics
from exocube.cli import main as exocube_main
from exocube.cubes import ingest, validate_store
from exocube.grid import CF_META, FIELDS_2D, FIELDS_3D, Grid
from exocube.params import MODEL_INPUT_NAMES_V1, MODEL_INPUT_SPECS_V1

TINY_GRID = Grid.with_levels(nlat=8, nlon=16, nlev=6, p_bottom=2.0e5, p_top=1.0e3)


def sample_params(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for name in MODEL_INPUT_NAMES_V1:
        s = MODEL_INPUT_SPECS_V1[name]
        if s.log_scale:
            out[name] = np.exp(rng.uniform(np.log(s.low), np.log(s.high), n))
        else:
            out[name] = rng.uniform(s.low, s.high, n)
    out["surface_pressure_bar"] = rng.uniform(0.6, 2.0, n)
    return out


def consistent_fields(p: dict[str, np.ndarray], grid: Grid, locked: np.ndarray,
                      rng: np.random.Generator, n_time: int) -> dict[str, np.ndarray]:
    """Fields (run, time, [plev,] lat, lon) that satisfy the physics constraints."""
    lat = np.deg2rad(grid.lat)[None, None, :, None]
    lon = np.deg2rad(grid.lon)[None, None, None, :]
    plev = grid.plev_array[None, :, None, None]
    s = (p["insolation_earth"][:, None, None, None]) ** 0.25
    pattern = np.where(locked[:, None, None, None], np.clip(np.cos(lat) * np.cos(lon), 0, 1),
                       np.cos(lat) / np.pi)
    ts = 180.0 + 110.0 * s * (0.5 + pattern)  # (run, 1, lat, lon)
    ps = p["surface_pressure_bar"][:, None, None, None] * 1e5 * (1 - 0.1 * np.sin(lat) ** 2)
    ps = ps + np.zeros_like(lon)
    g = physics.surface_gravity(p["mass_earth"], p["radius_earth"])
    out: dict[str, list[np.ndarray]] = {v: [] for v in FIELDS_3D + FIELDS_2D}
    for _ in range(n_time):
        tst = ts + rng.normal(0, 1.0, ts.shape)
        ta = np.maximum(tst * (plev / ps) ** 0.19, 150.0)
        hus = 0.5 * physics.q_sat(ta, plev)
        tv = physics.virtual_temperature(ta, hus)
        thick = physics.layer_thickness(tv[:, :-1], tv[:, 1:], plev[:, :-1], plev[:, 1:],
                                        g[:, None, None, None])
        z0 = physics.R_DRY_AIR / g[:, None, None, None] * tv[:, :1] * np.log(ps / plev[:, :1])
        zg = np.concatenate([z0, z0 + np.cumsum(thick, axis=1)], axis=1)
        ua = 20.0 * np.cos(lat) * (1 - plev / 2e5) + np.zeros_like(ta)
        va = 2.0 * np.sin(2 * lat) * (plev / 2e5 - 0.3) + np.zeros_like(ta)
        below = plev > ps
        for v, a in zip(FIELDS_3D, (ta, ua, va, hus, zg), strict=True):
            out[v].append(np.where(below, np.nan, a))
        out["ps"].append(ps[:, 0])
        out["ts"].append(tst[:, 0])
    return {v: np.stack(a, axis=1).astype(np.float32) for v, a in out.items()}


def write_run_files(folder: Path, n_runs: int, grid: Grid = TINY_GRID, n_time: int = 2,
                    seed: int = 0, broken: tuple[int, ...] = ()) -> list[str]:
    """One NetCDF file per run in the generator's file contract (CF names, SI units,
    parameters as global attributes). Runs in ``broken`` get heights doubled, which
    breaks hydrostatic balance so that validation quarantines them."""
    rng = np.random.default_rng(seed)
    p = sample_params(n_runs, rng)
    locked = p["orbital_period_days"] < 20.0
    fields = consistent_fields(p, grid, locked, rng, n_time)
    g = physics.surface_gravity(p["mass_earth"], p["radius_earth"])
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_runs):
        data = {v: fields[v][i] * (2.0 if (v == "zg" and i in broken) else 1.0)
                for v in FIELDS_3D + FIELDS_2D}
        dims4 = ("time", "plev", "lat", "lon")
        ds = xr.Dataset(
            {v: (dims4 if v in FIELDS_3D else ("time", "lat", "lon"), a.astype(np.float32),
                 {"standard_name": CF_META[v][0], "units": CF_META[v][1]})
             for v, a in data.items()},
            coords={
                "time": ("time", np.arange(n_time) * 10.0,
                         {"units": "days since 2000-01-01", "standard_name": "time"}),
                "plev": ("plev", grid.plev_array, {"units": "Pa", "standard_name": "air_pressure",
                                                   "positive": "down"}),
                "lat": ("lat", grid.lat, {"units": "degrees_north", "standard_name": "latitude"}),
                "lon": ("lon", grid.lon, {"units": "degrees_east", "standard_name": "longitude"}),
            },
            attrs={"Conventions": "CF-1.8", "run_id": f"run-{i:04d}",
                   **{n: float(p[n][i]) for n in MODEL_INPUT_NAMES_V1}, "gravity_m_s2": float(g[i]),
                   "tidally_locked": int(locked[i]), "r_gas_j_kg_k": physics.R_DRY_AIR},
        )
        path = folder / f"run-{i:04d}.nc"
        ds.to_netcdf(path, engine="netcdf4")
        paths.append(str(path))
    return paths


def make_store(store: str, files: list[str], client: object, database_url: str) -> str:
    """Ingest ``files`` into ``store`` and validate it (quarantining broken runs)."""
    ingest(files, store, client=client, database_url=database_url)
    validate_store(store, database_url=database_url)
    return store


CONF = Path(__file__).parents[1] / "conf" / "surrogate_tiny.yaml"


def fit_cli(store: str, db: str, root: Path, *extra: str) -> None:
    """``exocube train fit ...`` through the Typer app, as a user would run it."""
    with pytest.raises(SystemExit) as exit_info:
        exocube_main(["train", "fit", "--config", str(CONF), "--data.zarr_root", store,
                      "--data.database_url", db, "--trainer.default_root_dir", str(root),
                      *extra])
    assert exit_info.value.code in (0, None)
