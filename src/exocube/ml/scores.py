"""Scores of surrogate predictions against the truth, as typed results.

For every variable and level: latitude-weighted RMSE, bias and anomaly
correlation (anomalies from the training climatology). Physics residuals are
computed for a prediction or the truth with the same code as the training
losses:

- ``hydrostatic_rel_rms``: RMS of the relative hypsometric residual per layer;
- ``humidity_violation_rms`` [kg/kg] and ``humidity_violation_fraction``: how
  far and how often ``hus`` leaves ``[0, q_sat(ta, p)]``;
- ``mass_divergence_rms`` [kg m-2 s-1]: area-weighted RMS of the column mass
  flux divergence (with each planet's radius and gravity).

All scores use the truth's below-ground mask. Scalar diagnostics (global-mean
surface temperature, day-night contrast, habitable fraction) are scored for
the scalar model and as derived from each model's surface fields. Each result
has ``as_dict`` giving the keys of ``metrics.json``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from exocube.grid import latitude_weights
from exocube.ml import losses
from exocube.ml.baselines import Samples
from exocube.ml.scalar import SCALAR_NAMES, scalar_diagnostics
from exocube.ml.spec import DataSpec
from exocube.physics import R_EARTH

Array = NDArray[np.float64]


@dataclass
class Prediction:
    """Physical fields of one model on the evaluation samples."""

    f3: Array  # (N, C3, L, H, W)
    f2: Array  # (N, C2, H, W)
    scalars: Array | None = None  # (N, 3) from a scalar model
    #: A network with a std head: its predicted standard deviations, shaped as above.
    std3: Array | None = None
    std2: Array | None = None
    scalars_std: Array | None = None

    @property
    def gaussian(self) -> bool:
        """True for a Gaussian predictive (mean and predicted std), not a point forecast."""
        return self.std3 is not None


@dataclass(frozen=True)
class LevelScores:
    """Per-level scores of a 3-D field (``None`` where a level has no valid point)."""

    rmse: tuple[float | None, ...]
    bias: tuple[float | None, ...]
    acc: tuple[float | None, ...]

    def as_dict(self) -> dict[str, list[float | None]]:
        return {"rmse": list(self.rmse), "bias": list(self.bias), "acc": list(self.acc)}


@dataclass(frozen=True)
class FieldScore:
    """Overall lat-weighted RMSE and bias; per-level scores (3-D) or the ACC (2-D)."""

    rmse: float
    bias: float
    acc: float | None = None
    per_level: LevelScores | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rmse": self.rmse, "bias": self.bias}
        if self.per_level is not None:
            out["per_level"] = self.per_level.as_dict()
        else:
            out["acc"] = self.acc
        return out


@dataclass(frozen=True)
class ScalarScore:
    rmse: float
    bias: float

    def as_dict(self) -> dict[str, float]:
        return {"rmse": self.rmse, "bias": self.bias}


@dataclass(frozen=True)
class ModelScores:
    """The scores of one model (the U-Net or a baseline)."""

    fields: dict[str, FieldScore]
    physics: dict[str, float]
    scalars_from_fields: dict[str, ScalarScore] | None = None
    scalars: dict[str, ScalarScore] | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fields": {v: s.as_dict() for v, s in self.fields.items()},
                               "physics": dict(self.physics)}
        for key, sc in (("scalars_from_fields", self.scalars_from_fields),
                        ("scalars", self.scalars)):
            if sc is not None:
                out[key] = {n: s.as_dict() for n, s in sc.items()}
        return out


@dataclass(frozen=True)
class Scores:
    """The whole evaluation of one checkpoint on one split."""

    checkpoint: str
    store: str
    version: str
    trained_on_version: str
    split: str
    truth_physics: dict[str, float]
    n_runs: int
    n_samples: int
    n_train_runs: int
    models: dict[str, ModelScores] = field(default_factory=dict)
    #: Per model and variable: per-run RMSE and ACC, energy score, CRPS (spread-skill for
    #: an ensemble); see :mod:`exocube.ml.field_metrics`.
    field_metrics: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    #: The ensemble's calibration (None for a single checkpoint).
    uncertainty: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The content of ``metrics.json``."""
        out = {"checkpoint": self.checkpoint, "store": self.store, "version": self.version,
               "trained_on_version": self.trained_on_version, "split": self.split,
               "n_runs": self.n_runs, "n_samples": self.n_samples,
               "n_train_runs": self.n_train_runs,
               "truth": {"physics": dict(self.truth_physics)},
               "models": {n: m.as_dict() for n, m in self.models.items()},
               "field_metrics": self.field_metrics}
        if self.uncertainty is not None:
            out["uncertainty"] = self.uncertainty
        return out

    def summary(self) -> dict[str, dict[str, float]]:
        """The overall RMSE of ``ta`` of each model that learns it."""
        return {n: {"rmse_ta": m.fields["ta"].rmse} for n, m in self.models.items()
                if "ta" in m.fields}


def _finite_or_none(values: Array) -> tuple[float | None, ...]:
    return tuple(None if not np.isfinite(x) else float(x) for x in values)


def field_scores(pred: Array, truth: Array, mask: NDArray[np.bool_], clim: Array,
                 lat: Array) -> FieldScore:
    """Per-level (and overall) lat-weighted RMSE, bias and anomaly correlation.

    ``pred``, ``truth``, ``mask`` are ``(N, [L,] H, W)``; ``clim`` the training mean.
    """
    three_d = pred.ndim == 4
    if not three_d:
        pred, truth, mask, clim = pred[:, None], truth[:, None], mask[:, None], clim[None]
    w = latitude_weights(lat).reshape(1, 1, -1, 1) * mask
    axes = (0, 2, 3)
    wsum = np.maximum(w.sum(axes), 1e-300)
    err = np.where(mask, pred - truth, 0.0)
    pa, ta = np.where(mask, pred - clim, 0.0), np.where(mask, truth - clim, 0.0)
    cov = (w * pa * ta).sum(axes)
    denom = np.sqrt((w * pa**2).sum(axes) * (w * ta**2).sum(axes))
    empty = w.sum(axes) == 0
    rmse = np.where(empty, np.nan, np.sqrt((w * err**2).sum(axes) / wsum))
    bias = np.where(empty, np.nan, (w * err).sum(axes) / wsum)
    acc = np.where(empty | (denom == 0), np.nan, cov / np.where(denom == 0, 1, denom))
    overall = math.sqrt(float((w * err**2).sum() / max(w.sum(), 1e-300)))
    mean_bias = float((w * err).sum() / max(w.sum(), 1e-300))
    if three_d:
        return FieldScore(overall, mean_bias, per_level=LevelScores(
            _finite_or_none(rmse), _finite_or_none(bias), _finite_or_none(acc)))
    return FieldScore(overall, mean_bias, acc=float(acc[0]))


def physics_residuals(f3: Array, m3: NDArray[np.bool_], v3: Sequence[str], plev: Array,
                      lat: Array, radius_earth: Array, gravity: Array, r_gas: Array
                      ) -> dict[str, float]:
    """The physics residuals of physical 3-D fields (a prediction or the truth);
    ``radius_earth``, ``gravity`` and ``r_gas`` are per sample."""
    t = {v: torch.tensor(f3[:, i], dtype=torch.float64) for i, v in enumerate(v3)}
    valid = torch.tensor(m3.all(axis=1))
    p = torch.tensor(plev, dtype=torch.float64)
    g = torch.tensor(gravity, dtype=torch.float64)
    out: dict[str, float] = {}
    if {"ta", "hus", "zg"} <= set(t):
        r, lv = losses.hydrostatic_residual(t["ta"], t["hus"], t["zg"], p, g, valid,
                                            torch.tensor(r_gas, dtype=torch.float64))
        out["hydrostatic_rel_rms"] = float(torch.sqrt((r**2).sum() / lv.sum().clamp_min(1)))
    if {"ta", "hus"} <= set(t):
        ta = torch.where(valid, t["ta"], torch.full_like(t["ta"], 250.0))
        viol = losses.humidity_violation(t["hus"], ta, p)[valid]
        out["humidity_violation_rms"] = float(torch.sqrt((viol**2).mean()))
        out["humidity_violation_fraction"] = float((viol > 0).double().mean())
    if {"ua", "va"} <= set(t):
        radius = torch.tensor(radius_earth * R_EARTH)
        div = losses.column_mass_divergence(t["ua"], t["va"], valid, p,
                                            torch.tensor(lat, dtype=torch.float64), radius, g)
        w = torch.tensor(latitude_weights(lat)).reshape(1, -1, 1)
        out["mass_divergence_rms"] = float(torch.sqrt((div**2 * w).mean()))
    return out


def sample_physics(f3: Array, s: Samples, spec: DataSpec) -> dict[str, float]:
    """:func:`physics_residuals` of fields on the samples ``s`` of ``spec``'s grid."""
    radius = s.params[:, spec.params.index("radius_earth")]
    return physics_residuals(f3, s.m3, spec.variables_3d, spec.plev, spec.lat, radius,
                             s.gravity, s.r_gas)


def field_scalars(f2: Array, v2: Sequence[str], lat: Array, lon: Array,
                  substellar: float) -> Array | None:
    """The scalar diagnostics of surface fields ``(N, 3)``; None without ``ts`` and ``ps``."""
    if not {"ts", "ps"} <= set(v2):
        return None
    ts = torch.tensor(f2[:, list(v2).index("ts")])
    ps = torch.tensor(f2[:, list(v2).index("ps")])
    return scalar_diagnostics(ts, ps, torch.tensor(lat), torch.tensor(lon), substellar).numpy()


def scalar_scores(pred: Array, truth: Array) -> dict[str, ScalarScore]:
    return {n: ScalarScore(float(np.sqrt(np.mean((pred[:, i] - truth[:, i]) ** 2))),
                           float(np.mean(pred[:, i] - truth[:, i])))
            for i, n in enumerate(SCALAR_NAMES)}


def score_model(pred: Prediction, truth: Prediction, s: Samples, clim: Prediction,
                spec: DataSpec, substellar: float, truth_scalars: Array | None
                ) -> ModelScores:
    """Every score of one model's prediction on the samples ``s``."""
    lat = spec.lat
    fields = {v: field_scores(pred.f3[:, i], truth.f3[:, i], s.m3[:, i], clim.f3[0, i], lat)
              for i, v in enumerate(spec.variables_3d)}
    fields.update({v: field_scores(pred.f2[:, i], truth.f2[:, i], s.m2[:, i], clim.f2[0, i], lat)
                   for i, v in enumerate(spec.variables_2d)})
    physics = sample_physics(pred.f3, s, spec)
    if truth_scalars is None:
        return ModelScores(fields, physics)
    derived = field_scalars(pred.f2, spec.variables_2d, lat, spec.lon, substellar)
    assert derived is not None  # truth scalars exist, so ts and ps are learned
    return ModelScores(fields, physics, scalar_scores(derived, truth_scalars),
                       scalar_scores(pred.scalars, truth_scalars)
                       if pred.scalars is not None else None)
