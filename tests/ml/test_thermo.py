"""The torch thermodynamics agree with exocube.physics."""

from __future__ import annotations

import numpy as np
import torch

from exocube import physics
from exocube.ml import thermo


def test_torch_relations_match_numpy() -> None:
    rng = np.random.default_rng(1)
    ta = rng.uniform(150, 380, 200)
    p = np.exp(rng.uniform(np.log(1e2), np.log(2e5), 200))
    q = rng.uniform(0, 0.03, 200)
    g = rng.uniform(3, 25, 200)
    t = {k: torch.tensor(v) for k, v in dict(ta=ta, p=p, q=q, g=g).items()}
    np.testing.assert_allclose(thermo.q_sat(t["ta"], t["p"]).numpy(), physics.q_sat(ta, p),
                               rtol=1e-12)
    np.testing.assert_allclose(thermo.virtual_temperature(t["ta"], t["q"]).numpy(),
                               physics.virtual_temperature(ta, q), rtol=1e-12)
    np.testing.assert_allclose(
        thermo.layer_thickness(t["ta"][:-1], t["ta"][1:], t["p"][:-1] * 2, t["p"][:-1],
                               t["g"][:-1]).numpy(),
        physics.layer_thickness(ta[:-1], ta[1:], p[:-1] * 2, p[:-1], g[:-1]), rtol=1e-12)


def test_boiling_temperature_inverts_saturation_pressure() -> None:
    p = torch.tensor([1e3, 1e4, 101325.0, 2e5], dtype=torch.float64)
    tb = thermo.boiling_temperature(p)
    np.testing.assert_allclose(thermo.saturation_vapour_pressure(tb).numpy(), p.numpy(),
                               rtol=1e-10)
    assert 360 < float(tb[2]) < 380  # near 373 K at one atmosphere (constant L)
