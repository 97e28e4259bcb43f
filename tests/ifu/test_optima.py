"""Chains started at the best posterior optimum: every optimum found is reported, the
Laplace scatter has the posterior's covariance, and on a two-mode posterior all chains
start (and stay) in the dominant mode, where prior starts split between the modes."""

from __future__ import annotations

import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

from exocube.ifu._jax import jax, jnp
from exocube.ifu.optima import laplace_covariance, optimum_starts
from exocube.ifu.sampling import BlockSampler, SamplerConfig, SamplerConfigError

MODES, WEIGHTS, WIDTH = (-1.5, 1.5), (0.2, 0.8), 0.15


def two_modes() -> None:
    """x ~ N(0, 3) times a mixture of two narrow Gaussians (weights 0.2 and 0.8)."""
    x = numpyro.sample("x", dist.Normal(0.0, 3.0))
    comp = jnp.stack([jnp.log(w) + dist.Normal(m, WIDTH).log_prob(x)
                      for m, w in zip(MODES, WEIGHTS, strict=True)])
    numpyro.factor("mixture", jax.scipy.special.logsumexp(comp))


COV = np.array([[0.5, 0.3], [0.3, 0.4]])  # eigenvalues below 1: no floor applies
MEAN = np.array([0.3, -0.2])


def correlated() -> None:
    numpyro.sample("v", dist.MultivariateNormal(jnp.asarray(MEAN), jnp.asarray(COV)))


def test_both_optima_are_reported_with_their_density_gap() -> None:
    start = optimum_starts(two_modes, (), {}, num_chains=4, seed=1, n_starts=24)
    init, report = start.init, start.report
    assert report.n_starts == 24 and report.failed_starts == 0
    assert len(report.optima) == 2, report.to_dict()
    best, other = report.optima
    assert best.position["x"][0] == pytest.approx(1.5, abs=0.01)
    assert other.position["x"][0] == pytest.approx(-1.5, abs=0.01)
    # the prior tilts the two peaks slightly; the gap is ln(0.8/0.2) plus that tilt
    tilt = (dist.Normal(0.0, 3.0).log_prob(1.5) - dist.Normal(0.0, 3.0).log_prob(-1.5))
    assert other.delta == pytest.approx(np.log(4.0) + float(tilt), abs=0.01)
    assert best.starts + other.starts == 24 and best.delta == 0.0
    assert init["x"].shape == (4,)
    assert np.all(np.abs(np.asarray(init["x"]) - 1.5) < 6 * WIDTH)


def test_laplace_covariance_of_a_gaussian_posterior_is_its_covariance() -> None:
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model

    info = initialize_model(jax.random.PRNGKey(0), correlated)
    _, unravel = ravel_pytree(info.param_info.z)

    def potential(x):
        return info.potential_fn(unravel(x))

    np.testing.assert_allclose(laplace_covariance(potential, MEAN), COV, rtol=1e-4)
    start = optimum_starts(correlated, (), {}, num_chains=400, seed=0, n_starts=4)
    init, report = start.init, start.report
    np.testing.assert_allclose(start.covariance, COV, rtol=1e-3)
    assert len(report.optima) == 1 and report.optima[0].starts == 4
    np.testing.assert_allclose(report.optima[0].position["v"], MEAN, atol=1e-3)
    draws = np.asarray(init["v"], np.float64)
    np.testing.assert_allclose(np.cov(draws.T), COV, atol=0.15)


def test_chains_started_at_the_optimum_agree_where_prior_starts_split() -> None:
    def ends(start: str) -> np.ndarray:
        sampler = BlockSampler(two_modes, config=SamplerConfig(
            num_chains=8, num_warmup=100, block_size=100, seed=3, start=start))
        block = sampler.sample_block(sampler.warmup())
        return np.asarray(block.draws["x"]).mean(axis=1), sampler

    prior_means, _ = ends("prior")
    assert (prior_means < 0).any() and (prior_means > 0).any(), prior_means
    optimum_means, sampler = ends("optimum")
    assert np.all(np.abs(optimum_means - 1.5) < 3 * WIDTH), optimum_means
    assert sampler.start_report is not None and len(sampler.start_report.optima) == 2


def test_an_unknown_start_is_refused() -> None:
    with pytest.raises(SamplerConfigError, match="start='map'"):
        SamplerConfig(start="map")
    with pytest.raises(SamplerConfigError, match="n_starts=0"):
        SamplerConfig(start="optimum", n_starts=0)


def badly_scaled() -> None:
    """Two independent Gaussians whose scales differ a hundredfold."""
    numpyro.sample("a", dist.Normal(0.0, 1e-3))
    numpyro.sample("b", dist.Normal(0.0, 1e-1))


def test_the_warm_up_starts_from_the_laplace_inverse_mass_matrix() -> None:
    def first_window(start: str) -> float:
        steps: list[np.ndarray] = []
        sampler = BlockSampler(badly_scaled, config=SamplerConfig(
            num_chains=4, num_warmup=40, block_size=40, seed=2, start=start))
        sampler.warmup(on_block=lambda b: steps.append(b.num_steps))
        return float(np.mean(steps))

    optimum_steps = first_window("optimum")
    start = optimum_starts(badly_scaled, (), {}, num_chains=4, seed=2, n_starts=4)
    np.testing.assert_allclose(
        np.asarray(start.inverse_mass_matrix(dense=False)[("a", "b")]), [1e-6, 1e-2],
        rtol=1e-3)
    assert start.inverse_mass_matrix(dense=True)[("a", "b")].shape == (2, 2)
    prior_steps = first_window("prior")
    # unit mass: the step size must resolve a's 1e-3 scale, so trees grow deep to cross b
    assert optimum_steps < 8 < prior_steps, (optimum_steps, prior_steps)


def test_a_kept_laplace_mass_matrix_is_not_adapted() -> None:
    """``adapt_mass_matrix=False``: after warm-up the inverse mass matrix is still the
    Laplace covariance (here the posterior's own, dense), the step size was adapted, and
    the draws still have the posterior's moments; without an optimum there is no Laplace
    matrix to keep, and the setting is refused."""
    config = SamplerConfig(num_chains=4, num_warmup=100, block_size=50, seed=3,
                           start="optimum", n_starts=4, dense_mass=True,
                           adapt_mass_matrix=False)
    sampler = BlockSampler(correlated, config=config)
    state = sampler.warmup()
    kept = np.asarray(state.adapt_state.inverse_mass_matrix[("v",)])
    np.testing.assert_allclose(kept, np.broadcast_to(COV, kept.shape), rtol=1e-3)
    assert np.all(np.asarray(state.adapt_state.step_size) != 1.0)
    draws = []
    for _ in range(8):
        block = sampler.sample_block(state)
        draws.append(block.draws["v"].reshape(-1, 2))
        state = block.state
    v = np.concatenate(draws)
    np.testing.assert_allclose(v.mean(axis=0), MEAN, atol=0.06)
    np.testing.assert_allclose(np.cov(v.T), COV, atol=0.06)
    with pytest.raises(SamplerConfigError, match="adapt_mass_matrix=False"):
        SamplerConfig(adapt_mass_matrix=False)


def test_a_bow_shock_posterior_is_optimised_to_a_stationary_point() -> None:
    """From prior points, where the potential is 1e6 nats and more, the optimisation ends
    at a true optimum: a vanishing gradient and a positive-definite Hessian (BFGS with a
    unit first step failed its line search there, at gradients of 1e3 to 1e7)."""
    from fit_fixtures import SHAPE, TRUTH, WAVE_UM
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model

    from exocube.ifu.fit import FitSettings, prepare
    from exocube.ifu.optima import GRAD_TOL
    from exocube.ifu.params import check_params
    from exocube.ifu.priors import priors_for
    from exocube.ifu.synth import synthesize
    from exocube.ifu.template import build_template

    truth = check_params("bowshock", TRUTH)
    cube = synthesize("bowshock", truth, build_template(shape=SHAPE, wave_um=WAVE_UM),
                      snr=15.0, seed=1, psf=None).cube
    free = ("v_sys", "sigma", "sb_tip", "v_far", "r_tip", "log_nii_ha")
    prob = prepare(cube, FitSettings("bowshock", psf_fwhm=0.0), priors_for(
        "bowshock", {k: ["fixed", v] for k, v in truth.items() if k not in free}))
    args = (prob.likelihood.data,)
    start = optimum_starts(prob.model, args, {}, num_chains=4, seed=0, n_starts=4)
    best = start.report.optima[0]
    info = initialize_model(jax.random.PRNGKey(0), prob.model, model_args=args)
    flat, unravel = ravel_pytree({k: jnp.asarray(v[0]) for k, v in best.position.items()})
    grad = jax.grad(lambda x: info.potential_fn(unravel(x)))(flat)
    assert float(jnp.linalg.norm(grad)) < 10 * GRAD_TOL
    hess = np.asarray(jax.hessian(lambda x: info.potential_fn(unravel(x)))(flat), np.float64)
    assert np.linalg.eigvalsh(0.5 * (hess + hess.T)).min() > 0
    assert best.starts >= 2  # several starts end at the same optimum
    # the well-measured line parameters are not left at the floor's unit variance
    sd = dict(zip(start.sites, np.sqrt(np.diag(start.covariance)), strict=True))
    assert sd["v_sys"] < 0.1 and sd["log_nii_ha"] < 0.1, sd


def test_newton_polish_reaches_the_optimum_of_an_ill_conditioned_valley() -> None:
    """The polish (damped Newton) ends at the optimum of a curved, ill-conditioned valley
    (Rosenbrock's, curvatures 1 to 1e3 along it), never raising the potential."""
    from exocube.ifu.optima import GRAD_TOL, _polish

    def potential(x, scale):
        return 0.5 * (x[0] - 1.0) ** 2 + 0.5 * scale * (x[1] - x[0] ** 2) ** 2

    args = (jnp.float32(1e3),)
    x0 = np.array([-1.2, 1.0])
    v0 = float(potential(jnp.asarray(x0, jnp.float32), *args))
    x, value = _polish(potential, x0, v0, args)
    np.testing.assert_allclose(x, [1.0, 1.0], atol=1e-3)
    assert value <= v0
    grad = jax.grad(potential)(jnp.asarray(x, jnp.float32), *args)
    assert float(jnp.linalg.norm(grad)) < 10 * GRAD_TOL
