"""Equilibrium diagnostics of one ExoPlaSim run, from its yearly post-processed files.

- ``toa_net_flux_w_m2``: area-weighted global mean of ExoPlaSim's net top-of-atmosphere
  radiation ``ntr`` (absorbed solar minus outgoing long-wave, positive = heating) over the
  last model year;
- ``ts_drift_k_per_year``: global-mean surface temperature ``ts`` of the last year minus
  that of the year before, per 360-day year (a "year" is one restart segment of the run;
  segments shorter than 360 days are scaled up). With one year only, the drift is unknown
  (NaN) and the run cannot be called equilibrated.

A run is equilibrated when ``|toa_net_flux| <= max_toa_imbalance`` and
``|ts_drift| <= max_ts_drift`` (defaults 1.0 W m-2 and 0.1 K per year, see docs/gcm.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import netCDF4
import numpy as np

from exocube.errors import InputDataError
from exocube.grid import latitude_weights

DAYS_PER_YEAR = 360.0


@dataclass(frozen=True)
class EquilibriumCriteria:
    """Thresholds of the "equilibrated" flag."""

    max_toa_imbalance_w_m2: float = 1.0
    max_ts_drift_k_per_year: float = 0.1


DEFAULT_CRITERIA = EquilibriumCriteria()


@dataclass(frozen=True)
class EquilibriumDiagnostics:
    """One run's diagnostics and flag."""

    toa_net_flux_w_m2: float
    ts_drift_k_per_year: float
    ts_global_mean_k: float
    years_evaluated: int
    equilibrated: bool
    max_toa_imbalance_w_m2: float
    max_ts_drift_k_per_year: float

    def to_dict(self) -> dict[str, float | int | bool]:
        return asdict(self)


def global_mean(field: np.ndarray, lat_deg: np.ndarray) -> float:
    """Area-weighted (cos latitude) mean over (..., lat, lon), then over the leading axes."""
    weights = np.broadcast_to(latitude_weights(np.asarray(lat_deg, np.float64))[:, None],
                              field.shape[-2:])
    data = np.asarray(field, np.float64).reshape(-1, *field.shape[-2:])
    return float(np.mean([np.sum(d * weights) / np.sum(weights) for d in data]))


def year_means(path: Path) -> tuple[float, float]:
    """Global means of ``ntr`` and ``ts`` over one post-processed year file."""
    try:
        with netCDF4.Dataset(path) as ds:
            lat = np.asarray(ds["lat"][:], np.float64)
            return (global_mean(np.asarray(ds["ntr"][:]), lat),
                    global_mean(np.asarray(ds["ts"][:]), lat))
    except (OSError, RuntimeError, KeyError, IndexError) as exc:
        raise InputDataError(f"{path}: cannot read ntr and ts for the equilibrium "
                             f"diagnostics ({exc})") from exc


def diagnose(year_files: Sequence[Path], year_days: float,
             criteria: EquilibriumCriteria = DEFAULT_CRITERIA) -> EquilibriumDiagnostics:
    """Diagnostics from a run's year files, oldest first (only the last two are read)."""
    if not year_files:
        raise InputDataError("no post-processed year file to compute equilibrium diagnostics")
    last_ntr, last_ts = year_means(year_files[-1])
    drift = math.nan
    if len(year_files) >= 2:
        _, prev_ts = year_means(year_files[-2])
        drift = (last_ts - prev_ts) * DAYS_PER_YEAR / year_days
    ok = (abs(last_ntr) <= criteria.max_toa_imbalance_w_m2
          and math.isfinite(drift) and abs(drift) <= criteria.max_ts_drift_k_per_year)
    return EquilibriumDiagnostics(
        toa_net_flux_w_m2=last_ntr, ts_drift_k_per_year=drift, ts_global_mean_k=last_ts,
        years_evaluated=min(len(year_files), 2), equilibrated=bool(ok),
        max_toa_imbalance_w_m2=criteria.max_toa_imbalance_w_m2,
        max_ts_drift_k_per_year=criteria.max_ts_drift_k_per_year)
