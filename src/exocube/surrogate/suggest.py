"""Suggested next runs (active learning): where a deep ensemble is least certain, spread out.

1. **Candidates**: ``n_candidates`` points of a Latin hypercube over the generator's ranges
   (:func:`exocube.gcm.sample_runs`, the points ``exocube generate --runs M`` makes),
   so every suggestion is a run ``exocube generate`` and ``exocube simulate`` can make.
2. **Uncertainty** of candidate x: for each output v of the mode (the datacube fields, or
   the scalars), the cos-latitude weighted mean over the grid of the ensemble's std
   ``s_v(x)`` (levels below the surface left out), divided by that mean's average over the
   candidates; ``u(x)`` is the mean of these ratios over the outputs. Every output weighs
   the same whatever its units, and ``u = 1`` is an average candidate.
3. **Batch** (greedy local penalisation, after Gonzalez et al. 2016, AISTATS): the first
   pick is the candidate of largest ``u``; every later pick maximises
   ``u(x) * prod_j (1 - exp(-d(x, x_j)^2 / (2 l^2)))`` over the picks ``x_j`` so far, with
   ``d`` the Euclidean distance between the model's own encoded inputs (each feature
   spans [-1, 1]; halved, so a unit cube) and ``l = K^(-1/D)`` for D features (the edge
   of one of K equal cells of the D-dimensional unit cube). Distances are those the model
   sees: fields it does not use (for a v2-input model, the host mass, log g and
   metallicity) do not separate two candidates. Near-duplicates of a pick are thus
   suppressed, and K suggestions cover K different uncertain regions.

Candidates outside the model's training hull are scored too (extrapolation is where the
members disagree most, and where a new run teaches the most); their hull distance is
reported.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from exocube.errors import ExocubeError, ParameterError
from exocube.gcm import sample_runs
from exocube.params import ALL_NAMES
from exocube.surrogate.planets import write_csv
from exocube.surrogate.prediction import Prediction
from exocube.surrogate.surrogate import Surrogate, check_request, encode_rows

log = logging.getLogger(__name__)

BATCH = 64  # candidates per model call


@dataclass(frozen=True)
class Suggestion:
    """One suggested run: its parameters, scores and place among the candidates."""

    run_id: str
    params: dict[str, float]
    uncertainty: float
    score: float
    hull_distance: float
    candidate: int


def candidate_points(n: int, seed: int) -> list[dict[str, float]]:
    """Validated parameters of ``n`` hypercube candidates over the generator's ranges."""
    return [dict(run.params) for run in sample_runs(n, seed)]


def model_coordinates(surrogate: Surrogate, mode: str,
                      rows: Sequence[dict[str, float]]) -> NDArray[np.float64]:
    """The rows as the mode's model encodes them, mapped from [-1, 1] onto [0, 1]."""
    task = surrogate.model_for(mode).task
    checked = [check_request(r, task.spec.params.names) for r in rows]
    return (encode_rows(task, checked).numpy().astype(np.float64) + 1.0) / 2.0


def spread_per_output(p: Prediction) -> dict[str, float]:
    """Grid-mean ensemble std of each output of ``p`` (cos-latitude weights)."""
    if not p.has_uncertainty:
        raise ExocubeError(
            f"model {p.model.id} ({p.model.name}) gives no uncertainty: suggest-runs needs a "
            "deep ensemble (`exocube models ensemble ID ID ... --name NAME`)")
    out = {name: float(value) for name, value in p.scalars_std.items()}
    weights = np.cos(np.deg2rad(np.asarray(p.coords["lat"], np.float64)))
    for name, std in p.fields_std.items():
        w = np.broadcast_to(weights[:, None], std.shape[-2:])
        w = np.broadcast_to(w, std.shape)
        ok = np.isfinite(std)
        out[name] = float(np.sum(std[ok] * w[ok]) / np.sum(w[ok]))
    return out


def uncertainty_scores(spreads: Sequence[dict[str, float]]) -> NDArray[np.float64]:
    """``u`` of every candidate: the mean over outputs of its spread / the candidates'
    mean spread of that output."""
    names = sorted(spreads[0])
    table = np.array([[s[n] for n in names] for s in spreads], np.float64)
    scale = table.mean(axis=0)
    scale[scale <= 0] = 1.0  # an output no member disagrees on adds nothing
    return (table / scale).mean(axis=1)


def penalised_batch(unit: NDArray[np.float64], u: NDArray[np.float64],
                    k: int) -> tuple[list[int], list[float]]:
    """Indices of the ``k`` picks of greedy local penalisation, and each pick's score."""
    length = k ** (-1.0 / unit.shape[1])
    score = u.astype(np.float64).copy()
    picks: list[int] = []
    values: list[float] = []
    for _ in range(k):
        i = int(np.argmax(score))
        picks.append(i)
        values.append(float(score[i]))
        d2 = np.sum((unit - unit[i]) ** 2, axis=1)
        score = score * (1.0 - np.exp(-d2 / (2.0 * length**2)))
        score[picks] = -np.inf
    return picks, values


def suggest_runs(surrogate: Surrogate, k: int, n_candidates: int = 512, seed: int = 0,
                 mode: str = "datacube", prefix: str = "al") -> list[Suggestion]:
    """The ``k`` suggested runs among ``n_candidates`` hypercube points (module docstring)."""
    if k < 1:
        raise ParameterError("n", k, "an integer >= 1")
    if n_candidates < k:
        raise ParameterError("candidates", n_candidates, f"at least --n ({k})")
    if mode not in ("datacube", "scalar"):
        raise ParameterError("mode", mode, "datacube or scalar")
    rows = candidate_points(n_candidates, seed)
    unit = model_coordinates(surrogate, mode, rows)
    predictions: list[Prediction] = []
    for start in range(0, len(rows), BATCH):
        for r in surrogate.predict_many(rows[start:start + BATCH], mode,
                                        allow_extrapolation=True):
            if isinstance(r, ExocubeError):
                raise r
            predictions.append(r)
    u = uncertainty_scores([spread_per_output(p) for p in predictions])
    picks, scores = penalised_batch(unit, u, k)
    model_id = predictions[0].model.id
    log.info("suggested %d of %d candidates (seed %d) for model %s", k, n_candidates, seed,
             model_id)
    return [Suggestion(f"{prefix}-m{model_id}-s{seed}-{rank:03d}", rows[i], float(u[i]),
                       score, predictions[i].hull_distance, i)
            for rank, (i, score) in enumerate(zip(picks, scores, strict=True))]


def design_table(suggestions: Sequence[Suggestion]) -> pd.DataFrame:
    """The design CSV's table: ``run_id`` and every parameter (``exocube generate
    --from-csv`` and ``exocube simulate --design`` read it)."""
    return pd.DataFrame([{"run_id": s.run_id, **{n: s.params[n] for n in ALL_NAMES}}
                         for s in suggestions])


def write_design(suggestions: Sequence[Suggestion], path: Path,
                 meta: dict[str, Any]) -> tuple[Path, Path]:
    """Write the design CSV and, beside it, ``<stem>.scores.csv`` (scores and hull
    distances) and the settings in ``meta``; each by temporary name and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scores = pd.DataFrame([{"run_id": s.run_id, "candidate": s.candidate,
                            "uncertainty": s.uncertainty, "penalised_score": s.score,
                            "hull_distance": s.hull_distance} for s in suggestions])
    scores_path = path.with_name(path.stem + ".scores.csv")
    write_csv(design_table(suggestions), path)
    write_csv(scores, scores_path, meta)
    return path, scores_path
