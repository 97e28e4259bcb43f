"""Vertical remapping to the store's pressure levels, per column, in log-pressure.

Every column gets a node list: the surface (``ps``) followed by the source
levels, surface first. Source levels at or below the surface, and the missing
levels under the lowest valid one, collapse onto the surface node, so a
column never extrapolates below ground. Values between nodes are linear in
``ln p``; targets below the surface or above the top node are NaN.

``zg`` given on non-pressure levels is recomputed hydrostatically::

    z(p) = z_a + (R / g) * integral_{ln p}^{ln p_a} T_v d(ln p')

with ``T_v`` linear in ``ln p`` between nodes (integrated exactly), anchored
at the lowest level where the source gives ``zg`` (the surface for half
levels), using the run's own gravity ``g`` and gas constant ``R``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from exocube.physics import virtual_temperature

Array = NDArray[np.float64]


def column_nodes(p: Array, f: Array, ps: Array, f_surface: Array | None) -> tuple[Array, Array]:
    """Nodes ``(ln p, f)`` of shape (lev + 1, cols), surface first.

    ``p`` and ``f`` are (lev, cols) with levels surface first; ``ps`` is (cols,).
    ``f_surface`` is the value at the surface, or ``None`` to use the lowest valid level.
    """
    valid = np.isfinite(f) & (p < ps[None, :])
    lowest = np.argmax(valid, axis=0)  # first valid level per column
    has_valid = valid.any(axis=0)
    lowest_value = np.take_along_axis(f, lowest[None, :], axis=0)[0]
    surface = lowest_value if f_surface is None else f_surface
    surface = np.where(has_valid | (f_surface is not None), surface, np.nan)
    below = np.arange(p.shape[0])[:, None] < lowest[None, :]
    below |= ~has_valid[None, :] | (p >= ps[None, :])
    node_p = np.where(below, ps[None, :], p)
    node_f = np.where(below, surface[None, :], f)
    return (np.log(np.concatenate([ps[None, :], node_p])),
            np.concatenate([surface[None, :], node_f]))


def _bracket(x_nodes: Array, x_target: Array) -> tuple[NDArray[np.intp], Array, NDArray[np.bool_]]:
    """For targets (k, cols) in ln p: lower node index j, weight towards j+1, validity."""
    n = x_nodes.shape[0]
    above = (x_nodes[None, :, :] > x_target[:, None, :]).sum(axis=1)
    j = np.clip(above - 1, 0, n - 2)
    valid = (x_target <= x_nodes[0][None, :]) & (above <= n - 1)
    xj = np.take_along_axis(x_nodes, j, axis=0)
    xj1 = np.take_along_axis(x_nodes, j + 1, axis=0)
    dx = xj1 - xj
    with np.errstate(invalid="ignore", divide="ignore"):
        w = np.where(dx != 0, (x_target - xj) / np.where(dx != 0, dx, 1.0), 0.0)
    return j, w, valid


def interp_logp(x_nodes: Array, f_nodes: Array, x_target: Array) -> Array:
    """Values at targets ``x_target`` (k, cols), linear in ln p; NaN outside the nodes."""
    j, w, valid = _bracket(x_nodes, x_target)
    fj = np.take_along_axis(f_nodes, j, axis=0)
    fj1 = np.take_along_axis(f_nodes, j + 1, axis=0)
    return np.where(valid, fj + w * (fj1 - fj), np.nan)


def integral_logp(x_nodes: Array, f_nodes: Array, x_target: Array) -> Array:
    """``integral_{x}^{x_surface} f dx'`` at targets (k, cols), f linear between nodes."""
    dx = x_nodes[:-1] - x_nodes[1:]
    layer = 0.5 * (f_nodes[:-1] + f_nodes[1:]) * dx
    cumulative = np.concatenate([np.zeros_like(x_nodes[:1]), np.cumsum(layer, axis=0)])
    j, _, valid = _bracket(x_nodes, x_target)
    xj = np.take_along_axis(x_nodes, j, axis=0)
    xj1 = np.take_along_axis(x_nodes, j + 1, axis=0)
    fj = np.take_along_axis(f_nodes, j, axis=0)
    fj1 = np.take_along_axis(f_nodes, j + 1, axis=0)
    step = xj1 - xj
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(step != 0, (fj1 - fj) / np.where(step != 0, step, 1.0), 0.0)
    d = x_target - xj
    partial = -(fj * d + 0.5 * slope * d * d)  # integral from x_target up to xj (x decreases up)
    return np.where(valid, np.take_along_axis(cumulative, j, axis=0) + partial, np.nan)


def to_columns(a: Array) -> Array:
    """(time, lev, lat, lon) -> (lev, time*lat*lon)."""
    return np.moveaxis(a, 1, 0).reshape(a.shape[1], -1)


def from_columns(c: Array, shape: tuple[int, int, int, int]) -> Array:
    """(lev, time*lat*lon) -> (time, lev, lat, lon)."""
    nt, _, ny, nx = shape
    return np.moveaxis(c.reshape(c.shape[0], nt, ny, nx), 0, 1)


def surface_first(p: Array, *fields: Array) -> tuple[Array, ...]:
    """Reorder levels (axis 1) so the highest pressure comes first."""
    mean_p = np.nanmean(p, axis=tuple(i for i in range(p.ndim) if i != 1))
    if mean_p[0] >= mean_p[-1]:
        return (p, *fields)
    return (p[:, ::-1], *(f[:, ::-1] for f in fields))


def remap_field(p: Array, f: Array, ps: Array, plev: Array, f_surface: Array | None,
                geometric: bool = False) -> Array:
    """Remap ``f`` (time, lev, lat, lon) on pressures ``p`` to ``plev`` [Pa], surface first.

    ``geometric``: ``ln f`` linear in ``ln p`` between two positive values (for specific
    humidity, which falls by orders of magnitude between sparse upper levels, where a
    linear blend would exceed saturation), linear where either value is not positive."""
    shape = f.shape
    p = np.broadcast_to(p, shape)
    p, f = surface_first(p, f)
    x_nodes, f_nodes = column_nodes(to_columns(p), to_columns(f), ps.ravel(),
                                    None if f_surface is None else f_surface.ravel())
    x_target = np.broadcast_to(np.log(plev)[:, None], (plev.size, x_nodes.shape[1]))
    out = interp_logp(x_nodes, f_nodes, x_target)
    if geometric:
        with np.errstate(divide="ignore", invalid="ignore"):
            log_out = interp_logp(x_nodes, np.log(np.where(f_nodes > 0, f_nodes, np.nan)),
                                  x_target)
        out = np.where(np.isfinite(log_out), np.exp(log_out), out)
    return from_columns(out, (shape[0], plev.size, shape[2], shape[3]))


def hydrostatic_zg(p: Array, ta: Array, hus: Array, ps: Array, ts: Array,
                   p_anchor: Array, z_anchor: Array, plev: Array,
                   gravity: float, r_gas: float) -> Array:
    """Geopotential height [m] on ``plev`` from temperature and humidity on pressures ``p``.

    ``p_anchor``/``z_anchor`` (time, lat, lon) give one known height per column.
    """
    shape = ta.shape
    p = np.broadcast_to(p, shape)
    p, ta, hus = surface_first(p, ta, hus)
    pc, psc = to_columns(p), ps.ravel()
    x_nodes, t_nodes = column_nodes(pc, to_columns(ta), psc, ts.ravel())
    _, q_nodes = column_nodes(pc, to_columns(hus), psc, None)
    tv_nodes = virtual_temperature(t_nodes, q_nodes)
    x_target = np.broadcast_to(np.log(plev)[:, None], (plev.size, x_nodes.shape[1]))
    f_target = integral_logp(x_nodes, tv_nodes, x_target)
    f_anchor = integral_logp(x_nodes, tv_nodes, np.log(p_anchor.ravel())[None, :])
    z = z_anchor.ravel()[None, :] + (r_gas / gravity) * (f_target - f_anchor)
    return from_columns(z, (shape[0], plev.size, shape[2], shape[3]))


def lowest_given_level(p: Array, z: Array, ps: Array) -> tuple[Array, Array]:
    """Per column, the pressure and height of the lowest finite zg level at or above ground."""
    p = np.broadcast_to(p, z.shape)
    ok = np.isfinite(z) & (p <= ps[:, None] * (1 + 1e-9)) & (p > 0)
    p_masked = np.where(ok, p, -np.inf)
    k = np.argmax(p_masked, axis=1)[:, None]
    return (np.take_along_axis(p, k, axis=1)[:, 0], np.take_along_axis(z, k, axis=1)[:, 0])
