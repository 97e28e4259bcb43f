"""The evaluation's per-run and probabilistic metrics, as ``metrics.json`` sections.

``field_metrics``: for every model and variable the mean over test runs of the per-run
lat-weighted RMSE and anomaly correlation, the energy score and the CRPS (a
deterministic model is a one-member ensemble: its CRPS is its mean absolute error and
its energy score its mean per-sample RMSE); for an ensemble also the spread-skill
ratio. ``uncertainty``: the ensemble's spread, spread-skill, CRPS and interval
coverage per variable and scalar. Definitions in :mod:`exocube.ml.uncertainty`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from exocube.ml.baselines import Samples
from exocube.ml.scalar import SCALAR_NAMES
from exocube.ml.scores import Array, Prediction
from exocube.ml.spec import DataSpec
from exocube.ml.uncertainty import (
    COVERAGE_LEVELS,
    coverage,
    crps_scores,
    energy_score,
    per_run_acc,
    per_run_rmse,
    spread_skill,
)


def _variables(spec: DataSpec, members: Sequence[Prediction], truth: Prediction,
               s: Samples, clim: Prediction
               ) -> list[tuple[str, Array, Array, np.ndarray, Array]]:
    """Per variable: name, members ``(N, S, ...)``, truth, mask and climatology."""
    out = []
    for i, v in enumerate(spec.variables_3d):
        out.append((v, np.stack([m.f3[:, i] for m in members]), truth.f3[:, i], s.m3[:, i],
                    clim.f3[0, i]))
    for i, v in enumerate(spec.variables_2d):
        out.append((v, np.stack([m.f2[:, i] for m in members]), truth.f2[:, i], s.m2[:, i],
                    clim.f2[0, i]))
    return out


def field_metrics(members: Sequence[Prediction], truth: Prediction, s: Samples,
                  clim: Prediction, spec: DataSpec) -> dict[str, dict[str, float]]:
    """The per-run and probabilistic metrics of one model (its members; one for a
    deterministic model), by variable."""
    out: dict[str, dict[str, float]] = {}
    for v, stack, t, mask, c in _variables(spec, members, truth, s, clim):
        mean = stack.mean(axis=0)
        rmse = per_run_rmse(mean, t, mask, spec.lat, s.run_index)
        acc = per_run_acc(mean, t, mask, c, spec.lat, s.run_index)
        row = {"rmse_per_run_mean": float(np.mean(rmse)),
               "rmse_per_run_std": float(np.std(rmse)),
               "acc_per_run_mean": float(np.nanmean(acc)) if np.isfinite(acc).any()
               else float("nan"),
               "energy_score": energy_score(stack, t, mask, spec.lat),
               "crps": crps_scores(stack, t, mask, spec.lat)["crps"]}
        if len(members) > 1:
            row["spread_skill"] = spread_skill(stack, t, mask, spec.lat)["spread_skill"]
        out[v] = row
    return out


def _probabilistic(stack: Array, truth: Array, mask: np.ndarray, lat: Array | None
                   ) -> dict[str, Any]:
    return {**spread_skill(stack, truth, mask, lat), **crps_scores(stack, truth, mask, lat),
            "coverage": coverage(stack, truth, mask, lat)}


def uncertainty_metrics(members: Sequence[Prediction], truth: Prediction, s: Samples,
                        clim: Prediction, spec: DataSpec, truth_scalars: Array | None
                        ) -> dict[str, Any]:
    """The ensemble's calibration: per variable (and scalar of the scalar head) spread,
    RMSE of the ensemble mean, spread-skill, CRPS and the coverage of central intervals."""
    out: dict[str, Any] = {
        "method": "deep ensemble", "n_members": len(members),
        "finite_ensemble_factor": "sqrt((N+1)/N)",
        "coverage_levels": list(COVERAGE_LEVELS),
        "variables": {v: _probabilistic(stack, t, mask, spec.lat)
                      for v, stack, t, mask, _ in _variables(spec, members, truth, s, clim)},
    }
    if truth_scalars is not None and all(m.scalars is not None for m in members):
        stack = np.stack([m.scalars for m in members])  # type: ignore[misc]
        ones = np.ones(len(truth_scalars), dtype=bool)
        out["scalars"] = {n: _probabilistic(stack[:, :, i], truth_scalars[:, i], ones, None)
                          for i, n in enumerate(SCALAR_NAMES)}
    return out
