"""Shared physical constants and thermodynamic relations (SI units).

Used by the generator, by ingest validation, and by the surrogate's physics
losses, so that all three agree on what "consistent" means.

Saturation vapour pressure (Clausius-Clapeyron with constant latent heat,
integrated from the triple point of water)::

    e_s(T) = e0 * exp( (L / R_v) * (1/T0 - 1/T) ),  e0 = 611.657 Pa, T0 = 273.16 K

Saturation specific humidity at pressure p::

    q_sat = eps * e_s / (p - (1 - eps) * e_s),  eps = R_d / R_v

with ``e_s`` capped at ``p`` so that q_sat <= 1 stays finite at low pressure.

Virtual temperature ``T_v = T (1 + (1/eps - 1) q)``; hypsometric equation for
the geopotential thickness between pressure levels p1 > p2::

    z2 - z1 = (R / g) * mean(T_v) * ln(p1 / p2)

with the layer-mean virtual temperature taken as the log-pressure mean
(trapezoid in ln p) of the two levels.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

G_NEWTON = 6.674_30e-11  # m3 kg-1 s-2
SIGMA_SB = 5.670_374_419e-8  # W m-2 K-4
R_EARTH = 6.371_0e6  # m (mean radius)
M_EARTH = 5.972_2e24  # kg
M_SUN = 1.988_41e30  # kg
R_SUN = 6.957e8  # m (nominal)
AU = 1.495_978_707e11  # m
L_SUN = 3.828e26  # W (nominal)
S_EARTH = L_SUN / (4 * np.pi * AU**2)  # W m-2, about 1361
DAY = 86_400.0  # s
BAR_TO_PA = 1.0e5  # Pa per bar
R_GAS = 8.314_462_618  # J mol-1 K-1
R_DRY_AIR = 287.05  # J kg-1 K-1 (Earth-like N2/O2 air)
CP_DRY_AIR = 1004.0  # J kg-1 K-1
R_VAPOUR = 461.5  # J kg-1 K-1
EPSILON = R_DRY_AIR / R_VAPOUR
L_VAP = 2.501e6  # J kg-1
E0_TRIPLE = 611.657  # Pa
T0_TRIPLE = 273.16  # K


def saturation_vapour_pressure(ta: ArrayLike) -> NDArray[np.float64]:
    """Saturation vapour pressure over liquid water [Pa] at temperature ``ta`` [K]."""
    t = np.asarray(ta, dtype=np.float64)
    return E0_TRIPLE * np.exp((L_VAP / R_VAPOUR) * (1.0 / T0_TRIPLE - 1.0 / t))


def q_sat(ta: ArrayLike, p: ArrayLike) -> NDArray[np.float64]:
    """Saturation specific humidity [kg/kg] at temperature ``ta`` [K] and pressure ``p`` [Pa]."""
    p_arr = np.asarray(p, dtype=np.float64)
    e_s = np.minimum(saturation_vapour_pressure(ta), p_arr)
    return EPSILON * e_s / (p_arr - (1.0 - EPSILON) * e_s)


def virtual_temperature(ta: ArrayLike, hus: ArrayLike) -> NDArray[np.float64]:
    """Virtual temperature [K] from temperature [K] and specific humidity [kg/kg]."""
    return np.asarray(ta, np.float64) * (1.0 + (1.0 / EPSILON - 1.0) * np.asarray(hus, np.float64))


def layer_thickness(
    tv_lower: ArrayLike, tv_upper: ArrayLike, p_lower: ArrayLike, p_upper: ArrayLike,
    gravity: ArrayLike, r_gas: float = R_DRY_AIR,
) -> NDArray[np.float64]:
    """Hypsometric thickness [m] between two pressure levels (``p_lower > p_upper``)."""
    tv_mean = 0.5 * (np.asarray(tv_lower, np.float64) + np.asarray(tv_upper, np.float64))
    return r_gas / np.asarray(gravity, np.float64) * tv_mean * np.log(
        np.asarray(p_lower, np.float64) / np.asarray(p_upper, np.float64)
    )


def surface_gravity(mass_earth: ArrayLike, radius_earth: ArrayLike) -> NDArray[np.float64]:
    """Surface gravity [m s-2] from planet mass and radius in Earth units."""
    m = np.asarray(mass_earth, np.float64) * M_EARTH
    r = np.asarray(radius_earth, np.float64) * R_EARTH
    return G_NEWTON * m / r**2
