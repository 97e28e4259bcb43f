"""A planet's quantities derived from its parameter vector, never sampled on their own.

The one home of this physics for every stage: the generator writes these values
into its files, ingest fills in the ones a source leaves out, and a prediction
request derives them the same way, so a store and a request agree on a planet.

Surface gravity from mass and radius::

    g = G M_p / R_p^2

Semi-major axis from Kepler's third law (planet mass neglected)::

    a = (G M_* P^2 / (4 pi^2))^(1/3)

Equilibrium temperature from the insolation ``S`` and a Bond albedo ``A``
(full redistribution)::

    T_eq = ((1 - A) S / (4 sigma))^(1/4),  A = 0.3

Tidal locking (Gladman et al. 1996, Icarus 122, 166, eq. 9; Peale 1977)::

    t_lock = omega_0 a^6 I Q / (3 G M_*^2 k_2 R_p^5),  I = 0.4 M_p R_p^2

with an initial spin period of 12 h, Q = 100 and k_2 = 0.3. A planet is
tidally locked when ``t_lock`` < 1 Gyr, or when its given rotation period
equals its orbital period to a relative 1e-6 (float32 precision, so a period
read back from a file attribute still counts); a locked planet rotates once
per orbit, with its substellar point at longitude 180 deg east, latitude 0. With
these numbers Earth gives about 2e11 yr (not locked) and a planet on a
10-day orbit around a 0.1 M_sun star about 1e5 yr (locked). At a fixed period
``a^6`` scales as ``M_*^2 P^4``, so the host mass cancels: the rule is a period
threshold (about 100 days at Earth's density, ``t_lock ~ P^4 M_p / R_p^3``);
:func:`locking_time_yr` evaluates it at 1 M_sun, so the locking rule does not
read the host mass at all.

The climate drivers (:func:`climate_drivers`) are what the climate depends on,
in the names of the v2 model input (:data:`exocube.params.MODEL_INPUT_V2`):
radius, gravity, the effective rotation period (the orbital period when
locked), insolation, stellar effective temperature, surface pressure and the
CO2 and CH4 partial pressures, with the locking flag. They need only
:data:`DRIVER_FIELDS` of a request (and the optional atmosphere fields).

The atmosphere is Earth air (N2/O2/Ar, 28.96 g/mol) with ``pco2_bar`` of
CO2 mixed in; its specific gas constant and heat capacity follow from the
CO2 mole fraction ``pco2 / ps``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from exocube import physics
from exocube.errors import ParameterError
from exocube.params import MODEL_INPUT_NAMES_V2, OPTIONAL_DEFAULTS, REQUIRED_NAMES

BOND_ALBEDO = 0.3
LOCKING_TIME_LIMIT_YR = 1.0e9
INITIAL_SPIN_PERIOD_S = 12.0 * 3600.0
TIDAL_Q = 100.0
LOVE_K2 = 0.3
MOMENT_OF_INERTIA_FACTOR = 0.4
YEAR = 365.25 * physics.DAY
MOLAR_MASS_AIR = 28.9647e-3  # kg mol-1 (Earth dry air)
MOLAR_MASS_CO2 = 44.0095e-3  # kg mol-1
CP_CO2 = 844.0  # J kg-1 K-1 near 300 K
SYNCHRONOUS_REL_TOL = 1.0e-6  # rotation period == orbital period, relative
SUBSTELLAR_LON_DEG = 180.0  # degrees_east of the substellar point of a locked planet


def semi_major_axis_m(orbital_period_days: float, host_mass_msun: float) -> float:
    """Semi-major axis [m] from Kepler's third law."""
    gm = physics.G_NEWTON * host_mass_msun * physics.M_SUN
    period = orbital_period_days * physics.DAY
    return (gm * period**2 / (4.0 * math.pi**2)) ** (1.0 / 3.0)


def equilibrium_temperature(insolation_earth: float, albedo: float = BOND_ALBEDO) -> float:
    """Equilibrium temperature [K] with full heat redistribution."""
    flux = insolation_earth * physics.S_EARTH
    return ((1.0 - albedo) * flux / (4.0 * physics.SIGMA_SB)) ** 0.25


def tidal_locking_time_yr(
    semi_major_axis: float, mass_earth: float, radius_earth: float, host_mass_msun: float
) -> float:
    """Spin-down time [yr] to synchronous rotation (Gladman et al. 1996)."""
    omega0 = 2.0 * math.pi / INITIAL_SPIN_PERIOD_S
    m_p = mass_earth * physics.M_EARTH
    r_p = radius_earth * physics.R_EARTH
    m_s = host_mass_msun * physics.M_SUN
    inertia = MOMENT_OF_INERTIA_FACTOR * m_p * r_p**2
    t = omega0 * semi_major_axis**6 * inertia * TIDAL_Q / (
        3.0 * physics.G_NEWTON * m_s**2 * LOVE_K2 * r_p**5
    )
    return t / YEAR


def locking_time_yr(orbital_period_days: float, mass_earth: float, radius_earth: float
                    ) -> float:
    """Spin-down time [yr] at an orbital period: the Gladman time at 1 M_sun (the host mass
    cancels, ``a^6 / M_*^2`` depends on the period only)."""
    a = semi_major_axis_m(orbital_period_days, 1.0)
    return tidal_locking_time_yr(a, mass_earth, radius_earth, 1.0)


def is_synchronous(rotation_period_days: float, orbital_period_days: float) -> bool:
    """Whether a rotation period equals the orbital period (relative 1e-6)."""
    return math.isclose(rotation_period_days, orbital_period_days, rel_tol=SYNCHRONOUS_REL_TOL)


def is_tidally_locked(locking_time_yr: float, rotation_period_days: float,
                      orbital_period_days: float) -> bool:
    """The locking rule: spin-down within 1 Gyr, or rotation already synchronous."""
    return locking_time_yr < LOCKING_TIME_LIMIT_YR or is_synchronous(
        rotation_period_days, orbital_period_days)


def co2_mole_fraction(pco2_bar: float, surface_pressure_bar: float) -> float:
    """CO2 mole fraction; refuses a CO2 partial pressure above the surface pressure."""
    if pco2_bar > surface_pressure_bar:
        raise ParameterError(
            "pco2_bar", pco2_bar, f"at most surface_pressure_bar={surface_pressure_bar} bar",
            hint="the CO2 partial pressure cannot exceed the total surface pressure",
        )
    return pco2_bar / surface_pressure_bar


def gas_constants(x_co2: float) -> tuple[float, float]:
    """Specific gas constant and heat capacity [J kg-1 K-1] of air with CO2 fraction ``x_co2``."""
    molar_mass = x_co2 * MOLAR_MASS_CO2 + (1.0 - x_co2) * MOLAR_MASS_AIR
    r_gas = physics.R_GAS / molar_mass
    w_co2 = x_co2 * MOLAR_MASS_CO2 / molar_mass
    cp = w_co2 * CP_CO2 + (1.0 - w_co2) * physics.CP_DRY_AIR
    return r_gas, cp


#: The request fields the climate drivers come from, besides the optional atmosphere fields.
DRIVER_FIELDS: tuple[str, ...] = ("radius_earth", "mass_earth", "orbital_period_days",
                                  "insolation_earth", "stellar_teff_k")


def required_fields(input_names: Sequence[str]) -> tuple[str, ...]:
    """The request fields a model with these inputs needs: each input that is a request
    field, and the fields the climate drivers and the locking rule come from."""
    return tuple(n for n in REQUIRED_NAMES if n in input_names or n in DRIVER_FIELDS)


@dataclass(frozen=True)
class ClimateDrivers:
    """A planet's climate drivers: ``values`` by the v2 input names, and its locking."""

    values: dict[str, float]
    locking_time_yr: float
    tidally_locked: bool


def climate_drivers(params: Mapping[str, float]) -> ClimateDrivers:
    """The climate drivers of a validated vector holding :data:`DRIVER_FIELDS` and the
    optional fields, absent ones taking their defaults (host mass, stellar log g and
    metallicity are not read)."""
    p = {**OPTIONAL_DEFAULTS, **params}
    t_lock = locking_time_yr(p["orbital_period_days"], p["mass_earth"], p["radius_earth"])
    locked = is_tidally_locked(t_lock, p["rotation_period_days"], p["orbital_period_days"])
    values = {
        "radius_earth": p["radius_earth"],
        "gravity_m_s2": float(physics.surface_gravity(p["mass_earth"], p["radius_earth"])),
        "rotation_period_days": p["orbital_period_days"] if locked else p["rotation_period_days"],
        "insolation_earth": p["insolation_earth"], "stellar_teff_k": p["stellar_teff_k"],
        "surface_pressure_bar": p["surface_pressure_bar"], "pco2_bar": p["pco2_bar"],
        "pch4_bar": p["pch4_bar"]}
    return ClimateDrivers({n: float(values[n]) for n in MODEL_INPUT_NAMES_V2}, t_lock, locked)


def request_with_drivers(values: Mapping[str, float], tidally_locked: bool,
                         year_days: float = 365.25) -> dict[str, float]:
    """A request whose :func:`climate_drivers` are ``values`` (for examples of a v2 model):
    the mass from gravity and radius, and the orbital period the rotation period when
    locked, else ``year_days``, far too long an orbit for tidal locking."""
    radius = values["radius_earth"]
    mass = values["gravity_m_s2"] * (radius * physics.R_EARTH) ** 2 / (
        physics.G_NEWTON * physics.M_EARTH)
    period = values["rotation_period_days"] if tidally_locked else year_days
    keep = ("insolation_earth", "stellar_teff_k", "surface_pressure_bar", "pco2_bar",
            "pch4_bar", "rotation_period_days")
    return {"radius_earth": radius, "mass_earth": mass, "orbital_period_days": period,
            **{n: values[n] for n in keep}}


@dataclass(frozen=True)
class Planet:
    """A validated parameter vector with its derived quantities (SI unless named)."""

    params: dict[str, float]
    gravity: float
    semi_major_axis_au: float
    equilibrium_temperature: float
    locking_time_yr: float
    tidally_locked: bool
    r_gas: float
    cp: float

    @property
    def radius_m(self) -> float:
        return self.params["radius_earth"] * physics.R_EARTH

    @property
    def surface_pressure_pa(self) -> float:
        return self.params["surface_pressure_bar"] * physics.BAR_TO_PA

    @property
    def rotation_rate(self) -> float:
        """Sidereal rotation rate Omega [rad s-1]."""
        return 2.0 * math.pi / (self.params["rotation_period_days"] * physics.DAY)

    def derived_attrs(self) -> dict[str, float | int]:
        """The derived quantities under their file-contract names."""
        return {
            "gravity_m_s2": self.gravity,
            "semi_major_axis_au": self.semi_major_axis_au,
            "equilibrium_temperature_k": self.equilibrium_temperature,
            "tidally_locked": int(self.tidally_locked),
            "r_gas_j_kg_k": self.r_gas,
            "cp_j_kg_k": self.cp,
            "bond_albedo": BOND_ALBEDO,
            "tidal_locking_time_yr": self.locking_time_yr,
        }


def derive(params: Mapping[str, float]) -> Planet:
    """Derive gravity, orbit, T_eq, locking and gas constants from a validated vector.

    ``params`` must hold every name of :data:`exocube.params.ALL_NAMES`. For a
    tidally locked planet the returned ``rotation_period_days`` is the orbital period.
    """
    p = dict(params)
    a = semi_major_axis_m(p["orbital_period_days"], p["host_mass_msun"])
    drivers = climate_drivers(p)
    p["rotation_period_days"] = drivers.values["rotation_period_days"]
    r_gas, cp = gas_constants(co2_mole_fraction(p["pco2_bar"], p["surface_pressure_bar"]))
    return Planet(
        params=p,
        gravity=drivers.values["gravity_m_s2"],
        semi_major_axis_au=a / physics.AU,
        equilibrium_temperature=equilibrium_temperature(p["insolation_earth"]),
        locking_time_yr=drivers.locking_time_yr,
        tidally_locked=drivers.tidally_locked,
        r_gas=r_gas,
        cp=cp,
    )
