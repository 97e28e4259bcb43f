"""Torch versions of the thermodynamic relations in :mod:`exocube.physics`.

Same formulas and constants, differentiable, on any device and dtype; the
tests check them against the numpy originals. See :mod:`exocube.physics` for
the equations.
"""

from __future__ import annotations

import torch
from torch import Tensor

from exocube.physics import (
    E0_TRIPLE,
    EPSILON,
    L_VAP,
    R_DRY_AIR,
    R_VAPOUR,
    T0_TRIPLE,
)


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
