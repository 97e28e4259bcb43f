"""The evaluation's per-run and probabilistic metrics, as ``metrics.json`` sections.

``field_metrics``: for every model and variable the mean over test runs of the per-run
lat-weighted RMSE and anomaly correlation, the energy score and the CRPS (a
deterministic model is a one-member ensemble: its CRPS is its mean absolute error and
its energy score its mean per-sample RMSE); for an ensemble also the spread-skill
ratio; for a network with a std head the closed-form scores of its Gaussian.
``uncertainty``: the ensemble's (or that Gaussian's) spread, spread-skill, CRPS and interval
coverage per variable and scalar. Definitions in :mod:`exocube.ml.uncertainty`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from exocube.ml.baselines import Samples
from exocube.ml.ensemble import DEEP_ENSEMBLE, STD_HEAD
from exocube.ml.scalar import SCALAR_NAMES
from exocube.ml.scores import Array, Prediction
from exocube.ml.spec import DataSpec
from exocube.ml.uncertainty import (
    COVERAGE_LEVELS,
    coverage,
    crps_scores,
    energy_score,
    gaussian_coverage,
    gaussian_crps,
    gaussian_energy_score,
    gaussian_spread_skill,
    per_run_acc,
    per_run_rmse,
    spread_skill,
)


def _variables(spec: DataSpec, members: Sequence[Prediction], truth: Prediction,
               s: Samples, clim: Prediction | None = None
               ) -> list[tuple[str, Array, Array, np.ndarray, Array | None, Array | None]]:
    """Per variable: name, members ``(N, S, ...)``, truth, mask, climatology (None
    without ``clim``) and (for a Gaussian predictive, one member with a std head) the
    predicted std ``(S, ...)``."""
    g = members[0] if len(members) == 1 and members[0].gaussian else None
    out = []
    for i, v in enumerate(spec.variables_3d):
        out.append((v, np.stack([m.f3[:, i] for m in members]), truth.f3[:, i], s.m3[:, i],
                    None if clim is None else clim.f3[0, i],
                    None if g is None else g.std3[:, i]))  # type: ignore[index]
    for i, v in enumerate(spec.variables_2d):
        out.append((v, np.stack([m.f2[:, i] for m in members]), truth.f2[:, i], s.m2[:, i],
                    None if clim is None else clim.f2[0, i],
                    None if g is None else g.std2[:, i]))  # type: ignore[index]
    return out


def field_metrics(members: Sequence[Prediction], truth: Prediction, s: Samples,
                  clim: Prediction, spec: DataSpec) -> dict[str, dict[str, float]]:
    """The per-run and probabilistic metrics of one model (its members; one for a
    deterministic model or a Gaussian predictive), by variable."""
    out: dict[str, dict[str, float]] = {}
    for v, stack, t, mask, c, std in _variables(spec, members, truth, s, clim):
        mean = stack.mean(axis=0)
        rmse = per_run_rmse(mean, t, mask, spec.lat, s.run_index)
        assert c is not None
        acc = per_run_acc(mean, t, mask, c, spec.lat, s.run_index)
        row = {"rmse_per_run_mean": float(np.mean(rmse)),
               "rmse_per_run_std": float(np.std(rmse)),
               "acc_per_run_mean": float(np.nanmean(acc)) if np.isfinite(acc).any()
               else float("nan")}
        if std is not None:
            row.update(energy_score=gaussian_energy_score(mean, std, t, mask, spec.lat),
                       crps=gaussian_crps(mean, std, t, mask, spec.lat),
                       spread_skill=gaussian_spread_skill(mean, std, t, mask,
                                                          spec.lat)["spread_skill"])
        else:
            row.update(energy_score=energy_score(stack, t, mask, spec.lat),
                       crps=crps_scores(stack, t, mask, spec.lat)["crps"])
            if len(members) > 1:
                row["spread_skill"] = spread_skill(stack, t, mask, spec.lat)["spread_skill"]
        out[v] = row
    return out


def _probabilistic(stack: Array, truth: Array, mask: np.ndarray, lat: Array | None,
                   std: Array | None = None) -> dict[str, Any]:
    if std is not None:
        crps = gaussian_crps(stack[0], std, truth, mask, lat)
        return {**gaussian_spread_skill(stack[0], std, truth, mask, lat), "crps": crps,
                "crps_gaussian": crps,
                "coverage": gaussian_coverage(stack[0], std, truth, mask, lat)}
    return {**spread_skill(stack, truth, mask, lat), **crps_scores(stack, truth, mask, lat),
            "coverage": coverage(stack, truth, mask, lat)}


def uncertainty_metrics(members: Sequence[Prediction], truth: Prediction, s: Samples,
                        spec: DataSpec, truth_scalars: Array | None) -> dict[str, Any]:
    """The predictive's calibration: per variable (and scalar of the scalar head) spread,
    RMSE of the mean, spread-skill, CRPS and the coverage of central intervals; of an
    ensemble's members, or of one network's Gaussian (std head)."""
    gaussian = len(members) == 1 and members[0].gaussian
    out: dict[str, Any] = {
        "method": STD_HEAD if gaussian else DEEP_ENSEMBLE, "n_members": len(members),
        "finite_ensemble_factor": "1 (Gaussian predictive)" if gaussian
        else "sqrt((N+1)/N)",
        "coverage_levels": list(COVERAGE_LEVELS),
        "variables": {v: _probabilistic(stack, t, mask, spec.lat, std)
                      for v, stack, t, mask, _, std in _variables(spec, members, truth, s)},
    }
    if truth_scalars is not None and all(m.scalars is not None for m in members):
        stack = np.stack([m.scalars for m in members])  # type: ignore[misc]
        ones = np.ones(len(truth_scalars), dtype=bool)
        sstd = members[0].scalars_std if gaussian else None
        out["scalars"] = {n: _probabilistic(stack[:, :, i], truth_scalars[:, i], ones, None,
                                            None if sstd is None else sstd[:, i])
                          for i, n in enumerate(SCALAR_NAMES)}
    return out
