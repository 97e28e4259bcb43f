"""A tiny cube store following the store contract, written with plain xarray.

The fields are analytic and physically consistent: hydrostatic ``zg`` from
``ta`` and ``hus``, ``hus`` at half of saturation, zonal winds, NaN below
ground. The parameters are drawn inside their valid ranges.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import xarray as xr

from exocube import physics
from exocube.grid import FIELDS_2D, FIELDS_3D, Grid
from exocube.params import ALL_NAMES, SPECS

TINY_GRID = Grid.with_levels(nlat=8, nlon=16, nlev=6, p_bottom=2.0e5, p_top=1.0e3)


def sample_params(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    out = {}
    for name in ALL_NAMES:
        s = SPECS[name]
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


def make_store(path: Path, n_runs: int = 12, grid: Grid = TINY_GRID, n_time: int = 2,
               seed: int = 0, drop: tuple[str, ...] = (),
               quarantined: tuple[str, ...] = ()) -> str:
    """Write a contract-conforming store at ``path``; return its URL."""
    rng = np.random.default_rng(seed)
    p = sample_params(n_runs, rng)
    locked = p["orbital_period_days"] < 20.0
    fields = consistent_fields(p, grid, locked, rng, n_time)
    runs = [f"run-{i:04d}" for i in range(n_runs)]
    dims3, dims2 = ("run", "time", "plev", "lat", "lon"), ("run", "time", "lat", "lon")
    ds = xr.Dataset(coords={"run": runs, "time": np.arange(n_time, dtype=float),
                            "plev": grid.plev_array, "lat": grid.lat, "lon": grid.lon})
    for v, a in fields.items():
        if v in drop:
            continue
        ds[v] = (dims3 if v in FIELDS_3D else dims2, a)
        axes = (0, 1, 3, 4) if v in FIELDS_3D else None
        with warnings.catch_warnings():  # all-NaN levels (always below ground) give NaN stats
            warnings.simplefilter("ignore", RuntimeWarning)
            ds[f"{v}_mean"] = np.nanmean(a, axis=axes)
            ds[f"{v}_std"] = np.nanstd(a, axis=axes)
            ds[f"{v}_min"] = np.nanmin(a, axis=axes)
            ds[f"{v}_max"] = np.nanmax(a, axis=axes)
        if v in FIELDS_3D:
            for k in ("mean", "std", "min", "max"):
                ds[f"{v}_{k}"] = ("plev", ds[f"{v}_{k}"].values)
    for name in ALL_NAMES:
        ds[name] = ("run", p[name].astype(np.float64))
    ds["gravity_m_s2"] = ("run", physics.surface_gravity(p["mass_earth"], p["radius_earth"]))
    ds["tidally_locked"] = ("run", locked)
    ds.attrs.update(schema_version="1", version_id=f"v-test-{seed}",
                    quarantined_runs=json.dumps(list(quarantined)))
    ds.to_zarr(path, mode="w", consolidated=True)
    return str(path)
