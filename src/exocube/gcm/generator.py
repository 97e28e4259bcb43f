"""The built-in climate generator: physically consistent 3-D fields from a parameter vector.

It is an analytic model, not a GCM: each step is a published closed-form
relation, evaluated on the canonical grid with numpy. Symbols: ``S``
insolation, ``A`` Bond albedo (0.3), ``sigma`` Stefan-Boltzmann, ``g``
gravity, ``p_s`` surface pressure, ``R``/``c_p`` gas constant and heat
capacity of the run's air, ``a`` planet radius, ``Omega`` rotation rate,
``phi``/``lambda`` latitude/longitude.

1. Grey opacities. Visible-to-thermal opacity ratio ``gamma = 0.25 (T_sun/T_*)``
   (redder M-dwarf light is absorbed higher, by H2O/CO2 near-IR bands).
   Thermal optical depth at the surface ``tau_s = tau_CO2 + tau_CIA + tau_H2O``
   with ``tau_CO2 = 0.25 (pCO2 / 4e-4 bar)^0.2 (p_s / 1 bar)^0.5`` (pressure
   broadened), ``tau_CIA = 0.05 (p_s / 1 bar)^2`` (collision-induced) and
   ``tau_H2O = 0.8 ln(1 + W / 5 kg m-2)``, W the water column
   ``0.2 RH_s q_sat(T_s, p_s) p_s / g`` (logarithmic, like band saturation). The
   water term and the global-mean ``T_s`` are solved together by fixed-point
   iteration; Earth's parameters give ``tau_s`` about 4.9 and a global-mean
   ``ts`` of 288 K. ``tau(p) = tau_s p / p_s``.
2. Absorbed stellar flux per column ``F`` (the horizontal heat redistribution).
   Tidally locked (substellar point fixed at lon 180, lat 0), after Koll &
   Abbot (2015, ApJ 802, 21; 2016, ApJ 825, 99) and the scaling of Koll (2022,
   ApJ 924, 134)::

       F = (1 - A) S [ (1 - eps) max(cos Z, 0) + eps / 4 ],   cos Z = cos phi cos(lambda - 180)
       eps = x / (2 + x),  x = tau_s^(1/3) (p_s / 1 bar)^(2/3) (T_eq / 600 K)^(-4/3)

   so the dayside mean is ``(1-A)S(1/2 - eps/4)`` and the nightside ``(1-A)S eps/4``
   (energy is conserved). Not locked: diurnal-mean insolation at zero
   obliquity ``(1-A) S cos(phi) / pi`` relaxed towards the global mean by a
   meridional transport efficiency ``chi = y / (1 + y)``, ``y = (L_R / 0.31 a)(x / 3)``,
   with the deformation radius ``L_R = N H / Omega`` and ``N H = R sqrt(T_eq / c_p)``
   (faster rotation, smaller eddies, weaker transport; ``chi`` is 0.5 for Earth).
   Phase bins add the diurnal anomaly damped by the column's radiative time
   ``tau_rad = c_p p_s / (4 g sigma T_eq^3)`` (Showman & Guillot 2002, A&A 385,
   166) as a forced relaxation: amplitude ``(1 - chi) / sqrt(1 + (w tau_rad)^2)``
   and eastward hot-spot lag ``atan(w tau_rad)``, w the solar-day frequency.
3. Temperature. The irradiated grey profile of Guillot (2010, A&A 520, A27,
   eq. 49) with the column's ``T_loc^4 = F / sigma`` in place of ``f T_irr^4``::

       T^4 = 3/4 T_int^4 (2/3 + tau) + 3/4 T_loc^4 [2/3 + 1/(gamma sqrt3)
             + (gamma/sqrt3 - 1/(gamma sqrt3)) exp(-gamma sqrt3 tau)]

   with ``T_int = 35 K``. The ground absorbs the visible flux that reaches it,
   ``T_s^4 = T^4(tau_s) + (T_loc^4 exp(-gamma sqrt3 tau_s) + T_int^4) / 2`` (the
   Eddington ground-air discontinuity). Convective adjustment: ``T = max(T_rad,
   T_s (p/p_s)^kappa)`` with ``kappa = (R/c_p) Gamma_m/Gamma_d`` the moist-adiabatic
   lapse rate ratio at the surface (Manabe & Strickler 1964, J. Atmos. Sci. 21, 361).
   Locked planets: the free atmosphere is horizontally nearly uniform (weak
   temperature gradient; Pierrehumbert & Hammond 2019, Annu. Rev. Fluid Mech.
   51, 275; Koll & Abbot 2016): anomalies from each level's mean keep the
   fraction ``1 - b(p)(1 - A(p))``, ``b`` rising from 0 at ``0.8 p_s`` to 1 at
   ``0.5 p_s`` and ``A = tau_adj / (tau_adj + tau_rad(p))`` the contrast that wave
   adjustment leaves (Perez-Becker & Showman 2013, ApJ 776, 134), with
   ``tau_rad(p) = c_p / (4 sigma T_eq^3) max(1/(2 kappa), p/g)`` and
   ``tau_adj = (a / N H) max(1, a / L_eq)``, ``L_eq = sqrt(N H a / (2 Omega))``.
4. Humidity. Manabe & Wetherald (1967, J. Atmos. Sci. 24, 241) relative
   humidity ``RH = 0.77 (p/p_s - 0.02) / 0.98`` times ``exocube.physics.q_sat``,
   then a cold trap: ``hus`` never increases upward. So ``0 <= hus <= q_sat``.
5. Geopotential height. ``zg = 0`` at ``p_s``; each layer adds the hypsometric
   thickness of ``exocube.physics.layer_thickness`` with the virtual
   temperature of ``exocube.physics.virtual_temperature``, ``R`` the run's gas
   constant and ``g`` constant with height.
6. Winds. The steady linear balance with Rayleigh drag ``k`` (Matsuno 1966,
   J. Meteor. Soc. Japan 44, 25; Gill 1980, QJRMS 106, 447) on the baroclinic
   geopotential ``Phi' = g zg - <g zg>`` (column mass-weighted mean removed, so
   the divergent flow carries no net mass)::

       k u - f v = P_x,  k v + f u = P_y,  P = -grad Phi',  f = 2 Omega sin phi
       u = (k P_x + f P_y) / (k^2 + f^2),   v = (k P_y - f P_x) / (k^2 + f^2)

   with ``k = k_0 + (V/a) / (1 - V/c_s)``, ``k_0 = 1/(1 day) + sqrt(R dT_h) / a``
   (surface friction plus advection, dT_h the range of ``ts``), ``V = |P| /
   sqrt(k^2 + f^2)`` the speed it allows, solved per point by Newton's method
   (advective damping, growing without bound towards the sound speed ``c_s``
   at ``T_eq``: shocks keep the balanced flow subsonic). Where ``|f| >> k`` this is geostrophic
   and the shear satisfies thermal wind ``du/dln p = (R / f a) dT_v/dphi``; near
   the equator the drag removes the ``f -> 0`` singularity and gives the
   divergent flow: Hadley cells, and for locked planets the day-night
   overturning (convergent towards the substellar point near the surface,
   divergent aloft). Locked planets add the equatorial superrotating jet of
   Showman & Polvani (2011, ApJ 738, 71), ``u_jet = 0.2 sqrt(R dT_dn ln(p_s/p))
   exp(-(phi/phi_w)^2)``, dT_dn the day-night ``ts`` contrast and ``phi_w`` the
   equatorial deformation latitude ``sqrt(N H / (2 Omega a))`` (at most 60 deg).

Levels below the ground (``p > p_s``) are NaN; ``ps`` is uniform.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from exocube import physics
from exocube.gcm.ranges import check_generator_range
from exocube.grid import DEFAULT_GRID, Grid, latitude_weights
from exocube.planet import BOND_ALBEDO, SUBSTELLAR_LON_DEG, Planet

log = logging.getLogger(__name__)

GAMMA_SUN = 0.25
T_SUN = 5772.0
T_INTERNAL = 35.0
RH_SURFACE = 0.77
TAU_H2O_REF = 0.8  # grey thermal optical depth scale of water vapour
WATER_COLUMN_REF = 5.0  # kg m-2
WATER_COLUMN_FRACTION = 0.2  # water scale height / air scale height
KOLL_K = 2.0
CHI_EARTH_RATIO = 0.31  # Earth's L_R / a
X_EARTH = 3.0  # Earth's Koll parameter x
TAU_DRAG_S = physics.DAY
JET_COEFF = 0.2
JET_MAX_WIDTH_DEG = 60.0
SQRT3 = math.sqrt(3.0)

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Climate:
    """The generated fields of one run on ``grid``, and the numbers that produced them."""

    planet: Planet
    grid: Grid
    time_days: Array
    phase_period_days: float
    fields: dict[str, NDArray[np.float32]]
    diagnostics: dict[str, float] = field(default_factory=dict)


def generate(planet: Planet, grid: Grid = DEFAULT_GRID, phase_bins: int = 1) -> Climate:
    """Generate one run's climate: ``phase_bins`` time steps on ``grid``.

    A planet outside the generator's own ranges (:mod:`exocube.gcm.ranges`) is refused
    with a ParameterError naming the field, the value and that range."""
    check_generator_range(planet.params)
    gamma = opacity_ratio(planet.params["stellar_teff_k"])
    tau_s = surface_optical_depth(planet, gamma)
    flux, time_days, period = absorbed_flux(planet, grid, tau_s, phase_bins)
    plev = grid.plev_array
    ps = planet.surface_pressure_pa
    ta, ts = temperature(planet, flux, plev, tau_s, gamma)
    if planet.tidally_locked:
        ta = weak_temperature_gradient(ta, plev, grid, planet, tau_s)
    hus, hus_s = humidity(ta, ts, plev, ps)
    zg = geopotential_height(ta, hus, ts, hus_s, plev, ps, planet)
    ua, va = winds(zg, ts, plev, grid, planet)
    shape2d = ts.shape
    fields = {
        "ta": ta, "ua": ua, "va": va, "hus": hus, "zg": zg,
        "ps": np.full(shape2d, ps), "ts": ts,
    }
    diagnostics = {
        "opacity_ratio_gamma": gamma,
        "surface_optical_depth": tau_s,
        "redistribution_efficiency": redistribution_efficiency(planet, tau_s),
        "radiative_timescale_days": radiative_timescale(planet) / physics.DAY,
    }
    return Climate(
        planet=planet, grid=grid, time_days=time_days, phase_period_days=period,
        fields={k: v.astype(np.float32) for k, v in fields.items()},
        diagnostics=diagnostics,
    )


def opacity_ratio(stellar_teff_k: float) -> float:
    """Visible-to-thermal grey opacity ratio gamma; larger for cooler stars."""
    return GAMMA_SUN * T_SUN / stellar_teff_k


def surface_optical_depth(planet: Planet, gamma: float, iterations: int = 400) -> float:
    """Thermal optical depth at the ground, with the water-vapour feedback solved."""
    p = planet.params
    ps_bar = p["surface_pressure_bar"]
    tau_dry = 0.25 * (p["pco2_bar"] / 4.0e-4) ** 0.2 * ps_bar**0.5 + 0.05 * ps_bar**2
    t_loc4 = planet.equilibrium_temperature**4
    ps = planet.surface_pressure_pa
    tau = tau_dry
    for _ in range(iterations):
        ts = float(ground_temperature4(np.asarray(t_loc4), tau, gamma)) ** 0.25
        column = WATER_COLUMN_FRACTION * RH_SURFACE * float(physics.q_sat(ts, ps)) * ps
        tau_h2o = TAU_H2O_REF * math.log1p(column / planet.gravity / WATER_COLUMN_REF)
        new = 0.5 * tau + 0.5 * (tau_dry + tau_h2o)
        if abs(new - tau) < 1e-10 * tau:
            return new
        tau = new
    log.warning("surface optical depth not converged after %d iterations (tau=%.6g) for %s",
                iterations, tau, planet.params)
    return tau


def koll_parameter(planet: Planet, tau_s: float) -> float:
    """x = tau^(1/3) (p_s / 1 bar)^(2/3) (T_eq / 600 K)^(-4/3) of Koll (2022)."""
    return (tau_s ** (1 / 3) * planet.params["surface_pressure_bar"] ** (2 / 3)
            * (planet.equilibrium_temperature / 600.0) ** (-4 / 3))


def redistribution_efficiency(planet: Planet, tau_s: float) -> float:
    """Day-night (locked) efficiency eps, or meridional efficiency chi (not locked)."""
    x = koll_parameter(planet, tau_s)
    if planet.tidally_locked:
        return x / (KOLL_K + x)
    y = deformation_radius(planet) / (CHI_EARTH_RATIO * planet.radius_m) * x / X_EARTH
    return y / (1.0 + y)


def wave_speed(planet: Planet) -> float:
    """Gravity-wave speed N H [m s-1] of an isothermal atmosphere at T_eq."""
    return planet.r_gas * math.sqrt(planet.equilibrium_temperature / planet.cp)


def deformation_radius(planet: Planet) -> float:
    """Rossby deformation radius N H / Omega [m]."""
    return wave_speed(planet) / planet.rotation_rate


def radiative_timescale(planet: Planet) -> float:
    """Column radiative time c_p p_s / (4 g sigma T_eq^3) [s]."""
    t = planet.equilibrium_temperature
    return planet.cp * planet.surface_pressure_pa / (
        4.0 * planet.gravity * physics.SIGMA_SB * t**3)


def absorbed_flux(
    planet: Planet, grid: Grid, tau_s: float, phase_bins: int
) -> tuple[Array, Array, float]:
    """Absorbed stellar flux [W m-2] per (time, lat, lon), time [days], phase period [days]."""
    phi = np.deg2rad(grid.lat)[:, None]
    lon = np.deg2rad(grid.lon)[None, :]
    s_abs = (1.0 - BOND_ALBEDO) * planet.params["insolation_earth"] * physics.S_EARTH
    eff = redistribution_efficiency(planet, tau_s)
    phases = (np.arange(phase_bins) + 0.5) / phase_bins
    if planet.tidally_locked:
        cos_z = np.cos(phi) * np.cos(lon - np.deg2rad(SUBSTELLAR_LON_DEG))
        day_night = s_abs * ((1.0 - eff) * np.maximum(cos_z, 0.0) + eff / 4.0)
        period = planet.params["orbital_period_days"]
        flux = np.broadcast_to(day_night, (phase_bins, *day_night.shape))
        return np.ascontiguousarray(flux), phases * period, period
    zonal = (1.0 - eff) * s_abs * np.cos(phi) / np.pi + eff * s_abs / 4.0
    period = solar_day_days(planet)
    if phase_bins == 1:
        flux = np.broadcast_to(zonal, (1, grid.nlat, grid.nlon))
        return np.ascontiguousarray(flux), phases * period, period
    omega_tau = 2.0 * np.pi / (period * physics.DAY) * radiative_timescale(planet)
    damping = (1.0 - eff) / math.sqrt(1.0 + omega_tau**2)
    lag = math.atan(omega_tau)
    sub_lon = np.deg2rad(SUBSTELLAR_LON_DEG) - 2.0 * np.pi * phases
    hour = lon[None] - sub_lon[:, None, None] - lag
    diurnal = np.maximum(np.cos(phi)[None] * np.cos(hour), 0.0) - np.cos(phi)[None] / np.pi
    return zonal[None] + damping * s_abs * diurnal, phases * period, period


def solar_day_days(planet: Planet) -> float:
    """Length of the solar (synodic) day [days] of a prograde, non-locked rotator."""
    p_rot = planet.params["rotation_period_days"]
    p_orb = planet.params["orbital_period_days"]
    return 1.0 / abs(1.0 / p_rot - 1.0 / p_orb)


def ground_temperature4(t_loc4: Array, tau_s: float, gamma: float) -> Array:
    """T_s^4 of the ground under a Guillot column with absorbed flux sigma T_loc^4."""
    visible = np.exp(-gamma * SQRT3 * tau_s)
    return guillot_t4(t_loc4, np.asarray(tau_s), gamma) + 0.5 * (
        t_loc4 * visible + T_INTERNAL**4)


def guillot_t4(t_loc4: Array, tau: Array, gamma: float) -> Array:
    """T^4 of the Guillot (2010) grey irradiated profile at optical depth ``tau``."""
    c1 = 2.0 / 3.0 + 1.0 / (gamma * SQRT3)
    c2 = gamma / SQRT3 - 1.0 / (gamma * SQRT3)
    return 0.75 * T_INTERNAL**4 * (2.0 / 3.0 + tau) + 0.75 * t_loc4 * (
        c1 + c2 * np.exp(-gamma * SQRT3 * tau))


def temperature(
    planet: Planet, flux: Array, plev: Array, tau_s: float, gamma: float
) -> tuple[Array, Array]:
    """Air temperature (time, plev, lat, lon) and ground temperature (time, lat, lon) [K]."""
    ps = planet.surface_pressure_pa
    t_loc4 = flux / physics.SIGMA_SB
    ts = ground_temperature4(t_loc4, tau_s, gamma) ** 0.25
    tau = (tau_s * plev / ps)[None, :, None, None]
    t_rad = guillot_t4(t_loc4[:, None], tau, gamma) ** 0.25
    kappa = planet.r_gas / planet.cp * moist_lapse_ratio(ts, ps, planet)
    ratio = (plev / ps)[None, :, None, None]
    t_adiabat = ts[:, None] * ratio ** kappa[:, None]
    ta = np.maximum(t_rad, t_adiabat)
    ta[:, plev > ps] = np.nan
    return ta, ts


def weak_temperature_gradient(
    ta: Array, plev: Array, grid: Grid, planet: Planet, tau_s: float
) -> Array:
    """Shrink horizontal anomalies of ``ta`` above the boundary layer of a locked planet.

    Anomalies from each level's mean keep the fraction ``1 - b(p) (1 - A(p))``:
    ``b`` rises from 0 at ``0.8 p_s`` to 1 at ``0.5 p_s``, and ``A = tau_adj /
    (tau_adj + tau_rad(p))`` is the contrast the waves leave against radiation.
    """
    kept = 1.0 - boundary_layer_weight(plev, planet) * (1.0 - wave_contrast(plev, planet,
                                                                             tau_s))
    level_mean = np.average(ta.mean(axis=-1), axis=-1, weights=latitude_weights(grid.lat))
    level_mean = level_mean[..., None, None]
    return level_mean + (ta - level_mean) * kept[None, :, None, None]


def boundary_layer_weight(plev: Array, planet: Planet) -> Array:
    """0 in the boundary layer (p >= 0.8 p_s), 1 in the free atmosphere (p <= 0.5 p_s)."""
    return np.clip((0.8 - plev / planet.surface_pressure_pa) / 0.3, 0.0, 1.0)


def wave_contrast(plev: Array, planet: Planet, tau_s: float) -> Array:
    """Fraction A(p) of the radiative day-night contrast that wave adjustment leaves.

    ``tau_rad(p) = c_p / (4 sigma T_eq^3) max(1 / (2 kappa), p / g)`` (optically thin
    and thick limits, ``kappa = tau_s g / p_s``); ``tau_adj = (a / N H) max(1, a /
    L_eq)``, longer for fast rotators whose waves are confined to the equator.
    """
    kappa = tau_s * planet.gravity / planet.surface_pressure_pa
    tau_rad = planet.cp / (4.0 * physics.SIGMA_SB * planet.equilibrium_temperature**3) * (
        np.maximum(0.5 / kappa, plev / planet.gravity))
    a = planet.radius_m
    tau_adj = a / wave_speed(planet) * max(1.0, a / equatorial_deformation_radius(planet))
    return tau_adj / (tau_adj + tau_rad)


def equatorial_deformation_radius(planet: Planet) -> float:
    """sqrt(N H a / (2 Omega)) [m]."""
    return math.sqrt(wave_speed(planet) * planet.radius_m / (2.0 * planet.rotation_rate))


def moist_lapse_ratio(ts: Array, ps: float, planet: Planet) -> Array:
    """Gamma_moist / Gamma_dry at the ground, in [0.3, 1]."""
    r = RH_SURFACE * physics.q_sat(ts, ps)
    eps = planet.r_gas / physics.R_VAPOUR
    num = 1.0 + physics.L_VAP * r / (planet.r_gas * ts)
    den = 1.0 + physics.L_VAP**2 * r * eps / (planet.cp * planet.r_gas * ts**2)
    return np.clip(num / den, 0.3, 1.0)


def humidity(ta: Array, ts: Array, plev: Array, ps: float) -> tuple[Array, Array]:
    """Specific humidity (time, plev, lat, lon) with a cold trap, and at the ground."""
    rh = RH_SURFACE * np.clip((plev / ps - 0.02) / 0.98, 0.0, 1.0)
    above = plev <= ps
    hus = np.full_like(ta, np.nan)
    q = rh[above][None, :, None, None] * physics.q_sat(ta[:, above], plev[above][None, :, None,
                                                                                    None])
    hus[:, above] = np.minimum.accumulate(q, axis=1)
    return hus, RH_SURFACE * physics.q_sat(ts, ps)


def geopotential_height(
    ta: Array, hus: Array, ts: Array, hus_s: Array, plev: Array, ps: float, planet: Planet
) -> Array:
    """Hydrostatic geopotential height [m], zero at the surface pressure."""
    above = np.flatnonzero(plev <= ps)
    tv = physics.virtual_temperature(ta[:, above], hus[:, above])
    tv_s = physics.virtual_temperature(ts, hus_s)
    p = plev[above]
    first = physics.layer_thickness(tv_s, tv[:, 0], ps, p[0], planet.gravity, planet.r_gas)
    layers = physics.layer_thickness(
        tv[:, :-1], tv[:, 1:], p[:-1, None, None], p[1:, None, None], planet.gravity,
        planet.r_gas)
    zg = np.full_like(ta, np.nan)
    zg[:, above] = np.cumsum(np.concatenate([first[:, None], layers], axis=1), axis=1)
    return zg


def column_weights(plev: Array, ps: float) -> Array:
    """Pressure thickness [Pa] of each level above ground; they sum to ``ps``."""
    p = plev[plev <= ps]
    edges = np.concatenate([[ps], np.sqrt(p[:-1] * p[1:]), [0.0]])
    return edges[:-1] - edges[1:]


def winds(
    zg: Array, ts: Array, plev: Array, grid: Grid, planet: Planet
) -> tuple[Array, Array]:
    """Balanced eastward and northward wind [m s-1] (time, plev, lat, lon)."""
    above = plev <= planet.surface_pressure_pa
    w = column_weights(plev, planet.surface_pressure_pa)
    phi_geo = planet.gravity * zg[:, above]
    phi_geo = phi_geo - np.tensordot(w, phi_geo, axes=([0], [1]))[:, None] / w.sum()
    lat = np.deg2rad(grid.lat)
    dlon = 2.0 * np.pi / grid.nlon
    a = planet.radius_m
    dphi_dlon = (np.roll(phi_geo, -1, axis=-1) - np.roll(phi_geo, 1, axis=-1)) / (2.0 * dlon)
    p_x = -dphi_dlon / (a * np.cos(lat)[:, None])
    p_y = -np.gradient(phi_geo, lat, axis=-2) / a
    f = (2.0 * planet.rotation_rate * np.sin(lat))[:, None]
    k = drag_rate(p_x, p_y, f, float(np.ptp(ts)), planet)
    den = k**2 + f**2
    ua = np.full_like(zg, np.nan)
    va = np.full_like(zg, np.nan)
    ua[:, above] = (k * p_x + f * p_y) / den
    va[:, above] = (k * p_y - f * p_x) / den
    if planet.tidally_locked:
        ua[:, above] += superrotating_jet(day_night_contrast(ts, grid), plev[above], lat, planet)
    return ua, va


def drag_rate(p_x: Array, p_y: Array, f: Array, ts_range: float, planet: Planet,
              iterations: int = 6) -> Array:
    """Rayleigh drag ``k(V) = k0 + (V/a) / (1 - V/c_s)`` [s-1] at the balanced speed V.

    ``h(V) = V sqrt(k(V)^2 + f^2) - |P| = 0`` is solved by Newton's method from
    a speed above the root; ``h`` is increasing and convex, so the iterates
    decrease monotonically onto it; 6 steps reach float32 precision over the
    parameter ranges. ``k0 = 1/(1 day) + sqrt(R dT_h) / a``.
    The advective term grows without bound as V approaches the sound speed
    ``c_s`` at ``T_eq`` (shock dissipation), so balanced winds stay subsonic.
    """
    a = planet.radius_m
    k0 = 1.0 / TAU_DRAG_S + math.sqrt(planet.r_gas * ts_range) / a
    sound = math.sqrt(planet.cp / (planet.cp - planet.r_gas) * planet.r_gas
                      * planet.equilibrium_temperature)
    force = np.hypot(p_x, p_y)
    # Two points with h >= 0: the linear-drag speed, and c_s (1 - d) with
    # d = min(0.29, c_s^2 / (2 a |P|)), where the advective term alone gives h >= 0.
    margin = np.minimum(0.29, sound**2 / (2.0 * a * np.maximum(force, 1e-300)))
    speed = np.minimum(force / np.sqrt(k0**2 + f**2), sound * (1.0 - margin))
    for _ in range(iterations):
        slow = 1.0 / (1.0 - speed / sound)
        k = k0 + speed / a * slow
        root = np.sqrt(k**2 + f**2)
        slope = root + speed * k * slow**2 / (a * root)
        speed = np.maximum(speed - (speed * root - force) / slope, 0.0)
    return k0 + speed / a / (1.0 - speed / sound)


def day_night_contrast(ts: Array, grid: Grid) -> float:
    """Area-weighted mean ``ts`` of the dayside minus the nightside of a locked planet [K]."""
    phi = np.deg2rad(grid.lat)[:, None]
    cos_z = np.cos(phi) * np.cos(np.deg2rad(grid.lon - SUBSTELLAR_LON_DEG))[None, :]
    area = np.broadcast_to(latitude_weights(grid.lat)[:, None], cos_z.shape)
    mean_ts = ts.mean(axis=0)
    day = cos_z > 0
    return float(np.average(mean_ts[day], weights=area[day])
                 - np.average(mean_ts[~day], weights=area[~day]))


def superrotating_jet(contrast: float, p: Array, lat: Array, planet: Planet) -> Array:
    """Equatorial jet (plev, lat, 1) of a tidally locked planet [m s-1]."""
    contrast = max(contrast, 0.0)
    width = min(equatorial_deformation_radius(planet) / planet.radius_m,
                math.radians(JET_MAX_WIDTH_DEG))
    speed = JET_COEFF * np.sqrt(planet.r_gas * contrast
                                * np.log(planet.surface_pressure_pa / p))
    return speed[:, None, None] * np.exp(-(lat / width) ** 2)[None, :, None]
