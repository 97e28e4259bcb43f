"""Realistic small NetCDF files in three shapes: the exocube file contract,
ExoPlaSim output and ROCKE-3D output, built from one analytic atmosphere.

The analytic atmosphere has temperature linear in ln p in every column,
``T(p) = ts - a ln(ps / p)``, so log-pressure interpolation of ``ta`` is exact
and tests can compare against the closed form; specific humidity is the
surface value capped at 70 % of saturation; heights come from a fine
numerical hydrostatic integral (400 sub-steps per level), independent of the
code under test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from exocube.grid import CF_META, Grid
from exocube.physics import R_DRY_AIR, q_sat, surface_gravity, virtual_temperature

PARAMS = {
    "radius_earth": 1.0, "mass_earth": 1.0, "orbital_period_days": 365.25,
    "insolation_earth": 1.0, "stellar_teff_k": 5772.0, "stellar_logg_cgs": 4.44,
    "stellar_metallicity_dex": 0.0, "host_mass_msun": 1.0, "surface_pressure_bar": 1.0,
    "pco2_bar": 4e-4, "rotation_period_days": 1.0,
}
SMALL_GRID = Grid.with_levels(nlat=8, nlon=16, nlev=8, p_bottom=1.05e5, p_top=5.0e3)
LAPSE = 30.0  # K per e-folding of pressure


def surface(lat: np.ndarray, lon: np.ndarray, ntime: int, seed: int) -> tuple[np.ndarray, ...]:
    """ps [Pa], ts [K], hus [1] per (time, lat, lon)."""
    rng = np.random.default_rng(seed)
    la, lo = np.meshgrid(np.deg2rad(lat), np.deg2rad(lon), indexing="ij")
    t = np.arange(ntime)[:, None, None]
    ps = 1.0e5 - 4.0e3 * np.sin(la) ** 2 + 1.0e3 * np.cos(lo + t) + rng.uniform(-300, 300)
    ts = 300.0 - 45.0 * np.sin(la) ** 2 + 3.0 * np.cos(lo - 0.5 * t) + rng.uniform(-5, 5)
    q = 0.012 * np.cos(la) ** 2 + 1e-4
    return ps, ts, np.broadcast_to(q, ps.shape).copy()


def temperature(p: np.ndarray, ps: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """The analytic profile at pressures ``p`` (broadcast with ps[:, None])."""
    return ts[:, None] - LAPSE * np.log(ps[:, None] / p)


def humidity(p: np.ndarray, ps: np.ndarray, ts: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Surface specific humidity, capped at 70 % of saturation."""
    return np.minimum(q[:, None], 0.7 * q_sat(temperature(p, ps, ts), p))


def height(p: np.ndarray, ps: np.ndarray, ts: np.ndarray, q: np.ndarray, g: float) -> np.ndarray:
    """Hydrostatic height above the surface, integral of (R/g) Tv dlnp, 400 sub-steps."""
    p = np.broadcast_to(p, np.broadcast_shapes(p.shape, ps[:, None].shape))
    s = np.linspace(0.0, 1.0, 401)
    lnp = np.log(p)[..., None] + s * (np.log(ps)[:, None, ..., None] - np.log(p)[..., None])
    sub = np.exp(lnp)
    t = ts[:, None, ..., None] - LAPSE * np.log(ps[:, None, ..., None] / sub)
    qq = np.minimum(q[:, None, ..., None], 0.7 * q_sat(t, sub))
    tv = virtual_temperature(t, qq)
    integral = np.trapezoid(tv, lnp, axis=-1)
    return R_DRY_AIR / g * integral


def winds(p: np.ndarray, lat: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    la = np.deg2rad(lat)[None, None, :, None]
    ua = 25.0 * np.cos(la) * np.log(1.2e5 / p) / 7.0 + 0 * p
    va = 2.0 * np.sin(2 * la) + 0 * p
    return np.broadcast_to(ua, shape), np.broadcast_to(va, shape)


def contract_file(path: Path, run_id: str, grid: Grid = SMALL_GRID, ntime: int = 2,
                  seed: int = 0, params: dict | None = None) -> Path:
    """A file following the exocube generator's contract (pressure levels, NaN below ground)."""
    params = {**PARAMS, **(params or {})}
    g = float(surface_gravity(params["mass_earth"], params["radius_earth"]))
    ps, ts, q = surface(grid.lat, grid.lon, ntime, seed)
    p = grid.plev_array[None, :, None, None]
    shape = (ntime, *grid.shape)
    ta = np.broadcast_to(temperature(p, ps, ts), shape)
    hus = np.broadcast_to(humidity(p, ps, ts, q), shape)
    zg = np.broadcast_to(height(p, ps, ts, q, g), shape)
    ua, va = winds(p, grid.lat, shape)
    below = p > ps[:, None]
    data = {"ta": ta, "ua": ua, "va": va, "hus": hus, "zg": zg}
    dims4 = ("time", "plev", "lat", "lon")
    ds = xr.Dataset(
        {k: (dims4, np.where(below, np.nan, v).astype(np.float32), _cf(k))
         for k, v in data.items()}
        | {"ps": (dims4[:1] + dims4[2:], ps.astype(np.float32), _cf("ps")),
           "ts": (dims4[:1] + dims4[2:], ts.astype(np.float32), _cf("ts"))},
        coords={
            "time": ("time", np.arange(ntime) * 10.0, {"units": "days since 2000-01-01",
                                                      "standard_name": "time"}),
            "plev": ("plev", grid.plev_array, {"units": "Pa", "standard_name": "air_pressure",
                                               "positive": "down"}),
            "lat": ("lat", grid.lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", grid.lon, {"units": "degrees_east", "standard_name": "longitude"}),
        },
        attrs={"Conventions": "CF-1.8", "source": "tests/cubes/builders.py", "run_id": run_id,
               **params, "gravity_m_s2": g, "semi_major_axis_au": 1.0,
               "equilibrium_temperature_k": 255.0, "tidally_locked": 0,
               "r_gas_j_kg_k": R_DRY_AIR},
    )
    ds.to_netcdf(path, engine="netcdf4")
    return path


def _cf(name: str) -> dict[str, str]:
    return {"standard_name": CF_META[name][0], "units": CF_META[name][1]}


SIGMA_FULL = np.array([0.0383, 0.1245, 0.2396, 0.3810, 0.5370, 0.6912, 0.8225, 0.9151,
                       0.9649, 0.9915])
SIGMA_HALF = np.array([0.0, 0.0766, 0.1724, 0.3068, 0.4552, 0.6188, 0.7636, 0.8814,
                       0.9488, 0.9810, 1.0])


def exoplasim_file(path: Path, grid: Grid = SMALL_GRID, ntime: int = 2, seed: int = 1,
                   surface_pressure_bar: float = 1.0, attrs: dict | None = None) -> Path:
    """ExoPlaSim-shaped output: sigma levels top first, ps in hPa, lat north to south,
    time in timesteps, zg on half levels; no standard_name attributes. ``ps`` is about
    ``surface_pressure_bar``; ``attrs`` are extra global attributes (the driver's)."""
    lat = grid.lat[::-1]
    ps, ts, q = surface(lat, grid.lon, ntime, seed)
    ps = ps * surface_pressure_bar
    g = float(surface_gravity(PARAMS["mass_earth"], PARAMS["radius_earth"]))
    p_full = SIGMA_FULL[None, :, None, None] * ps[:, None]
    p_half = SIGMA_HALF[None, :, None, None] * ps[:, None]
    shape = p_full.shape
    ta = temperature(p_full, ps, ts)
    with np.errstate(divide="ignore", invalid="ignore"):
        zg = np.where(p_half > 0, height(np.maximum(p_half, 1e3), ps, ts, q, g), np.nan)
    ua, va = winds(p_full, lat, shape)
    dims = ("time", "lev", "lat", "lon")
    ds = xr.Dataset(
        {"ta": (dims, ta.astype(np.float32), {"units": "K"}),
         "ua": (dims, ua.astype(np.float32), {"units": "m/s"}),
         "va": (dims, va.astype(np.float32), {"units": "m/s"}),
         "hus": (dims, humidity(p_full, ps, ts, q).astype(np.float32), {"units": "kg/kg"}),
         "zg": (("time", "levp", "lat", "lon"), zg.astype(np.float32), {"units": "m"}),
         "ps": (("time", "lat", "lon"), (ps / 100.0).astype(np.float32), {"units": "hPa"}),
         "ts": (("time", "lat", "lon"), ts.astype(np.float32), {"units": "K"})},
        coords={"time": ("time", np.arange(ntime) * 720.0 + 720.0, {"units": "timesteps"}),
                "lev": ("lev", SIGMA_FULL, {"long_name": "sigma"}),
                "levp": ("levp", SIGMA_HALF, {"long_name": "sigma at half levels"}),
                "lat": ("lat", lat, {"units": "degrees_north"}),
                "lon": ("lon", grid.lon, {"units": "degrees_east"})},
        attrs={"source": "ExoPlaSim-shaped test fixture", **(attrs or {})},
    )
    ds.to_netcdf(path, engine="netcdf4")
    return path


def rocke3d_file(path: Path, grid: Grid = SMALL_GRID, ntime: int = 2, seed: int = 2) -> Path:
    """ROCKE-3D-shaped output: t, q, u, v, z on model layers with p_3d [hPa], tsurf and t
    in degC, prsurf in hPa, lon -180..180; no standard_name attributes."""
    lon = np.where(grid.lon >= 180, grid.lon - 360, grid.lon)
    order = np.argsort(lon)
    lon = lon[order]
    ps, ts, q = surface(grid.lat, lon % 360, ntime, seed)
    ptop = 1.0e3
    sig = np.linspace(0.99, 0.02, 12)
    p3 = ptop + sig[None, :, None, None] * (ps[:, None] - ptop)
    g = float(surface_gravity(PARAMS["mass_earth"], PARAMS["radius_earth"]))
    shape = p3.shape
    ua, va = winds(p3, grid.lat, shape)
    dims = ("time", "level", "lat", "lon")
    ds = xr.Dataset(
        {"t": (dims, (temperature(p3, ps, ts) - 273.15).astype(np.float32), {"units": "C"}),
         "q": (dims, humidity(p3, ps, ts, q).astype(np.float32), {"units": "kg/kg"}),
         "u": (dims, ua.astype(np.float32), {"units": "m/s"}),
         "v": (dims, va.astype(np.float32), {"units": "m/s"}),
         "z": (dims, height(p3, ps, ts, q, g).astype(np.float32), {"units": "m"}),
         "p_3d": (dims, (p3 / 100.0).astype(np.float32), {"units": "mb"}),
         "prsurf": (("time", "lat", "lon"), (ps / 100).astype(np.float32), {"units": "mb"}),
         "tsurf": (("time", "lat", "lon"), (ts - 273.15).astype(np.float32), {"units": "C"})},
        coords={"time": ("time", np.arange(ntime) + 0.5, {"units": "days since 2000-01-01"}),
                "level": ("level", np.arange(1, 13)),
                "lat": ("lat", grid.lat, {"units": "degrees_north"}),
                "lon": ("lon", lon, {"units": "degrees_east"})},
        attrs={"source": "ROCKE-3D-shaped test fixture"},
    )
    ds.to_netcdf(path, engine="netcdf4")
    return path
