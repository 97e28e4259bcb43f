"""Horizontal placement on the store grid: latitude ascending, longitude 0..360,
and bilinear regridding when the source grid differs from the store grid.

Bilinear: linear in latitude (polewards of the outermost source row the row
itself is used) and linear in longitude with wrap-around. NaN in a neighbour
gives NaN. The method string is recorded in the store attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from exocube.errors import InputDataError

Array = NDArray[np.float64]


@dataclass(frozen=True)
class AxisWeights:
    """Target i takes ``(1 - w[i]) * src[lo[i]] + w[i] * src[hi[i]]``."""

    lo: NDArray[np.intp]
    hi: NDArray[np.intp]
    w: Array


def canonical_order(lat: Array, lon: Array
                    ) -> tuple[NDArray[np.intp], NDArray[np.intp], Array, Array]:
    """Index orders that make lat ascending and lon ascending in [0, 360)."""
    lon360 = np.mod(lon, 360.0)
    lat_order, lon_order = np.argsort(lat, kind="stable"), np.argsort(lon360, kind="stable")
    lat_sorted, lon_sorted = lat[lat_order], lon360[lon_order]
    if np.any(np.diff(lat_sorted) == 0) or np.any(np.diff(lon_sorted) == 0):
        raise InputDataError("latitude or longitude values repeat; the grid is not regular")
    return lat_order, lon_order, lat_sorted, lon_sorted


def lat_interp_weights(src: Array, dst: Array) -> AxisWeights:
    """Linear interpolation weights in latitude (not area weights: those are
    :func:`exocube.grid.latitude_weights`); targets outside the source range take the
    edge row."""
    x = np.clip(dst, src[0], src[-1])
    hi = np.clip(np.searchsorted(src, x, side="left"), 1, src.size - 1)
    lo = hi - 1
    w = (x - src[lo]) / (src[hi] - src[lo])
    return AxisWeights(lo, hi, w)


def lon_interp_weights(src: Array, dst: Array) -> AxisWeights:
    """Linear interpolation weights in longitude with wrap-around at 360."""
    ext = np.concatenate([src[-1:] - 360.0, src, src[:1] + 360.0])
    hi = np.clip(np.searchsorted(ext, dst, side="left"), 1, ext.size - 1)
    lo = hi - 1
    w = (dst - ext[lo]) / (ext[hi] - ext[lo])
    return AxisWeights(np.mod(lo - 1, src.size), np.mod(hi - 1, src.size), w)


def apply(field: Array, lat_w: AxisWeights, lon_w: AxisWeights) -> Array:
    """Regrid the last two axes (lat, lon) of ``field``."""
    wy = lat_w.w[:, None]
    a = field[..., lat_w.lo, :] * (1 - wy) + field[..., lat_w.hi, :] * wy
    return a[..., lon_w.lo] * (1 - lon_w.w) + a[..., lon_w.hi] * lon_w.w


def same_grid(lat: Array, lon: Array, dst_lat: Array, dst_lon: Array) -> bool:
    return (lat.shape == dst_lat.shape and lon.shape == dst_lon.shape
            and bool(np.allclose(lat, dst_lat, atol=1e-6))
            and bool(np.allclose(lon, dst_lon, atol=1e-6)))
