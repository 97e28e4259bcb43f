"""The generated fields obey the physics they claim: hydrostatics, saturation,
energy balance, thermal wind, and respond to parameters in the expected direction."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import xarray as xr

from exocube import physics
from exocube.gcm.generator import absorbed_flux, generate, guillot_t4
from exocube.gcm.sampling import sample_runs
from exocube.grid import DEFAULT_GRID, Grid
from exocube.planet import BOND_ALBEDO, derive

from .conftest import EARTH, LOCKED, planet

RunFile = Callable[..., xr.Dataset]
SAMPLE = sample_runs(12, seed=21)


def area_mean(field: np.ndarray, lat: np.ndarray) -> float:
    weights = np.broadcast_to(np.cos(np.deg2rad(lat))[:, None], field.shape[-2:])
    return float(np.average(field, weights=np.broadcast_to(weights, field.shape)))


def check_hydrostatic(ds: xr.Dataset) -> float:
    """Largest |zg residual| / layer thickness, from the hypsometric equation."""
    r, g = ds.attrs["r_gas_j_kg_k"], ds.attrs["gravity_m_s2"]
    p = ds.plev.values
    tv = ds.ta.values.astype(np.float64) * (
        1.0 + (461.5 / 287.05 - 1.0) * ds.hus.values.astype(np.float64))
    zg = ds.zg.values.astype(np.float64)
    thickness = r / g * 0.5 * (tv[:, :-1] + tv[:, 1:]) * np.log(p[:-1] / p[1:])[None, :, None,
                                                                                  None]
    residual = (zg[:, 1:] - zg[:, :-1]) - thickness
    valid = ~np.isnan(residual)
    assert valid.sum() > 0
    return float(np.max(np.abs(residual[valid]) / thickness[valid]))


@pytest.mark.parametrize("index", range(len(SAMPLE)))
def test_zg_is_hydrostatic_with_ta_and_hus(run_file: RunFile, index: int) -> None:
    ds = run_file(derive(SAMPLE[index].params))
    assert check_hydrostatic(ds) < 0.01


def test_zg_of_locked_planet_with_phase_bins_is_hydrostatic(run_file: RunFile) -> None:
    ds = run_file(planet(**LOCKED), phase_bins=3)
    assert check_hydrostatic(ds) < 0.01
    first = ds.zg.isel(plev=np.flatnonzero(ds.plev.values <= ds.ps.values.max())[0])
    assert float(first.min()) >= 0.0


@pytest.mark.parametrize("index", range(len(SAMPLE)))
def test_humidity_is_between_zero_and_saturation(run_file: RunFile, index: int) -> None:
    ds = run_file(derive(SAMPLE[index].params))
    valid = ~np.isnan(ds.ta.values)
    qs = physics.q_sat(ds.ta.values, ds.plev.values[None, :, None, None])
    hus = ds.hus.values
    assert np.all(hus[valid] >= 0.0)
    assert np.all(hus[valid] <= qs[valid])
    assert hus[valid].max() > 0.0


def test_levels_below_the_ground_are_nan_and_the_rest_finite(run_file: RunFile) -> None:
    ds = run_file(planet(surface_pressure_bar=0.5))
    below = ds.plev.values > 0.5e5
    assert below.any() and (~below).any()
    for name in ("ta", "ua", "va", "hus", "zg"):
        values = ds[name].values
        assert np.isnan(values[:, below]).all(), name
        assert np.isfinite(values[:, ~below]).all(), name
    assert np.all(ds.ps.values == np.float32(0.5e5))
    assert np.isfinite(ds.ts.values).all()


def test_earth_parameters_give_an_earth_like_climate(run_file: RunFile) -> None:
    ds = run_file(planet())
    ts = ds.ts.values[0]
    assert 280.0 < area_mean(ts, ds.lat.values) < 295.0
    equator, pole = ts[16].mean(), ts[0].mean()  # lat 2.8 N and 87.2 S
    assert 25.0 < equator - pole < 80.0


def test_more_insolation_is_warmer() -> None:
    means = []
    for s in (0.3, 0.6, 1.0, 1.5, 2.5):
        climate = generate(planet(insolation_earth=s))
        means.append(area_mean(climate.fields["ts"][0], DEFAULT_GRID.lat))
    assert np.all(np.diff(means) > 1.0), means


def test_more_co2_is_warmer() -> None:
    cold, warm = (generate(planet(pco2_bar=p)).fields["ts"][0] for p in (1e-5, 0.1))
    assert area_mean(warm, DEFAULT_GRID.lat) > area_mean(cold, DEFAULT_GRID.lat) + 1.0


def day_night(ts: np.ndarray, lon: np.ndarray) -> float:
    day = np.abs(lon - 180.0) < 90.0
    return float(ts[..., day].mean() - ts[..., ~day].mean())


def test_locked_planet_has_a_day_night_contrast_and_a_fast_rotator_does_not() -> None:
    locked = planet(**LOCKED)
    assert locked.tidally_locked
    fast = planet(insolation_earth=LOCKED["insolation_earth"], rotation_period_days=1.0)
    assert not fast.tidally_locked
    lon = DEFAULT_GRID.lon
    locked_contrast = day_night(generate(locked).fields["ts"], lon)
    fast_contrast = day_night(generate(fast).fields["ts"], lon)
    assert locked_contrast > 30.0
    assert abs(fast_contrast) < 1e-3
    assert locked_contrast > fast_contrast + 30.0


def test_thicker_atmosphere_redistributes_more_heat_on_a_locked_planet() -> None:
    thin = generate(planet(**{**LOCKED, "surface_pressure_bar": 0.2}))
    thick = generate(planet(**{**LOCKED, "surface_pressure_bar": 2.0}))
    lon = DEFAULT_GRID.lon
    assert day_night(thick.fields["ts"], lon) < day_night(thin.fields["ts"], lon)


@pytest.mark.parametrize("overrides", [EARTH, LOCKED, {**LOCKED, "surface_pressure_bar": 0.2}])
@pytest.mark.parametrize("phase_bins", [1, 4])
def test_absorbed_flux_conserves_the_stellar_input(overrides: dict, phase_bins: int) -> None:
    p = planet(**overrides)
    grid = Grid.with_levels(nlat=90, nlon=180)
    flux, _, _ = absorbed_flux(p, grid, tau_s=1.0, phase_bins=phase_bins)
    expected = (1 - BOND_ALBEDO) * p.params["insolation_earth"] * physics.S_EARTH / 4
    for step in flux:
        assert area_mean(step, grid.lat) == pytest.approx(expected, rel=2e-3)
        assert step.min() >= 0.0


def test_guillot_profile_is_isothermal_for_gamma_one_and_warms_with_depth_below() -> None:
    tau = np.linspace(0.0, 5.0, 11)
    t_loc4 = np.asarray(300.0**4)
    iso = guillot_t4(t_loc4, tau, 1.0) ** 0.25
    assert np.ptp(iso) / iso.mean() < 2e-3
    assert np.all(np.diff(guillot_t4(t_loc4, tau, 0.3)) > 0)
    upper = tau[tau <= 1.5]  # above the depth where the internal heat flux takes over
    assert np.all(np.diff(guillot_t4(t_loc4, upper, 3.0)) < 0)


def test_zonal_wind_is_in_thermal_wind_balance_at_midlatitudes(run_file: RunFile) -> None:
    ds = run_file(planet())
    p = planet()
    lat = np.deg2rad(ds.lat.values)
    ta, ua = ds.ta.values[0].mean(-1), ds.ua.values[0].mean(-1)
    k1, k2 = np.searchsorted(-ds.plev.values, [-6.5e4, -3.0e4])
    dlnp = np.log(ds.plev.values[k2] / ds.plev.values[k1])
    for j in (8, 23):  # about 42 S and 42 N
        f = 2.0 * p.rotation_rate * np.sin(lat[j])
        shear = (ua[k2, j] - ua[k1, j]) / dlnp
        dtdphi = 0.5 * sum((ta[k, j + 1] - ta[k, j - 1]) / (lat[j + 1] - lat[j - 1])
                           for k in (k1, k2))
        balanced = p.r_gas / (f * p.radius_m) * dtdphi
        assert np.sign(shear) == np.sign(balanced)
        assert 0.6 < shear / balanced < 1.4
    for j in (8, 23):  # westerly shear: jets aloft in both hemispheres
        assert ua[k2 + 2, j] - ua[k1 - 1, j] > 10.0


def horizontal_divergence(u: np.ndarray, v: np.ndarray, lat_deg: np.ndarray,
                          a: float) -> np.ndarray:
    lat = np.deg2rad(lat_deg)[:, None]
    dlon = 2.0 * np.pi / u.shape[-1]
    dudl = (np.roll(u, -1, -1) - np.roll(u, 1, -1)) / (2 * dlon)
    dvcos = np.gradient(v * np.cos(lat), lat[:, 0], axis=-2)
    return (dudl + dvcos) / (a * np.cos(lat))


def test_locked_planet_overturns_from_day_to_night(run_file: RunFile) -> None:
    p = planet(**LOCKED)
    ds = run_file(p)
    valid = np.flatnonzero(ds.plev.values <= p.surface_pressure_pa)
    bottom, top = valid[0], int(np.searchsorted(-ds.plev.values, -0.2 * p.surface_pressure_pa))
    sub = (slice(14, 18), slice(30, 34))  # around lat 0, lon 180
    div = {k: horizontal_divergence(ds.ua.values[0, k], ds.va.values[0, k], ds.lat.values,
                                    p.radius_m)[sub].mean() for k in (bottom, top)}
    assert div[bottom] < 0.0 < div[top]
    equator_jet = ds.ua.values[0, top, 15:17].mean()
    assert equator_jet > 0.0


def test_phase_bins_move_the_hot_spot_westward_for_a_rotating_planet() -> None:
    climate = generate(planet(), phase_bins=4)
    ts = climate.fields["ts"][:, 16]
    hottest = np.argmax(ts, axis=-1)
    steps = (hottest[1:] - hottest[:-1]) % 64
    assert np.all(steps == 64 - 16)
    mean_of_bins = climate.fields["ts"].mean(axis=0)
    time_mean = generate(planet()).fields["ts"][0]
    assert np.abs(mean_of_bins - time_mean).max() < 5.0


def test_phase_bins_of_a_locked_planet_are_identical() -> None:
    climate = generate(planet(**LOCKED), phase_bins=3)
    for name, field in climate.fields.items():
        assert np.array_equal(field[0], field[2], equal_nan=True), name
    assert climate.phase_period_days == LOCKED["orbital_period_days"]
