"""Scalar climate diagnostics and the small scalar model that predicts them.

The diagnostics are computed from surface fields on the grid:

global_mean_ts
    area-weighted (cos latitude) mean surface temperature [K];
day_night_contrast
    mean surface temperature of the hemisphere facing the substellar point
    minus that of the opposite hemisphere [K]; near 0 for planets that are
    not tidally locked, whose time-mean climate has no preferred longitude;
habitable_fraction
    area fraction where liquid water is stable at the surface:
    ``273.15 K <= ts <= T_boil(ps)``, with ``T_boil`` from the same
    Clausius-Clapeyron law as :mod:`exocube.physics`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from exocube.grid import latitude_weights
from exocube.ml import thermo
from exocube.planet import SUBSTELLAR_LON_DEG

SCALAR_NAMES: tuple[str, ...] = ("global_mean_ts", "day_night_contrast", "habitable_fraction")
SCALAR_UNITS: tuple[str, ...] = ("K", "K", "1")
# Offsets and scales that bring each diagnostic near unit range for the loss.
SCALAR_OFFSET = torch.tensor([280.0, 0.0, 0.0])
SCALAR_SCALE = torch.tensor([50.0, 50.0, 1.0])
T_FREEZE = 273.15


def scalar_diagnostics(ts: Tensor, ps: Tensor, lat_deg: Tensor, lon_deg: Tensor,
                       substellar_lon_deg: float = SUBSTELLAR_LON_DEG) -> Tensor:
    """``(B, 3)`` diagnostics from ``ts`` [K] and ``ps`` [Pa], each ``(B, lat, lon)``."""
    w = latitude_weights(lat_deg.to(ts.dtype)).reshape(1, -1, 1).expand_as(ts)
    total = w.sum((1, 2))
    mean_ts = (ts * w).sum((1, 2)) / total
    cos_lam = torch.cos((lon_deg.to(ts.dtype) - substellar_lon_deg) * (math.pi / 180.0))
    day = (cos_lam > 0).reshape(1, 1, -1).expand_as(ts)
    wd, wn = w * day, w * ~day
    contrast = (ts * wd).sum((1, 2)) / wd.sum((1, 2)) - (ts * wn).sum((1, 2)) / wn.sum((1, 2))
    liquid = (ts >= T_FREEZE) & (ts <= thermo.boiling_temperature(ps))
    frac = (w * liquid).sum((1, 2)) / total
    return torch.stack([mean_ts, contrast, frac], dim=-1)


class ScalarMLP(nn.Module):
    """Encoded parameters ``(B, n_params)`` -> normalised diagnostics ``(B, n_outputs)``
    (the 3 diagnostics, and with a standard-deviation head their 3 log-stds after them)."""

    def __init__(self, n_params: int, hidden: int = 64, layers: int = 3,
                 n_outputs: int = len(SCALAR_NAMES)) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        width = n_params
        for _ in range(layers - 1):
            mods += [nn.Linear(width, hidden), nn.GELU()]
            width = hidden
        mods.append(nn.Linear(width, n_outputs))
        self.net = nn.Sequential(*mods)

    def forward(self, params: Tensor) -> Tensor:
        if params.ndim != 2 or params.shape[1] != self.net[0].in_features:
            raise ValueError(f"params must be (B, {self.net[0].in_features}), "
                             f"got {tuple(params.shape)}")
        return self.net(params)


def normalise_scalars(s: Tensor) -> Tensor:
    return (s - SCALAR_OFFSET.to(s)) / SCALAR_SCALE.to(s)


def denormalise_scalars(z: Tensor) -> Tensor:
    return z * SCALAR_SCALE.to(z) + SCALAR_OFFSET.to(z)
