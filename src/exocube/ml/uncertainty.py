"""Probabilistic and per-run scores: spread-skill, CRPS, energy score, coverage, per-run RMSE.

Every field score weights points by ``cos(latitude)`` normalised to mean 1
(:func:`exocube.grid.latitude_weights`) and uses only the truth's valid points
(``mask``). Arrays: members ``(N, S, ...)``, truth and masks ``(S, ...)``, where the
second-to-last axis is latitude.

- Spread-skill ratio: ``sqrt((N+1)/N) * spread / RMSE(ensemble mean)`` with ``spread``
  the weighted root-mean of the members' sample variance (``ddof=1``). For N members
  drawn from the truth's own distribution the ensemble mean's expected squared error
  is ``(1 + 1/N) sigma**2`` and the sample variance's expectation is ``sigma**2``, so
  the factor ``sqrt((N+1)/N)`` makes a calibrated ensemble score 1 (Fortin et al.
  2014, J. Hydrometeor.). Below 1: over-confident; above 1: under-confident.
- CRPS: the fair ensemble CRPS ``mean_i |x_i - y| - sum_{i<j} |x_i - x_j| / (N(N-1))``
  (Ferro 2014; the mean absolute error for one member), unbiased for the CRPS of the
  distribution the members are drawn from, so a calibrated ensemble scores best even for
  small N (the empirical distribution's CRPS, over ``N**2``, favours too narrow
  ensembles); and the CRPS of the Gaussian predictive with mean
  the ensemble mean and standard deviation ``sqrt((N+1)/N) * s``, in closed form
  (Gneiting & Raftery 2007).
- Energy score of a sample's field: the same two terms with ``|.|`` replaced by the
  lat-weighted RMS distance over the sample's valid points, so it is in the
  variable's units and equals the sample's RMSE for one member; averaged over samples.
- Coverage of central intervals: the weighted fraction of valid points where the truth
  lies within ``mean +- t_c * sqrt((N+1)/N) * s``, ``t_c`` the quantile of nominal
  level ``c`` of Student's t with N-1 degrees of freedom: the exact predictive interval
  for a new draw from the members' (Gaussian) distribution, so a calibrated ensemble
  covers ``c`` of the points even for N = 3 (Gaussian quantiles would cover less).
- A Gaussian predictive (a network with a std head: mean ``mu`` and std ``sigma`` at
  every point) is scored in closed form: spread ``sqrt(mean sigma**2)`` and spread-skill
  ``spread / RMSE(mu)`` (no finite-ensemble factor), the Gaussian CRPS, coverage of
  ``mu +- z_c sigma`` with ``z_c`` the normal quantile, and the energy score of the
  Gaussian with independent points in its many-point limit, ``sqrt(MSE + S**2) -
  sqrt(2) S / 2`` per sample (``S**2`` the weighted mean of ``sigma**2``), where the
  RMS distances between a draw and the truth and between two draws concentrate on their
  root-mean-square values.
- Per-run RMSE: the lat-weighted RMSE of each test run (all its samples and points),
  then the mean over runs; the anomaly correlation likewise, anomalies from the
  training climatology.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr, ndtri, stdtrit

from exocube.grid import latitude_weights

Array = NDArray[np.float64]
Mask = NDArray[np.bool_]

COVERAGE_LEVELS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def finite_factor(n_members: int) -> float:
    """``sqrt((N+1)/N)``: the member std's widening into the predictive spread."""
    return math.sqrt((n_members + 1) / n_members)


def point_weights(lat: Array | None, mask: Mask) -> Array:
    """Normalised cos-latitude weights broadcast over ``mask`` (latitude second to last),
    zero at invalid points; without ``lat`` (scalars) 1 at every valid point."""
    if lat is None:
        return mask.astype(np.float64)
    w = latitude_weights(np.asarray(lat, dtype=np.float64))
    return w.reshape(-1, 1) * mask


def _wmean(values: Array, w: Array) -> float:
    total = float(w.sum())
    return float((w * np.where(w > 0, values, 0.0)).sum() / total) if total > 0 else math.nan


def crps_gaussian(mu: Array, sigma: Array, y: Array) -> Array:
    """CRPS of ``N(mu, sigma**2)`` for the outcome ``y``, pointwise (``sigma > 0``)."""
    z = (y - mu) / sigma
    pdf = np.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    return sigma * (z * (2 * ndtr(z) - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def crps_ensemble(members: Array, y: Array, fair: bool = True) -> Array:
    """Ensemble CRPS of the members (axis 0) for ``y``, pointwise: the fair estimator
    (spread term over ``N(N-1)`` pairs, Ferro 2014), whose expectation a calibrated
    ensemble minimises, or with ``fair=False`` the CRPS of the members' empirical
    distribution (over ``N**2``). One member: the absolute error."""
    skill = np.abs(members - y).mean(axis=0)
    n = members.shape[0]
    if n == 1:
        return skill
    spread = sum(np.abs(members[i] - members[j]) for i in range(n) for j in range(i + 1, n))
    return skill - spread / (n * (n - 1) if fair else n**2)


def spread_skill(members: Array, truth: Array, mask: Mask, lat: Array | None
                 ) -> dict[str, float]:
    """Spread, RMSE of the ensemble mean and their ratio with the finite-N factor."""
    n = members.shape[0]
    w = point_weights(lat, mask)
    mean = members.mean(axis=0)
    var = members.var(axis=0, ddof=1)
    rmse = math.sqrt(_wmean((mean - truth) ** 2, w))
    spread = math.sqrt(_wmean(var, w))
    ratio = finite_factor(n) * spread / rmse if rmse > 0 else math.nan
    return {"spread": spread, "rmse_ensemble_mean": rmse, "spread_skill": ratio}


def coverage(members: Array, truth: Array, mask: Mask, lat: Array | None,
             levels: Sequence[float] = COVERAGE_LEVELS) -> list[float]:
    """Observed coverage of the central predictive intervals of nominal ``levels``."""
    n = members.shape[0]
    w = point_weights(lat, mask)
    mean = members.mean(axis=0)
    sigma = finite_factor(n) * members.std(axis=0, ddof=1)
    dist = np.abs(truth - mean)
    return [_wmean((dist <= stdtrit(n - 1, (1 + c) / 2) * sigma).astype(np.float64), w)
            for c in levels]


def crps_scores(members: Array, truth: Array, mask: Mask, lat: Array | None
                ) -> dict[str, float]:
    """Weighted mean ensemble CRPS and Gaussian CRPS (the latter only for N > 1, where
    a point with zero spread scores its absolute error)."""
    w = point_weights(lat, mask)
    out = {"crps": _wmean(crps_ensemble(members, truth), w)}
    n = members.shape[0]
    if n > 1:
        mean = members.mean(axis=0)
        sigma = finite_factor(n) * members.std(axis=0, ddof=1)
        safe = np.where(sigma > 0, sigma, 1.0)
        crps = np.where(sigma > 0, crps_gaussian(mean, safe, truth), np.abs(truth - mean))
        out["crps_gaussian"] = _wmean(crps, w)
    return out


def _rms_distance(a: Array, b: Array, w: Array) -> Array:
    """Per-sample lat-weighted RMS distance; ``a``, ``b``, ``w`` are ``(S, ...)``."""
    axes = tuple(range(1, w.ndim))
    sq = np.where(w > 0, (a - b) ** 2, 0.0)
    return np.sqrt((w * sq).sum(axes) / np.maximum(w.sum(axes), 1e-300))


def energy_score(members: Array, truth: Array, mask: Mask, lat: Array) -> float:
    """Mean over samples of the energy score of each sample's field (see the module)."""
    n = members.shape[0]
    w = point_weights(lat, mask)
    skill = np.mean([_rms_distance(members[i], truth, w) for i in range(n)], axis=0)
    spread = sum(_rms_distance(members[i], members[j], w)
                 for i in range(n) for j in range(i + 1, n))
    score = skill - spread / n**2 if n > 1 else skill
    valid = w.reshape(len(w), -1).sum(axis=1) > 0
    return float(score[valid].mean()) if valid.any() else math.nan


def gaussian_spread_skill(mean: Array, std: Array, truth: Array, mask: Mask,
                          lat: Array | None) -> dict[str, float]:
    """Spread ``sqrt(mean sigma**2)``, RMSE of the mean and their ratio (Gaussian)."""
    w = point_weights(lat, mask)
    rmse = math.sqrt(_wmean((mean - truth) ** 2, w))
    spread = math.sqrt(_wmean(std**2, w))
    return {"spread": spread, "rmse_ensemble_mean": rmse,
            "spread_skill": spread / rmse if rmse > 0 else math.nan}


def gaussian_coverage(mean: Array, std: Array, truth: Array, mask: Mask, lat: Array | None,
                      levels: Sequence[float] = COVERAGE_LEVELS) -> list[float]:
    """Observed coverage of the central intervals ``mean +- z_c std`` of nominal ``levels``."""
    w = point_weights(lat, mask)
    dist = np.abs(truth - mean)
    return [_wmean((dist <= ndtri((1 + c) / 2) * std).astype(np.float64), w) for c in levels]


def gaussian_crps(mean: Array, std: Array, truth: Array, mask: Mask, lat: Array | None
                  ) -> float:
    """Weighted mean CRPS of the Gaussian predictive (a zero std scores the absolute error)."""
    w = point_weights(lat, mask)
    safe = np.where(std > 0, std, 1.0)
    crps = np.where(std > 0, crps_gaussian(mean, safe, truth), np.abs(truth - mean))
    return _wmean(crps, w)


def gaussian_energy_score(mean: Array, std: Array, truth: Array, mask: Mask, lat: Array
                          ) -> float:
    """Mean over samples of the many-point energy score of the Gaussian (module docstring)."""
    w = point_weights(lat, mask)
    mse = _rms_distance(mean, truth, w) ** 2
    s2 = _rms_distance(std, np.zeros_like(std), w) ** 2
    score = np.sqrt(mse + s2) - math.sqrt(2.0) * np.sqrt(s2) / 2
    valid = w.reshape(len(w), -1).sum(axis=1) > 0
    return float(score[valid].mean()) if valid.any() else math.nan


def per_run_rmse(pred: Array, truth: Array, mask: Mask, lat: Array,
                 run_index: NDArray[np.int64]) -> list[float]:
    """The lat-weighted RMSE of each run (all its samples), runs in ascending order."""
    w = point_weights(lat, mask)
    return [math.sqrt(_wmean((pred[sel] - truth[sel]) ** 2, w[sel]))
            for sel in (run_index == r for r in np.unique(run_index))]


def per_run_acc(pred: Array, truth: Array, mask: Mask, clim: Array, lat: Array,
                run_index: NDArray[np.int64]) -> list[float]:
    """The lat-weighted anomaly correlation of each run (anomalies from ``clim``)."""
    w = point_weights(lat, mask)
    out = []
    for r in np.unique(run_index):
        sel = run_index == r
        pa = np.where(w[sel] > 0, pred[sel] - clim, 0.0)
        ta = np.where(w[sel] > 0, truth[sel] - clim, 0.0)
        denom = math.sqrt(float((w[sel] * pa**2).sum() * (w[sel] * ta**2).sum()))
        out.append(float((w[sel] * pa * ta).sum()) / denom if denom > 0 else math.nan)
    return out
