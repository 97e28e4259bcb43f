"""Normalisation statistics over valid (finite) points, per variable and level.

Each run contributes ``count``, ``mean``, ``m2`` (sum of squared deviations),
``min`` and ``max``; versions combine them exactly (:func:`combine_all`, the
parallel-variance formula of Chan et al.), so adding runs never needs the old
runs' data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from exocube.grid import FIELDS_2D, FIELDS_3D

Stats = dict[str, dict[str, list[float]]]


def run_stats(fields: dict[str, NDArray[np.float32]]) -> Stats:
    """Per-level (3-D) or scalar (2-D) moments of one run's fields.

    Works one level at a time: a level's temporaries stay in the CPU cache and
    on the heap. One vectorised pass over all levels of a field was measured
    slower (its float64 temporaries are as large as the field and leave the
    cache, and under Dask's default ``MALLOC_TRIM_THRESHOLD_`` each is a fresh
    mmap with page faults).
    """
    out: Stats = {}
    for name in FIELDS_3D + FIELDS_2D:
        a = fields[name]
        slices = [a[:, k] for k in range(a.shape[1])] if name in FIELDS_3D else [a]
        levels = [_moments(s) for s in slices]
        out[name] = {key: [lv[key] for lv in levels] for key in levels[0]}
    return out


def _moments(a: NDArray[np.float32]) -> dict[str, Any]:
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return {"count": 0.0, "mean": None, "m2": 0.0, "min": None, "max": None}
    x = finite.astype(np.float64)
    mean = float(np.add.reduce(x)) / x.size
    x -= mean
    return {"count": float(x.size), "mean": mean, "m2": float(np.add.reduce(x * x)),
            "min": float(np.minimum.reduce(finite)), "max": float(np.maximum.reduce(finite))}


def _nan_to_none(a: NDArray[np.float64]) -> list[Any]:
    return [None if not np.isfinite(x) else float(x) for x in a]


def _arr(values: list[Any]) -> NDArray[np.float64]:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def combine_all(parts: list[Stats]) -> Stats:
    """Statistics of the union of many disjoint sets of runs, in one vectorised pass.

    One Python step for all parts, not one per run: ``n = sum n_i``,
    ``mean = sum n_i mean_i / n``, ``m2 = sum (m2_i + n_i (mean_i - mean)^2)``.
    """
    if not parts:
        raise ValueError("combine_all needs at least one set of statistics")
    return {name: _combine_stack([p[name] for p in parts]) for name in parts[-1]}


def _combine_stack(parts: list[dict[str, list[Any]]]) -> dict[str, list[Any]]:
    counts = np.array([p["count"] for p in parts], dtype=np.float64)
    means = np.nan_to_num(np.array([_arr(p["mean"]) for p in parts]))
    n = counts.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, (counts * means).sum(axis=0) / np.maximum(n, 1), np.nan)
        spread = (counts * np.square(means - np.nan_to_num(mean))).sum(axis=0)
    m2 = np.array([p["m2"] for p in parts], dtype=np.float64).sum(axis=0) + spread
    lo = np.nanmin(np.array([_arr(p["min"]) for p in parts]), axis=0, initial=np.inf)
    hi = np.nanmax(np.array([_arr(p["max"]) for p in parts]), axis=0, initial=-np.inf)
    return {"count": n.tolist(), "mean": _nan_to_none(mean), "m2": m2.tolist(),
            "min": _nan_to_none(np.where(np.isfinite(lo), lo, np.nan)),
            "max": _nan_to_none(np.where(np.isfinite(hi), hi, np.nan))}


def final(stats: dict[str, list[Any]]) -> dict[str, NDArray[np.float64]]:
    """``mean``, ``std`` (population), ``min``, ``max`` arrays; NaN where no valid point."""
    n = np.array(stats["count"])
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.where(n > 0, np.sqrt(np.array(stats["m2"]) / np.maximum(n, 1)), np.nan)
    return {"mean": _arr(stats["mean"]), "std": std, "min": _arr(stats["min"]),
            "max": _arr(stats["max"])}
