"""Probabilistic scores against analytic answers and synthetic ensembles of known calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr

from exocube.ml.ensemble import mean_and_std, scale_spread
from exocube.ml.uncertainty import (
    COVERAGE_LEVELS,
    coverage,
    crps_ensemble,
    crps_gaussian,
    crps_scores,
    energy_score,
    per_run_acc,
    per_run_rmse,
    spread_skill,
)

LAT = np.array([-60.0, -20.0, 20.0, 60.0])


def _integral(cdf: object, y: float, lo: float, hi: float, n: int = 200_001) -> float:
    """CRPS = integral of (F(x) - 1[x >= y])**2 dx, by the trapezoid rule on each side of
    the step at ``y``."""
    below, above = np.linspace(lo, y, n), np.linspace(y, hi, n)
    return float(np.trapezoid(cdf(below) ** 2, below)  # type: ignore[operator]
                 + np.trapezoid((1 - cdf(above)) ** 2, above))  # type: ignore[operator]


@pytest.mark.parametrize(("mu", "sigma", "y"), [(0.0, 1.0, 0.3), (2.0, 0.5, -1.0),
                                                (-3.0, 4.0, 5.0)])
def test_gaussian_crps_equals_numerical_integral(mu: float, sigma: float, y: float) -> None:
    closed = float(crps_gaussian(np.array(mu), np.array(sigma), np.array(y)))
    numeric = _integral(lambda x: ndtr((x - mu) / sigma), y, mu - 12 * sigma - abs(y),
                        mu + 12 * sigma + abs(y))
    assert closed == pytest.approx(numeric, rel=1e-5)


def test_ensemble_crps_equals_integral_of_empirical_cdf() -> None:
    members = np.array([0.2, -1.0, 1.7, 0.9])
    y = 0.5
    ens = float(crps_ensemble(members[:, None], np.array([y]), fair=False)[0])
    numeric = _integral(lambda x: (members[:, None] <= x).mean(axis=0), y, -5, 5)
    assert ens == pytest.approx(numeric, abs=1e-4)
    # the fair estimator's spread term counts N(N-1) pairs instead of N**2
    pairs = sum(abs(a - b) for i, a in enumerate(members) for b in members[i + 1:])
    fair = float(crps_ensemble(members[:, None], np.array([y]))[0])
    assert fair == pytest.approx(ens + pairs / 16 - pairs / 12)
    # one member: the absolute error
    assert float(crps_ensemble(np.array([[2.0]]), np.array([0.5]))[0]) == pytest.approx(1.5)


def _synthetic(n_members: int, member_scale: float, shape: tuple[int, ...] = (400, 3, 4, 8),
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Truth and members drawn around a common mean with a point-dependent sigma; members'
    deviations scaled by ``member_scale`` (1: calibrated)."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=shape[1:]) * 10
    sigma = rng.uniform(0.5, 2.0, size=shape[1:])
    truth = mu + sigma * rng.normal(size=shape)
    members = mu + member_scale * sigma * rng.normal(size=(n_members, *shape))
    return members, truth


@pytest.mark.parametrize("n_members", [3, 5])
def test_spread_skill_is_one_for_a_calibrated_ensemble(n_members: int) -> None:
    members, truth = _synthetic(n_members, 1.0)
    mask = np.ones(truth.shape, bool)
    ratio = spread_skill(members, truth, mask, LAT)["spread_skill"]
    assert ratio == pytest.approx(1.0, abs=0.03)
    # without the finite-ensemble factor the ratio would be sqrt(N/(N+1)), clearly below 1
    assert math.sqrt(n_members / (n_members + 1)) < 0.95


@pytest.mark.parametrize("scale", [0.3, 3.0])
def test_spread_skill_flags_under_and_over_dispersion(scale: float) -> None:
    n = 4
    members, truth = _synthetic(n, scale)
    ratio = spread_skill(members, truth, np.ones(truth.shape, bool), LAT)["spread_skill"]
    # E[s^2] = scale^2 sigma^2, E[(mean - y)^2] = sigma^2 (1 + scale^2 / N)
    expected = math.sqrt((n + 1) / n) * scale / math.sqrt(1 + scale**2 / n)
    assert ratio == pytest.approx(expected, rel=0.03)
    assert abs(ratio - 1) > 0.6


def test_coverage_matches_nominal_when_calibrated_and_not_otherwise() -> None:
    members, truth = _synthetic(5, 1.0)
    mask = np.ones(truth.shape, bool)
    observed = coverage(members, truth, mask, LAT)
    # Student-t intervals with the sqrt((N+1)/N) factor: nominal coverage
    np.testing.assert_allclose(observed, COVERAGE_LEVELS, atol=0.02)
    narrow = coverage(*_synthetic(5, 0.3), mask, LAT)
    assert all(o < c - 0.2 for o, c in zip(narrow[2:], COVERAGE_LEVELS[2:], strict=True))


def test_crps_prefers_the_calibrated_ensemble() -> None:
    mask = np.ones((400, 3, 4, 8), bool)
    scores = {s: crps_scores(*_synthetic(5, s), mask, LAT) for s in (0.3, 0.7, 1.0, 1.5, 3.0)}
    fair = [scores[s]["crps"] for s in (0.3, 0.7, 1.0, 1.5, 3.0)]
    assert int(np.argmin(fair)) == 2  # the fair CRPS is best for the calibrated ensemble
    gauss = scores[1.0]["crps_gaussian"]
    assert gauss < scores[0.3]["crps_gaussian"] and gauss < scores[3.0]["crps_gaussian"]


def test_masked_points_do_not_count() -> None:
    members, truth = _synthetic(3, 1.0, shape=(50, 2, 4, 8))
    mask = np.ones(truth.shape, bool)
    mask[..., 0] = False
    spoiled = members.copy()
    spoiled[..., 0] = 1e9
    assert spread_skill(spoiled, truth, mask, LAT) == spread_skill(members, truth, mask, LAT)
    assert energy_score(spoiled, truth, mask, LAT) == energy_score(members, truth, mask, LAT)


def test_per_run_rmse_by_hand() -> None:
    lat = np.array([0.0, 60.0])  # cos weights 1, 0.5 -> normalised 4/3, 2/3
    truth = np.zeros((3, 2, 1))
    pred = np.array([[[1.0], [2.0]], [[3.0], [0.0]], [[2.0], [2.0]]])
    run = np.array([0, 0, 1])
    mask = np.ones(truth.shape, bool)
    w = np.array([4 / 3, 2 / 3])
    run0 = math.sqrt((w[0] * 1 + w[1] * 4 + w[0] * 9 + w[1] * 0) / (2 * w.sum()))
    run1 = 2.0
    assert per_run_rmse(pred, truth, mask, lat, run) == pytest.approx([run0, run1])
    acc = per_run_acc(pred, pred + 0.0, mask, np.zeros((2, 1)), lat, run)
    assert acc == pytest.approx([1.0, 1.0])
    assert per_run_acc(-pred, pred, mask, np.zeros((2, 1)), lat, run) == pytest.approx(
        [-1.0, -1.0])


def test_energy_score_of_one_member_is_the_mean_sample_rmse() -> None:
    rng = np.random.default_rng(1)
    truth = rng.normal(size=(6, 4, 8))
    pred = truth + rng.normal(size=truth.shape)
    mask = np.ones(truth.shape, bool)
    rmse = [per_run_rmse(pred[i:i + 1], truth[i:i + 1], mask[i:i + 1], LAT,
                         np.zeros(1, np.int64))[0] for i in range(6)]
    assert energy_score(pred[None], truth, mask, LAT) == pytest.approx(np.mean(rmse))
    # two identical members score the same as one; spreading them around the truth helps
    assert energy_score(np.stack([pred, pred]), truth, mask, LAT) == pytest.approx(
        np.mean(rmse))


def test_ensemble_std_is_numpys_sample_std() -> None:
    stack = np.random.default_rng(2).normal(size=(4, 3, 5)).astype(np.float32)
    mean, std = mean_and_std(stack)
    np.testing.assert_allclose(std, np.std(stack.astype(np.float64), axis=0, ddof=1))
    np.testing.assert_allclose(mean, stack.astype(np.float64).mean(axis=0))


def test_spread_scale_fitted_on_one_draw_calibrates_another() -> None:
    members, truth = _synthetic(4, 0.3, seed=3)
    mask = np.ones(truth.shape, bool)
    before = spread_skill(members, truth, mask, LAT)["spread_skill"]
    factor = 1 / before
    scaled = scale_spread(members, factor)
    np.testing.assert_allclose(scaled.mean(axis=0), members.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(scaled.std(axis=0, ddof=1), factor * members.std(axis=0, ddof=1),
                               rtol=1e-9)
    assert spread_skill(scaled, truth, mask, LAT)["spread_skill"] == pytest.approx(1.0)
    other_members, other_truth = _synthetic(4, 0.3, seed=4)
    held_out = spread_skill(scale_spread(other_members, factor), other_truth, mask, LAT)
    assert held_out["spread_skill"] == pytest.approx(1.0, abs=0.05)
