"""Vertical and horizontal remapping against closed forms."""

from __future__ import annotations

import numpy as np

from exocube.cubes import horizontal, vertical
from exocube.physics import R_DRY_AIR, q_sat


def test_log_pressure_interpolation_is_exact_for_linear_in_log_p() -> None:
    ps = np.array([[[1.0e5]], [[8.0e4]]])  # (time, lat, lon)
    sigma = np.array([0.95, 0.7, 0.4, 0.1])
    p = sigma[None, :, None, None] * ps[:, None]
    f = 3.0 + 2.0 * np.log(p)
    plev = np.array([1.1e5, 9.0e4, 5.0e4, 2.0e4, 5.0e3])
    surface_value = 3.0 + 2.0 * np.log(ps)
    out = vertical.remap_field(p, f, ps, plev, surface_value)
    expected = 3.0 + 2.0 * np.log(plev)[None, :, None, None] + 0 * ps[:, None]
    below = plev[None, :, None, None] > ps[:, None]
    above_top = plev[None, :, None, None] < p[:, -1:]
    np.testing.assert_allclose(out[~below & ~above_top], expected[~below & ~above_top])
    assert np.isnan(out[below]).all() and np.isnan(out[above_top]).all()


def test_geometric_interpolation_is_exact_for_power_laws_and_keeps_humidity_subsaturated(
) -> None:
    """``hus`` falls by orders of magnitude between ExoPlaSim's sparse upper sigma levels:
    ln hus linear in ln p is exact for a power law, and a column at 70 % of saturation
    (T linear in ln p) stays below saturation on the store levels, where a linear blend
    exceeds it several times over; zeros fall back to linear interpolation."""
    ps = np.array([[[1.0e5]], [[3.0e5]]])
    sigma = np.array([0.9915, 0.8225, 0.5370, 0.2396, 0.0383])  # ExoPlaSim's, top ones
    p = sigma[None, :, None, None] * ps[:, None]
    plev = np.geomspace(4.0e5, 1.0e3, 25)
    law = 1e-2 * (p / 1e5) ** 3.0
    out = vertical.remap_field(p, law, ps, plev, None, geometric=True)
    ok = np.isfinite(out)
    expected = 1e-2 * (plev[None, :, None, None] / 1e5) ** 3.0 + 0 * ps[:, None]
    np.testing.assert_allclose(out[ok], expected[ok], rtol=1e-10)
    assert ok.sum() > 10
    ta = 290.0 - 30.0 * np.log(ps[:, None] / p)
    hus = 0.7 * q_sat(ta, p)
    ta_store = vertical.remap_field(p, ta, ps, plev, None)
    ratio = {g: vertical.remap_field(p, hus, ps, plev, None, geometric=g) / q_sat(
        ta_store, np.broadcast_to(plev[None, :, None, None], ta_store.shape)) for g in (0, 1)}
    assert np.nanmax(ratio[1]) <= 0.7 * (1 + 1e-9)
    assert np.nanmax(ratio[0]) > 1.05  # what validate would call supersaturated
    zero = vertical.remap_field(p, 0 * hus, ps, plev, None, geometric=True)
    assert (zero[np.isfinite(zero)] == 0).all() and np.isfinite(zero).sum() == ok.sum()


def test_hydrostatic_height_of_an_isothermal_column() -> None:
    t, g = 250.0, 9.81
    ps = np.full((1, 2, 3), 1.0e5)
    sigma = np.array([0.9, 0.5, 0.2, 0.05])
    p = sigma[None, :, None, None] * ps[:, None]
    ta = np.full(p.shape, t)
    hus = np.zeros(p.shape)
    plev = np.array([7.0e4, 1.0e4])
    z = vertical.hydrostatic_zg(p, ta, hus, ps, np.full(ps.shape, t), ps, np.zeros(ps.shape),
                                plev, g, R_DRY_AIR)
    expected = R_DRY_AIR * t / g * np.log(1.0e5 / plev)
    np.testing.assert_allclose(z[0, :, 0, 0], expected, rtol=1e-12)


def test_hydrostatic_height_from_an_anchor_above_the_surface() -> None:
    t, g = 200.0, 3.7
    ps = np.full((1, 1, 1), 6.0e4)
    p = np.array([5.0e4, 2.0e4, 5.0e3])[None, :, None, None]
    ta = np.full((1, 3, 1, 1), t)
    z = vertical.hydrostatic_zg(p, ta, np.zeros_like(ta), ps, np.full(ps.shape, t),
                                np.full(ps.shape, 2.0e4), np.full(ps.shape, 1000.0),
                                np.array([1.0e4]), g, 300.0)
    np.testing.assert_allclose(z[0, 0, 0, 0], 1000.0 + 300.0 * t / g * np.log(2.0), rtol=1e-12)


def test_bilinear_regrid_is_exact_for_linear_fields_and_wraps_longitude() -> None:
    src_lat, src_lon = np.linspace(-80, 80, 9), np.arange(0, 360, 30.0)
    dst_lat, dst_lon = np.array([-75.0, 0.0, 33.0]), np.array([5.0, 179.0, 350.0])
    f = 2.0 * src_lat[:, None] + np.cos(np.deg2rad(src_lon))[None, :]
    out = horizontal.apply(f, horizontal.lat_interp_weights(src_lat, dst_lat),
                           horizontal.lon_interp_weights(src_lon, dst_lon))
    np.testing.assert_allclose(out[:, 0] - out[0, 0], 2.0 * (dst_lat - dst_lat[0]))
    # longitude 350 lies between 330 and 0 (=360): linear between their values
    c330, c0 = np.cos(np.deg2rad(330)), 1.0
    np.testing.assert_allclose(out[1, 2], 2 * 0.0 + c330 + (c0 - c330) * (20 / 30))


def test_latitude_outside_the_source_range_takes_the_edge_row() -> None:
    w = horizontal.lat_interp_weights(np.array([-60.0, 0.0, 60.0]), np.array([-89.0, 89.0]))
    f = np.repeat(np.array([[1.0], [2.0], [3.0]]), 4, axis=1)
    out = horizontal.apply(f, w, horizontal.lon_interp_weights(np.array([0.0, 90, 180, 270]),
                                                         np.array([0.0])))
    np.testing.assert_allclose(out[:, 0], [1.0, 3.0])
