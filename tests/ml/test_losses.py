"""Each physics term is zero on a field that satisfies it and positive on one that does not."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ml_store import TINY_GRID, consistent_fields, sample_params

from exocube.ml import losses

PLEV = torch.tensor(TINY_GRID.plev_array)
LAT = torch.tensor(TINY_GRID.lat)


@pytest.fixture(scope="module")
def truth() -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(3)
    p = sample_params(4, rng)
    locked = np.array([True, False, True, False])
    f = consistent_fields(p, TINY_GRID, locked, rng, n_time=1)
    from exocube.physics import surface_gravity
    out = {k: torch.tensor(v[:, 0], dtype=torch.float64) for k, v in f.items()}
    out["g"] = torch.tensor(surface_gravity(p["mass_earth"], p["radius_earth"]))
    out["valid"] = torch.isfinite(out["ta"])
    for k in ("ta", "ua", "va", "hus", "zg"):
        out[k] = torch.nan_to_num(out[k], nan=0.0)
    return out


def test_hydrostatic_zero_on_balanced_field(truth: dict[str, torch.Tensor]) -> None:
    t = truth
    loss = losses.hydrostatic_loss(t["ta"], t["hus"], t["zg"], PLEV, t["g"], t["valid"])
    assert float(loss) < 1e-12
    assert t["valid"].any() and not t["valid"].all()  # some points are below ground


def test_hydrostatic_positive_when_zg_inconsistent(truth: dict[str, torch.Tensor]) -> None:
    t = truth
    zg = t["zg"].clone()
    zg[:, 3] += 100.0
    loss = losses.hydrostatic_loss(t["ta"], t["hus"], zg, PLEV, t["g"], t["valid"])
    assert float(loss) > 1e-6
    warmer = losses.hydrostatic_loss(t["ta"] + 10, t["hus"], t["zg"], PLEV, t["g"], t["valid"])
    assert float(warmer) > 1e-6


def test_hydrostatic_uses_each_runs_gas_constant(truth: dict[str, torch.Tensor]) -> None:
    """Heights built with R = 200 J/kg/K (a CO2-rich atmosphere) balance only with that R."""
    t = truth
    zg = t["zg"][:, :1] + (t["zg"] - t["zg"][:, :1]) * (200.0 / 287.05)
    r = torch.full((zg.shape[0],), 200.0, dtype=torch.float64)
    assert float(losses.hydrostatic_loss(t["ta"], t["hus"], zg, PLEV, t["g"], t["valid"],
                                         r)) < 1e-12
    assert float(losses.hydrostatic_loss(t["ta"], t["hus"], zg, PLEV, t["g"], t["valid"])) > 1e-3


def test_hydrostatic_ignores_below_ground_points(truth: dict[str, torch.Tensor]) -> None:
    t = truth
    zg = torch.where(t["valid"], t["zg"], torch.full_like(t["zg"], 1e6))
    assert float(losses.hydrostatic_loss(t["ta"], t["hus"], zg, PLEV, t["g"], t["valid"])) < 1e-12


def test_humidity_bounds(truth: dict[str, torch.Tensor]) -> None:
    t = truth
    scale = torch.full((len(PLEV),), 1e-3, dtype=torch.float64)
    assert float(losses.humidity_loss(t["hus"], t["ta"], PLEV, t["valid"], scale)) == 0.0
    over = losses.humidity_loss(t["hus"] * 2.5, t["ta"], PLEV, t["valid"], scale)
    negative = losses.humidity_loss(t["hus"] - 1e-4, t["ta"], PLEV, t["valid"], scale)
    assert float(over) > 0 and float(negative) > 0
    v = losses.humidity_violation(torch.tensor([-1e-3]).reshape(1, 1, 1, 1),
                                  torch.tensor([280.0]).reshape(1, 1, 1, 1),
                                  torch.tensor([1e5]))
    assert float(v) == pytest.approx(1e-3)


def _column_fields(nb: int = 2) -> tuple[torch.Tensor, ...]:
    lev, nlat, nlon = len(PLEV), len(LAT), TINY_GRID.nlon
    phi = torch.deg2rad(LAT).reshape(1, 1, -1, 1)
    lam = torch.deg2rad(torch.tensor(TINY_GRID.lon)).reshape(1, 1, 1, -1)
    dp = losses.level_pressure_thickness(PLEV)
    s = torch.linspace(1.0, -1.0, lev, dtype=torch.float64)
    s = s - (s * dp).sum() / dp.sum()  # zero column integral: a return flow
    shape = (nb, lev, nlat, nlon)
    valid = torch.ones(shape, dtype=torch.bool)
    return phi, lam, s.reshape(1, -1, 1, 1), shape, valid


def test_mass_continuity_zero_for_nondivergent_flow() -> None:
    phi, lam, s, shape, valid = _column_fields()
    ua = (30.0 * torch.cos(phi) * (1 + s)).expand(shape)  # zonal jets, any vertical shear
    va = (5.0 * torch.sin(2 * phi) * torch.cos(lam) * s).expand(shape)  # overturning cells
    loss = losses.mass_continuity_loss(ua, va, valid, PLEV, LAT)
    assert float(loss) < 1e-20
    resid = losses.column_mass_divergence(ua, va, valid, PLEV, LAT, torch.full((2,), 6.4e6),
                                          torch.full((2,), 9.8))
    assert resid.abs().max() < 1e-12


def test_mass_continuity_positive_for_divergent_flow() -> None:
    phi, lam, _, shape, valid = _column_fields()
    zeros = torch.zeros(shape, dtype=torch.float64)
    va = (5.0 * torch.sin(2 * phi) + zeros)  # the same sign in the whole column
    assert float(losses.mass_continuity_loss(zeros, va, valid, PLEV, LAT)) > 1e-6
    ua = (10.0 * torch.cos(lam) + zeros)  # zonal convergence and divergence
    assert float(losses.mass_continuity_loss(ua, zeros, valid, PLEV, LAT)) > 1e-6


def test_level_pressure_thickness_sums_to_bottom_pressure() -> None:
    dp = losses.level_pressure_thickness(PLEV)
    assert float(dp.sum()) == pytest.approx(float(PLEV[0]))
    assert bool((dp > 0).all())


def test_weighted_mse_is_mask_aware_and_area_weighted() -> None:
    lat = torch.tensor([-45.0, 45.0, 0.0])
    pred = torch.zeros(1, 1, 3, 2)
    target = torch.zeros(1, 1, 3, 2)
    target[..., 2, :] = 2.0  # error 2 on the equator row only
    valid = torch.ones_like(pred, dtype=torch.bool)
    w = torch.cos(torch.deg2rad(lat))
    expected = 4.0 * w[2] / w.sum()
    assert float(losses.weighted_mse(pred, target, valid, lat)) == pytest.approx(float(expected))
    valid[..., 2, :] = False
    target[..., 2, :] = 1e9  # masked points count for nothing, whatever they hold
    assert float(losses.weighted_mse(pred, target, valid, lat)) == 0.0


def test_uncertainty_weighting_optimum_is_the_loss_scale() -> None:
    uw = losses.UncertaintyWeighting(["a", "b"])
    terms = {"a": torch.tensor(4.0), "b": torch.tensor(0.25)}
    with torch.no_grad():
        uw.log_vars.copy_(torch.log(torch.tensor([4.0, 0.25])))
    uw(terms).backward()
    assert uw.log_vars.grad.abs().max() < 1e-6
    uw.zero_grad()
    with torch.no_grad():
        uw.log_vars.zero_()
    uw(terms).backward()
    assert uw.log_vars.grad[0] < 0 < uw.log_vars.grad[1]  # raise s for the big term
    assert uw.weights()["a"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="do not match"):
        uw({"a": torch.tensor(1.0)})
    assert math.isfinite(float(uw(terms).detach()))


def test_uncertainty_weighting_caps_a_term_relative_to_the_reference() -> None:
    uw = losses.UncertaintyWeighting(["data", "phys"], reference="data",
                                     max_ratio={"phys": 0.1})
    with torch.no_grad():
        uw.log_vars.copy_(torch.tensor([0.0, -10.0]))  # uncapped, phys would weigh e^10 more
    w = uw.weights()
    assert w["phys"] == pytest.approx(0.1 * w["data"])
    terms = {"data": torch.tensor(1.0), "phys": torch.tensor(1.0)}
    assert float(uw(terms)) == pytest.approx(0.5 + 0.05 + 0.5 * math.log(10.0), rel=1e-6)
    with torch.no_grad():
        uw.log_vars.copy_(torch.tensor([0.0, 3.0]))  # below the cap the weight is free
    assert uw.weights()["phys"] == pytest.approx(0.5 * math.exp(-3.0))
    with pytest.raises(ValueError, match="not among"):
        losses.UncertaintyWeighting(["data"], reference="data", max_ratio={"phys": 0.1})
