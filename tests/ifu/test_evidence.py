"""Nested-sampling evidence: the prior transforms against scipy's inverse CDFs, ln Z of
likelihoods whose evidence is known (a product of 1-D integrals over uniform,
log-uniform and truncated-normal priors; a correlated Gaussian inside a uniform box),
settings and budget refusals, and the Bayes factor's bookkeeping."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import integrate, stats

from exocube.ifu._jax import jnp
from exocube.ifu.evidence import (
    Evidence,
    EvidenceNotConvergedError,
    NestedConfig,
    NestedConfigError,
    bayes_factor,
    live_counts,
    log_evidence,
    unit_transform,
)
from exocube.ifu.params import ParamSpec
from exocube.ifu.priors import make_prior


def _prior(name, kind, a, b, low=-1000.0, high=1000.0):
    return make_prior(ParamSpec(name, "", low, high, 0.5 * (low + high), name), [kind, a, b])


U = np.linspace(0.001, 0.999, 41)


@pytest.mark.parametrize(("prior", "ref"), [
    (_prior("x", "uniform", -3.0, 5.0), stats.uniform(-3.0, 8.0)),
    (_prior("s", "loguniform", 0.01, 1e4, 0.0, 1e5), stats.loguniform(0.01, 1e4)),
    (_prior("v", "normal", 0.0, 200.0), stats.truncnorm(-5.0, 5.0, 0.0, 200.0)),
    (_prior("w", "normal", 50.0, 100.0, -100.0, 120.0),
     stats.truncnorm(-1.5, 0.7, 50.0, 100.0)),
])
def test_unit_transform_is_the_priors_inverse_cdf(prior, ref):
    got = np.asarray(unit_transform(prior, jnp.asarray(U, jnp.float32)), np.float64)
    np.testing.assert_allclose(got, ref.ppf(U), rtol=2e-5, atol=1e-4 * ref.std())
    # and numpyro's distribution (what NUTS samples) has that CDF
    import numpyro.distributions as dist

    d = prior.distribution()
    if not isinstance(d, dist.LogUniform):
        np.testing.assert_allclose(np.asarray(d.cdf(jnp.asarray(got, jnp.float32))), U,
                                   atol=2e-5)
    assert np.all(np.diff(got) > 0)


def test_a_fixed_prior_has_no_transform():
    with pytest.raises(NestedConfigError, match="only free priors"):
        unit_transform(make_prior(ParamSpec("c", "", 1.0, 4.0, 4.0, "c"), ["fixed", 4.0]),
                       jnp.asarray(0.5))


# ln L = sum of independent 1-D Gaussians: ln Z is the sum of 1-D integrals
FACTORS = {  # name: (prior, scipy's prior, the function the likelihood sees, mean, sd)
    "x": (_prior("x", "uniform", -5.0, 5.0), stats.uniform(-5.0, 10.0), None, 1.0, 0.3),
    "s": (_prior("s", "loguniform", 0.1, 100.0, 0.01, 1000.0), stats.loguniform(0.1, 100.0),
          "log10", 0.5, 0.05),
    "v": (_prior("v", "normal", 0.0, 200.0, -300.0, 300.0),
          stats.truncnorm(-1.5, 1.5, 0.0, 200.0), None, 250.0, 40.0),
}


def _factorised_loglike(values, data):
    total = 0.0
    for name, (_, _, g, mu, sd) in FACTORS.items():
        t = jnp.log10(values[name]) if g else values[name]
        total = total + (-0.5 * ((t - mu) / sd) ** 2 - math.log(sd * math.sqrt(2 * math.pi)))
    return total


def _factorised_log_z() -> float:
    out = 0.0
    for _, ref, g, mu, sd in FACTORS.values():
        lo, hi = ref.support()

        def f(t, ref=ref, g=g, mu=mu, sd=sd):
            return stats.norm.pdf(np.log10(t) if g else t, mu, sd) * ref.pdf(t)

        peak = 10**mu if g else mu
        val, _ = integrate.quad(f, lo, hi, points=[peak], limit=400, epsrel=1e-10)
        out += math.log(val)
    return out


def test_evidence_of_independent_gaussians_under_three_prior_kinds():
    priors = {n: f[0] for n, f in FACTORS.items()}
    truth = _factorised_log_z()
    ev = log_evidence(_factorised_loglike, priors, None,
                      NestedConfig(num_live=400, num_delete=40, seed=1))
    assert ev.converged and ev.remaining_dlogz < 0.01 and ev.free == ("x", "s", "v")
    assert 0.02 < ev.log_z_err < 0.3
    assert abs(ev.log_z - truth) < 3 * ev.log_z_err, (ev.log_z, ev.log_z_err, truth)
    # H is about the sum of ln(prior width / posterior width) per dimension
    assert 3.0 < ev.information < 12.0
    assert ev.log_z_err == pytest.approx(math.sqrt(ev.information / 400), rel=0.5)
    assert ev.posterior_mean["x"] == pytest.approx(1.0, abs=0.1)
    assert ev.posterior_sd["x"] == pytest.approx(0.3, rel=0.15)
    assert ev.n_dead > 400 and ev.slice_evaluations > ev.n_dead


@pytest.mark.slow
def test_evidence_of_a_correlated_gaussian_in_a_box_is_minus_log_volume():
    dim, rng = 6, np.random.default_rng(4)
    a = rng.normal(size=(dim, dim))
    cov = 0.02 * (a @ a.T / dim + 0.3 * np.eye(dim))  # correlated, sds about 0.1 - 0.3
    prec, (_, logdet) = np.linalg.inv(cov), np.linalg.slogdet(cov)
    mean = rng.uniform(-1.0, 1.0, dim)
    names = [f"p{i}" for i in range(dim)]
    priors = {n: _prior(n, "uniform", -4.0, 4.0) for n in names}
    data = (jnp.asarray(mean, jnp.float32), jnp.asarray(prec, jnp.float32))

    def loglike(values, d):
        r = jnp.stack([values[n] for n in names]) - d[0]
        return -0.5 * r @ d[1] @ r - 0.5 * (dim * math.log(2 * math.pi) + logdet)

    ev = log_evidence(loglike, priors, data, NestedConfig(num_live=500, num_delete=50, seed=2))
    truth = -dim * math.log(8.0)  # the Gaussian's mass inside the box is 1 to 1e-12
    assert abs(ev.log_z - truth) < 3 * ev.log_z_err, (ev.log_z, ev.log_z_err, truth)
    np.testing.assert_allclose([ev.posterior_mean[n] for n in names], mean, atol=0.08)


def test_the_same_seed_gives_the_same_evidence_and_a_short_budget_is_refused():
    priors = {n: f[0] for n, f in FACTORS.items()}
    cfg = NestedConfig(num_live=400, num_delete=40, seed=5)  # compiled as the test above
    one = log_evidence(_factorised_loglike, priors, None, cfg)
    two = log_evidence(_factorised_loglike, priors, None, cfg)  # compiled once for both
    assert (one.log_z, one.log_z_err, one.n_dead) == (two.log_z, two.log_z_err, two.n_dead)
    with pytest.raises(EvidenceNotConvergedError) as err:
        log_evidence(_factorised_loglike, priors, None, replace(cfg, max_iterations=20))
    ev = err.value.evidence
    assert not ev.converged and ev.iterations == 20 and ev.remaining_dlogz > 0.01
    assert "not a result" in str(err.value) and f"{ev.remaining_dlogz:.3g}" in str(err.value)


def test_live_counts_match_blackjax():
    from blackjax.ns.base import NSInfo, StateWithLogLikelihood
    from blackjax.ns.utils import compute_num_live

    rng = np.random.default_rng(0)
    death = np.sort(rng.normal(size=60))
    birth = np.where(np.arange(60) < 10, np.nan, death - rng.uniform(0.01, 1.0, 60))
    pts = StateWithLogLikelihood(np.zeros(60), np.zeros(60), jnp.asarray(death),
                                 jnp.asarray(birth))
    expected = np.asarray(compute_num_live(NSInfo(pts, None)))
    np.testing.assert_array_equal(live_counts(death, birth), expected)


@pytest.mark.parametrize("kw", [dict(num_live=5), dict(num_delete=0),
                                dict(num_live=100, num_delete=60), dict(dlogz=0.0),
                                dict(num_inner_steps=0), dict(volume_samples=2)])
def test_bad_settings_are_refused(kw):
    with pytest.raises(NestedConfigError):
        NestedConfig(**kw)


def test_all_fixed_priors_are_refused():
    fixed = {"c": make_prior(ParamSpec("c", "", 1.0, 4.0, 4.0, "c"), ["fixed", 4.0])}
    with pytest.raises(NestedConfigError, match="nothing to integrate"):
        log_evidence(lambda v, d: 0.0, fixed)


def test_bayes_factor_adds_errors_in_quadrature_and_refuses_two_cubes():
    from exocube.ifu.chains import FitMismatchError

    def ev(log_z, err, sha):
        return Evidence(log_z, err, 5.0, 100.0, 0.001, 10, 500, 5000, 1.0, 0.5, 1.5, ("x",),
                        NestedConfig(), True, provenance={"data_sha256": sha})

    a, b = ev(-10.0, 0.3, "abc"), ev(-14.0, 0.4, "abc")
    out = bayes_factor({"bowshock": a, "disk": b})
    assert out["ln_B"] == pytest.approx(4.0) and out["ln_B_err"] == pytest.approx(0.5)
    assert out["log10_B"] == pytest.approx(4.0 / math.log(10))
    assert out["models"]["disk"]["log_z"] == -14.0
    with pytest.raises(FitMismatchError, match="different cubes"):
        bayes_factor({"bowshock": a, "disk": ev(-14.0, 0.4, "xyz")})


def test_compare_refuses_bad_nested_settings_before_any_fit(tmp_path, sqlite_url, capsys):
    from fit_fixtures import write_cube

    from exocube.catalog import db as catalog_db
    from exocube.cli import main
    from exocube.ifu.chains import ChainStore

    cube, _ = write_cube(tmp_path)
    catalog_db.upgrade(sqlite_url)
    with pytest.raises(SystemExit) as exc:
        main(["ifu", "compare", str(cube), "--db", sqlite_url, "--evidence",
              "--evidence-live", "100", "--evidence-delete", "80"])
    assert exc.value.code == 1
    msg = " ".join(capsys.readouterr().err.split())
    assert "num_delete=80: expected 1..num_live/2 (50)" in msg
    assert ChainStore(sqlite_url).fit_ids() == []
