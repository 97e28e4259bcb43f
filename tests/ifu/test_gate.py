"""The convergence gate on draws with known mixing (fast, no sampler)."""

from __future__ import annotations

import numpy as np
import pytest

from exocube.ifu.gate import (
    GateConfig,
    GateConfigError,
    NotConvergedError,
    diagnose,
    require_converged,
)


def iid(chains: int, draws: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(chains, draws))


def ar1(chains: int, draws: int, phi: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros((chains, draws))
    x[:, 0] = rng.normal(size=chains) * 5  # dispersed starts
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + rng.normal(size=chains)
    return x


def test_independent_draws_pass_with_every_parameter_listed():
    samples = {"mu": iid(4, 1000), "beta": iid(4, 1000, 1)[..., None].repeat(2, -1)}
    report = require_converged(samples)
    assert report.passed and report.n_chains == 4 and report.n_draws == 1000
    names = [p.name for p in report.parameters]
    assert names == ["mu", "beta[0]", "beta[1]"]
    for p in report.parameters:
        assert p.rhat < 1.01 and p.ess_bulk > 2000 and p.ess_tail > 1500


def test_short_correlated_chains_are_refused_with_their_numbers():
    samples = {"mu": ar1(4, 100, 0.95)}
    report = diagnose(samples)
    assert not report.passed
    with pytest.raises(NotConvergedError) as info:
        require_converged(samples, context="fit abc")
    err = info.value
    assert err.report == report
    p = err.report.parameters[0]
    assert p.ess_bulk < 400 and p.ess_tail < 400
    msg = str(err)
    assert "fit abc" in msg and "mu: bulk ESS" in msg and f"{p.ess_bulk:.1f}" in msg


def test_full_precision_rhat_just_above_threshold_fails():
    # Two chains shifted apart: R-hat clearly > 1.01 even with many draws.
    x = iid(4, 2000)
    x[:2] += 0.3
    report = diagnose({"mu": x})
    assert report.parameters[0].rhat > 1.01
    assert any("R-hat" in f for f in report.failures())


def test_fewer_than_four_chains_or_divergences_fail():
    assert "3 chains" in diagnose({"mu": iid(3, 1000)}).failures()[0]
    report = diagnose({"mu": iid(4, 1000)}, divergences=2)
    assert report.failures() == ["2 divergent transitions (allowed 0)"]


def test_a_constant_parameter_fails_rather_than_passing_on_nan():
    report = diagnose({"c": np.ones((4, 500))})
    assert not report.passed


@pytest.mark.parametrize("kwargs", [{"max_rhat": 1.0}, {"min_ess_bulk": -1},
                                    {"min_chains": 1}, {"max_divergences": -1}])
def test_bad_thresholds_are_refused(kwargs):
    with pytest.raises(GateConfigError):
        GateConfig(**kwargs)


def test_report_serialises_to_json_types():
    import json

    d = diagnose({"mu": iid(4, 500)}).to_dict()
    assert json.loads(json.dumps(d))["parameters"][0]["name"] == "mu"
