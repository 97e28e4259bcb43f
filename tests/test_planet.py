"""Derived quantities: analytic values for Earth and the tidal-locking rule."""

from __future__ import annotations

import math

import pytest

from exocube import physics
from exocube.errors import ParameterError
from exocube.params import validate_params
from exocube.planet import (
    derive,
    equilibrium_temperature,
    gas_constants,
    semi_major_axis_m,
    tidal_locking_time_yr,
)

EARTH = {
    "radius_earth": 1.0, "mass_earth": 1.0, "orbital_period_days": 365.256,
    "insolation_earth": 1.0, "stellar_teff_k": 5772.0, "stellar_logg_cgs": 4.44,
    "stellar_metallicity_dex": 0.0, "host_mass_msun": 1.0,
}


def test_earth_gravity_orbit_and_equilibrium_temperature() -> None:
    earth = derive(validate_params(EARTH))
    assert earth.gravity == pytest.approx(9.82, abs=0.02)
    assert earth.semi_major_axis_au == pytest.approx(1.0, abs=2e-3)
    assert earth.equilibrium_temperature == pytest.approx(254.6, abs=0.5)
    assert not earth.tidally_locked
    assert earth.r_gas == pytest.approx(287.0, abs=0.2)


def test_kepler_third_law_scales_as_period_to_two_thirds() -> None:
    a1 = semi_major_axis_m(10.0, 0.5)
    assert semi_major_axis_m(80.0, 0.5) == pytest.approx(4.0 * a1, rel=1e-12)
    assert semi_major_axis_m(10.0, 4.0) == pytest.approx(a1 * 8 ** (1 / 3), rel=1e-12)


def test_equilibrium_temperature_is_stefan_boltzmann() -> None:
    t = equilibrium_temperature(2.0, albedo=0.0)
    assert physics.SIGMA_SB * t**4 == pytest.approx(2.0 * physics.S_EARTH / 4.0, rel=1e-12)


def test_locking_time_scales_with_a_to_the_sixth() -> None:
    t1 = tidal_locking_time_yr(1e10, 1.0, 1.0, 0.5)
    assert tidal_locking_time_yr(2e10, 1.0, 1.0, 0.5) == pytest.approx(64 * t1, rel=1e-12)


def test_close_in_m_dwarf_planet_is_locked_and_rotates_once_per_orbit() -> None:
    params = validate_params({**EARTH, "orbital_period_days": 10.0, "host_mass_msun": 0.15,
                              "rotation_period_days": 1.0})
    planet = derive(params)
    assert planet.tidally_locked
    assert planet.locking_time_yr < 1e9
    assert planet.params["rotation_period_days"] == 10.0
    assert planet.derived_attrs()["tidally_locked"] == 1


def test_given_synchronous_rotation_counts_as_locked() -> None:
    planet = derive(validate_params({**EARTH, "rotation_period_days": 365.256}))
    assert planet.tidally_locked


def test_co2_rich_air_is_heavier() -> None:
    r_earth, cp_earth = gas_constants(4e-4)
    r_co2, cp_co2 = gas_constants(0.9)
    assert r_co2 < r_earth and cp_co2 < cp_earth
    assert r_co2 == pytest.approx(physics.R_GAS / (0.9 * 44.0095e-3 + 0.1 * 28.9647e-3))


def test_co2_above_surface_pressure_is_refused() -> None:
    # validate_params refuses it too (tests/test_params.py); derive checks on its own
    params = {**validate_params(EARTH), "surface_pressure_bar": 0.2, "pco2_bar": 0.5}
    with pytest.raises(ParameterError, match=r"pco2_bar=0\.5.*surface_pressure_bar=0\.2"):
        derive(params)


def test_derived_values_are_finite_over_the_ranges() -> None:
    from exocube.params import SPECS

    for corner in ("low", "high"):
        values = {n: getattr(s, corner) for n, s in SPECS.items()}
        values["pco2_bar"] = min(values["pco2_bar"], values["surface_pressure_bar"])
        values["pch4_bar"] = values["surface_pressure_bar"] - values["pco2_bar"]
        planet = derive(validate_params(values))
        assert all(math.isfinite(float(v)) for v in planet.derived_attrs().values())


def test_locking_is_a_period_threshold_near_100_days_for_earth_density() -> None:
    times = {m: derive(validate_params({**EARTH, "orbital_period_days": 50.0,
                                        "host_mass_msun": m})).locking_time_yr
             for m in (0.1, 0.5, 1.4)}
    assert max(times.values()) == pytest.approx(min(times.values()), rel=1e-9)
    assert derive(validate_params({**EARTH, "orbital_period_days": 95.0})).tidally_locked
    assert not derive(validate_params({**EARTH, "orbital_period_days": 100.0})).tidally_locked
