"""How far a parameter vector lies outside the training data.

The distance is measured in encoded units (each parameter mapped to [-1, 1]
over its valid range, log-scaled where the spec says so), to the convex hull
of the training runs' parameter vectors. It is found as a non-negative least
squares problem for the convex weights, with the sum-to-one constraint
enforced by a heavily weighted extra row.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import nnls


class ExtrapolationWarning(UserWarning):
    """A prediction was asked for outside the training data."""


def distance_to_hull(points: NDArray[np.float64], x: NDArray[np.float64],
                     penalty: float = 1.0e3) -> float:
    """Euclidean distance from ``x`` ``(D,)`` to the convex hull of ``points`` ``(N, D)``."""
    a = np.vstack([points.T, penalty * np.ones(points.shape[0])])
    b = np.concatenate([x, [penalty]])
    lam, _ = nnls(a, b, maxiter=50 * points.shape[0])
    return float(np.linalg.norm(points.T @ lam - x))


def warn_outside(train: NDArray[np.float64], queries: NDArray[np.float64],
                 names: list[str], tol: float = 1.0e-3) -> NDArray[np.float64]:
    """Warn for each query outside the training range; return the hull distances ``(M,)``."""
    lo, hi = train.min(0), train.max(0)
    dist = np.zeros(len(queries))
    for i, q in enumerate(queries):
        out = [n for n, v, a, b in zip(names, q, lo, hi, strict=True) if v < a - tol or v > b + tol]
        d = distance_to_hull(train, q)
        dist[i] = d
        if out or d > tol:
            warnings.warn(
                f"parameters #{i} lie outside the training data (distance {d:.3f} to the "
                f"training hull in encoded units, where each parameter spans [-1, 1]; "
                f"out of the training range: {out or 'none, but outside the hull'}); "
                "the prediction is an extrapolation", ExtrapolationWarning, stacklevel=3)
    return dist
