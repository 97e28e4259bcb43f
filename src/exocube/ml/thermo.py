"""Torch versions of the thermodynamic relations in :mod:`exocube.physics`.

Same formulas and constants, differentiable, on any device and dtype; the
tests check them against the numpy originals. See :mod:`exocube.physics` for
the equations.

:func:`hypsometric_height` integrates the hypsometric equation upward from the
surface, as the built-in generator does (``zg = 0`` at ``ps``, the first layer
from the surface, at ``ts``, to the lowest level above ground, then layer by
layer): the hard constraint of the surrogate's ``zg``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from exocube.physics import (
    E0_TRIPLE,
    EPSILON,
    G_NEWTON,
    L_VAP,
    M_EARTH,
    R_DRY_AIR,
    R_EARTH,
    R_VAPOUR,
    T0_TRIPLE,
)
from exocube.planet import gas_constants


def saturation_vapour_pressure(ta: Tensor) -> Tensor:
    """Saturation vapour pressure [Pa] over liquid water at ``ta`` [K]."""
    return E0_TRIPLE * torch.exp((L_VAP / R_VAPOUR) * (1.0 / T0_TRIPLE - 1.0 / ta))


def q_sat(ta: Tensor, p: Tensor) -> Tensor:
    """Saturation specific humidity [kg/kg]; ``e_s`` capped at ``p`` as in the numpy version."""
    e_s = torch.minimum(saturation_vapour_pressure(ta), p)
    return EPSILON * e_s / (p - (1.0 - EPSILON) * e_s)


def virtual_temperature(ta: Tensor, hus: Tensor) -> Tensor:
    """Virtual temperature [K] from temperature [K] and specific humidity [kg/kg]."""
    return ta * (1.0 + (1.0 / EPSILON - 1.0) * hus)


def layer_thickness(tv_lower: Tensor, tv_upper: Tensor, p_lower: Tensor, p_upper: Tensor,
                    gravity: Tensor, r_gas: float | Tensor = R_DRY_AIR) -> Tensor:
    """Hypsometric thickness [m] between two pressure levels (``p_lower > p_upper``)."""
    return r_gas / gravity * 0.5 * (tv_lower + tv_upper) * torch.log(p_lower / p_upper)


def boiling_temperature(p: Tensor) -> Tensor:
    """Temperature [K] at which ``e_s`` equals ``p`` (inverse of the Clausius-Clapeyron law)."""
    return 1.0 / (1.0 / T0_TRIPLE - (R_VAPOUR / L_VAP) * torch.log(p / E0_TRIPLE))


def surface_gravity(mass_earth: Tensor, radius_earth: Tensor) -> Tensor:
    """Surface gravity [m s-2] from planet mass and radius in Earth units."""
    return G_NEWTON * (mass_earth * M_EARTH) / (radius_earth * R_EARTH) ** 2


def gas_constant(pco2_bar: Tensor, surface_pressure_bar: Tensor) -> Tensor:
    """Specific gas constant [J kg-1 K-1] of air with CO2 (:func:`exocube.planet.gas_constants`
    of the mole fraction ``pco2 / ps``; validated inputs have ``pco2 <= ps``)."""
    return gas_constants(pco2_bar / surface_pressure_bar)[0]  # type: ignore[arg-type,return-value]


def hypsometric_height(ta: Tensor, hus: Tensor, ps: Tensor, plev: Tensor, gravity: Tensor,
                       r_gas: float | Tensor = R_DRY_AIR, ts: Tensor | None = None,
                       hus_surface: Tensor | None = None) -> Tensor:
    """Geopotential height [m] above the surface pressure, ``(B, L, H, W)``.

    ``ta``, ``hus`` ``(B, L, H, W)`` on descending ``plev`` ``(L,)`` [Pa]; ``ps``
    ``(B, H, W)`` [Pa]; ``gravity`` and ``r_gas`` per sample ``(B,)``. The lowest level
    above ground, ``k0`` (the first with ``p <= ps``), sits one hypsometric layer above the
    surface (virtual temperature of ``ts`` and ``hus_surface`` there; by default the
    values at ``k0``); each level above adds the thickness of its layer, so adjacent levels
    satisfy the hypsometric equation exactly. Levels below ground continue the integral
    downward (negative heights, from whatever ``ta`` and ``hus`` hold there), so every pair
    of adjacent levels is hydrostatic whichever surface masks them (the prediction's or the
    truth's).
    """
    n_lev = plev.numel()
    p = plev.reshape(1, -1, 1, 1)
    g = gravity.reshape(-1, 1, 1, 1)
    r = r_gas.reshape(-1, 1, 1, 1) if isinstance(r_gas, Tensor) else r_gas
    tv = virtual_temperature(ta, hus)
    k0 = (p > ps.unsqueeze(1)).sum(1, keepdim=True).clamp(max=n_lev - 1)
    layers = layer_thickness(tv[:, :-1], tv[:, 1:], p[:, :-1], p[:, 1:], g, r)
    cum = torch.cat([torch.zeros_like(layers[:, :1]), layers.cumsum(1)], dim=1)
    rise = cum - cum.gather(1, k0)
    t_s = ta.gather(1, k0) if ts is None else ts.unsqueeze(1)
    q_s = hus.gather(1, k0) if hus_surface is None else hus_surface.unsqueeze(1)
    first = layer_thickness(virtual_temperature(t_s, q_s), tv.gather(1, k0), ps.unsqueeze(1),
                            plev[k0], g, r)
    return first + rise
